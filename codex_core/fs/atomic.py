"""Replacing a file so a crash leaves the old content or the new, never half of either.

One way for every writer (config.toml, auth.json, the MCP credentials file, downloaded
catalogs, patched files): the new content goes to a temporary file in the target's folder
(``.NAME.XXXXXXXX.tmp``, so a rename never crosses a file system), is fsynced, given its
mode, and renamed over the target; then the folder is fsynced so the rename itself survives
a power cut. ``stage`` is the first half, for a caller that renames several files together
(apply-patch). ``folder_lock`` serializes writers in other processes too, with filelock.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: The permissions of a new file when the caller says nothing: readable by its owner only,
#: as secrets and config files need (and as ``tempfile.mkstemp`` creates them).
PRIVATE = 0o600


def temp_prefix(path: Path) -> str:
    """The name a temporary file for ``path`` starts with; it ends in 8 random characters
    and ``.tmp``, as ``tempfile.mkstemp`` names them."""
    return f".{path.name}."


def stage(
    path: Path, data: str | bytes, *, mode: int | None = None, new_mode: int = PRIVATE
) -> Path:
    """Write ``data`` to a fsynced temporary file beside ``path``; the caller renames it.

    Its permissions are ``mode`` when given, else those of the file it replaces, else
    ``new_mode``. On failure nothing is left behind.
    """
    if mode is None:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            mode = new_mode
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return Path(temp)


def write(
    path: Path, data: str | bytes, *, mode: int | None = None, new_mode: int = PRIVATE
) -> None:
    """Replace ``path`` with ``data`` atomically (see ``stage`` for the permissions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = stage(path, data, mode=mode, new_mode=new_mode)
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; where folders cannot be opened (Windows), skip."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def folder_lock(folder: Path, name: str) -> Iterator[None]:
    """Hold ``folder/name`` locked (blocking) for the block, across processes.

    The lock file stays (removing it would race with the next writer); it holds nothing.
    """
    from filelock import FileLock

    with FileLock(folder / name):
        yield
