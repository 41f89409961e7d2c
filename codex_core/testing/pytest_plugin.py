"""The plugin author's test kit: pytest fixtures for codex-core and its plugins.

Installing ``codex-core`` registers this module with pytest (entry point group ``pytest11``), so
any project that has codex-core installed gets these fixtures without a ``conftest.py``:

``codex_home``
    A fresh, empty ``CODEX_HOME`` folder (a ``pathlib.Path``).
``codex_env``
    The environment for server subprocesses: the test process's, with ``CODEX_HOME`` set to
    ``codex_home``, a private ``XDG_CACHE_HOME`` (so the entry-point cache sees plugins a test
    installs) and ``CODEX_CORE_DISABLE_PLUGINS`` removed. A mutable dict: change it before
    starting a server.
``codex_plugin_site``
    A folder on ``codex_env``'s ``PYTHONPATH``; install test plugins into it with
    ``write_distribution`` and every server started afterwards loads them.
``codex_kernel_factory``
    ``make(**options) -> Kernel``: a kernel that is not running yet, in ``codex_home``.
    Options: ``plugins`` (extra plugin objects), ``load_entry_points``, ``config_overrides``
    (``-c`` values), ``disabled_plugins``. Enter it with ``async with``.
``codex_kernel`` (async)
    A running in-process kernel; options come from ``@pytest.mark.codex_kernel(...)``
    (the factory's, plus ``model_server=True`` for one that talks to ``codex_model_server``).
``codex_client`` (async)
    A ``codex_core.client.Client`` connected to ``codex_kernel`` and initialized.
``codex_server_factory`` / ``codex_server``
    ``start(*args, env=None) -> StdioServer``: ``codex-app-server ARGS`` over stdio; the
    plain fixture is one such server, initialized. All are stopped after the test.
``codex_ws_server_factory`` / ``codex_ws_server``
    ``start(*args, listen="ws://127.0.0.1:0", env=None) -> WsServer``; the plain fixture is
    one server, listening. Skipped when codex-plugin-websocket is not installed.
``codex_cli``
    ``run(*args, input="", timeout=30) -> subprocess.CompletedProcess[str]``: run
    ``codex-app-server ARGS`` to completion (``plugins list``, startup errors).
``codex_model_server``
    A running ``ScriptedModelServer`` with its API key in ``os.environ`` (for in-process
    kernels); ``config_args()`` / ``config_overrides()`` point a server or kernel at it.
``codex_loopback_factory``
    ``start(handler) -> LoopbackServer``: a loopback HTTP server standing in for a remote
    service, answering with ``handler(request) -> Reply``; all are stopped after the test.

The async fixtures run on anyio's pytest plugin: mark the tests ``@pytest.mark.anyio`` and pin
the backend in your ``conftest.py`` (``anyio_backend`` returning ``"asyncio"``). See
``docs/testing-plugins.md``.
"""

from __future__ import annotations

import http.client
import importlib.metadata
import itertools
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from codex_core.cli import server_command
from codex_core.testing import reference

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

    from codex_core.client import Client
    from codex_core.kernel import Kernel
    from codex_core.testing.loopback import Handler, LoopbackServer
    from codex_core.testing.model_server import ScriptedModelServer

__all__ = [
    "CodexCli",
    "KernelFactory",
    "LoopbackFactory",
    "ServerFactory",
    "StdioServer",
    "WsServer",
    "WsServerFactory",
    "model_overrides",
    "needs_reference",
    "server_command",
    "write_distribution",
]

_OMITTED: Any = object()

#: A method no plugin implements: ``StdioServer.barrier`` sends it and waits for the refusal.
BARRIER_METHOD = "codex-testing/barrier"

#: The websocket transport's banner line that names the port (on stderr).
WS_BANNER = re.compile(r"listening on: ws://[0-9.]+:(\d+)")


# --------------------------------------------------------------------------- stdio server


