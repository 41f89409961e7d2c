"""Turns through a real server over stdio, against the scripted model server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import codex_core.protocol
from codex_core.testing import (
    ModelResponse,
    ScriptedModelServer,
    function_call,
    http_error,
    message,
    reasoning,
)
from codex_core.testing.pytest_plugin import StdioServer

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "fixtures" / "reference" / "text_turn.messages.jsonl"
#: Notifications the reference sends that are about its environment, not the turn.
ENVIRONMENTAL = {"warning", "account/rateLimits/updated", "configWarning",
                 "remoteControl/status/changed"}  # fmt: skip


#: The official JSON schema (Codex 0.169.0), vendored with the protocol models.
SCHEMA = Path(codex_core.protocol.__file__).with_name("schema") / "stable"
_validators: dict[str, jsonschema.Draft7Validator] = {}


def assert_valid(messages: list[dict[str, Any]], response_type: str = "TurnStartResponse") -> None:
    """Every notification (and the response) validates against the official schema."""
    for sent in messages:
        if "method" in sent:
            name, instance = "ServerNotification", {k: sent[k] for k in ("method", "params")}
        else:
            name, instance = response_type, sent["result"]
        if name not in _validators:
            (path,) = SCHEMA.rglob(f"{name}.json")
            _validators[name] = jsonschema.Draft7Validator(json.loads(path.read_text()))
        errors = [e.message[:200] for e in _validators[name].iter_errors(instance)]
        assert not errors, f"{sent.get('method', name)}: {errors}"


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


def serve(start_server: Any, model: ScriptedModelServer, *args: str) -> StdioServer:
    server: StdioServer = start_server(*model.config_args(), *args, env=model.env)
    server.initialize()
    return server


def start_thread(server: StdioServer, **params: Any) -> str:
    thread_id = str(server.result("thread/start", params)["thread"]["id"])
    server.wait_notification("thread/started")
    return thread_id


def user_text(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text, "text_elements": []}]


def run_turn(server: StdioServer, thread_id: str, text: str, timeout: float = 15) -> list[dict]:
    """Start a turn; every message up to ``turn/completed`` (the response included)."""
    before = len(server.notifications)
    request_id = 777_000 + before
    server.send({"id": request_id, "method": "turn/start",
                 "params": {"threadId": thread_id, "input": user_text(text)}})  # fmt: skip
    response = server.wait_response(request_id, timeout)
    completed = server.wait_notification("turn/completed", timeout)
    # wait_notification takes turn/completed out of the list: it is the last one anyway.
    return [response, *server.notifications[before:], completed]


def methods(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("method", "<response>") for m in messages if m.get("method") not in ENVIRONMENTAL]


def test_text_turn_streams_in_the_reference_order(start_server: Any, model: Any) -> None:
    model.add(
        ModelResponse(
            [message("Hello from the mock.", chunks=["Hello ", "from the ", "mock."], id="msg_1")]
        )
    )
    server = serve(start_server, model)
    thread_id = start_thread(server)
    server.send({"id": 1, "method": "turn/start",
                 "params": {"threadId": thread_id, "input": user_text("hi there")}})  # fmt: skip
    response = server.wait_response(1)
    completed = server.wait_notification("turn/completed")
    everything = [response, *server.notifications, completed]
    sequence = [m for m in everything if m.get("method") not in ENVIRONMENTAL]
    got = methods(sequence)
    assert got == [
        "<response>",
        "thread/status/changed",
        "turn/started",
        "item/started",
        "item/completed",
        "item/started",
        "item/agentMessage/delta",
        "item/agentMessage/delta",
        "item/agentMessage/delta",
        "item/completed",
        "thread/tokenUsage/updated",
        "thread/status/changed",
        "turn/completed",
    ]
    # The reference, recorded against the same script (tests/fixtures/reference/).
    reference = []
    started = False
    for line in REFERENCE.read_text().splitlines():
        entry = json.loads(line)
        msg = entry["msg"]
        if entry["dir"] == "c2s":
            started = started or msg.get("method") == "turn/start"
            continue
        if started:
            reference.append(msg)
            if msg.get("method") == "turn/completed":
                break
    assert got == methods(reference)
    assert_valid(sequence)
    turn = response["result"]["turn"]
    assert turn["status"] == "inProgress" and turn["startedAt"] is None
    params = [m["params"] for m in sequence[1:]]
    assert params[0]["status"] == {"type": "active", "activeFlags": []}
    assert isinstance(params[1]["turn"]["startedAt"], int)
    user = params[3]["item"]
    assert user["type"] == "userMessage" and user["content"] == user_text("hi there")
    assert [p["delta"] for p in params[5:8]] == ["Hello ", "from the ", "mock."]
    agent = params[8]["item"]
    assert agent == {**agent, "type": "agentMessage", "id": "msg_1", "text": "Hello from the mock."}
    usage = params[9]["tokenUsage"]
    assert usage["last"]["totalTokens"] == 15 and usage["modelContextWindow"] == 258400
    assert params[10]["status"] == {"type": "idle"}
    done = params[11]["turn"]
    assert done["status"] == "completed" and done["itemsView"] == "summary"
    assert done["items"] == [agent]
    # What the model got: the originator header and the user's text.
    (request,) = model.requests
    assert request.headers["originator"] == "pytest"
    assert request.headers["authorization"] == f"Bearer {model.api_key}"
    assert request.headers["thread-id"] == thread_id
    assert request.body["model"] == "mock-model" and request.body["stream"] is True
    assert request.input_texts("user") == ["hi there"]


def test_second_turn_sends_history_and_overrides_persist(start_server: Any, model: Any) -> None:
    model.add("first answer", "second answer")
    server = serve(start_server, model)
    thread_id = start_thread(server)
    run_turn(server, thread_id, "one")
    server.send({"id": 5, "method": "turn/start", "params": {
        "threadId": thread_id, "input": user_text("two"), "model": "other-model"}})  # fmt: skip
    server.wait_response(5)
    server.wait_notification("turn/completed")
    second = model.requests[1].body
    assert second["model"] == "other-model"
    assert [(i["type"], i.get("role")) for i in second["input"]] == [
        ("message", "user"), ("message", "assistant"), ("message", "user")]  # fmt: skip
    thread = server.result("thread/read", {"threadId": thread_id})["thread"]
    assert thread["model"] == "other-model" and thread["preview"] == "one"


def test_reasoning_items_stream_summary_deltas(start_server: Any, model: Any) -> None:
    model.add(ModelResponse([reasoning(["Thinking hard"], id="rs_1"), message("Done.", id="m")]))
    server = serve(start_server, model)
    thread_id = start_thread(server)
    messages = run_turn(server, thread_id, "think")
    got = methods(messages)
    assert got[5:9] == ["item/started", "item/reasoning/summaryPartAdded",
                        "item/reasoning/summaryTextDelta", "item/completed"]  # fmt: skip
    assert_valid(messages)
    completed = [m for m in messages if m.get("method") == "item/completed"]
    assert completed[1]["params"]["item"]["summary"] == ["Thinking hard"]


def test_model_error_fails_the_turn(start_server: Any, model: Any) -> None:
    model.add(http_error(500, "boom"))
    server = serve(start_server, model)
    thread_id = start_thread(server)
    messages = run_turn(server, thread_id, "hi")
    assert methods(messages)[-3:] == ["thread/status/changed", "error", "turn/completed"]
    status, error, completed = [m["params"] for m in messages if m.get("method")][-3:]
    assert status["status"] == {"type": "systemError"}
    assert error["willRetry"] is False
    assert error["error"]["codexErrorInfo"] == "internalServerError"
    turn = completed["turn"]
    assert turn["status"] == "failed" and turn["error"] == error["error"]
    assert_valid(messages)
    # The thread keeps working.
    model.add("recovered")
    assert methods(run_turn(server, thread_id, "again"))[-1] == "turn/completed"


def test_missing_api_key_is_a_clear_failed_turn(start_server: Any, model: Any) -> None:
    server = start_server(*model.config_args(), env={model.env_key: ""})
    server.initialize()
    thread_id = start_thread(server)
    messages = run_turn(server, thread_id, "hi")
    turn = server_last_turn(messages)
    assert turn["status"] == "failed"
    assert "MOCK_API_KEY" in turn["error"]["message"]
    assert model.requests == []


def server_last_turn(messages: list[dict[str, Any]]) -> dict[str, Any]:
    done = [m for m in messages if m.get("method") == "turn/completed"]
    return dict(done[-1]["params"]["turn"])


def test_stalled_stream_times_out_instead_of_hanging(start_server: Any, model: Any) -> None:
    model.add(ModelResponse([message("partial", id="m1")], stall=30, keepalive=False))
    server = start_server(
        *model.config_args(), "-c", "model_providers.mock.stream_idle_timeout_ms=300",
        env=model.env,
    )  # fmt: skip
    server.initialize()
    thread_id = start_thread(server)
    turn = server_last_turn(run_turn(server, thread_id, "hi", timeout=20))
    assert turn["status"] == "failed"
    assert turn["error"]["message"].startswith("stream disconnected before completion")
    assert turn["error"]["codexErrorInfo"] == {
        "responseStreamDisconnected": {"httpStatusCode": None}
    }


def test_interrupt_mid_stream(start_server: Any, model: Any) -> None:
    model.add(ModelResponse([message("partial", id="m1")], stall=60))
    server = serve(start_server, model)
    thread_id = start_thread(server)
    response = server.request("turn/start", {"threadId": thread_id, "input": user_text("hi")})
    turn_id = response["result"]["turn"]["id"]
    server.wait_notification("item/agentMessage/delta")
    server.send({"id": 9, "method": "turn/interrupt",
                 "params": {"threadId": thread_id, "turnId": turn_id}})  # fmt: skip
    mark = len(server.notifications)
    assert server.wait_response(9)["result"] == {}
    after_reply = len(server.notifications)
    completed = server.wait_notification("turn/completed")
    assert completed["params"]["turn"]["status"] == "interrupted"
    assert completed["params"]["turn"]["items"] == []
    # The interrupt reply comes before the idle status and turn/completed (as the reference).
    tail = [m["method"] for m in server.notifications[mark:]]
    assert "turn/completed" not in tail[: after_reply - mark]
    assert tail[-1] == "thread/status/changed"
    assert server.notifications[-1]["params"]["status"] == {"type": "idle"}
    assert_valid([*server.notifications, completed])


def test_function_calls_get_unsupported_output_and_the_model_goes_on(
    start_server: Any, model: Any
) -> None:
    model.add(ModelResponse([function_call("shell", {"cmd": "ls"}, call_id="call_1")]),
              "after tool")  # fmt: skip
    server = serve(start_server, model)
    thread_id = start_thread(server)
    turn = server_last_turn(run_turn(server, thread_id, "list files"))
    assert turn["status"] == "completed"
    assert turn["items"][0]["text"] == "after tool"
    second = model.requests[1].body["input"]
    assert second[-2]["type"] == "function_call" and second[-2]["call_id"] == "call_1"
    assert second[-1] == {"type": "function_call_output", "call_id": "call_1",
                          "output": "unsupported call: shell"}  # fmt: skip


def test_rollout_survives_a_restart(start_server: Any, model: Any, codex_home: Path) -> None:
    model.add("first answer")
    server = serve(start_server, model)
    thread_id = start_thread(server)
    assert server.result("thread/list", {})["data"] == []  # not materialized yet
    run_turn(server, thread_id, "remember this")
    server.close()
    (path,) = (codex_home / "sessions").rglob("rollout-*.jsonl")
    assert path.name.endswith(f"-{thread_id}.jsonl")
    kinds = [json.loads(line)["type"] for line in path.read_text().splitlines()]
    assert kinds[0] == "session_meta" and "turn_context" in kinds

    again = serve(start_server, model)
    listed = again.result("thread/list", {})
    assert [t["id"] for t in listed["data"]] == [thread_id]
    assert listed["data"][0]["preview"] == "remember this"
    assert listed["data"][0]["status"] == {"type": "notLoaded"}
    read = again.result("thread/read", {"threadId": thread_id, "includeTurns": True})["thread"]
    items = read["turns"][0]["items"]
    assert [i["type"] for i in items] == ["userMessage", "agentMessage"]
    resumed = again.result("thread/resume", {"threadId": thread_id})
    assert resumed["thread"]["turns"][0]["items"] == items
    assert resumed["model"] == "mock-model"
    model.add("second answer")
    run_turn(again, thread_id, "and now?")
    history = model.requests[-1].input_texts("user")
    assert history == ["remember this", "and now?"]
    assert model.requests[-1].input_texts("assistant") == ["first answer"]


def test_ephemeral_threads_write_nothing(start_server: Any, model: Any, codex_home: Path) -> None:
    model.add("ok")
    server = serve(start_server, model)
    thread_id = start_thread(server, ephemeral=True)
    run_turn(server, thread_id, "hi")
    assert not list(codex_home.rglob("rollout-*.jsonl"))
    assert server.result("thread/list", {})["data"] == []


def test_another_model_answering_is_reported_once(start_server: Any, model: Any) -> None:
    """The API's ``OpenAI-Model`` header names a model other than the thread's."""
    rerouted = {"OpenAI-Model": "mock-model-safe"}
    model.add(ModelResponse([message("hi")], headers=rerouted), ModelResponse([message("same")]))
    server = serve(start_server, model)
    thread_id = start_thread(server)
    messages = run_turn(server, thread_id, "hello")
    (notice,) = [m for m in messages if m.get("method") == "model/rerouted"]
    turn_id = messages[0]["result"]["turn"]["id"]
    assert notice["params"] == {
        "threadId": thread_id,
        "turnId": turn_id,
        "fromModel": "mock-model",
        "toModel": "mock-model-safe",
        "reason": "highRiskCyberActivity",
    }
    assert_valid([notice])
    assert "model/rerouted" not in methods(run_turn(server, thread_id, "again"))


def test_local_images_are_inlined_for_the_model(
    start_server: Any, model: Any, tmp_path: Path
) -> None:
    pixel = tmp_path / "pixel.png"
    pixel.write_bytes(b"\x89PNG\r\n\x1a\n fake but read as bytes")
    model.add(ModelResponse([message("seen")]), ModelResponse([message("missing")]))
    server = serve(start_server, model)
    thread_id = start_thread(server)
    for path in (pixel, tmp_path / "nope.png"):
        request_id = 900 + len(model.requests)
        content = [{"type": "text", "text": "look"}, {"type": "localImage", "path": str(path)}]
        server.send({"id": request_id, "method": "turn/start",
                     "params": {"threadId": thread_id, "input": content}})  # fmt: skip
        server.wait_response(request_id)
        server.wait_notification("turn/completed")
    parts, second = (request.body["input"][-1]["content"] for request in model.requests)
    assert parts[1] == {"type": "input_text", "text": f'<image name=[Image #1] path="{pixel}">'}
    assert parts[2]["type"] == "input_image" and parts[2]["detail"] == "high"
    assert parts[2]["image_url"].startswith("data:image/png;base64,")
    assert parts[3] == {"type": "input_text", "text": "</image>"}
    assert second[1]["text"] == (
        f"Codex could not read the local image at `{tmp_path / 'nope.png'}`: "
        "No such file or directory (os error 2)"
    )
