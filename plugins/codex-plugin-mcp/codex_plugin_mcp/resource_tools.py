"""The model's MCP resource tools: ``list_mcp_resources``, ``list_mcp_resource_templates`` and
``read_mcp_resource``, offered (as the reference offers them) to threads with MCP servers.

Each call is an ``mcpToolCall`` item whose ``server`` is the server named (``codex`` when a
list covers every server) and whose result is one text block: the compact JSON the model reads,
in the reference's shape (every resource tagged with its ``server``). A server that is not
configured is no call at all: the model reads ``unknown MCP server 'NAME'`` and no item is
shown. A server's failure ends the item as ``failed`` and the model reads why, in the
reference's words (``resources/read failed: ...``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from codex_core.hookspecs import Tool, ToolResult
from codex_plugin_mcp.manager import describe

if TYPE_CHECKING:
    from collections.abc import Callable

    from codex_core.kernel import Kernel
    from codex_plugin_mcp.manager import McpManager, ServerGroup

#: The server of an item that lists every server's resources (the reference's name for itself).
ALL_SERVERS = "codex"
#: Key order of what the model reads, as the reference serializes each kind.
RESOURCE_KEYS = ("uri", "name", "title", "description", "mimeType", "size", "icons",
                 "annotations", "_meta")  # fmt: skip
TEMPLATE_KEYS = ("uriTemplate", "name", "title", "description", "mimeType", "icons",
                 "annotations", "_meta")  # fmt: skip
CONTENTS_KEYS = ("uri", "mimeType", "text", "blob", "_meta")

SERVER_PARAM = {"type": "string", "description": "The MCP server's name, as configured."}
CURSOR_PARAM = {"type": "string", "description": "The previous page's nextCursor."}


class UnknownServer(Exception):
    """The model named a server that is not configured (or is disabled)."""


class ToolFailed(Exception):
    """The call failed; the message is what the model reads."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ordered(wire: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``wire`` with ``keys`` first, in that order, then anything else."""
    first = {key: wire[key] for key in keys if key in wire}
    return {**first, **{key: value for key, value in wire.items() if key not in first}}


def mcp_error(exc: BaseException) -> str:
    """An MCP error as the reference's client words it: ``Mcp error: CODE: MESSAGE(DATA)``."""
    from mcp.shared.exceptions import MCPError

    from codex_plugin_mcp.tools import compact

    if not isinstance(exc, MCPError):
        return describe(exc)
    data = f"({compact(exc.data)})" if exc.data is not None else ""
    return f"Mcp error: {exc.code}: {exc.message}{data}"


def text_argument(arguments: dict[str, Any], name: str) -> str | None:
    """An optional string argument; blank counts as absent (as in the reference)."""
    value = arguments.get(name)
    return value.strip() or None if isinstance(value, str) else None


