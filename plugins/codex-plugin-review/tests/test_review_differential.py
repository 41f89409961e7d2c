"""``review/start``, ours against the official server, value by value.

Both servers review the same kind of git repository (built afresh for each) with the same
scripted reviewer answers: each target's reply and the prompt the model reads, what a client
is told during a review (the items, their rendered findings, the turn), what the thread's next
turn reads about the review, and the refusals. Values are compared after masking what
legitimately differs: ids by order of appearance, times, and the temp folders.

Left out, as they are not the review's: the reference's notices about an unknown model
(``warning``), its remote-control status, token usage and rate limits; and the model request's
other context (the reference adds its own environment, skills and permissions messages).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing import ModelResponse, ScriptedModelServer, http_error, message
from codex_core.testing.pytest_plugin import StdioServer, server_command
from codex_core.testing.reference import reference_server_command

REFERENCE = reference_server_command()

pytestmark = pytest.mark.skipif(
    REFERENCE is None,
    reason="the official server is not installed (python -m codex_core.testing.reference)",
)

#: Generated ids: the servers' UUIDs (``msg_<uuid>`` for the review's agent message) and the
#: scripted model's item ids (``msg_N``, counted across the whole test process).
IDS = re.compile(r"(?:msg_)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|msg_\d+")
#: Commits made at a fixed time, so both servers' repositories have the same SHAs.
GIT_ENV = {"GIT_AUTHOR_DATE": "2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z"}
TIMES = {"startedAt", "completedAt", "startedAtMs", "completedAtMs", "durationMs", "emittedAtMs"}
#: Notifications that are not the review's (see the module docstring).
UNRELATED = {"warning", "remoteControl/status/changed", "thread/tokenUsage/updated",
             "account/rateLimits/updated", "thread/started"}  # fmt: skip


class Masker:
    """Ids become ``<id1>``, ``<id2>``... in order of first appearance; times ``<time>``;
    the session's folders ``$HOME`` and ``$REPO``."""

    def __init__(self, folders: dict[str, Path]) -> None:
        self.ids: dict[str, str] = {}
        self.folders = folders

    def __call__(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {name: self(inner, name) for name, inner in value.items()}
        if isinstance(value, list):
            return [self(inner, key) for inner in value]
        if key in TIMES and value is not None:
            return "<time>"
        if isinstance(value, str):
            for name, folder in self.folders.items():
                value = value.replace(str(folder), name)
            return IDS.sub(self._id, value)
        return value

    def _id(self, match: re.Match[str]) -> str:
        return self.ids.setdefault(match.group(0), f"<id{len(self.ids) + 1}>")


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def make_repo(path: Path) -> None:
    path.mkdir(parents=True)
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


def answers(repo: Path) -> list[str]:
    """The reviewer's answers, one per review, in ``session`` order."""

    def finding(title: str, body: str, start: int) -> dict[str, Any]:
        return {"title": title, "body": body, "confidence_score": 0.5, "priority": 2,
                "code_location": {"absolute_file_path": str(repo / "a.py"),
                                  "line_range": {"start": start, "end": start + 1}}}  # fmt: skip

    def review(explanation: str, *findings: dict[str, Any]) -> str:
        return json.dumps({"findings": list(findings), "overall_correctness": "patch is correct",
                           "overall_explanation": explanation,
                           "overall_confidence_score": 0.9})  # fmt: skip

    return [
        review("Two problems.", finding("[P1] Wrong value", "x should stay 1.\nSee the spec.", 1),
               finding("[P2] Style", "Use a constant.", 3)),
        "Before the JSON " + review("", finding("[P3] Nit", "Trailing space.", 2)) + " after",
        "Plain prose, no JSON at all.",
        review("  Looks fine.  "),
        review("Null priority.", {**finding("[P2] Maybe", "Unsure.", 4), "priority": None}),
    ]  # fmt: skip


def session(argv: list[str], root: Path) -> dict[str, Any]:
    """Everything compared, masked, for one server."""
    home, repo = root / "home", root / "repo"
    home.mkdir(parents=True)
    make_repo(repo)
    head = git(repo, "rev-parse", "HEAD")
    targets = [
        {"type": "uncommittedChanges"},
        {"type": "baseBranch", "branch": "main"},
        {"type": "commit", "sha": head, "title": "second commit"},
        {"type": "custom", "instructions": "  Only a.py.  "},
        {"type": "baseBranch", "branch": "nosuch"},
    ]
    shown: dict[str, Any] = {}
    with ScriptedModelServer() as model:
        model.add(*(message(text) for text in answers(repo)), message("Next answer."))
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer([*argv, *model.config_args()], env, repo)
        try:
            server.initialize()
            thread_id = server.result("thread/start", {})["thread"]["id"]
            for number, target in enumerate(targets):
                server.notifications.clear()
                reply = server.request("review/start", {"threadId": thread_id, "target": target})
                server.wait_notification("turn/completed", timeout=30)
                server.barrier()
                notes = [{"method": n["method"], "params": n["params"]}
                         for n in server.notifications if n["method"] not in UNRELATED]  # fmt: skip
                prompt = model.requests[number].input_texts()[-1]
                shown[f"review {number}"] = {"reply": reply, "prompt": prompt, "notes": notes}
            server.result("turn/start", {"threadId": thread_id,
                                         "input": [{"type": "text", "text": "next"}]})  # fmt: skip
            server.wait_notification("turn/completed", timeout=30)
            # What the thread's model reads about the reviews: the messages they left.
            history = model.requests[len(targets)].body["input"]
            shown["history"] = [
                {"role": entry["role"], "text": entry["content"][0]["text"]}
                for entry in history
                if entry.get("type") == "message" and entry["role"] in ("user", "assistant")
                and "<environment_context>" not in entry["content"][0]["text"]
            ]  # fmt: skip
            unknown = "00000000-0000-7000-8000-000000000000"
            refusals = [
                {"threadId": unknown, "target": {"type": "uncommittedChanges"}},
                {"threadId": thread_id, "target": {"type": "custom", "instructions": " "}},
                {"threadId": thread_id, "target": {"type": "baseBranch", "branch": ""}},
                {"threadId": thread_id, "target": {"type": "commit", "sha": "  "}},
                {"threadId": thread_id, "target": {"type": "nope"}},
                {"threadId": thread_id, "target": {"type": "uncommittedChanges"},
                 "delivery": "detached"},
                {"threadId": thread_id},
            ]  # fmt: skip
            shown["refusals"] = [server.request("review/start", params) for params in refusals]
            # Outside a git work tree, a base branch review errs after the reply.
            plain = root / "plain"
            plain.mkdir()
            other = server.result("thread/start", {"cwd": str(plain)})["thread"]["id"]
            server.notifications.clear()
            reply = server.request("review/start", {"threadId": other,
                                   "target": {"type": "baseBranch", "branch": "main"}})  # fmt: skip
            server.wait_notification("error")
            server.barrier()
            notes = [{"method": "error", "params": {}}] + [
                {"method": n["method"], "params": n["params"]}
                for n in server.notifications if n["method"] not in UNRELATED
            ]  # fmt: skip
            shown["not a repository"] = {"reply": reply, "notes": notes}
            fresh = server.result("thread/start", {})["thread"]["id"]
            review_text = answers(repo)[0]
            # A review interrupted while the reviewer streams, and one whose model call fails.
            model.add(ModelResponse([], stall=30), http_error(400, "bad request"))
            server.notifications.clear()
            target = {"type": "uncommittedChanges"}
            started = server.result("review/start", {"threadId": thread_id, "target": target})
            review_turn = started["turn"]["id"]
            reviewer = server.wait_notification("turn/started")["params"]["turn"]["id"]
            model.wait_for_requests(len(targets) + 2)
            steer = {"threadId": thread_id, "input": [{"type": "text", "text": "more"}]}
            shown["steering a review"] = [
                server.request("turn/steer", {**steer, "expectedTurnId": turn_id})
                for turn_id in (reviewer, review_turn)
            ]
            server.result("turn/interrupt", {"threadId": thread_id, "turnId": reviewer})
            server.wait_notification("turn/completed", timeout=30)
            server.barrier()
            shown["interrupted"] = [{"method": n["method"], "params": n["params"]}
                                    for n in server.notifications
                                    if n["method"] not in UNRELATED]  # fmt: skip
            server.notifications.clear()
            server.result("review/start", {"threadId": thread_id, "target": target})
            server.wait_notification("turn/completed", timeout=30)
            server.barrier()
            shown["model error"] = [{"method": n["method"], "params": n["params"]}
                                    for n in server.notifications
                                    if n["method"] not in UNRELATED]  # fmt: skip
            for note in shown["model error"]:  # (how a model error is worded is the provider's)
                if note["method"] == "error":
                    note["params"]["error"] = "<the model's error>"
            # What the thread's model reads about the two reviews that did not finish.
            model.add(message("After the failures."))
            text = [{"type": "text", "text": "and now?"}]
            server.result("turn/start", {"threadId": thread_id, "input": text})
            server.wait_notification("turn/completed", timeout=30)
            history = model.requests[-1].body["input"]
            shown["history after failures"] = [
                {"role": entry["role"], "text": entry["content"][0]["text"]}
                for entry in history[-8:]
                if entry.get("type") == "message" and entry["role"] in ("user", "assistant")
                and "<environment_context>" not in entry["content"][0]["text"]
            ]  # fmt: skip
            # A review of a busy thread: the turn is interrupted, then the review runs.
            model.add(ModelResponse([message("working")], stall=30), message(review_text))
            text = [{"type": "text", "text": "work"}]
            asked = len(model.requests)
            server.result("turn/start", {"threadId": fresh, "input": text})
            server.wait_notification("turn/started")
            model.wait_for_requests(asked + 1)
            server.notifications.clear()
            server.result("review/start", {"threadId": fresh, "target": target})
            server.wait_notification("turn/started")
            refused = server.request("turn/start", {"threadId": fresh, "input": text})
            server.wait_until(
                lambda: sum(n["method"] == "turn/completed" for n in server.notifications) == 2,
                timeout=30,
            )
            server.barrier()
            # From the interrupted turn's end on (how much of it streamed before is timing).
            ended = next(i for i, n in enumerate(server.notifications)
                         if n["method"] == "turn/completed")  # fmt: skip
            shown["busy thread"] = {"turn/start": refused, "notes": [
                {"method": n["method"], "params": n["params"]}
                for n in server.notifications[ended:] if n["method"] not in UNRELATED]}  # fmt: skip
            # The reviewers' own threads, listed for their source kind (in no particular order:
            # several start within the same second).
            listed = server.result("thread/list", {})["data"]
            shown["listed threads"] = [{key: entry[key] for key in ("id", "preview", "source")}
                                       for entry in listed]  # fmt: skip
            listed = server.result("thread/list", {"sourceKinds": ["subAgentReview"]})["data"]
            shown["reviewer threads"] = sorted(
                (json.dumps({key: entry[key] for key in (
                    "source", "parentThreadId", "preview", "ephemeral", "model", "cwd",
                    "threadSource", "agentNickname", "status")}) for entry in listed),
            )  # fmt: skip
        finally:
            server.close()
    mask = Masker({"$HOME": home, "$REPO": repo, "$PLAIN": root / "plain"})
    return {part: mask(value) for part, value in shown.items()}


def test_reviews_agree_with_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = session(server_command(), tmp_path / "ours")
    reference = session(REFERENCE, tmp_path / "reference")
    for part in reference:
        assert ours[part] == reference[part], part
