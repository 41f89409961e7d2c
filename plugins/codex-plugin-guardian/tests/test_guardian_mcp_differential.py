"""The guardian reviewing an MCP tool call, ours against the official server: both plugins end
to end, with the same scripted model and a real MCP server built with the official SDK (one
tool that may write, one resource).

One turn calls the tool (reviewed: allow, deny, or an answer that is not a verdict), then
reads the resource and an unknown URI with ``read_mcp_resource`` (not reviewed: reading is
safe). Compared, ids and times masked: every notification the client sees about the turn, in
order (the thread's status changes, the review's start and end, the ``mcpToolCall`` items, the
turn's start and end) with their values, the server requests (none: the guardian decides
alone), what the model reads of each call, and how many reviews were asked for. The review
prompt is each server's own and left out.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call, message
from codex_core.testing.model_server import RecordedRequest
from codex_core.testing.pytest_plugin import StdioServer, server_command
from codex_core.testing.reference import reference_server_command

pytest.importorskip("codex_plugin_mcp")

REFERENCE = reference_server_command()

pytestmark = pytest.mark.skipif(
    REFERENCE is None,
    reason="the official server is not installed (python -m codex_core.testing.reference)",
)

SERVER = """
from mcp.server.mcpserver import MCPServer

server = MCPServer("db")


@server.tool(description="Drop a table of the database.")
def drop_table(name: str) -> str:
    return f"dropped {name}"


@server.resource("db://schema", description="The database schema.", mime_type="text/plain")
def schema() -> str:
    return "table scratch (id integer)"


server.run("stdio")
"""
IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMES = {"startedAtMs", "completedAtMs", "durationMs", "startedAt", "completedAt"}
WALL = re.compile(r"Wall time: \d+\.\d{4} seconds")
#: What the client sees of the turn (``item/*`` only for the MCP calls: the user's message
#: and the model's answer are no part of this comparison).
SEEN = {"thread/status/changed", "turn/started", "turn/completed", "guardianWarning",
        "item/autoApprovalReview/started", "item/autoApprovalReview/completed"}  # fmt: skip
ANSWERS = {
    "allow": {"risk_level": "low", "user_authorization": "high", "outcome": "allow",
              "rationale": "Drops the scratch table the user named."},
    "deny": {"risk_level": "high", "user_authorization": "low", "outcome": "deny",
             "rationale": "Dropping tables loses data."},
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
        value = WALL.sub("Wall time: <wall> seconds", value)
        return IDS.sub(lambda m: ids.setdefault(m.group(0), f"<id{len(ids) + 1}>"), value)
    return value


def session(argv: list[str], base: Path, answer: str) -> dict[str, Any]:
    """One turn: a reviewed MCP call, then two resource reads; what the client and the model
    saw, masked."""
    home, cwd = base / "home", base / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir()
    script = base / "db_server.py"
    script.write_text(SERVER)
    with ScriptedModelServer() as model:
        text = json.dumps(ANSWERS[answer]) if answer in ANSWERS else "not json at all"
        model.answer_matching(is_review, message(text))
        read = {"server": "db", "uri": "db://schema"}
        calls = [
            function_call("drop_table", {"name": "scratch"}, call_id="c_db", namespace="mcp__db"),
            function_call("read_mcp_resource", read, call_id="c_read"),
            function_call("read_mcp_resource", {**read, "uri": "db://nope"}, call_id="c_nope"),
        ]
        model.add(*(ModelResponse([call]) for call in calls), ModelResponse([message("done")]))
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        table = f'mcp_servers.db={{command="{sys.executable}", args=["{script}"]}}'
        server = StdioServer(
            [*argv, *model.config_args(), "-c", table, "-c", 'approval_policy="on-request"',
             "-c", 'approvals_reviewer="guardian_subagent"'],
            env, cwd,
        )  # fmt: skip
        try:
            server.initialize(experimentalApi=True)
            thread_id = server.result("thread/start", {"cwd": str(cwd)})["thread"]["id"]
            server.wait_notification(
                "mcpServer/startupStatus/updated", 60, where=lambda p: p["status"] == "ready"
            )
            before = len(server.notifications)
            turn = {"threadId": thread_id, "input": [{"type": "text", "text": "drop scratch"}]}
            server.result("turn/start", turn, timeout=30)
            completed = server.wait_notification("turn/completed", timeout=90)
            assert completed["params"]["turn"]["status"] == "completed"
            server.barrier()
            sent = [*server.notifications[before:], completed]
            asked = list(server.server_requests)
        finally:
            server.close()
        requests = list(model.requests)
    ids: dict[str, str] = {}
    seen = []
    for note in sent:
        params = dict(note["params"])
        item = params.get("item") or {}
        if note["method"] in ("item/started", "item/completed"):
            if item.get("type") != "mcpToolCall":
                continue
        elif note["method"] not in SEEN:
            continue
        if note["method"] == "turn/completed":
            params["turn"] = {"status": params["turn"]["status"]}
        seen.append(mask({"method": note["method"], "params": params}, ids))
    reviews = [r for r in requests if is_review(r)]
    turns = [r for r in requests if not is_review(r)]
    reads = {i["call_id"]: i["output"] for i in turns[-1].body["input"]
             if i.get("type") == "function_call_output"}  # fmt: skip
    return {
        "seen": json.loads(json.dumps(seen).replace(str(cwd), "<cwd>")),
        "server_requests": asked,
        "model_reads": mask(reads, ids),
        "review_requests": len(reviews),
    }


@pytest.mark.parametrize("answer", ["allow", "deny", "invalid"])
def test_a_reviewed_mcp_call_matches_the_reference(tmp_path: Path, answer: str) -> None:
    assert REFERENCE is not None
    ours = session(server_command(), tmp_path / "ours", answer)
    theirs = session(REFERENCE, tmp_path / "reference", answer)
    assert [n["method"] for n in ours["seen"]] == [n["method"] for n in theirs["seen"]]
    for mine, their in zip(ours["seen"], theirs["seen"], strict=True):
        assert mine == their
    for key in ("server_requests", "model_reads", "review_requests"):
        assert ours[key] == theirs[key], key
    # What the comparison pins down, spelled out.
    assert ours["server_requests"] == []
    assert ours["review_requests"] == (3 if answer == "invalid" else 1)
    done = next(n for n in ours["seen"] if n["method"] == "item/autoApprovalReview/completed")
    assert done["params"]["review"]["status"] == ("approved" if answer == "allow" else "denied")
    reads = ours["model_reads"]
    assert '"text":"table scratch (id integer)"' in reads["c_read"]
    assert "Unknown resource: db://nope" in reads["c_nope"]
