"""The command tool end to end over stdio: approvals (accept, decline, cancel, interrupt),
streaming output, and the notification order of the reference for the same scripted model."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from codex_plugin_shell import sandbox
from test_turns import SCHEMA, assert_valid, serve, start_thread, user_text

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call, message
from codex_core.testing.pytest_plugin import StdioServer

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("codex_plugin_shell")

REFERENCE = REPO / "tests" / "fixtures" / "reference"
#: Notifications the reference sends that are about its environment, not the turn.
ENVIRONMENTAL = {"warning", "account/rateLimits/updated", "configWarning",
                 "remoteControl/status/changed", "thread/started"}  # fmt: skip
COMMAND = "touch mock-approved.txt && echo hello-from-mock"
ESCALATED = {"cmd": COMMAND, "yield_time_ms": 1000, "sandbox_permissions": "require_escalated",
             "justification": "mock model wants to run this outside the sandbox"}  # fmt: skip
FINAL = "MOCK-FINAL-ANSWER: the command ran fine."


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


def script(model: ScriptedModelServer, arguments: dict[str, Any] = ESCALATED) -> None:
    """The script the reference fixtures were recorded with: a command, then an answer."""
    model.add(
        ModelResponse([function_call("exec_command", arguments, call_id="call_resp_1",
                                     id="fc_resp_1")]),
        ModelResponse([message(FINAL, chunks=["MOCK-FINAL-ANSWER:", " the command",
                                              " ran fine."], id="msg_resp_2")]),
    )  # fmt: skip


def shell_server(start_server: Any, model: ScriptedModelServer, *args: str) -> StdioServer:
    return serve(
        start_server, model, "-c", 'approval_policy="on-request"',
        "-c", 'sandbox_mode="read-only"', *args,
    )  # fmt: skip


class Recorder:
    """Every message of one turn, in arrival order (responses, notifications, requests)."""

    def __init__(self, server: StdioServer) -> None:
        self.server = server
        self.messages: list[dict[str, Any]] = []
        original = server._pump

        def pump(deadline: float) -> bool:
            count = (len(server.notifications), len(server.server_requests),
                     len(server._responses))  # fmt: skip
            got = original(deadline)
            if got:
                if len(server.notifications) > count[0]:
                    self.messages.append(server.notifications[-1])
                elif len(server.server_requests) > count[1]:
                    self.messages.append(server.server_requests[-1])
                else:
                    self.messages.append({"<response>": True})
            return got

        server._pump = pump  # type: ignore[method-assign]


def names(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("method", "<response>") for m in messages if m.get("method") not in ENVIRONMENTAL]


def reference_messages(recording: str) -> list[dict[str, Any]]:
    """The reference's messages of ``tests/fixtures/reference/<recording>.messages.jsonl``
    from ``turn/start`` until the client's ``thread/read`` (client messages left out)."""
    got: list[dict[str, Any]] = []
    started = False
    for line in (REFERENCE / f"{recording}.messages.jsonl").read_text().splitlines():
        entry = json.loads(line)
        msg = entry["msg"]
        if entry["dir"] == "c2s":
            started = started or msg.get("method") == "turn/start"
            if msg.get("method") == "thread/read":
                break
            continue
        if started:
            got.append(msg)
    return got


def reference(mode: str) -> list[str]:
    return names(reference_messages(f"approval_{mode}"))


def reference_request(mode: str) -> dict[str, Any]:
    for line in (REFERENCE / f"approval_{mode}.messages.jsonl").read_text().splitlines():
        msg = json.loads(line)["msg"]
        if msg.get("method") == "item/commandExecution/requestApproval":
            return dict(msg)
    raise AssertionError("no approval request in the recording")


def begin(server: StdioServer, thread_id: str) -> tuple[Recorder, str, dict[str, Any]]:
    recorder = Recorder(server)
    server.send({"id": 2, "method": "turn/start",
                 "params": {"threadId": thread_id, "input": user_text("run it")}})  # fmt: skip
    turn_id = server.wait_response(2)["result"]["turn"]["id"]
    request = server.wait_server_request("item/commandExecution/requestApproval")
    return recorder, turn_id, request


def validate_request(request: dict[str, Any]) -> None:
    path = next(SCHEMA.rglob("ServerRequest.json"))
    validator = jsonschema.Draft7Validator(json.loads(path.read_text()))
    instance = {k: request[k] for k in ("method", "id", "params")}
    errors = [e.message[:200] for e in validator.iter_errors(instance)]
    assert not errors, errors


