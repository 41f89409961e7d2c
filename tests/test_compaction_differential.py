"""Compaction, ours against the official server, each pointed at a scripted model server.

The same script (turn "one", ``thread/compact/start``, turn "two", and a turn over the
automatic limit) runs against both; compared, after masking ids and times: the compaction
turn's notifications, and what the model is sent (the summarization request and the turn
after it; the reference's own context messages, its instructions and tool set are its own and
left out). Then each server resumes the thread the other compacted, and the model must read
the same history from either.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from test_threads_differential import Masker

from codex_core.config.listing import trust_hash
from codex_core.testing import (
    ModelResponse,
    ScriptedModelServer,
    function_call,
    http_error,
    message,
)
from codex_core.testing.model_server import RecordedRequest, default_usage
from codex_core.testing.pytest_plugin import StdioServer, server_command
from codex_core.testing.reference import reference_server_command

REFERENCE = reference_server_command()

pytestmark = pytest.mark.skipif(
    REFERENCE is None,
    reason="the official server is not installed (python -m codex_core.testing.reference)",
)

#: About the server's environment, not the compaction.
ENVIRONMENTAL = {"warning", "account/rateLimits/updated", "configWarning",
                 "remoteControl/status/changed", "thread/readState/changed"}  # fmt: skip
#: Harness context the reference puts in every request (we send none of it).
CONTEXT = ("<environment_context>",)


def model_view(request: RecordedRequest) -> list[tuple[str, str]]:
    """What the model reads that both servers send: messages (no developer or harness
    context) and tool calls, as (role or type, text)."""
    seen = []
    for item in request.body["input"]:
        if item.get("type") == "message":
            text = "".join(part.get("text", "") for part in item["content"])
            if item["role"] != "developer" and not text.startswith(CONTEXT):
                seen.append((item["role"], text))
        else:
            seen.append((item["type"], str(item.get("call_id"))))
    return seen


def start(argv: list[str], model: ScriptedModelServer, home: Path, *args: str) -> StdioServer:
    home.mkdir(parents=True, exist_ok=True)
    cwd = home.parent / "cwd"
    cwd.mkdir(exist_ok=True)
    env = {**os.environ, "CODEX_HOME": str(home), **model.env}
    server = StdioServer([*argv, *model.config_args(), *args], env, cwd)
    server.initialize(experimentalApi=True)
    return server


def turn(server: StdioServer, thread_id: str, text: str) -> None:
    params = {"threadId": thread_id, "input": [{"type": "text", "text": text}]}
    server.result("turn/start", params, timeout=30)
    completed = server.wait_notification("turn/completed", timeout=30)
    assert completed["params"]["turn"]["status"] == "completed"


def manual_session(argv: list[str], home: Path) -> dict[str, Any]:
    """Turn, compaction, turn: the compaction's notifications and the model's requests."""
    with ScriptedModelServer() as model:
        model.add(message("First answer."), message("SUMMARY TEXT"), message("After."))
        server = start(argv, model, home)
        try:
            thread_id = server.result("thread/start", {})["thread"]["id"]
            turn(server, thread_id, "one")
            server.barrier()
            server.notifications.clear()
            assert server.result("thread/compact/start", {"threadId": thread_id}) == {}
            completed = server.wait_notification("turn/completed", timeout=30)
            server.barrier()
            sent = [*server.notifications, completed]
            turn(server, thread_id, "two")
            read = server.result("thread/read", {"threadId": thread_id, "includeTurns": True})
        finally:
            server.close()
        requests = list(model.requests)
    mask = Masker()
    notifications = [mask({"method": m["method"], "params": m["params"]}) for m in sent
                     if m["method"] not in ENVIRONMENTAL]  # fmt: skip
    for note in notifications:  # the new history's size is each server's own estimate
        usage = note["params"].get("tokenUsage")
        if usage and usage["last"]["inputTokens"] == 0:
            usage["last"]["totalTokens"] = "<estimate>"
    return {
        "thread_id": thread_id,
        "notifications": notifications,
        "turns": Masker()(read["thread"]["turns"]),
        "summarize_tools": requests[1].body["tools"],
        "summarize": model_view(requests[1]),
        "after": model_view(requests[2]),
    }


def auto_session(argv: list[str], home: Path) -> list[list[tuple[str, str]]]:
    """A turn over the limit whose tool call needs a follow-up, then another turn."""
    with ScriptedModelServer() as model:
        usage = default_usage(input_tokens=500)
        call = function_call("no_such_tool", {}, call_id="c1")
        model.add(ModelResponse([call], usage=usage), message("SUMMARY"), message("Done."),
                  ModelResponse([message("Big.")], usage=usage), message("SUMMARY 2"),
                  message("Last."))  # fmt: skip
        server = start(argv, model, home, "-c", "model_auto_compact_token_limit=100")
        try:
            thread_id = server.result("thread/start", {})["thread"]["id"]
            turn(server, thread_id, "one")
            turn(server, thread_id, "two")
            turn(server, thread_id, "three")
        finally:
            server.close()
        return [model_view(request) for request in model.requests]


def compact_notifications(server: StdioServer, thread_id: str) -> list[dict[str, Any]]:
    """``thread/compact/start`` to its ``turn/completed``: the notifications, masked."""
    server.barrier()
    server.notifications.clear()
    assert server.result("thread/compact/start", {"threadId": thread_id}) == {}
    completed = server.wait_notification("turn/completed", timeout=30)
    server.barrier()
    mask = Masker()
    sent = [*server.notifications, completed]
    masked = [mask({"method": m["method"], "params": m["params"]})
              for m in sent if m["method"] not in ENVIRONMENTAL]  # fmt: skip
    for note in masked:
        usage = note["params"].get("tokenUsage")
        if usage and usage["last"]["inputTokens"] == 0:
            usage["last"]["totalTokens"] = "<estimate>"
    return masked


def fresh_and_long_session(argv: list[str], home: Path) -> dict[str, Any]:
    """A compaction before any turn, then long messages over the budget of what is kept."""
    with ScriptedModelServer() as model:
        model.add(*(message(f"A{n}") for n in range(8)))
        server = start(argv, model, home)
        try:
            thread_id = server.result("thread/start", {})["thread"]["id"]
            fresh = compact_notifications(server, thread_id)
            for text in ("é" * 30001 + "Z", "a" * 20000, "b" * 15000, "word " * 20000):
                turn(server, thread_id, text)
            compact_notifications(server, thread_id)
            turn(server, thread_id, "two")
        finally:
            server.close()
        return {"fresh": fresh, "views": [model_view(request) for request in model.requests]}


def failed_session(argv: list[str], home: Path) -> list[dict[str, Any]]:
    """A compaction whose summarization request the API refuses: its notifications."""
    with ScriptedModelServer() as model:
        model.add(message("First."), http_error(400, "bad request", type="invalid_request"))
        server = start(argv, model, home)
        try:
            thread_id = server.result("thread/start", {})["thread"]["id"]
            turn(server, thread_id, "one")
            return compact_notifications(server, thread_id)
        finally:
            server.close()


#: A PreCompact / PostCompact hook: logs its stdin next to it, then answers as argv[2] says.
HOOK = r"""
import json, os, sys
data = json.loads(sys.stdin.read())
with open(os.path.join(os.path.dirname(__file__), "log.jsonl"), "a") as log:
    log.write(json.dumps(data) + "\n")
