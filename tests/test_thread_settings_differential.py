"""``thread/settings/update`` and plan mode, ours against the official server, value by value.

Both servers run the same requests against a ``ScriptedModelServer`` each: a sequence of
settings updates (what the TUI's ``/model``, ``/permissions`` and ``/plan`` send) with the
``thread/settings/updated`` each one announces, the refusals, then turns in changing
collaboration modes, comparing what the model was sent. Ids, times and the temp folders are
masked; so are the built-in mode instructions, which are codex-core's own words (a mode's
instructions that a client gives are compared as they are).

An update that changes nothing announces nothing. That is checked by order rather than by
waiting: every step that changes something takes the next ``thread/settings/updated``, so a
notice from a step before it would be taken instead and differ.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call, message
from codex_core.testing.pytest_plugin import StdioServer, needs_reference, server_command
from codex_core.testing.reference import reference_server_command
from codex_core.threads.modes import BUILTIN_INSTRUCTIONS

pytestmark = needs_reference

IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|msg_\d+")
#: Instructions this test gives as a client would; any other text is a built-in.
CUSTOM = {"Plan the work, change nothing.", "Back to work."}

#: (request params, whether it changes the settings), in order.
UPDATES: list[tuple[dict[str, Any], bool]] = [
    ({"model": "mock-model"}, False),  # the thread's model already
    ({"model": "gpt-5.4", "effort": "high"}, True),  # /model
    ({"model": "gpt-5.4"}, False),
    ({}, False),
    ({"approvalPolicy": "never", "sandboxPolicy": {"type": "workspaceWrite"}}, True),
    ({"permissions": ":workspace"}, True),  # /permissions
    ({"permissions": ":danger-full-access"}, True),
    ({"permissions": ":read-only"}, True),
    ({"approvalsReviewer": "auto_review"}, True),
    ({"cwd": "/tmp"}, True),
    ({"disabledPluginIds": ["a@b"]}, True),
    ({"serviceTier": "flex"}, True),
    ({"serviceTier": None}, True),  # null: back to the default tier, named
    ({"summary": "detailed"}, True),
    ({"personality": "pragmatic"}, True),
    ({"multiAgentMode": "proactive"}, False),  # deprecated and ignored
    (  # /plan: the built-in plan instructions
        {
            "collaborationMode": {
                "mode": "plan",
                "settings": {
                    "model": "gpt-5.4",
                    "reasoning_effort": "medium",
                    "developer_instructions": None,
                },
            }
        },
        True,
    ),
    ({"model": "m3", "effort": "minimal"}, True),  # the mode follows
    (
        {
            "collaborationMode": {
                "mode": "default",
                "settings": {
                    "model": "other",
                    "reasoning_effort": None,
                    "developer_instructions": None,
                },
            }
        },
        True,
    ),
]

#: Requests refused, each with the reference's error.
REFUSED: list[dict[str, Any]] = [
    {"threadId": "00000000-0000-0000-0000-000000000000", "model": "x"},
    {"permissions": ":read-only", "sandboxPolicy": {"type": "readOnly"}},
    {"permissions": ":bogus"},
    {"permissions": "custom"},
    {"model": 5},
]


class Masker:
    """Ids become ``<id1>``... in order of first appearance; the temp folders ``$HOME`` and
    ``$CWD``; built-in mode instructions ``<built-in MODE>``."""

    def __init__(self, home: Path, cwd: Path) -> None:
        self.ids: dict[str, str] = {}
        self.paths = {str(home): "$HOME", str(cwd): "$CWD"}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            masked = {key: self(inner) for key, inner in value.items()}
            instructions = value.get("developer_instructions")
            if isinstance(instructions, str) and instructions not in CUSTOM:
                masked["developer_instructions"] = "<built-in>"
            return masked
        if isinstance(value, list):
            return [self(inner) for inner in value]
        if isinstance(value, str):
            for path, name in self.paths.items():
                value = value.replace(path, name)
            return IDS.sub(self._id, value)
        return value

    def _id(self, match: re.Match[str]) -> str:
        return self.ids.setdefault(match.group(0), f"<id{len(self.ids) + 1}>")


def _server(argv: list[str], home: Path, cwd: Path, model: ScriptedModelServer) -> StdioServer:
    env = {**os.environ, "CODEX_HOME": str(home), **model.env}
    return StdioServer([*argv, *model.config_args()], env, cwd)


def settings_session(argv: list[str], root: Path) -> dict[str, Any]:
    """Every update's reply and announcement, and every refusal, masked."""
    home, cwd = root / "home", root / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    seen: dict[str, Any] = {}
    with ScriptedModelServer() as model:
        server = _server(argv, home, cwd, model)
        try:
            server.initialize(experimentalApi=True)
            thread_id = server.result("thread/start", {})["thread"]["id"]
            for number, (params, changes) in enumerate(UPDATES):
                reply = server.request("thread/settings/update", {"threadId": thread_id, **params})
                notice = None
                if changes:
                    notice = server.wait_notification("thread/settings/updated")["params"]
                seen[f"update {number} {params}"] = {"reply": reply.get("result"),
                                                     "notice": notice}  # fmt: skip
            for params in REFUSED:
                request = {"threadId": thread_id, **params}
                seen[f"refused {params}"] = server.error("thread/settings/update", request)
            server.barrier()
            seen["left over"] = [note for note in server.notifications
                                 if note["method"] == "thread/settings/updated"]  # fmt: skip
        finally:
            server.close()
    mask = Masker(home, cwd)
    return {name: mask(value) for name, value in seen.items()}