def test_accept_runs_the_command_in_the_reference_order(
    start_server: Any, model: ScriptedModelServer, tmp_path: Path
) -> None:
    script(model)
    server = shell_server(start_server, model)
    cwd = str(tmp_path / "cwd")
    thread_id = start_thread(server)
    recorder, turn_id, request = begin(server, thread_id)
    params = request["params"]
    started_at = params["startedAtMs"]
    assert params == {
        "kind": "command",
        "threadId": thread_id,
        "turnId": turn_id,
        "itemId": "call_resp_1",
        "startedAtMs": started_at,
        "environmentId": "local",
        "reason": "mock model wants to run this outside the sandbox",
        "command": f"{params['command'].split(' ')[0]} -lc '{COMMAND}'",
        "cwd": cwd,
        "commandActions": [{"type": "unknown", "command": COMMAND}],
        "proposedExecpolicyAmendment": ["touch", "mock-approved.txt"],
        "availableDecisions": [
            "accept",
            {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["touch",
                                                                        "mock-approved.txt"]}},
            "cancel",
        ],
    }  # fmt: skip
    assert list(params) == list(reference_request("accept")["params"])
    validate_request(request)
    assert request["id"] == 0
    server.send({"id": request["id"], "result": {"decision": "accept"}})
    completed = server.wait_notification("turn/completed", 15)
    got = names(recorder.messages)
    assert got == reference("accept")
    sequence = [m for m in [*server.notifications, completed] if "method" in m]
    assert_valid(sequence)
    by_method: dict[str, list[dict[str, Any]]] = {}
    for m in sequence:
        by_method.setdefault(m["method"], []).append(m["params"])
    statuses = [p["status"] for p in by_method["thread/status/changed"]]
    assert statuses == [
        {"type": "active", "activeFlags": []},
        {"type": "active", "activeFlags": ["waitingOnApproval"]},
        {"type": "active", "activeFlags": []},
        {"type": "idle"},
    ]
    assert by_method["serverRequest/resolved"] == [{"threadId": thread_id, "requestId": 0}]
    assert [p["delta"] for p in by_method["item/commandExecution/outputDelta"]] == [
        "hello-from-mock\n"
    ]
    command = by_method["item/completed"][1]["item"]
    assert command["type"] == "commandExecution" and command["status"] == "completed"
    assert command["aggregatedOutput"] == "hello-from-mock\n" and command["exitCode"] == 0
    assert command["source"] == "unifiedExecStartup" and command["processId"].isdigit()
    assert by_method["item/started"][1]["item"]["source"] == "agent"
    assert (Path(cwd) / "mock-approved.txt").exists()
    # The model reads the output in the reference's format.
    output = model.requests[1].body["input"][-1]
    assert output["type"] == "function_call_output" and output["call_id"] == "call_resp_1"
    lines = output["output"].splitlines()
    assert lines[0].startswith("Chunk ID: ") and lines[1].startswith("Wall time: ")
    assert lines[2:] == ["Process exited with code 0", "Original token count: 4", "Output:",
                         "hello-from-mock"]  # fmt: skip
    tools = [tool["name"] for tool in model.requests[0].body["tools"]]
    assert "exec_command" in tools
    # A second connection resuming the thread gets every item back (a fresh server process).
    server.close()
    again = shell_server(start_server, model)
    resumed = again.result("thread/resume", {"threadId": thread_id})
    items = resumed["thread"]["turns"][0]["items"]
    assert [i["type"] for i in items] == ["userMessage", "commandExecution", "agentMessage"]
    assert {k: items[1][k] for k in ("command", "cwd", "status", "aggregatedOutput",
                                     "exitCode", "commandActions", "source")} == {
        k: command[k] for k in ("command", "cwd", "status", "aggregatedOutput", "exitCode",
                                "commandActions", "source")}  # fmt: skip


def test_decline_tells_the_model_and_the_turn_goes_on(
    start_server: Any, model: ScriptedModelServer, tmp_path: Path
) -> None:
    script(model)
    server = shell_server(start_server, model)
    thread_id = start_thread(server)
    recorder, _turn_id, request = begin(server, thread_id)
    server.send({"id": request["id"], "result": {"decision": "decline"}})
    completed = server.wait_notification("turn/completed", 15)
    assert names(recorder.messages) == reference("decline")
    assert completed["params"]["turn"]["status"] == "completed"
    declined = [m["params"]["item"] for m in server.notifications
                if m["method"] == "item/completed"][1]  # fmt: skip
    assert declined["status"] == "declined" and declined["aggregatedOutput"] is None
    assert not (tmp_path / "cwd" / "mock-approved.txt").exists()
    output = model.requests[1].body["input"][-1]["output"]
    assert (
        output
        == 'exec_command failed: CreateProcess { message: "Rejected(\\"rejected by user\\")" }'
    )
    assert_valid([*server.notifications, completed])


