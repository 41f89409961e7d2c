"""The official Codex TUI, unmodified, driven in tmux against codex-core over websocket.

It shows its first screen, sends a prompt, displays the command approval our server asks
for, accepts it, and shows the final answer; once without auth and once with a capability
token; then ``/stop``, ``/permissions``, ``/plan``, ``/model`` and ``/goal`` after a first
turn; ``/diff`` in a git repository, side by side with the reference; ``/compact`` (against
codex-core and the reference); a ``/side`` conversation and ``/recap`` (the TUI asks for titles
and recaps in temporary structured threads); ``/review`` of the uncommitted changes and of a
commit; ``/ps`` and ``/stop`` with a command the model left running (against codex-core and the
reference); and, against codex-core and the reference in one test each through a relay that
records every message (no request may be refused as unknown, -32601; the masked screens must
be the same): ``/skills`` with a toggle, ``@`` mentions and the ``/rename`` suggestion;
``/fork``, ``/resume`` and a second TUI reconnecting to a server that still has the first one's
side thread loaded. Needs the official client (the pinned official ``codex``, which ``dev.py setup``
installs; ``codex_core.testing.reference``) and tmux; skipped with a clear message where either
is missing.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call, message
from codex_core.testing.pytest_plugin import WsServer
from codex_core.testing.reference import missing_reason, reference_binary

OFFICIAL = reference_binary()
pytestmark = [
    pytest.mark.skipif(OFFICIAL is None, reason=missing_reason()),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="the official TUI test needs tmux"),
]

COMMAND = "touch made-by-tui.txt && echo hello-from-tui"
FINAL = "FINAL-ANSWER: the command ran fine."


class Tui:
    """One TUI in a detached tmux session: type into it and read its screen."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str]) -> None:
        self.session = f"codex-tui-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{key}={value}" for key, value in env.items())
        argv = ["tmux", "new-session", "-d", "-s", self.session, "-x", "120", "-y", "40",
                "-c", str(cwd), f"env {exports} {command}"]  # fmt: skip
        # Right after the last session was killed, tmux's server may still be exiting and
        # refuse a new one: try again until it has gone (a fresh server starts then).
        deadline = time.monotonic() + 10
        while subprocess.run(argv, capture_output=True, check=False).returncode != 0:
            if time.monotonic() > deadline:
                subprocess.run(argv, check=True)
            time.sleep(0.1)

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-t", self.session, "-p"],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, *keys], check=True)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], check=False)


@pytest.fixture
def tui_factory(tmp_path: Path) -> Iterator[Callable[..., Tui]]:
    started: list[Tui] = []
    home = tmp_path / "tui-home"
    home.mkdir()

    def start(url: str, cwd: Path, *args: str, env: dict[str, str] | None = None) -> Tui:
        command = shlex.join([str(OFFICIAL), "--remote", url, *args])
        tui = Tui(command, cwd, {"HOME": str(home), "CODEX_HOME": str(home), **(env or {})})
        started.append(tui)
        return tui

    yield start
    for tui in started:
        tui.close()


def script(model: ScriptedModelServer) -> None:
    """The model asks to run a command outside the sandbox, then answers."""
    args = {
        "cmd": COMMAND,
        "sandbox_permissions": "require_escalated",
        "justification": "the scripted model wants to run this outside the sandbox",
    }
    model.add(ModelResponse([function_call("exec_command", args, call_id="call_1")]), FINAL)
    # The TUI asks for a thread title on the side, whenever it likes.
    model.answer_matching(
        lambda request: any("task title" in text for text in request.input_texts()),
        message("Run a command"),
    )


def converse(tui: Tui, workdir: Path) -> None:
    tui.wait_for("Ask Codex to do anything")
    tui.keys("run it")
    time.sleep(0.5)  # typed text arriving with Enter reads as a paste; the TUI waits for it
    tui.keys("Enter")
    tui.wait_for("Would you like to run the following command?")
    tui.wait_for("Press enter to confirm or esc to cancel")  # (a key before it can get lost)
    tui.keys("y")
    screen = tui.wait_for(FINAL)
    assert "hello-from-tui" in screen
    assert (workdir / "made-by-tui.txt").exists()


def test_the_official_tui_runs_an_approved_command(
    codex_ws_server_factory: Any,
    codex_model_server: ScriptedModelServer,
    tui_factory: Callable[..., Tui],
    tmp_path: Path,
) -> None:
    script(codex_model_server)
    server = codex_ws_server_factory(
        *codex_model_server.config_args(),
        "-c", 'approval_policy="on-request"', "-c", 'sandbox_mode="read-only"',
        env=codex_model_server.env,
    )  # fmt: skip
    workdir = tmp_path / "cwd"
    converse(tui_factory(server.url, workdir), workdir)


