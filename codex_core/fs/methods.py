"""The built-in ``fs/*`` methods: the server's files for clients that cannot reach them.

Remote and embedded clients (an IDE talking to a server on another machine, the TUI with
``--remote``) read and write the server's files through these methods, so they are built in
rather than left to a plugin. Their replies copy the official server (Codex 0.169.0) closely,
including its error codes and messages, because clients show those to people and some branch
on them: I/O failures are ``-32603`` with Rust's ``io::Error`` wording, and requests the
server refuses on principle (a directory copy without ``recursive``, bad base64, reading a
directory) are ``-32600``. ``fs/watch`` and ``fs/unwatch`` are registered here too, but the
watching lives in ``codex_core.fs.watch`` (per-connection watches, batching) and in the
backends plugins contribute (``codex_core.fs.polling`` is the built-in one).

Every method runs its file work in one worker-thread hop so the event loop never blocks, and
in a thread of its own (``offload.run_blocking``) so a call that blocks for good (a write to a
FIFO nobody reads) holds up nothing but itself.
``fs/getMetadata`` is the hot path (clients send it in bulk, and it is benchmarked): it does no
more than one ``lstat`` (two for a symlink), through the cheaper hop of ``codex_core.fs.offload``.

One deliberate difference: copying a file onto itself answers ``{}`` like the reference but
leaves the file alone, where the reference truncates it to zero bytes.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from codex_core.fs import b64, offload
from codex_core.fs import watch as _watching
from codex_core.fs.oserror import os_error_message
from codex_core.protocol.wire import JsonText
from codex_core.rpc import INTERNAL_ERROR, INVALID_REQUEST, RequestContext, RpcError, RpcMethod

__all__ = [
    "MAX_READ_FILE_BYTES",
    "copy",
    "create_directory",
    "get_metadata",
    "read_directory",
    "read_file",
    "remove",
    "rpc_methods",
    "unwatch",
    "watch",
    "write_file",
]

MAX_READ_FILE_BYTES = 512 * 1024 * 1024
"""The reference refuses to read larger files rather than build a huge base64 reply."""
#: How much of a file ``fs/readFile`` holds at a time (a multiple of 3: whole base64 groups).
READ_CHUNK = 3 * 1024 * 1024

_NUL_MESSAGE = "file name contained an unexpected NUL byte"
_HAS_BIRTHTIME = hasattr(os.stat_result, "st_birthtime")

_T = TypeVar("_T")


# --------------------------------------------------------------------------- params we read
# The kernel hands handlers validated models of the official params types; these protocols
# name just the attributes each handler reads, so any object with them will do.


class _PathParams(Protocol):
    @property
    def path(self) -> Any: ...


class _WriteFileParams(_PathParams, Protocol):
    @property
    def data_base64(self) -> str: ...


class _CreateDirectoryParams(_PathParams, Protocol):
    @property
    def recursive(self) -> bool | None: ...


class _RemoveParams(_PathParams, Protocol):
    @property
    def recursive(self) -> bool | None: ...

    @property
    def force(self) -> bool | None: ...


class _WatchParams(_PathParams, Protocol):
    @property
    def watch_id(self) -> str: ...


class _UnwatchParams(Protocol):
    @property
    def watch_id(self) -> str: ...


class _CopyParams(Protocol):
    @property
    def source_path(self) -> Any: ...

    @property
    def destination_path(self) -> Any: ...

    @property
    def recursive(self) -> bool | None: ...


# --------------------------------------------------------------------------- handlers


async def read_file(ctx: RequestContext, params: _PathParams) -> JsonText:
    """Whole-file reads only: clients show or diff the file; base64 keeps any bytes intact."""
    return await _in_thread(_read_file, _native_path(params.path))


async def write_file(ctx: RequestContext, params: _WriteFileParams) -> dict[str, Any]:
    """Create or replace a file; parents are not created, so a typo in a path fails loudly."""
    return await _in_thread(_write_file, _native_path(params.path), params.data_base64)


async def create_directory(ctx: RequestContext, params: _CreateDirectoryParams) -> dict[str, Any]:
    """``mkdir -p`` by default, so clients can ensure a directory without checking first."""
    recursive = params.recursive is not False
    return await _in_thread(_create_directory, _native_path(params.path), recursive)


async def get_metadata(ctx: RequestContext, params: _PathParams) -> dict[str, Any]:
    """What a path resolves to and whether it is a link; sent in bulk, so it takes the cheap hop."""
    return await _in_thread(_get_metadata, _native_path(params.path), hop=offload.run)


async def read_directory(ctx: RequestContext, params: _PathParams) -> dict[str, Any]:
    """Direct children only, in directory order: clients expand trees one level at a time."""
    return await _in_thread(_read_directory, _native_path(params.path))


async def remove(ctx: RequestContext, params: _RemoveParams) -> dict[str, Any]:
    """``rm -rf`` by default, so removing what is already gone succeeds; links are not followed."""
    recursive = params.recursive is not False
    force = params.force is not False
    return await _in_thread(_remove, _native_path(params.path), recursive, force)


async def copy(ctx: RequestContext, params: _CopyParams) -> dict[str, Any]:
    """``cp -P``: links are copied as links; unlike the other flags, trees must be asked for."""
    return await _in_thread(
        _copy,
        _native_path(params.source_path),
        _native_path(params.destination_path),
        bool(params.recursive),
    )


async def watch(ctx: RequestContext, params: _WatchParams) -> dict[str, Any]:
    """Notify this client of changes to a path (and a directory's direct children)."""
    return await _watching.watch(ctx, params, _native_path(params.path))


async def unwatch(ctx: RequestContext, params: _UnwatchParams) -> dict[str, Any]:
    """Stop a watch; an unknown ``watchId`` is not an error."""
    return await _watching.unwatch(ctx, params)


def rpc_methods() -> list[RpcMethod]:
    """The ``fs`` plugin's methods (``codex_core.fs.plugin``), registered like any plugin's, so
    a plugin can be swapped in for them."""
    return [
        RpcMethod("fs/readFile", read_file),
        RpcMethod("fs/writeFile", write_file),
        RpcMethod("fs/createDirectory", create_directory),
        RpcMethod("fs/getMetadata", get_metadata),
        RpcMethod("fs/readDirectory", read_directory),
        RpcMethod("fs/remove", remove),
        RpcMethod("fs/copy", copy),
        RpcMethod("fs/watch", watch),
        RpcMethod("fs/unwatch", unwatch),
    ]


# --------------------------------------------------------------------------- plumbing


async def _in_thread(
    func: Callable[..., _T], *args: Any, hop: Callable[..., Awaitable[_T]] | None = None
) -> _T:
    """Run blocking file work off the event loop and word its failures like the reference.

    ``hop`` defaults to ``offload.run_blocking``, a thread per call in flight, right for work
    that may take a while or block for good (copies, big reads, a FIFO nobody reads) without
    holding up other requests; ``offload.run`` is cheaper per call but meant for calls that
    take microseconds.
    """
    try:
        return await (hop or offload.run_blocking)(func, *args)
    except OSError as exc:
        raise RpcError(INTERNAL_ERROR, os_error_message(exc)) from None
    except ValueError as exc:
        # Python refuses NUL bytes in paths before the system call; Rust does the same, as an
        # "invalid input" error, which the reference reports as -32600.
        if "null" in str(exc):
            raise RpcError(INVALID_REQUEST, _NUL_MESSAGE) from None
        raise


def _native_path(value: Any) -> str:
    """The path as the reference uses it: lexically normalized (``..``, ``.``, ``//``, trailing /).

    The reference's ``AbsolutePathBuf`` normalizes without touching the disk, so ``/a/missing/..``
    is ``/a`` and ``/a/link/`` names the link itself. The kernel may hand us a ``str``, a
    ``PathLike`` or a root model wrapping the string.
    """
    if not isinstance(value, str):
        value = os.fspath(value) if isinstance(value, os.PathLike) else value.root
    path: str = os.path.normpath(value)
    if path.startswith("//"):  # POSIX keeps a leading "//"; Rust's components do not.
        path = "/" + path.lstrip("/")
    return path


def _invalid(message: str) -> RpcError:
    return RpcError(INVALID_REQUEST, message)


# --------------------------------------------------------------------------- file work
# Everything below runs in a worker thread. OSError and ValueError propagate to ``_in_thread``;
# the RpcErrors raised here are the reference's own refusals.


def _read_file(path: str) -> JsonText:
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        # Checked before opening: opening a FIFO would block, reading a directory fails late.
        raise _invalid(f"path `{path}` is not a file")
    if info.st_size > MAX_READ_FILE_BYTES:
        raise _invalid(f"file is too large to read: limit is {MAX_READ_FILE_BYTES} bytes")
    return JsonText(_read_base64_json(path))


def _read_base64_json(path: str) -> str:
    """``{"dataBase64":"..."}`` for the file, built in one buffer a chunk at a time.

    Reading the whole file, encoding it and JSON-encoding the text made three full-size copies
    next to each other (and the JSON encoder scanned 667 MB of base64 for characters to escape,
    which base64 never has). Here only one chunk of the file is held at a time; the text grows
    in place and becomes the reply with one copy. Encoding uses pybase64 (SIMD): binascii's
    byte loop took 3 of the reference's 5 seconds for 500 MB on its own.
    """
    from pybase64 import b64encode  # SIMD base64: 16x binascii's speed; only when reading

    text = bytearray(b'{"dataBase64":"')
    chunk = bytearray(READ_CHUNK)
    view = memoryview(chunk)
    with open(path, "rb", buffering=0) as file:
        filled = 0
        while True:
            count = file.readinto(view[filled:])
            filled += count or 0
            if count and filled < READ_CHUNK:
                continue  # a short read: base64 needs whole 3-byte groups until the end
            text += b64encode(view[:filled])
            if not count:
                break
            filled = 0
    view.release()
    text += b'"}'
    return text.decode("ascii")


def _write_file(path: str, data_base64: str) -> dict[str, Any]:
    try:
        data = b64.decode(data_base64)
    except b64.Base64Error as exc:
        raise _invalid(f"fs/writeFile requires valid base64 dataBase64: {exc}") from None
    with open(path, "wb") as file:
        file.write(data)
    return {}


def _create_directory(path: str, recursive: bool) -> dict[str, Any]:
    if recursive:
        _create_dir_all(path)
    else:
        os.mkdir(path)
    return {}


def _get_metadata(path: str) -> dict[str, Any]:
    # lstat first: for anything but a symlink it is also the stat the reference reports, and a
    # path lstat cannot reach fails stat with the same error.
    info = os.lstat(path)
    is_symlink = stat.S_ISLNK(info.st_mode)
    if is_symlink:
        info = os.stat(path)  # a dangling link fails here, as in the reference
    mode = info.st_mode
    modified = info.st_mtime_ns
    # Linux exposes no birth time through stat (nor does the reference's musl build).
    created = int(getattr(info, "st_birthtime", 0) * 1000) if _HAS_BIRTHTIME else 0
    return {
        "isDirectory": stat.S_ISDIR(mode),
        "isFile": stat.S_ISREG(mode),
        "isSymlink": is_symlink,
        # Times before the epoch are reported as 0, like times that are unavailable.
        "createdAtMs": max(created, 0),
        "modifiedAtMs": modified // 1_000_000 if modified > 0 else 0,
    }


def _read_directory(path: str) -> dict[str, Any]:
    entries = []
    with os.scandir(path) as children:
        for child in children:
            try:
                if child.is_symlink():
                    # Entries describe what a link points to; dangling links are left out.
                    mode = os.stat(child.path).st_mode
                    is_dir, is_file = stat.S_ISDIR(mode), stat.S_ISREG(mode)
                else:
                    is_dir = child.is_dir(follow_symlinks=False)
                    is_file = child.is_file(follow_symlinks=False)
            except OSError:
                continue
            name = child.name
            if not name.isascii():
                # Undecodable bytes become U+FFFD, as Rust's to_string_lossy does.
                name = os.fsencode(name).decode("utf-8", "replace")
            entries.append({"fileName": name, "isDirectory": is_dir, "isFile": is_file})
    return {"entries": entries}


def _remove(path: str, recursive: bool, force: bool) -> dict[str, Any]:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        if force:
            return {}
        raise
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(path)  # files, and symlinks themselves (never their targets)
    elif recursive:
        shutil.rmtree(path)
    else:
        os.rmdir(path)
    return {}


def _copy(source: str, destination: str, recursive: bool) -> dict[str, Any]:
    mode = os.lstat(source).st_mode
    if stat.S_ISDIR(mode):
        if not recursive:
            raise _invalid("fs/copy requires recursive: true when sourcePath is a directory")
        if _is_same_or_descendant(source, destination):
            raise _invalid("fs/copy cannot copy a directory to itself or one of its descendants")
        _copy_tree(source, destination)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(source), destination)  # the link itself, not its target
    elif stat.S_ISREG(mode):
        _copy_file(source, destination)
    else:
        raise _invalid("fs/copy only supports regular files, directories, and symlinks")
    return {}


