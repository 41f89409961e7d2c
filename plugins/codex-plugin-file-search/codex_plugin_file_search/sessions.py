"""The incremental session API: one walk per session, re-ranked for each query as it is typed.

``fuzzyFileSearch/sessionStart`` starts walking the roots at once, keeping every entry found;
``sessionUpdate`` swaps the query. The session's task ranks the entries found so far, then
the new ones as the walk brings them, sending ``fuzzyFileSearch/sessionUpdated`` when the
best results change (at most every ``UPDATE_INTERVAL`` while the walk or a ranking runs)
and, once the walk is over and every entry is ranked, a last ``sessionUpdated`` and
``sessionCompleted``. A newer query abandons the ranking of the older one, which is never
reported again; a query typed on from the previous one ranks only that one's candidates. An
empty query reports no files. ``sessionStop`` ends the walk and the reports.

As on the official server, sessions belong to the server, not to a connection: any client may
update or stop a session by its id, every client is sent its notifications, and a session
outlives the client that started it.

Walking and ranking run in worker threads; the event loop only hands over batches.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from codex_plugin_file_search.ranking import Entry, Query, TopMatches
from codex_plugin_file_search.walk import walk

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

#: The least time between two reports of one query while the walk is still running.
UPDATE_INTERVAL = 0.1
#: Entries ranked per worker-thread call, so a newer query is noticed quickly.
RANK_CHUNK = 4096

UPDATED = "fuzzyFileSearch/sessionUpdated"
COMPLETED = "fuzzyFileSearch/sessionCompleted"


@dataclass
class Session:
    """One search session: its walk, its entries and its latest query."""

    session_id: str
    roots: list[str]
    kernel: Kernel
    entries: list[Entry] = field(default_factory=list)
    query: str = ""
    generation: int = 0
    walk_done: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)
    changed: anyio.Event = field(default_factory=anyio.Event)

    def update(self, query: str) -> None:
        self.query = query
        self.generation += 1
        self.changed.set()

    def stop(self) -> None:
        self.stopped.set()
        self.changed.set()

    def _walk(self) -> None:
        for batch in walk(self.roots, self.stopped.is_set):
            self.entries.extend(batch)
        self.walk_done.set()

    async def run(self) -> None:
        """Walk in a thread and report each query until stopped."""
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._walk_then_wake)
                await self._report()
                tasks.cancel_scope.cancel()
        finally:
            self.stopped.set()  # cancelled (the kernel stopping): the abandoned walk ends too

    async def _walk_then_wake(self) -> None:
        await anyio.to_thread.run_sync(self._walk, abandon_on_cancel=True)
        self.changed.set()

    def notify(self, method: str, params: dict[str, Any]) -> None:
        if not self.stopped.is_set():
            self.kernel.broadcast(method, params)

    async def _report(self) -> None:
        previous: TopMatches | None = None
        previous_ranked = 0
        while not self.stopped.is_set():
            generation, text = self.generation, self.query
            top = TopMatches(Query(text))
            ranked = 0
            if previous is not None and top.query.refines(previous.query):
                # Typing on: only what the shorter query could match needs ranking again.
                await anyio.to_thread.run_sync(top.add, previous.candidates)
                ranked = previous_ranked
            previous, previous_ranked = None, 0
            progress = Progress(self, text, time.monotonic())
            while generation == self.generation and not self.stopped.is_set():
                done = self.walk_done.is_set()
                available = len(self.entries)
                while ranked < available and generation == self.generation and text:
                    chunk = self.entries[ranked : min(available, ranked + RANK_CHUNK)]
                    await anyio.to_thread.run_sync(top.add, chunk)
                    ranked += len(chunk)
                    if ranked < available:
                        progress.report(top)
                if generation != self.generation or self.stopped.is_set():
                    break
                if done:
                    files = top.results(self.roots) if text else []
                    self.notify(
                        UPDATED, {"sessionId": self.session_id, "query": text, "files": files}
                    )
                    self.notify(COMPLETED, {"sessionId": self.session_id})
                    await self._wait_for_change(None)
                    break
                progress.report(top)
                await self._wait_for_change(UPDATE_INTERVAL)
            if text:
                # Its candidates cover exactly the first ``ranked`` entries.
                previous, previous_ranked = top, ranked

    async def _wait_for_change(self, timeout: float | None) -> None:
        """Until a new query, a stop, the walk's end, or ``timeout`` (for new entries)."""
        with anyio.move_on_after(timeout if timeout is not None else float("inf")):
            await self.changed.wait()
        if self.changed.is_set():
            self.changed = anyio.Event()


class Sessions:
    """The server's sessions, by id."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.by_id: dict[str, Session] = {}

    def start(self, session_id: str, roots: list[str]) -> None:
        """Start (or replace) a session; its walk and reports run as a kernel service task."""
        previous = self.by_id.pop(session_id, None)
        if previous is not None:
            previous.stop()
        session = Session(session_id, roots, self.kernel)
        self.by_id[session_id] = session
        self.kernel.start_soon(session.run, name=f"fuzzy file search {session_id}", service=True)

    def get(self, session_id: str) -> Session | None:
        return self.by_id.get(session_id)

    def stop(self, session_id: str) -> None:
        session = self.by_id.pop(session_id, None)
        if session is not None:
            session.stop()


@dataclass
class Progress:
    """The partial reports of one query: its best results so far, when they changed, at most
    every ``UPDATE_INTERVAL`` (the first one that long after the query came)."""

    session: Session
    query: str
    last_time: float
    last_sent: list[dict[str, Any]] | None = None

    def report(self, top: TopMatches) -> None:
        if not self.query or time.monotonic() - self.last_time < UPDATE_INTERVAL:
            return
        files = top.results(self.session.roots)
        if files != self.last_sent:
            self.session.notify(
                UPDATED, {"sessionId": self.session.session_id, "query": self.query, "files": files}
            )
            self.last_sent, self.last_time = files, time.monotonic()
