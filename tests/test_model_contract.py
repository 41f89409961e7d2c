"""The typed model contract through the public surface: a plugin whose ``ModelProvider``
yields ``ModelEvent``s (``tests/fixtures/codex_typed_model_plugin.py``, installed as a real
distribution, with the OpenAI plugin disabled) drives real turns of a server over stdio.

What the plugin yields must become the same notifications a Responses API stream does (text
and reasoning deltas, a tool call round trip, usage, served model, rate limits), and its
failures the turn's errors, with their kinds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing.pytest_plugin import ServerFactory, StdioServer, write_distribution

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "tests" / "fixtures" / "codex_typed_model_plugin.py"
CONFIG = ("-c", 'model_provider="typed"', "-c", 'model_providers.typed={name="typed"}',
          "-c", 'model="typed-model"', "--disable-plugin", "openai")  # fmt: skip


@pytest.fixture
def requests_log(tmp_path: Path) -> Path:
    return tmp_path / "model-requests.jsonl"


@pytest.fixture
def server(
    codex_server_factory: ServerFactory, codex_plugin_site: Path, requests_log: Path
) -> StdioServer:
    write_distribution(codex_plugin_site, "codex-typed-model-plugin", PLUGIN.read_text())
    started = codex_server_factory(*CONFIG, env={"TYPED_MODEL_LOG": str(requests_log)})
    started.initialize()
    return started


def requests(log: Path) -> list[dict[str, Any]]:
    """The ``ModelRequest``s the provider received, as dicts."""
    return [json.loads(line) for line in log.read_text().splitlines()]


def start_thread(server: StdioServer) -> str:
    return str(server.result("thread/start", {})["thread"]["id"])


def run_turn(server: StdioServer, thread_id: str, text: str) -> dict[str, Any]:
    """Run a turn; its ``turn/completed`` turn (every notification stays in the list)."""
    text_input = [{"type": "text", "text": text, "text_elements": []}]
    server.result("turn/start", {"threadId": thread_id, "input": text_input})
    completed = server.wait_notification("turn/completed", timeout=20)
    return dict(completed["params"]["turn"])


def params(server: StdioServer, method: str) -> list[dict[str, Any]]:
    return [n["params"] for n in server.notifications if n["method"] == method]


def test_text_reasoning_usage_served_model_and_rate_limits(
    server: StdioServer, requests_log: Path
) -> None:
    thread_id = start_thread(server)
    turn = run_turn(server, thread_id, "say hello there")
    assert turn["status"] == "completed", turn
    assert [p["delta"] for p in params(server, "item/agentMessage/delta")] == ["hello", " there"]
    assert [p["delta"] for p in params(server, "item/reasoning/summaryTextDelta")] == ["Thinking."]
    assert [p["summaryIndex"] for p in params(server, "item/reasoning/summaryPartAdded")] == [0]
    completed = [p["item"] for p in params(server, "item/completed")]
    assert [(i["type"], i.get("text") or i.get("summary")) for i in completed] == [
        ("userMessage", None), ("reasoning", ["Thinking."]), ("agentMessage", "hello there"),
    ]  # fmt: skip
    (rerouted,) = params(server, "model/rerouted")
    assert (rerouted["fromModel"], rerouted["toModel"]) == ("typed-model", "typed-model-safe")
    (usage,) = params(server, "thread/tokenUsage/updated")
    assert usage["tokenUsage"]["last"] == {
        "totalTokens": 120, "inputTokens": 100, "cachedInputTokens": 40,
        "cacheWriteInputTokens": 0, "outputTokens": 20, "reasoningOutputTokens": 5,
    }  # fmt: skip
    (limits,) = params(server, "account/rateLimits/updated")
    assert limits["rateLimits"]["primary"]["usedPercent"] == 42
    (sent,) = requests(requests_log)
    assert (sent["provider_id"], sent["model"], sent["thread_id"], sent["prompt_cache_key"]) == (
        "typed", "typed-model", thread_id, thread_id,
    )  # fmt: skip
    assert sent["originator"] == "pytest" and sent["user_agent"].startswith("pytest/")
    assert sent["instructions"] and sent["stream"] is True and sent["store"] is False
    assert "echo" in [tool.get("name") for tool in sent["tools"]]
    assert sent["input"][-1]["content"] == [{"type": "input_text", "text": "say hello there"}]


def test_a_tool_call_round_trip(server: StdioServer, requests_log: Path) -> None:
    thread_id = start_thread(server)
    turn = run_turn(server, thread_id, "call echo")
    assert turn["status"] == "completed", turn
    texts = [p["item"]["text"] for p in params(server, "item/completed")
             if p["item"]["type"] == "agentMessage"]  # fmt: skip
    assert texts == ["the tool said ping"]
    first, second = requests(requests_log)
    call, output = second["input"][-2:]
    assert (call["type"], call["call_id"], call["name"]) == ("function_call", "call_1", "echo")
    assert "status" not in call  # (history keeps a call without its stream status)
    assert output == {"type": "function_call_output", "call_id": "call_1", "output": "ping"}
    assert len(second["input"]) == len(first["input"]) + 2
    # Both responses' usage, summed, once the round trip is over.
    totals = [p["tokenUsage"]["total"]["totalTokens"]
              for p in params(server, "thread/tokenUsage/updated")]  # fmt: skip
    assert totals == [120, 240]


def test_a_failure_keeps_its_kind(server: StdioServer) -> None:
    thread_id = start_thread(server)
    turn = run_turn(server, thread_id, "fail")
    error = {"message": "quota exhausted", "codexErrorInfo": "usageLimitExceeded",
             "additionalDetails": None}  # fmt: skip
    assert turn["status"] == "failed" and turn["error"] == error
    (notified,) = params(server, "error")
    assert notified["error"] == error and notified["willRetry"] is False
    # The limits the failure carries are shown first, as the reference shows a usage limit's.
    methods = [n["method"] for n in server.notifications]
    assert methods.index("account/rateLimits/updated") < methods.index("error")
    (limits,) = params(server, "account/rateLimits/updated")
    assert limits["rateLimits"]["primary"]["usedPercent"] == 42


def test_a_stream_that_stops_early_is_a_disconnect(server: StdioServer) -> None:
    thread_id = start_thread(server)
    turn = run_turn(server, thread_id, "stop early")
    assert turn["status"] == "failed"
    assert turn["error"] == {
        "message": "stream disconnected before completion: stream closed before response.completed",
        "codexErrorInfo": {"responseStreamDisconnected": {"httpStatusCode": None}},
        "additionalDetails": None,
    }
