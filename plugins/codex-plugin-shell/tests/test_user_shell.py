"""``thread/shellCommand``: the user's own command, as a turn of its own or inside a running one."""

from __future__ import annotations

from typing import Any

from codex_core.testing import ModelResponse, ScriptedModelServer, message


def start(factory: Any, model: ScriptedModelServer) -> tuple[Any, str]:
    server = factory(*model.config_args(), env=model.env)
    server.initialize()
    return server, server.result("thread/start", {})["thread"]["id"]


def test_an_idle_thread_runs_the_command_in_a_turn_of_its_own(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer
) -> None:
    server, thread = start(codex_server_factory, codex_model_server)
    command = "echo hi | tr a-z A-Z; echo oops >&2; exit 3"
    assert server.result("thread/shellCommand", {"threadId": thread, "command": command}) == {}
    started = server.wait_notification("turn/started")["params"]["turn"]
    item = server.wait_notification("item/started")["params"]["item"]
    assert item["source"] == "userShell" and item["status"] == "inProgress"
    assert item["command"].endswith(" -lc 'echo hi | tr a-z A-Z; echo oops >&2; exit 3'")
    done = server.wait_notification("item/completed")["params"]["item"]
    assert done["status"] == "failed" and done["exitCode"] == 3
    assert done["aggregatedOutput"] == "HI\noops\n" and done["processId"] is None
    turn = server.wait_notification("turn/completed")["params"]["turn"]
    assert turn["id"] == started["id"] and turn["status"] == "completed" and turn["items"] == []
    # the model reads it in the next turn
    codex_model_server.add(ModelResponse([message("seen")]))
    server.result("turn/start", {"threadId": thread, "input": [{"type": "text", "text": "and?"}]})
    server.wait_notification("turn/completed")
    first = codex_model_server.requests[0].body["input"][0]["content"][0]["text"]
    assert first.startswith("<user_shell_command>\n<command>\n" + command)
    assert "Exit code: 3" in first and "HI\noops" in first
    # and it is history: listed with the turn that ran it
    turns = server.result("thread/turns/list", {"threadId": thread, "sortDirection": "asc",
                                                "itemsView": "full"})["data"]  # fmt: skip
    assert turns[0]["items"][0]["source"] == "userShell"


def test_timeouts_and_bad_requests(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer
) -> None:
    server, thread = start(codex_server_factory, codex_model_server)
    server.result("thread/shellCommand", {"threadId": thread, "command": "sleep 5",
                                          "timeoutMs": 200})  # fmt: skip
    done = server.wait_notification("item/completed")["params"]["item"]
    assert done["status"] == "failed" and "timed out" in done["aggregatedOutput"]
    assert server.error("thread/shellCommand", {"threadId": thread, "command": "  "}) == {
        "code": -32600,
        "message": "command must not be empty",
    }
    unknown = "019a0000-0000-7000-8000-000000000000"
    error = server.error("thread/shellCommand", {"threadId": unknown, "command": "true"})
    assert error == {"code": -32600, "message": f"thread not found: {unknown}"}


def test_a_running_turn_gets_the_command_as_one_of_its_items(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer
) -> None:
    codex_model_server.add(ModelResponse([message("slow")], stall=2))
    server, thread = start(codex_server_factory, codex_model_server)
    go = {"threadId": thread, "input": [{"type": "text", "text": "go"}]}
    turn = server.result("turn/start", go)["turn"]
    server.wait_notification("turn/started")
    server.result("thread/shellCommand", {"threadId": thread, "command": "echo beside"})
    while True:
        params = server.wait_notification("item/completed")["params"]
        if params["item"]["type"] == "commandExecution":
            break
    assert params["turnId"] == turn["id"] and params["item"]["aggregatedOutput"] == "beside\n"
    assert server.wait_notification("turn/completed")["params"]["turn"]["id"] == turn["id"]