def test_the_official_tui_with_a_capability_token(
    codex_ws_server_factory: Any,
    codex_model_server: ScriptedModelServer,
    tui_factory: Callable[..., Tui],
    tmp_path: Path,
) -> None:
    script(codex_model_server)
    token_file = tmp_path / "token"
    token_file.write_text("tui-secret-token\n")
    server = codex_ws_server_factory(
        *codex_model_server.config_args(),
        "-c", 'approval_policy="on-request"', "-c", 'sandbox_mode="read-only"',
        "--ws-auth", "capability-token", "--ws-token-file", str(token_file),
        env=codex_model_server.env,
    )  # fmt: skip
    workdir = tmp_path / "cwd"
    tui = tui_factory(
        server.url,
        workdir,
        "--remote-auth-token-env",
        "TUI_TOKEN",
        env={"TUI_TOKEN": "tui-secret-token"},
    )
    converse(tui, workdir)


def slash(tui: Tui, command: str) -> None:
    tui.keys(command)
    time.sleep(0.5)  # as in converse: Enter arriving with the text reads as a paste
    tui.keys("Enter")


def test_the_official_tui_stops_lists_permissions_and_enters_plan_mode(
    codex_ws_server_factory: Any,
    codex_model_server: ScriptedModelServer,
    tui_factory: Callable[..., Tui],
    tmp_path: Path,
) -> None:
    """``/stop`` (``thread/backgroundTerminals/clean``) keeps the TUI running, ``/permissions``
    shows the presets (``permissionProfile/list``), ``/plan`` switches to plan mode (the
    ``collaborationMode/list`` the TUI read at startup) and the next turn runs in it, as
    against the reference."""
    script(codex_model_server)
    server = codex_ws_server_factory(
        *codex_model_server.config_args(),
        "-c", 'approval_policy="on-request"', "-c", 'sandbox_mode="read-only"',
        env=codex_model_server.env,
    )  # fmt: skip
    workdir = tmp_path / "cwd"
    tui = tui_factory(server.url, workdir)
    converse(tui, workdir)
    slash(tui, "/stop")
    tui.wait_for("Stopping all background terminals.")
    slash(tui, "/permissions")
    tui.wait_for("Update Model Permissions")
    assert "Full Access" in tui.wait_for("Read Only (current)")  # once the profiles are listed
    tui.keys("Escape")
    slash(tui, "/plan")
    tui.wait_for("Plan mode (shift+tab to cycle)")
    # The next turn runs in plan mode: the model reads the mode's instructions right before
    # the prompt, with the mode's effort, as the reference sends them.
    codex_model_server.answer_matching(  # (whenever the TUI's side requests come)
        lambda request: request.input_texts()[-1:] == ["make a plan"],
        message("PLAN-READY: here is the plan."),
    )
    tui.keys("make a plan")
    time.sleep(0.5)  # as in converse: Enter arriving with the text reads as a paste
    tui.keys("Enter")
    tui.wait_for("PLAN-READY")
    (request,) = [r for r in codex_model_server.requests if r.input_texts()[-1:] == ["make a plan"]]
    mode, prompt = request.body["input"][-2:]
    assert mode["role"] == "developer" and prompt["content"][0]["text"] == "make a plan"
    assert mode["content"][0]["text"].startswith("<collaboration_mode># Collaboration Mode: Plan")
    assert request.body["reasoning"]["effort"] == "medium"


def test_the_official_tui_changes_the_model_and_keeps_a_goal(
    codex_ws_server_factory: Any,
    codex_model_server: ScriptedModelServer,
    codex_home: Path,
    tui_factory: Callable[..., Tui],
    tmp_path: Path,
) -> None:
    """``/model`` (``thread/settings/update``, then ``config/batchWrite`` of the choice) and
    ``/goal`` (``thread/goal/get|set|clear``, and the goal turn the server starts) after a
    first turn: the TUI stays up, shows what it shows against the reference (checked side by
    side when this was written), and the choice and the goal reach the server."""
    script(codex_model_server)
    server = codex_ws_server_factory(
        *codex_model_server.config_args(),
        "-c", 'approval_policy="on-request"', "-c", 'sandbox_mode="read-only"',
        env=codex_model_server.env,
    )  # fmt: skip
    workdir = tmp_path / "cwd"
    tui = tui_factory(server.url, workdir)
    converse(tui, workdir)
    slash(tui, "/model")
    tui.wait_for("Select Model and Effort")
    tui.keys("Enter")  # the first model
    tui.wait_for("Select Reasoning Level")
    tui.keys("Enter")  # its default effort
    tui.wait_for("Model changed to")
    config = (codex_home / "config.toml").read_text()
    assert "model = " in config and "model_reasoning_effort = " in config
    slash(tui, "/goal")
    tui.wait_for("No goal is currently set.")
    # The goal turn the server starts gets one answer, then the model fails: the goal stalls.
    codex_model_server.add(message("Working on the release."))
    slash(tui, "/goal Ship the release")
    tui.wait_for("Goal active Objective: Ship the release")
    tui.wait_for("Working on the release.")
    tui.wait_for("Goal stalled (/goal resume)")
    slash(tui, "/goal")
    screen = tui.wait_for("Commands: /goal edit, /goal resume, /goal clear")
    assert "Status: stalled" in screen and "Tokens used: 15" in screen
    slash(tui, "/goal pause")
    tui.wait_for("Goal paused Objective: Ship the release")
    slash(tui, "/goal clear")
    screen = tui.wait_for("Goal cleared")
    assert "Ask Codex to do anything" in screen  # still running
    for refusal in ("-32601", "Failed to", "unsupported"):
        assert refusal not in screen