def _create_dir_all(path: str) -> None:
    """``mkdir -p`` with the reference's error choices.

    ``os.makedirs`` differs where it matters to clients: under a dangling symlink it reports
    ENOENT where the reference reports EEXIST. Iterative, so deep paths cannot hit Python's
    recursion limit.
    """
    missing: list[str] = []
    current = path
    while True:
        try:
            os.mkdir(current)
            break
        except FileNotFoundError:
            parent = os.path.dirname(current)
            if parent == current:
                raise RpcError(INTERNAL_ERROR, "failed to create whole tree") from None
            missing.append(current)
            current = parent
        except OSError:
            if os.path.isdir(current):
                break
            raise
    for directory in reversed(missing):
        try:
            os.mkdir(directory)
        except OSError:
            if not os.path.isdir(directory):
                raise


def _is_same_or_descendant(source: str, destination: str) -> bool:
    """Whether copying ``source`` to ``destination`` would copy a tree into itself.

    Both sides are resolved through symlinks; the destination usually does not exist yet, so
    its deepest existing ancestor is resolved and the rest appended.
    """
    resolved_source = os.path.realpath(source, strict=True)
    suffix: list[str] = []
    current = destination
    while not os.path.exists(current):
        parent, name = os.path.split(current)
        if not name:
            break
        suffix.append(name)
        current = parent
    resolved = os.path.join(os.path.realpath(current, strict=True), *reversed(suffix))
    return resolved == resolved_source or resolved.startswith(resolved_source.rstrip("/") + "/")


