"""``wire_api = "chat"``: Chat Completions, for servers that do not speak the Responses API.

The request goes out as a Chat Completions body (``chat_request``) and the streamed chunks
come back as ``ModelEvent``s: ``ResponseStarted``, the model's thinking if the server streams
it (a reasoning item), the assistant message (``OutputItemAdded``, ``TextDelta``,
``OutputItemDone``), one ``function_call`` (or ``custom_tool_call``) item per tool call, and
``ResponseCompleted`` with the usage. Everything else (auth, retries, timeouts, errors) is
``StreamingProvider``'s.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from codex_core.models.contract import (
    ModelEvent,
    ModelRequest,
    OutputItemAdded,
    OutputItemDone,
    ReasoningTextDelta,
    ResponseCompleted,
    TextDelta,
    TokenUsage,
)
from codex_plugin_openai.chat_request import ToolName, chat_body, tool_names
from codex_plugin_openai.headers import response_started
from codex_plugin_openai.provider import ModelError, StreamingProvider, incomplete_message

#: ``finish_reason`` values that cut the answer short, as the Responses API's reasons.
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


class ChatProvider(StreamingProvider):
    """``POST {base_url}/chat/completions`` with ``stream: true`` (and usage in the stream)."""

    wire_api = "chat"
    path = "chat/completions"

    def encode(self, request: ModelRequest) -> dict[str, Any]:
        return chat_body(request)

    def events(
        self,
        request: ModelRequest,
        stream: AsyncIterator[dict[str, Any]],
        headers: Mapping[str, str],
    ) -> AsyncIterator[ModelEvent]:
        return model_events(stream, tool_names(request.tools), headers)


@dataclass(slots=True)
class _Call:
    """A tool call being streamed: its id and name come first, its arguments in pieces."""

    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Text:
    """A streamed text item (the answer, or the model's reasoning) and its output index."""

    id: str
    index: int
    parts: list[str] = field(default_factory=list)


#: The delta fields of streamed text and the item each makes. ``reasoning_content``
#: (``reasoning`` on some servers) is not in the OpenAI API, but local servers stream the
#: thinking of reasoning models in it.
_TEXT_FIELDS = (
    (("reasoning_content", "reasoning"), "reasoning"),
    (("content",), "message"),
)


async def model_events(
    chunks: AsyncIterator[dict[str, Any]],
    tools: Mapping[str, ToolName],
    headers: Mapping[str, str],
) -> AsyncIterator[ModelEvent]:
    """Chat Completions chunks as ``ModelEvent``s; ``tools`` maps function names back."""
    response_id = ""
    texts: dict[str, _Text] = {}
    calls: dict[int, _Call] = {}
    usage: dict[str, Any] | None = None
    finished = False
    async for chunk in chunks:
        error = chunk.get("error")
        if error is not None:
            message = error.get("message") if isinstance(error, dict) else error
            raise ModelError(f"stream disconnected before completion: {message or error}")
        if not response_id:
            response_id = str(chunk.get("id") or "chatcmpl")
            yield response_started(response_id, headers)
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            for names, kind in _TEXT_FIELDS:
                piece = next((delta[name] for name in names if delta.get(name)), None)
                if not isinstance(piece, str):
                    continue
                text = texts.get(kind)
                if text is None:
                    prefix = "rs" if kind == "reasoning" else "msg"
                    text = texts[kind] = _Text(f"{prefix}_{response_id}", len(texts))
                    yield OutputItemAdded(_text_item(kind, text, "in_progress"))
                text.parts.append(piece)
                if kind == "reasoning":
                    yield ReasoningTextDelta(text.id, piece)
                else:
                    yield TextDelta(text.id, piece)
            for part in delta.get("tool_calls") or []:
                index = part.get("index")
                if index is None:  # (servers that send each call whole, without an index)
                    index = len(calls)
                call = calls.setdefault(int(index), _Call())
                function = part.get("function") or {}
                call.call_id = call.call_id or str(part.get("id") or "")
                call.name = call.name or str(function.get("name") or "")
                call.arguments.append(str(function.get("arguments") or ""))
            reason = choice.get("finish_reason")
            if reason in INCOMPLETE_REASONS:
                raise ModelError(incomplete_message(INCOMPLETE_REASONS[reason]))
            finished = finished or bool(reason)
    if not finished:
        return  # the stream ended mid-answer: the provider reports the disconnect
    done = [_text_item(kind, text, "completed") for kind, text in texts.items()]
    for index, call in sorted(calls.items()):
        done.append(_call_item(call, index, response_id, tools.get(call.name)))
    for item in done:
        yield OutputItemDone(item)
    yield ResponseCompleted(response_id, token_usage(usage) if usage is not None else None)


def _text_item(kind: str, text: _Text, status: str) -> dict[str, Any]:
    """The message or reasoning item, with what streamed so far once ``completed``."""
    finished = status == "completed"
    body = "".join(text.parts)
    content: list[dict[str, Any]] = []
    if kind == "reasoning":
        if finished:
            content.append({"type": "reasoning_text", "text": body})
        return {"type": "reasoning", "id": text.id, "summary": [], "content": content}
    if finished:
        content.append({"type": "output_text", "text": body, "annotations": []})
    return {"type": "message", "id": text.id, "role": "assistant", "status": status,
            "content": content}  # fmt: skip


def _call_item(call: _Call, index: int, response_id: str, tool: ToolName | None) -> dict[str, Any]:
    """The Responses API item of a finished tool call: a freeform tool's ``input`` argument
    becomes its text, a namespaced function gets its namespace and own name back."""
    call_id = call.call_id or f"call_{response_id}_{index}"
    arguments = "".join(call.arguments)
    if tool is not None and tool.custom:
        try:
            text = json.loads(arguments).get("input")
        except (ValueError, AttributeError):
            text = None
        if isinstance(text, str):
            return {"type": "custom_tool_call", "id": f"ctc_{call_id}", "call_id": call_id,
                    "name": tool.name, "input": text, "status": "completed"}  # fmt: skip
    item = {"type": "function_call", "id": f"fc_{call_id}", "call_id": call_id,
            "name": tool.name if tool is not None else call.name, "arguments": arguments,
            "status": "completed"}  # fmt: skip
    if tool is not None and tool.namespace:
        item["namespace"] = tool.namespace
    return item


def token_usage(usage: Mapping[str, Any]) -> TokenUsage:
    """Chat Completions ``usage``, typed."""
    total = usage.get("total_tokens")
    return TokenUsage(
        input_tokens=int(usage.get("prompt_tokens") or 0),
        cached_input_tokens=int(
            (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        ),
        output_tokens=int(usage.get("completion_tokens") or 0),
        reasoning_output_tokens=int(
            (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
        ),
        total_tokens=int(total) if total else None,
    )
