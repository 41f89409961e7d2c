"""``thread/approveGuardianDeniedAction``: the user overrides a denial, the model reads it, and
the retry of that exact action passes its review. Errors as the reference words them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from codex_plugin_guardian.reviewer import OVERRIDE_NOTE
from test_guardian import FINAL, is_review, reviews, start, verdict
from test_guardian_flows import exec_call, text

from codex_core.testing import ModelResponse, ScriptedModelServer, message
from codex_core.testing.model_server import RecordedRequest
from codex_core.testing.pytest_plugin import StdioServer

pytest.importorskip("codex_plugin_shell")

METHOD = "thread/approveGuardianDeniedAction"


def core_event(completed: dict[str, Any]) -> dict[str, Any]:
    """The denial as a client sends it back: the core ``GuardianAssessmentEvent`` (snake_case)
    made from the ``item/autoApprovalReview/completed`` notification."""
    params = completed["params"]
    action = dict(params["action"])
    if action.get("source") == "unifiedExec":
        action["source"] = "unified_exec"
    return {
        "id": params["reviewId"],
        "target_item_id": params["targetItemId"],
        "turn_id": params["turnId"],
        "started_at_ms": params["startedAtMs"],
        "completed_at_ms": params["completedAtMs"],
        "status": params["review"]["status"],
        "risk_level": params["review"]["riskLevel"],
        "rationale": params["review"]["rationale"],
        "decision_source": params["decisionSource"],
        "action": action,
    }


def overridden(request: RecordedRequest) -> bool:
    return is_review(request) and OVERRIDE_NOTE in request.input_texts()[0]


def run(server: StdioServer, thread: str, ask: str) -> dict[str, Any]:
    server.result("turn/start", {"threadId": thread, "input": text(ask)})
    return dict(server.wait_notification("turn/completed", 20)["params"]["turn"])


def test_the_user_overrides_a_denial_and_the_retry_runs(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    model = codex_model_server
    # The guardian denies, unless it is told the user approved this very action.
    model.answer_matching(
        overridden, message(verdict("allow", "medium", "The user approved this exact command."))
    )
    model.answer_matching(
        is_review, message(verdict("deny", "high", "Writes an unasked-for marker."))
    )
    command = "touch marker.txt"
    model.add(
        ModelResponse([exec_call(command, "call_first")]),
        ModelResponse([message("It was denied.")]),
        ModelResponse([exec_call(command, "call_retry")]),
        ModelResponse([message(FINAL)]),
    )
    server = start(codex_server_factory, model)
    thread = server.result("thread/start", {"cwd": str(tmp_path)})["thread"]["id"]
    assert run(server, thread, "mark it")["status"] == "completed"
    assert not (tmp_path / "marker.txt").exists()
    (denied,) = [n for n in reviews(server) if n["method"].endswith("completed")]
    assert denied["params"]["review"]["status"] == "denied"

    assert server.result(METHOD, {"threadId": thread, "event": core_event(denied)}) == {}
    assert server.server_requests == []

    assert run(server, thread, "I approve it, go ahead")["status"] == "completed"
    assert (tmp_path / "marker.txt").exists()
    assert server.server_requests == []
    done = [n["params"] for n in reviews(server) if n["method"].endswith("completed")]
    assert [(d["targetItemId"], d["review"]["status"]) for d in done] == [
        ("call_first", "denied"), ("call_retry", "approved")]  # fmt: skip
    # The model read the override as a developer message before its retry.
    turns = [r for r in model.requests if not is_review(r)]
    (note,) = [t for t in turns[2].input_texts("developer") if "Approved action:" in t]
    assert command in note and '"outcome": "allowed"' in note
    assert not [t for t in turns[1].input_texts("developer") if "Approved action:" in t]
    # The override is good for one review: the first review request did not carry it.
    assert [overridden(r) for r in model.requests if is_review(r)] == [False, True]


def test_only_a_denial_is_taken_and_only_once(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    """An event that is not a denial changes nothing; an override covers one retry."""
    model = codex_model_server
    model.answer_matching(overridden, message(verdict("allow", "low", "ok")))
    model.answer_matching(is_review, message(verdict("deny", "high", "no")))
    server = start(codex_server_factory, model)
    thread = server.result("thread/start", {"cwd": str(tmp_path)})["thread"]["id"]
    action = {"type": "command", "source": "unified_exec", "cwd": str(tmp_path),
              "command": "/bin/bash -lc 'touch once.txt'"}  # fmt: skip
    approved = {"id": "r0", "status": "approved", "action": action}
    assert server.result(METHOD, {"threadId": thread, "event": approved}) == {}
    denied = {"id": "r1", "status": "denied", "action": action}
    assert server.result(METHOD, {"threadId": thread, "event": denied}) == {}
    model.add(
        ModelResponse([exec_call("touch once.txt", "call_1")]),
        ModelResponse([exec_call("touch once.txt", "call_2")]),
        ModelResponse([message(FINAL)]),
    )
    assert run(server, thread, "twice")["status"] == "completed"
    done = [n["params"]["review"]["status"] for n in reviews(server)
            if n["method"].endswith("completed")]  # fmt: skip
    assert done == ["approved", "denied"]
    turn = next(r for r in model.requests if not is_review(r))
    notes = [t for t in turn.input_texts("developer") if "Approved action:" in t]
    assert len(notes) == 1  # the denial's, not the approval's


BAD_EVENTS: list[tuple[Any, str]] = [
    ({}, "missing field `id`"),
    (5, "invalid type: number, expected struct GuardianAssessmentEvent"),
    ("x", 'invalid type: string "x", expected struct GuardianAssessmentEvent'),
    ({"id": "r", "status": "denied"}, "missing field `action`"),
    ({"id": "r", "status": "nope", "action": {"type": "command"}},
     "unknown variant `nope`, expected one of `in_progress`, `approved`, `denied`, "
     "`timed_out`, `aborted`"),
    ({"id": "r", "status": "denied", "action": {"type": "command"}}, "missing field `source`"),
    ({"id": "r", "status": "denied", "action": {"source": "shell"}}, "missing field `type`"),
    ({"id": "r", "status": "denied", "action": "x"},
     'invalid type: string "x", expected internally tagged enum GuardianAssessmentAction'),
    ({"id": "r", "status": "denied",
      "action": {"type": "command", "source": "unifiedExec", "command": "ls", "cwd": "/"}},
     "unknown variant `unifiedExec`, expected `shell` or `unified_exec`"),
    ({"id": 5, "status": "denied", "action": {}}, "invalid type: number, expected a string"),
    ({"id": "r", "status": "denied", "risk_level": "bad", "action": {}},
     "unknown variant `bad`, expected one of `low`, `medium`, `high`, `critical`"),
    ({"id": "r", "started_at_ms": "x", "status": "denied", "action": {}},
     'invalid type: string "x", expected i64'),
]  # fmt: skip


def test_bad_requests_get_the_reference_errors(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer
) -> None:
    """(Probed with ``codex-peer app-server`` 0.169.)"""
    server = start(codex_server_factory, codex_model_server)
    thread = server.result("thread/start", {})["thread"]["id"]
    for event, wording in BAD_EVENTS:
        error = server.error(METHOD, {"threadId": thread, "event": event})
        assert error == {"code": -32600, "message": f"invalid Guardian denial event: {wording}"}
    action = {"type": "command", "source": "shell", "command": "ls", "cwd": "/"}
    event = {"id": "r", "status": "denied", "action": action}
    missing = "019a0000-0000-7000-8000-000000000000"
    error = server.error(METHOD, {"threadId": missing, "event": event})
    assert error == {"code": -32600, "message": f"thread not found: {missing}"}