def _copy_tree(source: str, destination: str) -> None:
    """Copy a tree in the reference's order, so a failure leaves the same partial copy.

    Existing directories are merged into, existing files overwritten, existing symlinks make
    the copy fail; special files (FIFOs, sockets, devices) are skipped.
    """
    _create_dir_all(destination)
    stack = [(os.scandir(source), destination)]
    try:
        while stack:
            children, target = stack[-1]
            child = next(children, None)
            if child is None:
                children.close()
                stack.pop()
                continue
            child_target = os.path.join(target, child.name)
            if child.is_dir(follow_symlinks=False):
                _create_dir_all(child_target)
                stack.append((os.scandir(child.path), child_target))
            elif child.is_file(follow_symlinks=False):
                _copy_file(child.path, child_target)
            elif child.is_symlink():
                os.symlink(os.readlink(child.path), child_target)
    finally:
        for children, _ in stack:
            children.close()


def _copy_file(source: str, destination: str) -> None:
    """Copy contents and permission bits, as Rust's ``std::fs::copy`` does."""
    with open(source, "rb") as reader:
        info = os.fstat(reader.fileno())
        try:
            if os.path.samestat(info, os.stat(destination)):
                return  # the reference would truncate the file to nothing; keep the data
        except (OSError, ValueError):
            pass  # no such destination yet, or a bad one: opening it reports that below
        permissions = stat.S_IMODE(info.st_mode)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        with open(os.open(destination, flags, permissions), "wb") as writer:
            if stat.S_ISREG(os.fstat(writer.fileno()).st_mode):
                os.fchmod(writer.fileno(), permissions)
            shutil.copyfileobj(reader, writer, 1024 * 1024)