def test_settings_updates_agree_with_the_reference(tmp_path: Path) -> None:
    reference = reference_server_command()
    assert reference is not None
    ours = settings_session(server_command(), tmp_path / "ours")
    theirs = settings_session(reference, tmp_path / "reference")
    for step in theirs:
        assert ours[step] == theirs[step], step


def test_settings_update_is_experimental(tmp_path: Path) -> None:
    """Without ``experimentalApi`` the method is refused before the thread is looked up."""
    reference = reference_server_command()
    assert reference is not None
    errors = []
    for argv in (server_command(), reference):
        with ScriptedModelServer() as model:
            (tmp_path / "home").mkdir(exist_ok=True)
            server = _server(argv, tmp_path / "home", tmp_path, model)
            try:
                server.initialize()
                unknown = {"threadId": "00000000-0000-0000-0000-000000000000"}
                errors.append(server.error("thread/settings/update", unknown))
            finally:
                server.close()
    assert errors[0] == errors[1]
    assert errors[0]["message"] == "thread/settings/update requires experimentalApi capability"


def _mode_messages(body: dict[str, Any]) -> list[str]:
    """The collaboration mode messages the model was sent, oldest first."""
    texts = []
    for entry in body["input"]:
        if entry.get("type") == "message" and entry.get("role") == "developer":
            for part in entry["content"]:
                if part.get("text", "").startswith("<collaboration_mode>"):
                    texts.append(part["text"])
    return texts


def plan_session(argv: list[str], root: Path) -> dict[str, Any]:
    """Turns in changing modes: what each model request carried, what the rollout recorded,
    and the mode a resumed thread reports, masked."""
    home, cwd = root / "home", root / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    modes: list[dict[str, Any] | None] = [
        None,  # no mode chosen: no instructions
        {"mode": "plan", "settings": {"model": "mock-model", "reasoning_effort": "high",
                                      "developer_instructions": "Plan the work, change nothing."}},
        None,  # the same mode again: not sent twice
        {"mode": "default", "settings": {"model": "mock-model", "reasoning_effort": None,
                                         "developer_instructions": "Back to work."}},
        {"mode": "plan", "settings": {"model": "mock-model", "reasoning_effort": "medium",
                                      "developer_instructions": None}},
    ]  # fmt: skip
    with ScriptedModelServer() as model:
        model.add(*(message(f"Answer {number}.") for number in range(len(modes))))
        server = _server(argv, home, cwd, model)
        try:
            server.initialize(experimentalApi=True)
            thread_id = server.result("thread/start", {})["thread"]["id"]
            for number, mode in enumerate(modes):
                if mode is not None:
                    server.result("thread/settings/update",
                                  {"threadId": thread_id, "collaborationMode": mode})  # fmt: skip
                    server.wait_notification("thread/settings/updated")
                turn = {"threadId": thread_id, "input": [{"type": "text", "text": f"t{number}"}]}
                server.result("turn/start", turn, timeout=30)
                server.wait_notification("turn/completed", timeout=30)
        finally:
            server.close()
        requests = [
            {"model": request.body["model"],
             "effort": (request.body.get("reasoning") or {}).get("effort"),
             "modes": _mode_messages(request.body)}
            for request in model.requests
        ]  # fmt: skip
        again = _server(argv, home, cwd, model)
        try:
            again.initialize(experimentalApi=True)
            resumed = again.result("thread/resume", {"threadId": thread_id, "excludeTurns": True})
        finally:
            again.close()
    (path,) = home.glob("sessions/*/*/*/*.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    kinds = [line["payload"]["collaboration_mode_kind"] for line in lines
             if line["payload"].get("type") == "task_started"]  # fmt: skip
    contexts = [line["payload"]["collaboration_mode"] for line in lines
                if line["type"] == "turn_context"]  # fmt: skip
    mask = Masker(home, cwd)
    for request in requests:  # the built-in instructions, inside their tags
        request["modes"] = [
            text if text[len("<collaboration_mode>") : -len("</collaboration_mode>")] in CUSTOM
            else "<built-in>" for text in request["modes"]
        ]  # fmt: skip
    return mask({"requests": requests, "task_started kinds": kinds, "turn_context modes": contexts,
                 "resumed mode": resumed["collaborationMode"],
                 "resumed effort": resumed["reasoningEffort"]})  # fmt: skip


