"""The guardian reviewer end to end: a real ``codex-app-server`` over stdio, the scripted
model answering both the turn and the guardian's review request (``answer_matching``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import codex_core.protocol
from codex_core.testing import ModelResponse, ScriptedModelServer, function_call, message
from codex_core.testing.model_server import RecordedRequest
from codex_core.testing.pytest_plugin import StdioServer

pytest.importorskip("codex_plugin_shell")

FINAL = "done"
#: The official schema, as vendored with the kernel (the reference's generate-json-schema).
SCHEMA = Path(codex_core.protocol.__file__).with_name("schema") / "stable"


def is_review(request: RecordedRequest) -> bool:
    body = request.body if isinstance(request.body, dict) else {}
    return str(body.get("prompt_cache_key", "")).startswith("guardian:")


def verdict(outcome: str, level: str, rationale: str, authorization: str | None = None) -> str:
    """A review answer in the reference's schema (``outcome``: allow / deny)."""
    answer = {"risk_level": level, "rationale": rationale, "outcome": outcome}
    if authorization is not None:
        answer["user_authorization"] = authorization
    return json.dumps(answer)


def script(model: ScriptedModelServer, cmd: str) -> None:
    arguments = {"cmd": cmd, "sandbox_permissions": "require_escalated",
                 "justification": "the user asked for it"}  # fmt: skip
    model.add(
        ModelResponse([function_call("exec_command", arguments, call_id="call_g1")]),
        ModelResponse([message(FINAL)]),
    )


def start(factory: Any, model: ScriptedModelServer, *args: str) -> StdioServer:
    server: StdioServer = factory(
        *model.config_args(), "-c", 'approval_policy="on-request"',
        "-c", 'sandbox_mode="read-only"', "-c", 'approvals_reviewer="guardian_subagent"',
        *args, env=model.env,
    )  # fmt: skip
    server.initialize()
    return server


def run_turn(server: StdioServer, cwd: Path, text: str) -> str:
    thread = server.result("thread/start", {"cwd": str(cwd)})
    assert thread["approvalsReviewer"] == "auto_review"  # the reference reports the new name
    input_ = [{"type": "text", "text": text, "text_elements": []}]
    turn = server.result("turn/start", {"threadId": thread["thread"]["id"], "input": input_})
    return str(turn["turn"]["id"])


def reviews(server: StdioServer) -> list[dict[str, Any]]:
    return [n for n in server.notifications if "autoApprovalReview" in n.get("method", "")]


def warnings(server: StdioServer) -> list[str]:
    """The ``guardianWarning`` messages so far."""
    return [n["params"]["message"] for n in server.notifications
            if n["method"] == "guardianWarning"]  # fmt: skip


def assert_valid(notifications: list[dict[str, Any]]) -> None:
    """Every notification validates against the official schema."""
    import jsonschema  # type: ignore[import-untyped]

    validator = jsonschema.Draft7Validator(
        json.loads((SCHEMA / "ServerNotification.json").read_text())
    )
    for sent in notifications:
        instance = {"method": sent["method"], "params": sent["params"]}
        errors = [e.message[:200] for e in validator.iter_errors(instance)]
        assert not errors, (sent["method"], errors)


def review_request(model: ScriptedModelServer) -> RecordedRequest:
    (request,) = [r for r in model.requests if is_review(r)]
    return request


