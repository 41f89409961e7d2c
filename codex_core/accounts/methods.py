"""``account/read``: the stored login, read from ``$CODEX_HOME/auth.json``.

The file has the official server's layout, so a login made with the official CLI is seen here.
Login flows (API key, ChatGPT, device code) are auth-provider plugins and write this file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

from codex_core.hookspecs import hookimpl
from codex_core.rpc import RequestContext, RpcMethod


def read_auth(codex_home: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((codex_home / "auth.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def account_of(auth: dict[str, Any] | None) -> dict[str, Any] | None:
    if not auth:
        return None
    if auth.get("OPENAI_API_KEY"):
        return {"type": "apiKey"}
    return None


async def account_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    auth = await anyio.to_thread.run_sync(read_auth, ctx.kernel.codex_home)
    return {
        "account": account_of(auth),
        "userId": None,
        "requiresOpenaiAuth": ctx.kernel.config.get("model_provider") in (None, "openai"),
        "workspaceRouting": None,
    }


@hookimpl
def codex_rpc_methods() -> list[RpcMethod]:
    return [RpcMethod("account/read", account_read)]
