"""MCP tool calls that need approval are reviewed by the guardian like commands: a real MCP
server (the official SDK, over stdio) and the MCP plugin, with the scripted model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from codex_plugin_guardian.reviewer import OVERRIDE_NOTE
from test_guardian import FINAL, assert_valid, is_review, reviews, start, verdict
from test_guardian_flows import text

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call, message

pytest.importorskip("codex_plugin_mcp")

SERVER = """
from mcp.server.mcpserver import MCPServer

server = MCPServer("db")


@server.tool(description="Drop a table of the database.")
def drop_table(name: str) -> str:
    return f"dropped {name}"


server.run("stdio")
"""


@pytest.mark.parametrize("decision", ["allow", "deny"])
def test_an_mcp_tool_call_is_reviewed(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path,
    decision: str,
) -> None:  # fmt: skip
    script = tmp_path / "db_server.py"
    script.write_text(SERVER)
    model = codex_model_server
    model.answer_matching(
        is_review,
        message(
            verdict(
                decision,
                "low" if decision == "allow" else "high",
                "Drops the scratch table the user named.",
            )
        ),
    )
    model.add(
        ModelResponse([function_call("mcp__db__drop_table", {"name": "scratch"}, call_id="c_db")]),
        ModelResponse([message(FINAL)]),
    )
    table = f'mcp_servers.db={{command="{sys.executable}", args=["{script}"]}}'
    server = start(codex_server_factory, model, "-c", table)
    server.result("mcpServerStatus/list", {}, timeout=30)
    thread = server.result("thread/start", {"cwd": str(tmp_path)})["thread"]["id"]
    server.result("turn/start", {"threadId": thread, "input": text("drop scratch")})
    completed = server.wait_notification("turn/completed", 30)["params"]
    assert completed["turn"]["status"] == "completed"
    assert server.server_requests == []  # no elicitation reached the client
    started, done = reviews(server)
    assert_valid([started, done])
    assert started["params"]["targetItemId"] == "c_db"
    assert started["params"]["action"] == {
        "type": "mcpToolCall", "server": "db", "toolName": "drop_table",
        "connectorId": None, "connectorName": None, "toolTitle": None,
    }  # fmt: skip
    (review,) = [r for r in model.requests if is_review(r)]
    assert '"scratch"' in review.input_texts()[0]  # the call's arguments were reviewed
    (item,) = [n["params"]["item"] for n in server.notifications
               if n["method"] == "item/completed"
               and n["params"]["item"]["type"] == "mcpToolCall"]  # fmt: skip
    if decision == "allow":
        assert done["params"]["review"]["status"] == "approved"
        assert item["status"] == "completed"
        assert item["result"]["content"] == [{"type": "text", "text": "dropped scratch"}]
    else:
        assert done["params"]["review"]["status"] == "denied"
        assert item["status"] == "failed"
        # The guardian's words, as in the reference (test_guardian_mcp_differential.py).
        assert item["error"]["message"].startswith(
            "This action was rejected due to unacceptable risk.\n"
            "Reason: Drops the scratch table the user named.\n"
        )


def test_a_denied_mcp_call_can_be_overridden(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    """The client sends the denial back in the core spelling (``mcp_tool_call``,
    ``tool_name``); the retry's review is told the user approved it."""
    script = tmp_path / "db_server.py"
    script.write_text(SERVER)
    model = codex_model_server
    model.answer_matching(
        lambda r: is_review(r) and OVERRIDE_NOTE in r.input_texts()[0],
        message(verdict("allow", "medium", "The user approved it.")),
    )
    model.answer_matching(is_review, message(verdict("deny", "high", "No.")))
    call = function_call("mcp__db__drop_table", {"name": "scratch"}, call_id="c_1")
    again = function_call("mcp__db__drop_table", {"name": "scratch"}, call_id="c_2")
    model.add(ModelResponse([call]), ModelResponse([message("denied")]),
              ModelResponse([again]), ModelResponse([message(FINAL)]))  # fmt: skip
    table = f'mcp_servers.db={{command="{sys.executable}", args=["{script}"]}}'
    server = start(codex_server_factory, model, "-c", table)
    server.result("mcpServerStatus/list", {}, timeout=30)
    thread = server.result("thread/start", {"cwd": str(tmp_path)})["thread"]["id"]

    def turn(ask: str) -> None:
        server.result("turn/start", {"threadId": thread, "input": text(ask)})
        completed = server.wait_notification("turn/completed", 30)["params"]
        assert completed["turn"]["status"] == "completed"

    turn("drop scratch")
    (denied,) = [n["params"] for n in reviews(server) if n["method"].endswith("completed")]
    action = {"type": "mcp_tool_call", "server": "db", "tool_name": "drop_table"}
    event = {"id": denied["reviewId"], "status": "denied", "turn_id": denied["turnId"],
             "action": action}  # fmt: skip
    server.result("thread/approveGuardianDeniedAction", {"threadId": thread, "event": event})
    turn("yes, really")
    statuses = [n["params"]["review"]["status"] for n in reviews(server)
                if n["method"].endswith("completed")]  # fmt: skip
    assert statuses == ["denied", "approved"]
    items = {n["params"]["item"]["id"]: n["params"]["item"]["status"]
             for n in server.notifications if n["method"] == "item/completed"
             and n["params"]["item"]["type"] == "mcpToolCall"}  # fmt: skip
    assert items == {"c_1": "failed", "c_2": "completed"}
    assert server.server_requests == []
