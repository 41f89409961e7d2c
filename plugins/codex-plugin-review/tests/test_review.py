"""``review/start`` end to end over stdio: a real git repository in a temp folder, the scripted
model server as the reviewer model, and what the client sees and the model reads."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import codex_core
from codex_core.testing import (
    ModelResponse,
    ScriptedModelServer,
    function_call,
    http_error,
    message,
)
from codex_core.testing.pytest_plugin import StdioServer

SCHEMA = Path(codex_core.__file__).parent / "protocol" / "schema" / "stable"
Start = Callable[..., StdioServer]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """``main`` with one commit, ``feature`` one commit ahead, and uncommitted changes."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "review@example.com")
    git(path, "config", "user.name", "Review")
    (path / "a.py").write_text("x = 1\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "first commit")
    git(path, "checkout", "-qb", "feature")
    (path / "a.py").write_text("x = 2\n")
    git(path, "commit", "-qam", "second commit")
    (path / "a.py").write_text("x = 3\n")
    (path / "new.txt").write_text("new\n")
    return path


def finding(title: str, body: str, path: Path, start: int, end: int) -> dict[str, Any]:
    return {"title": title, "body": body, "confidence_score": 0.8, "priority": 1,
            "code_location": {"absolute_file_path": str(path),
                              "line_range": {"start": start, "end": end}}}  # fmt: skip


def review_json(explanation: str, *findings: dict[str, Any]) -> str:
    verdict = {"overall_correctness": "patch is incorrect", "overall_explanation": explanation,
               "overall_confidence_score": 0.7}  # fmt: skip
    return json.dumps({"findings": list(findings), **verdict})


def serve(start: Start, model: ScriptedModelServer, cwd: Path) -> tuple[StdioServer, str]:
    server = start(*model.config_args(), env=model.env)
    server.initialize()
    thread = server.result("thread/start", {"cwd": str(cwd)})["thread"]
    return server, str(thread["id"])


def review(
    server: StdioServer, thread_id: str, target: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start a review and wait for its turn's end (its notifications stay in
    ``server.notifications``): the reply and the completed turn."""
    server.notifications.clear()
    reply = server.result("review/start", {"threadId": thread_id, "target": target})
    completed = server.wait_notification("turn/completed", timeout=30)["params"]["turn"]
    return reply, completed


def items(server: StdioServer, method: str) -> list[dict[str, Any]]:
    return [n["params"]["item"] for n in server.notifications if n["method"] == method]


def test_review_of_uncommitted_changes(
    codex_server_factory: Start, codex_model_server: ScriptedModelServer, repo: Path
) -> None:
    """The reply, the reviewer's request, the items and the rendered findings, in order."""
    model = codex_model_server
    answer = review_json(
        "Two bugs.",
        finding("[P1] Off by one", "The loop skips the last element.", repo / "a.py", 2, 3),
        finding("[P2] Leak", "The file is never closed.\r\nUse `with`.\n", repo / "b.py", 7, 7),
    )
    model.add(message(answer, chunks=[answer[:10], answer[10:]]), message("Noted."))
    server, thread_id = serve(codex_server_factory, model, repo)
    server.notifications.clear()
    reply = server.result("review/start", {"threadId": thread_id,
                                           "target": {"type": "uncommittedChanges"}})  # fmt: skip
    completed = server.wait_notification("turn/completed", timeout=30)["params"]["turn"]
    turn_id = reply["turn"]["id"]
    assert reply == {
        "reviewThreadId": thread_id,
        "turn": {"id": turn_id, "rootTurnId": None, "itemsView": "notLoaded",
                 "status": "inProgress", "error": None, "startedAt": None, "completedAt": None,
                 "durationMs": None,
                 "items": [{"type": "userMessage", "id": turn_id, "clientId": None,
                            "content": [{"type": "text", "text": "current changes",
                                         "text_elements": []}],
                            "startedAtMs": None, "completedAtMs": None}]},
    }  # fmt: skip

    # The reviewer reads the rubric as a developer message and the target's prompt.
    (request,) = model.requests[:1]
    assert "instructions" not in request.body
    first, last = request.body["input"][0], request.body["input"][-1]
    assert first["role"] == "developer"
    assert first["content"][0]["text"].startswith("# Review guidelines:")
    assert (
        '"overall_correctness": "patch is correct" | "patch is incorrect"'
        in (first["content"][0]["text"])
    )
    assert last["role"] == "user"
    assert last["content"] == [{"type": "input_text", "text": (
        "Review the current code changes (staged, unstaged, and untracked files) and provide "
        "prioritized findings.")}]  # fmt: skip

    # What the client sees, in the reference's order; the raw JSON answer never shows.
    seen = [
        (n["method"], (n["params"].get("item") or {}).get("type"))
        for n in server.notifications
        if n["method"] in ("item/started", "item/completed", "turn/started",
                           "thread/status/changed", "item/agentMessage/delta")
    ]  # fmt: skip
    assert seen == [
        ("item/started", "enteredReviewMode"), ("item/completed", "enteredReviewMode"),
        ("thread/status/changed", None), ("turn/started", None),
        ("item/started", "userMessage"), ("item/completed", "userMessage"),
        ("item/started", "agentMessage"),
        ("item/started", "exitedReviewMode"), ("item/completed", "exitedReviewMode"),
        ("item/started", "agentMessage"), ("item/completed", "agentMessage"),
        ("thread/status/changed", None),
    ]  # fmt: skip
    assert all(
        n["params"]["threadId"] == thread_id and n["params"].get("turnId", turn_id) == turn_id
        for n in server.notifications
        if "threadId" in n["params"]
    )
    started = next(n for n in server.notifications if n["method"] == "turn/started")
    assert started["params"]["turn"]["rootTurnId"] == turn_id
    assert started["params"]["turn"]["id"] != turn_id
    rendered = (
        "Two bugs.\n\nFull review comments:\n\n"
        f"- [P1] Off by one \u2014 {repo}/a.py:2-3\n  The loop skips the last element.\n\n"
        f"- [P2] Leak \u2014 {repo}/b.py:7-7\n  The file is never closed.\n  Use `with`."
    )
    (entered,) = [i for i in items(server, "item/completed") if i["type"] == "enteredReviewMode"]
    (exited,) = [i for i in items(server, "item/completed") if i["type"] == "exitedReviewMode"]
    assert entered["review"] == "current changes"
    assert exited["review"] == rendered
    assert completed["id"] == turn_id and completed["status"] == "completed"
    assert [i["text"] for i in completed["items"]] == [rendered]

    validator = jsonschema.Draft7Validator(
        json.loads((SCHEMA / "ServerNotification.json").read_text())
    )
    for sent in server.notifications:
        errors = list(validator.iter_errors({"method": sent["method"], "params": sent["params"]}))
        assert not errors, f"{sent['method']}: {errors[0].message[:200]}"

    # The thread's next turn reads the review as the reference records it.
    server.result("turn/start", {"threadId": thread_id,
                                 "input": [{"type": "text", "text": "fix the first"}]})  # fmt: skip
    server.wait_notification("turn/completed", timeout=30)
    history = model.requests[1].body["input"]
    results = (
        "Two bugs.\n\nFull review comments:\n\n"
        f"- [P1] Off by one \u2014 {repo}/a.py:2-3\n  The loop skips the last element.\n\n"
        f"- [P2] Leak \u2014 {repo}/b.py:7-7\n  The file is never closed.\n  Use `with`."
    )
    assert {"type": "message", "role": "user", "content": [{"type": "input_text", "text": (
        "<user_action>\n  <context>User initiated a review task. Here's the full review output "
        "from reviewer model. User may select one or more comments to resolve.</context>\n"
        f"  <action>review</action>\n  <results>\n  {results}\n  </results>\n"
        "  </user_action>\n")}]} in history  # fmt: skip
    assert any(
        entry.get("role") == "assistant" and entry["content"][0]["text"] == rendered
        for entry in history
    )
    assert not any("# Review guidelines:" in text for text in model.requests[1].input_texts(
        "developer"))  # fmt: skip


def test_review_targets_and_answers(
    codex_server_factory: Start, codex_model_server: ScriptedModelServer, repo: Path
) -> None:
    """Each target's hint and prompt (a base branch through git's merge base), and the
    reviewer's answer read as JSON, as JSON inside prose, or as plain text."""
    model = codex_model_server
    merge_base = git(repo, "merge-base", "HEAD", "main")
    head = git(repo, "rev-parse", "HEAD")
    one = finding("[P3] Nit", "Rename it.", repo / "a.py", 1, 1)
    model.add(
        message(review_json("", one)),
        message("Here is the review: " + review_json("Fine otherwise.", one) + " Done."),
        message("Looks good to me."),
        message(review_json("  ")),
        message(json.dumps({"findings": [{"title": "no location"}], "overall_correctness": "",
                            "overall_explanation": "x", "overall_confidence_score": 0})),
        message(review_json("All good.")),
    )  # fmt: skip
    server, thread_id = serve(codex_server_factory, model, repo)
    cases = [
        ({"type": "baseBranch", "branch": " main "}, "changes against 'main'",
         f"Review the code changes against the base branch 'main'. The merge base commit for "
         f"this comparison is {merge_base}. Run `git diff {merge_base}` to inspect the changes "
         "relative to main. Provide prioritized, actionable findings.",
         f"Review comment:\n\n- [P3] Nit \u2014 {repo}/a.py:1-1\n  Rename it."),
        ({"type": "baseBranch", "branch": "nosuch"}, "changes against 'nosuch'",
         "Review the code changes against the base branch 'nosuch'. Start by finding the merge "
         "diff between the current branch and nosuch's upstream e.g. (`git merge-base HEAD "
         '"$(git rev-parse --abbrev-ref "nosuch@{upstream}")"`), then run `git diff` against '
         "that SHA to see what changes we would merge into the nosuch branch. Provide "
         "prioritized, actionable findings.",
         f"Fine otherwise.\n\nReview comment:\n\n- [P3] Nit \u2014 {repo}/a.py:1-1\n  Rename it."),
        ({"type": "commit", "sha": head, "title": "second commit"},
         f"commit {head[:7]}: second commit",
         f'Review the code changes introduced by commit {head} ("second commit"). Provide '
         "prioritized, actionable findings.", "Looks good to me."),
        ({"type": "commit", "sha": head, "title": "  "}, f"commit {head[:7]}",
         f"Review the code changes introduced by commit {head}. Provide prioritized, "
         "actionable findings.", "Reviewer failed to output a response."),
        ({"type": "custom", "instructions": "  Check a.py only.\n"}, "Check a.py only.",
         "Check a.py only.", '{"findings": [{"title": "no location"}], "overall_correctness": '
         '"", "overall_explanation": "x", "overall_confidence_score": 0}'),
        ({"type": "uncommittedChanges"}, "current changes",
         "Review the current code changes (staged, unstaged, and untracked files) and provide "
         "prioritized findings.", "All good."),
    ]  # fmt: skip
    for number, (target, hint, prompt, shown) in enumerate(cases):
        reply, _ = review(server, thread_id, target)
        assert reply["turn"]["items"][0]["content"][0]["text"] == hint, target
        assert model.requests[number].input_texts()[-1] == prompt, target
        (exited,) = [i for i in items(server, "item/completed") if i["type"] == "exitedReviewMode"]
        assert exited["review"] == shown, target


def test_review_refusals(
    codex_server_factory: Start, codex_model_server: ScriptedModelServer, repo: Path
) -> None:
    """Every refusal, worded as the reference's, and nothing asked of the model."""
    model = codex_model_server
    server, thread_id = serve(codex_server_factory, model, repo)
    unknown = "00000000-0000-7000-8000-000000000000"
    target = {"type": "uncommittedChanges"}
    refusals = [
        ({"threadId": unknown, "target": {"type": "custom", "instructions": ""}},
         f"thread not found: {unknown}"),
        ({"threadId": thread_id, "target": {"type": "custom", "instructions": " \n"}},
         "instructions must not be empty"),
        ({"threadId": thread_id, "target": {"type": "baseBranch", "branch": " "}},
         "branch must not be empty"),
        ({"threadId": thread_id, "target": {"type": "commit", "sha": ""}},
         "sha must not be empty"),
        ({"threadId": thread_id, "target": {"type": "bogus"}},
         "Invalid request: unknown variant `bogus`, expected one of `uncommittedChanges`, "
         "`baseBranch`, `commit`, `custom`"),
        ({"threadId": thread_id, "target": target, "delivery": "detached"},
         "Invalid request: unknown variant `detached`, expected `inline`"),
        ({"threadId": thread_id}, "Invalid request: missing field `target`"),
    ]  # fmt: skip
    for params, text in refusals:
        assert server.error("review/start", params) == {"code": -32600, "message": text}
    # (The kernel's wording for every method taking a thread id.)
    invalid = server.error("review/start", {"threadId": "nope", "target": target})
    assert invalid["message"].startswith("invalid thread id: ")
    assert model.requests == []


def test_review_interrupts_the_running_turn(
    codex_server_factory: Start, codex_model_server: ScriptedModelServer, repo: Path
) -> None:
    """As the reference: a review of a busy thread interrupts its turn, then runs; no turn
    starts while it runs."""
    model = codex_model_server
    model.add(ModelResponse([message("working")], stall=30), message(review_json("Fine.")))
    server, thread_id = serve(codex_server_factory, model, repo)
    text = [{"type": "text", "text": "work"}]
    running = server.result("turn/start", {"threadId": thread_id, "input": text})["turn"]["id"]
    model.wait_for_requests(1)
    reply = server.result("review/start", {"threadId": thread_id,
                                           "target": {"type": "uncommittedChanges"}})  # fmt: skip
    interrupted = server.wait_notification("turn/completed", timeout=30)["params"]["turn"]
    assert (interrupted["id"], interrupted["status"]) == (running, "interrupted")
    server.wait_notification("turn/started")
    refused = server.error("turn/start", {"threadId": thread_id, "input": text})
    assert refused == {"code": -32603, "message": "failed to submit turn input: "
                       "ActiveTurnNotSteerable { turn_kind: Review }"}  # fmt: skip
    completed = server.wait_notification("turn/completed", timeout=30)["params"]["turn"]
    assert (completed["id"], completed["status"]) == (reply["turn"]["id"], "completed")
    assert model.requests[1].input_texts()[-1].startswith("Review the current code changes")


def test_review_outside_a_git_repository(
    codex_server_factory: Start, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    """A base branch outside git: accepted, then the thread errs as the reference's does."""
    plain = tmp_path / "plain"
    plain.mkdir()
    server, thread_id = serve(codex_server_factory, codex_model_server, plain)
    target = {"type": "baseBranch", "branch": "main"}
    reply = server.result("review/start", {"threadId": thread_id, "target": target})
    error = server.wait_notification("error")["params"]
    assert error == {"error": {"message": f'"{plain}" is not a git repository',
                               "codexErrorInfo": "other", "additionalDetails": None},
                     "willRetry": False, "threadId": thread_id,
                     "turnId": reply["turn"]["id"]}  # fmt: skip
    server.barrier()
    assert [n["params"]["status"] for n in server.notifications
            if n["method"] == "thread/status/changed"] == [{"type": "systemError"}]  # fmt: skip
    assert not [n for n in server.notifications if n["method"].startswith(("turn/", "item/"))]
    assert codex_model_server.requests == []
    # The thread is not stuck: a review git is not needed for runs.
    codex_model_server.add(message(review_json("Fine.")))
    review(server, thread_id, {"type": "custom", "instructions": "look"})


def test_interrupted_and_failed_reviews(
    codex_server_factory: Start, codex_model_server: ScriptedModelServer, repo: Path
) -> None:
    """An interrupt or a model error still leaves review mode, with the reference's words."""
    model = codex_model_server
    model.add(ModelResponse([message("late")], stall=30), http_error(400, "bad request"))
    server, thread_id = serve(codex_server_factory, model, repo)
    target = {"type": "uncommittedChanges"}
    turn_id = server.result("review/start", {"threadId": thread_id, "target": target})["turn"]["id"]
    reviewer = server.wait_notification("turn/started")["params"]["turn"]["id"]
    model.wait_for_requests(1)
    # As the reference: the running turn is the reviewer's, the one turn/started announced.
    wrong = server.error("turn/interrupt", {"threadId": thread_id, "turnId": turn_id})
    assert wrong["message"] == f"expected active turn id {turn_id} but found {reviewer}"
    # ... while turn/steer names the review's own turn, and is refused: a review takes no input.
    steer = {"threadId": thread_id, "expectedTurnId": reviewer,
             "input": [{"type": "text", "text": "also b.py"}]}  # fmt: skip
    assert server.error("turn/steer", steer)["message"] == (
        f"expected active turn id `{reviewer}` but found `{turn_id}`"
    )
    refused = server.error("turn/steer", {**steer, "expectedTurnId": turn_id})
    kind = {"activeTurnNotSteerable": {"turnKind": "review"}}
    assert refused == {"code": -32600, "message": "cannot steer a review turn",
                       "data": {"message": "cannot steer a review turn", "codexErrorInfo": kind,
                                "additionalDetails": None, "misalignment": None}}  # fmt: skip
    server.result("turn/interrupt", {"threadId": thread_id, "turnId": reviewer})
    completed = server.wait_notification("turn/completed", timeout=30)["params"]["turn"]
    assert completed["status"] == "interrupted"
    shown = [(i["type"], i.get("review") or i.get("text")) for i in items(server, "item/completed")
             if i["type"] in ("exitedReviewMode", "agentMessage")]  # fmt: skip
    assert shown == [
        ("exitedReviewMode", "Reviewer failed to output a response."),
        ("agentMessage", "Review was interrupted. Please re-run /review and wait for it to "
                         "complete."),
    ]  # fmt: skip

    _, completed = review(server, thread_id, target)
    error = server.wait_notification("error")["params"]
    assert "bad request" in error["error"]["message"] and error["willRetry"] is False
    assert completed["status"] == "completed"
    # The failure stays shown on the thread (no idle after it), as in the reference.
    statuses = [n["params"]["status"]["type"] for n in server.notifications
                if n["method"] == "thread/status/changed"]  # fmt: skip
    assert statuses == ["active", "systemError"]
    (exited,) = [i for i in items(server, "item/completed") if i["type"] == "exitedReviewMode"]
    assert exited["review"] == "Reviewer failed to output a response."


def test_review_read_back_after_a_restart(
    codex_server_factory: Start, codex_model_server: ScriptedModelServer, repo: Path
) -> None:
    """The rollout keeps the review (its target and whole output, in the reference's shape):
    a new server process shows the same items."""
    model = codex_model_server
    nullable = {**finding("[P2] Maybe", "Unsure.", repo / "a.py", 4, 5), "priority": None}
    model.add(
        message(review_json("Checked.", finding("[P1] Bug", "Wrong.", repo / "a.py", 1, 2))),
        message(review_json("Null priority.", nullable)),
    )
    server, thread_id = serve(codex_server_factory, model, repo)
    _, first = review(server, thread_id, {"type": "commit", "sha": "abcdef1234", "title": "t"})
    # Read back, the review's turn holds what its clients saw complete, the reviewer's prompt
    # included (the reference reads that back as a turn of its own).
    shown = [(i["type"], i.get("review") or i.get("text") or i["content"][0]["text"])
             for i in items(server, "item/completed")]  # fmt: skip
    # A finding without a priority does not fit: the answer is kept as text, as the reference.
    _, second = review(server, thread_id, {"type": "uncommittedChanges"})
    (exited,) = [i for i in items(server, "item/completed") if i["type"] == "exitedReviewMode"]
    assert exited["review"] == review_json("Null priority.", nullable)
    live = server.result("thread/turns/list", {"threadId": thread_id, "itemsView": "full",
                                               "sortDirection": "asc"})["data"]  # fmt: skip
    server.close()

    again = codex_server_factory(*model.config_args(), env=model.env)
    again.initialize()
    resumed = again.result("thread/resume", {"threadId": thread_id})["thread"]["turns"]
    assert [turn["id"] for turn in resumed] == [first["id"], second["id"]]
    assert [turn["items"] for turn in resumed] == [turn["items"] for turn in live]
    assert [
        (i["type"], i.get("review") or i.get("text") or i["content"][0]["text"])
        for i in resumed[0]["items"]
    ] == shown
    # The reviewers' own threads, listed for their source kind only.
    reviewers = again.result("thread/list", {"sourceKinds": ["subAgentReview"]})["data"]
    assert sorted(entry["preview"] for entry in reviewers) == [
        'Review the code changes introduced by commit abcdef1234 ("t"). Provide prioritized, '
        "actionable findings.",
        "Review the current code changes (staged, unstaged, and untracked files) and provide "
        "prioritized findings.",
    ]
    assert {(e["parentThreadId"], json.dumps(e["source"])) for e in reviewers} == {
        (thread_id, '{"subAgent": "review"}')
    }
    listed = again.result("thread/list", {})["data"]
    assert [entry["id"] for entry in listed] == [thread_id]
    assert shown[0] == ("enteredReviewMode", "commit abcdef1: t")
    assert shown[1][0] == "userMessage"
    assert shown[2] == (
        "exitedReviewMode",
        f"Checked.\n\nReview comment:\n\n- [P1] Bug \u2014 {repo}/a.py:1-2\n  Wrong.",
    )


def test_reviewer_runs_commands_under_the_review_turn(
    codex_server_factory: Start, codex_model_server: ScriptedModelServer, repo: Path
) -> None:
    """The reviewer's tools work (read-only, no approval asked): its command shows as the
    review turn's item and its output reaches the reviewer model."""
    model = codex_model_server
    call = function_call("exec_command", {"cmd": "git diff --stat"}, call_id="call_diff")
    spawn = function_call("spawn_agent", {"message": "help"}, namespace="multi_agent_v1",
                          call_id="call_spawn")  # fmt: skip
    model.add(ModelResponse([call, spawn]), message(review_json("Seen the diff.")))
    server, thread_id = serve(codex_server_factory, model, repo)
    reply, completed = review(server, thread_id, {"type": "uncommittedChanges"})
    commands = [i for i in items(server, "item/completed") if i["type"] == "commandExecution"]
    assert [c["command"] for c in commands] and commands[0]["exitCode"] == 0
    turn_ids = {n["params"]["turnId"] for n in server.notifications
                if n["method"] == "item/completed"}  # fmt: skip
    assert turn_ids == {reply["turn"]["id"]}
    assert not server.server_requests  # no approval asked
    output, refused = [i["output"] for i in model.requests[1].body["input"]
                       if i.get("type") == "function_call_output"]  # fmt: skip
    assert "a.py" in str(output)
    # As the reference's reviewer, it neither edits files nor starts agents.
    offered = {spec.get("name") for spec in model.requests[0].body["tools"]}
    assert "exec_command" in offered and not offered & {"apply_patch", "multi_agent_v1"}
    assert refused == "unsupported call: spawn_agent"
    assert completed["items"][0]["text"] == "Seen the diff."


def test_review_model_from_the_config(
    codex_server_factory: Start, codex_model_server: ScriptedModelServer, repo: Path
) -> None:
    """``review_model`` picks the reviewer's model (the thread keeps its own), as the
    reference."""
    model = codex_model_server
    model.add(message(review_json("Fine.")), message("Next."))
    server = codex_server_factory(
        *model.config_args(), "-c", 'review_model="reviewer-model"', env=model.env
    )
    server.initialize()
    thread_id = server.result("thread/start", {"cwd": str(repo)})["thread"]["id"]
    review(server, thread_id, {"type": "uncommittedChanges"})
    server.result("turn/start", {"threadId": thread_id,
                                 "input": [{"type": "text", "text": "next"}]})  # fmt: skip
    server.wait_notification("turn/completed", timeout=30)
    assert [request.body["model"] for request in model.requests] == ["reviewer-model", "mock-model"]