mode = sys.argv[2]
if mode == "json":
    print(json.dumps({"systemMessage": "note"}))
elif mode == "halt" and sys.argv[1] == "PreCompact":
    print(json.dumps({"continue": False, "stopReason": "no compaction"}))
elif mode == "exit2":
    print("refused", file=sys.stderr)
    sys.exit(2)
elif mode == "bad":
    print(json.dumps({"decision": "block", "reason": "unknown here"}))
"""


def hooks_config(home: Path, hook: Path, mode: str) -> None:
    """A trusted PreCompact and PostCompact hook in ``home``'s ``config.toml``."""
    home.mkdir(parents=True)
    plain = home / "config.toml"
    lines: list[str] = []
    states: list[str] = []
    for event, label in (("PreCompact", "pre_compact"), ("PostCompact", "post_compact")):
        command = f"{sys.executable} {hook} {event} {mode}"
        lines += [f"[[hooks.{event}]]", f"[[hooks.{event}.hooks]]", 'type = "command"',
                  f"command = {json.dumps(command)}"]  # fmt: skip
        normalized = {"type": "command", "command": command, "timeout": 600, "async": False}
        digest = trust_hash(event, None, normalized)
        states += [f'[hooks.state."{plain}:{label}:0:0"]', f"trusted_hash = {json.dumps(digest)}"]
    plain.write_text("\n".join(lines + states) + "\n")


