"""An MCP server's tool as a codex-core ``Tool``, and its ``mcpToolCall`` item.

The model sees ``mcp__SERVER__TOOL``; a call shows as an ``mcpToolCall`` item: ``item/started``
(``inProgress``), ``item/mcpToolCall/progress`` for the server's progress notifications, and
``item/completed`` with ``result`` (``completed``; ``failed`` with the result kept for the
server's ``isError``) or ``error`` (``failed``: a timeout, a server that went away). Either way
the model is told and the turn goes on.

As in the reference, the model reads ``Wall time: N seconds\nOutput:\n`` and the compact JSON
of the structured content, or, without structured content, that header and the content blocks
as input items; a refused call (the user declined, the guardian denied: its words) reads as
that header and the refusal. The tool's parameter schema is offered without JSON-schema
``title`` keys.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from codex_core.hookspecs import Tool, ToolResult
from codex_core.threads.tools import ask_subscribers
from codex_plugin_mcp.elicitation import ELICITATION_REQUEST
from codex_plugin_mcp.manager import describe, dump, namespace, qualified_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from codex_plugin_mcp.manager import McpManager


def now_ms() -> int:
    return time.time_ns() // 1_000_000


#: Schema keywords whose value maps names (of properties, definitions) to schemas: a property
#: that happens to be called ``title`` is kept.
_SCHEMA_MAPS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}


def without_titles(schema: Any) -> Any:
    """``schema`` without its ``title`` keywords, which the reference strips: they only
    repeat the names (``echoArguments``, ``Text``) and cost the model tokens."""
    if isinstance(schema, list):
        return [without_titles(inner) for inner in schema]
    if not isinstance(schema, dict):
        return schema
    wire: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            wire[key] = {name: without_titles(inner) for name, inner in value.items()}
        else:
            wire[key] = without_titles(value)
    return wire


def model_schema(schema: Any) -> dict[str, Any]:
    """The input schema as offered to the model: an object schema, without titles."""
    wire: dict[str, Any] = without_titles(schema) if isinstance(schema, dict) else {}
    wire["type"] = "object"
    wire.setdefault("properties", {})
    return wire


def compact(value: Any) -> str:
    """JSON as the reference writes it for the model: no spaces, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def result_wire(result: Any) -> dict[str, Any]:
    """An SDK ``CallToolResult`` as the item's / ``mcpServer/tool/call``'s ``result``."""
    wire = {"content": [dump(block) for block in result.content],
            "structuredContent": result.structured_content}  # fmt: skip
    if result.meta:
        wire["_meta"] = result.meta
    return wire


def model_output(result: dict[str, Any], wall: float) -> str | list[dict[str, Any]]:
    """What the model reads of a result (the reference's shape): the wall time, then the
    compact JSON of the structured content; without one, the content blocks as input items
    (text as ``input_text``, images as ``input_image``, anything else as its JSON)."""
    header = f"Wall time: {wall:.4f} seconds\nOutput:"
    if result.get("structuredContent") is not None:
        return f"{header}\n{compact(result['structuredContent'])}"
    items: list[dict[str, Any]] = [{"type": "input_text", "text": header}]
    for block in result["content"]:
        if block.get("type") == "text":
            items.append({"type": "input_text", "text": str(block.get("text", ""))})
        elif block.get("type") == "image":
            url = f"data:{block.get('mimeType')};base64,{block.get('data')}"
            items.append({"type": "input_image", "image_url": url})
        else:
            items.append({"type": "input_text", "text": compact(block)})
    return items


