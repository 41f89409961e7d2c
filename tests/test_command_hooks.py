"""Lifecycle hooks (``codex_core.threads.command_hooks``): real hook scripts, real config files.

The expected shapes, texts and hashes are the reference's, captured with ``codex-peer
app-server`` (see ``docs/command-hooks.md``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from test_turns import assert_valid, methods, run_turn, serve, start_thread

from codex_core.config.listing import hooks_for, trust_hash
from codex_core.config.loader import Config, load_config
from codex_core.testing import ScriptedModelServer, message
from codex_core.threads.command_hooks import (
    HookHandler,
    HookOutcome,
    context_message,
    hook_handlers,
    hook_prompt_item,
    hook_prompt_message,
    hook_prompt_text,
    matches,
    run_hooks,
    session_start_input,
    stop_input,
)

#: A hook: logs its stdin, argv and cwd to log.jsonl next to it, then answers as argv[1] says.
HOOK = r"""
import json, os, sys, time
data = sys.stdin.read()
with open(os.path.join(os.path.dirname(__file__), "log.jsonl"), "a") as log:
    log.write(json.dumps({"mode": sys.argv[1], "cwd": os.getcwd(), "pid": os.getpid(),
                          "stdin": json.loads(data)}) + "\n")
mode = sys.argv[1]
active = json.loads(data).get("stop_hook_active")
if mode == "text":
    print("  remember the tests  ")
elif mode == "context":
    print(json.dumps({"hookSpecificOutput": {"hookEventName": "SessionStart",
                                             "additionalContext": "ctx from json"}}))
elif mode == "block-once" and not active:
    print(json.dumps({"decision": "block", "reason": "please also run the tests"}))
elif mode == "exit2-once" and not active:
    print("fix <this> & \"that\"", file=sys.stderr)
    sys.exit(2)
elif mode == "exit2-silent":
    sys.exit(2)
elif mode == "crash":
    raise SystemExit(3)
elif mode == "garbage":
    print("{not json")
elif mode == "unknown-key":
    print(json.dumps({"systemMessage": "m", "env": {"A": "b"}}))
elif mode == "halt":
    print(json.dumps({"continue": False, "stopReason": "halt here", "systemMessage": "note"}))
elif mode == "block-empty":
    print(json.dumps({"decision": "block", "reason": "  "}))
elif mode == "sleep":
    import subprocess
    child = subprocess.Popen(["sleep", "600"])
    with open(os.path.join(os.path.dirname(__file__), "child.pid"), "w") as out:
        out.write(str(child.pid))
    time.sleep(30)
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def hook(tmp_path: Path) -> Path:
    script = tmp_path / "hooks" / "hook.py"
    script.parent.mkdir()
    script.write_text(HOOK)
    return script


def command(hook: Path, mode: str) -> str:
    return f"{sys.executable} {hook} {mode}"


