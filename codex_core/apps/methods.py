"""The ``apps`` kernel plugin: ``app/list``, ``app/read`` and ``app/installed``.

Apps (ChatGPT connectors) are behind the ``apps`` feature, off by default in the official
server; with it off the official server lists no app, reads every requested id as missing
and reports nothing installed, after the same checks of the params this module makes (a
``threadId`` must name a loaded thread, ``app/read`` takes at most 100 ids). That is what is
answered here, whatever the feature says: the connector directory and the apps' MCP runtime
(``{chatgpt_base_url}/connectors/directory/list``, ``/ps/apps/batch``, ``/ps/mcp``) are not
implemented yet, see docs/apps.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codex_core.hookspecs import hookimpl
from codex_core.rpc import INVALID_PARAMS, INVALID_REQUEST, RpcError, RpcMethod

if TYPE_CHECKING:
    from codex_core.rpc import RequestContext

#: The most ids ``app/read`` takes in one request.
MAX_READ_IDS = 100


def _check_thread(ctx: RequestContext, thread_id: str | None) -> None:
    """A ``threadId`` (whose configuration decides which apps apply) must be loaded."""
    if thread_id is None:
        return
    from codex_core.threads.ids import parse_thread_id, reference_uuid_error

    problem = reference_uuid_error(thread_id)
    if problem is not None:
        raise RpcError(INVALID_REQUEST, f"invalid thread id: {problem}")
    canonical = parse_thread_id(thread_id)
    registry = ctx.kernel.services.get("threads")
    if canonical not in getattr(registry, "threads", {}):
        raise RpcError(INVALID_REQUEST, f"thread not found: {canonical}")


async def app_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    _check_thread(ctx, params.thread_id)
    return {"data": [], "nextCursor": None}


async def app_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    if len(params.app_ids) > MAX_READ_IDS:
        raise RpcError(INVALID_PARAMS, f"app/read accepts at most {MAX_READ_IDS} appIds")
    _check_thread(ctx, params.thread_id)
    # Repeated ids once each, in the order first asked for.
    return {"apps": [], "missingAppIds": list(dict.fromkeys(params.app_ids))}


async def app_installed(ctx: RequestContext, params: Any) -> dict[str, Any]:
    _check_thread(ctx, params.thread_id)
    return {"apps": []}


@hookimpl
def codex_rpc_methods() -> list[RpcMethod]:
    return [
        RpcMethod("app/list", app_list),
        RpcMethod("app/read", app_read),
        RpcMethod("app/installed", app_installed),
    ]