def test_benign_command_is_approved_without_asking_the_client(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    model = codex_model_server
    model.answer_matching(
        is_review, message(verdict("allow", "low", "Creates one file in the workspace."))
    )
    script(model, "touch made-by-agent.txt && echo hi")
    server = start(codex_server_factory, model)
    turn_id = run_turn(server, tmp_path, "create made-by-agent.txt")
    completed = server.wait_notification("turn/completed", 20)["params"]
    assert completed["turn"]["status"] == "completed"
    assert (tmp_path / "made-by-agent.txt").exists()
    assert server.server_requests == []
    started, done = reviews(server)
    assert started["method"] == "item/autoApprovalReview/started"
    assert started["params"]["turnId"] == turn_id
    assert started["params"]["targetItemId"] == "call_g1"
    in_progress = {"status": "inProgress", "riskLevel": None, "userAuthorization": None,
                   "rationale": None}  # fmt: skip
    assert started["params"]["review"] == in_progress
    assert started["params"]["action"] == {
        "type": "command", "source": "unifiedExec", "cwd": str(tmp_path),
        "command": "/bin/bash -lc 'touch made-by-agent.txt && echo hi'",
    }  # fmt: skip
    assert done["method"] == "item/autoApprovalReview/completed"
    assert done["params"]["reviewId"] == started["params"]["reviewId"]
    assert done["params"]["decisionSource"] == "agent"
    assert done["params"]["review"]["status"] == "approved"
    assert done["params"]["review"]["riskLevel"] == "low"
    assert done["params"]["review"]["rationale"] == "Creates one file in the workspace."
    assert_valid([started, done])
    # As the reference: every verdict is also a guardianWarning, sent just before `completed`.
    assert warnings(server) == ["Automatic approval review approved (risk: low, authorization: "
                                "unknown): Creates one file in the workspace."]  # fmt: skip
    methods = [n["method"] for n in server.notifications]
    assert methods.index("guardianWarning") == methods.index(done["method"]) - 1
    assert_valid([n for n in server.notifications if n["method"] == "guardianWarning"])
    # The review is its own request: our prompt, read-only tools, no parent history, a JSON
    # format.
    review = review_request(model).body
    assert [tool["name"] for tool in review["tools"]] == ["read_file", "list_dir"]
    assert review["text"]["format"]["type"] == "json_schema"
    assert "guardian" in review["instructions"]
    (only,) = review["input"]
    text = only["content"][0]["text"]
    assert "touch made-by-agent.txt" in text and "create made-by-agent.txt" in text
    # Marked as the reference marks a guardian review (tests/test_guardian_differential.py
    # compares the whole request's marks with the reference's).
    headers = review_request(model).headers
    assert headers["x-openai-subagent"] == "guardian"
    assert json.loads(headers["x-codex-turn-metadata"])["subagent_kind"] == "guardian"
    assert review["text"]["format"]["schema"]["required"] == ["outcome"]
    # Nobody waited on the person: no waitingOnApproval while the guardian reviewed.
    flags = [n["params"]["status"].get("activeFlags") for n in server.notifications
             if n["method"] == "thread/status/changed"]  # fmt: skip
    assert ["waitingOnApproval"] not in flags


def test_destructive_command_is_denied_and_the_model_is_told(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data.txt").write_text("keep me")
    model = codex_model_server
    model.answer_matching(
        is_review, message(verdict("deny", "high", "Recursively deletes user data.", "low"))
    )
    script(model, "rm -rf precious")
    server = start(codex_server_factory, model)
    run_turn(server, tmp_path, "tidy up")
    completed = server.wait_notification("turn/completed", 20)["params"]
    assert completed["turn"]["status"] == "completed"
    assert (precious / "data.txt").read_text() == "keep me"
    assert server.server_requests == []
    _, done = reviews(server)
    assert done["params"]["review"]["status"] == "denied"
    assert done["params"]["review"]["riskLevel"] == "high"
    assert done["params"]["review"]["userAuthorization"] == "low"
    assert warnings(server) == [
        "Automatic approval review denied (risk: high, authorization: low): Recursively deletes "
        "user data."]  # fmt: skip
    assert_valid([done])
    declined = [n["params"]["item"] for n in server.notifications
                if n["method"] == "item/completed"
                and n["params"]["item"]["type"] == "commandExecution"]  # fmt: skip
    assert [item["status"] for item in declined] == ["declined"]
    turns = [r for r in model.requests if not is_review(r)]
    outputs = [i for i in turns[-1].body["input"] if i.get("type") == "function_call_output"]
    assert "Rejected" in outputs[-1]["output"]
    assert "rejected due to unacceptable risk" in outputs[-1]["output"]  # and why
    # The reason, then the reference's instructions; the text is quoted twice over
    # (``Rejected("...")`` inside the error's message), so its newline reads ``\\n``.
    reason = r"Reason: Recursively deletes user data.\\nThe agent must not attempt to achieve"
    assert reason in outputs[-1]["output"]
    assert "Otherwise, stop and request user input." in outputs[-1]["output"]


def test_an_answer_that_is_no_verdict_is_asked_again_then_denied(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    """Three requests, then ``denied`` with the reference's warning; the client is never
    asked (a reviewer failure is no approval prompt) and the model hears the review failed."""
    model = codex_model_server
    model.answer_matching(is_review, message("I think it is fine."))
    script(model, "touch never.txt")
    server = start(codex_server_factory, model)
    run_turn(server, tmp_path, "make never.txt")
    completed = server.wait_notification("turn/completed", 20)["params"]
    assert completed["turn"]["status"] == "completed"
    assert server.server_requests == []
    assert not (tmp_path / "never.txt").exists()
    failed = "Automatic approval review failed: guardian assessment was not valid JSON"
    assert warnings(server) == [failed]
    _, done = reviews(server)
    assert done["params"]["review"] == {"status": "denied", "riskLevel": None,
                                        "userAuthorization": None, "rationale": failed}  # fmt: skip
    assert_valid([done])
    asked = [r for r in model.requests if is_review(r)]
    assert len(asked) == 3
    # Each retry continues the conversation: the answer that was no verdict, then the ask.
    last = asked[-1].body["input"]
    assert [i["role"] for i in last] == ["user", "assistant", "user", "assistant", "user"]
    assert last[1]["content"][0]["text"] == "I think it is fine."
    turns = [r for r in model.requests if not is_review(r)]
    outputs = [i for i in turns[-1].body["input"] if i.get("type") == "function_call_output"]
    assert failed + r"\\nThe action was not executed" in outputs[-1]["output"]


def test_a_review_that_times_out_falls_back_to_the_user(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    model = codex_model_server
    late = verdict("allow", "low", "too late")
    model.answer_matching(is_review, ModelResponse([message(late)], stall=10))
    script(model, "touch after-fallback.txt")
    server = start(codex_server_factory, model, "-c", "guardian.review_timeout_ms=300")
    run_turn(server, tmp_path, "create after-fallback.txt")
    request = server.wait_server_request("item/commandExecution/requestApproval", 10)
    started, done = reviews(server)
    assert done["params"]["review"]["status"] == "aborted"
    assert "300 ms" in done["params"]["review"]["rationale"]
    assert_valid([started, done])
    # Now the person decides: the thread waits on approval, and only from the fallback on.
    flags = [(i, n["params"]["status"].get("activeFlags"))
             for i, n in enumerate(server.notifications)
             if n["method"] == "thread/status/changed"]  # fmt: skip
    waiting = [i for i, flag in flags if flag == ["waitingOnApproval"]]
    assert len(waiting) == 1 and waiting[0] > server.notifications.index(done)
    server.send({"id": request["id"], "result": {"decision": "accept"}})
    completed = server.wait_notification("turn/completed", 20)["params"]
    assert completed["turn"]["status"] == "completed"
    assert (tmp_path / "after-fallback.txt").exists()
    cleared = [n["params"]["status"] for n in server.notifications
               if n["method"] == "thread/status/changed"][-2]  # fmt: skip
    assert cleared == {"type": "active", "activeFlags": []}


@pytest.mark.parametrize("name", ["guardian_subagent", "auto_review"])
def test_the_reviewer_can_be_chosen_per_turn(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path, name: str
) -> None:
    """No reviewer in config: `approvalsReviewer` on turn/start routes this turn's approvals
    (by either name: `auto_review` is the one the 0.169 schema calls canonical)."""
    model = codex_model_server
    model.answer_matching(is_review, message(verdict("allow", "low", "Creates one file.")))
    script(model, "touch per-turn.txt")
    server: StdioServer = codex_server_factory(
        *model.config_args(), "-c", 'approval_policy="on-request"',
        "-c", 'sandbox_mode="read-only"', env=model.env,
    )  # fmt: skip
    server.initialize()
    thread = server.result("thread/start", {"cwd": str(tmp_path)})
    assert thread["approvalsReviewer"] == "user"
    text = [{"type": "text", "text": "make it", "text_elements": []}]
    server.result("turn/start", {"threadId": thread["thread"]["id"], "input": text,
                                 "approvalsReviewer": name})  # fmt: skip
    completed = server.wait_notification("turn/completed", 20)["params"]
    assert completed["turn"]["status"] == "completed"
    assert (tmp_path / "per-turn.txt").exists()
    assert server.server_requests == []
    assert [n["method"] for n in reviews(server)] == [
        "item/autoApprovalReview/started",
        "item/autoApprovalReview/completed",
    ]
