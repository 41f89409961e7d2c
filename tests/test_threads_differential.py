"""Resuming a thread with turns, ours against the official server, value by value.

A case file cannot run turns (it has no model), so this drives both servers against a
``ScriptedModelServer`` each: two turns, then ``thread/resume`` with an ``initialTurnsPage``
and the pages its cursors lead to. What a paging client reads is compared after masking what
legitimately differs (thread, turn and item ids by order of appearance, times, the opaque
cursors themselves, which are followed instead).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing import ScriptedModelServer, message
from codex_core.testing.pytest_plugin import StdioServer, server_command
from codex_core.testing.reference import reference_server_command

REFERENCE = reference_server_command()

pytestmark = pytest.mark.skipif(
    REFERENCE is None,
    reason="the official server is not installed (python -m codex_core.testing.reference)",
)

#: Generated ids: the servers' UUIDs and the scripted model's item ids (``msg_N``, counted
#: across the whole test process).
IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|msg_\d+")
TIMES = {"startedAt", "completedAt", "startedAtMs", "completedAtMs", "durationMs"}


class Masker:
    """Ids become ``<id1>``, ``<id2>``... in order of first appearance; times ``<time>``."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def __call__(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {IDS.sub(self._id, name): self(inner, name) for name, inner in value.items()}
        if isinstance(value, list):
            return [self(inner, key) for inner in value]
        if key in TIMES and value is not None:
            return "<time>"
        if key.endswith("Cursor") and value is not None:
            return "<cursor>"
        if isinstance(value, str):
            return IDS.sub(self._id, value)
        return value

    def _id(self, match: re.Match[str]) -> str:
        return self.ids.setdefault(match.group(0), f"<id{len(self.ids) + 1}>")


def resume_session(argv: list[str], home: Path, cwd: Path) -> dict[str, Any]:
    """Two turns, then what ``thread/resume`` and its cursors show, masked."""
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    with ScriptedModelServer() as model:
        model.add(message("First answer."), message("Second answer."))
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer([*argv, *model.config_args()], env, cwd)
        try:
            server.initialize(experimentalApi=True)
            thread_id = server.result("thread/start", {})["thread"]["id"]
            for text in ("one", "two"):
                turn = {"threadId": thread_id, "input": [{"type": "text", "text": text}]}
                server.result("turn/start", turn, timeout=30)
                completed = server.wait_notification("turn/completed", timeout=30)
                assert completed["params"]["turn"]["status"] == "completed"
            resumed = server.result(
                "thread/resume",
                {"threadId": thread_id, "excludeTurns": True, "initialTurnsPage": {"limit": 1}},
            )
            first = resumed["initialTurnsPage"]
            loaded_list = server.result("thread/list", {})
            pages = {
                "next turns": server.result(
                    "thread/turns/list",
                    {"threadId": thread_id, "cursor": first["nextCursor"], "limit": 1},
                ),
                "turns from turnsBackwardsCursor": server.result(
                    "thread/turns/list",
                    {
                        "threadId": thread_id,
                        "cursor": resumed["turnsBackwardsCursor"],
                        "sortDirection": "desc",
                        "limit": 1,
                    },
                ),
                "items from itemsBackwardsCursor": server.result(
                    "thread/items/list",
                    {
                        "threadId": thread_id,
                        "cursor": resumed["itemsBackwardsCursor"],
                        "sortDirection": "desc",
                        "limit": 2,
                    },
                ),
            }
        finally:
            server.close()
        # A new process (a client reconnecting after a restart) resumes it from disk.
        again = StdioServer([*argv, *model.config_args()], env, cwd)
        try:
            again.initialize(experimentalApi=True)
            listed = again.result("thread/list", {})
            reloaded = again.result("thread/resume", {"threadId": thread_id, "excludeTurns": True})
        finally:
            again.close()
    mask = Masker()
    pages["thread/list while loaded"] = {
        "data": [_thread(entry, home, cwd) for entry in loaded_list["data"]],
        "readStates": loaded_list["readStates"],
    }
    pages["thread/list after a restart"] = {
        "data": [_thread(entry, home, cwd) for entry in listed["data"]],
        "readStates": listed["readStates"],
    }
    pages["thread/resume after a restart"] = {
        **{key: reloaded[key] for key in ("turnsBackwardsCursor", "itemsBackwardsCursor")},
        "thread": _thread(reloaded["thread"], home, cwd),
    }
    reply = {key: resumed[key] for key in (
        "collaborationMode", "initialTurnsPage", "turnsBackwardsCursor", "itemsBackwardsCursor",
        "model", "modelProvider", "approvalPolicy", "sandbox")}  # fmt: skip
    return {"resume": mask(reply), **{name: mask(page) for name, page in pages.items()}}


def _thread(thread: dict[str, Any], home: Path, cwd: Path) -> dict[str, Any]:
    """A ``Thread`` with its server's folders named, and without what names the server
    (``cliVersion``) or the moment (``createdAt``, ``updatedAt``, ``recencyAt``)."""
    text = json.dumps(thread).replace(str(home), "$CODEX_HOME").replace(str(cwd), "$CWD")
    text = re.sub(
        r"rollout-[0-9T-]{19}-", "rollout-<time>-", re.sub(r"/\d{4}/\d{2}/\d{2}/", "/<day>/", text)
    )
    shown: dict[str, Any] = json.loads(text)
    for key in ("cliVersion", "createdAt", "updatedAt", "recencyAt"):
        shown.pop(key)
    return shown


