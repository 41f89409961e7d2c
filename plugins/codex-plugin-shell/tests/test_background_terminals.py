"""Background terminals over a real server: the model's commands that outlive their call.

The value-level comparison with the reference is ``tests/test_background_terminals_differential.py``
(and ``tests/conformance/threads_background_terminals*`` for the refusals); these check what
only we can see: the processes themselves (their pid files) are gone after ``terminate``,
``clean`` and the server's shutdown, sessions belong to their thread, and the model reaches
its sessions with ``write_stdin``.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call
from codex_core.testing.model_server import RecordedRequest
from codex_core.testing.pytest_plugin import StdioServer

SESSION = re.compile(r"session ID (\d+)")


def call(name: str, call_id: str, **arguments: Any) -> ModelResponse:
    return ModelResponse([function_call(name, arguments, call_id=call_id)])


def last_session(request: RecordedRequest) -> int:
    outputs = [item.get("output") for item in request.body["input"]]
    found = [m.group(1) for out in outputs if isinstance(out, str) for m in SESSION.finditer(out)]
    return int(found[-1])


def background(pid_file: Path, call_id: str) -> ModelResponse:
    """A command that writes its shell's pid, then runs until stopped."""
    return call("exec_command", call_id, cmd=f"echo $$ > {pid_file}; exec sleep 60",
                login=False, yield_time_ms=250)  # fmt: skip


def start(factory: Any, model: ScriptedModelServer) -> StdioServer:
    server: StdioServer = factory(
        *model.config_args(), "-c", 'sandbox_mode="danger-full-access"', env=model.env
    )
    server.initialize(experimentalApi=True)
    return server


def run_turn(server: StdioServer, thread: str) -> None:
    server.result("turn/start", {"threadId": thread, "input": [{"type": "text", "text": "go"}]})
    server.wait_notification("turn/completed", timeout=30)


def written(server: StdioServer, pid_file: Path, timeout: float = 10) -> int:
    """The pid the command wrote, once it did: polled, each look after a server round trip
    (nothing the server sends tells when a file is written)."""
    deadline = time.monotonic() + timeout
    while not (pid_file.exists() and pid_file.read_text().endswith("\n")):
        assert time.monotonic() < deadline, f"{pid_file} not written within {timeout}s"
        server.barrier()
        time.sleep(0.05)
    return int(pid_file.read_text())


def alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except ProcessLookupError:
        return False
    return True


