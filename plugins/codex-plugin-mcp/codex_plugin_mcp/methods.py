"""The JSON-RPC methods: ``mcpServerStatus/list``, ``config/mcpServer/reload``,
``mcpServer/tool/call`` and ``mcpServer/resource/read``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from codex_core.rpc import RpcMethod
from codex_core.rpc.errors import invalid_request
from codex_plugin_mcp.manager import McpManager, ServerHandle, ServerUnavailable, describe, dump
from codex_plugin_mcp.tools import result_wire

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.rpc import RequestContext

DEFAULT_PAGE = 100


def manager_of(kernel: Kernel) -> McpManager:
    manager = kernel.services.get("mcp")
    if manager is None:
        manager = kernel.services["mcp"] = McpManager(kernel)
    return manager


def server_info(handle: ServerHandle) -> dict[str, Any] | None:
    info = handle.server_info
    if info is None:
        return None
    return {"name": info.get("name", handle.name), "title": info.get("title"),
            "version": info.get("version", ""), "description": info.get("description"),
            "icons": info.get("icons"), "websiteUrl": info.get("websiteUrl")}  # fmt: skip


def auth_status(handle: ServerHandle) -> str:
    if handle.config.url is None:
        return "unsupported"
    return "bearerToken" if handle.config.bearer_token_env_var else "unsupported"


def status_entry(handle: ServerHandle, detail: str) -> dict[str, Any]:
    failed = handle.client is None
    tools = {} if failed else {tool.name: dump(tool) for tool in handle.tools}
    full = detail != "toolsAndAuthOnly" and not failed
    return {
        "name": handle.name, "runtimeStatus": None, "pluginId": None,
        "httpOrigin": handle.config.http_origin(),
        "serverInfo": server_info(handle) if full else None,
        "serverCapabilities": handle.capabilities if full else None,
        "toolListMeta": None, "tools": tools,
        "toolsError": (handle.error or "MCP server is not running") if failed else None,
        "resources": [dump(r) for r in handle.resources] if full else [],
        "resourceTemplates": [dump(t) for t in handle.resource_templates] if full else [],
        "authStatus": auth_status(handle),
    }  # fmt: skip


async def list_status(ctx: RequestContext, params: Any) -> dict[str, Any]:
    manager = manager_of(ctx.kernel)
    names = [name for name, config in manager.configs.items() if config.enabled]
    if params.server_name is not None:
        names = [name for name in names if name == params.server_name]
    start = 0
    if params.cursor is not None:
        if not params.cursor.isdigit() or int(params.cursor) > len(names):
            raise invalid_request(f"invalid cursor: {params.cursor}")
        start = int(params.cursor)
    limit = params.limit or DEFAULT_PAGE
    page = names[start : start + limit]
    entries: list[dict[str, Any]] = []
    for name in page:
        if manager.configs[name].problem:
            continue
        await manager.wait_started([name])
    handles = {name: manager.handles.get(name) for name in page}
    for name in page:
        handle = handles[name]
        if handle is None:  # an unusable table: reported with its problem
            config = manager.configs[name]
            handle = ServerHandle(manager, config)
            handle.error = config.problem
        entries.append(status_entry(handle, params.detail or "full"))
    end = start + len(page)
    return {"data": entries, "nextCursor": str(end) if end < len(names) else None}


async def reload(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """Re-read ``mcp_servers`` from the config files; changed, added and failed servers
    start again (in the background)."""
    from codex_core.config import load_config

    config = ctx.kernel.config
    fresh = await anyio.to_thread.run_sync(
        load_config, config.codex_home, config.overrides, None, config.sections
    )
    manager = manager_of(ctx.kernel)
    manager.configure(fresh.effective, restart_failed=True)
    manager.ensure_started()
    return {}


async def _handle(ctx: RequestContext, server: str) -> ServerHandle:
    try:
        handle = manager_of(ctx.kernel).handle(server)
        await handle.ready_client()
    except ServerUnavailable as exc:
        raise invalid_request(str(exc)) from None
    return handle


async def tool_call(ctx: RequestContext, params: Any) -> dict[str, Any]:
    handle = await _handle(ctx, params.server)
    arguments = params.arguments if isinstance(params.arguments, dict) else None
    try:
        raw = await handle.call_tool(params.tool, arguments, meta=params.field_meta)
    except Exception as exc:
        raise invalid_request(
            f"tool call failed for `{params.server}/{params.tool}`: {describe(exc)}"
        ) from None
    wire = result_wire(raw)
    wire["isError"] = bool(raw.is_error)
    return wire


async def resource_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    handle = await _handle(ctx, params.server)
    try:
        raw = await handle.read_resource(params.uri)
    except Exception as exc:
        raise invalid_request(
            f"resource read failed for `{params.server}` {params.uri}: {describe(exc)}"
        ) from None
    return {"contents": [dump(content) for content in raw.contents], "originCallId": None}


def rpc_methods() -> list[RpcMethod]:
    return [
        RpcMethod("mcpServerStatus/list", list_status),
        RpcMethod("config/mcpServer/reload", reload),
        RpcMethod("mcpServer/tool/call", tool_call),
        RpcMethod("mcpServer/resource/read", resource_read),
    ]
