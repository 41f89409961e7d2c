"""``fs/watch`` through native notifications (watchfiles), instead of codex-core's polling.

One ``WatchfilesWatcher`` per kernel. All its watches share one ``watchfiles`` notifier (one
inotify instance on Linux, where a user gets only 128) and one thread, the hub. The notifier
watches a set of directories, none recursively; the hub rebuilds it when that set changes
(a watch added or removed, a watched directory created or deleted), arming the new notifier
before retiring the old one so nothing happening in between is lost.

For a watched path ``P`` the hub watches:

- ``P`` itself when it is a directory, for its direct children;
- the nearest existing directory above ``P``: its parent normally, which sees ``P`` created,
  deleted, or replaced by a rename (an editor's atomic save); a higher one while the parent is
  missing, to notice the missing directories appearing, one level at a time.

Changes reported are ``P`` and paths whose parent is ``P``, as the official server does.

``watchfiles`` is imported by the hub when the first watch starts: importing it loads
``multiprocessing`` and more, which a server that never watches should not pay for at startup.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectSendStream

from codex_core.hookspecs import FsWatcher, hookimpl

if TYPE_CHECKING:
    from watchfiles._rust_notify import RustNotify

__all__ = ["PRIORITY", "WatchfilesWatcher", "codex_fs_watchers"]

log = logging.getLogger(__name__)

#: Above the built-in polling backend (0).
PRIORITY = 100
#: watchfiles groups raw events for this long at most; codex-core then batches for 200 ms.
GROUP_MS = 50
#: How long watchfiles waits for more events before handing over what it has.
STEP_MS = 20
#: How often the hub checks whether watches came or went. watchfiles' stop event would be
#: quicker but throws away the events it holds, so the hub wakes up on a timeout instead.
CHECK_MS = 100
#: Attempts at building a notifier while directories vanish under us.
BUILD_ATTEMPTS = 5


def _nearest_directory(path: str) -> str:
    parent = os.path.dirname(path)
    while not os.path.isdir(parent) and parent != os.path.dirname(parent):
        parent = os.path.dirname(parent)
    return parent


class _Subscription:
    """One watch: its path, what must be watched for it, and how to reach its event loop."""

    def __init__(
        self,
        path: str,
        deliver: Callable[[list[str]], None],
        armed: Callable[[], None],
        failed: Callable[[BaseException], None],
    ) -> None:
        self.path = path
        self.deliver = deliver
        self.armed = armed
        self.failed = failed
        self.dirs: frozenset[str] = frozenset()
        self.is_armed = False
        self.exists = False

    def resolve(self) -> bool:
        """Recompute the directories to watch (stat calls: the hub or a worker thread only)."""
        if not self.is_armed:
            self.exists = os.path.exists(self.path)
        dirs = {_nearest_directory(self.path)}
        if os.path.isdir(self.path):
            dirs.add(self.path)
        changed = frozenset(dirs) != self.dirs
        self.dirs = frozenset(dirs)
        return changed

    def matches(self, changed: str) -> bool:
        return changed == self.path or os.path.dirname(changed) == self.path

    def affects_layout(self, changed: str) -> bool:
        """Whether ``changed`` may change which directories must be watched for this path."""
        return changed == self.path or self.path.startswith(changed.rstrip("/") + "/")


class _Hub:
    """The thread that owns the notifier and hands its events to subscriptions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: set[_Subscription] = set()
        self._thread: threading.Thread | None = None
        # Set whenever the set of watches changed.
        self._dirty = threading.Event()

    def add(self, sub: _Subscription) -> None:
        with self._lock:
            self._subs.add(sub)
            self._dirty.set()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="codex-watchfiles", daemon=True
                )
                self._thread.start()

    def remove(self, sub: _Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)
            self._dirty.set()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def _run(self) -> None:
        notifier: RustNotify | None = None
        watched: frozenset[str] = frozenset()
        try:
            while True:
                with self._lock:
                    if not self._subs:
                        self._thread = None
                        return
                    subs = list(self._subs)
                    self._dirty.clear()
                wanted = frozenset().union(*(sub.dirs for sub in subs))
                if notifier is None or wanted != watched:
                    fresh = self._build(subs)
                    if notifier is not None:
                        # Arm the new notifier first, then take what the old one still holds.
                        self._drain(notifier, subs)
                        notifier.close()
                    notifier, watched = fresh, frozenset().union(*(sub.dirs for sub in subs))
                    self._catch_up(subs)
                for sub in subs:
                    if not sub.is_armed:
                        sub.is_armed = True
                        sub.armed()
                result = notifier.watch(GROUP_MS, STEP_MS, CHECK_MS, None)
                if isinstance(result, set):
                    self._dispatch(subs, result)
        except Exception as exc:
            log.exception("watchfiles hub failed; its watches fall back to the next backend")
            with self._lock:
                failed, self._subs, self._thread = list(self._subs), set(), None
            for sub in failed:
                sub.failed(exc)
        finally:
            if notifier is not None:
                notifier.close()

    def _build(self, subs: list[_Subscription]) -> RustNotify:
        from watchfiles._rust_notify import RustNotify

        error: OSError | None = None
        for _ in range(BUILD_ATTEMPTS):
            dirs = sorted(frozenset().union(*(sub.dirs for sub in subs)))
            try:
                return RustNotify(dirs, False, False, 300, False, True)
            except OSError as exc:  # a directory vanished since it was resolved
                error = exc
                for sub in subs:
                    sub.resolve()
                time.sleep(0.01)
        assert error is not None
        raise error

    def _catch_up(self, subs: list[_Subscription]) -> None:
        """Report paths that appeared or vanished while no notifier was watching their parent."""
        for sub in subs:
            if sub.is_armed and os.path.exists(sub.path) != sub.exists:
                sub.exists = not sub.exists
                sub.deliver([sub.path])

    def _drain(self, notifier: RustNotify, subs: list[_Subscription]) -> None:
        result = notifier.watch(GROUP_MS, STEP_MS, 1, None)
        if isinstance(result, set):
            self._dispatch(subs, result)

    def _dispatch(self, subs: list[_Subscription], changes: set[tuple[int, str]]) -> None:
        paths = {path for _change, path in changes}
        relayout = False
        for sub in subs:
            hits = sorted(path for path in paths if sub.matches(path))
            if any(sub.affects_layout(path) for path in paths):
                relayout |= sub.resolve()
            if hits:
                if hits[0] == sub.path:
                    sub.exists = os.path.exists(sub.path)
                sub.deliver(hits)
        if relayout:
            self._dirty.set()