class _StderrLog:
    """A server process's stderr, collected line by line by a reader thread."""

    def __init__(self) -> None:
        self.stderr_lines: list[str] = []
        self._stderr_grew = threading.Condition()
        self._stderr_closed = False

    def _add_stderr(self, line: str) -> None:
        with self._stderr_grew:
            self.stderr_lines.append(line)
            self._stderr_grew.notify_all()

    def _stderr_ended(self) -> None:
        with self._stderr_grew:
            self._stderr_closed = True
            self._stderr_grew.notify_all()

    @property
    def stderr(self) -> str:
        """Everything the server wrote to stderr so far."""
        return "".join(self.stderr_lines)

    def wait_stderr(self, text: str, timeout: float = 10) -> str:
        """Wait until ``text`` appears on stderr; returns all of stderr so far.

        Fails the test when it has not appeared within ``timeout`` seconds or stderr closed.
        """
        deadline = time.monotonic() + timeout
        with self._stderr_grew:
            while text not in self.stderr:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stderr_closed:
                    raise AssertionError(f"{text!r} not on stderr; it has:\n{self.stderr}")
                self._stderr_grew.wait(remaining)
            return self.stderr


class StdioServer(_StderrLog):
    """A server process driven line by line, the way an IDE extension drives it.

    Requests are synchronous: ``result(method, params)`` returns the result (and fails the test
    on an error), ``error(...)`` the error object, ``request(...)`` the whole response.
    Notifications and server requests that arrive meanwhile are kept in ``notifications`` and
    ``server_requests``; ``wait_notification(method)`` takes the next one of a kind.
    """

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        super().__init__()
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
            self._add_stderr(raw.decode(errors="replace"))
        self._stderr_ended()

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

    def wait_notification(
        self,
        method: str,
        timeout: float = 10,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """The next notification named ``method`` (whose params satisfy ``where``, if given).

        Fails the test when none arrives within ``timeout`` seconds: wait for the event
        itself, never for a fixed time.
        """
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for message in self.notifications[seen:]:
                if message["method"] == method and (
                    where is None or where(message.get("params") or {})
                ):
                    self.notifications.remove(message)
                    return message
            seen = len(self.notifications)
            if not self._pump(deadline):
                raise AssertionError(f"no matching {method} notification within {timeout}s")

    def wait_server_request(self, method: str | None = None, timeout: float = 10) -> dict[str, Any]:
        """The next server->client request (named ``method``, if given); answer it with ``send``."""
        deadline = time.monotonic() + timeout
        while True:
            for request in self.server_requests:
                if method is None or request["method"] == method:
                    self.server_requests.remove(request)
                    return request
            if not self._pump(deadline):
                raise AssertionError(f"no {method or 'server'} request within {timeout}s")

    def wait_until(
        self, condition: Callable[[], bool], timeout: float = 10, what: str = "condition"
    ) -> None:
        """Collect messages until ``condition()`` holds; fails the test after ``timeout`` s.

        For conditions over several messages (``notifications`` keeps them all, in order).
        """
        deadline = time.monotonic() + timeout
        while not condition():
            if not self._pump(deadline):
                raise AssertionError(f"{what}: not within {timeout}s")

    def barrier(self, timeout: float = 10) -> None:
        """Return once everything the server sent before reading this call has arrived.

        It sends a request no plugin implements, which the server refuses straight from its
        read loop; replies and notifications leave one connection in the order they were
        queued, so whatever the server queued before it has been collected into
        ``notifications``, ``server_requests`` and the pending responses. To check that
        something did *not* happen, call this after the message that would have caused it
        and then look: a positive barrier, where waiting a while would only be a guess.
        """
        request_id = f"barrier-{next(self._ids)}"
        self.send({"id": request_id, "method": BARRIER_METHOD})
        self.wait_response(request_id, timeout)

    def drain(self, seconds: float) -> None:
        """Collect whatever arrives for ``seconds``.

        Only for a quiet period that is itself the behaviour under test (a debounce window);
        to check that something did not happen, use ``barrier`` after its cause.
        """
        deadline = time.monotonic() + seconds
        while self._pump(deadline):
            pass

    def unanswered(self) -> dict[Any, dict[str, Any]]:
        """Responses that arrived and no ``wait_response`` took (after a ``barrier``: extras)."""
        return dict(self._responses)

    def initialize(self, **capabilities: Any) -> dict[str, Any]:
        """The handshake. Its deadline is generous (30 s): a server starting with every plugin
        on a loaded machine, or under coverage, is slow but not broken."""
        params: dict[str, Any] = {"clientInfo": {"name": "pytest", "title": None, "version": "1.0"}}
        if capabilities:
            params["capabilities"] = capabilities
        result = self.result("initialize", params, timeout=30)
        self.send({"method": "initialized"})
        return dict(result)

    def close(self) -> int:
        """Close stdin (the client leaves) and wait for the exit; kill after 10 s."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


# --------------------------------------------------------------------------- websocket server


class WsServer(_StderrLog):
    """A ``codex-app-server --listen ws://...`` process; ``port`` waits for its banner."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        super().__init__()
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            text=True,
        )
        self._port: int | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._add_stderr(line)
            match = WS_BANNER.search(line)
            if match and self._port is None:
                self._port = int(match.group(1))
            if line.startswith("  note:"):  # the banner's last line
                self._ready.set()
        self._stderr_ended()
        self._ready.set()

    @property
    def port(self) -> int:
        """The port it listens on (waits up to 30 s for the banner; fails the test without)."""
        if not self._ready.wait(30) or self._port is None:
            raise AssertionError(f"server did not start; stderr:\n{self.stderr}")
        return self._port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def connect(self, token: str | None = None, **kwargs: Any) -> ClientConnection:
        """A synchronous ``websockets`` connection (``token``: ``Authorization: Bearer``)."""
        from websockets.sync.client import connect

        if token is not None:
            kwargs["additional_headers"] = {"Authorization": f"Bearer {token}"}
        connection: ClientConnection = connect(self.url, open_timeout=10, **kwargs)
        return connection

    async def client(self, token: str | None = None) -> Client:
        """An async ``Client`` connected to it (``async with await server.client() as c``)."""
        from codex_core.client import Client

        return await Client.connect_websocket(self.url, token=token)

    def http(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        """(status, headers, body) of a plain HTTP request."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode()
        finally:
            conn.close()

    def wait_refusing(self, timeout: float = 10) -> None:
        """Wait until the server turns new connections away (it began shutting down).

        Tries to connect until an attempt is refused; fails the test after ``timeout`` seconds.
        The sign that a shutdown signal was taken, where waiting a while would only guess.
        """
        from websockets.exceptions import WebSocketException

        deadline = time.monotonic() + timeout
        while True:
            try:
                self.connect().close()
            except (OSError, WebSocketException):  # refused, reset, or closed mid-handshake
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"still accepting connections after {timeout}s")
            time.sleep(0.02)  # the next attempt; the deadline decides

    def wait(self, timeout: float = 20) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


# --------------------------------------------------------------------------- plugin installs


def write_distribution(
    site: Path,
    name: str,
    module_source: str,
    *,
    version: str = "1.0",
    requires: list[str] | None = None,
    entry_point: str | None = None,
) -> None:
    """Install a one-module plugin distribution into ``site`` the way pip lays it out.

    ``name`` is the distribution (``codex-plugin-hello``); the module is the same with
    underscores, and its ``codex_core.plugins`` entry point is ``entry_point`` (default: the
    module name).
    """
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


def model_overrides(model: ScriptedModelServer, **kwargs: str) -> list[str]:
    """``config_overrides`` for a ``Kernel`` that point it at the scripted model server.

    The in-process twin of ``model.config_args()`` (which are ``-c`` arguments).
    """
    return model.config_args(**kwargs)[1::2]


# --------------------------------------------------------------------------- factories


class KernelFactory(Protocol):
    def __call__(
        self,
        *,
        plugins: Sequence[object] = (),
        load_entry_points: bool = True,
        config_overrides: Sequence[str] = (),
        disabled_plugins: Sequence[str] = (),
        codex_home: Path | None = None,
    ) -> Kernel: ...


class ServerFactory(Protocol):
    def __call__(self, *args: str, env: dict[str, str] | None = None) -> StdioServer: ...


class WsServerFactory(Protocol):
    def __call__(
        self, *args: str, listen: str = "ws://127.0.0.1:0", env: dict[str, str] | None = None
    ) -> WsServer: ...


class LoopbackFactory(Protocol):
    def __call__(self, handler: Handler) -> LoopbackServer: ...


class CodexCli(Protocol):
    def __call__(
        self, *args: str, input: str = "", timeout: float = 30, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]: ...


#: Marks a test that drives the official server (``reference.reference_binary()``): it is
#: skipped before it starts, with what to do, where that server is not installed.
needs_reference = pytest.mark.skipif(
    reference.reference_binary() is None, reason=reference.missing_reason()
)


# --------------------------------------------------------------------------- pytest hooks


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "codex_kernel(plugins=(), load_entry_points=True, config_overrides=(), "
        "disabled_plugins=(), model_server=False): how the codex_kernel fixture builds its "
        "kernel (model_server=True points it at the codex_model_server fixture)",
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def codex_home(tmp_path: Path) -> Path:
    """A fresh, empty ``CODEX_HOME`` folder."""
    home = tmp_path / "codex-home"
    home.mkdir()
    return home


@pytest.fixture
def codex_env(codex_home: Path, tmp_path: Path) -> dict[str, str]:
    """The environment of a server subprocess: its own CODEX_HOME and entry-point cache."""
    env = dict(os.environ)
    env["CODEX_HOME"] = str(codex_home)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env.pop("CODEX_CORE_DISABLE_PLUGINS", None)
    return env


@pytest.fixture
def codex_plugin_site(tmp_path: Path, codex_env: dict[str, str]) -> Path:
    """A folder on the servers' PYTHONPATH to install test plugins into."""
    site = tmp_path / "site"
    site.mkdir()
    codex_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(site), codex_env.get("PYTHONPATH")])
    )
    return site


