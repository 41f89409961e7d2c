"""``thread/section/move``: which section each thread is in, and in what order.

A client moves a thread into a section (appended, or ``beforeThreadId`` another member), within
it, or out of it (``sectionId: null``); every client then hears ``thread/section/changed
{threadId, sectionId}`` (not when a thread a client already moved out is moved out again, as
the reference). The thread carries its
``section`` (the ``ThreadSection``, as named now) and ``sectionEnteredAt`` (Unix seconds when it
entered that section; reordering keeps it). Deleting a section empties it. Moves persist in
``$CODEX_HOME/thread_section_moves.jsonl`` (one line per move; ``journal``), replayed into each
section's ordered members. Refusals are the reference's, in its order.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.rpc import INVALID_REQUEST, RpcError
from codex_core.threads import journal, sections
from codex_core.threads.ids import reference_uuid_error

if TYPE_CHECKING:
    from codex_core.rpc import RequestContext
    from codex_core.threads.methods import ThreadRegistry

FILE = "thread_section_moves.jsonl"


class Memberships:
    """Each thread's section and entry time, and each section's members in order."""

    def __init__(self) -> None:
        self.of: dict[str, tuple[str, int]] = {}
        self.members: dict[str, list[str]] = {}
        #: Threads whose last move took them out of their section.
        self.moved_out: set[str] = set()
        #: Every thread a client ever moved.
        self.moved: set[str] = set()

    def move(self, thread_id: str, section_id: str | None, before: str | None, at: int) -> None:
        self.moved.add(thread_id)
        previous = self.of.pop(thread_id, None)
        if previous is not None:
            self.members[previous[0]].remove(thread_id)
        if section_id is None:
            self.moved_out.add(thread_id)
            return
        self.moved_out.discard(thread_id)
        entered = previous[1] if previous is not None and previous[0] == section_id else at
        self.of[thread_id] = (section_id, entered)
        order = self.members.setdefault(section_id, [])
        order.insert(order.index(before) if before in order else len(order), thread_id)


def load(codex_home: Path) -> Memberships:
    """The memberships the journal's moves leave, in sections that still exist."""
    found = Memberships()
    for line in journal.records(codex_home / FILE):
        thread_id, section_id = line.get("thread"), line.get("section")
        if isinstance(thread_id, str) and (section_id is None or isinstance(section_id, str)):
            before = line.get("before")
            found.move(thread_id, section_id, before if isinstance(before, str) else None,
                       int(line.get("enteredAt") or 0))  # fmt: skip
    existing = sections.load(codex_home)
    for thread_id, (section_id, _) in list(found.of.items()):
        if section_id not in existing:  # emptied by the deletion, not moved out by a client
            found.move(thread_id, None, None, 0)
            found.moved_out.discard(thread_id)
    return found


def _stamp(path: Path) -> tuple[int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return (0, -1)
    return (stat.st_mtime_ns, stat.st_size)


_cache: dict[Path, tuple[tuple[Any, ...], Memberships, dict[str, dict[str, Any]]]] = {}


def _current(codex_home: Path) -> tuple[Memberships, dict[str, dict[str, Any]]]:
    """Memberships and sections, replayed again only when either journal changed (a listing
    asks once per thread)."""
    stamp = (_stamp(codex_home / FILE), _stamp(codex_home / sections.FILE))
    cached = _cache.get(codex_home)
    if cached is None or cached[0] != stamp:
        cached = _cache[codex_home] = (stamp, load(codex_home), sections.load(codex_home))
    return cached[1], cached[2]


def ever_moved(codex_home: Path, thread_id: str) -> bool:
    """Whether a client ever put the thread in a section (or took it out)."""
    memberships, _ = _current(codex_home)
    return thread_id in memberships.moved


def section_fields(codex_home: Path, thread_id: str) -> dict[str, Any]:
    """``section`` and ``sectionEnteredAt`` of a thread, as stored."""
    memberships, known = _current(codex_home)
    membership = memberships.of.get(thread_id)
    section = known.get(membership[0]) if membership is not None else None
    if membership is None or section is None:
        return {"section": None, "sectionEnteredAt": None}
    return {"section": dict(section), "sectionEnteredAt": membership[1]}


def refresh_loaded(registry: ThreadRegistry) -> None:
    """Bring the loaded threads' ``section`` up to date (after a move, rename or deletion)."""
    for thread_id, loaded in registry.threads.items():
        loaded.thread.update(section_fields(registry.home, thread_id))


def _invalid(message: str) -> RpcError:
    return RpcError(INVALID_REQUEST, message)


def _lock(ctx: RequestContext) -> anyio.Lock:
    found = ctx.kernel.services.get("thread_section_moves_lock")
    if not isinstance(found, anyio.Lock):
        found = ctx.kernel.services["thread_section_moves_lock"] = anyio.Lock()
    return found


async def section_move(
    registry: ThreadRegistry, ctx: RequestContext, params: Any
) -> dict[str, Any]:
    problem = reference_uuid_error(params.thread_id)
    if problem is not None:
        raise _invalid(f"invalid thread id: {problem}")
    before = params.before_thread_id
    if before is not None and (problem := reference_uuid_error(before)) is not None:
        raise _invalid(f"invalid before thread id: {problem}")
    section_id = params.section_id
    if before is not None and section_id is None:
        raise _invalid("beforeThreadId requires a non-null sectionId")
    thread_id = registry.thread_id(params.thread_id)
    before = registry.thread_id(before) if before is not None else None
    home = registry.home
    async with _lock(ctx):
        stored = None
        if thread_id not in registry.threads:
            stored = await anyio.to_thread.run_sync(registry.store.find, thread_id)
        if thread_id not in registry.threads and stored is None:
            raise _invalid(f"thread not found: {thread_id}")
        if section_id is not None and section_id not in sections.load(home):
            raise _invalid(f"section {section_id} does not exist")
        if before == thread_id:
            raise _invalid(f"thread {thread_id} cannot be moved before itself")
        current = await anyio.to_thread.run_sync(load, home)
        if before is not None and before not in current.members.get(section_id or "", []):
            raise _invalid(f"before thread {before} is not in section {section_id}")
        if section_id is None and thread_id in current.moved_out:
            return {}  # moved out again: nothing changes, nobody is told
        record = {"thread": thread_id, "section": section_id, "before": before,
                  "enteredAt": int(time.time())}  # fmt: skip
        await anyio.to_thread.run_sync(journal.append, home / FILE, record)
        refresh_loaded(registry)
    changed = {"threadId": thread_id, "sectionId": section_id}
    ctx.after_reply.append(lambda: ctx.kernel.broadcast("thread/section/changed", changed))
    return {}
