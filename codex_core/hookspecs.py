"""The plugin contract: every way a plugin can extend codex-core.

This is the one file a plugin author needs to read. A plugin is a module (or any object) with
functions decorated by ``hookimpl`` whose names match the hooks below; it is found through the
``codex_core.plugins`` entry-point group::

    # pyproject.toml of codex-plugin-hello
    [project.entry-points."codex_core.plugins"]
    hello = "codex_plugin_hello"

    # codex_plugin_hello.py
    from codex_core.hookspecs import hookimpl
    from codex_core.rpc import RpcMethod

    async def say_hello(ctx, params):
        return {"greeting": f"hello {ctx.connection.client_name}"}

    @hookimpl
    def codex_rpc_methods():
        return [RpcMethod("hello/say", say_hello)]

Capability hooks (transports, auth providers, reviewers, tools, fs watchers, model providers,
RPC methods) are called once at startup and return the objects the plugin contributes; each
object implements the small interface defined right below its hook. Every hook may accept any
subset of its documented arguments, so new arguments can be added without breaking plugins.
A plugin whose hook raises is marked ``failed`` and everything it contributed is dropped; the
kernel keeps serving.

Hooks are synchronous (pluggy calls them); the interfaces' methods that do I/O are ``async``
and run on the kernel's event loop (anyio), so they must never block it.

Each hook's ``@declare(...)`` says, once, what the kernel does with what it returns
(``HookInterface``): the kernel's tables are derived from ``INTERFACES``, never written again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

import pluggy

from codex_core.rpc.handlers import RpcMethod

if TYPE_CHECKING:
    import argparse

    from pydantic import BaseModel

    from codex_core.kernel import Kernel
    from codex_core.models.contract import ModelEvent, ModelRequest
    from codex_core.rpc.connection import Connection
    from codex_core.threads.store import ThreadStore

hookspec = pluggy.HookspecMarker("codex")
hookimpl = pluggy.HookimplMarker("codex")


# --------------------------------------------------------------------------- hook interfaces

Returns = Literal["contributions", "mapping", "notification", "awaitable", "first"]


@dataclass(frozen=True, slots=True)
class HookInterface:
    """What the kernel does with one hook's results, declared beside its spec.

    ``returns`` is ``contributions`` (objects that must be instances of ``kind``, kept in the
    kernel's ``attribute``: a dict by their ``key`` attribute, where the first plugin to claim a
    key keeps it, or without a key a list, highest ``ranked_by`` first), ``mapping`` (a dict
    the kernel merges), ``notification`` (nothing), ``awaitable`` (nothing, or an awaitable
    the kernel awaits) or ``first`` (the first plugin's answer that is not ``None`` serves,
    asked when it is first needed). ``startup_only``: the hook only takes full effect when the
    server starts, so a plugin loaded later asks for a restart (``Kernel.reload_plugins``).
    """

    returns: Returns
    kind: type | None = None
    key: str | None = None
    ranked_by: str | None = None
    #: What one contribution is called in log messages (``transport scheme``).
    label: str = ""
    attribute: str | None = None
    startup_only: bool = False

    @property
    def collected_at_load(self) -> bool:
        """Whether every plugin is asked when it loads (at startup, or hot-loaded later)."""
        return self.returns in ("contributions", "mapping")


#: Every hook's interface, by hook name; ``declare`` fills it as this module is read.
INTERFACES: dict[str, HookInterface] = {}

_Spec = TypeVar("_Spec", bound=Callable[..., Any])


def declare(interface: HookInterface) -> Callable[[_Spec], _Spec]:
    """Record ``interface`` as the hook's (the one place it is written); returns the spec."""

    def record(spec: _Spec) -> _Spec:
        INTERFACES[spec.__name__] = interface
        return spec

    return record


def contributions(
    kind: type,
    *,
    label: str,
    attribute: str,
    key: str | None = None,
    ranked_by: str | None = None,
    startup_only: bool = False,
) -> HookInterface:
    """A capability hook's interface: it returns objects of ``kind`` the kernel keeps."""
    return HookInterface(
        "contributions",
        kind=kind,
        key=key,
        ranked_by=ranked_by,
        label=label,
        attribute=attribute,
        startup_only=startup_only,
    )


