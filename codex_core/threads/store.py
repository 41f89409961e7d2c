"""``ThreadStore``: where threads persist, behind one interface the kernel talks to.

The ``threads`` plugin never touches the ``sessions/`` tree itself: creating a rollout,
appending to it, reading it back, listing, archiving, deleting, naming and read states all go
through the store. The default (``codex_core.threads.indexed_store``) keeps the official
on-disk layout and an SQLite index beside it; a plugin replaces it through the
``codex_thread_store`` hook (a shared database for a distributed deployment, say).

Methods are synchronous and called on the kernel's event loop (``thread/search`` calls
``list`` from a worker thread): a store answers from an index, not by scanning its history.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from codex_core.threads.listing import INTERACTIVE_SOURCES

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.threads.listing import ListingEntry
    from codex_core.threads.rollout import RolloutWriter, StoredThread

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ThreadQuery:
    """What ``thread/list`` and ``thread/search`` ask for: which threads, in which order.

    As the reference, a thread that is not archived is listed once its rollout has a user
    message; ``search_term`` (lower-cased) matches the preview or the name.
    """

    archived: bool = False
    sort_key: str = "created_at"
    ascending: bool = False
    cursor: str | None = None
    model_providers: frozenset[str] = frozenset()
    source_kinds: frozenset[str] = INTERACTIVE_SOURCES
    cwds: frozenset[str] | None = None
    search_term: str | None = None


@dataclass(frozen=True, slots=True)
class ListedThread:
    """One thread of a listing: where it sorts, what its rollout says up to its first user
    message (``StoredThread`` read with ``full=False``), and its name."""

    entry: ListingEntry
    stored: StoredThread
    name: str | None


@runtime_checkable
class ThreadStore(Protocol):
    """Stored threads: rollouts (in the official format), names and read states."""

    def writer(self, thread_id: str, path: Path, ordinal: int = 0) -> RolloutWriter:
        """The writer that creates (``ordinal`` 0) or appends to a thread's rollout; what it
        writes is known to ``find``, ``read`` and ``list`` from then on."""

    def find(self, thread_id: str) -> Path | None:
        """The rollout of a thread, active or archived (``None``: not stored)."""

    def read(self, thread_id: str, *, full: bool = True) -> StoredThread | None:
        """A stored thread; ``full=False`` stops after its first user message."""

    def list(self, query: ThreadQuery) -> Iterator[ListedThread]:
        """The threads ``query`` selects, in its order, from its cursor on; the caller stops
        iterating once it has a page."""

    def archive(self, thread_id: str) -> Path:
        """Move a stored thread to the archive; its new path."""

    def unarchive(self, thread_id: str) -> Path:
        """Move an archived thread back; its new path."""

    def delete(self, thread_id: str) -> None:
        """Forget a stored thread and its rollout."""

    def name(self, thread_id: str) -> str | None: ...

    def set_name(self, thread_id: str, name: str | None) -> None: ...

    def read_state(self, thread_id: str) -> dict[str, Any] | None:
        """The saved ``ThreadReadState`` (``codex_core.threads.read_state``), if any."""

    def set_read_state(self, thread_id: str, state: dict[str, Any]) -> None: ...

    def close(self) -> None:
        """The kernel is stopping: release files and connections."""


def thread_store(kernel: Kernel) -> ThreadStore:
    """The store a plugin provides through ``codex_thread_store``, else the default one.

    The first plugin to return one wins (``firstresult``); a plugin returning something that
    is not a ``ThreadStore`` is marked failed and the next one is asked.
    """
    for record, result in kernel.plugins.call_each("codex_thread_store", kernel=kernel):
        if result is None:
            continue
        if not isinstance(result, ThreadStore):
            kernel.plugins.fail(record, f"codex_thread_store returned {result!r}, not a store")
            continue
        log.info("threads are stored by plugin %s", record.name)
        return result
    from codex_core.threads.indexed_store import IndexedThreadStore

    return IndexedThreadStore(kernel.codex_home)