def git_repository(workdir: Path) -> None:
    """A repository with a tracked file changed and an untracked one: what ``/diff`` shows."""
    workdir.mkdir(exist_ok=True)

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=workdir, check=True, capture_output=True)

    git("init", "-q")
    (workdir / "tracked.txt").write_text("old line\n")
    git("add", ".")
    git("-c", "user.email=tui@example.com", "-c", "user.name=tui", "commit", "-qm", "init")
    (workdir / "tracked.txt").write_text("new line\n")
    (workdir / "untracked.txt").write_text("brand new\n")


def shown_diff(tui: Tui) -> list[str]:
    """The lines of the ``/diff`` overlay, once the untracked file's diff is in."""
    slash(tui, "/diff")
    screen = tui.wait_for("+brand new").splitlines()
    start = next(i for i, line in enumerate(screen) if line.startswith("/ D I F F"))
    end = next(i for i, line in enumerate(screen) if line == "~")
    return [line.rstrip() for line in screen[start + 1 : end]]


def test_the_official_tui_shows_the_diff_as_against_the_reference(
    codex_ws_server_factory: Any,
    codex_model_server: ScriptedModelServer,
    codex_env: dict[str, str],
    tui_factory: Callable[..., Tui],
    tmp_path: Path,
) -> None:
    """``/diff`` runs six ``git`` commands through ``command/exec``. Ours runs them in its
    default read-only sandbox; the reference gets full access, as its sandbox helper cannot
    run from an npm install started directly (sandboxed, its git fails and the TUI says "not
    inside a git repository")."""
    workdir = tmp_path / "cwd"
    git_repository(workdir)
    server = codex_ws_server_factory(*codex_model_server.config_args(), env=codex_model_server.env)
    tui = tui_factory(server.url, workdir)
    tui.wait_for("Ask Codex to do anything")
    ours = shown_diff(tui)
    assert ours[:2] == ["diff --git a/tracked.txt b/tracked.txt", "index 0906fba..86ba82a 100644"]
    assert ours[5:7] == ["-old line", "+new line"] and ours[-1] == "+brand new"
    assert OFFICIAL is not None
    reference_home = tmp_path / "reference-home"
    reference_home.mkdir()
    reference = WsServer(
        [OFFICIAL, "app-server", "--listen", "ws://127.0.0.1:0",
         *codex_model_server.config_args(), "-c", 'sandbox_mode="danger-full-access"'],
        {**codex_env, **codex_model_server.env, "CODEX_HOME": str(reference_home)},
        workdir,
    )  # fmt: skip
    try:
        theirs_tui = tui_factory(reference.url, workdir)
        theirs_tui.wait_for("Ask Codex to do anything")
        assert shown_diff(theirs_tui) == ours
    finally:
        reference.stop()


@pytest.mark.parametrize("served_by", ["codex-core", "reference"])
def test_the_official_tui_compacts_the_conversation(
    served_by: str,
    codex_ws_server_factory: Any,
    codex_env: dict[str, str],
    codex_model_server: ScriptedModelServer,
    tui_factory: Callable[..., Tui],
    tmp_path: Path,
) -> None:
    """``/compact`` (``thread/compact/start``) keeps the TUI running and shows "Context
    compacted", against codex-core and against the reference alike; the next prompt is
    answered, and the model reads the summary instead of the first turn."""
    script(codex_model_server)
    codex_model_server.answer_matching(
        lambda request: any("CONTEXT CHECKPOINT COMPACTION" in text
                            for text in request.input_texts()),
        message("SUMMARY-OF-THE-TALK"),
    )  # fmt: skip
    codex_model_server.add("AFTER-COMPACTION")
    args = (
        *codex_model_server.config_args(),
        "-c", 'approval_policy="on-request"', "-c", 'sandbox_mode="read-only"',
    )  # fmt: skip
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)
    if served_by == "codex-core":
        server = codex_ws_server_factory(*args, env=codex_model_server.env)
    else:
        assert OFFICIAL is not None
        argv = [OFFICIAL, "app-server", "--listen", "ws://127.0.0.1:0", *args]
        server = WsServer(argv, {**codex_env, **codex_model_server.env}, workdir)
    try:
        tui = tui_factory(server.url, workdir)
        converse(tui, workdir)
        slash(tui, "/compact")
        tui.wait_for("Context compacted")
        tui.keys("go on")
        time.sleep(0.5)  # as in converse: Enter arriving with the text reads as a paste
        tui.keys("Enter")
        tui.wait_for("AFTER-COMPACTION")
    finally:
        server.stop()
    (last,) = [r for r in codex_model_server.requests if "go on" in r.input_texts()]
    texts = last.input_texts()
    assert any(text.endswith("\nSUMMARY-OF-THE-TALK") for text in texts)
    assert FINAL not in last.input_texts("assistant")


