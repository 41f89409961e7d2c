"""Sub-agents end to end, over stdio (and in process for two clients); one scripted model
answers both the parent's and the child's requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest

import codex_core
from codex_core.client import Client
from codex_core.kernel import Kernel
from codex_core.testing import (
    ModelResponse,
    RecordedRequest,
    ScriptedModelServer,
    function_call,
    message,
)

SCHEMA = Path(codex_core.__file__).parent / "protocol" / "schema" / "stable"
NAMESPACE = "multi_agent_v1"
TASK = "CHILD TASK: count the files"


@pytest.fixture(scope="module")
def notification_schema() -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMA / "ServerNotification.json").read_text())
    return jsonschema.Draft7Validator(schema)


def assert_valid(validator: jsonschema.Draft7Validator, notifications: list[Any]) -> None:
    """Every notification validates against the official schema."""
    for sent in notifications:
        instance = {"method": sent["method"], "params": sent["params"]}
        errors = [error.message[:200] for error in validator.iter_errors(instance)]
        assert not errors, f"{sent['method']}: {errors}"


def from_child(request: RecordedRequest) -> bool:
    return any(TASK in text for text in request.input_texts())


def call_output(request: RecordedRequest, call_id: str) -> Any:
    inputs = request.body["input"]
    kind = "function_call_output"
    (output,) = [i["output"] for i in inputs if i.get("type") == kind and i["call_id"] == call_id]
    return output


def answered(request: RecordedRequest) -> bool:
    """The request follows a tool call (the model reads a tool's output)."""
    return any(item.get("type") == "function_call_output" for item in request.body["input"])


def output_of(model: ScriptedModelServer, call_id: str) -> Any:
    """What the model read as the output of ``call_id`` (in the last request carrying it)."""
    carrying = [r for r in model.requests
                if any(i.get("call_id") == call_id and i.get("type") == "function_call_output"
                       for i in r.body["input"])]  # fmt: skip
    return call_output(carrying[-1], call_id)


def spawned_id(request: RecordedRequest) -> str:
    return str(json.loads(call_output(request, "call_spawn"))["agent_id"])


def collab(tool: str, arguments: dict[str, Any], call_id: str) -> ModelResponse:
    """The model calls one of the sub-agent tools."""
    return ModelResponse([function_call(tool, arguments, namespace=NAMESPACE, call_id=call_id)])


def wait_for(agent: str) -> ModelResponse:
    return collab("wait_agent", {"targets": [agent]}, "call_wait")


def run_parent_turn(server: Any, thread: str, text: str) -> list[dict[str, Any]]:
    """Start a turn in ``thread``; every notification until that turn completed, in order."""
    server.result("turn/start", {"threadId": thread, "input": [{"type": "text", "text": text}]})
    taken = []
    while True:
        done = server.wait_notification("turn/completed", timeout=20)
        taken.append(done)
        if done["params"]["threadId"] == thread:
            break
    server.barrier()  # what the turn's end queued (a sub-agent's news comes before it)
    received = [*server.notifications, *taken]
    received.sort(key=lambda n: n.get("emittedAtMs", 0))
    server.notifications.clear()
    return received


def start(factory: Any, model: ScriptedModelServer, *args: str) -> tuple[Any, str]:
    server = factory(*model.config_args(), *args, env=model.env)
    server.initialize()
    thread = server.result("thread/start", {})["thread"]["id"]
    server.wait_notification("thread/started")
    return server, thread


def of(notifications: list[dict[str, Any]], method: str, thread: str) -> list[dict[str, Any]]:
    def about(params: dict[str, Any]) -> str | None:
        return params.get("threadId") or (params.get("thread") or {}).get("id")

    return [n["params"] for n in notifications
            if n["method"] == method and about(n["params"]) == thread]  # fmt: skip


def test_the_parent_spawns_a_child_and_waits_for_its_answer(
    codex_server_factory: Any,
    codex_model_server: ScriptedModelServer,
    notification_schema: jsonschema.Draft7Validator,
) -> None:
    model = codex_model_server
    model.answer_matching(from_child, ModelResponse([message("there are 3 files")]))
    model.add(
        collab("spawn_agent", {"message": TASK}, "call_spawn"),
        lambda request: wait_for(spawned_id(request)),
        ModelResponse([message("the child says 3")]),
    )
    server, parent = start(codex_server_factory, model)
    received = run_parent_turn(server, parent, "use a sub-agent")
    assert_valid(notification_schema, received)

    # The child is announced with its parent, and the client is subscribed to it.
    announced = [n["params"]["thread"] for n in received if n["method"] == "thread/started"]
    (child,) = announced
    child_id = child["id"]
    assert child["parentThreadId"] == parent and child["sessionId"] == parent
    assert child["threadSource"] == "subagent" and child["agentNickname"]
    assert child["source"] == {"subAgent": {"thread_spawn": {
        "parent_thread_id": parent, "depth": 1, "agent_path": None,
        "agent_nickname": child["agentNickname"], "agent_role": None}}}  # fmt: skip
    assert child["modelProvider"] == "mock" and child["model"] == "mock-model"

    # The child's turn streams to the client: its input, its answer, its end.
    child_items = [p["item"] for p in of(received, "item/completed", child_id)]
    assert [i["type"] for i in child_items] == ["userMessage", "agentMessage"]
    assert child_items[0]["content"][0]["text"] == TASK
    assert child_items[1]["text"] == "there are 3 files"
    (child_turn,) = of(received, "turn/completed", child_id)
    assert child_turn["turn"]["status"] == "completed"

    # The parent's turn shows both calls as collabAgentToolCall items.
    calls = [p["item"] for p in of(received, "item/completed", parent)
              if p["item"]["type"] == "collabAgentToolCall"]  # fmt: skip
    spawn, wait = calls
    assert spawn["tool"] == "spawnAgent" and spawn["status"] == "completed"
    assert spawn["senderThreadId"] == parent and spawn["receiverThreadIds"] == [child_id]
    assert spawn["prompt"] == TASK and spawn["model"] == "mock-model"
    assert wait["tool"] == "wait" and wait["receiverThreadIds"] == [child_id]
    assert wait["agentsStates"] == {child_id: {"status": "completed",
                                               "message": "there are 3 files"}}  # fmt: skip
    started = [p["item"] for p in of(received, "item/started", parent)
               if p["item"]["type"] == "collabAgentToolCall"]  # fmt: skip
    assert [(i["status"], i["receiverThreadIds"]) for i in started] == [
        ("inProgress", []), ("inProgress", [child_id])]  # fmt: skip

    # The models: the child read its task; the parent read the child's id, then its answer.
    (child_request,) = [r for r in model.requests if from_child(r)]
    assert child_request.headers["thread-id"] == child_id
    assert json.loads(output_of(model, "call_spawn")) == {
        "agent_id": child_id, "nickname": child["agentNickname"]}  # fmt: skip
    assert json.loads(output_of(model, "call_wait")) == {
        "status": {child_id: {"completed": "there are 3 files"}}, "timed_out": False}  # fmt: skip

    # The child is a thread like any other: loaded, readable, with its parent.
    assert child_id in server.result("thread/loaded/list", {})["data"]
    read = server.result("thread/read", {"threadId": child_id})["thread"]
    assert read["parentThreadId"] == parent and read["preview"] == TASK


async def until_turn_completed(client: Client, thread: str) -> list[tuple[str, Any]]:
    """Every notification the client gets until a turn of ``thread`` completed."""
    received = []
    with anyio.fail_after(20):
        async for method, params in client.notifications():
            received.append((method, params))
            if method == "turn/completed" and params["threadId"] == thread:
                return received
    raise AssertionError("the connection closed")


@pytest.mark.codex_kernel(model_server=True)
async def test_every_client_of_the_parent_watches_the_child(
    codex_kernel: Kernel, codex_model_server: ScriptedModelServer
) -> None:
    model = codex_model_server
    model.answer_matching(from_child, ModelResponse([message("child here")]))
    model.add(
        ModelResponse([message("hello")]),
        collab("spawn_agent", {"message": TASK}, "call_spawn"),
        lambda request: wait_for(spawned_id(request)),
        ModelResponse([message("done")]),
    )
    text = [{"type": "text", "text": "hi", "text_elements": []}]
    async with codex_kernel.connect() as first, codex_kernel.connect() as second:
        await first.initialize("first", "1")
        await second.initialize("second", "1")
        parent = (await first.request("thread/start", {}))["thread"]["id"]
        await first.request("turn/start", {"threadId": parent, "input": text})
        await until_turn_completed(first, parent)
        await second.request("thread/resume", {"threadId": parent})
        await first.request("turn/start", {"threadId": parent, "input": text})
        for client in (first, second):
            received = await until_turn_completed(client, parent)
            (child,) = [p["thread"] for m, p in received if m == "thread/started"]
            assert child["parentThreadId"] == parent
            ended = [p for m, p in received if m == "turn/completed"]
            assert [p["threadId"] for p in ended] == [child["id"], parent]
            items = [p["item"] for m, p in received
                     if m == "item/completed" and p["threadId"] == child["id"]]  # fmt: skip
            texts = [item["text"] for item in items if item["type"] == "agentMessage"]
            assert texts == ["child here"]


def test_the_childs_approval_requests_go_to_the_parents_client(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    model = codex_model_server
    target = tmp_path / "made-by-child"
    model.answer_matching(
        lambda r: from_child(r) and not answered(r),
        ModelResponse(
            [function_call("exec_command", {"cmd": f"touch {target}"}, call_id="call_touch")]
        ),
    )
    model.answer_matching(from_child, ModelResponse([message("could not")]))
    model.add(
        collab("spawn_agent", {"message": TASK}, "call_spawn"),
        lambda request: wait_for(spawned_id(request)),
        ModelResponse([message("done")]),
    )
    server, parent = start(codex_server_factory, model, "-c", 'approval_policy="untrusted"')
    server.result("turn/start", {"threadId": parent, "input": [{"type": "text", "text": "go"}]})
    request = server.wait_server_request("item/commandExecution/requestApproval", timeout=20)
    child_id = server.wait_notification("thread/started")["params"]["thread"]["id"]
    assert request["params"]["threadId"] == child_id
    server.send({"id": request["id"], "result": {"decision": "decline"}})
    while server.wait_notification("turn/completed", timeout=20)["params"]["threadId"] != parent:
        pass
    assert not target.exists()
    assert "rejected by user" in output_of(model, "call_touch")
    assert output_of(model, "call_wait") == json.dumps(
        {"status": {child_id: {"completed": "could not"}}, "timed_out": False},
        separators=(",", ":"),
    )


def test_mistakes_are_told_to_the_model(
    codex_server_factory: Any,
    codex_model_server: ScriptedModelServer,
    notification_schema: jsonschema.Draft7Validator,
) -> None:
    model = codex_model_server
    unknown = "019a0000-0000-7000-8000-000000000000"
    # A child that tries to spawn a grandchild is refused.
    model.answer_matching(
        lambda r: from_child(r) and not answered(r),
        collab("spawn_agent", {"message": "grandchild"}, "call_grand"),
    )
    model.answer_matching(from_child, ModelResponse([message("alone")]))
    model.add(
        collab("spawn_agent", {}, "call_none"),
        collab("spawn_agent", {"message": "a", "items": []}, "call_both"),
        collab("spawn_agent", {"message": "  "}, "call_empty"),
        collab("spawn_agent", {"message": "a", "model": ""}, "call_model"),
        collab("wait_agent", {"targets": [unknown]}, "call_unknown"),
        collab(
            "spawn_agent",
            {"message": TASK, "model": "other-model", "reasoning_effort": "high"},
            "call_spawn",
        ),
        lambda request: wait_for(spawned_id(request)),
        ModelResponse([message("done")]),
    )
    server, parent = start(codex_server_factory, model)
    received = run_parent_turn(server, parent, "try things")
    assert_valid(notification_schema, received)
    assert output_of(model, "call_none") == "Provide one of: message or items"
    assert output_of(model, "call_both") == "Provide either message or items, but not both"
    assert output_of(model, "call_empty") == "Empty message can't be sent to an agent"
    assert output_of(model, "call_model") == "model must be a non-empty string"
    assert json.loads(output_of(model, "call_unknown")) == {
        "status": {unknown: "not_found"}, "timed_out": False}  # fmt: skip
    # Only the one good call made a thread.
    assert len([n for n in received if n["method"] == "thread/started"]) == 1
    assert output_of(model, "call_grand") == "Agent depth limit reached. Solve the task yourself."
    # The good call's overrides reached the child's model requests.
    child_request = next(r for r in model.requests if from_child(r))
    assert child_request.body["model"] == "other-model"
    assert child_request.body["reasoning"]["effort"] == "high"


def test_a_child_is_recorded_and_listed_as_a_sub_agent(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer
) -> None:
    model = codex_model_server
    model.answer_matching(from_child, ModelResponse([message("there are 3 files")]))
    model.add(
        collab("spawn_agent", {"message": TASK}, "call_spawn"),
        lambda request: wait_for(spawned_id(request)),
        ModelResponse([message("done")]),
    )
    server, parent = start(codex_server_factory, model)
    run_parent_turn(server, parent, "use a sub-agent")
    # thread/list lists the threads people started, and sub-agents when asked (as the reference)
    assert [t["id"] for t in server.result("thread/list", {})["data"]] == [parent]
    (child,) = server.result("thread/list", {"sourceKinds": ["subAgentThreadSpawn"]})["data"]
    assert server.result("thread/list", {"sourceKinds": ["subAgent"]})["data"] == [child]
    assert child["parentThreadId"] == parent and child["sessionId"] == parent
    spawn = child["source"]["subAgent"]["thread_spawn"]
    assert spawn["parent_thread_id"] == parent and spawn["depth"] == 1
    assert child["agentNickname"] == spawn["agent_nickname"] and child["preview"] == TASK
    # the rollout records it as the reference does
    meta = json.loads(Path(child["path"]).read_text().splitlines()[0])["payload"]
    assert meta["session_id"] == parent and meta["parent_thread_id"] == parent
    assert meta["source"] == {"subagent": child["source"]["subAgent"]}
    assert meta["thread_source"] == "subagent"
    assert meta["agent_nickname"] == child["agentNickname"]


def test_interrupting_the_wait_leaves_the_child_working(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer
) -> None:
    model = codex_model_server
    model.answer_matching(from_child, ModelResponse([message("late answer")], stall=3))
    model.add(
        collab("spawn_agent", {"message": TASK}, "call_spawn"),
        lambda request: wait_for(spawned_id(request)),
    )
    server, parent = start(codex_server_factory, model)
    text = [{"type": "text", "text": "go"}]
    turn = server.result("turn/start", {"threadId": parent, "input": text})["turn"]["id"]
    while server.wait_notification("item/started")["params"]["item"].get("tool") != "wait":
        pass
    assert server.result("turn/interrupt", {"threadId": parent, "turnId": turn}) == {}
    ended = [server.wait_notification("turn/completed", timeout=20)["params"] for _ in "ab"]
    assert [(e["threadId"] == parent, e["turn"]["status"]) for e in ended] == [
        (True, "interrupted"), (False, "completed")]  # fmt: skip
    # As the reference: the cut-short wait item stays open; the child finished its task.
    completed = [
        n["params"]["item"] for n in server.notifications if n["method"] == "item/completed"
    ]
    assert [i["tool"] for i in completed if i["type"] == "collabAgentToolCall"] == ["spawnAgent"]
    assert "late answer" in [i.get("text") for i in completed]
