"""The MCP connections: one ``ServerHandle`` per configured server and thread, grouped in a
``ServerGroup`` per thread and owned by ``McpManager``.

As in the reference, every loaded thread has its own servers (its own processes): they start
when the thread is loaded (``thread/start``, ``thread/fork``, ``thread/resume``) and stop when
it unloads, and their ``mcpServer/startupStatus/updated`` (``starting``, then ``ready`` or
``failed``) carries the thread's id and goes to the thread's subscribers only. A thread-less
group serves what names no thread (``mcpServerStatus/list``, ``mcpServer/resource/read``
without ``threadId``) and reports nothing, as the reference's does.

Each server runs in its own task (the SDK's ``Client`` must be entered and left by the same
task): it connects, lists tools and resources within ``startup_timeout``, then stays open until
stopped. A server that fails is reported (status ``failed`` with the error) and never takes
anything else down. Ready servers' tools are offered to the model through ``kernel.tools``
(see ``tools.py``); a call runs on the calling thread's server.

The ``mcp`` SDK (and its HTTP and OAuth stack) is imported when a server first starts, not when
the plugin loads: most sessions never start one, and the SDK costs about half a second.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from codex_plugin_mcp.config import OAuthSettings, ServerConfig, parse_servers
from codex_plugin_mcp.elicitation import Asker, request_params, result_from
from codex_plugin_mcp.oauth_store import CredentialStore

if TYPE_CHECKING:
    from mcp import Client
    from mcp.shared.dispatcher import ProgressFnT
    from mcp.shared.exceptions import MCPError
    from mcp.types import ElicitRequestParams, ElicitResult

    from codex_core.kernel import Kernel
    from codex_plugin_mcp.oauth import OAuthSession

log = logging.getLogger(__name__)

STARTUP_STATUS = "mcpServer/startupStatus/updated"
#: The namespace the reference gives a server's tools (``mcp__NAME``), and its tools' flat
#: names (``mcp__NAME__TOOL``), kept within the Responses API's 64 characters.
NAMESPACE_PREFIX = "mcp__"
MAX_TOOL_NAME = 64
#: How long an unloading thread gives its servers to end their sessions.
STOP_WAIT = 5.0
_INVALID = re.compile(r"[^a-zA-Z0-9_-]")


def sanitize(name: str) -> str:
    return _INVALID.sub("_", name)


def namespace(server: str) -> str:
    return f"{NAMESPACE_PREFIX}{sanitize(server)}"


def qualified_name(server: str, tool: str) -> str:
    """``mcp__SERVER__TOOL``; too long a name keeps its head and gets a hash suffix."""
    name = f"{namespace(server)}__{sanitize(tool)}"
    if len(name) <= MAX_TOOL_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()
    return name[: MAX_TOOL_NAME - len(digest)] + digest


#: What the reference reports (word for word, repetition included) for a server that exits
#: before answering ``initialize``.
HANDSHAKE_CLOSED = (
    "MCP startup failed: handshaking with MCP server failed: connection closed: initialize "
    "response: connection closed: initialize response"
)


class ServerUnavailable(Exception):
    """The server is disabled, failed to start or went away."""


def first_cause(exc: BaseException) -> BaseException:
    """The exception itself, or the first one inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def describe(exc: BaseException) -> str:
    """A one-line message for an exception, looking inside exception groups."""
    exc = first_cause(exc)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        # As the reference words a spawn failure: ``No such file or directory (os error 2)``.
        return f"{exc.strerror} (os error {exc.errno})"
    text = str(exc) or type(exc).__name__
    return text


def dump(value: Any) -> Any:
    """An SDK model in wire form (camelCase, no ``None`` members)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(by_alias=True, exclude_none=True, mode="json")
    return value


def _errlog() -> TextIO:
    """Where stdio servers' stderr goes: ours, when it is a real file."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return open(os.devnull, "w")
    return sys.stderr