def test_the_official_tui_holds_a_side_conversation(
    codex_ws_server_factory: Any,
    codex_model_server: ScriptedModelServer,
    tui_factory: Callable[..., Tui],
    tmp_path: Path,
) -> None:
    """``/side`` (``thread/fork``, ``thread/inject_items``, ``turn/start``) shows the side
    answer in a side conversation, as against the reference; the title the TUI asked for
    went out with its ``outputSchema`` and without the shell."""
    script(codex_model_server)
    codex_model_server.answer_matching(
        lambda request: any("SIDE-QUESTION" in text for text in request.input_texts()),
        message("SIDE-ANSWER: a word on the side"),
    )
    server = codex_ws_server_factory(
        *codex_model_server.config_args(),
        "-c", 'approval_policy="on-request"', "-c", 'sandbox_mode="read-only"',
        env=codex_model_server.env,
    )  # fmt: skip
    workdir = tmp_path / "cwd"
    tui = tui_factory(server.url, workdir)
    converse(tui, workdir)
    slash(tui, "/side SIDE-QUESTION what else?")
    tui.wait_for("SIDE-ANSWER: a word on the side")
    assert "Side from main thread" in tui.wait_for("Side from main thread")
    requests = codex_model_server.requests
    titles = [r.body for r in requests if any("task title" in t for t in r.input_texts())]
    (side,) = [
        r
        for r in requests
        if any("SIDE-QUESTION" in t for t in r.input_texts()) and r.body not in titles
    ]
    assert any("Side conversation boundary" in text for text in side.input_texts())
    assert "run it" in side.input_texts()  # the main thread's history, forked
    assert titles and all(body["text"]["format"]["type"] == "json_schema" for body in titles)
    assert all("exec_command" not in str(body["tools"]) for body in titles)


def test_the_official_tui_shows_a_recap(
    codex_ws_server_factory: Any,
    codex_model_server: ScriptedModelServer,
    tui_factory: Callable[..., Tui],
    tmp_path: Path,
) -> None:
    """``/recap`` asks in a temporary structured thread (``outputSchema`` with ``summary``
    and ``next_action``, tools off) and shows the answer, as against the reference."""
    script(codex_model_server)
    codex_model_server.answer_matching(
        lambda request: any("brief catch-up" in text for text in request.input_texts()),
        message('{"summary": "RECAP-SUMMARY: ran the command", "next_action": "NEXT-STEP: rest"}'),
    )
    server = codex_ws_server_factory(
        *codex_model_server.config_args(),
        "-c", 'approval_policy="on-request"', "-c", 'sandbox_mode="read-only"',
        env=codex_model_server.env,
    )  # fmt: skip
    workdir = tmp_path / "cwd"
    tui = tui_factory(server.url, workdir)
    converse(tui, workdir)
    slash(tui, "/recap")
    assert "Recap: RECAP-SUMMARY: ran the command" in tui.wait_for("NEXT-STEP: rest")
    (recap,) = [
        r.body
        for r in codex_model_server.requests
        if any("brief catch-up" in text for text in r.input_texts())
    ]
    assert sorted(recap["text"]["format"]["schema"]["properties"]) == ["next_action", "summary"]
    assert "exec_command" not in str(recap["tools"])


