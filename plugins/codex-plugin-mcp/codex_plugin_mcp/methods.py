"""The JSON-RPC methods: ``mcpServerStatus/list``, ``config/mcpServer/reload``,
``mcpServer/tool/call``, ``mcpServer/resource/read``, ``mcpServer/oauth/login`` and the
experimental ``mcpServer/event/stream/*``."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.rpc import INTERNAL_ERROR, RpcError, RpcMethod
from codex_core.rpc.errors import ClientErrorResponse, ServerRequestError, invalid_request
from codex_plugin_mcp.elicitation import ELICITATION_REQUEST
from codex_plugin_mcp.manager import (
    McpManager,
    ServerGroup,
    ServerHandle,
    ServerUnavailable,
    describe,
    dump,
)
from codex_plugin_mcp.tools import result_wire

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.rpc import RequestContext

log = logging.getLogger(__name__)

DEFAULT_PAGE = 100
LOGIN_COMPLETED = "mcpServer/oauthLogin/completed"


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


def status_entry(handle: ServerHandle, detail: str) -> dict[str, Any]:
    failed = handle.client is None
    tools = {} if failed else {tool.name: dump(tool) for tool in handle.tools}
    full = detail != "toolsAndAuthOnly" and not failed
    return {
        "name": handle.name, "runtimeStatus": None, "pluginId": None,
        "httpOrigin": handle.config.http_origin(),
        "serverInfo": None if failed else server_info(handle),
        "serverCapabilities": None if failed else handle.capabilities,
        "toolListMeta": None, "tools": tools,
        "toolsError": (handle.error or "MCP server is not running") if failed else None,
        "resources": [dump(r) for r in handle.resources] if full else [],
        "resourceTemplates": [dump(t) for t in handle.resource_templates] if full else [],
        "authStatus": handle.auth_status,
    }  # fmt: skip


def loaded_thread(ctx: RequestContext, thread_id: str | None) -> str | None:
    """The id of the loaded thread a request names (``None`` when it names none), refused as
    the reference refuses it: ``invalid thread id: ...`` or ``thread not found: ID``
    (-32600)."""
    if thread_id is None:
        return None
    threads = ctx.kernel.services.get("threads")
    if threads is None:
        raise invalid_request(f"thread not found: {thread_id}")
    thread_id = threads.thread_id(thread_id)
    if thread_id not in threads.threads:
        raise invalid_request(f"thread not found: {thread_id}")
    return str(thread_id)


def status_group(manager: McpManager, thread_id: str | None, name: str) -> ServerGroup:
    """Who reports on server ``name`` for a status list: the thread-less group (a fresh
    connection, as the reference lists even a server that crashed in the thread as it starts
    now), unless the thread's own table for it differs from the configured one."""
    if thread_id is None or manager.configs_for(thread_id).get(name) == manager.configs.get(name):
        return manager.shared
    return manager.group(thread_id)