def logged(hook: Path) -> list[dict[str, Any]]:
    log = hook.parent / "log.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def write_config(home: Path, groups: list[tuple[str, str | None, dict[str, Any]]]) -> Config:
    """``config.toml`` with one matcher group per entry (event, matcher, handler), all trusted."""
    lines: list[str] = []
    for event, matcher, handler in groups:
        lines.append(f"[[hooks.{event}]]")
        if matcher is not None:
            lines.append(f"matcher = {json.dumps(matcher)}")
        lines.append(f"[[hooks.{event}.hooks]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in handler.items()]
    plain = home / "config.toml"
    for event in ("SessionStart", "Stop"):
        ours = [(matcher, handler) for name, matcher, handler in groups if name == event]
        for index, (matcher, handler) in enumerate(ours):
            normalized = {"type": "command", "command": handler["command"],
                          "timeout": handler.get("timeout", 600), "async": False}  # fmt: skip
            if "statusMessage" in handler:
                normalized["statusMessage"] = handler["statusMessage"]
            key = f"{plain}:{'session_start' if event == 'SessionStart' else 'stop'}:{index}:0"
            digest = trust_hash(event, matcher if event == "SessionStart" else None, normalized)
            lines += [f'[hooks.state."{key}"]', f"trusted_hash = {json.dumps(digest)}"]
    plain.write_text("\n".join(lines) + "\n")
    return load_config(home, cwd=home)


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie nobody reaped yet does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


async def assert_gone(*pids: int) -> None:
    """Wait, with a deadline, for killed processes to die: SIGKILL is delivered
    asynchronously, so on a loaded machine a process can still show as running just after."""
    with anyio.fail_after(10):
        while any(alive(pid) for pid in pids):
            await anyio.sleep(0.02)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def __call__(self, method: str, params: dict[str, Any]) -> None:
        self.sent.append({"method": method, "params": params})

    def summary(self) -> list[tuple[str, str, str]]:
        return [(m["method"], m["params"]["run"]["id"].split(":")[0] + ":"
                 + m["params"]["run"]["id"].split(":")[1], m["params"]["run"]["status"])
                for m in self.sent]  # fmt: skip


def start_payload(cwd: Path, source: Any = "startup") -> dict[str, Any]:
    return session_start_input(thread_id="t-1", transcript_path="/r.jsonl", cwd=str(cwd),
                               model="m", approval_policy="on-request", source=source)  # fmt: skip


def stop_payload(cwd: Path, active: bool) -> dict[str, Any]:
    return stop_input(thread_id="t-1", turn_id="u-1", transcript_path="/r.jsonl", cwd=str(cwd),
                      model="m", approval_policy="never", stop_hook_active=active,
                      last_assistant_message="done")  # fmt: skip


async def session_start(
    handlers: list[HookHandler], cwd: Path, emit: Recorder, source: Any = "startup"
) -> HookOutcome:
    return await run_hooks(handlers, "SessionStart", start_payload(cwd, source), cwd=str(cwd),
                           thread_id="t-1", turn_id="u-1", emit=emit,
                           matcher_input=source)  # fmt: skip


async def stop(handlers: list[HookHandler], cwd: Path, emit: Recorder, active: bool) -> HookOutcome:
    return await run_hooks(handlers, "Stop", stop_payload(cwd, active), cwd=str(cwd),
                           thread_id="t-1", turn_id="u-1", emit=emit)  # fmt: skip


# --------------------------------------------------------------------------- configuration


def test_trust_hashes_are_the_references(tmp_path: Path) -> None:
    """Hashes ``codex-peer`` reported in ``hooks/list`` for these two handlers."""
    session = {"type": "command", "async": False, "timeout": 600, "statusMessage": "starting up",
               "command": "HOOK_LOG=/tmp/tmpg4_6cc8f/log.jsonl python3 "
                          "/work/notes/hooks_log.py context"}  # fmt: skip
    assert trust_hash("SessionStart", None, session) == (
        "sha256:235b48db378e46ee8fa315837ed9d892ee1775b76de64473fd6289409f565dbd"
    )
    stop_handler = {"type": "command", "async": False, "timeout": 30,
                    "command": "HOOK_LOG=/tmp/tmpg4_6cc8f/log.jsonl python3 "
                               "/work/notes/hooks_log.py block-once"}  # fmt: skip
    assert trust_hash("Stop", None, stop_handler) == (
        "sha256:f2c907b11503b8f9491e7521a2a638a873a9dfffb7b03371f36f284a7ff996a9"
    )


def test_only_trusted_enabled_hooks_run(tmp_path: Path, hook: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config = write_config(home, [
        ("SessionStart", None, {"command": command(hook, "text")}),
        ("Stop", None, {"command": command(hook, "crash"), "timeout": 5,
                        "statusMessage": "checking"}),
    ])  # fmt: skip
    handlers = hook_handlers(config)
    assert [(h.event, h.run_id, h.timeout_sec, h.status_message) for h in handlers] == [
        ("SessionStart", f"session-start:0:{home / 'config.toml'}", 600, None),
        ("Stop", f"stop:1:{home / 'config.toml'}", 5, "checking"),
    ]
    text = (home / "config.toml").read_text()
    # Trusted before its command changed: no longer trusted.
    (home / "config.toml").write_text(text.replace(" crash", " garbage"))
    changed = load_config(home, cwd=home)
    assert [entry["trustStatus"] for entry in hooks_for(changed)] == ["trusted", "modified"]
    assert [h.event for h in hook_handlers(changed)] == ["SessionStart"]
    # Disabled through its state.
    key = f"{home / 'config.toml'}:session_start:0:0"
    disabled = text.replace(f'[hooks.state."{key}"]', f'[hooks.state."{key}"]\nenabled = false')
    (home / "config.toml").write_text(disabled)
    assert [h.event for h in hook_handlers(load_config(home, cwd=home))] == ["Stop"]
    # Hooks switched off altogether.
    (home / "config.toml").write_text("[features]\nhooks = false\n" + text)
    assert hook_handlers(load_config(home, cwd=home)) == []


def test_untrusted_hooks_are_listed_but_not_run(tmp_path: Path, hook: Path) -> None:
    (tmp_path / "config.toml").write_text(
        f'[[hooks.Stop]]\n[[hooks.Stop.hooks]]\ncommand = "{command(hook, "crash")}"\n'
    )
    config = load_config(tmp_path, cwd=tmp_path)
    assert [entry["eventName"] for entry in hooks_for(config)] == ["stop"]
    assert hook_handlers(config) == []


def test_matchers() -> None:
    assert matches(None, "startup") and matches("", "startup") and matches("*", "resume")
    assert matches("startup|resume", "resume") and not matches("startup|resume", "clear")
    assert not matches("start", "startup")  # a plain word matches exactly
    assert matches("^start", "startup") and not matches("^res", "startup")


@pytest.mark.anyio
async def test_session_start_matchers(tmp_path: Path, hook: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config = write_config(home, [
        ("UserPromptSubmit", "[", {"command": "true"}),  # numbered after SessionStart
        ("SessionStart", "resume", {"command": command(hook, "text")}),
        ("SessionStart", "[", {"command": command(hook, "text")}),  # invalid regex: skipped
        ("SessionStart", "^start", {"command": command(hook, "context")}),
        ("Stop", "never-matches", {"command": command(hook, "block-once")}),
    ])  # fmt: skip
    handlers = hook_handlers(config)
    # As the reference numbers them: event by event, the invalid group left out.
    assert [h.display_order for h in handlers] == [0, 1, 3]
    emit = Recorder()
    outcome = await session_start(handlers, tmp_path, emit)
    assert emit.summary() == [("hook/started", "session-start:1", "running"),
                              ("hook/completed", "session-start:1", "completed")]  # fmt: skip
    assert outcome.additional_contexts == ["ctx from json"]
    # Stop hooks ignore matchers, as the reference.
    assert (await stop(handlers, tmp_path, Recorder(), active=False)).block


# --------------------------------------------------------------------------- SessionStart


@pytest.mark.anyio
async def test_session_start_gives_the_model_context(tmp_path: Path, hook: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    config = write_config(home, [
        ("SessionStart", None, {"command": command(hook, "text"), "statusMessage": "starting"}),
        ("SessionStart", "startup", {"command": command(hook, "context")}),
    ])  # fmt: skip
    emit = Recorder()
    outcome = await session_start(hook_handlers(config), cwd, emit)
    assert emit.summary() == [
        ("hook/started", "session-start:0", "running"),
        ("hook/started", "session-start:1", "running"),
        ("hook/completed", "session-start:0", "completed"),
        ("hook/completed", "session-start:1", "completed"),
    ]
    assert_valid(emit.sent)
    first = emit.sent[2]["params"]
    assert first["threadId"] == "t-1" and first["turnId"] == "u-1"
    assert first["run"]["scope"] == "thread" and first["run"]["eventName"] == "sessionStart"
    assert first["run"]["statusMessage"] == "starting"
    assert first["run"]["sourcePath"] == str(home / "config.toml")
    assert first["run"]["entries"] == [{"kind": "context", "text": "remember the tests"}]
    assert outcome.additional_contexts == ["remember the tests", "ctx from json"]
    assert not outcome.block and not outcome.stop
    context = context_message("ctx from json")
    assert context["role"] == "developer" and context["id"].startswith("msg_")
    assert context["content"] == [{"type": "input_text", "text": "ctx from json"}]
    assert outcome.runs == [m["params"]["run"] for m in emit.sent[2:]]
    calls = logged(hook)
    assert {call["cwd"] for call in calls} == {str(cwd)}
    assert calls[0]["stdin"] == {
        "session_id": "t-1", "transcript_path": "/r.jsonl", "cwd": str(cwd),
        "hook_event_name": "SessionStart", "model": "m", "permission_mode": "default",
        "source": "startup",
    }  # fmt: skip


@pytest.mark.anyio
async def test_session_start_failures(tmp_path: Path, hook: Path) -> None:
    config = write_config(tmp_path, [
        ("SessionStart", None, {"command": command(hook, "crash")}),
        ("SessionStart", None, {"command": command(hook, "garbage")}),
        ("SessionStart", None, {"command": command(hook, "unknown-key")}),
        ("SessionStart", None, {"command": command(hook, "halt")}),
    ])  # fmt: skip
    emit = Recorder()
    outcome = await session_start(hook_handlers(config), tmp_path, emit)
    assert_valid(emit.sent)
    completed = [m["params"]["run"] for m in emit.sent if m["method"] == "hook/completed"]
    assert [(run["status"], run["entries"]) for run in completed] == [
        ("failed", [{"kind": "error", "text": "hook exited with code 3"}]),
        ("failed", [{"kind": "error", "text": "hook returned invalid session start JSON output"}]),
        ("failed", [{"kind": "error", "text": "hook returned invalid session start JSON output"}]),
        ("stopped", [{"kind": "warning", "text": "note"}, {"kind": "stop", "text": "halt here"}]),
    ]
    assert outcome.stop and outcome.stop_reason == "halt here"
    assert outcome.additional_contexts == []


# --------------------------------------------------------------------------- Stop


@pytest.mark.anyio
async def test_a_blocking_stop_hook_continues_the_turn_once(tmp_path: Path, hook: Path) -> None:
    config = write_config(tmp_path, [
        ("Stop", None, {"command": command(hook, "exit2-once")}),
        ("Stop", None, {"command": command(hook, "block-once")}),
    ])  # fmt: skip
    handlers = hook_handlers(config)
    emit = Recorder()
    outcome = await stop(handlers, tmp_path, emit, active=False)
    assert_valid(emit.sent)
    path = tmp_path / "config.toml"
    assert outcome.block
    assert outcome.fragments == [
        {"text": 'fix <this> & "that"', "hookRunId": f"stop:0:{path}"},
        {"text": "please also run the tests", "hookRunId": f"stop:1:{path}"},
    ]
    runs = [m["params"]["run"] for m in emit.sent if m["method"] == "hook/completed"]
    assert [(run["status"], run["scope"], run["entries"]) for run in runs] == [
        ("blocked", "turn", [{"kind": "feedback", "text": 'fix <this> & "that"'}]),
        ("blocked", "turn", [{"kind": "feedback", "text": "please also run the tests"}]),
    ]
    message = hook_prompt_message(outcome.fragments)
    assert message["role"] == "user" and message["id"].startswith("msg_")
    assert [part["text"] for part in message["content"]] == [
        f'<hook_prompt hook_run_id="stop:0:{path}">fix &lt;this&gt; &amp; "that"</hook_prompt>',
        f'<hook_prompt hook_run_id="stop:1:{path}">please also run the tests</hook_prompt>',
    ]
    item = hook_prompt_item(message, outcome.fragments)
    assert item["id"] == message["id"] and item["fragments"] == outcome.fragments
    assert_valid([{"method": "item/completed", "params": {
        "item": item, "threadId": "t-1", "turnId": "u-1", "contentTokenCount": None,
        "completedAtMs": item["completedAtMs"]}}])  # fmt: skip

    # The hooks are told the turn already continued, and let it end.
    again = Recorder()
    assert not (await stop(handlers, tmp_path, again, active=True)).block
    assert [run["params"]["run"]["status"] for run in again.sent[2:]] == ["completed"] * 2
    stdin = [call["stdin"] for call in logged(hook)]
    assert [entry["stop_hook_active"] for entry in stdin] == [False, False, True, True]
    assert stdin[0] == {
        "session_id": "t-1", "turn_id": "u-1", "transcript_path": "/r.jsonl",
        "cwd": str(tmp_path), "hook_event_name": "Stop", "model": "m",
        "permission_mode": "bypassPermissions", "stop_hook_active": False,
        "last_assistant_message": "done",
    }  # fmt: skip


@pytest.mark.anyio
async def test_stop_failures_and_a_stop_that_wins(tmp_path: Path, hook: Path) -> None:
    config = write_config(tmp_path, [
        ("Stop", None, {"command": command(hook, "exit2-silent")}),
        ("Stop", None, {"command": command(hook, "garbage")}),
        ("Stop", None, {"command": command(hook, "block-empty")}),
        ("Stop", None, {"command": command(hook, "block-once")}),
        ("Stop", None, {"command": command(hook, "halt")}),
    ])  # fmt: skip
    emit = Recorder()
    outcome = await stop(hook_handlers(config), tmp_path, emit, active=False)
    assert_valid(emit.sent)
    runs = [m["params"]["run"] for m in emit.sent if m["method"] == "hook/completed"]
    assert [(run["status"], [e["text"] for e in run["entries"]]) for run in runs] == [
        ("failed", ["Stop hook exited with code 2 but did not write a continuation prompt "
                    "to stderr"]),
        ("failed", ["hook returned invalid stop hook JSON output"]),
        ("failed", ["Stop hook returned decision:block without a non-empty reason"]),
        ("blocked", ["please also run the tests"]),
        ("stopped", ["note", "halt here"]),
    ]  # fmt: skip
    assert outcome.stop and not outcome.block  # continue:false wins over a block


@pytest.mark.anyio
async def test_a_hook_that_times_out_is_killed(tmp_path: Path, hook: Path) -> None:
    config = write_config(tmp_path, [("Stop", None, {"command": command(hook, "sleep"),
                                                     "timeout": 1})])  # fmt: skip
    emit = Recorder()
    outcome = await stop(hook_handlers(config), tmp_path, emit, active=False)
    assert_valid(emit.sent)
    assert outcome.runs[0]["status"] == "failed"
    assert outcome.runs[0]["entries"] == [{"kind": "error", "text": "hook timed out after 1s"}]
    (call,) = logged(hook)
    child = int((hook.parent / "child.pid").read_text())
    await assert_gone(call["pid"], child)  # the hook and what it started


@pytest.mark.anyio
async def test_an_interrupted_turn_kills_its_hooks(tmp_path: Path, hook: Path) -> None:
    config = write_config(tmp_path, [("Stop", None, {"command": command(hook, "sleep")})])
    emit = Recorder()
    started = hook.parent / "child.pid"
    async with anyio.create_task_group() as turn:
        turn.start_soon(stop, hook_handlers(config), tmp_path, emit, False)
        with anyio.fail_after(30):
            while not started.exists():  # the hook is running: interrupt the turn
                await anyio.sleep(0.05)
        turn.cancel_scope.cancel()
    assert [m["method"] for m in emit.sent] == ["hook/started"]
    (call,) = logged(hook)
    child = int((hook.parent / "child.pid").read_text())
    await assert_gone(call["pid"], child)


@pytest.mark.anyio
async def test_a_hook_that_cannot_start_fails(tmp_path: Path, hook: Path) -> None:
    config = write_config(tmp_path, [("Stop", None, {"command": command(hook, "text")})])
    outcome = await stop(hook_handlers(config), tmp_path / "missing", Recorder(), active=False)
    assert outcome.runs[0]["status"] == "failed"
    assert "missing" in outcome.runs[0]["entries"][0]["text"]
    assert logged(hook) == []


def test_hook_prompt_text_escapes_as_the_reference() -> None:
    assert hook_prompt_text("fix <this> & \"that\" 'now'", "stop:1:/tmp/x/config.toml") == (
        '<hook_prompt hook_run_id="stop:1:/tmp/x/config.toml">'
        "fix &lt;this&gt; &amp; \"that\" 'now'</hook_prompt>"
    )


# --------------------------------------------------------------------------- in a turn

#: What ``codex-peer app-server`` sends for this turn (a SessionStart hook, then two Stop hooks
#: that block once), less ``account/rateLimits/updated`` and ``thread/readState/changed``.
REFERENCE_TURN = [
    "<response>", "thread/status/changed", "turn/started",
    "hook/started", "hook/completed",
    "item/started", "item/completed",
    "item/started", "item/agentMessage/delta", "item/completed", "thread/tokenUsage/updated",
    "hook/started", "hook/started", "hook/completed", "hook/completed",
    "item/started", "item/completed",
    "item/started", "item/agentMessage/delta", "item/completed", "thread/tokenUsage/updated",
    "hook/started", "hook/started", "hook/completed", "hook/completed",
    "thread/status/changed", "turn/completed",
]  # fmt: skip


def test_hooks_in_a_turn_over_stdio(
    start_server: Any,
    codex_model_server: ScriptedModelServer,
    codex_home: Path,
    hook: Path,
    tmp_path: Path,
) -> None:
    model = codex_model_server
    write_config(codex_home, [
        ("SessionStart", "startup", {"command": command(hook, "text")}),
        ("Stop", None, {"command": command(hook, "exit2-once")}),
        ("Stop", None, {"command": command(hook, "block-once")}),
    ])  # fmt: skip
    for text in ("first", "second", "third", "fourth"):
        model.add(message(text))
    server = serve(start_server, model)
    cwd = tmp_path / "work"
    cwd.mkdir()
    thread_id = start_thread(server, cwd=str(cwd))
    sent = run_turn(server, thread_id, "hello")
    assert methods(sent) == REFERENCE_TURN
    assert_valid(sent)
    items = [m["params"]["item"] for m in sent if m.get("method") == "item/completed"]
    path = codex_home / "config.toml"
    fragments = [{"text": 'fix <this> & "that"', "hookRunId": f"stop:1:{path}"},
                 {"text": "please also run the tests", "hookRunId": f"stop:2:{path}"}]  # fmt: skip
    prompt = {"type": "hookPrompt", "id": items[2]["id"], "fragments": fragments,
              "startedAtMs": items[2]["startedAtMs"],
              "completedAtMs": items[2]["completedAtMs"]}  # fmt: skip
    assert [item["type"] for item in items] == ["userMessage", "agentMessage", "hookPrompt",
                                                "agentMessage"]  # fmt: skip
    assert items[2] == prompt
    # The model read the SessionStart context before the input, then the hook prompt.
    first, second = model.requests[:2]
    assert first.input_texts("developer")[-1] == "remember the tests"
    assert second.input_texts()[-2:] == [
        f'<hook_prompt hook_run_id="stop:1:{path}">fix &lt;this&gt; &amp; "that"</hook_prompt>',
        f'<hook_prompt hook_run_id="stop:2:{path}">please also run the tests</hook_prompt>',
    ]
    stdin = [call["stdin"] for call in logged(hook)]
    assert [(s["hook_event_name"], s.get("stop_hook_active")) for s in stdin] == [
        ("SessionStart", None), ("Stop", False), ("Stop", False), ("Stop", True), ("Stop", True),
    ]  # fmt: skip
    assert stdin[0]["transcript_path"] == stdin[1]["transcript_path"]
    assert Path(stdin[0]["transcript_path"]).is_file()

    # A second turn: SessionStart hooks ran once for the thread; the prompt is persisted.
    again = run_turn(server, thread_id, "again")
    assert methods(again)[3:5] == ["item/started", "item/completed"]
    assert again[-1]["params"]["turn"]["status"] == "completed"
    server.close()
    reader = serve(start_server, model)
    turns = reader.result("thread/read", {"threadId": thread_id, "includeTurns": True})
    assert turns["thread"]["turns"][0]["items"][2] == prompt
