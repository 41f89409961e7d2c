"""``Codex`` and ``Thread``: the embedding API for code that is not async.

Each ``Codex`` runs an ``AsyncCodex`` on an event loop of its own, in a daemon thread, and calls
into it through an anyio ``BlockingPortal``. The thread is a daemon (not anyio's
``start_blocking_portal``, whose worker the interpreter joins at exit) so that a script that
never calls ``close()`` still exits: a finalizer closes the kernel at exit while the loop is
alive. Approval callbacks run in a worker thread of that loop, so they may block (ask a person
on the terminal) without stalling the kernel.
"""

from __future__ import annotations

import os
import queue
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio
import anyio.to_thread
from anyio.from_thread import BlockingPortal

from codex_core import __version__
from codex_core.embed.asynchronous import AsyncCodex, AsyncThread

if TYPE_CHECKING:
    from codex_core.client import Client
    from codex_core.embed.results import ApprovalRequest, Decision, RunResult
    from codex_core.kernel import Kernel
    from codex_core.protocol.base import WireModel
    from codex_core.protocol.models import InitializeResponse, ThreadListResponse

#: A blocking ``on_approval``: called in a worker thread, so it may wait for a person.
BlockingApprovalCallback = Callable[["ApprovalRequest"], "Decision | dict[str, Any]"]


def _start_loop() -> tuple[BlockingPortal, threading.Thread]:
    """An event loop in a daemon thread, and the portal into it."""
    ready: queue.Queue[BlockingPortal | BaseException] = queue.Queue()

    async def serve() -> None:
        async with BlockingPortal() as portal:
            ready.put(portal)
            await portal.sleep_until_stopped()

    def main() -> None:
        try:
            anyio.run(serve)
        except BaseException as exc:
            ready.put(exc)

    thread = threading.Thread(target=main, name="codex-core-embed", daemon=True)
    thread.start()
    started = ready.get()
    if isinstance(started, BaseException):
        raise started
    return started, thread


def _stop(
    portal: BlockingPortal, session: AbstractContextManager[Any], thread: threading.Thread
) -> None:
    try:
        session.__exit__(None, None, None)
    finally:
        portal.call(portal.stop)
        thread.join(timeout=10)


def _in_worker(callback: BlockingApprovalCallback) -> Callable[[ApprovalRequest], Any]:
    async def answer(request: ApprovalRequest) -> Decision | dict[str, Any]:
        return await anyio.to_thread.run_sync(callback, request)

    return answer


