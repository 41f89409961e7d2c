"""``codex_core.loopback_callback``: the server OAuth logins' browsers come back to.

The logins' own tests (the ChatGPT login plugin's, the MCP plugin's OAuth tests) drive it
through whole flows; these pin its rules on real sockets: one request per connection, closed
after the reply; a connection that says nothing, or not HTTP, closed unanswered without
stopping the server; serving ends with the first final reply.
"""

from __future__ import annotations

import socket
from functools import partial

import anyio
import anyio.abc
import pytest

from codex_core import loopback_callback
from codex_core.loopback_callback import Reply

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def ask(port: int, raw: bytes) -> bytes:
    """Send ``raw`` and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(raw)
        client.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := client.recv(4096):
            answer += chunk
    return answer


async def test_one_request_per_connection_until_the_final_reply() -> None:
    seen: list[str] = []

    async def handle(target: str) -> Reply:
        seen.append(target)
        final = target.startswith("/callback")
        return Reply(200 if final else 404, b"done" if final else b"no", final=final)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    answers: list[bytes] = []

    async def browser() -> None:
        for raw in (
            b"not http at all\r\n\r\n",  # refused unanswered; the server goes on
            b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /callback?code=c&state=s HTTP/1.1\r\nHost: x\r\n\r\n",
        ):
            answers.append(await anyio.to_thread.run_sync(ask, port, raw))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(browser)
            await loopback_callback.serve(listener, handle, read_seconds=5)
    await listener.aclose()
    assert seen == ["/favicon.ico", "/callback?code=c&state=s"]
    assert answers[0] == b""
    assert answers[1].startswith(b"HTTP/1.1 404 ") and answers[1].endswith(b"\r\n\r\nno")
    assert b"connection: close\r\n" in answers[2] and b"content-length: 4\r\n" in answers[2]
    assert answers[2].startswith(b"HTTP/1.1 200 ") and answers[2].endswith(b"done")


async def test_a_silent_connection_is_dropped_after_the_read_time() -> None:
    async def handle(target: str) -> Reply:
        return Reply(200, b"ok", final=True)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(partial(loopback_callback.serve, read_seconds=0.5), listener, handle)
            silent = await anyio.connect_tcp("127.0.0.1", port)
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await silent.receive()  # closed by the server, unanswered
            await silent.aclose()
            answer = await anyio.to_thread.run_sync(ask, port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await listener.aclose()
    assert answer.startswith(b"HTTP/1.1 200 ")
