"""A second client joining a loaded thread with ``thread/resume``, ours against the reference.

This is what the official TUI does when it reconnects to a server that still has its thread
loaded (``codex --remote`` after the first TUI was killed): it resumes with ``excludeTurns``.
The reference then announces neither the thread's status nor its token usage to the joining
client (so the TUI's agent list shows no token count), and announces the usage only when the
turns are sent; loading a thread from disk announces both. Both servers get the same requests
over websockets, and what the joining client is told is compared, ids masked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection

from codex_core.testing import ScriptedModelServer, message
from codex_core.testing.pytest_plugin import WsServer, server_command
from codex_core.testing.reference import missing_reason, reference_binary

from .conftest import request

OFFICIAL = reference_binary()
pytestmark = pytest.mark.skipif(OFFICIAL is None, reason=missing_reason())

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Sent by the reference to every new connection; not about the thread.
UNRELATED = {"remoteControl/status/changed"}


def connect(server: WsServer) -> ClientConnection:
    ws = server.connect()
    params = {"clientInfo": {"name": "pytest", "title": None, "version": "1.0"},
              "capabilities": {"experimentalApi": True}}  # fmt: skip
    assert "result" in request(ws, 0, "initialize", params)
    ws.send(json.dumps({"method": "initialized"}))
    return ws


def told_after(ws: ClientConnection, request_id: int, method: str, params: Any) -> list[Any]:
    """The notifications ``ws`` reads from sending the request until the resume is settled:
    both servers end it with ``thread/goal/cleared``; a request after that is the barrier for
    anything still queued."""
    ws.send(json.dumps({"id": request_id, "method": method, "params": params}))
    seen: list[Any] = []
    answered = settled = False
    while not (answered and settled):
        incoming = json.loads(ws.recv(timeout=20))
        if incoming.get("id") == request_id:
            assert "result" in incoming, incoming
            answered = True
        elif incoming.get("method") not in UNRELATED:
            seen.append({"method": incoming["method"], "params": incoming.get("params")})
            settled = settled or incoming["method"] == "thread/goal/cleared"
    barrier = request_id + 1000
    ws.send(json.dumps({"id": barrier, "method": "thread/loaded/list", "params": {}}))
    while (incoming := json.loads(ws.recv(timeout=20))).get("id") != barrier:
        if incoming.get("method") not in UNRELATED:
            seen.append({"method": incoming["method"], "params": incoming.get("params")})
    return seen


def joining(argv: list[str], env: dict[str, str], cwd: Path) -> dict[str, list[Any]]:
    """One client runs a turn; others join with and without the turns; a new server loads
    the thread from disk, once each way."""
    told: dict[str, list[Any]] = {}
    with ScriptedModelServer() as model:
        model.add(message("First answer."))
        options = [*model.config_args(), "-c", 'approval_policy="never"']
        server = WsServer([*argv, "--listen", "ws://127.0.0.1:0", *options],
                          {**env, **model.env}, cwd)  # fmt: skip
        try:
            first = connect(server)
            thread_id = request(first, 1, "thread/start", {})["result"]["thread"]["id"]
            turn = {"threadId": thread_id, "input": [{"type": "text", "text": "one"}]}
            first.send(json.dumps({"id": 2, "method": "turn/start", "params": turn}))
            while json.loads(first.recv(timeout=30)).get("method") != "turn/completed":
                pass
            for exclude in (True, False):
                other = connect(server)
                params = {"threadId": thread_id, "excludeTurns": exclude}
                told[f"joining, excludeTurns {exclude}"] = told_after(
                    other, 3, "thread/resume", params
                )
                other.close()
        finally:
            server.stop()
        for exclude in (True, False):
            server = WsServer([*argv, "--listen", "ws://127.0.0.1:0", *options],
                              {**env, **model.env}, cwd)  # fmt: skip
            try:
                params = {"threadId": thread_id, "excludeTurns": exclude}
                told[f"loading, excludeTurns {exclude}"] = told_after(
                    connect(server), 3, "thread/resume", params
                )
            finally:
                server.stop()
    ids: dict[str, str] = {}
    text = UUID.sub(lambda m: ids.setdefault(m.group(0), f"<id{len(ids)}>"), json.dumps(told))
    masked: dict[str, list[Any]] = json.loads(text)
    return masked


def test_joining_a_loaded_thread_is_told_what_the_reference_tells(
    codex_env: dict[str, str], tmp_path: Path
) -> None:
    assert OFFICIAL is not None
    cwd = tmp_path / "cwd"
    for folder in (cwd, tmp_path / "ours-home", tmp_path / "reference-home"):
        folder.mkdir(exist_ok=True)
    ours = joining(server_command(), {**codex_env, "CODEX_HOME": str(tmp_path / "ours-home")}, cwd)
    theirs = joining(
        [str(OFFICIAL), "app-server"],
        {**codex_env, "CODEX_HOME": str(tmp_path / "reference-home")},
        cwd,
    )
    assert ours == theirs
    methods = {case: [note["method"] for note in told] for case, told in theirs.items()}
    assert methods["joining, excludeTurns True"] == ["thread/goal/cleared"]
    assert "thread/tokenUsage/updated" in methods["joining, excludeTurns False"]
    assert "thread/status/changed" in methods["loading, excludeTurns True"]
