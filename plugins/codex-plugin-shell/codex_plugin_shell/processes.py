"""A child process with its output read as it comes: over pipes, or on a pseudo-terminal.

``command/exec`` needs what ``anyio.open_process`` cannot give: a PTY that is the child's
controlling terminal (so a resize reaches it as ``SIGWINCH`` and ``/dev/tty`` works), and
non-blocking file descriptors the caller reads, writes and closes one by one. So the child is
started with ``subprocess.Popen`` (in a session of its own, so one signal ends it and all its
children) and everything after that waits on file descriptors with ``anyio.wait_readable`` /
``wait_writable`` (the exit through a pidfd): nothing blocks the event loop, on either anyio
backend.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import struct
import subprocess
import termios
from collections.abc import Mapping, Sequence

import anyio

#: The terminal size a PTY starts with when the request gives none (the reference's default).
DEFAULT_ROWS, DEFAULT_COLS = 24, 80
#: The most one read takes; the reader coalesces what is already there up to this much.
READ_SIZE = 64 * 1024


class SpawnError(Exception):
    """The child could not be started; worded as the reference words an ``io::Error``."""

    def __init__(self, exc: OSError) -> None:
        code = exc.errno or 0
        super().__init__(f"{os.strerror(code)} (os error {code})")


def _take_terminal() -> None:
    """In the child, before ``exec``: make the PTY (its stdin) the session's controlling tty."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class ChildProcess:
    """One running child; ``outputs`` are the descriptors to read (stdout, stderr; a PTY has
    only the one, both streams merged as a terminal merges them)."""

    def __init__(
        self,
        argv: Sequence[str],
        cwd: str,
        env: Mapping[str, str],
        *,
        tty: bool,
        stdin: bool,
        size: tuple[int, int] | None = None,
    ) -> None:
        self.tty = tty
        self.stdin: int | None = None
        self.outputs: list[int] = []
        try:
            if tty:
                self._spawn_pty(argv, cwd, env, size or (DEFAULT_ROWS, DEFAULT_COLS))
            else:
                self._spawn_pipes(argv, cwd, env, stdin)
        except OSError as exc:
            raise SpawnError(exc) from None
        self.pid = self.popen.pid
        self._pidfd: int | None = None
        with contextlib.suppress(OSError, AttributeError):
            self._pidfd = os.pidfd_open(self.pid)
        for fd in [*self.outputs, *([self.stdin] if self.stdin is not None else [])]:
            os.set_blocking(fd, False)

    def _spawn_pty(
        self, argv: Sequence[str], cwd: str, env: Mapping[str, str], size: tuple[int, int]
    ) -> None:
        master, slave = os.openpty()
        try:
            set_size(master, *size)
            self.popen = subprocess.Popen(
                list(argv), stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=dict(env),
                start_new_session=True, preexec_fn=_take_terminal,
            )  # fmt: skip
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.stdin = master
        self.outputs = [master]

    def _spawn_pipes(
        self, argv: Sequence[str], cwd: str, env: Mapping[str, str], stdin: bool
    ) -> None:
        self.popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
        )
        assert self.popen.stdout is not None and self.popen.stderr is not None
        self.outputs = [self.popen.stdout.fileno(), self.popen.stderr.fileno()]
        if self.popen.stdin is not None:
            self.stdin = self.popen.stdin.fileno()

    # ------------------------------------------------------------------ output

    async def read(self, fd: int) -> bytes:
        """The next bytes on ``fd`` (what is there, up to ``READ_SIZE``); ``b""`` at the end.

        A PTY whose last slave closed reports ``EIO`` instead of end of file (Linux)."""
        chunks: list[bytes] = []
        size = 0
        while size < READ_SIZE:
            try:
                data = os.read(fd, READ_SIZE - size)
            except BlockingIOError:
                if chunks:
                    break
                await anyio.wait_readable(fd)
                continue
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                data = b""
            if not data:
                break
            chunks.append(data)
            size += len(data)
        return b"".join(chunks)

    # ------------------------------------------------------------------ input

    async def write(self, data: bytes) -> None:
        """Write all of ``data`` to the child's stdin, waiting while the pipe is full."""
        assert self.stdin is not None
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.stdin, view)
            except BlockingIOError:
                await anyio.wait_writable(self.stdin)
                continue
            view = view[written:]

    def close_stdin(self) -> None:
        """End the child's input; a PTY stays open (closing its master would hang it up)."""
        if self.stdin is not None and not self.tty:
            if self.popen.stdin is not None:
                self.popen.stdin.close()
            self.stdin = None

    def resize(self, rows: int, cols: int) -> None:
        assert self.tty and self.stdin is not None
        set_size(self.stdin, rows, cols)

    # ------------------------------------------------------------------ ending

    def kill(self) -> None:
        """SIGKILL the child's whole session (the reference's terminate: no grace period)."""
        if self.popen.returncode is not None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()

    async def wait(self) -> int:
        """The exit code once the child is gone: a signal ``N`` reads as ``128 + N``."""
        while self.popen.poll() is None:
            if self._pidfd is not None:
                await anyio.wait_readable(self._pidfd)
            else:
                await anyio.sleep(0.05)
        code = self.popen.returncode
        return 128 - code if code < 0 else code

    def close(self) -> None:
        """Release the descriptors (once nothing reads or writes them any more)."""
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self.tty and self.outputs:
            with contextlib.suppress(OSError):
                os.close(self.outputs[0])
        self.outputs = []
        self.stdin = None
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
