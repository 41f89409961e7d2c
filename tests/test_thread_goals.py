"""Goals and settings on codex-core alone: the goal runtime's accounting, and who hears what
with two clients (the differential tests in ``test_thread_goals_differential.py`` and
``test_thread_settings_differential.py`` compare the rest with the reference)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest

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


async def _drain(client: Any) -> list[str]:
    """The notifications that reached ``client`` so far: a request's reply comes after every
    notification queued for it before (one connection's messages leave in order), and the
    client has put those in its notification stream by the time the reply is read."""
    await client.request("thread/loaded/list", {})
    seen: list[str] = []
    while True:
        try:
            method, _ = client._notify_receive.receive_nowait()
        except anyio.WouldBlock:
            return seen
        seen.append(method)


@pytest.mark.anyio
async def test_who_hears_settings_and_goals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the reference: ``thread/settings/updated`` only reaches subscribers of the
    experimental API; goal notices reach every subscriber, and ``thread/resume`` tells them
    all the goal (here: that there is none)."""
    from codex_core.kernel import Kernel

    with ScriptedModelServer() as model:
        monkeypatch.setenv(model.env_key, model.api_key)
        model.add(message("hi"))
        kernel = Kernel(codex_home=tmp_path, config_overrides=model.config_args()[1::2])
        async with kernel, kernel.connect() as a, kernel.connect() as b:
            await a.initialize("a", "1", experimental_api=True)
            await b.initialize("b", "1")
            thread_id = (await a.request("thread/start", {}))["thread"]["id"]
            text = [{"type": "text", "text": "hi"}]
            await a.request("turn/start", {"threadId": thread_id, "input": text})
            await a.wait_for("turn/completed")
            await b.request("thread/resume", {"threadId": thread_id, "excludeTurns": True})
            assert "thread/goal/cleared" in await _drain(a)
            assert "thread/goal/cleared" in await _drain(b)
            await a.request("thread/settings/update", {"threadId": thread_id, "model": "other"})
            assert "thread/settings/updated" in await _drain(a)
            assert "thread/settings/updated" not in await _drain(b)
            goal = {"threadId": thread_id, "objective": "Ship it", "status": "paused"}
            await b.request("thread/goal/set", goal)
            assert "thread/goal/updated" in await _drain(a)
            assert "thread/goal/updated" in await _drain(b)