NOTIFICATION = HookInterface("notification")
AWAITABLE = HookInterface("awaitable")
FIRST_RESULT = HookInterface("first")


# --------------------------------------------------------------------------- transports


@runtime_checkable
class Channel(Protocol):
    """One client's message pipe, as a transport presents it to the kernel.

    A frame is one protocol message: a line on stdio, a text frame on a websocket.
    """

    @property
    def peer(self) -> str:
        """Who is on the other end, for logs (``stdio``, ``127.0.0.1:53412``)."""

    async def receive(self) -> bytes | str:
        """The next frame; raises ``anyio.EndOfStream`` when the client is gone."""

    async def send(self, frames: Sequence[str]) -> None:
        """Write frames in order; batching lets a transport save system calls."""

    async def aclose(self) -> None: ...


@runtime_checkable
class Transport(Protocol):
    """A listen-URL scheme (``stdio``, ``ws``, ``unix``) and the server behind it."""

    scheme: str

    async def serve(self, url: str, kernel: Kernel) -> None:
        """Accept clients at ``url`` and hand each one to ``kernel.serve_channel``.

        Runs until cancelled. Bad URLs raise ``ValueError`` with a message for the operator.
        """


@declare(
    contributions(
        Transport, key="scheme", label="transport scheme", attribute="transports", startup_only=True
    )
)
@hookspec
def codex_transports(kernel: Kernel) -> Iterable[Transport]:
    """Listen-URL schemes this plugin serves (stdio is built in)."""
    raise NotImplementedError


# --------------------------------------------------------------------------- accounts


@runtime_checkable
class AuthProvider(Protocol):
    """A login type of ``account/login/start`` (the params' ``type``: ``apiKey``, ...)."""

    login_type: str

    async def start_login(self, params: dict[str, Any], connection: Connection) -> dict[str, Any]:
        """Begin a login and return the ``account/login/start`` result.

        Logins that finish later (browser, device code) complete by sending
        ``account/login/completed`` themselves.
        """

    async def cancel_login(self, login_id: str) -> bool:
        """Stop a pending login; ``False`` when this provider does not know ``login_id``."""


@declare(
    contributions(AuthProvider, key="login_type", label="login type", attribute="auth_providers")
)
@hookspec
def codex_auth_providers(kernel: Kernel) -> Iterable[AuthProvider]:
    """Login types this plugin adds."""
    raise NotImplementedError


# --------------------------------------------------------------------------- approvals


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """Something the agent wants to do that the approval policy says needs a decision.

    ``method`` is the server request the ``user`` reviewer would send to the client
    (``item/commandExecution/requestApproval``, ``item/fileChange/requestApproval``, ...) and
    ``params`` its wire params, so every reviewer sees exactly what a person would.
    """

    method: str
    thread_id: str
    turn_id: str
    item_id: str
    params: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class ApprovalReviewer(Protocol):
    """Who answers approval requests; chosen by ``approvals_reviewer`` (``user``, ...).

    Optional: ``automatic = True`` for a reviewer that answers by itself (a model): the thread
    then shows no ``waitingOnApproval`` while it reviews, since nobody waits on the person.
    """

    name: str

    async def review(self, request: ApprovalRequest) -> dict[str, Any]:
        """Decide; returns the wire result of the request (``{"decision": "accept"}``)."""


@declare(
    contributions(
        ApprovalReviewer, key="name", label="approval reviewer", attribute="approval_reviewers"
    )
)
@hookspec
def codex_approval_reviewers(kernel: Kernel) -> Iterable[ApprovalReviewer]:
    """Approval reviewers this plugin adds."""
    raise NotImplementedError