def test_cancel_ends_the_turn_as_interrupted(
    start_server: Any, model: ScriptedModelServer, tmp_path: Path
) -> None:
    script(model)
    server = shell_server(start_server, model)
    thread_id = start_thread(server)
    recorder, _turn_id, request = begin(server, thread_id)
    server.send({"id": request["id"], "result": {"decision": "cancel"}})
    completed = server.wait_notification("turn/completed", 15)
    assert names(recorder.messages) == reference("cancel")
    turn = completed["params"]["turn"]
    assert turn["status"] == "interrupted" and turn["items"] == []
    assert len(model.requests) == 1
    assert not (tmp_path / "cwd" / "mock-approved.txt").exists()
    assert_valid([*server.notifications, completed])
    # The thread takes the next turn; the model saw the call aborted.
    model.add("next")
    server.send({"id": 3, "method": "turn/start",
                 "params": {"threadId": thread_id, "input": user_text("again")}})  # fmt: skip
    server.wait_notification("turn/completed", 15)
    aborted = model.requests[1].body["input"]
    outputs = [i for i in aborted if i["type"] == "function_call_output"]
    assert outputs[0]["output"].endswith("aborted by user")


def test_interrupt_while_waiting_resolves_after_turn_completed(
    start_server: Any, model: ScriptedModelServer
) -> None:
    script(model)
    server = shell_server(start_server, model)
    thread_id = start_thread(server)
    recorder, turn_id, _request = begin(server, thread_id)
    server.send({"id": 3, "method": "turn/interrupt",
                 "params": {"threadId": thread_id, "turnId": turn_id}})  # fmt: skip
    assert server.wait_response(3)["result"] == {}
    completed = server.wait_notification("turn/completed", 15)
    resolved = server.wait_notification("serverRequest/resolved")
    assert names(recorder.messages) == reference("interrupt")
    assert completed["params"]["turn"]["status"] == "interrupted"
    assert resolved["params"] == {"threadId": thread_id, "requestId": 0}
    # A late answer is ignored; the thread takes the next turn.
    server.send({"id": 0, "result": {"decision": "accept"}})
    model.add("next")
    server.send({"id": 4, "method": "turn/start",
                 "params": {"threadId": thread_id, "input": user_text("again")}})  # fmt: skip
    assert server.wait_notification("turn/completed", 15)["params"]["turn"]["status"] == (
        "completed"
    )


def test_disconnect_while_waiting_counts_as_cancel(
    start_server: Any, model: ScriptedModelServer, codex_home: Path
) -> None:
    script(model)
    server = shell_server(start_server, model)
    thread_id = start_thread(server)
    begin(server, thread_id)
    assert server.close() == 0  # the server ends cleanly: the turn was cancelled
    assert len(model.requests) == 1
    (path,) = (codex_home / "sessions").rglob(f"*{thread_id}.jsonl")
    kinds = [json.loads(line)["payload"].get("type") for line in path.read_text().splitlines()]
    assert "turn_aborted" in kinds


def test_commands_that_only_read_run_without_asking(
    start_server: Any, model: ScriptedModelServer
) -> None:
    script(model, {"cmd": "echo out; echo err >&2; exit 3"})
    server = shell_server(start_server, model, "-c", 'sandbox_mode="danger-full-access"')
    thread_id = start_thread(server)
    server.send({"id": 2, "method": "turn/start",
                 "params": {"threadId": thread_id, "input": user_text("run it")}})  # fmt: skip
    completed = server.wait_notification("turn/completed", 15)
    assert server.server_requests == []
    messages = [*server.notifications, completed]
    deltas = "".join(m["params"]["delta"] for m in messages
                     if m["method"] == "item/commandExecution/outputDelta")  # fmt: skip
    assert deltas == "out\nerr\n"
    item = [m["params"]["item"] for m in messages if m["method"] == "item/completed"][1]
    assert item["status"] == "failed" and item["exitCode"] == 3
    assert "Process exited with code 3" in model.requests[1].body["input"][-1]["output"]
    assert_valid(messages)


def test_read_only_sandbox_confines_writes_and_lets_reads_run(
    start_server: Any, model: ScriptedModelServer, tmp_path: Path
) -> None:
    """With bubblewrap the write runs and fails in the read-only sandbox (the reference's way);
    without it, the approval policy stands in for the sandbox and asks first."""
    model.add(
        ModelResponse([function_call("exec_command", {"cmd": "ls -a && pwd"})]),
        ModelResponse([function_call("exec_command", {"cmd": "echo hi > f.txt"})]),
        "done",
    )
    server = shell_server(start_server, model)
    thread_id = start_thread(server)
    server.send({"id": 2, "method": "turn/start",
                 "params": {"threadId": thread_id, "input": user_text("go")}})  # fmt: skip
    if sandbox.bwrap() is not None:
        server.wait_notification("turn/completed", 15)
        assert server.server_requests == []
        outputs = [request.body["input"][-1]["output"] for request in model.requests[1:]]
        assert "Process exited with code 0" in outputs[0]
        assert "Read-only file system" in outputs[1]
        assert not (tmp_path / "cwd" / "f.txt").exists()
        return
    request = server.wait_server_request("item/commandExecution/requestApproval")
    assert request["params"]["command"].endswith("'echo hi > f.txt'")
    assert request["params"]["availableDecisions"] == ["accept", "acceptForSession", "cancel"]
    assert "reason" not in request["params"]  # absent optional fields are omitted
    server.send({"id": request["id"], "result": {"decision": "accept"}})
    server.wait_notification("turn/completed", 15)
    first = model.requests[1].body["input"][-1]["output"]
    assert "Process exited with code 0" in first