class ServerHandle:
    """One configured MCP server of one thread (``None``: the thread-less group) and, once
    started, its live connection."""

    def __init__(
        self, manager: McpManager, config: ServerConfig, thread_id: str | None = None
    ) -> None:
        self.manager = manager
        self.config = config
        self.thread_id = thread_id
        self.name = config.name
        self.state = "notStarted"
        self.error: str | None = None
        self.client: Client | None = None
        self.tools: list[Any] = []
        self.resources: list[Any] = []
        self.resource_templates: list[Any] = []
        self.server_info: dict[str, Any] | None = None
        self.capabilities: dict[str, Any] | None = None
        #: ``mcpServerStatus/list``'s ``authStatus``; settled when the server starts.
        self.auth_status = (
            "bearerToken" if config.url and config.bearer_token_env_var else ("unsupported")
        )
        self.settled = anyio.Event()
        #: Set once the connection is closed (a stdio server's process has ended).
        self.finished = anyio.Event()
        self._stop = anyio.Event()
        #: Who asks the user when the server elicits: one per tool call in flight, latest last.
        self._askers: list[Asker] = []

    # ------------------------------------------------------------------ lifecycle

    def _transport_client(self, session: OAuthSession | None) -> Client:
        """The SDK client; an HTTP server's requests carry its OAuth token when logged in."""
        from mcp import Client

        config = self.config
        if config.url:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            headers = config.headers()
            timeout = httpx2.Timeout(30.0, read=300.0)
            auth = session.auth() if session is not None else None
            http = httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth)
            transport = streamable_http_client(config.url, http_client=http)
            return Client(transport, cache=None, mode="legacy", elicitation_callback=self._elicit)
        from mcp.client.stdio import StdioServerParameters

        assert config.command is not None
        params = StdioServerParameters(
            command=config.command, args=list(config.args), env=dict(config.env) or None,
            cwd=config.cwd,
        )  # fmt: skip
        return Client(params, cache=None, mode="legacy", elicitation_callback=self._elicit)

    async def run(self) -> None:
        """Connect, discover, stay connected until stopped; never raises."""
        from mcp.shared.exceptions import MCPError
        from mcp.types import CONNECTION_CLOSED

        from codex_plugin_mcp.oauth import resolve_auth

        self._set("starting")
        try:
            with anyio.CancelScope() as scope:
                scope.deadline = anyio.current_time() + self.config.startup_timeout
                async with AsyncExitStack() as stack:
                    self.auth_status, session = await resolve_auth(
                        self.config, self.manager.credentials
                    )
                    client = await stack.enter_async_context(self._transport_client(session))
                    await self._discover(client)
                    scope.deadline = math.inf
                    self.client = client
                    self._set("ready")
                    await self._stop.wait()
            if scope.cancelled_caught and self.state == "starting":
                timeout = self.config.startup_timeout
                self._set("failed", f"MCP client for `{self.name}` timed out after "
                          f"{timeout:g} seconds")  # fmt: skip
        except anyio.get_cancelled_exc_class():
            self._finish()
            raise
        except Exception as exc:
            log.warning("MCP server %s: %s", self.name, describe(exc))
            log.debug("MCP server %s failed", self.name, exc_info=True)
            reason = describe(exc)
            if self.auth_status == "notLoggedIn":
                reason = f"{reason} (the server requires OAuth: log in with mcpServer/oauth/login)"
            cause = first_cause(exc)
            closed = isinstance(cause, MCPError) and cause.error.code == CONNECTION_CLOSED
            if self.state == "starting" and closed:
                self._set("failed", HANDSHAKE_CLOSED)
            elif self.state == "starting":
                self._set("failed", f"MCP startup failed: {reason}", failed_to_start=True)
            else:
                self._set("failed", f"MCP server `{self.name}` stopped: {reason}")
        self._finish()

    def _finish(self) -> None:
        self.client = None
        self.manager.unregister_tools(self)
        if self.state in ("starting", "ready"):
            self.state = "cancelled" if self.state == "starting" else "notStarted"
        self.settled.set()
        self.finished.set()

    async def _discover(self, client: Client) -> None:
        self.server_info = dump(client.server_info) if client.server_info else None
        capabilities = client.server_capabilities
        self.capabilities = dump(capabilities)
        tools = (await client.list_tools()).tools
        self.tools = [tool for tool in tools if self.config.allows(tool.name)]
        if capabilities.resources is not None:
            try:
                self.resources = list((await client.list_resources()).resources)
                templates = await client.list_resource_templates()
                self.resource_templates = list(templates.resource_templates)
            except Exception as exc:  # resources are optional: a failure is not fatal
                log.info("MCP server %s: listing resources failed: %s", self.name, exc)

    def _set(self, state: str, error: str | None = None, *, failed_to_start: bool = False) -> None:
        """Take ``state`` and tell the thread's subscribers. ``error`` is what a request that
        needs the server hears (``failed to get client: ERROR``); the notification prefixes a
        startup failure with ``MCP client for `NAME` failed to start:``, as the reference."""
        self.state, self.error = state, error
        if state == "ready":
            self.manager.register_tools(self)
        if state in ("ready", "failed"):
            self.settled.set()
        if state == "failed":
            self.manager.unregister_tools(self)
        if failed_to_start:
            error = f"MCP client for `{self.name}` failed to start: {error}"
        self.announce(error)

    def announce(self, error: str | None = None) -> None:
        """``mcpServer/startupStatus/updated`` with the current state, to the thread's
        subscribers (a reload announces a server that stays ready, as the reference does)."""
        if self.thread_id is None:
            return  # the thread-less group reports nothing, as the reference's
        self.manager.tell_thread(
            self.thread_id, STARTUP_STATUS,
            {"threadId": self.thread_id, "name": self.name, "status": self.state,
             "error": error, "failureReason": None},
        )  # fmt: skip

    def stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ use

    async def ready_client(self) -> Client:
        """The live client, after startup; ``ServerUnavailable`` when there is none."""
        await self.settled.wait()
        if self.client is None:
            raise ServerUnavailable(self.error or f"MCP server `{self.name}` is not running")
        return self.client

    async def call_tool(
        self,
        tool: str,
        arguments: dict[str, Any] | None,
        progress: ProgressFnT | None = None,
        meta: Any = None,
        ask: Asker | None = None,
    ) -> Any:
        """``tools/call``: the SDK's result; raises on transport errors and timeouts. ``ask``
        answers the server's elicitations while the call runs."""
        from mcp.shared.exceptions import MCPError

        client = await self.ready_client()
        timeout = self.config.tool_timeout
        if ask is not None:
            self._askers.append(ask)
        try:
            with anyio.fail_after(timeout):
                return await client.call_tool(
                    tool, arguments, read_timeout_seconds=timeout, progress_callback=progress,
                    meta=meta,
                )  # fmt: skip
        except MCPError as exc:
            self._check_closed(exc)
            raise
        finally:
            if ask is not None:
                self._askers.remove(ask)

    async def _elicit(self, context: Any, params: ElicitRequestParams) -> ElicitResult:
        """The server's ``elicitation/create``: asked of the latest call's client."""
        from mcp.types import ElicitResult

        if not self._askers:
            return ElicitResult(action="cancel")
        return result_from(await self._askers[-1](request_params(self.name, params)))

    async def read_resource(self, uri: str) -> Any:
        """``resources/read``: the SDK's result; the server's own error raises ``MCPError``."""
        return await self._request("read_resource", uri)

    async def list_resources(self, cursor: str | None = None) -> Any:
        """``resources/list``, one page."""
        return await self._request("list_resources", cursor=cursor)

    async def list_resource_templates(self, cursor: str | None = None) -> Any:
        """``resources/templates/list``, one page."""
        return await self._request("list_resource_templates", cursor=cursor)

    async def _request(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One request of the SDK client, within the server's tool timeout; a closed
        connection marks the server as stopped."""
        from mcp.shared.exceptions import MCPError

        client = await self.ready_client()
        try:
            with anyio.fail_after(self.config.tool_timeout):
                return await getattr(client, method)(*args, **kwargs)
        except MCPError as exc:
            self._check_closed(exc)
            raise

    def _check_closed(self, exc: MCPError) -> None:
        """The server went away (it crashed): drop its tools; a reload starts it again."""
        from mcp.types import CONNECTION_CLOSED

        if exc.error.code == CONNECTION_CLOSED and self.client is not None:
            log.warning("MCP server %s: the connection closed", self.name)
            self.client = None
            self.state, self.error = "failed", f"MCP server `{self.name}` stopped: {exc}"
            self.manager.unregister_tools(self)
            self.stop()


class ServerGroup:
    """The servers of one thread (``thread_id``), or the thread-less ones (``None``)."""

    def __init__(self, manager: McpManager, thread_id: str | None) -> None:
        self.manager = manager
        self.thread_id = thread_id
        self.handles: dict[str, ServerHandle] = {}

    @property
    def configs(self) -> dict[str, ServerConfig]:
        """The servers this group runs: the thread's ``mcp_servers`` (its ``thread/start``
        overrides included: ``mcp_servers = {}`` has none), else the server's."""
        return self.manager.configs_for(self.thread_id)

    def ensure_started(self, names: list[str] | None = None) -> list[ServerHandle]:
        """Start (in parallel) the enabled servers not started yet; returns their handles."""
        started = []
        for name, config in self.configs.items():
            if names is not None and name not in names:
                continue
            if not config.enabled or config.problem:
                continue
            handle = self.handles.get(name)
            if handle is None:
                handle = self.handles[name] = ServerHandle(self.manager, config, self.thread_id)
                self.manager.spawn(handle.run, f"mcp server {name} ({self.thread_id})")
            started.append(handle)
        return started

    async def wait_started(self, names: list[str] | None = None) -> None:
        for handle in self.ensure_started(names):
            await handle.settled.wait()

    def handle(self, name: str) -> ServerHandle:
        """The running server ``name``; ``ServerUnavailable`` when unknown or disabled."""
        config = self.configs.get(name)
        if config is None:
            raise ServerUnavailable(f"MCP server `{name}` is not configured")
        if not config.enabled:
            raise ServerUnavailable(f"MCP server `{name}` is disabled")
        if config.problem:
            raise ServerUnavailable(config.problem)
        self.ensure_started([name])
        return self.handles[name]

    def drop(self, name: str) -> None:
        """Stop the server ``name``; it starts again when next needed."""
        handle = self.handles.pop(name, None)
        if handle is not None:
            handle.stop()
            self.manager.unregister_tools(handle)

    def reconfigure(self, restart_failed: bool) -> None:
        """Stop the servers whose table changed (and, with ``restart_failed``, those that
        failed or crashed)."""
        configs = self.configs
        for name, handle in list(self.handles.items()):
            failed = restart_failed and handle.state == "failed"
            if failed or configs.get(name) != handle.config:
                self.drop(name)

    async def close(self) -> None:
        """Stop every server and give them a moment to end their sessions (a stdio server's
        process has ended when this returns, unless it took longer)."""
        handles = list(self.handles.values())
        self.handles.clear()
        for handle in handles:
            handle.stop()
        with anyio.move_on_after(STOP_WAIT):
            for handle in handles:
                await handle.finished.wait()


