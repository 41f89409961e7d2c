"""Answer a stdio client's ``initialize`` while the server is still loading its plugins.

Reading the config and loading the plugins is most of a start, and a client's first message,
``initialize``, needs neither: its answer is the user agent and ``CODEX_HOME``. So
``codex-app-server``, serving stdio, starts a thread that reads the first line as soon as the
process is up, and answers a plain ``initialize`` at once, or, when the config could refuse the
start (``config.locations.may_refuse_start``), once it has been read: a start the official
server refuses still gets no answer. The stdio transport then takes
stdin over with whatever the thread read, and the connection adopts the handshake: the same
state and startup notifications as if it had answered itself.

Anything else stays with the connection untouched: another method first, params only the full
validator can judge, a first line not yet complete when the transport takes over.

stdin and stdout belong to the process, not to a kernel, hence the one module-level handshake.
"""

from __future__ import annotations

import os
import select
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_core.protocol import envelope
from codex_core.server_info import initialize_result

#: An ``initialize`` is a few hundred bytes; a longer first line is left to the connection.
FIRST_LINE_LIMIT = 64 * 1024

_BOOLEAN_CAPABILITIES = frozenset(
    {
        "experimentalApi",
        "explicitGatewayOauth",
        "mcpServerOpenaiFormElicitation",
        "requestAttestation",
        "requiredHumanApproval",
    }
)

_started: EarlyHandshake | None = None


@dataclass(frozen=True, slots=True)
class Handoff:
    """What the transport takes over: the protocol's stdout and what was read of stdin."""

    write_fd: int
    #: Bytes read from stdin that the connection has yet to see.
    pending: bytes
    #: stdin ended while the thread was reading it.
    eof: bool
    #: The ``initialize`` line already answered, for the connection to adopt; else None.
    answered: bytes | None


def claim_stdout() -> int:
    """Move the protocol's stdout to a private descriptor and point fd 1 at stderr.

    From then on a stray ``print`` (in a plugin, say) lands in the log instead of corrupting
    the message stream.
    """
    write_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return write_fd


def start(codex_home: Path) -> EarlyHandshake | None:
    """Start reading stdin for an ``initialize`` to answer early (POSIX only: needs select)."""
    global _started
    if os.name == "nt" or _started is not None:
        return None
    _started = EarlyHandshake(codex_home, claim_stdout())
    return _started


def take() -> Handoff | None:
    """The early handshake's handoff, once; None when there was none."""
    global _started
    handshake, _started = _started, None
    return None if handshake is None else handshake.hand_off()


class EarlyHandshake:
    def __init__(self, codex_home: Path, write_fd: int) -> None:
        self._codex_home = codex_home
        self._write_fd = write_fd
        self._buffer = bytearray()
        self._eof = False
        self._answered: bytes | None = None
        self._may_answer = threading.Event()
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._run, name="stdio-handshake", daemon=True)
        self._thread.start()

    def allow_answer(self) -> None:
        """The config was read and the server will start: a waiting ``initialize`` may go."""
        self._may_answer.set()

    def hand_off(self) -> Handoff:
        """Stop the thread (answering first if it may) and hand everything to the transport."""
        self._may_answer.set()
        os.write(self._wake_write, b"\0")
        self._thread.join()
        os.close(self._wake_read)
        os.close(self._wake_write)
        pending = bytes(self._buffer)
        if self._answered is not None:
            pending = pending[len(self._answered) :]
        return Handoff(self._write_fd, pending, self._eof, self._answered)

    def _run(self) -> None:
        line = self._read_first_line()
        if line is None:
            return
        request = envelope.parse(line)
        if not isinstance(request, envelope.Request) or not _plain_initialize(request):
            return
        client = request.params["clientInfo"]
        self._may_answer.wait()
        result = initialize_result(self._codex_home, client["name"], client["version"])
        reply = envelope.encode_result(request.id, envelope.dumps(result)) + "\n"
        write_all(self._write_fd, reply.encode())
        self._answered = line

    def _read_first_line(self) -> bytes | None:
        """The first line, newline included; None if the transport took over first."""
        while len(self._buffer) < FIRST_LINE_LIMIT:
            ready, _, _ = select.select([0, self._wake_read], [], [])
            if self._wake_read in ready:
                return None
            chunk = os.read(0, FIRST_LINE_LIMIT)
            if not chunk:
                self._eof = True
                return None
            self._buffer += chunk
            end = self._buffer.find(b"\n")
            if end >= 0:
                return bytes(self._buffer[: end + 1])
        return None


def _plain_initialize(request: envelope.Request) -> bool:
    """Whether ``request`` is an ``initialize`` the full validator is sure to accept as it is.

    Deliberately narrow: the known fields with their plain types. Anything else (an unknown
    capability, ``extensions``, a wrong type) goes to the connection, whose validator gives
    the official server's error messages.
    """
    if request.method != "initialize":
        return False
    params = request.params
    if not isinstance(params, dict) or not set(params) <= {"clientInfo", "capabilities"}:
        return False
    client = params.get("clientInfo")
    if not (
        isinstance(client, dict)
        and set(client) <= {"name", "title", "version"}
        and isinstance(client.get("name"), str)
        and isinstance(client.get("version"), str)
        and isinstance(client.get("title"), str | None)
    ):
        return False
    capabilities = params.get("capabilities")
    return capabilities is None or (
        isinstance(capabilities, dict)
        and all(_plain_capability(*item) for item in capabilities.items())
    )


def _plain_capability(name: str, value: Any) -> bool:
    if name in _BOOLEAN_CAPABILITIES:
        return isinstance(value, bool)
    if name == "optOutNotificationMethods":
        return value is None or (
            isinstance(value, list) and all(isinstance(method, str) for method in value)
        )
    return False


def write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to a blocking descriptor."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