def test_the_official_tui_reviews_uncommitted_changes(
    codex_ws_server_factory: Any,
    codex_model_server: ScriptedModelServer,
    tui_factory: Callable[..., Tui],
    tmp_path: Path,
) -> None:
    """``/review`` (``review/start``) after a first turn, of the uncommitted changes and then
    of a commit the TUI lists from git: the TUI keeps running and shows each review's start,
    end and findings as it does against the reference (the same screens, probed side by
    side)."""
    script(codex_model_server)
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)
    for command in (["init", "-q", "-b", "main"], ["add", "-A"],
                    ["-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qm",
                     "the first commit", "--allow-empty"]):  # fmt: skip
        subprocess.run(["git", *command], cwd=workdir, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=workdir, check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    finding = {"title": "[P1] Stray file", "body": "The command left made-by-tui.txt behind.",
               "confidence_score": 0.8, "priority": 1,
               "code_location": {"absolute_file_path": str(workdir / "made-by-tui.txt"),
                                 "line_range": {"start": 1, "end": 1}}}  # fmt: skip
    review = {
        "findings": [finding],
        "overall_correctness": "patch is incorrect",
        "overall_explanation": "REVIEW: one problem.",
        "overall_confidence_score": 0.7,
    }
    codex_model_server.answer_matching(
        lambda request: any("# Review guidelines:" in text
                            for text in request.input_texts("developer")),
        message(json.dumps(review)),
    )  # fmt: skip
    server = codex_ws_server_factory(
        *codex_model_server.config_args(),
        "-c", 'approval_policy="on-request"', "-c", 'sandbox_mode="read-only"',
        env=codex_model_server.env,
    )  # fmt: skip
    tui = tui_factory(server.url, workdir)
    converse(tui, workdir)
    slash(tui, "/review")
    tui.wait_for("Select a review preset")
    tui.keys("Down")
    tui.wait_for("\u203a 2. Review uncommitted changes")  # (the selection marker)
    tui.keys("Enter")
    tui.wait_for(">> Code review started: current changes <<")
    screen = tui.wait_for("<< Code review finished >>")
    screen = tui.wait_for("The command left made-by-tui.txt behind.")
    assert "REVIEW: one problem." in screen
    assert "Review comment:" in screen
    assert f"[P1] Stray file — {workdir}/made-by-tui.txt:1-1" in screen
    tui.wait_for("Ask Codex to do anything")  # the TUI is still there, ready for input

    slash(tui, "/review")
    tui.wait_for("Select a review preset")
    tui.keys("Down", "Down")
    tui.wait_for("\u203a 3. Review a commit")
    tui.keys("Enter")
    tui.wait_for("Select a commit to review")
    tui.keys("Enter")
    started = f">> Code review started: commit {head}: the first commit <<"
    tui.wait_for(started)
    deadline = time.monotonic() + 30  # this review's end: after its start on the screen
    while "<< Code review finished >>" not in tui.screen().rpartition(started)[2]:
        assert time.monotonic() < deadline, tui.screen()
        time.sleep(0.2)


def wait_gone(pid: int, timeout: float = 10) -> None:
    """Until process ``pid`` is gone (the TUI's screen is all there is to wait on otherwise)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} still running after {timeout}s")


@pytest.mark.parametrize("served_by", ["codex-core", "reference"])
def test_the_official_tui_lists_and_stops_background_terminals(
    served_by: str,
    codex_ws_server_factory: Any,
    codex_env: dict[str, str],
    codex_model_server: ScriptedModelServer,
    tui_factory: Callable[..., Tui],
    tmp_path: Path,
) -> None:
    """``/ps`` lists the command the model left running (``thread/backgroundTerminals/list``)
    and ``/stop`` stops it (``/clean``), after which ``/ps`` lists none, against codex-core and
    against the reference alike (full access: the pinned reference cannot sandbox here)."""
    pid = tmp_path / "background.pid"
    args = {"cmd": f"echo $$ > {pid}; exec sleep 60", "login": False, "yield_time_ms": 250}
    codex_model_server.add(
        ModelResponse([function_call("exec_command", args, call_id="call_1")]), "LEFT-RUNNING"
    )
    codex_model_server.answer_matching(
        lambda request: any("task title" in text for text in request.input_texts()),
        message("Start a server"),
    )
    options = (
        *codex_model_server.config_args(),
        "-c", 'approval_policy="never"', "-c", 'sandbox_mode="danger-full-access"',
    )  # fmt: skip
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)
    if served_by == "codex-core":
        server = codex_ws_server_factory(*options, env=codex_model_server.env)
    else:
        assert OFFICIAL is not None
        argv = [OFFICIAL, "app-server", "--listen", "ws://127.0.0.1:0", *options]
        server = WsServer(argv, {**codex_env, **codex_model_server.env}, workdir)
    try:
        tui = tui_factory(server.url, workdir, "--sandbox", "danger-full-access",
                          "--ask-for-approval", "never")  # fmt: skip
        tui.wait_for("Ask Codex to do anything")
        tui.keys("start it")
        time.sleep(0.5)  # as in converse: Enter arriving with the text reads as a paste
        tui.keys("Enter")
        tui.wait_for("LEFT-RUNNING")
        slash(tui, "/ps")
        # (The count shows in the footer as soon as the command runs; the entry only in /ps.)
        listed = tui.wait_for(f"• echo $$ > {tmp_path}")
        assert "1 background terminal running · /ps to view · /stop to close" in listed
        os.kill(int(pid.read_text()), 0)  # still running
        slash(tui, "/stop")
        tui.wait_for("Stopping all background terminals.")
        wait_gone(int(pid.read_text()))
        slash(tui, "/ps")
        tui.wait_for("No background terminals running.")
        assert "Ask Codex to do anything" in tui.screen()  # the TUI is still there
    finally:
        server.stop()


class Recorder:
    """A websocket relay between a TUI and a server that keeps every message, so a row can
    say which requests the TUI sent and that none was refused as unknown (-32601), against
    either server alike."""

    def __init__(self, upstream: str) -> None:
        from websockets.sync.server import serve

        self.upstream = upstream
        self.messages: list[tuple[str, dict[str, Any]]] = []  # (">" to the server, or "<")
        self._server = serve(self._relay, "127.0.0.1", 0, max_size=None)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}"

    def _relay(self, client: Any) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        with connect(self.upstream, max_size=None) as server:

            def pump(source: Any, target: Any, direction: str) -> None:
                try:
                    for frame in source:
                        self.messages.append((direction, json.loads(frame)))
                        target.send(frame)
                except ConnectionClosed:
                    pass
                finally:
                    target.close()

            upward = threading.Thread(target=pump, args=(client, server, ">"), daemon=True)
            upward.start()
            pump(server, client, "<")
            upward.join(10)

    def requested(self) -> set[str]:
        return {m["method"] for d, m in self.messages if d == ">" and "id" in m and "method" in m}

    def refused_as_unknown(self) -> list[str]:
        """The methods of the requests answered -32601."""
        sent = {
            m["id"]: m["method"]
            for d, m in self.messages
            if d == ">" and "method" in m and "id" in m
        }
        return [sent.get(m["id"], "?") for d, m in self.messages
                if d == "<" and (m.get("error") or {}).get("code") == -32601]  # fmt: skip

    def close(self) -> None:
        self._server.shutdown()


#: What the reference itself answers -32601 ("not supported yet") for a thread with no rollout
#: yet, as codex-core does; the TUI asks for it whenever it likes, so either may or may not.
REFUSED_BY_DESIGN = {"thread/turns/list", "thread/items/list"}


def unknown(refused: list[str]) -> list[str]:
    """The methods answered -32601 other than those the reference refuses by design."""
    return [method for method in refused if method not in REFUSED_BY_DESIGN]


AGO = re.compile(r"\b(\d+[smh] ago|now|\d+s \u2022 \d\d:\d\d)")
#: The working folder as the agent list elides it ("/tmp/.../cwd").
ELIDED_FOLDER = re.compile(r"/tmp/\S*\u2026\S*/cwd")
UUIDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def between(screen: str, first: str, last: str, workdir: Path) -> list[str]:
    """The lines of ``screen`` from the one holding ``first`` through the one holding ``last``,
    with the working folder, ids and ages masked (they differ between two runs)."""
    lines = [line.rstrip() for line in screen.splitlines()]
    start = next(i for i, line in enumerate(lines) if first in line)
    end = next(i for i in range(start, len(lines)) if last in lines[i])
    shown = "\n".join(lines[start : end + 1]).replace(str(workdir), "<cwd>")
    shown = ELIDED_FOLDER.sub("<cwd>", shown)
    shown = AGO.sub("<ago>", UUIDS.sub("<id>", shown))
    return [re.sub(" {2,}", "  ", line) for line in shown.splitlines()]  # (columns move)


def serve(served_by: str, model: ScriptedModelServer, factory: Any, env: dict[str, str],
          home: Path, workdir: Path, *options: str) -> WsServer:  # fmt: skip
    """codex-core (``factory``) or the reference, with ``home`` as its CODEX_HOME. Ours
    leaves out the repository's own plugin catalog, which the reference does not have (its
    plugins would lead the ``@`` popup)."""
    args = (*model.config_args(), *options)
    if served_by == "codex-core":
        return factory(*args, "-c", "marketplace.default=false",
                       env={**model.env, "CODEX_HOME": str(home)})  # fmt: skip
    assert OFFICIAL is not None
    argv = [OFFICIAL, "app-server", "--listen", "ws://127.0.0.1:0", *args]
    return WsServer(argv, {**env, **model.env, "CODEX_HOME": str(home)}, workdir)


#: The policy of the first turn: the model's command asks for approval.
ASKING = ("-c", 'approval_policy="on-request"', "-c", 'sandbox_mode="read-only"')


def titled_script(model: ScriptedModelServer) -> None:
    """``script``'s turn, with the title the TUI asks for answered in its schema's JSON (what
    ``/rename`` suggests, the terminal title and ``/resume`` show)."""
    args = {
        "cmd": COMMAND,
        "sandbox_permissions": "require_escalated",
        "justification": "the scripted model wants to run this outside the sandbox",
    }
    model.add(ModelResponse([function_call("exec_command", args, call_id="call_1")]), FINAL)
    model.answer_matching(
        lambda request: any("task title" in text for text in request.input_texts()),
        message('{"title": "Run the TUI command"}'),
    )


def skills_mentions_and_rename(
    served_by: str, factory: Any, env: dict[str, str], tui_factory: Callable[..., Tui], root: Path
) -> dict[str, Any]:
    """After a first turn: ``/skills`` (toggle the last one off, reopen the list),
    ``/rename`` (its suggestion), then in a new thread ``@`` mentions (the popup empty, then
    the first thread's title, then a file's name); what each screen shows, masked, and what
    was asked of the server."""
    home, workdir = root / "home", root / "cwd"
    skill = home / "skills" / "my-skill"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text(
        "---\nname: my-skill\ndescription: A skill of mine for tests.\n---\nDo things.\n"
    )
    workdir.mkdir(exist_ok=True)
    (workdir / "notes-about-release.md").write_text("notes\n")
    shown: dict[str, Any] = {}
    with ScriptedModelServer() as model:
        titled_script(model)
        server = serve(served_by, model, factory, env, home, workdir, *ASKING)
        recorder = Recorder(server.url)
        try:
            tui = tui_factory(recorder.url, workdir, env={"CODEX_HOME": str(home)})
            converse(tui, workdir)
            slash(tui, "/skills")
            tui.wait_for("2. Enable/Disable Skills")
            tui.keys("Down")
            tui.wait_for("\u203a 2. Enable/Disable Skills")
            tui.keys("Enter")
            tui.wait_for("[x] Skill Installer")
            tui.keys("Up")  # (from the first skill round to the last)
            tui.wait_for("\u203a [x] Skill Installer")
            tui.keys("Space")
            tui.wait_for("\u203a [ ] Skill Installer")
            tui.keys("Escape")
            tui.wait_for("Disabled 1 skill")
            slash(tui, "/skills")
            tui.wait_for("2. Enable/Disable Skills")
            tui.keys("Down")
            tui.wait_for("\u203a 2. Enable/Disable Skills")
            tui.keys("Enter")
            screen = tui.wait_for("[ ] Skill Installer")  # the toggle persisted
            shown["skills"] = between(screen, "Enable/Disable Skills", "esc close", workdir)
            tui.keys("Escape")
            tui.wait_for("Ask Codex to do anything")
            slash(tui, "/rename")
            screen = tui.wait_for("Suggested from this conversation")
            shown["/rename"] = between(screen, "Rename thread", "enter submit", workdir)
            tui.keys("Enter")
            tui.wait_for("Ask Codex to do anything")
            slash(tui, "/new")  # (the popup leaves out the current thread)
            tui.wait_for("Ask Codex to do anything")
            tui.keys("@")
            screen = tui.wait_for("my-skill")  # the empty popup lists the enabled skills
            shown["@"] = between(screen, "Mentions", "enter/tab insert", workdir)
            tui.keys("Run")
            screen = tui.wait_for("Task")  # the thread, by its title (thread/search)
            shown["@Run"] = between(screen, "Mentions", "enter/tab insert", workdir)
            tui.keys("BSpace", "BSpace", "BSpace", "notes")
            screen = tui.wait_for("notes-about-release.md")  # the file (fuzzyFileSearch)
            shown["@notes"] = between(screen, "Mentions", "enter/tab insert", workdir)
            tui.keys("Escape")
            tui.keys(*["BSpace"] * len("@notes"))
            tui.wait_for("Ask Codex to do anything")  # still running
        finally:
            recorder.close()
            server.stop()
        titles = [r.body for r in model.requests if any("task title" in t for t in r.input_texts())]
    # The title requests (the first turn's, /rename's): the structured output's schema as the
    # text format, and no shell among the tools (the temporary thread's config turns them off).
    shown["title requests"] = sorted(
        {(body["text"]["format"]["type"], "exec_command" in str(body["tools"])) for body in titles}
    )
    config = (home / "config.toml").read_text()
    shown["config"] = config[config.index("[[skills.config]]") :].replace(str(home), "<home>")
    shown["refused"] = recorder.refused_as_unknown()
    shown["asked"] = sorted(
        {"skills/config/write", "thread/search", "thread/list", "thread/name/set"}
        & recorder.requested()
    )
    return shown


def test_the_official_tui_toggles_skills_mentions_and_renames_as_against_the_reference(
    codex_ws_server_factory: Any,
    codex_env: dict[str, str],
    tui_factory: Callable[..., Tui],
    tmp_path: Path,
) -> None:
    """``/skills`` (``skills/config/write``: the list and the persisted toggle), ``@`` mentions
    (``thread/search``, ``thread/list``: skills, a task by its title, a file, which the TUI
    finds itself in its local folder, asking no ``fuzzyFileSearch``) and the ``/rename``
    suggestion (a temporary structured thread the scripted model answers; ``thread/name/set``)
    show the same screens against codex-core and the reference, and no request is refused as
    unknown."""
    ours = skills_mentions_and_rename(  # (in the folder the server factory runs ours in)
        "codex-core", codex_ws_server_factory, codex_env, tui_factory, tmp_path
    )
    theirs = skills_mentions_and_rename(
        "reference", codex_ws_server_factory, codex_env, tui_factory, tmp_path / "reference"
    )
    assert unknown(ours.pop("refused")) == unknown(theirs.pop("refused")) == []
    assert ours == theirs
    assert theirs["asked"] == ["skills/config/write", "thread/list", "thread/name/set",
                               "thread/search"]  # fmt: skip
    assert "\u203a Run the TUI command" in theirs["/rename"]
    assert theirs["title requests"] == [("json_schema", False)]
    assert "enabled = false" in theirs["config"]


def fork_resume_and_reconnect(
    served_by: str, factory: Any, env: dict[str, str], tui_factory: Callable[..., Tui], root: Path
) -> dict[str, Any]:
    """After a first turn: ``/fork``, the ``/resume`` picker, a ``/side`` conversation (an
    ephemeral thread left loaded); then the TUI is killed and a new one connects to the same
    server, resumes the latest thread and opens the agent list (``thread/loaded/list``, which
    holds the side and title threads). What each screen shows, masked, and what was asked."""
    home, workdir = root / "home", root / "cwd"
    home.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    shown: dict[str, Any] = {}
    with ScriptedModelServer() as model:
        titled_script(model)
        model.answer_matching(
            lambda request: any("SIDE-QUESTION" in text for text in request.input_texts()),
            message("SIDE-ANSWER: a word on the side"),
        )
        server = serve(served_by, model, factory, env, home, workdir, *ASKING)
        recorder = Recorder(server.url)
        try:
            tui = tui_factory(recorder.url, workdir, env={"CODEX_HOME": str(home)})
            converse(tui, workdir)
            tui.wait_for("Run the TUI")  # the title, in the footer
            slash(tui, "/fork")
            screen = tui.wait_for("Fork created. You can continue here.")
            shown["/fork"] = between(screen, "Thread forked from", "Fork created", workdir)
            slash(tui, "/resume")
            screen = tui.wait_for("1 / 2 · 100%")  # both threads listed
            shown["/resume"] = between(screen, "Resume a previous session", "1 / 2 · 100%", workdir)
            tui.keys("Escape")
            tui.wait_for("Ask Codex to do anything")
            slash(tui, "/side SIDE-QUESTION what else?")
            tui.wait_for("SIDE-ANSWER: a word on the side")
            tui.close()  # the TUI goes; its threads stay loaded in the server
            again = tui_factory(recorder.url, workdir, env={"CODEX_HOME": str(home)})
            again.wait_for("Ask Codex to do anything")
            slash(again, "/resume")
            again.wait_for("1 / 2 · 100%")
            again.keys("Enter")  # the latest: the fork
            screen = again.wait_for(FINAL)  # the resumed conversation shows
            shown["resumed"] = between(screen, "Thread forked from", FINAL, workdir)
            again.keys("Left")
            screen = again.wait_for("Agent command center")
            tasks = between(screen, "Agent command center", "Last message", workdir)
            # (Its rows, without the details pane and the selection: the fork and its source
            # have the same title and last turn, and the two servers' lists put them in
            # either order.)
            rows = (line.partition("\u2502")[0].replace("\u203a", " ").strip() for line in tasks)
            shown["agents"] = sorted(row for row in rows if row)
            again.keys("Escape")
            again.wait_for("Ask Codex to do anything")  # still running
        finally:
            recorder.close()
            server.stop()
    shown["refused"] = recorder.refused_as_unknown()
    shown["asked"] = sorted(
        {"thread/fork", "thread/backgroundTerminals/list", "thread/loaded/list",
         "thread/turns/list", "thread/resume"} & recorder.requested()
    )  # fmt: skip
    return shown


def test_the_official_tui_forks_resumes_and_reconnects_as_against_the_reference(
    codex_ws_server_factory: Any,
    codex_env: dict[str, str],
    tui_factory: Callable[..., Tui],
    tmp_path: Path,
) -> None:
    """``/fork`` and ``/resume`` (``thread/backgroundTerminals/list`` is asked; the fork keeps
    the title, the resumed conversation shows) and a second TUI reconnecting to a server that
    still has the first one's ephemeral side thread loaded (``thread/loaded/list``,
    ``thread/turns/list``) show the same screens against codex-core and the reference, and no
    request is refused as unknown."""
    ours = fork_resume_and_reconnect(  # (in the folder the server factory runs ours in)
        "codex-core", codex_ws_server_factory, codex_env, tui_factory, tmp_path
    )
    theirs = fork_resume_and_reconnect(
        "reference", codex_ws_server_factory, codex_env, tui_factory, tmp_path / "reference"
    )
    assert unknown(ours.pop("refused")) == unknown(theirs.pop("refused")) == []
    assert ours == theirs
    assert theirs["asked"] == [
        "thread/backgroundTerminals/list",
        "thread/fork",
        "thread/loaded/list",
        "thread/resume",
        "thread/turns/list",
    ]