@pytest.fixture
def codex_kernel_factory(codex_home: Path, monkeypatch: pytest.MonkeyPatch) -> KernelFactory:
    """Build in-process kernels in ``codex_home`` (not started: use ``async with``).

    ``CODEX_HOME`` is set and ``CODEX_CORE_DISABLE_PLUGINS`` cleared in ``os.environ`` for the
    test, so plugins that read the environment see the same home as the kernel.
    """
    from codex_core.kernel import Kernel

    monkeypatch.setenv("CODEX_HOME", str(codex_home))
    monkeypatch.delenv("CODEX_CORE_DISABLE_PLUGINS", raising=False)
    default_home = codex_home

    def make(
        *,
        plugins: Sequence[object] = (),
        load_entry_points: bool = True,
        config_overrides: Sequence[str] = (),
        disabled_plugins: Sequence[str] = (),
        codex_home: Path | None = None,
    ) -> Kernel:
        return Kernel(
            codex_home=codex_home or default_home,
            plugins=plugins,
            load_entry_points=load_entry_points,
            config_overrides=config_overrides,
            disabled_plugins=disabled_plugins,
        )

    return make


@pytest.fixture
async def codex_kernel(
    codex_kernel_factory: KernelFactory, request: pytest.FixtureRequest, anyio_backend: Any
) -> AsyncIterator[Kernel]:
    """A running in-process kernel; ``@pytest.mark.codex_kernel(...)`` chooses its options.

    The marker takes ``codex_kernel_factory``'s keyword arguments, plus ``model_server=True``
    to point the kernel at the ``codex_model_server`` fixture (as its ``model_provider``).
    """
    marker = request.node.get_closest_marker("codex_kernel")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        raise TypeError("@pytest.mark.codex_kernel takes keyword arguments only")
    if options.pop("model_server", False):
        model: ScriptedModelServer = request.getfixturevalue("codex_model_server")
        options["config_overrides"] = [
            *model_overrides(model),
            *options.get("config_overrides", ()),
        ]
    async with codex_kernel_factory(**options) as kernel:
        yield kernel


