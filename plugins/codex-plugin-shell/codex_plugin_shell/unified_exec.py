"""Unified exec sessions: the model's commands that outlive their ``exec_command`` call.

As in the reference, ``exec_command`` waits ``yield_time_ms`` at most; a command still running
then becomes a session the model reaches again with ``write_stdin`` (to type into it, or to
poll its output) by its session id, and the client sees it as a background terminal
(``thread/backgroundTerminals/list|clean|terminate``). A session's output is read the whole
time into two places: its commandExecution item (streamed as ``outputDelta``) and what the
model has not read yet. The item stays open, past the end of its turn if need be, until the
process ends: its exit completes the item with the exit code, a client's ``terminate`` or
``clean`` as ``failed`` with exit code -1 (as the reference).

One store per kernel, sessions keyed by id and scoped to the thread that started them; at
most ``MAX_SESSIONS`` (the reference's cap), the oldest idle one pruned to make room.
"""

from __future__ import annotations

import codecs
import contextlib
import math
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from codex_plugin_shell.processes import ChildProcess

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

#: ``yield_time_ms`` of ``exec_command`` and of a ``write_stdin`` that types something.
MIN_YIELD_MS, MAX_YIELD_MS = 250, 30_000
DEFAULT_EXEC_YIELD_MS = 10_000
DEFAULT_WRITE_YIELD_MS = 250
#: An empty ``write_stdin`` only polls: it waits longer (the reference's bounds).
MIN_POLL_MS, MAX_POLL_MS = 5_000, 300_000
#: The most sessions one kernel keeps, and how many recently used ones pruning spares.
MAX_SESSIONS = 64
KEEP_RECENT = 8
#: The most output kept for the item and for the model (head and tail beyond it).
OUTPUT_CAP = 1024 * 1024
#: The exit code of a command its ``timeout_ms`` ended.
EXIT_TIMEOUT = 124
#: Where session ids are drawn from (the reference's are random too, in this range).
ID_RANGE = (1_000, 100_000)
SERVICE = "shell.unified_exec"
#: How long an unloading thread waits for its killed commands' items (SIGKILL is prompt).
STOP_WAIT_SECONDS = 5


