"""The shell plugin: its policy helpers, and a command run in a real turn (with the test kit)."""

from __future__ import annotations

import json
from typing import Any

from codex_plugin_shell.exec import amend, environment, is_safe
from codex_plugin_shell.unified_exec import truncate

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call


def test_known_read_only_commands_are_safe() -> None:
    assert is_safe("ls -la && pwd")
    assert is_safe("git status | head -5")
    assert is_safe("find . -name '*.py'")
    assert not is_safe("touch x")
    assert not is_safe("echo hi > f.txt")
    assert not is_safe("find . -delete")
    assert not is_safe("git push")
    assert not is_safe("echo $(rm -rf x)")


def test_amendment_is_the_first_simple_command() -> None:
    assert amend("touch mock-approved.txt && echo hello") == ["touch", "mock-approved.txt"]
    assert amend("echo hi > f.txt") is None


def test_environment_policy_order() -> None:
    base = {"PATH": "/bin", "HOME": "/root", "API_KEY": "k", "AWS_REGION": "x", "LANG": "C"}
    assert environment(base, {}) == {"PATH": "/bin", "HOME": "/root", "AWS_REGION": "x",
                                     "LANG": "C"}  # fmt: skip
    assert environment(base, {"ignore_default_excludes": True})["API_KEY"] == "k"
    assert environment(base, {"inherit": "core"}) == {"PATH": "/bin", "HOME": "/root"}
    assert environment(base, {"inherit": "none", "set": {"CI": 1}}) == {"CI": "1"}
    assert "AWS_REGION" not in environment(base, {"exclude": ["aws_*"]})
    assert environment(base, {"include_only": ["PATH"]}) == {"PATH": "/bin"}


def test_truncation_keeps_head_and_tail() -> None:
    text = "a" * 100 + "b" * 100
    cut = truncate(text, 10)
    assert cut.startswith("a" * 20) and cut.endswith("b" * 20) and "tokens truncated" in cut


def test_a_command_runs_in_a_turn(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer
) -> None:
    """End to end with the test kit: the model runs a command, its output comes back."""
    call = function_call("exec_command", {"cmd": "echo from-the-shell-plugin"}, call_id="c1")
    codex_model_server.add(ModelResponse([call]), "done")
    server = codex_server_factory(
        *codex_model_server.config_args(), "-c", 'sandbox_mode="danger-full-access"',
        env=codex_model_server.env,
    )  # fmt: skip
    server.initialize()
    thread = server.result("thread/start", {})["thread"]["id"]
    server.result("turn/start", {"threadId": thread, "input": [{"type": "text", "text": "go"}]})
    item = server.wait_notification(
        "item/completed", where=lambda params: params["item"]["type"] == "commandExecution"
    )["params"]["item"]
    assert item["status"] == "completed" and item["exitCode"] == 0
    assert item["aggregatedOutput"] == "from-the-shell-plugin\n"
    assert server.wait_notification("turn/completed")["params"]["turn"]["status"] == "completed"
    sent = codex_model_server.wait_for_requests(2)
    assert "from-the-shell-plugin" in json.dumps(sent[1].body["input"][-1])
