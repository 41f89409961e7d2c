"""The guardian beyond one review: reviews in parallel, a file change, the plugin switched off,
too many denials in a turn. Real ``codex-app-server`` subprocesses, the scripted model."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from test_guardian import FINAL, assert_valid, is_review, reviews, start, verdict, warnings

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call, message
from codex_core.testing.model_server import OutputItem, RecordedRequest
from codex_core.testing.pytest_plugin import StdioServer

pytest.importorskip("codex_plugin_shell")


def exec_call(cmd: str, call_id: str) -> OutputItem:
    arguments = {"cmd": cmd, "sandbox_permissions": "require_escalated",
                 "justification": "the user asked for it"}  # fmt: skip
    return function_call("exec_command", arguments, call_id=call_id)


def text(value: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": value, "text_elements": []}]


def answered(request: RecordedRequest) -> bool:
    """The model's request follows a tool call of this turn (it read the call's output)."""
    return any(i.get("type", "").endswith("call_output") for i in request.body["input"])


def touch_what_the_user_names(request: RecordedRequest) -> ModelResponse:
    """Each thread's model: ``touch <the user's text>``, then the final answer."""
    if answered(request):
        return ModelResponse([message(FINAL)])
    name = request.input_texts()[-1]
    return ModelResponse([exec_call(f"touch {name}", call_id=f"call_{name}")])


def test_two_reviews_run_in_parallel(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    """Two threads' commands are under review at once; each review has its own lifecycle.

    The review answers wait until both review requests have arrived, so both reviews are
    certainly pending together."""
    model = codex_model_server
    both = threading.Barrier(2, timeout=15)

    def review(request: RecordedRequest) -> ModelResponse:
        both.wait()
        return ModelResponse([message(verdict("allow", "low", "Creates a file."))])

    model.answer_matching(is_review, review)
    model.answer_matching(lambda r: not is_review(r), touch_what_the_user_names)
    server = start(codex_server_factory, model)
    threads = {}
    for name in ("first.txt", "second.txt"):
        thread = server.result("thread/start", {"cwd": str(tmp_path)})["thread"]["id"]
        server.result("turn/start", {"threadId": thread, "input": text(name)})
        threads[thread] = name
    for _ in threads:
        completed = server.wait_notification("turn/completed", 30)["params"]
        assert completed["turn"]["status"] == "completed"
    assert (tmp_path / "first.txt").exists() and (tmp_path / "second.txt").exists()
    assert server.server_requests == []
    seen = reviews(server)
    assert [n["method"].rsplit("/", 1)[1] for n in seen] == [
        "started", "started", "completed", "completed"]  # fmt: skip
    assert_valid(seen)
    by_thread: dict[str, list[dict[str, Any]]] = {}
    for sent in seen:
        by_thread.setdefault(sent["params"]["threadId"], []).append(sent["params"])
    assert set(by_thread) == set(threads)
    for thread, (started, done) in by_thread.items():
        assert started["reviewId"] == done["reviewId"]
        assert started["targetItemId"] == done["targetItemId"] == f"call_{threads[thread]}"
        assert done["review"]["status"] == "approved"
        assert threads[thread] in started["action"]["command"]
    assert len({params[0]["reviewId"] for params in by_thread.values()}) == 2


def patch_call(patch: str, call_id: str) -> OutputItem:
    """``apply_patch`` as the Responses API streams a freeform tool call."""
    base = {"type": "custom_tool_call", "id": f"ctc_{call_id}", "call_id": call_id,
            "name": "apply_patch"}  # fmt: skip
    return OutputItem(
        added={**base, "input": "", "status": "in_progress"},
        deltas=[{"type": "response.custom_tool_call_input.delta", "delta": patch}],
        done={**base, "input": patch, "status": "completed"},
    )


PATCH = "*** Begin Patch\n*** Add File: notes.txt\n+reviewed\n*** End Patch\n"


@pytest.mark.parametrize("decision", ["allow", "deny"])
def test_a_file_change_is_reviewed_end_to_end(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path,
    decision: str,
) -> None:  # fmt: skip
    pytest.importorskip("codex_plugin_apply_patch")
    model = codex_model_server
    level = "low" if decision == "allow" else "high"
    model.answer_matching(is_review, message(verdict(decision, level, "Adds one notes file.")))
    model.add(ModelResponse([patch_call(PATCH, "call_p1")]), ModelResponse([message(FINAL)]))
    server = start(codex_server_factory, model)
    thread = server.result("thread/start", {"cwd": str(tmp_path)})["thread"]["id"]
    server.result("turn/start", {"threadId": thread, "input": text("write notes")})
    completed = server.wait_notification("turn/completed", 20)["params"]
    assert completed["turn"]["status"] == "completed"
    assert server.server_requests == []
    started, done = reviews(server)
    assert_valid([started, done])
    target = str(tmp_path / "notes.txt")
    assert started["params"]["action"] == {"type": "applyPatch", "cwd": str(tmp_path),
                                           "files": [target]}  # fmt: skip
    assert started["params"]["targetItemId"] == "call_p1"
    changes = [n["params"]["item"] for n in server.notifications
               if n["method"] == "item/completed"
               and n["params"]["item"]["type"] == "fileChange"]  # fmt: skip
    # What the guardian read: the patch's diff, not just the file names.
    (review,) = [r for r in model.requests if is_review(r)]
    assert '"diff": "reviewed\\n"' in review.input_texts()[0]
    if decision == "allow":
        assert done["params"]["review"]["status"] == "approved"
        assert (tmp_path / "notes.txt").read_text() == "reviewed\n"
        assert [item["status"] for item in changes] == ["completed"]
    else:
        assert done["params"]["review"]["status"] == "denied"
        assert not (tmp_path / "notes.txt").exists()
        assert [item["status"] for item in changes] == ["declined"]


@pytest.mark.parametrize("how", ["--disable-plugin", "CODEX_CORE_DISABLE_PLUGINS"])
def test_without_the_plugin_the_user_reviews_again(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, codex_home: Path,
    tmp_path: Path, how: str,
) -> None:  # fmt: skip
    """Configured for the guardian, but its plugin is off: a configWarning, then the client
    gets the normal approval request and its answer counts."""
    (codex_home / "config.toml").write_text(
        'approval_policy = "on-request"\nsandbox_mode = "read-only"\n'
        'approvals_reviewer = "guardian_subagent"\n'
    )
    model = codex_model_server
    model.add(ModelResponse([exec_call("touch asked-the-user.txt", "call_u1")]),
              ModelResponse([message(FINAL)]))  # fmt: skip
    args = ["--disable-plugin", "guardian"] if how == "--disable-plugin" else []
    env = {**model.env, "CODEX_CORE_DISABLE_PLUGINS": "guardian"} if not args else model.env
    server: StdioServer = codex_server_factory(*model.config_args(), *args, env=env)
    server.initialize()
    warning = server.wait_notification("configWarning")["params"]
    assert warning["summary"].startswith('`approvals_reviewer = "guardian_subagent"` names a')
    assert "codex-plugin-guardian" in warning["details"]
    assert_valid([{"method": "configWarning", "params": warning}])
    thread = server.result("thread/start", {"cwd": str(tmp_path)})["thread"]["id"]
    server.result("turn/start", {"threadId": thread, "input": text("make it")})
    request = server.wait_server_request("item/commandExecution/requestApproval", 10)
    assert request["params"]["itemId"] == "call_u1"
    server.send({"id": request["id"], "result": {"decision": "accept"}})
    completed = server.wait_notification("turn/completed", 20)["params"]
    assert completed["turn"]["status"] == "completed"
    assert (tmp_path / "asked-the-user.txt").exists()
    assert reviews(server) == []
    assert not [r for r in model.requests if is_review(r)]


def test_no_warning_when_the_reviewer_is_there(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer
) -> None:
    server = start(codex_server_factory, codex_model_server)
    server.barrier()
    warnings = [n["params"]["summary"] for n in server.notifications
                if n["method"] == "configWarning"]  # fmt: skip
    assert not [summary for summary in warnings if "approvals_reviewer" in summary]


def test_too_many_denials_interrupt_the_turn_with_a_guardian_warning(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    model = codex_model_server
    model.answer_matching(
        is_review, message(verdict("deny", "high", "Deletes files outside the request."))
    )
    for number in range(1, 5):
        model.add(ModelResponse([exec_call(f"rm -rf data{number}", f"call_d{number}")]))
    server = start(codex_server_factory, model)
    thread = server.result("thread/start", {"cwd": str(tmp_path)})["thread"]["id"]
    turn = server.result("turn/start", {"threadId": thread, "input": text("clean up")})
    completed = server.wait_notification("turn/completed", 20)["params"]
    assert completed["turn"]["id"] == turn["turn"]["id"]
    assert completed["turn"]["status"] == "interrupted"
    denial = ("Automatic approval review denied (risk: high, authorization: unknown): Deletes "
              "files outside the request.")  # fmt: skip
    assert warnings(server) == [denial, denial, denial, (
        "Automatic approval review rejected too many approval requests for this turn "
        "(3 consecutive, 3 in the last 50 reviews); interrupting the turn.")]  # fmt: skip
    sent = [n for n in server.notifications if n["method"] == "guardianWarning"]
    assert {n["params"]["threadId"] for n in sent} == {thread}
    assert_valid(sent)
    done = [n["params"]["review"]["status"] for n in reviews(server)
            if n["method"].endswith("completed")]  # fmt: skip
    assert done == ["denied", "denied", "denied"]
    commands = [n["params"]["item"] for n in server.notifications
                if n["method"] == "item/completed"
                and n["params"]["item"]["type"] == "commandExecution"]  # fmt: skip
    assert [(c["id"], c["status"]) for c in commands] == [
        ("call_d1", "declined"), ("call_d2", "declined"), ("call_d3", "declined")]  # fmt: skip
    # The model was not asked again after the third denial.
    assert len([r for r in model.requests if not is_review(r)]) == 3
    assert model.pending == 1


def test_interrupting_the_turn_aborts_the_review(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    model = codex_model_server
    slow = verdict("allow", "low", "never read")
    model.answer_matching(is_review, ModelResponse([message(slow)], stall=30))
    model.add(ModelResponse([exec_call("touch never.txt", "call_i")]))
    server = start(codex_server_factory, model)
    thread = server.result("thread/start", {"cwd": str(tmp_path)})["thread"]["id"]
    turn = server.result("turn/start", {"threadId": thread, "input": text("make it")})["turn"]
    server.wait_notification("item/autoApprovalReview/started", 20)
    server.result("turn/interrupt", {"threadId": thread, "turnId": turn["id"]})
    completed = server.wait_notification("turn/completed", 20)["params"]
    assert completed["turn"]["status"] == "interrupted"
    done = server.wait_notification("item/autoApprovalReview/completed", 5)["params"]
    assert done["review"]["status"] == "aborted"
    assert done["review"]["rationale"] == "the turn was interrupted"
    assert_valid([{"method": "item/autoApprovalReview/completed", "params": done}])
    assert server.server_requests == []
    assert not (tmp_path / "never.txt").exists()
