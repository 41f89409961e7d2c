"""``thread/backgroundTerminals/list|clean``: no command of the model outlives its tool call.

The value-level comparison with the reference is in
``tests/conformance/threads_background_terminals*``; this drives a real turn: even a command
the model means to leave running (a short ``yield_time_ms``) has finished when its item
completes, so the thread lists no background terminal and ``clean`` has nothing to stop.
"""

from __future__ import annotations

from typing import Any

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call


def test_the_model_s_commands_leave_no_background_terminal(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer
) -> None:
    call = function_call("exec_command", {"cmd": "sleep 0.2; echo up", "yield_time_ms": 10},
                         call_id="c1")  # fmt: skip
    codex_model_server.add(ModelResponse([call]), "done")
    server = codex_server_factory(
        *codex_model_server.config_args(), "-c", 'sandbox_mode="danger-full-access"',
        env=codex_model_server.env,
    )  # fmt: skip
    server.initialize(experimentalApi=True)
    thread = server.result("thread/start", {})["thread"]["id"]
    server.result("turn/start", {"threadId": thread, "input": [{"type": "text", "text": "go"}]})
    item = server.wait_notification(
        "item/completed", where=lambda params: params["item"]["type"] == "commandExecution"
    )["params"]["item"]
    assert item["exitCode"] == 0 and item["aggregatedOutput"] == "up\n"
    server.wait_notification("turn/completed")
    listed = {"threadId": thread}
    assert server.result("thread/backgroundTerminals/list", listed) == {
        "data": [],
        "nextCursor": None,
    }
    assert server.result("thread/backgroundTerminals/clean", listed) == {}
    assert server.result("thread/backgroundTerminals/list", listed)["data"] == []


def test_refusals(codex_server_factory: Any) -> None:
    unknown = "019a0000-0000-7000-8000-000000000000"
    plain = codex_server_factory()
    plain.initialize()
    assert plain.error("thread/backgroundTerminals/clean", {"threadId": unknown}) == {
        "code": -32600,
        "message": "thread/backgroundTerminals/clean requires experimentalApi capability",
    }
    server = codex_server_factory()
    server.initialize(experimentalApi=True)
    for method in ("thread/backgroundTerminals/list", "thread/backgroundTerminals/clean"):
        assert server.error(method, {"threadId": unknown}) == {
            "code": -32600,
            "message": f"thread not found: {unknown}",
        }
    thread = server.result("thread/start", {})["thread"]["id"]
    bad = {"threadId": thread, "cursor": "2147483648"}
    assert server.error("thread/backgroundTerminals/list", bad)["message"] == (
        "invalid cursor: number too large to fit in target type"
    )
