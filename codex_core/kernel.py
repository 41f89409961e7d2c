"""The kernel: configuration, plugins and the services they contribute, in one object.

A host that embeds codex-core creates a ``Kernel`` and either serves a listen URL with it or
connects to it in-process (``codex_core.client``); the ``codex-app-server`` command does the
former. Nothing is global, so several kernels can share a process.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from anyio.abc import TaskGroup

from codex_core.config import Config, config_sections, load_config
from codex_core.hookspecs import (
    INTERFACES,
    ApprovalReviewer,
    AuthProvider,
    Channel,
    FsWatcher,
    HookInterface,
    ModelProvider,
    Tool,
    Transport,
)
from codex_core.plugins import (
    PluginManager,
    PluginRecord,
    describe,
    disabled_from_env,
    is_cancellation,
)
from codex_core.protocol.methods import CLIENT_REQUESTS
from codex_core.rpc.budget import InboundBudget
from codex_core.rpc.connection import Connection
from codex_core.rpc.handlers import RpcMethod
from codex_core.rpc.router import Route, Router
from codex_core.server_info import initialize_result, resolve_codex_home

if TYPE_CHECKING:
    from codex_core.client import Client

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a graceful shutdown waits for running requests before closing connections anyway.
SHUTDOWN_DRAIN_SECONDS = 10.0
#: How long a transport then has to wind down (say goodbye to its clients) before it is cancelled.
SHUTDOWN_GRACE_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class Contribution:
    """An object a plugin contributed, remembered with the plugin's name."""

    plugin: str
    value: Any


