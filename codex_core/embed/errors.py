"""The exceptions the embedding API raises, so a host catches one type per kind of failure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codex_core.rpc.errors import RpcError

if TYPE_CHECKING:
    from codex_core.protocol.models import Turn


class CodexError(RpcError):
    """The server answered a request with a JSON-RPC error: ``code``, ``message``, ``data``.

    A subclass of ``RpcError`` (what ``Client.request`` raises), so code written against the
    low-level client keeps catching it; the method is kept for the message, since an embedder
    sees no request of its own.
    """

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message, data)
        self.method = method

    def __str__(self) -> str:
        return f"{self.method} failed: {self.message} (code {self.code})"


class TurnFailedError(Exception):
    """A turn ended ``failed`` (the model API refused, the provider is missing, ...).

    ``turn`` is the completed ``Turn``; ``turn.error.message`` says what went wrong, as the
    server reported it.
    """

    def __init__(self, turn: Turn) -> None:
        message = turn.error.message if turn.error is not None else "no error reported"
        super().__init__(f"turn {turn.id} failed: {message}")
        self.turn = turn
