"""The guardian, ours against the official server, each pointed at the same scripted model.

One turn runs ``touch made.txt`` with escalation under ``approvals_reviewer =
"guardian_subagent"``; the review is answered in the reference's verdict format (allow, deny)
or not at all (an answer that is not JSON). Compared, ids and times masked: what the client
sees (thread status changes, the review notifications, ``guardianWarning``, the command
item's end; never a server request), what the model reads after the review (the command's
output), how many review requests were made and what they ask for (the verdict schema, the
``x-openai-subagent`` header, the turn metadata that marks a guardian review). The review
prompt, its context and its tools are each server's own and left out.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call, message
from codex_core.testing.model_server import RecordedRequest
from codex_core.testing.pytest_plugin import StdioServer, server_command
from codex_core.testing.reference import reference_server_command

pytest.importorskip("codex_plugin_shell")

REFERENCE = reference_server_command()

pytestmark = pytest.mark.skipif(
    REFERENCE is None,
    reason="the official server is not installed (python -m codex_core.testing.reference)",
)

IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMES = {"startedAtMs", "completedAtMs", "durationMs"}
#: A command's output header: its chunk id and wall time vary from run to run.
VARYING = re.compile(r"Chunk ID: \w+|Wall time: [\d.]+ seconds")
#: What the client sees of a review (the item's own start differs elsewhere: its
#: ``commandActions`` are each server's parse of the command).
SEEN = {"thread/status/changed", "guardianWarning", "item/autoApprovalReview/started",
        "item/autoApprovalReview/completed"}  # fmt: skip
ANSWERS = {
    "allow": {"risk_level": "low", "user_authorization": "high", "outcome": "allow",
              "rationale": "Creates the file the user asked for."},
    "deny": {"risk_level": "high", "user_authorization": "low", "outcome": "deny",
             "rationale": "Too risky."},
}  # fmt: skip


def is_review(request: RecordedRequest) -> bool:
    body = request.body if isinstance(request.body, dict) else {}
    return str(body.get("prompt_cache_key", "")).startswith("guardian:")


def mask(value: Any, ids: dict[str, str], key: str = "") -> Any:
    """Ids become ``<id1>``, ``<id2>``... in order of first appearance; times ``<time>``."""
    if isinstance(value, dict):
        return {name: mask(inner, ids, name) for name, inner in value.items()}
    if isinstance(value, list):
        return [mask(inner, ids, key) for inner in value]
    if key in TIMES and value is not None:
        return "<time>"
    if isinstance(value, str):
        return IDS.sub(lambda m: ids.setdefault(m.group(0), f"<id{len(ids) + 1}>"), value)
    return value


def session(argv: list[str], base: Path, answer: str) -> dict[str, Any]:
    """One reviewed command; what the client and the model saw, masked."""
    home, cwd = base / "home", base / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir()
    with ScriptedModelServer() as model:
        text = json.dumps(ANSWERS[answer]) if answer in ANSWERS else "not json at all"
        model.answer_matching(is_review, message(text))
        arguments = {"cmd": "touch made.txt", "sandbox_permissions": "require_escalated",
                     "justification": "the user asked for it"}  # fmt: skip
        model.add(
            ModelResponse([function_call("exec_command", arguments, call_id="call_g1")]),
            ModelResponse([message("done")]),
        )
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer(
            [*argv, *model.config_args(), "-c", 'approval_policy="on-request"',
             "-c", 'sandbox_mode="read-only"', "-c", 'approvals_reviewer="guardian_subagent"'],
            env, cwd,
        )  # fmt: skip
        try:
            server.initialize(experimentalApi=True)
            thread_id = server.result("thread/start", {"cwd": str(cwd)})["thread"]["id"]
            turn = {"threadId": thread_id, "input": [{"type": "text", "text": "make made.txt"}]}
            server.result("turn/start", turn, timeout=30)
            completed = server.wait_notification("turn/completed", timeout=60)
            assert completed["params"]["turn"]["status"] == "completed"
            server.barrier()
            sent = list(server.notifications)
            asked = list(server.server_requests)
        finally:
            server.close()
        requests = list(model.requests)
    ids: dict[str, str] = {}
    seen = []
    for note in sent:
        item = note["params"].get("item") or {}
        if note["method"] in SEEN or (
            note["method"] == "item/completed" and item.get("type") == "commandExecution"
        ):
            params = {k: v for k, v in note["params"].items() if k != "item"}
            if item:  # the end of the command: its status is the review's answer
                params["item"] = {"id": item["id"], "status": item["status"]}
            seen.append(mask({"method": note["method"], "params": params}, ids))
    reviews = [r for r in requests if is_review(r)]
    turns = [r for r in requests if not is_review(r)]
    outputs = [VARYING.sub("<varies>", i["output"]) for i in turns[-1].body["input"]
               if i.get("type") == "function_call_output"]  # fmt: skip
    metadata = json.loads(reviews[0].headers["x-codex-turn-metadata"])
    return {
        "seen": json.loads(json.dumps(seen).replace(str(cwd), "<cwd>")),
        "server_requests": asked,
        "model_reads": outputs,
        "review_requests": len(reviews),
        "verdict_format": reviews[0].body["text"],
        "subagent": reviews[0].headers.get("x-openai-subagent"),
        "prompt_cache_key": reviews[0].body["prompt_cache_key"] == f"guardian:{thread_id}",
        "metadata": {
            key: metadata.get(key) for key in ("subagent_kind", "thread_source", "turn_trigger")
        },
        "made": (cwd / "made.txt").exists(),
    }


@pytest.mark.parametrize("answer", ["allow", "deny", "invalid"])
def test_a_review_matches_the_reference(tmp_path: Path, answer: str) -> None:
    assert REFERENCE is not None
    ours = session(server_command(), tmp_path / "ours", answer)
    theirs = session(REFERENCE, tmp_path / "reference", answer)
    assert ours == theirs
    # What the comparison pins down, spelled out.
    assert ours["server_requests"] == []
    assert ours["made"] is (answer == "allow")
    assert ours["review_requests"] == (3 if answer == "invalid" else 1)
    statuses = [n["params"]["status"] for n in ours["seen"]
                if n["method"] == "thread/status/changed"]  # fmt: skip
    assert all("waitingOnApproval" not in s.get("activeFlags", []) for s in statuses)
    done = next(n for n in ours["seen"] if n["method"] == "item/autoApprovalReview/completed")
    assert done["params"]["review"]["status"] == ("approved" if answer == "allow" else "denied")
