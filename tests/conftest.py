"""Fixtures: a real ``codex-app-server`` subprocess over stdio, in a temp CODEX_HOME."""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
_OMITTED: Any = object()


class StdioServer:
    """A server process driven line by line, the way an IDE extension drives it."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        self._ids = itertools.count(1000)
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.notifications: list[dict[str, Any]] = []
        self.server_requests: list[dict[str, Any]] = []
        self._responses: dict[Any, dict[str, Any]] = {}
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self._lines.put(json.loads(raw))
        self._lines.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            self.stderr_lines.append(raw.decode(errors="replace"))

    # -------------------------------------------------------------- sending

    def send(self, message: dict[str, Any]) -> None:
        self.send_raw(json.dumps(message).encode())

    def send_raw(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        assert self.process.stdin is not None
        self.process.stdin.write(data + b"\n")
        self.process.stdin.flush()

    def request(self, method: str, params: Any = _OMITTED, timeout: float = 10) -> dict[str, Any]:
        request_id = next(self._ids)
        message: dict[str, Any] = {"id": request_id, "method": method}
        if params is not _OMITTED:
            message["params"] = params
        self.send(message)
        return self.wait_response(request_id, timeout)

    def result(self, method: str, params: Any = _OMITTED, timeout: float = 10) -> Any:
        response = self.request(method, params, timeout)
        assert "result" in response, f"{method} failed: {response}"
        return response["result"]

    def error(self, method: str, params: Any = _OMITTED, timeout: float = 10) -> dict[str, Any]:
        response = self.request(method, params, timeout)
        assert "error" in response, f"{method} unexpectedly succeeded: {response}"
        return dict(response["error"])

    # -------------------------------------------------------------- receiving

    def _pump(self, deadline: float) -> bool:
        """Take one message off stdout; False when time ran out."""
        try:
            message = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return False
        if message is None:
            raise AssertionError(f"server exited; stderr:\n{''.join(self.stderr_lines[-20:])}")
        if "method" in message and "id" in message:
            self.server_requests.append(message)
        elif "method" in message:
            self.notifications.append(message)
        else:
            self._responses[message["id"]] = message
        return True

    def wait_response(self, request_id: Any, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while request_id not in self._responses:
            if not self._pump(deadline):
                raise AssertionError(f"no response to {request_id!r} within {timeout}s")
        return self._responses.pop(request_id)

    def wait_notification(self, method: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for message in self.notifications[seen:]:
                if message["method"] == method:
                    self.notifications.remove(message)
                    return message
            seen = len(self.notifications)
            if not self._pump(deadline):
                raise AssertionError(f"no {method} notification within {timeout}s")

    def drain(self, seconds: float = 0.3) -> None:
        """Collect whatever arrives for a while (to check that nothing else does)."""
        deadline = time.monotonic() + seconds
        while self._pump(deadline):
            pass

    def initialize(self, **capabilities: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"clientInfo": {"name": "pytest", "title": None, "version": "1.0"}}
        if capabilities:
            params["capabilities"] = capabilities
        result = self.result("initialize", params)
        self.send({"method": "initialized"})
        return dict(result)

    def close(self) -> int:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def codex_home(tmp_path: Path) -> Path:
    home = tmp_path / "codex-home"
    home.mkdir()
    return home


@pytest.fixture
def server_env(codex_home: Path, tmp_path: Path) -> dict[str, str]:
    """The environment of a server under test: its own CODEX_HOME and entry-point cache."""
    env = dict(os.environ)
    env["CODEX_HOME"] = str(codex_home)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env.pop("CODEX_CORE_DISABLE_PLUGINS", None)
    return env


@pytest.fixture
def start_server(server_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """Start servers with extra arguments or environment; all are stopped afterwards."""
    started: list[StdioServer] = []
    workdir = tmp_path / "cwd"
    workdir.mkdir()

    def start(*args: str, env: dict[str, str] | None = None) -> StdioServer:
        server = StdioServer(
            [sys.executable, "-m", "codex_core", *args], {**server_env, **(env or {})}, workdir
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def raw_server(start_server: Any) -> StdioServer:
    """A running server that has not been initialized."""
    return start_server()  # type: ignore[no-any-return]


@pytest.fixture
def server(raw_server: StdioServer) -> StdioServer:
    """A running, initialized server."""
    raw_server.initialize()
    return raw_server


def write_distribution(
    site: Path,
    name: str,
    module_source: str,
    *,
    version: str = "1.0",
    requires: list[str] | None = None,
    entry_point: str | None = None,
) -> None:
    """Install a one-module plugin distribution into ``site`` the way pip lays it out."""
    module = name.replace("-", "_")
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(module_source)
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {requirement}" for requirement in requires or []]
    (info / "METADATA").write_text("\n".join(metadata) + "\n")
    (info / "entry_points.txt").write_text(
        f"[codex_core.plugins]\n{entry_point or module} = {module}\n"
    )
    (info / "RECORD").write_text("")


@pytest.fixture
def plugin_site(tmp_path: Path, server_env: dict[str, str]) -> Path:
    """A folder on the server's PYTHONPATH to install test plugins into."""
    site = tmp_path / "site"
    site.mkdir()
    server_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(site), server_env.get("PYTHONPATH")])
    )
    return site


@pytest.fixture
def probe_plugin(plugin_site: Path) -> Path:
    source = (REPO / "tests" / "fixtures" / "codex_probe_plugin.py").read_text()
    write_distribution(plugin_site, "codex-probe-plugin", source, entry_point="probe")
    return plugin_site
