"""``--listen ws://`` end to end: sessions, framing, HTTP probes, backpressure, shutdown."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path

import anyio
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from codex_core.client import Client
from codex_core.testing import ModelResponse, ScriptedModelServer, message
from codex_core.testing.pytest_plugin import CodexCli, WsServerFactory

from .conftest import WsServer, initialize, request, response_to


def test_banner_and_each_connection_is_its_own_session(codex_ws_server: WsServer) -> None:
    assert "codex app-server (WebSockets)" in codex_ws_server.stderr
    assert f"readyz: http://127.0.0.1:{codex_ws_server.port}/readyz" in codex_ws_server.stderr
    assert "note: binds localhost only" in codex_ws_server.stderr
    with codex_ws_server.connect() as first, codex_ws_server.connect() as second:
        result = initialize(first, name="first")
        assert result["userAgent"].startswith("first/")
        # The second socket has not initialized: its own session.
        assert request(second, 1, "model/list", {}) == {
            "id": 1,
            "error": {"code": -32600, "message": "Not initialized"},
        }
        initialize(second, name="second")
        assert "error" in request(first, 7, "initialize", {"clientInfo": {"name": "x"}})


def test_same_request_id_on_two_connections_routes_independently(codex_ws_server: WsServer) -> None:
    with codex_ws_server.connect() as first, codex_ws_server.connect() as second:
        initialize(first)
        initialize(second)
        first.send(json.dumps({"id": 5, "method": "fs/readFile", "params": {"path": "relative"}}))
        second.send(json.dumps({"id": 5, "method": "model/list", "params": {}}))
        assert "error" in response_to(first, 5)
        assert "data" in response_to(second, 5)["result"]


def test_binary_frames_and_two_messages_in_one_frame_get_no_reply(
    codex_ws_server: WsServer,
) -> None:
    with codex_ws_server.connect() as ws:
        initialize(ws)
        ws.send(json.dumps({"id": 1, "method": "model/list", "params": {}}).encode())  # binary
        two = [{"id": 2, "method": "model/list", "params": {}}, {"id": 3, "method": "x"}]
        ws.send("\n".join(json.dumps(message) for message in two))
        ws.send(json.dumps({"id": 4, "method": "model/list", "params": {}}))
        first = json.loads(ws.recv(timeout=10))
        assert first["id"] == 4, "nothing may answer the binary frame or the two-message frame"


def test_health_probes_origin_and_plain_http(codex_ws_server: WsServer) -> None:
    for path in ("/readyz", "/healthz"):
        status, headers, body = codex_ws_server.http("GET", path)
        assert (status, body, headers["Content-Length"]) == (200, "", "0")
        assert codex_ws_server.http("HEAD", path)[0] == 200
    assert codex_ws_server.http("GET", "/readyz", {"Origin": "http://evil.example"})[:3:2] == (
        403,
        "",
    )
    status, headers, body = codex_ws_server.http("GET", "/")
    assert (status, body) == (400, "Connection header did not include 'upgrade'")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert codex_ws_server.http("POST", "/")[::2] == (405, "Request method must be `GET`")
    with pytest.raises(InvalidStatus) as refused:
        codex_ws_server.connect(origin="http://evil.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403


def test_upgrade_headers_on_any_path_no_compression_no_echo(codex_ws_server: WsServer) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", codex_ws_server.port), timeout=10) as sock:
        sock.sendall(
            (
                "GET /some/path HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                "x-codex-app-server-compression: zstd-stream-v1\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
    text = head.decode().lower()
    assert text.startswith("http/1.1 101")
    assert "sec-websocket-extensions" not in text
    assert "x-codex-app-server-compression" not in text
    assert "server:" not in text


def test_a_client_that_never_reads_does_not_stall_another(
    probe_plugin: None, codex_ws_server_factory: WsServerFactory
) -> None:
    server: WsServer = codex_ws_server_factory()
    with server.connect() as stalled, server.connect() as healthy:
        initialize(stalled)
        initialize(healthy)
        payload = {"blob": "x" * 65536}
        for request_id in range(300):  # ~20 MB of replies it never reads
            message = {"id": request_id, "method": "wsprobe/echo", "params": payload}
            stalled.send(json.dumps(message))
        started = time.monotonic()
        for request_id in range(20):
            assert request(healthy, request_id, "wsprobe/echo", {"n": request_id})["result"] == {
                "n": request_id
            }
        assert time.monotonic() - started < 5


def test_sigterm_drains_running_requests_then_exits_0(
    probe_plugin: None, codex_ws_server_factory: WsServerFactory
) -> None:
    server: WsServer = codex_ws_server_factory()
    with server.connect() as ws:
        initialize(ws)
        ws.send(json.dumps({"id": 1, "method": "wsprobe/sleep", "params": {"seconds": 2.0}}))
        # Requests are read in order: once this is answered, the sleep is running.
        assert request(ws, 2, "wsprobe/echo", {})["result"] == {}
        server.process.send_signal(signal.SIGTERM)
        server.wait_refusing()
        assert response_to(ws, 1)["result"] == {"slept": 2.0}
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert server.wait() == 0


def test_second_signal_exits_at_once(
    probe_plugin: None, codex_ws_server_factory: WsServerFactory
) -> None:
    server: WsServer = codex_ws_server_factory()
    with server.connect() as ws:
        initialize(ws)
        ws.send(json.dumps({"id": 1, "method": "wsprobe/sleep", "params": {"seconds": 60}}))
        assert request(ws, 2, "wsprobe/echo", {})["result"] == {}  # the sleep is running
        server.process.send_signal(signal.SIGTERM)
        server.wait_refusing()  # the first signal was taken: the server drains
        # ... and still serves its clients meanwhile: it did not exit on the first signal
        assert request(ws, 3, "wsprobe/echo", {"n": 3})["result"] == {"n": 3}
        assert server.process.poll() is None, "the first signal waits for the running request"
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.wait(10) == 128 + signal.SIGTERM
        assert time.monotonic() - started < 5


def test_idle_server_exits_0_on_sigint(codex_ws_server: WsServer) -> None:
    assert codex_ws_server.http("GET", "/readyz")[0] == 200
    codex_ws_server.process.send_signal(signal.SIGINT)
    assert codex_ws_server.wait() == 0


def test_without_the_plugin_ws_is_a_clear_error(codex_cli: CodexCli) -> None:
    completed = codex_cli("--disable-plugin", "websocket", "--listen", "ws://127.0.0.1:0")
    assert completed.returncode == 2
    assert "no installed transport serves ws://" in completed.stderr
    assert "installed: stdio://" in completed.stderr


@pytest.mark.parametrize(
    "url", ["ws://localhost:0", "ws://127.0.0.1", "ws://127.0.0.1:0/path", "ws://1.2.3.4:99999"]
)
def test_listen_url_must_be_ip_and_port(codex_cli: CodexCli, url: str) -> None:
    completed = codex_cli("--listen", url)
    assert completed.returncode == 1
    assert f"invalid websocket --listen URL `{url}`; expected `ws://IP:PORT`" in completed.stderr


def test_ws_flags_are_accepted_with_stdio(codex_cli: CodexCli) -> None:
    completed = codex_cli("--ws-auth", "capability-token", "--ws-token-sha256", "00")
    assert completed.returncode == 0, completed.stderr


def test_unix_socket_default_path(
    codex_ws_server_factory: WsServerFactory, codex_env: dict[str, str]
) -> None:
    # A short CODEX_HOME: socket paths are limited to about 100 bytes.
    codex_env["CODEX_HOME"] = tempfile.mkdtemp(prefix="cx", dir="/tmp")
    server: WsServer = codex_ws_server_factory(listen="unix://")
    path = Path(codex_env["CODEX_HOME"]) / "app-server-control" / "app-server-control.sock"
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, server.stderr
        assert server.process.poll() is None, server.stderr
        time.sleep(0.05)
    assert path.parent.stat().st_mode & 0o777 == 0o700

    async def session() -> None:
        async with await Client.connect_websocket(f"unix://{path}") as client:
            assert (await client.initialize("unix-test"))["userAgent"].startswith("unix-test/")
            assert "data" in await client.request("model/list", {})

    anyio.run(session)
    server.process.send_signal(signal.SIGTERM)
    assert server.wait() == 0
    assert not path.exists()
    shutil.rmtree(codex_env["CODEX_HOME"])


def test_client_connect_websocket(codex_ws_server: WsServer) -> None:
    async def session() -> None:
        async with await Client.connect_websocket(codex_ws_server.url) as client:
            await client.initialize("client-test")
            assert "data" in await client.request("model/list", {})

    anyio.run(session)


def test_sigterm_waits_for_a_running_turn(
    codex_ws_server_factory: WsServerFactory, codex_model_server: ScriptedModelServer
) -> None:
    """The turn streams for a while after the signal; it completes before the server exits."""
    codex_model_server.add(ModelResponse([message("finished despite SIGTERM")], stall=1.5))
    server: WsServer = codex_ws_server_factory(
        *codex_model_server.config_args(), env=codex_model_server.env
    )
    with server.connect() as ws:
        initialize(ws)
        thread = request(ws, 1, "thread/start", {})["result"]["thread"]["id"]
        request(
            ws, 2, "turn/start", {"threadId": thread, "input": [{"type": "text", "text": "go"}]}
        )
        codex_model_server.wait_for_requests(1)
        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        completed = None
        while completed is None and time.monotonic() < deadline:
            sent = json.loads(ws.recv(timeout=20))
            if sent.get("method") == "turn/completed":
                completed = sent["params"]["turn"]
        assert completed is not None and completed["status"] == "completed"
    assert server.wait() == 0
