"""Fixtures: ``codex-app-server --listen ws://127.0.0.1:0`` subprocesses and websocket clients."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

BANNER = re.compile(r"listening on: ws://[0-9.]+:(\d+)")


class WsServer:
    """A server process listening on a free port of 127.0.0.1."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            text=True,
        )
        self.stderr_lines: list[str] = []
        self._port: int | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line)
            match = BANNER.search(line)
            if match and self._port is None:
                self._port = int(match.group(1))
            if line.startswith("  note:"):  # the banner's last line
                self._ready.set()
        self._ready.set()

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    @property
    def port(self) -> int:
        if not self._ready.wait(30) or self._port is None:
            raise AssertionError(f"server did not start; stderr:\n{self.stderr}")
        return self._port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def connect(self, token: str | None = None, **kwargs: Any) -> ClientConnection:
        if token is not None:
            kwargs["additional_headers"] = {"Authorization": f"Bearer {token}"}
        return connect(self.url, open_timeout=10, **kwargs)

    def http(self, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
        """(status, headers, body) of a plain HTTP request."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode()
        finally:
            conn.close()

    def wait(self, timeout: float = 20) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


def request(ws: ClientConnection, request_id: Any, method: str, params: Any = None) -> Any:
    """Send a request and return its response, skipping notifications."""
    message: dict[str, Any] = {"id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    ws.send(json.dumps(message))
    return response_to(ws, request_id)


def response_to(ws: ClientConnection, request_id: Any, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.0, deadline - time.monotonic())))
        if message.get("id") == request_id and "method" not in message:
            return dict(message)


def initialize(ws: ClientConnection, request_id: Any = 0, name: str = "pytest") -> Any:
    params = {"clientInfo": {"name": name, "title": None, "version": "1.0"}}
    reply = request(ws, request_id, "initialize", params)
    assert "result" in reply, reply
    ws.send(json.dumps({"method": "initialized"}))
    return reply["result"]


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "codex-home"
    home.mkdir()
    env = dict(os.environ)
    env["CODEX_HOME"] = str(home)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env.pop("CODEX_CORE_DISABLE_PLUGINS", None)
    return env


@pytest.fixture
def start_ws(server_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """Start ``codex-app-server --listen ws://127.0.0.1:0 ARGS...``; all are killed afterwards."""
    started: list[WsServer] = []

    def start(*args: str, listen: str = "ws://127.0.0.1:0") -> WsServer:
        argv = [sys.executable, "-m", "codex_core", "--listen", listen, *args]
        server = WsServer(argv, server_env, tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def ws_server(start_ws: Any) -> WsServer:
    server: WsServer = start_ws()
    assert server.port  # the banner is out: listening
    return server


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codex_core", *args],
        env=env,
        capture_output=True,
        text=True,
        input="",  # stdio serves until stdin closes
        timeout=timeout,
    )


SLOW_PLUGIN = """
import anyio
from codex_core.hookspecs import hookimpl
from codex_core.rpc import RpcMethod


async def sleep(ctx, params):
    await anyio.sleep(params["seconds"])
    return {"slept": params["seconds"]}


async def echo(ctx, params):
    return params


@hookimpl
def codex_rpc_methods():
    return [RpcMethod("wsprobe/sleep", sleep), RpcMethod("wsprobe/echo", echo)]
"""


@pytest.fixture
def probe_plugin(tmp_path: Path, server_env: dict[str, str]) -> None:
    """``wsprobe/sleep`` and ``wsprobe/echo``, installed as a real distribution."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "codex_ws_probe.py").write_text(SLOW_PLUGIN)
    info = site / "codex_ws_probe-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: codex-ws-probe\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[codex_core.plugins]\nwsprobe = codex_ws_probe\n")
    (info / "RECORD").write_text("")
    server_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(site), server_env.get("PYTHONPATH")])
    )
