"""``thread/backgroundTerminals/list|clean|terminate``: the model's long-running processes.

A command of the model still running when its ``exec_command`` call yields is a unified exec
session (``codex_plugin_shell.unified_exec``): a background terminal of its thread until it
exits, the model reads its exit, or the client stops it. ``list`` shows the thread's running
ones by session id (``osPid``, ``cpuPercent`` and ``rssKb`` null, as the reference answers
them here), paged by session id; ``terminate`` kills one (``terminated: false`` for an id the
thread does not have, an error for one that is not an ``i32``); ``clean`` (the TUI's
``/stop``) kills them all. Neither sends a
notification of its own: the item of a session whose turn is still running completes as the
process ends. All three refuse what the reference refuses, in its order: a thread id that is
not a UUID, a thread that is not loaded, then (``list``) a cursor that is not an ``i32``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from codex_core.rpc import INVALID_REQUEST, RequestContext, RpcError
from codex_plugin_shell import unified_exec

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

_INTEGER = re.compile(r"[+-]?[0-9]+")
_I32 = range(-(2**31), 2**31)


class BackgroundTerminals:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def _loaded(self, raw_id: str) -> str:
        """The canonical id of a loaded thread, or the reference's refusal."""
        threads = self.kernel.services.get("threads")
        if threads is None:
            raise RpcError(INVALID_REQUEST, "threads are not available")
        thread_id: str = threads.thread_id(raw_id)
        if thread_id not in threads.threads:
            raise RpcError(INVALID_REQUEST, f"thread not found: {thread_id}")
        return thread_id

    async def list(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        thread_id = self._loaded(params.thread_id)
        after = parse_i32(params.cursor, "cursor") if params.cursor is not None else None
        running = unified_exec.sessions(self.kernel).running(thread_id)
        if after is not None:
            running = [session for session in running if session.id > after]
        page = running if not params.limit else running[: params.limit]
        more = len(page) < len(running)
        return {
            "data": [terminal(session) for session in page],
            "nextCursor": page[-1].process_id if more and page else None,
        }

    async def clean(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        thread_id = self._loaded(params.thread_id)
        store = unified_exec.sessions(self.kernel)
        for session in store.running(thread_id):
            store.terminate(session)
        return {}

    async def terminate(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        thread_id = self._loaded(params.thread_id)
        wanted = parse_i32(params.process_id, "background terminal process id")
        store = unified_exec.sessions(self.kernel)
        session = next((s for s in store.running(thread_id) if s.id == wanted), None)
        if session is not None:
            store.terminate(session)
        return {"terminated": session is not None}


def terminal(session: unified_exec.Session) -> dict[str, Any]:
    """A ``ThreadBackgroundTerminal``."""
    return {
        "itemId": session.item["id"],
        "processId": session.process_id,
        "command": session.command,
        "cwd": session.cwd,
        "osPid": None,
        "cpuPercent": None,
        "rssKb": None,
    }


def parse_i32(text: str, what: str) -> int:
    """A process id (a cursor is one) as the reference parses it (Rust ``i32``), refused in
    Rust's words after ``invalid <what>: ``."""
    if not text:
        raise RpcError(INVALID_REQUEST, f"invalid {what}: cannot parse integer from empty string")
    if _INTEGER.fullmatch(text) is None:
        raise RpcError(INVALID_REQUEST, f"invalid {what}: invalid digit found in string")
    value = int(text)
    if value not in _I32:
        side = "large" if value > 0 else "small"
        raise RpcError(INVALID_REQUEST, f"invalid {what}: number too {side} to fit in target type")
    return value
