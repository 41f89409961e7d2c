"""``wire_api = "responses"``: the OpenAI Responses API's request body and streamed events.

``responses_body`` writes a ``ModelRequest`` as the body the reference sends (same keys, same
order); ``model_events`` reads the ``response.*`` server-sent events as ``ModelEvent``s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from codex_core.models.contract import (
    ModelEvent,
    ModelRequest,
    OutputItemAdded,
    OutputItemDone,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    ReasoningTextDelta,
    ResponseCompleted,
    TextDelta,
    TokenUsage,
)
from codex_plugin_openai.headers import response_started
from codex_plugin_openai.provider import ModelError, StreamingProvider, incomplete_message


class ResponsesProvider(StreamingProvider):
    """``POST {base_url}/responses``: the request as the reference sends it."""

    wire_api = "responses"
    path = "responses"

    def encode(self, request: ModelRequest) -> dict[str, Any]:
        return responses_body(request)

    def events(
        self,
        request: ModelRequest,
        stream: AsyncIterator[dict[str, Any]],
        headers: Mapping[str, str],
    ) -> AsyncIterator[ModelEvent]:
        return model_events(stream, headers)


def responses_body(request: ModelRequest) -> dict[str, Any]:
    """The Responses API body of ``request``; optional keys only when set."""
    body: dict[str, Any] = {"model": request.model}
    if request.instructions is not None:
        body["instructions"] = request.instructions
    body.update(
        {
            "input": [dict(item) for item in request.input],
            "tools": [dict(tool) for tool in request.tools],
            "tool_choice": request.tool_choice,
            "parallel_tool_calls": request.parallel_tool_calls,
            "store": request.store,
            "stream": request.stream,
            "include": list(request.include),
        }
    )
    if request.prompt_cache_key is not None:
        body["prompt_cache_key"] = request.prompt_cache_key
    if request.reasoning is not None:
        body["reasoning"] = {"effort": request.reasoning.effort}
        if request.reasoning.summary is not None:
            body["reasoning"]["summary"] = request.reasoning.summary
    if request.output_schema is not None:
        schema = request.output_schema
        body["text"] = {"format": {"type": "json_schema", "strict": schema.strict,
                                   "schema": schema.schema, "name": schema.name}}  # fmt: skip
    if request.service_tier is not None:
        body["service_tier"] = request.service_tier
    if request.turn_metadata is not None:
        body["client_metadata"] = {"x-codex-turn-metadata": request.turn_metadata}
    return body


def usage(raw: Any) -> TokenUsage | None:
    """The Responses API's ``usage`` object, typed."""
    if not isinstance(raw, dict):
        return None
    total = raw.get("total_tokens")
    return TokenUsage(
        input_tokens=int(raw.get("input_tokens") or 0),
        cached_input_tokens=int((raw.get("input_tokens_details") or {}).get("cached_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
        reasoning_output_tokens=int(
            (raw.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
        ),
        total_tokens=int(total) if total else None,
    )


async def model_events(
    stream: AsyncIterator[dict[str, Any]], headers: Mapping[str, str]
) -> AsyncIterator[ModelEvent]:
    """``response.*`` events as ``ModelEvent``s; ``response.failed`` and
    ``response.incomplete`` raise ``ModelError`` (the reference's messages)."""
    async for event in stream:
        kind = event.get("type")
        response = event.get("response") or {}
        if kind == "response.created":
            yield response_started(_str(response.get("id")), headers)
        elif kind == "response.output_item.added":
            yield OutputItemAdded(event.get("item") or {})
        elif kind == "response.output_text.delta":
            yield TextDelta(str(event.get("item_id")), str(event.get("delta", "")))
        elif kind == "response.reasoning_summary_part.added":
            index = int(event.get("summary_index") or 0)
            yield ReasoningSummaryPartAdded(str(event.get("item_id")), index)
        elif kind == "response.reasoning_summary_text.delta":
            yield ReasoningSummaryDelta(str(event.get("item_id")), str(event.get("delta", "")),
                                        int(event.get("summary_index") or 0))  # fmt: skip
        elif kind == "response.reasoning_text.delta":
            yield ReasoningTextDelta(str(event.get("item_id")), str(event.get("delta", "")),
                                     int(event.get("content_index") or 0))  # fmt: skip
        elif kind == "response.output_item.done":
            yield OutputItemDone(event.get("item") or {})
        elif kind == "response.completed":
            yield ResponseCompleted(_str(response.get("id")), usage(response.get("usage")))
        elif kind == "response.failed":
            failure = response.get("error") or {}
            message = failure.get("message") or "response.failed"
            raise ModelError(f"stream disconnected before completion: {message}")
        elif kind == "response.incomplete":
            details = response.get("incomplete_details") or {}
            raise ModelError(incomplete_message(details.get("reason") or "unknown"))


def _str(value: Any) -> str | None:
    return str(value) if value is not None else None
