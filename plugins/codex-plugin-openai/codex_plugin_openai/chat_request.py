"""A Responses API request body as a Chat Completions one (``wire_api = "chat"``).

A ``ModelRequest`` holds ``instructions``, ``input`` items and ``tools`` in the Responses API's
shape. Chat Completions has no items, only messages, and only function tools, so:

- ``instructions`` is the system message; user, developer and assistant messages keep their
  role; reasoning items are dropped (chat models do not take them back);
- ``function_call`` items are the ``tool_calls`` of an assistant message and their outputs
  ``tool`` messages; a ``custom_tool_call`` (a freeform tool) is a function call whose single
  ``input`` string argument is its text;
- a ``custom`` tool is a function taking ``{"input": string}``; the tools of a ``namespace``
  are functions named ``<namespace>__<name>`` (``ToolName`` maps them back).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codex_core.models.contract import ModelRequest

log = logging.getLogger(__name__)

#: Joins a namespace and a tool name into one function name (``mcp__docs__search``).
NAMESPACE_SEPARATOR = "__"


@dataclass(frozen=True, slots=True)
class ToolName:
    """What a chat function name stands for in the Responses API request."""

    name: str
    namespace: str | None = None
    #: A freeform (``custom``) tool: its call is a ``custom_tool_call`` with ``input`` text.
    custom: bool = False


def function_name(name: str, namespace: str | None) -> str:
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name


def tool_names(tools: Iterable[Mapping[str, Any]]) -> dict[str, ToolName]:
    """The chat function names of the request's tools, and what each stands for."""
    names: dict[str, ToolName] = {}
    for tool in tools:
        kind = tool.get("type")
        if kind == "namespace":
            namespace = str(tool.get("name") or "")
            for inner in tool.get("tools") or []:
                name = str(inner.get("name") or "")
                names[function_name(name, namespace)] = ToolName(name, namespace)
        elif kind in ("function", "custom"):
            name = str(tool.get("name") or "")
            names[name] = ToolName(name, custom=kind == "custom")
    return names


def chat_body(request: ModelRequest) -> dict[str, Any]:
    """The Chat Completions request for ``request``."""
    chat: dict[str, Any] = {
        "model": request.model,
        "messages": chat_messages(request.instructions, request.input),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    tools = chat_tools(request.tools)
    if tools:
        chat["tools"] = tools
        chat["tool_choice"] = request.tool_choice  # ("auto", "none", "required" in both APIs)
        chat["parallel_tool_calls"] = request.parallel_tool_calls
    if request.reasoning is not None and request.reasoning.effort:
        chat["reasoning_effort"] = request.reasoning.effort
    schema = request.output_schema
    if schema is not None:  # a turn's ``outputSchema``
        chat["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": schema.name, "strict": schema.strict, "schema": schema.schema},
        }
    if request.service_tier is not None:
        chat["service_tier"] = request.service_tier
    return chat


def chat_tools(tools: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []
    for tool in tools:
        kind = tool.get("type")
        if kind == "function":
            specs.append(_function(str(tool.get("name")), tool))
        elif kind == "custom":
            specs.append(_freeform(tool))
        elif kind == "namespace":
            for inner in tool.get("tools") or []:
                name = function_name(str(inner.get("name")), str(tool.get("name")))
                specs.append(_function(name, inner))
        else:
            log.info("tool of type %s has no Chat Completions equivalent; not offered", kind)
    return specs


def _function(name: str, tool: Mapping[str, Any]) -> dict[str, Any]:
    parameters = tool.get("parameters") or {"type": "object", "properties": {}}
    description = tool.get("description") or ""
    function = {"name": name, "description": description, "parameters": parameters}
    return {"type": "function", "function": function}


def _freeform(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A freeform tool as a function of one string; its grammar, if any, tells the model the
    syntax the string follows."""
    described: dict[str, Any] = {"type": "string"}
    syntax = tool.get("format") or {}
    if syntax.get("type") == "grammar" and syntax.get("definition"):
        described["description"] = (
            f"Text in this {syntax.get('syntax') or ''} grammar:\n{syntax['definition']}"
        )
    parameters = {"type": "object", "properties": {"input": described}, "required": ["input"],
                  "additionalProperties": False}  # fmt: skip
    return _function(str(tool.get("name")), {**tool, "parameters": parameters})


def chat_messages(instructions: Any, items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": str(instructions)})
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item))
        elif kind in ("function_call", "custom_tool_call"):
            _tool_call(messages, item)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"),
                             "content": _output_text(item.get("output"))})  # fmt: skip
        elif kind != "reasoning":
            log.info("input item of type %s has no Chat Completions equivalent; left out", kind)
    return messages


def _message(item: Mapping[str, Any]) -> dict[str, Any]:
    role = str(item.get("role") or "user")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts: list[dict[str, Any]] = []
    for part in content or []:
        if part.get("type") in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif part.get("type") == "input_image" and role == "user":
            image = {"url": part.get("image_url")}
            if part.get("detail"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
    if all(part["type"] == "text" for part in parts):  # plain text: the form every server takes
        return {"role": role, "content": "".join(part["text"] for part in parts)}
    return {"role": role, "content": parts}


def _tool_call(messages: list[dict[str, Any]], item: Mapping[str, Any]) -> None:
    """A call joins the assistant message before it (calls of one answer are one message)."""
    if item.get("type") == "custom_tool_call":
        arguments = json.dumps({"input": item.get("input") or ""})
    else:
        arguments = str(item.get("arguments") or "{}")
    call = {"id": item.get("call_id"), "type": "function",
            "function": {"name": function_name(str(item.get("name")), item.get("namespace")),
                         "arguments": arguments}}  # fmt: skip
    last = messages[-1] if messages else None
    if last is None or last["role"] != "assistant":
        last = {"role": "assistant", "content": None}
        messages.append(last)
    last.setdefault("tool_calls", []).append(call)


def _output_text(output: Any) -> str:
    """A tool's output as the text a ``tool`` message holds (its text parts, joined)."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        texts = [str(part.get("text", "")) for part in output if isinstance(part, dict)
                 and part.get("type") in ("input_text", "output_text", "text")]  # fmt: skip
        return "\n".join(texts)
    return json.dumps(output)