class McpManager:
    """Every configured server, per thread; published as ``kernel.services["mcp"]``."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.configs: dict[str, ServerConfig] = {}
        #: What names no thread: ``mcpServerStatus/list``, a thread-less resource read.
        self.shared = ServerGroup(self, None)
        #: Each loaded thread's servers, by thread id.
        self.threads: dict[str, ServerGroup] = {}
        #: Qualified tool name -> the ``McpTool`` we put into ``kernel.tools``.
        self.registered: dict[str, Any] = {}
        self.oauth = OAuthSettings()
        self.credentials = CredentialStore(kernel.config.codex_home)
        self.configure(kernel.config.effective)

    @property
    def groups(self) -> list[ServerGroup]:
        return [self.shared, *self.threads.values()]

    # ------------------------------------------------------------------ threads

    def _loaded_thread(self, thread_id: str) -> Any:
        threads = self.kernel.services.get("threads")
        return None if threads is None else threads.threads.get(thread_id)

    def configs_for(self, thread_id: str | None) -> dict[str, ServerConfig]:
        """The servers a thread runs: its own ``mcp_servers`` when its ``thread/start``
        overrode them, else the configured ones."""
        loaded = None if thread_id is None else self._loaded_thread(thread_id)
        if loaded is None or "mcp_servers" not in loaded.overrides:
            return self.configs
        return parse_servers({"mcp_servers": loaded.overrides["mcp_servers"]})

    def tell_thread(self, thread_id: str, method: str, params: dict[str, Any]) -> None:
        """A notification for the thread's subscribers (none once it unloaded)."""
        threads = self.kernel.services.get("threads")
        loaded = self._loaded_thread(thread_id)
        if threads is not None and loaded is not None:
            threads.emit(loaded, method, params)

    def thread_loaded(self, thread_id: str) -> None:
        """Start the thread's servers (``codex_thread_loaded``)."""
        self.group(thread_id).ensure_started()

    def group(self, thread_id: str | None) -> ServerGroup:
        """The servers of a thread (made for a thread loaded without ``codex_thread_loaded``,
        a sub-agent's say), or the thread-less ones for ``None``."""
        if thread_id is None:
            return self.shared
        group = self.threads.get(thread_id)
        if group is None:
            group = self.threads[thread_id] = ServerGroup(self, thread_id)
        return group

    async def thread_unloading(self, thread_id: str) -> None:
        """Stop the thread's servers (``codex_thread_unloading``)."""
        group = self.threads.pop(thread_id, None)
        if group is not None:
            await group.close()

    # ------------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """Stop every server and give them a moment to end their sessions (``codex_shutdown``);
        the kernel cancels whatever is left."""
        with anyio.move_on_after(STOP_WAIT):
            for group in self.groups:
                await group.close()

    def configure(self, config: dict[str, Any], *, restart_failed: bool = False) -> bool:
        """Take the ``mcp_servers`` of ``config``; servers whose table changed (and, with
        ``restart_failed``, those that failed or crashed) start again when next needed."""
        configs = parse_servers(config)
        self.oauth = OAuthSettings.from_config(config)
        if self.oauth.store_mode != self.credentials.mode:
            self.credentials = CredentialStore(self.kernel.config.codex_home, self.oauth.store_mode)
        changed = configs != self.configs
        self.configs = configs
        for group in self.groups:
            group.reconfigure(restart_failed)
        return changed

    def restart(self, name: str) -> None:
        """Stop the server in every thread and start it again (after a login, so it uses the
        new tokens); the thread-less one starts when next needed."""
        for group in self.groups:
            group.drop(name)
        for group in self.threads.values():
            group.ensure_started([name])

    def spawn(self, func: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        # Servers live as long as their thread: a graceful shutdown must not wait for them.
        self.kernel.start_soon(func, name=name, service=True)

    # ------------------------------------------------------------------ tools for the model

    def register_tools(self, handle: ServerHandle) -> None:
        from codex_plugin_mcp.tools import McpTool

        tools = self.kernel.tools
        # By name, as the reference offers a server's tools (a stable order also keeps the
        # model's prompt cache warm whatever order the server lists them in).
        for spec in sorted(handle.tools, key=lambda spec: str(spec.name)):
            tool = McpTool(self, handle.name, spec)
            current = tools.get(tool.name)
            if current is not None and current is not self.registered.get(tool.name):
                log.warning("MCP tool %s: another plugin provides it already", tool.name)
                continue
            tools[tool.name] = tool
            self.registered[tool.name] = tool

    def unregister_tools(self, handle: ServerHandle) -> None:
        """Withdraw the server's tools, unless another thread's copy of it is still ready."""
        for group in self.groups:
            other = group.handles.get(handle.name)
            if other is not None and other is not handle and other.client is not None:
                return
        tools = self.kernel.tools
        for name, tool in list(self.registered.items()):
            if tool.server == handle.name:
                del self.registered[name]
                if tools.get(name) is tool:
                    del tools[name]
