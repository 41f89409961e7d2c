"""``fs/watch`` and ``fs/unwatch``: change notifications for a client's files.

A watch belongs to the connection that made it: ``watchId`` is the client's own name for it,
so two clients may both use ``w1``, and a client that goes away takes its watches with it.
The file watching itself is done by a backend, an ``FsWatcher`` a plugin contributes through
``codex_fs_watchers``; the highest-priority one is used (``codex-plugin-watchfiles`` when
installed, else the built-in polling in ``codex_core.fs.polling``), and if it fails the next
one takes over.

What clients see copies the official server (Codex 0.169.0):

- ``fs/watch {watchId, path}`` answers ``{"path": <the path, lexically normalized>}`` for any
  absolute path, existing or not; a ``watchId`` the connection already uses is ``-32600``
  ``watchId already exists: <id>``.
- Changes are batched: the first change opens a ``DEBOUNCE_SECONDS`` window, and when it
  closes one ``fs/changed {watchId, changedPaths}`` carries every path that changed in it,
  each once, sorted.
- ``fs/unwatch {watchId}`` answers ``{}``, also for an unknown id; once it has answered, that
  watch sends nothing more, not even a batch that was about to go out.

Backend contract (``FsWatcher.watch(path, on_change)``): an async iterator that is iterated
until it ends or is closed. It yields once when the watch is armed, so that a change made
right after the ``fs/watch`` reply is seen, and may yield again at any time (the values are
ignored). Meanwhile it calls ``on_change`` on the event loop with the absolute paths that
changed: the watched path itself and, for a directory, its direct children.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import anyio

from codex_core.plugins import is_cancellation
from codex_core.rpc import RequestContext, RpcError
from codex_core.rpc.errors import INVALID_REQUEST

if TYPE_CHECKING:
    from codex_core.hookspecs import FsWatcher
    from codex_core.rpc.connection import Connection

__all__ = ["DEBOUNCE_SECONDS", "close_connection", "unwatch", "watch"]

log = logging.getLogger(__name__)

#: How long changes are collected, from the first one, before they are sent (the reference's).
DEBOUNCE_SECONDS = 0.2
#: How long ``fs/watch`` waits for a backend to arm before answering anyway.
ARM_TIMEOUT_SECONDS = 10.0

# Watches by connection, then by watchId. Keyed by the connection object (not the kernel) so
# several kernels in one process never see each other's watches.
_watches: dict[Connection, dict[str, _Watch]] = {}


class _WatchParams(Protocol):
    @property
    def watch_id(self) -> str: ...

    @property
    def path(self) -> Any: ...


class _UnwatchParams(Protocol):
    @property
    def watch_id(self) -> str: ...


class _Watch:
    """One client's watch: runs a backend, collects its changes, sends ``fs/changed``."""

    def __init__(self, connection: Connection, watch_id: str, path: str) -> None:
        self.connection = connection
        self.watch_id = watch_id
        self.path = path
        self.armed = anyio.Event()
        self.stopped = anyio.Event()
        self.closed = False
        self._scope: anyio.CancelScope | None = None
        self._pending: set[str] = set()
        self._first_change = anyio.Event()

    async def run(self, watchers: Sequence[FsWatcher]) -> None:
        """Watch with the best backend that works until cancelled (unwatch, disconnect)."""
        try:
            with anyio.CancelScope() as self._scope:
                if self.closed:
                    return
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(self._flush_loop)
                    await self._watch(watchers)
                    tasks.cancel_scope.cancel()
        finally:
            self.armed.set()
            self.stopped.set()

    async def _watch(self, watchers: Sequence[FsWatcher]) -> None:
        for watcher in watchers:
            iterator = watcher.watch(Path(self.path), self._on_change)
            try:
                async for _ in iterator:
                    self.armed.set()
                return  # the backend ended the watch by itself
            except BaseException as exc:  # backends are plugins: anything goes
                if is_cancellation(exc):
                    raise
                log.exception(
                    "fs/watch %s (%s): backend %s failed; trying the next one",
                    self.watch_id,
                    self.path,
                    watcher.name,
                )
            finally:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                        await aclose()
        log.error("fs/watch %s (%s): no backend could watch it", self.watch_id, self.path)

    def _on_change(self, paths: list[str]) -> None:
        if self.closed or not paths:
            return
        self._pending.update(paths)
        self._first_change.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._first_change.wait()
            await anyio.sleep(DEBOUNCE_SECONDS)
            self._first_change = anyio.Event()
            paths, self._pending = self._pending, set()
            if paths and not self.closed:
                # Component-wise, as the reference sorts paths ("a/b" before "a.txt").
                changed = sorted(paths, key=lambda path: path.split("/"))
                self.connection.notify(
                    "fs/changed", {"watchId": self.watch_id, "changedPaths": changed}
                )

    def cancel(self) -> None:
        """Stop at once; nothing is sent after this returns."""
        self.closed = True
        if self._scope is not None:
            self._scope.cancel()


async def watch(ctx: RequestContext, params: _WatchParams, path: str) -> dict[str, Any]:
    """Start a watch; answers once the backend is armed, so no change after the reply is lost."""
    connection = ctx.connection
    watches = _watches.setdefault(connection, {})
    watch_id = params.watch_id
    if watch_id in watches:
        raise RpcError(INVALID_REQUEST, f"watchId already exists: {watch_id}")
    entry = watches[watch_id] = _Watch(connection, watch_id, path)
    watchers = cast("list[FsWatcher]", list(ctx.kernel.fs_watchers))
    if not watchers:
        from codex_core.fs.polling import PollingWatcher

        watchers = [PollingWatcher()]
    try:
        connection.start_soon(entry.run, watchers)
    except RuntimeError:  # the connection is closing
        del watches[watch_id]
        raise RpcError(INVALID_REQUEST, "connection is closed") from None
    with anyio.move_on_after(ARM_TIMEOUT_SECONDS):
        await entry.armed.wait()
    return {"path": path}


async def unwatch(ctx: RequestContext, params: _UnwatchParams) -> dict[str, Any]:
    """Stop a watch (an unknown id is fine); returns once it can send nothing more."""
    entry = _watches.get(ctx.connection, {}).pop(params.watch_id, None)
    if entry is not None:
        entry.cancel()
        with anyio.move_on_after(ARM_TIMEOUT_SECONDS):
            await entry.stopped.wait()
    return {}


def close_connection(connection: Connection) -> None:
    """Drop a departed client's watches (their tasks die with the connection's task group)."""
    for entry in _watches.pop(connection, {}).values():
        entry.cancel()


def active_watches(connection: Connection) -> list[str]:
    """The watch ids a connection has (for tests and diagnostics)."""
    return sorted(_watches.get(connection, {}))