def test_workspace_write_sandbox_lets_the_workspace_be_written_and_nothing_else(
    start_server: Any, model: ScriptedModelServer, tmp_path: Path
) -> None:
    if sandbox.bwrap() is None:
        pytest.skip("bubblewrap is not installed or cannot create namespaces here")
    outside = Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        model.add(
            ModelResponse([function_call("exec_command", {"cmd": "echo in > made.txt"})]),
            ModelResponse([function_call("exec_command", {"cmd": f"echo out > {outside}/x"})]),
            ModelResponse([function_call("exec_command", {"cmd": "echo tmp > /tmp/ok-$$"})]),
            "done",
        )
        server = shell_server(start_server, model, "-c", 'sandbox_mode="workspace-write"')
        thread_id = start_thread(server)
        server.send({"id": 2, "method": "turn/start",
                     "params": {"threadId": thread_id, "input": user_text("go")}})  # fmt: skip
        server.wait_notification("turn/completed", 15)
        assert server.server_requests == []
        outputs = [request.body["input"][-1]["output"] for request in model.requests[1:]]
        assert "Process exited with code 0" in outputs[0]
        assert (tmp_path / "cwd" / "made.txt").read_text() == "in\n"
        assert "Read-only file system" in outputs[1] and not (outside / "x").exists()
        assert "Process exited with code 0" in outputs[2]
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def test_never_policy_refuses_instead_of_asking(
    start_server: Any, model: ScriptedModelServer
) -> None:
    script(model)
    server = shell_server(start_server, model, "-c", 'approval_policy="never"')
    thread_id = start_thread(server)
    server.send({"id": 2, "method": "turn/start",
                 "params": {"threadId": thread_id, "input": user_text("run it")}})  # fmt: skip
    server.wait_notification("turn/completed", 15)
    assert server.server_requests == []
    assert "approval_policy is `never`" in model.requests[1].body["input"][-1]["output"]


def test_accept_for_session_skips_the_next_approval(
    start_server: Any, model: ScriptedModelServer
) -> None:
    args = {"cmd": "echo again > /dev/null", "sandbox_permissions": "require_escalated"}
    model.add(
        ModelResponse([function_call("exec_command", args)]),
        ModelResponse([function_call("exec_command", args)]),
        "done",
    )
    server = shell_server(start_server, model)
    thread_id = start_thread(server)
    server.send({"id": 2, "method": "turn/start",
                 "params": {"threadId": thread_id, "input": user_text("go")}})  # fmt: skip
    request = server.wait_server_request("item/commandExecution/requestApproval")
    server.send({"id": request["id"], "result": {"decision": "acceptForSession"}})
    server.wait_notification("turn/completed", 15)
    assert server.server_requests == []
    outputs = [m.body["input"][-1]["output"] for m in model.requests[1:]]
    assert all("Process exited with code 0" in output for output in outputs)


def test_timeout_kills_the_command_and_env_policy_applies(
    start_server: Any, model: ScriptedModelServer, tmp_path: Path
) -> None:
    model.add(
        ModelResponse([function_call("exec_command", {"cmd": "sleep 30", "timeout_ms": 300})]),
        ModelResponse([function_call("exec_command", {"cmd": "env"})]),
        "done",
    )
    server = shell_server(
        start_server, model, "-c", 'sandbox_mode="danger-full-access"',
        "-c", 'shell_environment_policy={inherit="core",set={CODEX_TEST_FLAG="on"}}',
    )  # fmt: skip
    thread_id = start_thread(server)
    started = time.monotonic()
    server.send({"id": 2, "method": "turn/start",
                 "params": {"threadId": thread_id, "input": user_text("go")}})  # fmt: skip
    server.wait_notification("turn/completed", 20)
    assert time.monotonic() - started < 15
    timed_out = model.requests[1].body["input"][-1]["output"]
    assert "Process exited with code 124" in timed_out
    env_output = model.requests[2].body["input"][-1]["output"]
    assert "CODEX_TEST_FLAG=on" in env_output
    assert "MOCK_API_KEY" not in env_output  # not a core variable (and a *KEY* name)
    assert "PATH=" in env_output and os.environ.get("PYTHONPATH", "\0") not in env_output