@pytest.fixture
async def codex_client(codex_kernel: Kernel, anyio_backend: Any) -> AsyncIterator[Client]:
    """A client connected to ``codex_kernel``, after ``initialize`` / ``initialized``."""
    async with codex_kernel.connect() as client:
        await client.initialize("pytest", "1.0")
        yield client


@pytest.fixture
def codex_server_factory(codex_env: dict[str, str], tmp_path: Path) -> Iterator[ServerFactory]:
    """Start ``codex-app-server ARGS`` over stdio (cwd: a fresh folder); all stopped after."""
    started: list[StdioServer] = []
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)

    def start(*args: str, env: dict[str, str] | None = None) -> StdioServer:
        server = StdioServer(server_command(*args), {**codex_env, **(env or {})}, workdir)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def codex_server(codex_server_factory: ServerFactory) -> StdioServer:
    """A running stdio server that has been initialized."""
    server = codex_server_factory()
    server.initialize()
    return server


def _require_websocket_plugin() -> None:
    try:
        importlib.metadata.distribution("codex-plugin-websocket")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(
            "codex-plugin-websocket is not installed (pip install codex-plugin-websocket): "
            "it provides --listen ws://"
        )


@pytest.fixture
def codex_ws_server_factory(codex_env: dict[str, str], tmp_path: Path) -> Iterator[WsServerFactory]:
    """Start ``codex-app-server --listen URL ARGS``; all are killed afterwards.

    Skips the test when codex-plugin-websocket is not installed.
    """
    _require_websocket_plugin()
    started: list[WsServer] = []
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)

    def start(
        *args: str, listen: str = "ws://127.0.0.1:0", env: dict[str, str] | None = None
    ) -> WsServer:
        argv = server_command("--listen", listen, *args)
        server = WsServer(argv, {**codex_env, **(env or {})}, workdir)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def codex_ws_server(codex_ws_server_factory: WsServerFactory) -> WsServer:
    """A server listening on ``ws://127.0.0.1:<free port>`` (its banner is out)."""
    server = codex_ws_server_factory()
    assert server.port
    return server


