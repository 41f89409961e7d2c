"""An in-process channel: a pair of memory streams instead of a pipe or a socket.

Embedding hosts and tests use it to talk to a kernel in the same process with exactly the
code path a stdio or websocket client goes through (framing aside).
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

#: Frames buffered in each direction; the kernel's own queues do the real bounding.
BUFFER = 1024


class MemoryChannel:
    def __init__(
        self,
        peer: str,
        incoming: MemoryObjectReceiveStream[str],
        outgoing: MemoryObjectSendStream[str],
    ) -> None:
        self.peer = peer
        self._incoming = incoming
        self._outgoing = outgoing

    async def receive(self) -> str:
        return await self._incoming.receive()

    async def send(self, frames: Sequence[str]) -> None:
        for frame in frames:
            await self._outgoing.send(frame)

    async def aclose(self) -> None:
        await self._outgoing.aclose()
        await self._incoming.aclose()


def channel_pair() -> tuple[MemoryChannel, MemoryChannel]:
    """(client side, server side), connected back to back."""
    to_server_send, to_server_receive = anyio.create_memory_object_stream[str](BUFFER)
    to_client_send, to_client_receive = anyio.create_memory_object_stream[str](BUFFER)
    client = MemoryChannel("in-process server", to_client_receive, to_server_send)
    server = MemoryChannel("in-process", to_server_receive, to_client_send)
    return client, server