def _loop_caller() -> Callable[..., Any]:
    """A thread-safe, non-blocking way to run a callback on the current event loop."""
    import asyncio  # here, not at plugin load: ``--help`` loads every plugin

    try:
        return asyncio.get_running_loop().call_soon_threadsafe
    except RuntimeError:  # anyio on trio
        trio = importlib.import_module("trio")
        return trio.lowlevel.current_trio_token().run_sync_soon  # type: ignore[no-any-return]


def _soon(call: Callable[..., Any], func: Callable[..., Any], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
        call(func, *args)


def _send(stream: MemoryObjectSendStream[Any], item: Any) -> None:
    with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
        stream.send_nowait(item)


def _fail(stream: MemoryObjectSendStream[Any], ready: anyio.Event, exc: BaseException) -> None:
    _send(stream, exc)
    ready.set()


class WatchfilesWatcher:
    """``FsWatcher`` on native notifications; one per kernel, sharing one hub thread."""

    name = "watchfiles"
    priority = PRIORITY

    def __init__(self) -> None:
        self._hub = _Hub()

    async def watch(
        self, path: Path, on_change: Callable[[list[str]], None]
    ) -> AsyncIterator[None]:
        """Yield once armed, then once per batch of changes; raises if the hub fails."""
        call = _loop_caller()
        send, receive = anyio.create_memory_object_stream[list[str] | BaseException](math.inf)
        ready = anyio.Event()
        sub = _Subscription(
            os.fspath(path),
            deliver=lambda paths: _soon(call, _send, send, paths),
            armed=lambda: _soon(call, ready.set),
            failed=lambda exc: _soon(call, _fail, send, ready, exc),
        )
        await anyio.to_thread.run_sync(sub.resolve)
        self._hub.add(sub)
        try:
            async with receive:
                with anyio.fail_after(30):
                    await ready.wait()
                if not sub.is_armed:
                    raise RuntimeError(f"watchfiles could not watch {sub.path}")
                yield None
                async for item in receive:
                    if isinstance(item, BaseException):
                        raise RuntimeError(f"watchfiles stopped: {item}") from item
                    on_change(item)
                    yield None
        finally:
            self._hub.remove(sub)
            send.close()


@hookimpl
def codex_fs_watchers() -> Iterable[FsWatcher]:
    return [WatchfilesWatcher()]