class ResourceTool(Tool):
    """One of the three tools; ``run`` answers with the payload the model reads."""

    name = ""
    description = ""
    input_schema: dict[str, Any] = {}

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    @property
    def manager(self) -> McpManager:
        """The kernel's MCP manager, made when first needed (not at plugin load)."""
        from codex_plugin_mcp.methods import manager_of

        return manager_of(self.kernel)

    def offered(self, setting: Callable[[str], Any]) -> bool:
        """Only to threads with at least one MCP server configured."""
        servers = setting("mcp_servers")
        return isinstance(servers, dict) and bool(servers)

    def known(self, group: ServerGroup, server: str) -> None:
        config = group.configs.get(server)
        if config is None or not config.enabled:
            raise UnknownServer(f"unknown MCP server '{server}'")

    async def run(
        self, group: ServerGroup, server: str | None, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        """The tool's answer, from the calling thread's servers (``group``)."""
        raise NotImplementedError

    def target(self, arguments: dict[str, Any]) -> str | None:
        return text_argument(arguments, "server")

    async def call(self, arguments: dict[str, Any], context: Any) -> ToolResult:
        from codex_plugin_mcp.tools import compact

        arguments = arguments if isinstance(arguments, dict) else {}
        server = self.target(arguments)
        group = self.manager.group(context.thread_id)
        try:
            if server is not None:
                self.known(group, server)
        except UnknownServer as exc:
            return ToolResult(str(exc), success=False)
        started = time.monotonic()
        item: dict[str, Any] = {
            "type": "mcpToolCall", "id": context.call_id, "server": server or ALL_SERVERS,
            "tool": self.name, "status": "inProgress", "arguments": arguments,
            "appContext": None, "mcpAppUi": None, "pluginId": None, "readOnlyHint": None,
            "result": None, "error": None, "durationMs": None, "startedAtMs": now_ms(),
            "completedAtMs": None,
        }  # fmt: skip
        context.item_started(dict(item))
        try:
            output = compact(await self.run(group, server, arguments))
        except ToolFailed as exc:
            item.update(status="failed", error={"message": str(exc)})
            output = ""
        else:
            item.update(status="completed", result={
                "content": [{"type": "text", "text": output}],
                "structuredContent": None, "_meta": None})  # fmt: skip
        item.update(durationMs=int((time.monotonic() - started) * 1000), completedAtMs=now_ms())
        context.item_completed(item)
        if item["status"] == "failed":
            return ToolResult(item["error"]["message"], success=False)
        return ToolResult(output)

    @staticmethod
    def listed_servers(group: ServerGroup) -> list[str]:
        """The servers an every-server list covers: enabled ones, by name."""
        return sorted(name for name, config in group.configs.items() if config.enabled)


class ListResources(ResourceTool):
    name = "list_mcp_resources"
    description = (
        "Lists the resources (files, schemas, documents, ...) that the configured MCP servers "
        "offer as context, tagged with their server; read one with read_mcp_resource. Give "
        "`server` to list one server's, page by page."
    )
    input_schema = {"type": "object", "properties": {"cursor": CURSOR_PARAM,
                                                     "server": SERVER_PARAM},
                    "additionalProperties": False}  # fmt: skip
    kind = "resources"
    keys: tuple[str, ...] = RESOURCE_KEYS
    verb = "resources/list"

    async def page(
        self, group: ServerGroup, server: str, cursor: str | None
    ) -> tuple[list[Any], str | None]:
        result = await group.handle(server).list_resources(cursor)
        return list(result.resources), result.next_cursor

    async def run(
        self, group: ServerGroup, server: str | None, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        from codex_plugin_mcp.manager import dump

        cursor = text_argument(arguments, "cursor")
        if server is not None:
            try:
                entries, next_cursor = await self.page(group, server, cursor)
            except Exception as exc:
                raise ToolFailed(
                    f"{self.verb} failed: {self.verb} failed for `{server}`: {mcp_error(exc)}"
                ) from None
            payload: dict[str, Any] = {
                "server": server,
                self.kind: [{"server": server, **ordered(dump(e), self.keys)} for e in entries],
            }
            if next_cursor is not None:
                payload["nextCursor"] = next_cursor
            return payload
        if cursor is not None:
            raise ToolFailed("cursor can only be used when a server is specified")
        every: list[dict[str, Any]] = []
        for name in self.listed_servers(group):
            try:  # every page; a server that cannot answer is left out, as in the reference
                entries, next_cursor = await self.page(group, name, None)
                while next_cursor is not None:
                    more, next_cursor = await self.page(group, name, next_cursor)
                    entries.extend(more)
            except Exception:
                continue
            every.extend({"server": name, **ordered(dump(e), self.keys)} for e in entries)
        return {self.kind: every}


class ListResourceTemplates(ListResources):
    name = "list_mcp_resource_templates"
    description = (
        "Lists the resource templates (parameterized resource URIs) that the configured MCP "
        "servers offer, tagged with their server. Give `server` to list one server's, page by "
        "page."
    )
    kind = "resourceTemplates"
    keys = TEMPLATE_KEYS
    verb = "resources/templates/list"

    async def page(
        self, group: ServerGroup, server: str, cursor: str | None
    ) -> tuple[list[Any], str | None]:
        result = await group.handle(server).list_resource_templates(cursor)
        return list(result.resource_templates), result.next_cursor


class ReadResource(ResourceTool):
    name = "read_mcp_resource"
    description = (
        "Reads one resource of an MCP server: its server (as list_mcp_resources tags it) and "
        "its URI (one that list_mcp_resources returned)."
    )
    input_schema = {
        "type": "object",
        "properties": {"server": SERVER_PARAM,
                       "uri": {"type": "string", "description": "The resource's URI."}},
        "required": ["server", "uri"],
        "additionalProperties": False,
    }  # fmt: skip

    async def run(
        self, group: ServerGroup, server: str | None, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        from codex_plugin_mcp.manager import dump

        uri = text_argument(arguments, "uri")
        if not server or uri is None:
            raise ToolFailed("read_mcp_resource needs a server and a uri")
        try:
            result = await group.handle(server).read_resource(uri)
        except Exception as exc:
            raise ToolFailed(
                f"resources/read failed: resources/read failed for `{server}` ({uri}): "
                f"{mcp_error(exc)}"
            ) from None
        contents = [ordered(dump(content), CONTENTS_KEYS) for content in result.contents]
        return {"server": server, "uri": uri, "contents": contents}


def resource_tools(kernel: Kernel) -> list[ResourceTool]:
    return [ListResources(kernel), ListResourceTemplates(kernel), ReadResource(kernel)]