# --------------------------------------------------------------------------- tools


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What the model sees of a tool call: its output and whether it succeeded.

    The output is text, or content items as the Responses API takes them in a
    ``function_call_output`` (``input_text``, ``input_image``), for a tool whose result is
    more than text (an MCP tool's content blocks).
    """

    output: str | list[dict[str, Any]]
    success: bool = True


class Tool(ABC):
    """A function the model may call during a turn: subclass it and fill in the fields.

    An abstract base class rather than a Protocol, so the optional fields are declared here with
    their defaults and the kernel reads them as attributes (``tool.format``), instead of each
    reader guessing with ``getattr``. Set the fields as class attributes, or in ``__init__`` for
    tools made at run time (an MCP server's).
    """

    name: str
    description: str
    #: JSON Schema of the arguments object, as sent to the model.
    input_schema: dict[str, Any]
    #: A custom, freeform tool (say a grammar: ``{"type": "grammar", "syntax": "lark", ...}``):
    #: offered as ``{"type": "custom", "format": ...}``; the call's raw text arrives as
    #: ``{"input": text}``.
    format: dict[str, Any] | None = None
    #: Offered inside this Responses API namespace (as MCP servers' tools are), as
    #: ``namespaced_name``; ``name`` is then the tool's name outside namespaces.
    namespace: str | None = None
    namespaced_name: str | None = None

    def offered(self, setting: Callable[[str], Any]) -> bool:
        """Whether a thread is offered the tool at all; asked at each model request.

        ``setting("features.shell_tool")`` reads a dotted config key as that thread sees it,
        its ``thread/start`` overrides included. Every thread by default.
        """
        return True

    @abstractmethod
    async def call(self, arguments: dict[str, Any], context: Any) -> ToolResult:
        """Run the tool; ``context`` carries the thread, turn, cwd and approval helpers."""


@declare(contributions(Tool, key="name", label="tool", attribute="tools"))
@hookspec
def codex_tools(kernel: Kernel) -> Iterable[Tool]:
    """Tools this plugin offers the model."""
    raise NotImplementedError


# --------------------------------------------------------------------------- fs watchers


@runtime_checkable
class FsWatcher(Protocol):
    """A backend for ``fs/watch``; the one with the highest ``priority`` is used."""

    name: str
    priority: int

    def watch(self, path: Path, on_change: Callable[[list[str]], None]) -> AsyncIterator[None]:
        """Watch ``path`` until the iterator is closed, reporting changed absolute paths.

        Yields once when the watch is armed (the kernel replies to ``fs/watch`` only then, so
        no change after the reply is missed) and may yield again; ``on_change`` runs on the
        event loop; raising hands the watch to the next backend.
        """


@declare(
    contributions(FsWatcher, ranked_by="priority", label="fs watcher", attribute="fs_watchers")
)
@hookspec
def codex_fs_watchers(kernel: Kernel) -> Iterable[FsWatcher]:
    """File-watching backends this plugin provides (polling is built in)."""
    raise NotImplementedError


# --------------------------------------------------------------------------- model providers


@runtime_checkable
class ModelProvider(Protocol):
    """A model wire API (``responses``, ``chat``) that turns a request into a stream of events.

    The request and the events are the typed model contract of ``codex_core.models.contract``
    (``ModelRequest``, ``ModelEvent``); the wire format (request body, streamed events,
    headers) is the provider's own business. The core calls it through
    ``codex_core.models.sampling.sample``.
    """

    wire_api: str

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Send ``request`` to the model and yield its events as they arrive.

        ``request.provider_id`` names the ``[model_providers.<id>]`` table to use. The stream
        starts with ``ResponseStarted`` (the served model and rate limits, when the wire
        reports them), then output items and their deltas, and ends with
        ``ResponseCompleted`` (with the token usage) or, when the request failed for good
        (after the provider's own retries), ``ResponseFailed`` with a message a person can act
        on and its kind (the protocol's ``CodexErrorInfo``), which the turn reports.
        """


@declare(
    contributions(ModelProvider, key="wire_api", label="wire API", attribute="model_providers")
)
@hookspec
def codex_model_providers(kernel: Kernel) -> Iterable[ModelProvider]:
    """Model wire APIs this plugin speaks."""
    raise NotImplementedError


# --------------------------------------------------------------------------- thread storage


@declare(FIRST_RESULT)
@hookspec(firstresult=True)
def codex_thread_store(kernel: Kernel) -> ThreadStore | None:
    """Where threads persist: a ``ThreadStore`` (``codex_core.threads.store``), or ``None``.

    The first plugin to return one wins; without one the kernel uses its default, the official
    rollout layout in ``CODEX_HOME`` with an SQLite index (``codex_core.threads.indexed_store``).
    Called when threads are first used, not at startup: a store opens its database lazily.
    """


# --------------------------------------------------------------------------- RPC methods


@declare(contributions(RpcMethod, key="name", label="method", attribute="rpc_methods"))
@hookspec
def codex_rpc_methods(kernel: Kernel) -> Iterable[RpcMethod]:
    """JSON-RPC methods this plugin answers.

    Methods of the official protocol are validated against the schema's params model before
    the handler runs; a plugin may also add methods of its own.
    """
    raise NotImplementedError


# --------------------------------------------------------------------------- command line


@declare(HookInterface("notification", startup_only=True))
@hookspec
def codex_cli_options(parser: argparse.ArgumentParser) -> None:
    """Add options to ``codex-app-server`` (a transport's ``--ws-auth``, say).

    Called once by the command-line entry point, after plugins are loaded and before the command
    line is parsed for good, so ``--help`` lists the options and unknown ones are still errors.
    The parsed values land in ``kernel.cli_options``, keyed by each option's argparse ``dest``,
    where the plugin's transports and startup hooks read them. A kernel that a host embeds never
    sees a command line and has an empty ``cli_options``: give every option a default that
    works without it, and read it with ``kernel.cli_options.get(dest)``. Prefix option names
    (``--ws-...``) so two plugins do not clash; a clash marks the second plugin failed.
    """


# --------------------------------------------------------------------------- lifecycle


@declare(HookInterface("awaitable", startup_only=True))
@hookspec
def codex_startup(kernel: Kernel) -> Awaitable[None] | None:
    """The kernel is about to serve; may return an awaitable, which the kernel awaits."""


@declare(AWAITABLE)
@hookspec
def codex_shutdown(kernel: Kernel) -> Awaitable[None] | None:
    """The kernel is stopping; may return an awaitable, which the kernel awaits."""


@declare(AWAITABLE)
@hookspec
def codex_turn_starting(kernel: Kernel, thread_id: str, turn_id: str) -> Awaitable[None] | None:
    """A turn is about to ask the model for the first time; may return an awaitable the turn
    waits for (MCP servers finishing their startup, so that their tools are offered)."""


@declare(NOTIFICATION)
@hookspec
def codex_thread_loaded(kernel: Kernel, thread_id: str) -> None:
    """A thread was loaded (``thread/start``, ``thread/fork``, or ``thread/resume`` of a thread
    that was not loaded), called right after the reply and the ``thread/started`` that follow
    it, so what the plugin tells the thread's subscribers comes after them (MCP servers start
    per thread, as in the reference, and report ``mcpServer/startupStatus/updated``)."""


@declare(AWAITABLE)
@hookspec
def codex_thread_unloading(kernel: Kernel, thread_id: str) -> Awaitable[None] | None:
    """A loaded thread is about to be unloaded (archived, deleted, or idle with no
    subscriber), while its subscribers still hear it; may return an awaitable the unload waits
    for (the shell stops the thread's background terminals, whose items complete first)."""


@declare(NOTIFICATION)
@hookspec
def codex_connection_opened(connection: Connection) -> None:
    """A client connected (it has not initialized yet)."""


@declare(NOTIFICATION)
@hookspec
def codex_connection_closed(connection: Connection) -> None:
    """A client went away; drop whatever state the plugin kept for it."""


@declare(HookInterface("mapping"))
@hookspec
def codex_config_sections(kernel: Kernel) -> Mapping[str, type[BaseModel]]:
    """Config tables this plugin owns, by top-level name, each with the model that checks it.

    They are validated layer by layer like the built-in keys (a bad value is reported as a
    ``configWarning`` and falls back to lower layers), and are not "unrecognized settings".
    """
    raise NotImplementedError


@declare(NOTIFICATION)
@hookspec
def codex_config_loaded(kernel: Kernel, config: dict[str, Any]) -> None:
    """The effective configuration was loaded (at startup and after every reload)."""