def hooked_session(argv: list[str], root: Path, mode: str) -> dict[str, Any]:
    """A turn, then a compaction between hooks answering as ``mode`` says: the compaction's
    notifications and what the hooks read, with paths and ids masked."""
    hook = root / "hook.py"
    root.mkdir(parents=True)
    hook.write_text(HOOK)
    home = root / "home"
    hooks_config(home, hook, mode)
    with ScriptedModelServer() as model:
        model.add(message("First."), message("SUMMARY TEXT"))
        server = start(argv, model, home)
        try:
            thread_id = server.result("thread/start", {})["thread"]["id"]
            turn(server, thread_id, "one")
            sent = compact_notifications(server, thread_id)
        finally:
            server.close()
    log = root / "log.jsonl"
    read = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    for payload in read:
        payload["transcript_path"] = payload["transcript_path"] is not None
    masked = json.loads(json.dumps({"sent": sent, "read": read}).replace(str(root), "<root>"))
    return dict(Masker()(masked))


def resume_and_turn(argv: list[str], home: Path, thread_id: str) -> list[tuple[str, str]]:
    """What the model reads in a turn after resuming ``thread_id`` from ``home``."""
    with ScriptedModelServer() as model:
        model.add(message("Resumed."))
        server = start(argv, model, home)
        try:
            server.result("thread/resume", {"threadId": thread_id}, timeout=30)
            turn(server, thread_id, "three")
        finally:
            server.close()
        return model_view(model.requests[0])


def test_manual_compaction_matches_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = manual_session(server_command(), tmp_path / "ours" / "home")
    theirs = manual_session(REFERENCE, tmp_path / "reference" / "home")
    assert ours["notifications"] == theirs["notifications"]
    assert ours["turns"] == theirs["turns"]
    assert ours["summarize_tools"] == theirs["summarize_tools"] == []
    assert ours["summarize"] == theirs["summarize"]
    assert ours["after"] == theirs["after"]


def test_auto_compaction_matches_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = auto_session(server_command(), tmp_path / "ours" / "home")
    theirs = auto_session(REFERENCE, tmp_path / "reference" / "home")
    # Our tool set differs (no_such_tool is unknown to both): compare the call's output kind
    # and the messages.
    assert ours == theirs


def test_each_server_resumes_the_other_s_compacted_thread(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours_home, theirs_home = tmp_path / "ours" / "home", tmp_path / "reference" / "home"
    ours = manual_session(server_command(), ours_home)
    theirs = manual_session(REFERENCE, theirs_home)
    # Swap the rollouts: each server resumes the thread the other one compacted.
    for source, target in ((ours_home, tmp_path / "x" / "home"),
                           (theirs_home, tmp_path / "y" / "home")):  # fmt: skip
        shutil.copytree(source / "sessions", target / "sessions")
    by_reference = resume_and_turn(REFERENCE, tmp_path / "x" / "home", ours["thread_id"])
    by_us = resume_and_turn(server_command(), tmp_path / "y" / "home", theirs["thread_id"])
    summary = theirs["after"][1]
    expected = [("user", "one"), summary, ("user", "two"), ("assistant", "After."),
                ("user", "three")]  # fmt: skip
    assert by_reference == expected
    assert by_us == expected


def test_compaction_before_any_turn_and_of_long_messages_matches(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = fresh_and_long_session(server_command(), tmp_path / "ours" / "home")
    theirs = fresh_and_long_session(REFERENCE, tmp_path / "reference" / "home")
    assert ours["fresh"] == theirs["fresh"]
    assert ours["views"] == theirs["views"]


def test_a_failed_compaction_matches_the_reference(tmp_path: Path) -> None:
    """The same notifications; what the error says is the provider's mapping of a 400, which
    differs for any model request (not compared here)."""
    assert REFERENCE is not None
    ours = failed_session(server_command(), tmp_path / "ours" / "home")
    theirs = failed_session(REFERENCE, tmp_path / "reference" / "home")
    for sent in (ours, theirs):
        for note in sent:
            params = note["params"]
            if "error" in params:
                params["error"] = "<error>"
            if "turn" in params and params["turn"]["error"] is not None:
                params["turn"]["error"] = "<error>"
    assert ours == theirs


@pytest.mark.parametrize("mode", ["json", "halt", "exit2", "bad"])
def test_compaction_hooks_match_the_reference(tmp_path: Path, mode: str) -> None:
    """PreCompact and PostCompact hooks: when they run, what they read, how their output is
    reported, and a PreCompact ``continue: false`` cancelling the compaction."""
    assert REFERENCE is not None
    ours = hooked_session(server_command(), tmp_path / "ours", mode)
    theirs = hooked_session(REFERENCE, tmp_path / "reference", mode)
    assert ours == theirs
    events = [payload["hook_event_name"] for payload in ours["read"]]
    assert events == (["PreCompact"] if mode == "halt" else ["PreCompact", "PostCompact"])
    assert ours["read"][0]["trigger"] == "manual"
