"""``AsyncCodex`` and ``AsyncThread``: the typed, async embedding API over an in-process kernel.

It is a thin layer over what a stdio client does (``Kernel`` + ``kernel.connect()``): requests
are built from and answers parsed into the generated protocol models, one task routes each
thread's notifications to the turns streaming them, and the server's approval requests are
answered by the host's callback. Anything it does not cover stays reachable through
``codex.client`` (the low-level ``Client``) and ``codex.kernel``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from codex_core import __version__
from codex_core.embed.config import to_overrides
from codex_core.embed.errors import CodexError, TurnFailedError
from codex_core.embed.results import APPROVAL_METHODS, RunResult
from codex_core.rpc.errors import RpcError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from codex_core.client import Client
    from codex_core.embed.results import ApprovalRequest, Decision
    from codex_core.kernel import Kernel
    from codex_core.protocol.base import WireModel
    from codex_core.protocol.models import (
        InitializeResponse,
        Thread,
        ThreadListResponse,
    )

#: ``on_approval``: gets the request's params model, returns a decision (or the wire result);
#: may be async.
ApprovalCallback = Callable[
    ["ApprovalRequest"], "Decision | dict[str, Any] | Awaitable[Decision | dict[str, Any]]"
]
_Route = MemoryObjectSendStream[tuple[str, Any]]


def _model(name: str) -> Any:
    from codex_core.protocol.models import load

    return load(name)


def _wire(model: BaseModel) -> dict[str, Any]:
    """Params as the server reads them: aliases, and no keys the host did not set."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def event_from(method: str, params: Any) -> WireModel | None:
    """A server notification as its generated model; None for one outside the schema."""
    from codex_core.protocol.methods import SERVER_NOTIFICATIONS

    spec = SERVER_NOTIFICATIONS.get(method)
    if spec is None or spec.params is None:
        return None
    event: WireModel = _model(spec.params).model_validate(params)
    return event


def _thread_of(params: Any) -> str | None:
    if not isinstance(params, dict):
        return None
    thread_id = params.get("threadId")
    if thread_id is None and isinstance(params.get("thread"), dict):
        thread_id = params["thread"].get("id")
    return thread_id if isinstance(thread_id, str) else None


