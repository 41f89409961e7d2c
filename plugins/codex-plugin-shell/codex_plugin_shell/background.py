"""``thread/backgroundTerminals/list`` and ``/clean``: the model's long-running processes.

The official server keeps a command the model started running in the background after its
tool call returns (unified exec sessions), lists them per thread, and ``clean`` (the TUI's
``/stop``) kills them. ``exec_command`` here runs every command to completion (or its
``timeout_ms``) within the tool call, so no process of the model outlives its call: a loaded
thread always has no background terminal, and cleaning has nothing to stop. Both methods
still refuse what the reference refuses, in its order: a thread id that is not a UUID, a
thread that is not loaded, then (``list``) a cursor that is not an ``i32`` (a process id).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from codex_core.rpc import INVALID_REQUEST, RequestContext, RpcError

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
        self._loaded(params.thread_id)
        if params.cursor is not None:
            check_cursor(params.cursor)
        return {"data": [], "nextCursor": None}

    async def clean(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        self._loaded(params.thread_id)
        return {}


def check_cursor(cursor: str) -> None:
    """A cursor as the reference parses it (a process id, Rust ``i32``), worded as Rust does."""
    if not cursor:
        raise RpcError(INVALID_REQUEST, "invalid cursor: cannot parse integer from empty string")
    if _INTEGER.fullmatch(cursor) is None:
        raise RpcError(INVALID_REQUEST, "invalid cursor: invalid digit found in string")
    value = int(cursor)
    if value not in _I32:
        side = "large" if value > 0 else "small"
        raise RpcError(INVALID_REQUEST, f"invalid cursor: number too {side} to fit in target type")