def test_plan_mode_reaches_the_model_as_the_reference_sends_it(tmp_path: Path) -> None:
    reference = reference_server_command()
    assert reference is not None
    ours = plan_session(server_command(), tmp_path / "ours")
    theirs = plan_session(reference, tmp_path / "reference")
    for part in theirs:
        assert ours[part] == theirs[part], part
    # The last turn's input ends with the built-in plan instructions, then the user's text.
    assert ours["requests"][-1]["modes"][-1] == "<built-in>"


def test_built_in_plan_instructions_are_sent(tmp_path: Path) -> None:
    """``developer_instructions: null`` means the mode's built-in instructions, sent wrapped in
    ``<collaboration_mode>`` right before the user's message."""
    with ScriptedModelServer() as model:
        model.add(message("ok"))
        (tmp_path / "home").mkdir()
        server = _server(server_command(), tmp_path / "home", tmp_path, model)
        try:
            server.initialize(experimentalApi=True)
            thread_id = server.result("thread/start", {})["thread"]["id"]
            mode = {"mode": "plan", "settings": {"model": "mock-model", "reasoning_effort": None,
                                                 "developer_instructions": None}}  # fmt: skip
            turn = {"threadId": thread_id, "input": [{"type": "text", "text": "go"}],
                    "collaborationMode": mode}  # fmt: skip
            server.result("turn/start", turn, timeout=30)
            server.wait_notification("turn/completed", timeout=30)
        finally:
            server.close()
    tail = model.requests[0].body["input"][-2:]
    assert tail[0]["role"] == "developer"
    assert tail[0]["content"][0]["text"] == (
        f"<collaboration_mode>{BUILTIN_INSTRUCTIONS['plan']}</collaboration_mode>"
    )
    assert tail[1]["content"][0]["text"] == "go"


@pytest.mark.parametrize("method", ["turn/start"])
def test_turn_start_mode_is_experimental(tmp_path: Path, method: str) -> None:
    """``turn/start``'s ``collaborationMode`` needs the experimental API, as the reference's."""
    with ScriptedModelServer() as model:
        (tmp_path / "home").mkdir()
        server = _server(server_command(), tmp_path / "home", tmp_path, model)
        try:
            server.initialize()
            thread_id = server.result("thread/start", {})["thread"]["id"]
            mode = {"mode": "plan", "settings": {"model": "m"}}
            error = server.error(method, {"threadId": thread_id, "input": [],
                                          "collaborationMode": mode})  # fmt: skip
        finally:
            server.close()
    assert "experimentalApi" in error["message"]


def running_turn_session(argv: list[str], root: Path) -> list[tuple[str, Any]]:
    """A settings update while a turn runs: the model and effort of each model request."""
    home, cwd = root / "home", root / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    with ScriptedModelServer() as model:
        call = function_call("exec_command", {"cmd": "echo hi"}, call_id="c1")
        model.add(ModelResponse([call], stall=2), message("done"), message("next turn"))
        server = _server(argv, home, cwd, model)
        try:
            server.initialize(experimentalApi=True)
            thread_id = server.result("thread/start", {})["thread"]["id"]
            text = [{"type": "text", "text": "go"}]
            server.result("turn/start", {"threadId": thread_id, "input": text})
            server.wait_until(lambda: len(model.requests) == 1, what="the first model request")
            update = {"threadId": thread_id, "model": "other-model", "effort": "high"}
            server.result("thread/settings/update", update)  # while the model is still at it
            server.wait_notification("turn/completed", timeout=30)
            server.result("turn/start", {"threadId": thread_id, "input": text})
            server.wait_notification("turn/completed", timeout=30)
        finally:
            server.close()
        return [
            (request.body["model"], (request.body.get("reasoning") or {}).get("effort"))
            for request in model.requests
        ]


