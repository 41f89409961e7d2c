"""One websocket connection as a kernel ``Channel``: one JSON-RPC message per text frame, its
buffered input metered against the kernel's inbound budget.

Imported when a listener starts (``transport.py``), with the ``websockets`` library.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from codex_core.rpc.budget import InboundBudget

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

log = logging.getLogger(__name__)

#: A connection buffering less than this is never cut for the overall budget: a full budget
#: stops large uploads, not the small requests of other clients.
SMALL_MESSAGE = 1024 * 1024


class MeteredConnection(ServerConnection):
    """A websocket connection whose buffered input counts against the kernel's inbound budget.

    Bytes are held from the moment they are read off the socket until a message is handed to
    the kernel, which then holds the message itself (``codex_core.rpc.budget``). A client whose
    bytes would take the server over the budget is disconnected (a reset, as the reference
    resets a client that sends too much); clients sending small messages (under
    ``SMALL_MESSAGE``) are never cut, so the budget is exceeded by at most that much per
    connection. Bytes of the next
    message read together with the end of one are released with it: at most one read's worth
    per connection goes uncounted.
    """

    budget: InboundBudget

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffered = 0

    def data_received(self, data: bytes) -> None:
        small = self._buffered + len(data) <= SMALL_MESSAGE
        if not small and not self.budget.fits(len(data)):
            log.warning(
                "%s: inbound budget of %d bytes exhausted; dropping this connection",
                self.remote_address,
                self.budget.limit,
            )
            self.transport.abort()
            return
        self._buffered += len(data)
        self.budget.hold(len(data))
        super().data_received(data)

    def delivered(self) -> None:
        """A message was handed over: what was buffered for it is the kernel's to count now."""
        self.budget.release(self._buffered)
        self._buffered = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self.delivered()
        super().connection_lost(exc)


def metered(budget: InboundBudget) -> type[MeteredConnection]:
    return type("MeteredConnection", (MeteredConnection,), {"budget": budget})


class WebSocketChannel:
    """One websocket connection as the kernel sees it."""

    def __init__(self, websocket: ServerConnection, peer: str, kernel: Kernel) -> None:
        self._ws = websocket
        self.peer = peer
        self._kernel = kernel

    async def receive(self) -> str:
        while True:
            try:
                message = await self._ws.recv()
            except ConnectionClosed:
                raise anyio.EndOfStream from None
            if isinstance(self._ws, MeteredConnection):
                self._ws.delivered()
            if isinstance(message, str):
                return message
            # Binary frames are ignored silently, as the reference does.

    async def send(self, frames: Sequence[str]) -> None:
        try:
            for frame in frames:
                await self._ws.send(frame)
        except ConnectionClosed as exc:
            raise anyio.BrokenResourceError(str(exc)) from None

    async def aclose(self) -> None:
        code = 1001 if self._kernel.stopping else 1000
        await self._ws.close(code)
