"""The goal runtime's accounting, on codex-core alone (the differential tests in
``test_thread_goals_differential.py`` cover the rest against the reference)."""

from __future__ import annotations

import os
from pathlib import Path

from codex_core.testing import ModelResponse, ScriptedModelServer, message
from codex_core.testing.pytest_plugin import StdioServer, server_command


def test_a_goal_turn_counts_its_time_and_tokens(tmp_path: Path) -> None:
    """A goal turn whose model takes over a second counts that second; reaching the token
    budget stops the goal as ``budgetLimited``, announced with the turn's id."""
    home = tmp_path / "home"
    home.mkdir()
    with ScriptedModelServer() as model:
        model.add(ModelResponse([message("slow work")], stall=1.2))
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer([*server_command(), *model.config_args()], env, tmp_path)
        try:
            server.initialize()
            thread_id = server.result("thread/start", {})["thread"]["id"]
            goal = {"threadId": thread_id, "objective": "Ship it", "tokenBudget": 10}
            server.result("thread/goal/set", goal)
            turn = server.wait_notification("turn/started", timeout=30)["params"]["turn"]
            notice = server.wait_notification(
                "thread/goal/updated", timeout=30, where=lambda p: p["turnId"] is not None
            )["params"]
            server.wait_notification("turn/completed", timeout=30)
            server.barrier()
            assert not [n for n in server.notifications if n["method"] == "turn/started"]
        finally:
            server.close()
    assert notice["turnId"] == turn["id"]
    assert notice["goal"]["status"] == "budgetLimited"
    assert notice["goal"]["tokensUsed"] == 15  # the scripted model's usage
    assert notice["goal"]["timeUsedSeconds"] >= 1
    # The goal turn read the continuation prompt, with the objective and the budget left.
    prompt = model.requests[0].body["input"][-1]["content"][0]["text"]
    assert prompt.startswith('<codex_internal_context source="goal">')
    assert "Objective: Ship it" in prompt and "budget: 10; remaining: 10" in prompt
