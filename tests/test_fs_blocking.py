"""File work that blocks for good holds up nothing but itself, and never the exit.

``fs/writeFile`` to a FIFO nobody reads blocks in ``open`` until a reader comes, as in the
reference. Forty-five such writes (the reference answers everything else with 45 blocked) must
not stop other file requests nor the config methods, and neither stdin EOF nor a second
SIGTERM may hang on them.
"""

from __future__ import annotations

import base64
import os
import re
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from codex_core.testing.pytest_plugin import ServerFactory, StdioServer

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")

BLOCKED = 45


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "nobody-reads-this"
    os.mkfifo(path)
    return path


def block_writes(server: StdioServer, fifo: Path, count: int = BLOCKED) -> list[str]:
    """Send ``count`` writes to ``fifo``; return their ids once the server has taken them all.

    Requests are dispatched in arrival order, so once a request sent after them is answered
    every write is running (and blocked: nothing reads the FIFO).
    """
    ids = [f"write-{index}" for index in range(count)]
    data = base64.b64encode(b"x").decode()
    for request_id in ids:
        server.send(
            {
                "id": request_id,
                "method": "fs/writeFile",
                "params": {"path": str(fifo), "dataBase64": data},
            }
        )
    assert server.result("fs/getMetadata", {"path": str(fifo)})["isFile"] is False
    return ids


def test_blocked_writes_hold_up_no_other_request(
    codex_server_factory: ServerFactory, fifo: Path, tmp_path: Path
) -> None:
    server = codex_server_factory()
    server.initialize()
    ids = block_writes(server, fifo)
    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"hello")

    assert server.result("fs/readFile", {"path": str(plain)}) == {
        "dataBase64": base64.b64encode(b"hello").decode()
    }
    names = {
        e["fileName"] for e in server.result("fs/readDirectory", {"path": str(tmp_path)})["entries"]
    }
    assert {"plain.txt", fifo.name} <= names
    server.result("fs/writeFile", {"path": str(plain), "dataBase64": ""})
    assert plain.read_bytes() == b""
    written = server.result(
        "config/value/write", {"keyPath": "model", "value": "gpt-5", "mergeStrategy": "replace"}
    )
    assert written["status"] == "ok"
    assert server.result("config/read", {})["config"]["model"] == "gpt-5"

    # A reader comes: every blocked write goes through and is answered.
    assert read_fifo(fifo, BLOCKED) == b"x" * BLOCKED
    for request_id in ids:
        assert server.wait_response(request_id) == {"id": request_id, "result": {}}


def read_fifo(fifo: Path, count: int, timeout: float = 10) -> bytes:
    """Read ``count`` bytes from ``fifo``, however the writers' opens and closes interleave.

    The test holds a write end of its own meanwhile, so the reader never sees end-of-file
    between two writers (a write whose thread reaches ``open`` late still finds a reader).
    """
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    keep_open = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    received = b""
    deadline = time.monotonic() + timeout
    try:
        while len(received) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"only {len(received)} of {count} bytes arrived"
            if select.select([reader], [], [], remaining)[0]:
                received += os.read(reader, count - len(received))
    finally:
        os.close(keep_open)
        os.close(reader)
    return received


def test_stdin_eof_exits_with_writes_blocked(
    codex_server_factory: ServerFactory, fifo: Path
) -> None:
    server = codex_server_factory()
    server.initialize()
    block_writes(server, fifo)
    assert server.process.stdin is not None
    server.process.stdin.close()
    # The connection gives running requests 5 s to answer, then abandons them.
    assert server.process.wait(timeout=20) == 0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_second_sigterm_exits_at_once_with_writes_blocked(
    codex_server_factory: ServerFactory, codex_env: dict[str, str], fifo: Path
) -> None:
    server = codex_server_factory(env={**codex_env, "CODEX_CORE_LOG": "INFO"})
    server.initialize()
    block_writes(server, fifo)
    server.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while not re.search(r"SIGTERM: finishing running requests", server.stderr):
        assert time.monotonic() < deadline, f"first SIGTERM not handled:\n{server.stderr}"
        time.sleep(0.02)
    server.process.send_signal(signal.SIGTERM)
    # Well before the 10 s a graceful shutdown would give the blocked writes.
    assert server.process.wait(timeout=5) == 128 + signal.SIGTERM