def test_resume_pages_agree_with_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = resume_session(server_command(), tmp_path / "ours" / "home", tmp_path / "ours" / "cwd")
    reference = resume_session(
        REFERENCE, tmp_path / "reference" / "home", tmp_path / "reference" / "cwd"
    )
    for part in reference:
        assert ours[part] == reference[part], part


def fork_session(argv: list[str], home: Path, cwd: Path) -> dict[str, Any]:
    """A named thread with a turn is forked (what the TUI's ``/fork`` sends); what the fork's
    reply, ``thread/list`` and ``thread/read`` show of its name and read state, then after a
    turn in the fork, then after a restart, masked."""
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    seen: dict[str, Any] = {}
    with ScriptedModelServer() as model:
        model.add(message("First answer."), message("Answer in the fork."))
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer([*argv, *model.config_args()], env, cwd)

        def listed(label: str) -> None:
            page = server.result("thread/list", {})
            seen[label] = {"names": {t["id"]: t["name"] for t in page["data"]},
                           "readStates": page["readStates"]}  # fmt: skip

        def turn(thread_id: str, text: str) -> None:
            params = {"threadId": thread_id, "input": [{"type": "text", "text": text}]}
            server.result("turn/start", params, timeout=30)
            completed = server.wait_notification("turn/completed", timeout=30)
            assert completed["params"]["turn"]["status"] == "completed"

        try:
            server.initialize(experimentalApi=True)
            source = server.result("thread/start", {})["thread"]["id"]
            turn(source, "one")
            server.result("thread/name/set", {"threadId": source, "name": "The source"})
            forked = server.result("thread/fork", {"threadId": source, "excludeTurns": True})
            fork = forked["thread"]["id"]
            seen["fork reply"] = {"name": forked["thread"]["name"], "source": source}
            read = server.result("thread/read", {"threadId": fork})
            seen["thread/read"] = {"name": read["thread"]["name"], "state": read["readState"]}
            listed("thread/list after the fork")
            turn(fork, "two")
            listed("thread/list after a turn in the fork")
        finally:
            server.close()
        again = StdioServer([*argv, *model.config_args()], env, cwd)
        try:
            again.initialize(experimentalApi=True)
            server = again
            listed("thread/list after a restart")
        finally:
            again.close()
    mask = Masker()
    return {label: mask(value) for label, value in seen.items()}


def test_a_fork_keeps_the_name_and_starts_read_as_in_the_reference(tmp_path: Path) -> None:
    """The official TUI shows the fork's name after ``/fork`` and lists it in ``/resume``
    under the source's name without an unread marker."""
    assert REFERENCE is not None
    ours = fork_session(server_command(), tmp_path / "ours" / "home", tmp_path / "ours" / "cwd")
    reference = fork_session(
        REFERENCE, tmp_path / "reference" / "home", tmp_path / "reference" / "cwd"
    )
    assert ours == reference
    assert reference["fork reply"]["name"] == "The source"
    assert reference["thread/read"]["state"]["firstUnread"] is None


def times_session(argv: list[str], home: Path, cwd: Path) -> dict[str, bool]:
    """Whether ``thread/read`` gives a thread with nothing recorded yet (unmaterialized and
    unnamed, or ephemeral) the time of the read as its times, and a named one its start."""
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    server = StdioServer(argv, {**os.environ, "CODEX_HOME": str(home)}, cwd)
    times = ("createdAt", "updatedAt", "recencyAt")
    seen: dict[str, bool] = {}
    try:
        server.initialize(experimentalApi=True)
        started = {
            kind: server.result("thread/start", params)["thread"]
            for kind, params in (("plain", {}), ("ephemeral", {"ephemeral": True}),
                                 ("named", {}))
        }  # fmt: skip
        server.result("thread/name/set", {"threadId": started["named"]["id"], "name": "Named"})
        latest = max(thread["createdAt"] for thread in started.values())
        while int(time.time()) <= latest:  # until the clock has moved past every start
            time.sleep(0.05)
        for kind, thread in started.items():
            read = server.result("thread/read", {"threadId": thread["id"]})["thread"]
            seen[f"{kind}: read later than started"] = all(
                read[key] > thread["createdAt"] for key in times
            )
            seen[f"{kind}: the times agree"] = len({read[key] for key in times}) == 1
    finally:
        server.close()
    return seen


def test_threads_with_nothing_recorded_read_with_the_time_of_the_read(tmp_path: Path) -> None:
    """The official TUI's agent list sorts the loaded threads it reads by these times."""
    assert REFERENCE is not None
    ours = times_session(server_command(), tmp_path / "ours" / "home", tmp_path / "ours" / "cwd")
    reference = times_session(
        REFERENCE, tmp_path / "reference" / "home", tmp_path / "reference" / "cwd"
    )
    assert ours == reference
    assert reference["plain: read later than started"]
    assert reference["ephemeral: read later than started"]
    assert not reference["named: read later than started"]
