"""The loopback HTTP server an OAuth login's browser comes back to, shared by every login.

A login (ChatGPT's, an MCP server's) listens on ``127.0.0.1``, sends the user's browser to the
issuer, and waits for the redirect to its callback URL. ``serve`` answers that: one request
per connection (``Connection: close``, as the official login servers do, so no idle keep-alive
socket holds a later login up), each answered by the login's ``handle(target)``, until a reply
marked ``final`` went out. A connection that sends no request in time, or not HTTP, is closed
unanswered. HTTP/1.1 is parsed by h11 (which httpx already brings), imported by the first
request, not when the server starts.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import anyio.abc

log = logging.getLogger(__name__)

#: A browser that connects has this long to send its request.
READ_SECONDS = 30.0
MAX_REQUEST_BYTES = 64 * 1024


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: Stop serving once this reply is sent.
    final: bool = False


Handler = Callable[[str], Awaitable[Reply]]
Listener = anyio.abc.Listener[anyio.abc.SocketStream]


async def serve(listener: Listener, handle: Handler, *, read_seconds: float = READ_SECONDS) -> None:
    """Answer requests with ``handle(target)`` until a final reply went out."""
    async with anyio.create_task_group() as group:

        async def connection(stream: anyio.abc.SocketStream) -> None:
            async with stream:
                final = await _exchange(stream, handle, read_seconds)
            if final:
                group.cancel_scope.cancel()

        await listener.serve(connection, task_group=group)


async def _exchange(stream: anyio.abc.SocketStream, handle: Handler, read_seconds: float) -> bool:
    import h11

    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)
    request: h11.Request | None = None
    try:
        with anyio.fail_after(read_seconds):
            while request is None:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    try:
                        conn.receive_data(await stream.receive())
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        conn.receive_data(b"")
                elif isinstance(event, h11.Request):
                    request = event
                else:
                    return False
    except (h11.RemoteProtocolError, TimeoutError):
        return False
    reply = await handle(request.target.decode("latin-1"))
    headers = [*reply.headers, ("content-length", str(len(reply.body))), ("connection", "close")]
    try:
        await stream.send(conn.send(h11.Response(status_code=reply.status, headers=headers)))
        await stream.send(conn.send(h11.Data(data=reply.body)))
        await stream.send(conn.send(h11.EndOfMessage()))
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        log.info("the browser left before the login server's reply")
    return reply.final