async def list_status(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """The servers configured (for the thread named: its ``mcp_servers``), started by the
    thread-less group (silently: as in the reference, no ``mcpServer/startupStatus/updated``
    comes of a status list)."""
    manager = manager_of(ctx.kernel)
    thread_id = loaded_thread(ctx, params.thread_id)
    configs = manager.configs_for(thread_id)
    names = [name for name, config in configs.items() if config.enabled]
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
    groups = {name: status_group(manager, thread_id, name) for name in page}
    for name in page:
        if configs[name].problem:
            continue
        await groups[name].wait_started([name])
    handles = {name: groups[name].handles.get(name) for name in page}
    for name in page:
        handle = handles[name]
        if handle is None:  # an unusable table: reported with its problem
            config = configs[name]
            handle = ServerHandle(manager, config)
            handle.error = config.problem
        entries.append(status_entry(handle, params.detail or "full"))
    end = start + len(page)
    return {"data": entries, "nextCursor": str(end) if end < len(names) else None}


async def reload(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """Re-read ``mcp_servers`` from the config files; in every loaded thread, changed, added
    and failed servers start again (in the background) and those that stay ready are
    announced ready again, as the reference announces them."""
    from codex_core.config import load_config

    config = ctx.kernel.config
    fresh = await anyio.to_thread.run_sync(
        load_config, config.codex_home, config.overrides, None, config.sections
    )
    manager = manager_of(ctx.kernel)
    manager.configure(fresh.effective, restart_failed=True)
    for group in manager.threads.values():
        kept = [handle for handle in group.handles.values() if handle.state == "ready"]
        group.ensure_started()
        for handle in kept:
            handle.announce()
    return {}


async def _handle(ctx: RequestContext, server: str, thread_id: str | None) -> ServerHandle:
    """The running server a client names, the named thread's own (the thread-less group's
    without one), refused with the reference's codes: a thread that is not loaded first
    (-32600), then an unknown or disabled server and one that did not start (-32603, the
    server's side)."""
    group = manager_of(ctx.kernel).group(loaded_thread(ctx, thread_id))
    config = group.configs.get(server)
    if config is None or not config.enabled:
        raise RpcError(INTERNAL_ERROR, f"unknown MCP server '{server}'")
    try:
        handle = group.handle(server)
        await handle.ready_client()
    except ServerUnavailable as exc:
        raise RpcError(INTERNAL_ERROR, f"failed to get client: {exc}") from None
    return handle


async def tool_call(ctx: RequestContext, params: Any) -> dict[str, Any]:
    handle = await _handle(ctx, params.server, params.thread_id)
    arguments = params.arguments if isinstance(params.arguments, dict) else None

    async def ask(elicitation: dict[str, Any]) -> dict[str, Any]:
        """The server elicits mid-call: the calling client is asked."""
        wire = {"threadId": params.thread_id, "turnId": None, **elicitation}
        try:
            answer = await ctx.connection.request(ELICITATION_REQUEST, wire)
        except ClientErrorResponse:
            return {"action": "decline"}
        except ServerRequestError:
            return {"action": "cancel"}
        return answer if isinstance(answer, dict) else {}

    try:
        raw = await handle.call_tool(params.tool, arguments, meta=params.field_meta, ask=ask)
    except Exception as exc:  # the server's side, as the reference answers it (-32603)
        message = f"tool call failed for `{params.server}/{params.tool}`: {describe(exc)}"
        raise RpcError(INTERNAL_ERROR, message) from None
    wire = result_wire(raw)
    wire["isError"] = bool(raw.is_error)
    return wire


async def resource_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """``resources/read`` of a server. The server's own error (an unknown URI: -32602 with its
    data) is the answer, passed through as the reference does; a transport failure or a
    timeout is -32603."""
    from mcp.shared.exceptions import MCPError

    handle = await _handle(ctx, params.server, params.thread_id)
    try:
        raw = await handle.read_resource(params.uri)
    except MCPError as exc:
        raise RpcError(exc.code, exc.message, exc.data) from None
    except Exception as exc:
        raise RpcError(
            INTERNAL_ERROR,
            f"resource read failed for `{params.server}` {params.uri}: {describe(exc)}",
        ) from None
    return {"contents": [dump(content) for content in raw.contents], "originCallId": None}


async def oauth_login(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """Start the browser flow and answer with its URL; ``mcpServer/oauthLogin/completed``
    follows when the browser comes back, the flow fails or ``timeoutSecs`` pass. A login that
    succeeds restarts the server with its tokens."""
    from codex_plugin_mcp.oauth import DEFAULT_LOGIN_TIMEOUT, OAuthLogin

    manager = manager_of(ctx.kernel)
    name = params.name
    config = manager.configs.get(name)
    if config is None:
        raise invalid_request(f"No MCP server named '{name}' found.")
    if config.url is None:
        raise invalid_request("OAuth login is only supported for streamable HTTP servers.")
    try:
        login = await OAuthLogin.start(config, manager.oauth, manager.credentials, params.scopes)
    except Exception as exc:
        log.debug("MCP server %s: OAuth login failed to start", name, exc_info=True)
        message = f"failed to login to MCP server '{name}': {describe(exc)}"
        raise RpcError(INTERNAL_ERROR, message) from None
    login_id = str(uuid.uuid4())
    timeout = max(1, params.timeout_secs or DEFAULT_LOGIN_TIMEOUT)

    async def complete() -> None:
        error: str | None = None
        try:
            await login.finish(timeout)
        except Exception as exc:
            log.warning("Failed to complete OAuth login for '%s': %s", name, describe(exc))
            error = describe(exc)
        else:
            manager.restart(name)
        done = {"name": name, "threadId": params.thread_id, "loginId": login_id,
                "success": error is None}  # fmt: skip
        ctx.kernel.broadcast(LOGIN_COMPLETED, done if error is None else {**done, "error": error})

    ctx.kernel.start_soon(complete, name=f"mcp oauth login {name}", service=True)
    return {"authorizationUrl": login.authorization_url, "loginId": login_id}


async def event_stream_start(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """Event subscriptions are a feature of the reference's hosted apps server, which
    codex-core does not have: refused for every server, as the reference refuses the others."""
    raise invalid_request("MCP event subscriptions are only supported for hosted apps")


async def event_stream_stop(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """Nothing to stop (no subscription ever starts), which the reference answers with ``{}``."""
    return {}


def rpc_methods() -> list[RpcMethod]:
    return [
        RpcMethod("mcpServerStatus/list", list_status),
        RpcMethod("config/mcpServer/reload", reload),
        RpcMethod("mcpServer/tool/call", tool_call),
        RpcMethod("mcpServer/resource/read", resource_read),
        RpcMethod("mcpServer/oauth/login", oauth_login),
        RpcMethod("mcpServer/event/stream/start", event_stream_start, experimental=True),
        RpcMethod("mcpServer/event/stream/stop", event_stream_stop, experimental=True),
    ]