class Codex:
    """A codex-core kernel in this process, for code that is not async.

    Takes the arguments of ``AsyncCodex``; the kernel starts here and stops on ``close()``, at
    the end of a ``with`` block, or when the interpreter exits::

        codex = Codex(home="/tmp/demo", config={"model": "gpt-5"})
        thread = codex.start_thread(cwd=".")
        print(thread.run("What does this project do?").text)
    """

    def __init__(
        self,
        *,
        home: str | os.PathLike[str] | None = None,
        config: Mapping[str, Any] | None = None,
        profile: str | None = None,
        on_approval: BlockingApprovalCallback | None = None,
        plugins: Iterable[object] = (),
        load_entry_points: bool = True,
        disabled_plugins: Iterable[str] = (),
        client_name: str = "codex-core-embed",
        client_version: str = __version__,
        experimental_api: bool = False,
        server: Sequence[str] | None = None,
    ) -> None:
        self._async = AsyncCodex(
            home=home,
            config=config,
            profile=profile,
            on_approval=None if on_approval is None else _in_worker(on_approval),
            plugins=plugins,
            load_entry_points=load_entry_points,
            disabled_plugins=disabled_plugins,
            client_name=client_name,
            client_version=client_version,
            experimental_api=experimental_api,
            server=server,
        )
        self._portal, thread = _start_loop()
        # One task of the loop enters and exits the session (anyio's task groups require it).
        session = self._portal.wrap_async_context_manager(self._async)
        try:
            session.__enter__()
        except BaseException:
            self._portal.call(self._portal.stop)
            thread.join(timeout=10)
            raise
        self._finalizer = weakref.finalize(self, _stop, self._portal, session, thread)

    def close(self) -> None:
        """Stop the kernel (its shutdown hooks run) and its event loop."""
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def kernel(self) -> Kernel:
        return self._async.kernel

    @property
    def client(self) -> Client:
        """The low-level async client: call it through ``codex.portal``."""
        return self._async.client

    @property
    def portal(self) -> BlockingPortal:
        """The portal into the kernel's event loop, for async code of the host's own."""
        return self._portal

    @property
    def info(self) -> InitializeResponse:
        return self._async.info

    def request(self, method: str, params: Any = None) -> Any:
        """Any request; a JSON-RPC error raises ``CodexError`` (code, message, data)."""
        return self._portal.call(self._async.request, method, params)

    def start_thread(
        self,
        *,
        cwd: str | os.PathLike[str] | None = None,
        model: str | None = None,
        approval_policy: str | None = None,
        sandbox: str | None = None,
        developer_instructions: str | None = None,
        config: Mapping[str, Any] | None = None,
        ephemeral: bool | None = None,
        on_approval: BlockingApprovalCallback | None = None,
    ) -> Thread:
        """A new thread; ``on_approval`` overrides the Codex-wide one for it."""
        started = self._portal.call(
            lambda: self._async.start_thread(
                cwd=cwd,
                model=model,
                approval_policy=approval_policy,
                sandbox=sandbox,
                developer_instructions=developer_instructions,
                config=config,
                ephemeral=ephemeral,
                on_approval=None if on_approval is None else _in_worker(on_approval),
            )
        )
        return Thread(self._portal, started)

    def resume_thread(
        self,
        thread_id: str,
        *,
        cwd: str | os.PathLike[str] | None = None,
        model: str | None = None,
        approval_policy: str | None = None,
        on_approval: BlockingApprovalCallback | None = None,
    ) -> Thread:
        """A stored thread, loaded again with its history."""
        resumed = self._portal.call(
            lambda: self._async.resume_thread(
                thread_id,
                cwd=cwd,
                model=model,
                approval_policy=approval_policy,
                on_approval=None if on_approval is None else _in_worker(on_approval),
            )
        )
        return Thread(self._portal, resumed)

    def list_threads(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        archived: bool | None = None,
        search_term: str | None = None,
    ) -> ThreadListResponse:
        """Stored threads, newest first: ``.data`` and ``.next_cursor``."""
        return self._portal.call(
            lambda: self._async.list_threads(
                limit=limit, cursor=cursor, archived=archived, search_term=search_term
            )
        )


class Thread:
    """One thread of a ``Codex``: ``run`` a turn, or ``stream`` its events."""

    def __init__(self, portal: BlockingPortal, thread: AsyncThread) -> None:
        self._portal = portal
        self._async = thread
        self.thread = thread.thread

    @property
    def id(self) -> str:
        return self._async.id

    def run(self, prompt: str | Sequence[Mapping[str, Any]]) -> RunResult:
        """Run a turn to its end (see ``AsyncThread.run``)."""
        result: RunResult = self._portal.call(self._async.run, prompt)
        return result

    def stream(self, prompt: str | Sequence[Mapping[str, Any]]) -> Iterator[WireModel]:
        """The turn's notifications as generated models, the last one ``turn/completed``.

        Leaving the loop early stops listening (the turn itself goes on; ``interrupt`` it).
        """
        events = self._async.stream(prompt)

        async def next_event() -> tuple[bool, WireModel | None]:
            try:
                return True, await anext(events)
            except StopAsyncIteration:
                return False, None

        try:
            while True:
                more, event = self._portal.call(next_event)
                if not more:
                    return
                assert event is not None
                yield event
        finally:
            self._portal.call(events.aclose)

    def interrupt(self, turn_id: str) -> None:
        """Stop a running turn."""
        self._portal.call(self._async.interrupt, turn_id)