def test_a_running_turn_keeps_its_settings(tmp_path: Path) -> None:
    """As the reference: an update is for the next turns; the running turn's second model
    request (after its tool call) still uses the settings it began with."""
    reference = reference_server_command()
    assert reference is not None
    ours = running_turn_session(server_command(), tmp_path / "ours")
    assert ours == running_turn_session(reference, tmp_path / "reference")
    assert ours == [("mock-model", None), ("mock-model", None), ("other-model", "high")]


def turn_start_session(argv: list[str], root: Path) -> dict[str, Any]:
    """``turn/start``'s own settings (a sandbox policy and a relative cwd, then a permission
    profile) as a later ``thread/resume`` reports them, and its refusals, masked."""
    home, cwd = root / "home", root / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    seen: dict[str, Any] = {}
    keys = ("sandbox", "activePermissionProfile", "cwd", "approvalPolicy")
    with ScriptedModelServer() as model:
        model.add(message("one"), message("two"))
        server = _server(argv, home, cwd, model)
        try:
            server.initialize(experimentalApi=True)
            thread_id = server.result("thread/start", {})["thread"]["id"]
            text = [{"type": "text", "text": "go"}]
            turns = {
                "sandboxPolicy and a relative cwd": {
                    "sandboxPolicy": {"type": "workspaceWrite"}, "cwd": "sub",
                    "approvalPolicy": "never"},
                "permissions": {"permissions": ":danger-full-access"},
            }  # fmt: skip
            for label, extra in turns.items():
                server.result("turn/start", {"threadId": thread_id, "input": text, **extra})
                server.wait_notification("turn/completed", timeout=30)
                resumed = server.result(
                    "thread/resume", {"threadId": thread_id, "excludeTurns": True}
                )
                seen[label] = {key: resumed[key] for key in keys}
            for refused in ({"permissions": ":read-only", "sandboxPolicy": {"type": "readOnly"}},
                            {"permissions": ":bogus"}):  # fmt: skip
                request = {"threadId": thread_id, "input": text, **refused}
                seen[f"refused {refused}"] = server.error("turn/start", request)
        finally:
            server.close()
    return Masker(home, cwd)(seen)


def test_turn_start_settings_agree_with_the_reference(tmp_path: Path) -> None:
    reference = reference_server_command()
    assert reference is not None
    ours = turn_start_session(server_command(), tmp_path / "ours")
    theirs = turn_start_session(reference, tmp_path / "reference")
    for part in theirs:
        assert ours[part] == theirs[part], part


#: A configured permission profile (the reference needs ``default_permissions`` with them).
PROFILES = ["-c", 'permissions.dev.extends=":workspace"', "-c", 'permissions.dev.description="Dev"',
            "-c", 'default_permissions=":read-only"']  # fmt: skip


def profiles_session(argv: list[str], root: Path) -> dict[str, Any]:
    """``permissions`` naming a configured profile, and one the table does not have."""
    home, cwd = root / "home", root / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    with ScriptedModelServer() as model:
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer([*argv, *model.config_args(), *PROFILES], env, cwd)
        try:
            server.initialize(experimentalApi=True)
            thread_id = server.result("thread/start", {})["thread"]["id"]
            refused = server.error(
                "thread/settings/update", {"threadId": thread_id, "permissions": "nope"}
            )
            server.result("thread/settings/update", {"threadId": thread_id, "permissions": "dev"})
            notice = server.wait_notification("thread/settings/updated")["params"]
        finally:
            server.close()
    return Masker(home, cwd)({"refused": refused, "notice": notice})


def test_configured_permission_profiles_agree_with_the_reference(tmp_path: Path) -> None:
    reference = reference_server_command()
    assert reference is not None
    ours = profiles_session(server_command(), tmp_path / "ours")
    assert ours == profiles_session(reference, tmp_path / "reference")
    assert ours["notice"]["threadSettings"]["activePermissionProfile"] == {
        "id": "dev",
        "extends": ":workspace",
    }
