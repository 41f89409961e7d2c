"""The ``windows-sandbox`` kernel plugin: ``windowsSandbox/readiness`` and ``/setupStart``.

The Windows sandbox is set up (elevated or not) only on Windows. Elsewhere the official server
reports it ``notConfigured``, accepts a setup request (``started: true``) and at once tells the
caller it failed with ``windowsSandbox/setupCompleted``; this plugin answers the same on every
platform, since codex-core has no Windows sandbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codex_core.hookspecs import hookimpl
from codex_core.protocol.wire import to_wire
from codex_core.rpc import RpcMethod

if TYPE_CHECKING:
    from codex_core.rpc import RequestContext

#: The reference's name of each setup mode in its refusal.
_MODE_NAMES = {"elevated": "elevated", "unelevated": "legacy"}


async def readiness(ctx: RequestContext, params: Any) -> dict[str, Any]:
    return {"status": "notConfigured"}


async def setup_start(ctx: RequestContext, params: Any) -> dict[str, Any]:
    mode = to_wire(params)["mode"]
    ctx.notify_after_reply(
        "windowsSandbox/setupCompleted",
        {
            "mode": mode,
            "success": False,
            "error": f"{_MODE_NAMES[mode]} Windows sandbox setup is only supported on Windows",
        },
    )
    return {"started": True}


@hookimpl
def codex_rpc_methods() -> list[RpcMethod]:
    return [
        RpcMethod("windowsSandbox/readiness", readiness),
        RpcMethod("windowsSandbox/setupStart", setup_start),
    ]