def test_terminate_stops_one_process_of_its_thread(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    pid = tmp_path / "one.pid"
    codex_model_server.add(background(pid, "c1"), "started")
    server = start(codex_server_factory, codex_model_server)
    thread = server.result("thread/start", {})["thread"]["id"]
    run_turn(server, thread)
    written(server, pid)
    assert alive(pid)
    [terminal] = server.result("thread/backgroundTerminals/list", {"threadId": thread})["data"]
    cwd = server.result("thread/read", {"threadId": thread})["thread"]["cwd"]
    assert terminal == {"itemId": "c1", "processId": terminal["processId"],
                        "command": f"echo $$ > {pid}; exec sleep 60", "cwd": cwd,
                        "osPid": None, "cpuPercent": None, "rssKb": None}  # fmt: skip
    # Another thread does not have it.
    other = server.result("thread/start", {})["thread"]["id"]
    stop = {"threadId": other, "processId": terminal["processId"]}
    assert server.result("thread/backgroundTerminals/terminate", stop) == {"terminated": False}
    assert alive(pid)
    stop["threadId"] = thread
    assert server.result("thread/backgroundTerminals/terminate", stop) == {"terminated": True}
    item = server.wait_notification(
        "item/completed", where=lambda params: params["item"]["id"] == "c1"
    )["params"]["item"]
    assert (item["status"], item["exitCode"]) == ("failed", -1)
    assert not alive(pid)
    assert server.result("thread/backgroundTerminals/list", {"threadId": thread})["data"] == []
    assert server.result("thread/backgroundTerminals/terminate", stop) == {"terminated": False}
    # Completed after its turn, the item is listed in that turn from then on.
    read = {"threadId": thread, "includeTurns": True}
    [turn] = server.result("thread/read", read)["thread"]["turns"]
    assert [item["id"] for item in turn["items"]][-1] == "c1"


def test_clean_and_shutdown_stop_every_process(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    pids = [tmp_path / f"{n}.pid" for n in range(3)]
    codex_model_server.add(background(pids[0], "c1"), background(pids[1], "c2"), "started",
                           background(pids[2], "c3"), "again")  # fmt: skip
    server = start(codex_server_factory, codex_model_server)
    thread = server.result("thread/start", {})["thread"]["id"]
    run_turn(server, thread)
    written(server, pids[0]), written(server, pids[1])
    listed = server.result("thread/backgroundTerminals/list", {"threadId": thread})["data"]
    assert sorted(terminal["itemId"] for terminal in listed) == ["c1", "c2"]
    assert server.result("thread/backgroundTerminals/clean", {"threadId": thread}) == {}
    server.wait_until(
        lambda: not alive(pids[0]) and not alive(pids[1]), what="cleaned processes gone"
    )
    assert server.result("thread/backgroundTerminals/list", {"threadId": thread})["data"] == []
    run_turn(server, thread)
    written(server, pids[2])
    assert alive(pids[2])
    server.close()
    assert not alive(pids[2])


def test_write_stdin_reaches_the_model_s_sessions(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer
) -> None:
    codex_model_server.add(
        call("exec_command", "c1", cmd="echo ready; cat", tty=True, login=False,
             yield_time_ms=250),
        lambda r: call("write_stdin", "c2", session_id=last_session(r), chars="hello\n",
                       yield_time_ms=2000),
        call("exec_command", "c3", cmd="read line; echo read $line; exit 4", login=False,
             yield_time_ms=250),
        call("exec_command", "c4", cmd="sleep 60", login=False, yield_time_ms=250),
        lambda r: call("write_stdin", "c5", session_id=last_session(r), chars="x"),
        call("write_stdin", "c6", session_id=7),
        call("write_stdin", "c7"),
        call("write_stdin", "c8", session_id="one"),
        "done",
    )  # fmt: skip
    server = start(codex_server_factory, codex_model_server)
    thread = server.result("thread/start", {})["thread"]["id"]
    run_turn(server, thread)
    outputs = [r.body["input"][-1]["output"] for r in codex_model_server.requests[1:]]
    running = SESSION.search(outputs[0])
    assert running is not None and outputs[0].endswith("Output:\nready\r\n")
    assert f"Process running with session ID {running.group(1)}" in outputs[1]
    assert "hello\r\nhello\r\n" in outputs[1]
    interaction = server.wait_notification("item/commandExecution/terminalInteraction")["params"]
    assert interaction["itemId"] == "c1" and interaction["stdin"] == "hello\n"
    assert interaction["processId"] == running.group(1)
    # Without a terminal, stdin is closed: ``read`` gets nothing and the command ends at once.
    assert "Process exited with code 4" in outputs[2] and outputs[2].endswith("read\n")
    assert outputs[4] == (
        "write_stdin failed: stdin is closed for this session; rerun exec_command with "
        "tty=true to keep stdin open"
    )
    assert outputs[5] == "write_stdin failed: Unknown process id 7"
    assert outputs[6] == (
        "failed to parse function arguments: missing field `session_id` at line 1 column 2"
    )
    assert outputs[7].startswith("failed to parse function arguments: invalid type")
    server.result("thread/backgroundTerminals/clean", {"threadId": thread})


def test_refusals(codex_server_factory: Any) -> None:
    unknown = "019a0000-0000-7000-8000-000000000000"
    plain = codex_server_factory()
    plain.initialize()
    for method in ("clean", "terminate"):
        params = {"threadId": unknown, "processId": "1"}
        assert plain.error(f"thread/backgroundTerminals/{method}", params) == {
            "code": -32600,
            "message": f"thread/backgroundTerminals/{method} requires experimentalApi capability",
        }
    server = codex_server_factory()
    server.initialize(experimentalApi=True)
    for method in ("list", "clean", "terminate"):
        params = {"threadId": unknown, "processId": "1"}
        assert server.error(f"thread/backgroundTerminals/{method}", params) == {
            "code": -32600,
            "message": f"thread not found: {unknown}",
        }
    thread = server.result("thread/start", {})["thread"]["id"]
    bad = {"threadId": thread, "cursor": "2147483648"}
    assert server.error("thread/backgroundTerminals/list", bad)["message"] == (
        "invalid cursor: number too large to fit in target type"
    )
    missing = {"threadId": thread}
    assert server.error("thread/backgroundTerminals/terminate", missing)["code"] == -32600
    for process_id, why in (("abc", "invalid digit found in string"),
                            ("", "cannot parse integer from empty string"),
                            ("2147483648", "number too large to fit in target type")):  # fmt: skip
        named = {"threadId": thread, "processId": process_id}
        assert server.error("thread/backgroundTerminals/terminate", named) == {
            "code": -32600,
            "message": f"invalid background terminal process id: {why}",
        }


def test_archiving_a_thread_stops_its_processes_first(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    pid = tmp_path / "archived.pid"
    codex_model_server.add(background(pid, "c1"), "started")
    server = start(codex_server_factory, codex_model_server)
    thread = server.result("thread/start", {})["thread"]["id"]
    run_turn(server, thread)
    written(server, pid)
    assert alive(pid)
    assert server.result("thread/archive", {"threadId": thread}) == {}
    server.wait_notification("thread/archived")
    assert not alive(pid)
    # As the reference: the item completes before the thread is reported unloaded.
    order = [
        note["method"] if note["method"] != "thread/status/changed"
        else note["params"]["status"]["type"]
        for note in server.notifications
        if note["method"] in ("item/completed", "thread/status/changed")
        and note["params"].get("item", {"id": "c1"})["id"] == "c1"
    ]  # fmt: skip
    assert order[-2:] == ["item/completed", "notLoaded"]


def test_an_interrupted_call_leaves_its_command_running(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    pid = tmp_path / "interrupted.pid"
    waiting = call("exec_command", "c1", cmd=f"echo $$ > {pid}; exec sleep 60", login=False,
                   yield_time_ms=30000)  # fmt: skip
    codex_model_server.add(waiting)
    server = start(codex_server_factory, codex_model_server)
    thread = server.result("thread/start", {})["thread"]["id"]
    params = {"threadId": thread, "input": [{"type": "text", "text": "go"}]}
    turn = server.result("turn/start", params)["turn"]["id"]
    written(server, pid)
    server.result("turn/interrupt", {"threadId": thread, "turnId": turn})
    ended = server.wait_notification("turn/completed")["params"]["turn"]
    assert ended["status"] == "interrupted"
    assert alive(pid)  # as with the reference: the call ends, the command goes on
    [terminal] = server.result("thread/backgroundTerminals/list", {"threadId": thread})["data"]
    assert terminal["itemId"] == "c1"
    server.result("thread/backgroundTerminals/clean", {"threadId": thread})
    item = server.wait_notification(
        "item/completed", where=lambda params: params["item"]["id"] == "c1"
    )["params"]["item"]
    assert (item["status"], item["exitCode"]) == ("failed", -1)
    assert not alive(pid)


def test_past_64_sessions_the_least_recently_used_one_goes(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer
) -> None:
    calls = [
        function_call("exec_command", {"cmd": "exec sleep 60", "login": False,
                                       "yield_time_ms": 250}, call_id=f"s{n}")
        for n in range(65)
    ]  # fmt: skip
    codex_model_server.add(ModelResponse(calls), "many")
    server = start(codex_server_factory, codex_model_server)
    thread = server.result("thread/start", {})["thread"]["id"]
    run_turn(server, thread)
    listed = server.result("thread/backgroundTerminals/list", {"threadId": thread})["data"]
    assert len(listed) == 64
    assert {terminal["itemId"] for terminal in listed} == {f"s{n}" for n in range(1, 65)}
    # As the reference (which drops s0 or s1: their last uses are close), the dropped
    # session's item completes as stopped.
    pruned = server.wait_notification(
        "item/completed", where=lambda params: params["item"]["id"] == "s0"
    )["params"]["item"]
    assert (pruned["status"], pruned["exitCode"]) == ("failed", -1)
    server.result("thread/backgroundTerminals/clean", {"threadId": thread})
