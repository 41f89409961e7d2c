"""MCP servers per thread, ours against the official server: two websocket clients, the SDK
server of this folder (``probe``) and one that cannot start (``broken``).

A status list, then client A starts thread 1 and client B thread 2 (and thread 3, with
``mcp_servers = {}``); each thread's servers start and report; reads, calls and status lists
name a thread (or none, or an unknown one); a call crashes thread 2's server; thread 1 is
archived (unloaded), read from, unarchived and resumed (its servers start again); a reload
restarts what failed and announces what stays ready. Compared, ids masked: each client's
``mcpServer/startupStatus/updated`` per thread and server, in order, and where they fall among
the thread events the client sees (only a thread's subscribers hear its servers, after
``thread/started``); the answers to ``mcpServerStatus/list``, ``mcpServer/resource/read`` and
``mcpServer/tool/call``, errors included.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing import ScriptedModelServer
from codex_core.testing.pytest_plugin import StdioServer, WsServer, server_command
from codex_core.testing.reference import reference_server_command

REFERENCE = reference_server_command()

pytestmark = pytest.mark.skipif(
    REFERENCE is None,
    reason="the official server is not installed (python -m codex_core.testing.reference)",
)

SERVER = Path(__file__).with_name("mcp_test_server.py")
STARTUP = "mcpServer/startupStatus/updated"
#: The thread events a client's startup statuses are placed among.
THREAD_EVENTS = {"thread/started", "thread/archived", "thread/unarchived"}


class WsClient(StdioServer):
    """One websocket client, with ``StdioServer``'s request and wait helpers (its messages
    come off the socket instead of a pipe)."""

    def __init__(self, connection: Any) -> None:  # no process of its own: no super().__init__
        self.connection = connection
        self._ids = iter(range(1000, 10**6))
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.notifications: list[dict[str, Any]] = []
        self.server_requests: list[dict[str, Any]] = []
        self._responses: dict[Any, dict[str, Any]] = {}
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._read_socket, daemon=True).start()

    def _read_socket(self) -> None:
        try:
            for raw in self.connection:
                self._lines.put(json.loads(raw))
        except Exception:  # the socket closed
            pass
        self._lines.put(None)

    def send_raw(self, data: bytes | str) -> None:
        self.connection.send(data.decode() if isinstance(data, bytes) else data)


def settled(client: WsClient, thread_id: str, times: int = 1) -> bool:
    """Both servers of the thread reported how their startup ended ``times`` times."""
    ends = [
        n["params"]
        for n in client.notifications
        if n["method"] == STARTUP
        and n["params"]["threadId"] == thread_id
        and n["params"]["status"] in ("ready", "failed")
    ]
    return len(ends) >= 2 * times


def seen(client: WsClient, labels: dict[str, str], own: str) -> dict[str, list[str]]:
    """Per server: the events of the client's own thread (``own``) and every startup status
    the client heard, in order, each as ``METHOD THREAD [STATUS: ERROR]`` (servers start in
    parallel, so only one server's statuses have an order among the thread events). Other
    clients' thread events are left out: the reference announces a thread's start and archive
    to every client, codex-core to its subscribers (a thread-core difference, not MCP's)."""
    per_server: dict[str, list[str]] = {"probe": [], "broken": []}
    # The reference's first status races its ``thread/started`` (seen both ways round): a
    # status heard before the thread's start is counted right after it.
    early: list[tuple[str, str]] = []
    started = False
    for note in client.notifications:
        params = note.get("params") or {}
        method = note["method"]
        if method in THREAD_EVENTS:
            thread_id = params.get("threadId") or params["thread"]["id"]
            if thread_id != own:
                continue
            for events in per_server.values():
                events.append(f"{method} {labels.get(thread_id, thread_id)}")
            if not started:
                started = True
                for name, entry in early:
                    per_server[name].append(entry)
        elif method == STARTUP:
            label = labels.get(params["threadId"], params["threadId"])
            entry = f"{method} {label} {params['status']}"
            if params["error"] is not None:
                entry += f": {params['error']}"
            if started or params["threadId"] != own:
                per_server[params["name"]].append(entry)
            else:
                early.append((params["name"], entry))
    return per_server


def masked(value: Any, labels: dict[str, str]) -> Any:
    text = json.dumps(value)
    for thread_id, label in labels.items():
        text = text.replace(thread_id, label)
    return json.loads(text)


def session(argv: list[str], base: Path) -> dict[str, Any]:
    home, cwd = base / "home", base / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir()
    probe = f'mcp_servers.probe={{command="{sys.executable}", args=["{SERVER}", "stdio"]}}'
    broken = 'mcp_servers.broken={command="/nonexistent/mcp-server"}'
    with ScriptedModelServer() as model:
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        command = [*argv, "--listen", "ws://127.0.0.1:0", *model.config_args(),
                   "-c", probe, "-c", broken]  # fmt: skip
        server = WsServer(command, env, cwd)
        try:
            with server.connect() as socket_a, server.connect() as socket_b:
                a, b = WsClient(socket_a), WsClient(socket_b)
                return drive(a, b, cwd)
        finally:
            server.stop()


def drive(a: WsClient, b: WsClient, cwd: Path) -> dict[str, Any]:
    answers: dict[str, dict[str, Any]] = {}
    for client in (a, b):
        client.initialize()
    listed = a.result("mcpServerStatus/list", {}, timeout=60)["data"]
    summary = [
        {k: entry[k] for k in ("name", "toolsError", "authStatus", "resources")} for entry in listed
    ]
    t1 = a.result("thread/start", {"cwd": str(cwd)})["thread"]["id"]
    a.wait_until(lambda: settled(a, t1), timeout=60, what="thread 1's servers")
    t2 = b.result("thread/start", {"cwd": str(cwd)})["thread"]["id"]
    b.wait_until(lambda: settled(b, t2), timeout=60, what="thread 2's servers")
    # A thread without servers (as the TUI starts its temporary ones).
    t3 = b.result("thread/start", {"cwd": str(cwd), "config": {"mcp_servers": {}}})["thread"]["id"]
    labels = {t1: "<t1>", t2: "<t2>", t3: "<t3>"}
    gone = "00000000-0000-0000-0000-000000000000"
    read = {"threadId": t1, "server": "probe", "uri": "test://greeting"}
    call = {"threadId": t2, "server": "probe", "tool": "echo", "arguments": {"text": "x"}}
    requests = {
        "read t1": (a, "mcpServer/resource/read", read),
        "read without a thread": (a, "mcpServer/resource/read", {**read, "threadId": None}),
        "read unknown uri": (b, "mcpServer/resource/read", {**read, "uri": "test://nope"}),
        "read unknown server": (b, "mcpServer/resource/read", {**read, "server": "nope"}),
        "read broken": (a, "mcpServer/resource/read", {**read, "server": "broken"}),
        "call t2 from a": (a, "mcpServer/tool/call", call),
        "call broken": (b, "mcpServer/tool/call", {**call, "server": "broken"}),
        "list t1": (a, "mcpServerStatus/list", {"threadId": t1, "detail": "toolsAndAuthOnly"}),
        "list t3": (b, "mcpServerStatus/list", {"threadId": t3}),
        "list unknown thread": (b, "mcpServerStatus/list", {"threadId": gone}),
        "read t3": (b, "mcpServer/resource/read", {**read, "threadId": t3}),
    }
    for name, (client, method, params) in requests.items():
        answers[name] = client.request(method, params, timeout=60)
    answers["list t1"] = {"names": [e["name"] for e in answers["list t1"]["result"]["data"]]}
    crashed = b.request("mcpServer/tool/call", {**call, "tool": "crash"}, timeout=30)["error"]
    # The words after the prefix are each MCP client's ("Transport closed", "Connection closed").
    answers["call crash"] = {"code": crashed["code"], "message": crashed["message"].split(":")[0]}
    assert a.result("thread/archive", {"threadId": t1}) == {}
    answers["read t1 once unloaded"] = a.request("mcpServer/resource/read", read, timeout=30)
    a.result("thread/unarchive", {"threadId": t1})
    a.result("thread/resume", {"threadId": t1, "excludeTurns": True}, timeout=30)
    a.wait_until(lambda: settled(a, t1, times=2), timeout=60, what="thread 1's restart")
    answers["read t1 resumed"] = a.request("mcpServer/resource/read", read, timeout=30)
    assert b.result("config/mcpServer/reload", {}) == {}
    a.wait_until(lambda: settled(a, t1, times=3), timeout=60, what="thread 1's reload")
    b.wait_until(lambda: settled(b, t2, times=2), timeout=60, what="thread 2's reload")
    answers["call t2 reloaded"] = b.request("mcpServer/tool/call", call, timeout=30)
    for client in (a, b):
        client.barrier(timeout=30)
    return masked(
        {
            "listed": summary,
            "answers": {k: {f: v for f, v in r.items() if f != "id"} for k, r in answers.items()},
            "seen by a": seen(a, labels, t1),
            "seen by b": seen(b, labels, t2),
        },
        labels,
    )


def test_servers_per_thread_match_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    pytest.importorskip("codex_plugin_websocket", reason="codex-plugin-websocket provides ws://")
    ours = session(server_command(), tmp_path / "ours")
    theirs = session(REFERENCE, tmp_path / "reference")
    for key in ("seen by a", "seen by b"):
        for name in ("probe", "broken"):
            assert ours[key][name] == theirs[key][name], (key, name, ours[key], theirs[key])
    assert ours["listed"] == theirs["listed"]
    for name, answer in theirs["answers"].items():
        assert ours["answers"][name] == answer, name
    # What the comparison pins down, spelled out.
    failed = (
        "mcpServer/startupStatus/updated <t1> failed: MCP client for `broken` failed to start: "
        "MCP startup failed: No such file or directory (os error 2)"
    )
    assert ours["seen by a"]["broken"] == [
        "thread/started <t1>",
        "mcpServer/startupStatus/updated <t1> starting",
        failed,
        "thread/archived <t1>",
        "thread/unarchived <t1>",
        "mcpServer/startupStatus/updated <t1> starting",
        failed,
        "mcpServer/startupStatus/updated <t1> starting",  # the reload restarts what failed
        failed,
    ]
    ready = "mcpServer/startupStatus/updated <t1> ready"
    assert ours["seen by a"]["probe"][-2:] == [ready, ready]  # still ready: announced again
    assert ours["seen by b"]["probe"] == [  # nothing of thread 1's servers
        "thread/started <t2>",
        "mcpServer/startupStatus/updated <t2> starting",
        "mcpServer/startupStatus/updated <t2> ready",
        "mcpServer/startupStatus/updated <t2> starting",  # crashed: the reload restarts it
        "mcpServer/startupStatus/updated <t2> ready",
    ]
    assert ours["answers"]["list t3"]["result"] == {"data": [], "nextCursor": None}
    assert ours["answers"]["call crash"]["code"] == -32603
    assert ours["answers"]["read t1 once unloaded"]["error"] == {
        "code": -32600, "message": "thread not found: <t1>"
    }  # fmt: skip
