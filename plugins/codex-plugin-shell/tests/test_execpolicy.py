"""Exec policy rules: parsing, deciding, and an approval that amends them, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_plugin_shell.execpolicy import append_allow, decide, load_rules, parse_rules

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call

RULES = """
# comments are fine
prefix_rule(pattern=["git", ["status", "log"]], decision="allow")
prefix_rule(pattern=["git", "push"], decision="prompt")
prefix_rule(pattern=["rm"], decision="forbidden")
prefix_rule(pattern=["touch"])
something_else()
"""


def test_rules_decide_the_strictest_and_need_every_part_allowed() -> None:
    rules = parse_rules(RULES)
    assert len(rules) == 4  # the unknown call is skipped
    assert decide(rules, [["git", "status", "-s"]]) == "allow"
    assert decide(rules, [["git", "log"], ["touch", "x"]]) == "allow"
    assert decide(rules, [["git", "status"], ["make"]]) is None
    assert decide(rules, [["git", "push", "origin"]]) == "prompt"
    assert decide(rules, [["git", "status"], ["rm", "-rf", "x"]]) == "forbidden"
    assert decide(rules, []) is None
    assert parse_rules("prefix_rule(pattern=[") == []  # a syntax error skips the file


def test_append_allow_round_trips(tmp_path: Path) -> None:
    append_allow(tmp_path, ["touch", 'it\'s "quoted"'])
    (rule,) = load_rules(tmp_path)
    assert rule.decision == "allow" and rule.matches(["touch", 'it\'s "quoted"', "more"])


def test_an_amended_approval_lets_the_prefix_run_without_asking_next_time(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, codex_home: Path
) -> None:
    escalated = {"cmd": "touch amended.txt", "sandbox_permissions": "require_escalated"}
    codex_model_server.add(
        ModelResponse([function_call("exec_command", escalated)]),
        "first done",
        ModelResponse([function_call("exec_command", escalated)]),
        "second done",
    )
    server = codex_server_factory(
        *codex_model_server.config_args(), "-c", 'approval_policy="on-request"',
        env=codex_model_server.env,
    )  # fmt: skip
    server.initialize()
    thread = server.result("thread/start", {})["thread"]["id"]
    go = {"threadId": thread, "input": [{"type": "text", "text": "go"}]}
    server.result("turn/start", go)
    request = server.wait_server_request("item/commandExecution/requestApproval")
    amendment = request["params"]["proposedExecpolicyAmendment"]
    assert amendment == ["touch", "amended.txt"]
    decision = {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": amendment}}
    server.send({"id": request["id"], "result": {"decision": decision}})
    server.wait_notification("turn/completed")
    rules = (codex_home / "rules" / "default.rules").read_text()
    assert rules == 'prefix_rule(pattern=["touch", "amended.txt"], decision="allow")\n'
    server.result("turn/start", go)
    server.wait_notification("turn/completed")
    assert server.server_requests == []  # the rule answered this time
