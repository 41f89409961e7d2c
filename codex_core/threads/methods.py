"""Thread methods of the first slice: start, read, list and the loaded list.

Threads live in memory for now, with the settings they were started with; rollout files,
turns and resume arrive with the agent core (until then no thread is materialized, so
``thread/list`` is empty, as the official server's is before a thread's first turn). The shapes
are the official server's, so clients already work against them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_core import __version__
from codex_core.hookspecs import hookimpl
from codex_core.models.methods import default_model
from codex_core.rpc import INVALID_REQUEST, RequestContext, RpcError, RpcMethod
from codex_core.threads.ids import parse_thread_id, uuid7

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.rpc.connection import Connection

_SANDBOXES: dict[str, dict[str, Any]] = {
    "read-only": {"type": "readOnly", "networkAccess": False},
    "workspace-write": {
        "type": "workspaceWrite",
        "writableRoots": [],
        "networkAccess": False,
        "excludeTmpdirEnvVar": False,
        "excludeSlashTmp": False,
    },
    "danger-full-access": {"type": "dangerFullAccess"},
}


@dataclass(slots=True)
class LoadedThread:
    thread: dict[str, Any]
    settings: dict[str, Any]
    subscribers: set[Connection] = field(default_factory=set)
    #: Whether the thread has a rollout on disk; like the official server, a thread is only
    #: written (and listed by ``thread/list``) once its first turn starts.
    materialized: bool = False


class ThreadRegistry:
    """The threads this server has loaded, by id."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.threads: dict[str, LoadedThread] = {}

    async def start(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        config = self.kernel.config
        cwd = str(Path(params.cwd) if params.cwd else Path.cwd())
        model = params.model or config.get("model") or default_model()
        provider = params.model_provider or config.get("model_provider") or "openai"
        sandbox_mode = params.sandbox or config.get("sandbox_mode") or "read-only"
        sandbox_mode = getattr(sandbox_mode, "value", sandbox_mode)
        approval = params.approval_policy or config.get("approval_policy") or "on-request"
        approval = getattr(approval, "value", approval)
        now = int(time.time())
        thread_id = uuid7()
        stamp = datetime.now(UTC)
        path = (
            self.kernel.codex_home
            / "sessions"
            / stamp.strftime("%Y/%m/%d")
            / f"rollout-{stamp.strftime('%Y-%m-%dT%H-%M-%S')}-{thread_id}.jsonl"
        )
        thread = {
            "id": thread_id,
            "environments": [
                {"environmentId": "local", "cwd": cwd, "runtimeWorkspaceRoots": [cwd]}
            ],
            "extra": None,
            "sessionId": thread_id,
            "forkedFromId": None,
            "attachedToThreadId": None,
            "parentThreadId": None,
            "preview": "",
            "ephemeral": bool(params.ephemeral),
            "section": None,
            "sectionEnteredAt": None,
            "projectId": None,
            "historyMode": "paginated",
            "modelProvider": provider,
            "model": model,
            "reasoningEffort": None,
            "createdAt": now,
            "updatedAt": now,
            "recencyAt": now,
            "status": {"type": "idle"},
            "path": None if params.ephemeral else str(path),
            "cwd": cwd,
            "cliVersion": __version__,
            "originator": ctx.connection.client_name,
            "source": "vscode",
            "canAcceptDirectInput": True,
            "threadSource": None,
            "agentNickname": None,
            "agentRole": None,
            "gitInfo": None,
            "name": None,
            "daybreakEnabled": None,
            "turns": [],
        }
        settings = {
            "model": model,
            "modelProvider": provider,
            "serviceTier": None,
            "disabledPluginIds": [],
            "cwd": cwd,
            "runtimeWorkspaceRoots": [cwd],
            "instructionSources": [],
            "approvalPolicy": approval,
            "approvalsReviewer": config.get("approvals_reviewer") or "user",
            "sandbox": _SANDBOXES.get(sandbox_mode, _SANDBOXES["read-only"]),
            "activePermissionProfile": {"id": f":{sandbox_mode}", "extends": None},
            "reasoningEffort": None,
            "multiAgentMode": "explicitRequestOnly",
        }
        loaded = self.threads[thread_id] = LoadedThread(thread, settings, {ctx.connection})
        ctx.notify_after_reply("thread/started", {"thread": loaded.thread})
        return {"thread": thread, **settings}

    def get(self, raw_id: str) -> LoadedThread:
        try:
            thread_id = parse_thread_id(raw_id)
        except ValueError as exc:
            raise RpcError(INVALID_REQUEST, str(exc)) from None
        loaded = self.threads.get(thread_id)
        if loaded is None:
            raise RpcError(INVALID_REQUEST, f"thread not loaded: {thread_id}")
        return loaded

    async def read(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        return {"thread": self.get(params.thread_id).thread, "readState": None}

    async def list(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        threads = sorted(
            (t.thread for t in self.threads.values() if t.materialized),
            key=lambda thread: thread["createdAt"],
            reverse=True,
        )
        return {"data": threads, "readStates": {}, "nextCursor": None, "backwardsCursor": None}

    async def loaded_list(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        return {"data": list(self.threads), "nextCursor": None}

    def forget(self, connection: Connection) -> None:
        for loaded in self.threads.values():
            loaded.subscribers.discard(connection)


@hookimpl
def codex_rpc_methods(kernel: Kernel) -> list[RpcMethod]:
    registry = ThreadRegistry(kernel)
    kernel.services["threads"] = registry
    return [
        RpcMethod("thread/start", registry.start),
        RpcMethod("thread/read", registry.read),
        RpcMethod("thread/list", registry.list),
        RpcMethod("thread/loaded/list", registry.loaded_list),
    ]


@hookimpl
def codex_connection_closed(connection: Connection) -> None:
    registry: ThreadRegistry | None = connection.kernel.services.get("threads")
    if registry is not None:
        registry.forget(connection)
