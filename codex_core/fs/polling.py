"""The built-in ``fs/watch`` backend: stat polling, for systems without a notification backend.

It needs nothing but ``os.stat`` and works on every filesystem (network mounts, containers
whose inotify limits are used up), at the price of latency: a change is seen up to
``POLL_SECONDS`` after it happens. ``codex-plugin-watchfiles`` replaces it with native
notifications when installed (it has the higher priority).

Semantics match the official server's watcher, which is not recursive: a watched directory
reports itself and its direct children (created, modified, deleted, renamed, permission
changes); a watched file reports itself, including when it is replaced by a rename (editors'
atomic save) or deleted; a path that does not exist yet is reported once it appears.

Each poll is one ``stat`` of the watched path, plus one ``scandir`` and one ``lstat`` per
entry for a directory, done in a worker thread (a small pool of its own, so polling never
crowds out the ``fs/*`` methods). An idle watch costs a thread hop every ``POLL_SECONDS``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

__all__ = ["POLL_SECONDS", "PollingWatcher", "Snapshot", "diff", "snapshot"]

#: How often each watched path is stat-ed.
POLL_SECONDS = 0.25
#: Worker threads all polling watches share.
POLL_THREADS = 4

# What identifies a version of a file: type and permissions, identity, size and times.
_Signature = tuple[int, int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A watched path at one poll: its signature (None when missing) and its children's."""

    signature: _Signature | None
    children: dict[str, _Signature] | None = None

    @property
    def is_dir(self) -> bool:
        return self.signature is not None and stat.S_ISDIR(self.signature[0])


def _signature(info: os.stat_result) -> _Signature:
    return (
        info.st_mode,
        info.st_ino,
        info.st_dev,
        info.st_size,
        info.st_mtime_ns,
        info.st_ctime_ns,
    )


def snapshot(path: str) -> Snapshot:
    """Stat ``path`` (following a symlink, as the notification backends do) and its children."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return Snapshot(None)
    if not stat.S_ISDIR(info.st_mode):
        return Snapshot(_signature(info))
    children: dict[str, _Signature] = {}
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                try:
                    signature = _signature(entry.stat(follow_symlinks=False))
                except OSError:
                    continue  # removed while we looked: the next poll reports it
                if stat.S_ISDIR(signature[0]):
                    # A subdirectory's times and size move with its own entries, which a
                    # non-recursive watch does not report: only its identity and permissions.
                    signature = (*signature[:3], 0, 0, 0)
                children[entry.name] = signature
    except OSError:
        pass  # unreadable: the directory itself is still watched
    return Snapshot(_signature(info), children)


def diff(path: str, old: Snapshot, new: Snapshot) -> list[str]:
    """The paths the official server would report between two polls of ``path``."""
    if old.signature is None:
        # Appeared: the path itself (what is inside a directory that just appeared is not news).
        return [] if new.signature is None else [path]
    if new.signature is None:
        # Gone: the path, and everything that was inside it.
        return [path, *(os.path.join(path, name) for name in sorted(old.children or ()))]
    if old.children is None or new.children is None:
        return [path] if old.signature != new.signature or old.is_dir != new.is_dir else []
    before, after = old.children, new.children
    changed = [
        os.path.join(path, name)
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    ]
    # A directory's own times move when entries come and go; report the directory itself only
    # for a change of its own: permissions, owner, identity, or a touch that changed no entry.
    mode, ino, dev, _size, mtime, ctime = old.signature
    mode2, ino2, dev2, _size2, mtime2, ctime2 = new.signature
    if (mode, ino, dev) != (mode2, ino2, dev2) or (
        not changed and (mtime, ctime) != (mtime2, ctime2)
    ):
        changed.insert(0, path)
    return changed


class PollingWatcher:
    """``FsWatcher`` that polls with ``stat``; always available, lowest priority."""

    name = "polling"
    priority = 0

    def __init__(self, interval: float = POLL_SECONDS) -> None:
        self.interval = interval
        self._limiter: anyio.CapacityLimiter | None = None

    def _threads(self) -> anyio.CapacityLimiter:
        # Created on first use: a limiter belongs to the event loop that is running.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(POLL_THREADS)
        return self._limiter

    async def watch(
        self, path: Path, on_change: Callable[[list[str]], None]
    ) -> AsyncIterator[None]:
        """Yield once the first snapshot is taken (the watch is armed), then after each change."""
        target = os.fspath(path)
        limiter = self._threads()
        previous = await anyio.to_thread.run_sync(snapshot, target, limiter=limiter)
        yield None
        while True:
            await anyio.sleep(self.interval)
            current = await anyio.to_thread.run_sync(snapshot, target, limiter=limiter)
            changed = diff(target, previous, current)
            previous = current
            if changed:
                on_change(changed)
                yield None
