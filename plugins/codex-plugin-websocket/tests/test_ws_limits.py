"""Oversized input: per-message limits as the reference's, an overall budget, memory given back.

The reference (0.169.0) ends a connection whose frame reaches 16 MiB or whose message reaches
64 MiB and goes on serving everyone else; so does this server (with a 1009 close instead of a
reset). All connections together hold at most ``CODEX_CORE_INBOUND_BUDGET`` bytes of what
clients sent (small messages excepted), and a large message's memory is returned to the OS
once it is done with.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from codex_plugin_websocket.transport import MAX_FRAME, MAX_MESSAGE
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from codex_core.testing.pytest_plugin import WsServerFactory

from .conftest import WsServer, initialize, request, response_to

MIB = 1024 * 1024


def _message(size: int, request_id: int = 1) -> str:
    """A request of exactly ``size`` bytes (an unknown method: the reply is small)."""
    head, tail = f'{{"id":{request_id},"method":"fuzz/big","params":{{"x":"', '"}}'
    return head + "a" * (size - len(head) - len(tail)) + tail


def _fragments(text: str, size: int = MIB) -> Iterator[str]:
    return (text[i : i + size] for i in range(0, len(text), size))


def _send_refused(ws: ClientConnection, message: str | Iterator[str]) -> bool:
    """Send something the server refuses; whether it ended the connection (up to 30 s).

    The server may cut the connection while the message is still being sent.
    """
    try:
        ws.send(message)
    except ConnectionClosed:
        return True
    return _closed_by_server(ws)


def _closed_by_server(ws: ClientConnection) -> bool:
    """Whether the server ends the connection (waits for the close, up to 30 s)."""
    try:
        while True:
            ws.recv(timeout=30)
    except ConnectionClosed:
        return True
    except TimeoutError:
        return False


def _rss(server: WsServer) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) * 1024


def test_a_frame_or_message_at_the_reference_limit_ends_only_that_connection(
    codex_ws_server: WsServer,
) -> None:
    with codex_ws_server.connect(max_size=None) as bystander:
        initialize(bystander)
        with codex_ws_server.connect(max_size=None) as ws:
            initialize(ws)
            ws.send(_message(MAX_FRAME - 1))  # the largest single frame the reference reads
            assert response_to(ws, 1)["error"]["code"] == -32600
            assert _send_refused(ws, _message(MAX_FRAME, request_id=2))
            assert ws.close_code in (1009, 1006)
        with codex_ws_server.connect(max_size=None) as ws:
            initialize(ws)
            assert _send_refused(ws, _fragments(_message(MAX_MESSAGE)))
        assert "result" in request(bystander, 3, "config/read", {})


def test_the_overall_budget_cuts_large_uploads_not_small_requests(
    codex_ws_server_factory: WsServerFactory,
) -> None:
    server = codex_ws_server_factory(env={"CODEX_CORE_INBOUND_BUDGET": str(8 * MIB)})
    with server.connect() as small, server.connect(max_size=None) as large:
        initialize(small)
        initialize(large)
        assert _send_refused(large, _fragments(_message(12 * MIB)))  # more than the budget
        assert "result" in request(small, 2, "config/read", {})
    with server.connect(max_size=None) as fits:
        initialize(fits)
        fits.send(_fragments(_message(6 * MIB, request_id=3)))
        assert response_to(fits, 3)["error"]["code"] == -32600


def test_memory_of_large_messages_is_given_back(codex_ws_server: WsServer) -> None:
    if not Path("/proc/self/status").exists():
        pytest.skip("reads the server's resident size from /proc (Linux)")
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(codex_ws_server.connect(max_size=None)) for _ in range(5)]
        for ws in clients:
            initialize(ws)
        baseline = _rss(codex_ws_server)
        for request_id, ws in enumerate(clients[:4]):  # four 40 MB messages at once
            ws.send(_fragments(_message(40 * MIB, request_id)))
        assert _send_refused(clients[4], _fragments(_message(MAX_MESSAGE)))
        for request_id, ws in enumerate(clients[:4]):
            assert response_to(ws, request_id)
        peak = _rss(codex_ws_server)
        deadline = time.monotonic() + 15
        while _rss(codex_ws_server) > baseline + 64 * MIB and time.monotonic() < deadline:
            request(clients[0], "tick", "config/read", {})  # waits for a reply, not a time
        after = _rss(codex_ws_server)
    assert after <= baseline + 64 * MIB, json.dumps(
        {"baseline": baseline, "peak": peak, "after": after}
    )