class McpTool(Tool):
    """One tool of one MCP server, offered to the model as ``mcp__SERVER__TOOL``."""

    def __init__(self, manager: McpManager, server: str, spec: Any) -> None:
        self.manager = manager
        self.server = server
        self.tool = str(spec.name)
        self.name = qualified_name(server, self.tool)
        #: For a turn that offers Responses API namespaces (as the reference does): the tool is
        #: ``namespaced_name`` inside ``namespace`` (``mcp__SERVER``).
        self.namespace = namespace(server)
        self.namespaced_name = self.tool
        self.description = str(spec.description or "")
        self.input_schema = model_schema(spec.input_schema)
        annotations = getattr(spec, "annotations", None)
        self.read_only: bool | None = getattr(annotations, "read_only_hint", None)

    def offered(self, setting: Callable[[str], Any]) -> bool:
        """Only to threads whose ``mcp_servers`` still name this server: a thread started
        with ``mcp_servers = {}`` (the TUI's temporary structured threads) has none."""
        servers = setting("mcp_servers")
        return not isinstance(servers, dict) or self.server in servers

    async def approve(self, arguments: dict[str, Any], context: Any) -> str | None:
        """The approval flow; ``None`` to run, else why not (the item's error).

        ``approve`` mode and read-only tools (``auto``) run; otherwise ``approval_policy``
        ``never`` refuses, and any other policy asks the thread's reviewer with the reference's
        ``mcpServer/elicitation/request`` (``accept`` runs; ``persist: session`` remembers it).
        """
        config = self.manager.group(context.thread_id).configs.get(self.server)
        mode = config.approval_mode(self.tool) if config is not None else "auto"
        key = f"mcp:{self.server}:{self.tool}"
        if mode == "approve" or (mode == "auto" and self.read_only):
            return None
        if context.approved_for_session(key):
            return None
        if context.approval_policy == "never":
            return "MCP tool call requires approval, but approval policy is never"
        params = {
            "threadId": context.thread_id, "turnId": context.turn_id, "serverName": self.server,
            "mode": "form",
            "_meta": {
                "codex_approval_kind": "mcp_tool_call", "persist": ["session", "always"],
                "tool_name": self.tool, "tool_description": self.description,
                "tool_params": arguments,
                "tool_params_display": [{"name": name, "value": value, "display_name": name}
                                        for name, value in (arguments or {}).items()],
            },
            "message": f'Allow the {self.server} MCP server to run tool "{self.tool}"?',
            "requestedSchema": {"type": "object", "properties": {}},
        }  # fmt: skip
        answer = await context.request_approval(
            "mcpServer/elicitation/request", params, {"id": context.call_id}
        )
        context.approval_finished()
        action = answer.get("action") or answer.get("decision")
        if action in ("accept", "acceptForSession"):
            meta = answer.get("_meta") if isinstance(answer.get("_meta"), dict) else {}
            if action == "acceptForSession" or meta.get("persist") in ("session", "always"):
                context.approve_for_session(key)
            return None
        reviewed = answer.get("rejectionMessage")
        if isinstance(reviewed, str) and reviewed:  # an automatic reviewer (the guardian) said why
            return reviewed
        if action == "cancel":
            return "user cancelled MCP tool call"
        return "user rejected MCP tool call"

    async def call(self, arguments: dict[str, Any], context: Any) -> ToolResult:
        started = time.monotonic()
        item: dict[str, Any] = {
            "type": "mcpToolCall", "id": context.call_id, "server": self.server,
            "tool": self.tool, "status": "inProgress", "arguments": arguments,
            "appContext": None, "mcpAppUi": None, "pluginId": None,
            "readOnlyHint": self.read_only, "result": None, "error": None, "durationMs": None,
            "startedAtMs": now_ms(), "completedAtMs": None,
        }  # fmt: skip
        context.item_started(dict(item))
        refusal = await self.approve(arguments, context)
        if refusal is not None:
            item.update(status="failed", error={"message": refusal}, durationMs=0,
                        completedAtMs=now_ms())  # fmt: skip
            context.item_completed(item)
            # The model reads the refusal as the call's output, as in the reference.
            text = {"type": "text", "text": refusal}
            wall = time.monotonic() - started
            return ToolResult(model_output({"content": [text]}, wall), success=False)

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            text = message or (f"{progress:g}/{total:g}" if total else f"{progress:g}")
            context.emit("item/mcpToolCall/progress", {
                "threadId": context.thread_id, "turnId": context.turn_id,
                "itemId": context.call_id, "message": text,
            })  # fmt: skip

        async def ask(params: dict[str, Any]) -> dict[str, Any]:
            """The server elicits mid-call: the thread's subscribers are asked."""
            params = {"threadId": context.thread_id, "turnId": context.turn_id, **params}
            return await ask_subscribers(context.turn, ELICITATION_REQUEST, params)

        try:
            handle = self.manager.group(context.thread_id).handle(self.server)
            raw = await handle.call_tool(self.tool, arguments or None, on_progress, ask=ask)
        except Exception as exc:
            error = f"tool call failed for `{self.server}/{self.tool}`: {describe(exc)}"
            item.update(status="failed", error={"message": error},
                        durationMs=int((time.monotonic() - started) * 1000),
                        completedAtMs=now_ms())  # fmt: skip
            context.item_completed(item)
            return ToolResult(f"err: {error}", success=False)
        wall = time.monotonic() - started
        # The item's result always carries ``_meta`` (null when the server sent none).
        result = {**result_wire(raw), "_meta": raw.meta}
        # The server's ``isError``: ``failed``, with its result and no ``error``, as the
        # reference reports it; the model reads the result either way.
        item.update(status="failed" if raw.is_error else "completed", result=result,
                    durationMs=int(wall * 1000), completedAtMs=now_ms())  # fmt: skip
        context.item_completed(item)
        return ToolResult(model_output(result, wall), success=not raw.is_error)
