"""The JSON-RPC handlers, with the official server's answers to bad requests."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from codex_core.rpc import RpcError, RpcMethod
from codex_core.rpc.errors import INTERNAL_ERROR, INVALID_REQUEST
from codex_plugin_file_search.search import search
from codex_plugin_file_search.sessions import Sessions

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.protocol.models import (
        FuzzyFileSearchParams,
        FuzzyFileSearchSessionStartParams,
        FuzzyFileSearchSessionStopParams,
        FuzzyFileSearchSessionUpdateParams,
    )
    from codex_core.rpc import RequestContext


class FileSearchMethods:
    """``fuzzyFileSearch`` and the ``fuzzyFileSearch/session*`` methods of one kernel."""

    def __init__(self, kernel: Kernel) -> None:
        self.sessions = Sessions(kernel)
        #: Running ``fuzzyFileSearch`` requests by cancellation token (any client's, as on the
        #: official server).
        self.pending: dict[str, threading.Event] = {}

    def rpc_methods(self) -> list[RpcMethod]:
        return [
            RpcMethod("fuzzyFileSearch", self.fuzzy_file_search),
            RpcMethod("fuzzyFileSearch/sessionStart", self.session_start, experimental=True),
            RpcMethod("fuzzyFileSearch/sessionUpdate", self.session_update, experimental=True),
            RpcMethod("fuzzyFileSearch/sessionStop", self.session_stop, experimental=True),
        ]

    async def fuzzy_file_search(
        self, ctx: RequestContext, params: FuzzyFileSearchParams
    ) -> dict[str, Any]:
        cancelled = threading.Event()
        key = None
        if params.cancellation_token is not None:
            key = params.cancellation_token
            earlier = self.pending.get(key)
            if earlier is not None:
                earlier.set()
            self.pending[key] = cancelled
        try:
            files = await anyio.to_thread.run_sync(
                search, params.query, list(params.roots), cancelled, abandon_on_cancel=True
            )
        finally:
            cancelled.set()  # a client gone mid-search stops the abandoned walk
            if key is not None and self.pending.get(key) is cancelled:
                del self.pending[key]
        return {"files": files}

    async def session_start(
        self, ctx: RequestContext, params: FuzzyFileSearchSessionStartParams
    ) -> dict[str, Any]:
        if not params.session_id:
            raise RpcError(INVALID_REQUEST, "sessionId must not be empty")
        if not params.roots:
            raise RpcError(
                INTERNAL_ERROR,
                "failed to start fuzzy file search session: "
                "at least one search directory is required",
            )
        self.sessions.start(params.session_id, list(params.roots))
        return {}

    async def session_update(
        self, ctx: RequestContext, params: FuzzyFileSearchSessionUpdateParams
    ) -> dict[str, Any]:
        session = self.sessions.get(params.session_id)
        if session is None:
            raise RpcError(
                INVALID_REQUEST, f"fuzzy file search session not found: {params.session_id}"
            )
        session.update(params.query)
        return {}

    async def session_stop(
        self, ctx: RequestContext, params: FuzzyFileSearchSessionStopParams
    ) -> dict[str, Any]:
        self.sessions.stop(params.session_id)
        return {}