class Kernel:
    """Loads config and plugins, owns the router and the live connections.

    ``plugins`` are extra plugin objects registered after the entry points (a host's own
    hooks); ``load_entry_points=False`` gives a kernel with only those, for tests and hosts that
    want full control. ``config`` is one the host has already read with ``load_config`` (then
    ``codex_home``, ``config_overrides`` and ``config_profile`` come from it): that way a config
    the server refuses to start with is refused before any plugin loads.
    """

    # What plugins contributed, set by ``_collect`` where ``codex_core.hookspecs.INTERFACES``
    # says (each capability hook's ``attribute``); declared here for readers and type checkers.
    transports: dict[str, Transport]
    auth_providers: dict[str, AuthProvider]
    approval_reviewers: dict[str, ApprovalReviewer]
    tools: dict[str, Tool]
    fs_watchers: list[FsWatcher]
    model_providers: dict[str, ModelProvider]
    rpc_methods: dict[str, RpcMethod]
    router: Router

    def __init__(
        self,
        *,
        codex_home: str | os.PathLike[str] | None = None,
        config_overrides: Sequence[str] = (),
        config_profile: str | None = None,
        config: Config | None = None,
        disabled_plugins: Iterable[str] = (),
        plugins: Iterable[object] = (),
        load_entry_points: bool = True,
    ) -> None:
        if config is None:
            config = load_config(
                resolve_codex_home(codex_home), config_overrides, profile=config_profile
            )
        self.codex_home = config.codex_home
        self.config: Config = config
        self.plugins = PluginManager()
        self._disabled_plugins = set(disabled_plugins)
        self._load_entry_points = load_entry_points
        if load_entry_points:
            disabled = self._disabled_plugins | disabled_from_env() | self.config.disabled_plugins()
            self.plugins.load_entry_points(disabled)
        for plugin in plugins:
            self.plugins.add(plugin)
        self.connections: set[Connection] = set()
        #: What all connections together hold of what clients sent (``codex_core.rpc.budget``).
        self.inbound = InboundBudget()
        #: Services plugins share with each other, by name (``"threads"``, ...).
        self.services: dict[str, Any] = {}
        #: Notifications every client gets right after ``initialize`` (say, a plugin's
        #: ``deprecationNotice``), next to the config and plugin warnings.
        self.startup_notices: list[tuple[str, dict[str, Any]]] = []
        #: The parsed command line, by argparse ``dest`` (``listen``, and whatever plugins added
        #: through ``codex_cli_options``, e.g. ``ws_auth``). Set by ``codex-app-server``; empty
        #: for a kernel a host embeds, so readers must fall back to defaults.
        self.cli_options: dict[str, Any] = {}
        self._task_group: TaskGroup | None = None
        self._background = 0
        self._background_done = anyio.Event()
        self._stopping: anyio.Event | None = None
        self._serve_scope: anyio.CancelScope | None = None
        self._served: anyio.Event | None = None
        self._collect()
        # Plugins' own config tables are known only now: check the layers again with them.
        if sections := config_sections(self):
            self.config = load_config(
                self.codex_home, config.overrides, sections=sections, profile=config.profile
            )
        self.plugins.notify("codex_config_loaded", kernel=self, config=self.config.effective)

    # ------------------------------------------------------------------ plugin contributions

    def _collect(self, only: Iterable[str] | None = None) -> None:
        """Ask every plugin for its contributions, then keep those of plugins still healthy.

        Collecting everything first means a plugin that fails in its third hook loses what its
        first two contributed, instead of leaving half a feature behind. With ``only`` (hot
        load), just those plugins are asked; what the others contributed before is kept.
        """
        hooks = {
            hook: interface
            for hook, interface in INTERFACES.items()
            if interface.returns == "contributions"
        }
        if only is None or not hasattr(self, "_contributed"):
            self._contributed: dict[str, list[Contribution]] = {hook: [] for hook in hooks}
        collected = self._contributed
        for hook, interface in hooks.items():
            kind = interface.kind
            assert kind is not None, hook
            for record, result in self.plugins.call_each(hook, only=only, kernel=self):
                try:
                    items = list(result or ())
                    wrong = [item for item in items if not isinstance(item, kind)]
                    if wrong:
                        raise TypeError(f"returned {wrong[0]!r}, not a {kind.__name__}")
                except TypeError as exc:
                    self.plugins.fail(record, f"{hook} {exc}")
                    continue
                collected[hook].extend(Contribution(record.name, item) for item in items)
        healthy = {
            name for name, record in self.plugins.records.items() if record.state == "loaded"
        }
        arranged: dict[str, dict[str, Contribution] | list[Contribution]] = {}
        for hook, interface in hooks.items():
            collected[hook] = [c for c in collected[hook] if c.plugin in healthy]
            arranged[hook] = found = self._arrange(collected[hook], interface)
            values = (
                [c.value for c in found]
                if isinstance(found, list)
                else {key: c.value for key, c in found.items()}
            )
            assert interface.attribute is not None, hook
            setattr(self, interface.attribute, values)
        methods = arranged["codex_rpc_methods"]
        assert isinstance(methods, dict)
        routes = {name: Route(c.value, c.plugin) for name, c in methods.items()}
        self.router = Router(CLIENT_REQUESTS, routes)

    def reload_plugins(self) -> dict[str, list[str]]:
        """Pick up plugins installed or uninstalled since startup, without a restart.

        New entry points are loaded and asked for their contributions (their methods, tools,
        ... answer from the next request on); plugins whose entry point is gone are
        unregistered (requests already running finish). Returns, and sends as
        ``codexCore/plugins/changed``, ``{added, removed, restartRequired}``:
        ``restartRequired`` names new plugins that hook startup, the command line or
        transports, which only take full effect after a restart. Only clients that opted in to
        our notifications outside the official schema (``Connection.wants_extensions``) get it.
        """
        if not self._load_entry_points:
            return {"added": [], "removed": [], "restartRequired": []}
        disabled = self._disabled_plugins | disabled_from_env() | self.config.disabled_plugins()
        added, removed = self.plugins.refresh(disabled)
        self._collect(only=added)
        self.plugins.notify(
            "codex_config_loaded", only=added, kernel=self, config=self.config.effective
        )
        startup_hooks = {hook for hook, interface in INTERFACES.items() if interface.startup_only}
        restart = [
            name
            for name in added
            if name in self.plugins.records
            and startup_hooks.intersection(self.plugins.records[name].hooks)
        ]
        result = {"added": added, "removed": removed, "restartRequired": restart}
        if added or removed:
            for connection in list(self.connections):
                if connection.wants_extensions:
                    connection.notify("codexCore/plugins/changed", result)
        return result

    @staticmethod
    def _arrange(
        contributions: list[Contribution], interface: HookInterface
    ) -> dict[str, Contribution] | list[Contribution]:
        """Index contributions by the interface's key, the first plugin to claim a key keeping
        it; or, without a key, rank them (highest ``ranked_by`` first)."""
        if interface.key is None:
            rank = interface.ranked_by
            if rank is None:
                return contributions
            return sorted(contributions, key=lambda c: -getattr(c.value, rank))
        found: dict[str, Contribution] = {}
        for contribution in contributions:
            key = getattr(contribution.value, interface.key)
            if key in found:
                log.warning(
                    "%s %r: plugin %s is ignored, %s provides it already",
                    interface.label,
                    key,
                    contribution.plugin,
                    found[key].plugin,
                )
                continue
            found[key] = contribution
        return found

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Kernel:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        await self.run_hook("codex_startup")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for connection in list(self.connections):
            connection.close()
        try:
            await self.run_hook("codex_shutdown")
        finally:
            tasks, self._task_group = self._task_group, None
            if tasks is not None:
                tasks.cancel_scope.cancel()
                await tasks.__aexit__(None, None, None)

    def start_soon(
        self,
        func: Callable[..., Coroutine[Any, Any, Any]],
        *args: Any,
        name: str | None = None,
        service: bool = False,
    ) -> None:
        """Run work that outlives the request and the connection that started it.

        It belongs to the kernel: ``codex_shutdown`` hooks run first (so plugins can wind their
        work down), then whatever is still running is cancelled. A graceful shutdown first waits
        for such work to finish (a turn), except for ``service`` tasks, which run for as long
        as the kernel does (an MCP server's session, a file watcher).
        """
        if self._task_group is None:
            raise RuntimeError("the kernel is not running: use `async with kernel:`")
        if service:
            self._task_group.start_soon(func, *args, name=name)
            return
        if not self._background:
            self._background_done = anyio.Event()
        self._background += 1
        self._task_group.start_soon(self._run_background, func, args, name=name)

    async def _run_background(
        self, func: Callable[..., Coroutine[Any, Any, Any]], args: tuple[Any, ...]
    ) -> None:
        try:
            await func(*args)
        finally:
            self._background -= 1
            if not self._background:
                self._background_done.set()

    async def _wait_quiet(self) -> None:
        """Until no request handler and no background work (a turn) is running."""
        while True:
            busy = [c for c in self.connections if c.busy]
            if busy:
                log.info("shutdown: waiting for %d busy connection(s)", len(busy))
                await busy[0].wait_idle()
            elif self._background:
                log.info("shutdown: waiting for %d running turn(s) or task(s)", self._background)
                await self._background_done.wait()
            else:
                return

    async def run_hook(self, hook: str, **kwargs: Any) -> None:
        """Call ``hook`` on every plugin and await what each returns, one after the other.

        For the hooks declared ``awaitable`` (lifecycle hooks, ``codex_turn_starting``); a
        plugin that raises is marked failed, the others go on.
        """
        assert INTERFACES[hook].returns == "awaitable", hook
        tracer = self.plugins.tracer
        for record, result in self.plugins.call_each(hook, kernel=self, **kwargs):
            if inspect.isawaitable(result):
                started = time.perf_counter()
                error = None
                try:
                    await result
                except BaseException as exc:
                    if is_cancellation(exc):
                        raise
                    error = describe(exc)
                    self.plugins.fail(record, f"{hook} raised {error}")
                    log.exception("plugin %s failed in %s", record.name, hook)
                if tracer is not None:
                    tracer.awaited(hook, record.name, time.perf_counter() - started, error)

    # ------------------------------------------------------------------ serving

    async def serve(self, url: str = "stdio://") -> None:
        """Serve clients at a listen URL, using the transport for its scheme.

        Returns when the transport does (stdio: the client left) or after ``shutdown``; runs
        until cancelled otherwise.
        """
        transport = self.transport_for(url)
        self._stopping = None
        self._served = anyio.Event()
        try:
            async with self:
                with anyio.CancelScope() as self._serve_scope:
                    await transport.serve(url, self)
        finally:
            self._serve_scope = None
            self._served.set()

    @property
    def stopping(self) -> bool:
        """Whether ``shutdown`` has begun: transports should stop accepting clients."""
        return self._stopping is not None and self._stopping.is_set()

    async def wait_stopping(self) -> None:
        """Return once ``shutdown`` begins (transports watch this to stop accepting)."""
        await self._stop_event().wait()

    def _stop_event(self) -> anyio.Event:
        if self._stopping is None:
            self._stopping = anyio.Event()
        return self._stopping

    async def shutdown(self, *, timeout: float = SHUTDOWN_DRAIN_SECONDS) -> None:
        """Stop serving gracefully (what SIGTERM does to ``codex-app-server``).

        New clients are refused from now on (``serve_channel`` turns them away; transports that
        watch ``wait_stopping`` stop listening). Running requests get up to ``timeout`` seconds
        (and running turns, which are the kernel's background work) to finish and send their
        replies and notifications, then every connection writes what is queued and
        closes, and ``serve`` returns: by itself once the transport has wound down, or
        cancelled after ``SHUTDOWN_GRACE_SECONDS``.
        """
        self._stop_event().set()
        with anyio.move_on_after(timeout):
            await self._wait_quiet()
        for connection in list(self.connections):
            connection.finish()
        if self._served is not None:
            with anyio.move_on_after(SHUTDOWN_GRACE_SECONDS):
                await self._served.wait()
        self.stop_now()

    def stop_now(self) -> None:
        """Stop at once: running requests are cancelled and ``serve`` returns."""
        self._stop_event().set()
        for connection in list(self.connections):
            connection.close()
        if self._serve_scope is not None:
            self._serve_scope.cancel()

    def transport_for(self, url: str) -> Transport:
        scheme = url.split("://", 1)[0] if "://" in url else url
        transport = self.transports.get(scheme)
        if transport is None:
            installed = ", ".join(f"{name}://" for name in sorted(self.transports)) or "none"
            raise ValueError(
                f"no installed transport serves {scheme}:// (listen URL {url!r}); "
                f"installed: {installed}"
            )
        return transport

    async def serve_channel(self, channel: Channel, *, answered: bytes | None = None) -> None:
        """Run one client session over ``channel`` until the client leaves.

        ``answered`` is an ``initialize`` the transport has already answered itself (stdio,
        while the kernel was loading): the session adopts it as if it had answered it.
        """
        if self.stopping:
            log.info("refused a client from %s: shutting down", channel.peer)
            with anyio.CancelScope(shield=True):
                await channel.aclose()
            return
        connection = Connection(self, channel, answered=answered)
        self.connections.add(connection)
        self.plugins.notify("codex_connection_opened", connection=connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
            self.plugins.notify("codex_connection_closed", connection=connection)

    def connect(self) -> Client:
        """An in-process client connected to this kernel (see ``codex_core.client``)."""
        from codex_core.client import Client

        return Client.in_process(self)

    def broadcast(self, method: str, params: Any = None) -> None:
        """Send a notification to every initialized connection (minus those opted out)."""
        for connection in list(self.connections):
            connection.notify(method, params)

    # ------------------------------------------------------------------ initialize

    def initialize_result(self, client_name: str, client_version: str) -> dict[str, Any]:
        return initialize_result(self.codex_home, client_name, client_version)

    def startup_notifications(self) -> list[tuple[str, dict[str, Any]]]:
        """What a client is told right after ``initialize``: config and plugin problems."""
        warnings = [("configWarning", warning) for warning in self.config.warnings]
        for record in self.plugins.failures():
            warnings.append(("configWarning", plugin_warning(record)))
        return [*warnings, *self.startup_notices]


def plugin_warning(record: PluginRecord) -> dict[str, Any]:
    return {
        "summary": f"Plugin `{record.name}` failed and is not active: {record.error}",
        "details": "Run `codex-app-server plugins list` for every plugin's state.",
        "path": None,
        "range": None,
    }