def clamp(value: Any, default: int, low: int, high: int) -> int:
    """A model-given millisecond count, defaulted when absent or nonsense, then bounded."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return default
    return int(min(max(value, low), high))


@dataclass(eq=False)
class Session:
    """One running command of the model."""

    id: int
    thread_id: str
    #: The command as the model wrote it (what ``backgroundTerminals/list`` shows).
    command: str
    cwd: str
    child: ChildProcess
    #: The turn that started it (its item belongs to that turn, even once it ended).
    turn: Any
    item: dict[str, Any]
    timeout_ms: int | None = None
    started: float = field(default_factory=time.monotonic)
    used: float = field(default_factory=time.monotonic)
    aggregated: list[str] = field(default_factory=list)
    aggregated_size: int = 0
    pending: str = ""
    exit_code: int | None = None
    item_open: bool = True
    #: Killed on a client's request (its item then reads exit code -1).
    killed: bool = False
    exited: anyio.Event = field(default_factory=anyio.Event)

    @property
    def process_id(self) -> str:
        return str(self.id)

    def output(self, text: str) -> None:
        """New output: onto the item (while open, streamed) and for the model."""
        if self.aggregated_size < OUTPUT_CAP:
            kept = text[: OUTPUT_CAP - self.aggregated_size]
            self.aggregated.append(kept)
            self.aggregated_size += len(kept)
            if self.item_open:
                self.turn.delta("item/commandExecution/outputDelta", self.item["id"], delta=kept)
        self.pending = cap(self.pending + text)

    def take_output(self) -> str:
        text, self.pending = self.pending, ""
        return text

    def complete_item(self, status: str, exit_code: int) -> None:
        if not self.item_open:
            return
        self.item_open = False
        self.turn.item_completed(
            {**self.item, "status": status, "aggregatedOutput": "".join(self.aggregated) or None,
             "exitCode": exit_code, "durationMs": int((time.monotonic() - self.started) * 1000),
             "completedAtMs": time.time_ns() // 1_000_000}
        )  # fmt: skip

    async def wait(self, milliseconds: int) -> None:
        """Until the command ends, or ``milliseconds`` pass."""
        with anyio.move_on_after(milliseconds / 1000):
            await self.exited.wait()


def cap(text: str) -> str:
    """``text`` within ``OUTPUT_CAP``: its head and its tail."""
    if len(text) <= OUTPUT_CAP:
        return text
    half = OUTPUT_CAP // 2
    return text[:half] + text[-half:]


class Sessions:
    """The kernel's unified exec sessions."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.by_id: dict[int, Session] = {}

    def new_id(self) -> int:
        while True:
            candidate = random.randrange(*ID_RANGE)
            if candidate not in self.by_id:
                return candidate

    def start(self, session: Session) -> None:
        """Keep ``session`` (pruning one if full) and read it until it ends."""
        if len(self.by_id) >= MAX_SESSIONS:
            self.prune()
        self.by_id[session.id] = session
        self.kernel.start_soon(self._watch, session, name=f"unified exec {session.id}",
                               service=True)  # fmt: skip

    def get(self, thread_id: str, session_id: int) -> Session | None:
        session = self.by_id.get(session_id)
        return session if session is not None and session.thread_id == thread_id else None

    def running(self, thread_id: str) -> list[Session]:
        """The thread's sessions whose process is still there, by id."""
        return sorted(
            (s for s in self.by_id.values() if s.thread_id == thread_id and s.exit_code is None),
            key=lambda session: session.id,
        )

    def terminate(self, session: Session) -> None:
        """Kill the session's whole process group and forget it."""
        self.by_id.pop(session.id, None)
        session.killed = True
        session.child.kill()

    def prune(self) -> None:
        """Make room: forget an exited session if there is one, else kill the least recently
        used one outside the ``KEEP_RECENT`` most recently used."""
        by_use = sorted(self.by_id.values(), key=lambda session: session.used)
        exited = [session for session in by_use if session.exit_code is not None]
        victim = exited[0] if exited else by_use[: max(len(by_use) - KEEP_RECENT, 1)][0]
        self.terminate(victim)

    def close(self) -> None:
        """The kernel stops: no command of the model outlives it."""
        for session in list(self.by_id.values()):
            self.terminate(session)

    async def close_thread(self, thread_id: str) -> None:
        """The thread unloads: stop its commands, and wait until their items completed (the
        reference sends those before the thread's ``notLoaded``)."""
        stopped = [s for s in self.by_id.values() if s.thread_id == thread_id]
        for session in stopped:
            self.terminate(session)
        with anyio.move_on_after(STOP_WAIT_SECONDS):
            for session in stopped:
                await session.exited.wait()

    async def _watch(self, session: Session) -> None:
        """Read the session's output until its process ends, then complete its item."""
        child = session.child
        try:
            limit = session.timeout_ms / 1000 if session.timeout_ms else math.inf
            with anyio.move_on_after(limit) as scope:
                async with anyio.create_task_group() as readers:
                    for fd in child.outputs:
                        readers.start_soon(self._read, session, fd)
                code = await child.wait()
            if scope.cancelled_caught:
                child.kill()
                await child.wait()
                session.output(f"\ncommand timed out after {session.timeout_ms} milliseconds\n")
                code = EXIT_TIMEOUT
            session.exit_code = code
            shown = -1 if session.killed else code
            session.complete_item("completed" if shown == 0 else "failed", shown)
            session.exited.set()
        finally:
            child.kill()
            with contextlib.suppress(OSError):
                child.close()

    @staticmethod
    async def _read(session: Session, fd: int) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while data := await session.child.read(fd):
            text = decoder.decode(data)
            if text:
                session.output(text)
        tail = decoder.decode(b"", final=True)
        if tail:
            session.output(tail)


def sessions(kernel: Kernel) -> Sessions:
    """The kernel's store, made on first use."""
    store = kernel.services.get(SERVICE)
    if store is None:
        store = kernel.services[SERVICE] = Sessions(kernel)
    assert isinstance(store, Sessions)
    return store


def model_output(output: str, status: str, wall: float, budget_tokens: int) -> str:
    """What the model reads after a call, in the reference's shape; ``status`` is ``Process
    exited with code N`` or ``Process running with session ID N``."""
    tokens = math.ceil(len(output.encode()) / 4)
    return (
        f"Chunk ID: {secrets.token_hex(3)}\n"
        f"Wall time: {wall:.4f} seconds\n"
        f"{status}\n"
        f"Original token count: {tokens}\n"
        f"Output:\n{truncate(output, budget_tokens)}"
    )


def truncate(output: str, budget_tokens: int) -> str:
    """Keep the head and the tail within ``budget_tokens`` (about 4 bytes a token)."""
    limit = max(budget_tokens, 1) * 4
    if len(output) <= limit:
        return output
    half = limit // 2
    dropped = math.ceil((len(output) - 2 * half) / 4)
    return f"{output[:half]}\n…{dropped} tokens truncated…\n{output[-half:]}"
