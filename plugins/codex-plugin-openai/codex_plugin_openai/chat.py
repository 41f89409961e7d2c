"""``wire_api = "chat"``: Chat Completions, for servers that do not speak the Responses API.

The request goes out as a Chat Completions body (``chat_request``) and the streamed chunks
come back as the Responses API events the turn engine reads: ``response.created``, the
model's thinking if the server streams it (a reasoning item), the assistant message
(``output_item.added``, ``output_text.delta``, ``output_item.done``), one
``function_call`` (or ``custom_tool_call``) item per tool call, and ``response.completed``
with the usage. Everything else (auth, retries, timeouts, errors) is ``StreamingProvider``'s.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from codex_plugin_openai.chat_request import ToolName, chat_body, tool_names
from codex_plugin_openai.provider import ModelError, StreamingProvider, incomplete_message

#: ``finish_reason`` values that cut the answer short, as the Responses API's reasons.
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


class ChatProvider(StreamingProvider):
    """``POST {base_url}/chat/completions`` with ``stream: true`` (and usage in the stream)."""

    wire_api = "chat"
    path = "chat/completions"

    def encode(self, body: dict[str, Any]) -> dict[str, Any]:
        return chat_body(body)

    def events(
        self, body: dict[str, Any], stream: AsyncIterator[dict[str, Any]]
    ) -> AsyncIterator[dict[str, Any]]:
        return responses_events(stream, tool_names(body.get("tools") or []))


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


#: The delta fields of streamed text, the item each makes and the event of each piece.
#: ``reasoning_content`` (``reasoning`` on some servers) is not in the OpenAI API, but local
#: servers stream the thinking of reasoning models in it.
_TEXT_FIELDS = (
    (("reasoning_content", "reasoning"), "reasoning", "response.reasoning_text.delta"),
    (("content",), "message", "response.output_text.delta"),
)


async def responses_events(
    chunks: AsyncIterator[dict[str, Any]], tools: Mapping[str, ToolName]
) -> AsyncIterator[dict[str, Any]]:
    """Chat Completions chunks as Responses API events; ``tools`` maps function names back."""
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
            yield {"type": "response.created",
                   "response": {"id": response_id, "model": chunk.get("model")}}  # fmt: skip
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            for names, kind, event in _TEXT_FIELDS:
                piece = next((delta[name] for name in names if delta.get(name)), None)
                if not isinstance(piece, str):
                    continue
                text = texts.get(kind)
                if text is None:
                    prefix = "rs" if kind == "reasoning" else "msg"
                    text = texts[kind] = _Text(f"{prefix}_{response_id}", len(texts))
                    yield {"type": "response.output_item.added", "output_index": text.index,
                           "item": _text_item(kind, text, "in_progress")}  # fmt: skip
                text.parts.append(piece)
                yield {"type": event, "item_id": text.id, "output_index": text.index,
                       "content_index": 0, "delta": piece}  # fmt: skip
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
    for index, item in enumerate(done):
        yield {"type": "response.output_item.done", "output_index": index, "item": item}
    completed: dict[str, Any] = {"id": response_id, "status": "completed", "output": done}
    if usage is not None:
        completed["usage"] = responses_usage(usage)
    yield {"type": "response.completed", "response": completed}


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


def responses_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Chat Completions ``usage`` as the Responses API's (what the turn engine reports)."""
    input_tokens = int(usage.get("prompt_tokens") or 0)
    output_tokens = int(usage.get("completion_tokens") or 0)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": int(cached)},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": int(reasoning)},
        "total_tokens": int(usage.get("total_tokens") or input_tokens + output_tokens),
    }