@pytest.fixture
def codex_cli(codex_env: dict[str, str]) -> CodexCli:
    """Run ``codex-app-server ARGS`` to completion; stdin is ``input`` (stdio ends with it)."""

    def run(
        *args: str, input: str = "", timeout: float = 30, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            server_command(*args),
            env={**codex_env, **(env or {})},
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
        )

    return run


@pytest.fixture
def codex_model_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedModelServer]:
    """The scripted Responses-API model server, running; its API key is in ``os.environ``.

    Point a subprocess at it with ``start(*model.config_args(), env=model.env)`` and an
    in-process kernel with ``config_overrides=model_overrides(model)``.
    """
    from codex_core.testing.model_server import ScriptedModelServer

    with ScriptedModelServer() as server:
        monkeypatch.setenv(server.env_key, server.api_key)
        yield server


@pytest.fixture
def codex_loopback_factory() -> Iterator[LoopbackFactory]:
    """Start loopback HTTP servers answering with a handler; all are stopped after the test.

    For the remote services a plugin talks to (an issuer, an API, a download host): point the
    plugin at ``server.url`` and assert on ``server.requests``.
    """
    from codex_core.testing.loopback import LoopbackServer

    started: list[LoopbackServer] = []

    def start(handler: Handler) -> LoopbackServer:
        server = LoopbackServer(handler).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


#: The names of the fixtures above, for documentation and tests.
FIXTURES: tuple[str, ...] = (
    "codex_home",
    "codex_env",
    "codex_plugin_site",
    "codex_kernel_factory",
    "codex_kernel",
    "codex_client",
    "codex_server_factory",
    "codex_server",
    "codex_ws_server_factory",
    "codex_ws_server",
    "codex_cli",
    "codex_model_server",
    "codex_loopback_factory",
)
