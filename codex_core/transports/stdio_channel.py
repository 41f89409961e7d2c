"""The ``stdio://`` channel: one JSON message per line on stdin/stdout (``stdio`` serves it).

The protocol owns file descriptor 1. At startup the real stdout is moved to a private
descriptor and fd 1 is pointed at stderr, so a stray ``print`` in some plugin ends up in the log
instead of corrupting the message stream. Lines are read as bytes so invalid UTF-8 is one
dropped message, not the end of the session.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import threading
from collections.abc import Sequence

import anyio

from codex_core.transports import stdio_handshake

log = logging.getLogger(__name__)

#: Longest line accepted; a longer one is dropped (and logged) without ending the session.
MAX_LINE = 256 * 1024 * 1024
#: Output longer than this goes to the pipe a piece at a time.
WRITE_CHUNK = 1024 * 1024


class StdioChannel:
    peer = "stdio"

    def __init__(self, reader: asyncio.StreamReader, write_fd: int) -> None:
        self._reader = reader
        self._fd = write_fd
        self._writer: asyncio.StreamWriter | None = None

    @classmethod
    async def open(cls) -> tuple[StdioChannel, bytes | None]:
        """The channel, and the ``initialize`` line already answered early, if any.

        ``codex-app-server`` may have started reading stdin before the kernel loaded
        (``stdio_handshake``): what it read is replayed first.
        """
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_LINE)
        handoff = stdio_handshake.take()
        if handoff is None:
            handoff = stdio_handshake.Handoff(stdio_handshake.claim_stdout(), b"", False, None)
        if handoff.pending:
            reader.feed_data(handoff.pending)
        if handoff.eof:
            reader.feed_eof()
        elif _pollable(0):
            await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0)
            )
        else:  # a regular file or /dev/null cannot be polled: read it in a thread
            threading.Thread(target=_pump_stdin, args=(loop, reader), daemon=True).start()
        channel = cls(reader, handoff.write_fd)
        if _pollable(handoff.write_fd):  # else stdout is a regular file: plain writes in a thread
            transport, protocol = await loop.connect_write_pipe(
                asyncio.streams.FlowControlMixin, os.fdopen(handoff.write_fd, "wb", buffering=0)
            )
            channel._writer = asyncio.StreamWriter(transport, protocol, None, loop)
        return channel, handoff.answered

    async def receive(self) -> bytes:
        while True:
            try:
                line = await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial.strip():
                    return exc.partial
                raise anyio.EndOfStream from None
            except asyncio.LimitOverrunError:
                await self._discard_line()
                continue
            if line.strip():
                return line
            log.debug("stdio: dropped an empty line")

    async def _discard_line(self) -> None:
        log.warning("stdio: dropped a message longer than %d bytes", MAX_LINE)
        while True:
            try:
                await self._reader.readuntil(b"\n")
                return
            except asyncio.LimitOverrunError as exc:
                await self._reader.readexactly(exc.consumed)
            except asyncio.IncompleteReadError:
                return

    async def send(self, frames: Sequence[str]) -> None:
        text = "\n".join(frames)
        if self._writer is None:
            await anyio.to_thread.run_sync(
                stdio_handshake.write_all, self._fd, (text + "\n").encode()
            )
        elif len(text) <= WRITE_CHUNK:
            self._writer.write((text + "\n").encode())
            await self._writer.drain()
        else:
            # A reply of hundreds of MB: encoded whole, it would be one more full-size copy, and
            # handed over whole, the pipe transport would copy what the first write() leaves
            # into its own buffer and hold it until the client has read it all. A piece at a
            # time, neither holds more than one piece.
            for start in range(0, len(text), WRITE_CHUNK):
                self._writer.write(text[start : start + WRITE_CHUNK].encode())
                await self._writer.drain()
            self._writer.write(b"\n")
            await self._writer.drain()

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _pollable(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and os.isatty(fd))


def _pump_stdin(loop: asyncio.AbstractEventLoop, reader: asyncio.StreamReader) -> None:
    while chunk := os.read(0, 1 << 16):
        loop.call_soon_threadsafe(reader.feed_data, chunk)
    loop.call_soon_threadsafe(reader.feed_eof)