def user_input(prompt: str | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A prompt as ``turn/start``'s ``input``: text, or ``UserInput`` items as they are."""
    if isinstance(prompt, str):
        return [{"type": "text", "text": prompt, "text_elements": []}]
    return [dict(item) for item in prompt]


class AsyncCodex:
    """A codex-core kernel in this process, and one client session with it.

    ``home`` is its CODEX_HOME (default: ``$CODEX_HOME``, else ``~/.codex``: the user's real
    one, as for ``codex-app-server``; pass a folder to keep a host's threads apart). ``config``
    is a dict of settings with the precedence of ``-c`` flags (``{"model": "gpt-5",
    "features": {"shell_tool": False}}``). ``on_approval`` answers the server's approval
    requests; without it they are declined, so nothing runs that nobody approved.
    ``plugins`` adds plugin objects of the host's own; ``load_entry_points=False`` loads only
    those. ``server`` runs an app-server command over stdio instead of the in-process kernel
    (``["codex", "app-server"]``, the official one, say), with ``home`` as its CODEX_HOME and
    ``config`` as its ``-c`` flags: the same API in front of any implementation.
    """

    def __init__(
        self,
        *,
        home: str | os.PathLike[str] | None = None,
        config: Mapping[str, Any] | None = None,
        profile: str | None = None,
        on_approval: ApprovalCallback | None = None,
        plugins: Iterable[object] = (),
        load_entry_points: bool = True,
        disabled_plugins: Iterable[str] = (),
        client_name: str = "codex-core-embed",
        client_version: str = __version__,
        experimental_api: bool = False,
        server: Sequence[str] | None = None,
    ) -> None:
        in_process = {
            "profile": profile is not None,
            "plugins": bool(plugins := list(plugins)),
            "load_entry_points": not load_entry_points,
            "disabled_plugins": bool(disabled_plugins := list(disabled_plugins)),
        }
        if server is not None and any(in_process.values()):
            names = ", ".join(name for name, given in in_process.items() if given)
            raise ValueError(f"{names}: only for the in-process kernel, not with server=")
        self._server = None if server is None else list(server)
        self._options: dict[str, Any] = {
            "codex_home": home,
            "config_overrides": to_overrides(config or {}),
            "config_profile": profile,
            "plugins": plugins,
            "load_entry_points": load_entry_points,
            "disabled_plugins": disabled_plugins,
        }
        self._client_info = (client_name, client_version, experimental_api)
        self.on_approval = on_approval
        self._approvals: dict[str, ApprovalCallback] = {}
        self._routes: dict[str, set[_Route]] = {}
        self._stack: contextlib.AsyncExitStack | None = None
        self._kernel: Kernel | None = None
        self._client: Client | None = None
        self._info: InitializeResponse | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        from codex_core.kernel import Kernel

        async with contextlib.AsyncExitStack() as stack:
            kernel = None
            if self._server is None:
                kernel = Kernel(**self._options)
                await stack.enter_async_context(kernel)
                client = await stack.enter_async_context(kernel.connect())
            else:
                client = await stack.enter_async_context(await self._spawn())
            name, version, experimental = self._client_info
            raw = await client.initialize(name, version, experimental_api=experimental)
            for method in APPROVAL_METHODS:
                client.on_request(method, self._approval_handler(method))
            tasks = await stack.enter_async_context(anyio.create_task_group())
            tasks.start_soon(self._route, client)
            stack.callback(tasks.cancel_scope.cancel)
            self._info = _model("InitializeResponse").model_validate(raw)
            self._kernel, self._client = kernel, client
            self._stack = stack.pop_all()
        return self

    async def _spawn(self) -> Client:
        from codex_core.client import Client
        from codex_core.server_info import resolve_codex_home

        assert self._server is not None
        home = resolve_codex_home(self._options["codex_home"])
        home.mkdir(parents=True, exist_ok=True)  # the official server refuses a missing one
        env = dict(os.environ, CODEX_HOME=str(home))
        flags = [flag for value in self._options["config_overrides"] for flag in ("-c", value)]
        return await Client.spawn([*self._server, *flags], env=env)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """End the session and stop the kernel (its shutdown hooks run)."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    @property
    def kernel(self) -> Kernel:
        """The running kernel (its config, plugins, services); none with ``server=``."""
        if self._kernel is None:
            raise RuntimeError("no in-process kernel: AsyncCodex is not running, or has a server")
        return self._kernel

    @property
    def client(self) -> Client:
        """The low-level client of this session: any method, raw dicts."""
        if self._client is None or self._stack is None:
            raise RuntimeError("AsyncCodex is not running: use `async with AsyncCodex(...)`")
        return self._client

    @property
    def info(self) -> InitializeResponse:
        """The server's ``initialize`` answer (``codex_home``, ``user_agent``, ...)."""
        if self._info is None:
            raise RuntimeError("AsyncCodex is not running: use `async with AsyncCodex(...)`")
        return self._info

    # ------------------------------------------------------------------ requests

    async def request(
        self, method: str, params: BaseModel | Mapping[str, Any] | None = None
    ) -> Any:
        """Any request; a JSON-RPC error raises ``CodexError`` (code, message, data)."""
        from pydantic import BaseModel

        wire = _wire(params) if isinstance(params, BaseModel) else params
        try:
            if wire is None:
                return await self.client.request(method, timeout=None)
            return await self.client.request(method, wire, timeout=None)
        except RpcError as exc:
            raise CodexError(method, exc.code, exc.message, exc.data) from None

    async def _call(self, method: str, params: BaseModel, result: str) -> Any:
        return _model(result).model_validate(await self.request(method, params))

    async def start_thread(
        self,
        *,
        cwd: str | os.PathLike[str] | None = None,
        model: str | None = None,
        approval_policy: str | None = None,
        sandbox: str | None = None,
        developer_instructions: str | None = None,
        config: Mapping[str, Any] | None = None,
        ephemeral: bool | None = None,
        on_approval: ApprovalCallback | None = None,
    ) -> AsyncThread:
        """A new thread (``thread/start``); ``on_approval`` overrides the Codex-wide one."""
        params = _model("ThreadStartParams")(
            cwd=None if cwd is None else os.fspath(cwd),
            model=model,
            approval_policy=approval_policy,
            sandbox=sandbox,
            developer_instructions=developer_instructions,
            config=None if config is None else dict(config),
            ephemeral=ephemeral,
        )
        started = await self._call("thread/start", params, "ThreadStartResponse")
        return self._thread(started.thread, on_approval)

    async def resume_thread(
        self,
        thread_id: str,
        *,
        cwd: str | os.PathLike[str] | None = None,
        model: str | None = None,
        approval_policy: str | None = None,
        on_approval: ApprovalCallback | None = None,
    ) -> AsyncThread:
        """A stored thread, loaded again with its history (``thread/resume``)."""
        params = _model("ThreadResumeParams")(
            thread_id=thread_id,
            cwd=None if cwd is None else os.fspath(cwd),
            model=model,
            approval_policy=approval_policy,
        )
        resumed = await self._call("thread/resume", params, "ThreadResumeResponse")
        return self._thread(resumed.thread, on_approval)

    async def list_threads(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        archived: bool | None = None,
        search_term: str | None = None,
    ) -> ThreadListResponse:
        """Stored threads, newest first (``thread/list``): ``.data`` and ``.next_cursor``."""
        params = _model("ThreadListParams")(
            limit=limit, cursor=cursor, archived=archived, search_term=search_term
        )
        listed: ThreadListResponse = await self._call("thread/list", params, "ThreadListResponse")
        return listed

    def _thread(self, thread: Thread, on_approval: ApprovalCallback | None) -> AsyncThread:
        if on_approval is not None:
            self._approvals[thread.id] = on_approval
        return AsyncThread(self, thread)

    # ------------------------------------------------------------------ notifications

    async def _route(self, client: Client) -> None:
        """Hand each notification to the turns listening on its thread."""
        async for method, params in client.notifications():
            for send in list(self._routes.get(_thread_of(params) or "", ())):
                send.send_nowait((method, params))
        for routes in self._routes.values():
            for send in routes:
                send.close()

    @contextlib.contextmanager
    def _listen(self, thread_id: str) -> Any:
        send, receive = anyio.create_memory_object_stream[tuple[str, Any]](math.inf)
        self._routes.setdefault(thread_id, set()).add(send)
        try:
            with receive:
                yield receive
        finally:
            self._routes[thread_id].discard(send)
            send.close()

    def _approval_handler(self, method: str) -> Callable[[Any], Awaitable[Any]]:
        from codex_core.embed.results import approval_result

        async def answer(params: Any) -> Any:
            request = _model(APPROVAL_METHODS[method]).model_validate(params)
            callback = self._approvals.get(request.thread_id, self.on_approval)
            if callback is None:
                return approval_result(request, "decline")
            decision = callback(request)
            if inspect.isawaitable(decision):
                decision = await decision
            return approval_result(request, decision)

        return answer


class AsyncThread:
    """One thread of an ``AsyncCodex``: run turns on it, or stream their events."""

    def __init__(self, codex: AsyncCodex, thread: Thread) -> None:
        self.codex = codex
        #: The thread as the server described it when started or resumed.
        self.thread = thread

    @property
    def id(self) -> str:
        return self.thread.id

    async def stream(
        self, prompt: str | Sequence[Mapping[str, Any]]
    ) -> AsyncGenerator[WireModel, None]:
        """Start a turn and yield this thread's notifications, as generated models, until the
        turn completes (``TurnCompletedNotification`` is the last one).

        ``prompt`` is text, or ``UserInput`` dicts (``{"type": "image", "url": ...}``).
        """
        with self.codex._listen(self.id) as events:
            started = await self.codex.request(
                "turn/start", {"threadId": self.id, "input": user_input(prompt)}
            )
            turn_id = started["turn"]["id"]
            async for method, params in events:
                event = event_from(method, params)
                if event is None:
                    continue
                yield event
                if method == "turn/completed" and params["turn"]["id"] == turn_id:
                    return
        raise ConnectionError(f"the session ended before turn {turn_id} completed")

    async def run(self, prompt: str | Sequence[Mapping[str, Any]]) -> RunResult:
        """Run a turn to its end: the last agent message's text, the items, the usage.

        Raises ``TurnFailedError`` when the turn fails, ``CodexError`` when it cannot start.
        """
        from codex_core.protocol.models import (
            AgentMessageThreadItem,
            ItemCompletedNotification,
            ThreadTokenUsageUpdatedNotification,
            TurnCompletedNotification,
        )

        items: list[Any] = []
        usage = turn = None
        async for event in self.stream(prompt):
            if isinstance(event, ItemCompletedNotification):
                items.append(event.item)
            elif isinstance(event, ThreadTokenUsageUpdatedNotification):
                usage = event.token_usage
            elif isinstance(event, TurnCompletedNotification):
                turn = event.turn
        assert turn is not None  # the stream ends with it, or raises
        if turn.status == "failed":
            raise TurnFailedError(turn)
        messages = [item.text for item in items if isinstance(item, AgentMessageThreadItem)]
        text = messages[-1] if messages else ""
        return RunResult(self.id, turn, text, items, usage)

    async def interrupt(self, turn_id: str) -> None:
        """Stop a running turn (``turn/interrupt``)."""
        await self.codex.request("turn/interrupt", {"threadId": self.id, "turnId": turn_id})
