"""Compaction through a real server over stdio, against the scripted model server.

``thread/compact/start`` and the automatic compaction at ``model_auto_compact_token_limit``:
what the model is asked, what it reads afterwards, what the rollout keeps (and a resumed
thread reads back, ours or one the reference compacted), and the error paths.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_compaction_differential import HOOK, hooks_config

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call, http_error
from codex_core.testing.model_server import default_usage, message
from codex_core.testing.pytest_plugin import StdioServer
from codex_core.threads.compaction import (
    SUMMARIZATION_PROMPT,
    SUMMARY_PREFIX,
    compacted_history,
    user_text_message,
)
from codex_core.threads.turns import INTERRUPTED_MARKER

REPO = Path(__file__).resolve().parents[1]
#: A thread the reference (0.169) compacted: turn "one", ``thread/compact/start`` (the model
#: answered "SUMMARY TEXT"), turn "two".
REFERENCE_COMPACTED = REPO / "tests" / "fixtures" / "compacted"
REFERENCE_THREAD = "01a25244-ba13-7460-930d-fc69f5589628"
SUMMARY = f"{SUMMARY_PREFIX}\nSUMMARY TEXT"
AUTO_LIMIT = ["-c", "model_auto_compact_token_limit=100"]


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


def serve(start_server: Any, model: ScriptedModelServer, *args: str) -> StdioServer:
    server: StdioServer = start_server(*model.config_args(), *args, env=model.env)
    server.initialize()
    return server


def start_thread(server: StdioServer) -> str:
    return str(server.result("thread/start", {})["thread"]["id"])


def run_turn(server: StdioServer, thread_id: str, text: str) -> dict[str, Any]:
    """A turn to its end; its ``turn/completed`` params."""
    server.result("turn/start", {"threadId": thread_id,
                                 "input": [{"type": "text", "text": text}]})  # fmt: skip
    return dict(server.wait_notification("turn/completed", timeout=20)["params"])


def compact(server: StdioServer, thread_id: str) -> list[dict[str, Any]]:
    """``thread/compact/start`` to the end of its turn: the notifications, ``turn/completed``
    last."""
    before = len(server.notifications)
    assert server.result("thread/compact/start", {"threadId": thread_id}) == {}
    completed = server.wait_notification("turn/completed", timeout=20)
    return [*server.notifications[before:], completed]


def inputs(request: Any) -> list[tuple[str, str]]:
    """A model request's input as (role or type, text) pairs."""
    found = []
    for item in request.body["input"]:
        if item.get("type") == "message":
            text = "".join(part.get("text", "") for part in item["content"])
            found.append((item["role"], text))
        else:
            found.append((item["type"], item.get("call_id", "")))
    return found


def big(*items: Any) -> ModelResponse:
    """An answer that reports a context over ``AUTO_LIMIT``."""
    return ModelResponse(list(items), usage=default_usage(input_tokens=500))


