"""A cheap thread hop for short blocking calls, for the methods clients send in bulk.

Clients fire ``fs/getMetadata`` by the hundred (file trees, editors polling), and the work per
call is one ``lstat``. With ``anyio.to_thread.run_sync`` the hop cost dwarfs that work: we
measured about 150 µs of server CPU per pipelined request and 7,000 req/s, against 18,000 req/s
and 46 µs with this lane (``appserver_bench.py --scenario pipelined``, 2 cores). The difference
is in the hand-off, not the thread: here one worker thread drains the queue and returns finished
results in batches, one event-loop wake-up per batch, so the replies also leave in batches;
anyio wakes the loop once per call and spreads calls over up to 40 threads that contend for
the GIL.

Only for calls that normally take microseconds. A call that stalls (a hung network mount) does
not stall the lane: once the worker has been stuck on one call for ``STALL_SECONDS``, the next
submission starts another worker, up to ``MAX_WORKERS``. Finished results are never held back
for more than ``FLUSH_SECONDS`` plus the duration of the call in progress. Outside asyncio
(a host embedding the kernel under trio) it falls back to ``anyio.to_thread.run_sync``.

``run_blocking`` is the other lane, for file work that may take long or never end: writing to
a FIFO nobody reads blocks in ``open`` until a reader comes. anyio's shared pool is the wrong
place for it: 40 such calls used up its default limiter and stopped every other file and
config request of every client, and its worker threads are not daemons and cannot be
abandoned, so a stuck call also kept the process from exiting. Here every call in flight has
a daemon thread of its own (idle ones are reused and exit after ``IDLE_SECONDS``): one client's
stuck calls never hold up anyone else's, the count is bounded per client by the connection's
in-flight limit, and cancelling the awaiting task (the client left, a second SIGTERM) abandons
the thread instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Callable
from time import monotonic
from typing import Any, TypeVar

import anyio.to_thread

__all__ = ["run", "run_blocking"]

_T = TypeVar("_T")

MAX_WORKERS = 4
STALL_SECONDS = 0.05
FLUSH_SECONDS = 0.001
#: How long a ``run_blocking`` thread waits for more work before it exits.
IDLE_SECONDS = 10.0

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]
_Outcome = tuple["asyncio.Future[Any]", bool, Any]

_jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
# Per worker: when its current call started, or 0.0 while it waits for work.
_busy_since: list[float] = []
_spawn_lock = threading.Lock()


# run_blocking's threads waiting for work, each with its own inbox.
_idle: list[queue.SimpleQueue[_Job]] = []
_idle_lock = threading.Lock()


def _forget_workers() -> None:
    """A forked child inherits the bookkeeping but not the threads; start from scratch."""
    global _jobs
    _jobs = queue.SimpleQueue()
    _busy_since.clear()
    _idle.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


async def run(func: Callable[..., _T], *args: Any) -> _T:
    """``func(*args)`` in a worker thread; its exception, if any, is raised here."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: let anyio hop for whichever backend this is
        loop = None
    if loop is None:
        return await anyio.to_thread.run_sync(func, *args)
    future: asyncio.Future[_T] = loop.create_future()
    _jobs.put((loop, future, func, args))
    if not _busy_since or _all_stuck():
        _add_worker()
    return await future


async def run_blocking(func: Callable[..., _T], *args: Any) -> _T:
    """``func(*args)`` in a daemon thread of its own; cancelling the caller abandons the call."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: anyio's pool, abandoned on cancellation at least
        loop = None
    if loop is None:
        return await anyio.to_thread.run_sync(func, *args, abandon_on_cancel=True)
    future: asyncio.Future[_T] = loop.create_future()
    job: _Job = (loop, future, func, args)
    with _idle_lock:
        inbox = _idle.pop() if _idle else None
    if inbox is None:
        inbox = queue.SimpleQueue()
        threading.Thread(
            target=_serve_inbox, args=(inbox,), name="codex-fs-io", daemon=True
        ).start()
    inbox.put(job)
    return await future


def _serve_inbox(inbox: queue.SimpleQueue[_Job]) -> None:
    """One ``run_blocking`` thread: run each job handed to it, then offer itself again."""
    while True:
        try:
            job = inbox.get(timeout=IDLE_SECONDS)
        except queue.Empty:
            with _idle_lock:
                if inbox in _idle:
                    _idle.remove(inbox)
                    return
            job = inbox.get()  # a caller took this inbox just now: its job is on the way
        _run_one(*job)
        del job  # hold nothing (the future keeps a 500 MB read alive) while idle
        with _idle_lock:
            _idle.append(inbox)


def _run_one(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    func: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    try:
        outcome: _Outcome = (future, True, func(*args))
    except BaseException as exc:  # handed to the awaiting task, like an executor does
        outcome = (future, False, exc)
    _post(loop, [outcome])


def _all_stuck() -> bool:
    """Whether every worker has been inside one call for longer than ``STALL_SECONDS``."""
    deadline = monotonic() - STALL_SECONDS
    return all(0.0 < since < deadline for since in _busy_since)


def _add_worker() -> None:
    with _spawn_lock:  # re-check: another loop thread may have just added one
        if _busy_since and not (_all_stuck() and len(_busy_since) < MAX_WORKERS):
            return
        _busy_since.append(0.0)
        slot = len(_busy_since) - 1
    threading.Thread(target=_work, args=(slot,), name=f"codex-fs-{slot}", daemon=True).start()


def _work(slot: int) -> None:
    while True:
        job = _jobs.get()
        batch_loop = job[0]
        batch: list[_Outcome] = []
        batch_started = monotonic()
        while True:
            loop, future, func, args = job
            if loop is not batch_loop or monotonic() - batch_started > FLUSH_SECONDS:
                _post(batch_loop, batch)
                batch_loop, batch, batch_started = loop, [], monotonic()
            _busy_since[slot] = monotonic()
            try:
                batch.append((future, True, func(*args)))
            except BaseException as exc:  # handed to the awaiting task, like an executor does
                batch.append((future, False, exc))
            _busy_since[slot] = 0.0
            try:
                job = _jobs.get_nowait()
            except queue.Empty:
                break
        _post(batch_loop, batch)


def _post(loop: asyncio.AbstractEventLoop, batch: list[_Outcome]) -> None:
    if batch:
        # A closed loop raises RuntimeError: nobody is waiting for these results any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, batch)


def _settle(batch: list[_Outcome]) -> None:
    for future, ok, value in batch:
        if future.done():  # the request was cancelled while its call ran
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
