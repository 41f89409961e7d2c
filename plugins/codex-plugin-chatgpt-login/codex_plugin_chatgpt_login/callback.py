"""The loopback HTTP server the browser comes back to: ``127.0.0.1:PORT``, HTTP/1.1 via h11.

It answers one request per connection (``Connection: close``, as the official login server
does so that no idle keep-alive socket holds a later login up) and stops after the first reply
marked ``final``. Binding follows the official server: a busy port is asked to ``/cancel`` (an
older login server, perhaps another process's), retried for two seconds, and the default port
1455 falls back to 1457, the other port the issuer accepts in redirect URIs.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import anyio.abc

log = logging.getLogger(__name__)

DEFAULT_PORT = 1455
FALLBACK_PORT = 1457
BIND_ATTEMPTS = 10
BIND_RETRY_SECONDS = 0.2
#: A browser that connects has this long to send its request.
REQUEST_READ_SECONDS = 30.0
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


async def bind(port: int) -> Listener:
    """Listen on ``127.0.0.1:port`` (0: any free port); raises ``OSError`` when it cannot."""
    candidates = (port, FALLBACK_PORT) if port == DEFAULT_PORT else (port,)
    for candidate in candidates:
        for attempt in range(BIND_ATTEMPTS):
            try:
                return await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=candidate)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
            if attempt == 0 and candidate == port:
                await _ask_to_cancel(candidate)
            await anyio.sleep(BIND_RETRY_SECONDS)
        log.warning("login callback port %d is in use", candidate)
    raise OSError(errno.EADDRINUSE, f"Port 127.0.0.1:{candidates[-1]} is already in use")


async def _ask_to_cancel(port: int) -> None:
    import httpx

    try:
        async with httpx.AsyncClient(timeout=2.0) as http:
            await http.get(f"http://127.0.0.1:{port}/cancel")
    except httpx.HTTPError as exc:
        log.info("failed to cancel the previous login server: %s", exc)


def port_of(listener: Listener) -> int:
    return int(listener.extra(anyio.abc.SocketAttribute.local_port))


async def serve(listener: Listener, handle: Handler) -> None:
    """Answer requests with ``handle(target)`` until a final reply went out."""
    async with anyio.create_task_group() as group:

        async def connection(stream: anyio.abc.SocketStream) -> None:
            async with stream:
                final = await _exchange(stream, handle)
            if final:
                group.cancel_scope.cancel()

        await listener.serve(connection, task_group=group)


async def _exchange(stream: anyio.abc.SocketStream, handle: Handler) -> bool:
    import h11

    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)
    request: h11.Request | None = None
    try:
        with anyio.fail_after(REQUEST_READ_SECONDS):
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