def test_manual_compaction_summarizes_and_replaces_the_history(
    start_server: Any, model: ScriptedModelServer, codex_home: Path
) -> None:
    model.add(message("First answer."), message("SUMMARY TEXT"), message("After."))
    server = serve(start_server, model)
    thread_id = start_thread(server)
    run_turn(server, thread_id, "one")
    sent = compact(server, thread_id)

    summarize = model.requests[1]
    assert summarize.body["tools"] == []
    assert inputs(summarize) == [("user", "one"), ("assistant", "First answer."),
                                 ("user", SUMMARIZATION_PROMPT)]  # fmt: skip
    watched = [m for m in sent if m["method"] != "account/rateLimits/updated"]
    assert [m["method"] for m in watched] == [
        "thread/status/changed", "turn/started", "item/started", "thread/tokenUsage/updated",
        "thread/tokenUsage/updated", "thread/tokenUsage/updated", "item/completed",
        "thread/status/changed", "turn/completed",
    ]  # fmt: skip
    item = watched[2]["params"]["item"]
    assert item["type"] == "contextCompaction" and item["completedAtMs"] is None
    assert watched[6]["params"]["item"]["id"] == item["id"]
    usages = [m["params"]["tokenUsage"] for m in watched[3:6]]
    assert [u["total"]["totalTokens"] for u in usages] == [15, 30, 30]
    assert [u["last"]["inputTokens"] for u in usages] == [10, 10, 0]  # the last: an estimate
    assert usages[2]["last"]["totalTokens"] > 0
    assert watched[-1]["params"]["turn"]["status"] == "completed"

    run_turn(server, thread_id, "two")
    assert inputs(model.requests[2]) == [("user", "one"), ("user", SUMMARY), ("user", "two")]
    assert "tools" in model.requests[2].body and model.requests[2].body["tools"] != []

    read = server.result("thread/read", {"threadId": thread_id, "includeTurns": True})
    types = [[i["type"] for i in turn["items"]] for turn in read["thread"]["turns"]]
    assert types == [["userMessage", "agentMessage"], ["contextCompaction"],
                     ["userMessage", "agentMessage"]]  # fmt: skip

    (path,) = (codex_home / "sessions").rglob("rollout-*.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    (compacted,) = [line["payload"] for line in lines if line["type"] == "compacted"]
    assert compacted["message"] == SUMMARY
    assert compacted["replacement_history"] == [user_text_message("one"),
                                                user_text_message(SUMMARY)]  # fmt: skip


def test_a_compacted_thread_resumes_with_the_summary(
    start_server: Any, model: ScriptedModelServer
) -> None:
    model.add(message("First answer."), message("SUMMARY TEXT"), message("Again."))
    server = serve(start_server, model)
    thread_id = start_thread(server)
    run_turn(server, thread_id, "one")
    compact(server, thread_id)
    server.close()

    again = serve(start_server, model)
    resumed = again.result("thread/resume", {"threadId": thread_id})
    turns = resumed["thread"]["turns"]
    assert [i["type"] for i in turns[1]["items"]] == ["contextCompaction"]
    run_turn(again, thread_id, "two")
    assert inputs(model.requests[-1]) == [("user", "one"), ("user", SUMMARY), ("user", "two")]


def test_a_fork_of_a_compacted_thread_starts_from_the_summary(
    start_server: Any, model: ScriptedModelServer
) -> None:
    model.add(message("First answer."), message("SUMMARY TEXT"), message("In the fork."))
    server = serve(start_server, model)
    thread_id = start_thread(server)
    run_turn(server, thread_id, "one")
    compact(server, thread_id)
    fork = server.result("thread/fork", {"threadId": thread_id})["thread"]["id"]
    run_turn(server, fork, "two")
    assert inputs(model.requests[-1]) == [("user", "one"), ("user", SUMMARY), ("user", "two")]


def test_we_resume_a_thread_the_reference_compacted(
    start_server: Any, model: ScriptedModelServer, codex_home: Path
) -> None:
    shutil.copytree(REFERENCE_COMPACTED / "sessions", codex_home / "sessions")
    model.add(message("Three."))
    server = serve(start_server, model)
    resumed = server.result("thread/resume", {"threadId": REFERENCE_THREAD})
    types = [[i["type"] for i in turn["items"]] for turn in resumed["thread"]["turns"]]
    assert types == [["userMessage", "agentMessage"], ["contextCompaction"],
                     ["userMessage", "agentMessage"]]  # fmt: skip
    run_turn(server, REFERENCE_THREAD, "three")
    texts = [text for role, text in inputs(model.requests[0]) if role != "developer"]
    # The reference's environment context, "one", the summary, then the turn after it.
    assert texts[1:] == ["one", SUMMARY, "two", "After compact.", "three"]
    assert texts[0].startswith("<environment_context>")


def test_auto_compaction_before_a_turn_past_the_limit(
    start_server: Any, model: ScriptedModelServer
) -> None:
    model.add(big(message("First answer.")), message("SUMMARY TEXT"), message("Second."))
    server = serve(start_server, model, *AUTO_LIMIT)
    thread_id = start_thread(server)
    run_turn(server, thread_id, "one")
    before = len(server.notifications)
    completed = run_turn(server, thread_id, "two")
    items = [m["params"]["item"]["type"] for m in server.notifications[before:]
             if m["method"] == "item/completed"]  # fmt: skip
    assert items == ["contextCompaction", "userMessage", "agentMessage"]
    assert completed["turn"]["status"] == "completed"
    # Summarized without the new input, which follows the summary.
    assert inputs(model.requests[1])[-1] == ("user", SUMMARIZATION_PROMPT)
    assert ("user", "two") not in inputs(model.requests[1])
    assert inputs(model.requests[2]) == [("user", "one"), ("user", SUMMARY), ("user", "two")]


def test_auto_compaction_between_the_requests_of_a_turn(
    start_server: Any, model: ScriptedModelServer
) -> None:
    call = function_call("no_such_tool", {}, call_id="c1")
    model.add(big(call), message("SUMMARY TEXT"), message("Done."))
    server = serve(start_server, model, *AUTO_LIMIT)
    thread_id = start_thread(server)
    before = len(server.notifications)
    completed = run_turn(server, thread_id, "one")
    items = [m["params"]["item"]["type"] for m in server.notifications[before:]
             if m["method"] == "item/completed"]  # fmt: skip
    assert items == ["userMessage", "contextCompaction", "agentMessage"]
    assert completed["turn"]["status"] == "completed"
    assert inputs(model.requests[1]) == [("user", "one"), ("function_call", "c1"),
                                         ("function_call_output", "c1"),
                                         ("user", SUMMARIZATION_PROMPT)]  # fmt: skip
    assert inputs(model.requests[2]) == [("user", "one"), ("user", SUMMARY)]


def test_the_limit_can_come_with_thread_start(
    start_server: Any, model: ScriptedModelServer
) -> None:
    model.add(big(message("First answer.")), message("SUMMARY TEXT"), message("Second."))
    server = serve(start_server, model)
    config = {"model_auto_compact_token_limit": 100}
    thread_id = server.result("thread/start", {"config": config})["thread"]["id"]
    run_turn(server, thread_id, "one")
    run_turn(server, thread_id, "two")
    assert inputs(model.requests[2]) == [("user", "one"), ("user", SUMMARY), ("user", "two")]


def test_compaction_hooks_hear_an_automatic_trigger(
    start_server: Any, model: ScriptedModelServer, codex_home: Path, tmp_path: Path
) -> None:
    hook = tmp_path / "hooks" / "hook.py"
    hook.parent.mkdir()
    hook.write_text(HOOK)
    shutil.rmtree(codex_home)
    hooks_config(codex_home, hook, "text")
    model.add(big(message("First answer.")), message("SUMMARY TEXT"), message("Second."))
    server = serve(start_server, model, *AUTO_LIMIT)
    thread_id = start_thread(server)
    run_turn(server, thread_id, "one")
    run_turn(server, thread_id, "two")
    read = [json.loads(line) for line in (hook.parent / "log.jsonl").read_text().splitlines()]
    assert [(p["hook_event_name"], p["trigger"]) for p in read] == [
        ("PreCompact", "auto"),
        ("PostCompact", "auto"),
    ]
    assert {p["session_id"] for p in read} == {thread_id}


def test_no_auto_compaction_under_the_limit(start_server: Any, model: ScriptedModelServer) -> None:
    model.add(message("First answer."), message("Second."))
    server = serve(start_server, model, *AUTO_LIMIT)
    thread_id = start_thread(server)
    run_turn(server, thread_id, "one")
    run_turn(server, thread_id, "two")
    assert len(model.requests) == 2
    assert ("user", SUMMARIZATION_PROMPT) not in inputs(model.requests[1])


def test_compaction_of_an_unknown_thread_is_refused(server: StdioServer) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    error = server.error("thread/compact/start", {"threadId": unknown})
    assert error == {"code": -32600, "message": f"thread not found: {unknown}"}
    assert server.error("thread/compact/start", {})["message"] == (
        "Invalid request: missing field `threadId`"
    )
    assert server.error("thread/compact/start", {"threadId": "nope"})["message"].startswith(
        "invalid thread id: "
    )


def test_a_thread_on_disk_but_not_loaded_is_not_found(
    start_server: Any, model: ScriptedModelServer
) -> None:
    model.add(message("First answer."))
    server = serve(start_server, model)
    thread_id = start_thread(server)
    run_turn(server, thread_id, "one")
    server.close()
    again = serve(start_server, model)
    error = again.error("thread/compact/start", {"threadId": thread_id})
    assert error == {"code": -32600, "message": f"thread not found: {thread_id}"}


def test_an_ephemeral_thread_compacts_in_memory(
    start_server: Any, model: ScriptedModelServer, codex_home: Path
) -> None:
    model.add(message("First answer."), message("SUMMARY TEXT"), message("After."))
    server = serve(start_server, model)
    thread_id = server.result("thread/start", {"ephemeral": True})["thread"]["id"]
    run_turn(server, thread_id, "one")
    assert compact(server, thread_id)[-1]["params"]["turn"]["status"] == "completed"
    run_turn(server, thread_id, "two")
    assert inputs(model.requests[-1]) == [("user", "one"), ("user", SUMMARY), ("user", "two")]
    assert not list(codex_home.rglob("rollout-*.jsonl"))


def test_compaction_replaces_a_running_turn(start_server: Any, model: ScriptedModelServer) -> None:
    model.add(ModelResponse([message("slow")], stall=30), message("SUMMARY TEXT"))
    server = serve(start_server, model)
    thread_id = start_thread(server)
    server.result("turn/start", {"threadId": thread_id,
                                 "input": [{"type": "text", "text": "one"}]})  # fmt: skip
    model.wait_for_requests(1)
    assert server.result("thread/compact/start", {"threadId": thread_id}) == {}
    first = server.wait_notification("turn/completed", timeout=20)["params"]["turn"]
    second = server.wait_notification("turn/completed", timeout=20)["params"]["turn"]
    assert first["status"] == "interrupted"
    assert second["status"] == "completed" and second["id"] != first["id"]
    assert inputs(model.requests[1])[-1] == ("user", SUMMARIZATION_PROMPT)


def test_a_running_compaction_takes_no_input(start_server: Any, model: ScriptedModelServer) -> None:
    model.add(message("First answer."), ModelResponse([message("SUMMARY TEXT")], stall=30))
    server = serve(start_server, model)
    thread_id = start_thread(server)
    first = run_turn(server, thread_id, "one")["turn"]["id"]
    server.result("thread/compact/start", {"threadId": thread_id})
    started = server.wait_notification("turn/started", where=lambda p: p["turn"]["id"] != first)
    model.wait_for_requests(2)  # summarizing
    steer = {"threadId": thread_id, "expectedTurnId": started["params"]["turn"]["id"],
             "input": [{"type": "text", "text": "more"}]}  # fmt: skip
    refused = server.error("turn/steer", steer)
    assert refused["message"] == "cannot steer a compact turn"
    assert refused["data"]["codexErrorInfo"] == {"activeTurnNotSteerable": {"turnKind": "compact"}}
    refused = server.error("turn/start", {"threadId": thread_id,
                                          "input": [{"type": "text", "text": "two"}]})  # fmt: skip
    assert refused == {
        "code": -32603,
        "message": "failed to submit turn input: ActiveTurnNotSteerable { turn_kind: Compact }",
    }


def test_an_interrupted_compaction_keeps_the_history(
    start_server: Any, model: ScriptedModelServer
) -> None:
    model.add(message("First answer."), ModelResponse([message("SUMMARY TEXT")], stall=30))
    model.add(message("Second."))
    server = serve(start_server, model)
    thread_id = start_thread(server)
    first = run_turn(server, thread_id, "one")["turn"]["id"]
    before = len(server.notifications)
    server.result("thread/compact/start", {"threadId": thread_id})
    started = server.wait_notification("turn/started", where=lambda p: p["turn"]["id"] != first)
    model.wait_for_requests(2)
    compaction = started["params"]["turn"]["id"]
    server.result("turn/interrupt", {"threadId": thread_id, "turnId": compaction})
    completed = server.wait_notification("turn/completed")["params"]["turn"]
    assert completed["id"] == compaction and completed["status"] == "interrupted"
    # As the reference: the compaction item is left open.
    server.barrier()
    assert not [m for m in server.notifications[before:] if m["method"] == "item/completed"]
    run_turn(server, thread_id, "two")
    # The model is told of the interrupt, as after any interrupted turn (the reference too).
    expected = [("user", "one"), ("assistant", "First answer."), ("user", INTERRUPTED_MARKER),
                ("user", "two")]  # fmt: skip
    assert inputs(model.requests[-1]) == expected


def test_a_failed_summary_fails_the_turn_and_keeps_the_history(
    start_server: Any, model: ScriptedModelServer
) -> None:
    model.add(message("First answer."), http_error(400, "bad request", type="invalid_request"))
    model.add(message("Second."))
    server = serve(start_server, model)
    thread_id = start_thread(server)
    run_turn(server, thread_id, "one")
    sent = compact(server, thread_id)
    assert sent[-1]["params"]["turn"]["status"] == "failed"
    assert any(m["method"] == "error" for m in sent)
    run_turn(server, thread_id, "two")
    assert inputs(model.requests[-1]) == [("user", "one"), ("assistant", "First answer."),
                                          ("user", "two")]  # fmt: skip


def test_compacted_history_keeps_the_newest_user_messages_within_budget() -> None:
    history = [
        {"type": "message", "role": "developer",
         "content": [{"type": "input_text", "text": "rules"}]},
        user_text_message("<environment_context>x</environment_context>"),
        user_text_message("a" * 400),
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "reply"}]},
        user_text_message(f"{SUMMARY_PREFIX}\nolder summary"),
        user_text_message("b" * 40),
    ]  # fmt: skip
    result = compacted_history(history, "S", budget=20)
    texts = [[part["text"] for part in item["content"]] for item in result]
    assert texts[0] == ["rules"] and texts[-1] == ["S"]
    assert texts[2] == ["b" * 40]  # 10 tokens, whole
    # 10 tokens left for 100: its first and last 20 bytes, and what was left out.
    assert texts[1] == ["a" * 20, "…90 tokens truncated…", "a" * 20]
    assert len(texts) == 4
    accents = compacted_history([user_text_message("é" * 30 + "Z")], "S", budget=5)
    head, _, tail = (part["text"] for part in accents[0]["content"])
    assert (head, tail) == ("é" * 5, "é" * 4 + "Z")  # whole characters only
    assert compacted_history([], "")[-1] == user_text_message("(no summary available)")
