"""Rollouts written by either server resume in the other, over one shared ``CODEX_HOME``.

A user switches between the official Codex and codex-core on the same history, so each must
list, read and resume what the other wrote, and append new turns the other reads back. Each
test runs turns on one server against the loopback scripted model, then the other server
reads the same home, and compares values: the thread's ids and texts are the same on both
sides (they come from one rollout), so what is compared is unmasked except for what names
the moment of reading (``updatedAt`` and ``recencyAt`` follow the file's mtime; ``status``
and ``environments`` say whether the reader has the thread loaded).

The reference keeps the turns of the threads it writes in its own
``thread_history_1.sqlite`` as well; on a thread it has not loaded yet, ``thread/read``
answers without turns until a ``thread/resume`` has read the rollout (that is its behaviour
on its own rollouts too, once that database is gone), so the reference side resumes first.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing import ScriptedModelServer, message
from codex_core.testing.pytest_plugin import StdioServer, needs_reference, server_command
from codex_core.testing.reference import reference_server_command
from codex_core.testing.stored_threads import (
    SEARCH_TERM,
    TEMPLATE_ANSWER,
    TEMPLATE_QUESTION,
    Template,
    generate,
    record_template,
)

REFERENCE = reference_server_command()

pytestmark = needs_reference

TURN_TIMEOUT = 60
#: What differs between two servers' views of one stored thread at different moments.
MOMENT = {"updatedAt", "recencyAt", "status", "environments"}


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


class Session:
    """One server process on the shared home, pointed at the scripted model."""

    def __init__(self, argv: list[str], model: ScriptedModelServer, home: Path, cwd: Path):
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        self.server = StdioServer([*argv, *model.config_args()], env, cwd)
        self.server.initialize(experimentalApi=True)

    def turn(self, thread_id: str, text: str) -> dict[str, Any]:
        """Run a turn to completion; the completed turn."""
        params = {"threadId": thread_id, "input": [{"type": "text", "text": text}]}
        turn_id = self.server.result("turn/start", params, timeout=TURN_TIMEOUT)["turn"]["id"]
        done = self.server.wait_notification(
            "turn/completed", TURN_TIMEOUT, where=lambda p: p["turn"]["id"] == turn_id
        )["params"]["turn"]
        assert done["status"] == "completed", done
        return dict(done)

    def read(self, thread_id: str) -> dict[str, Any]:
        result = self.server.result("thread/read", {"threadId": thread_id, "includeTurns": True})
        return dict(result["thread"])

    def listed(self, thread_id: str) -> dict[str, Any]:
        """The thread's ``thread/list`` entry (it must be there)."""
        data = self.server.result("thread/list", {"limit": 100})["data"]
        found = [thread for thread in data if thread["id"] == thread_id]
        assert len(found) == 1, [thread["id"] for thread in data]
        return dict(found[0])

    def close(self) -> None:
        self.server.close()


def stable(thread: dict[str, Any]) -> dict[str, Any]:
    """A ``Thread`` without what names the moment it was read."""
    return {key: value for key, value in thread.items() if key not in MOMENT}


def texts(thread: dict[str, Any]) -> list[list[tuple[str, str]]]:
    """Per turn, the (type, text) of its user and agent messages."""
    shown = []
    for turn in thread["turns"]:
        items = []
        for item in turn["items"]:
            if item["type"] == "userMessage":
                items.append(("user", "".join(part.get("text", "") for part in item["content"])))
            elif item["type"] == "agentMessage":
                items.append(("agent", item["text"]))
        shown.append(items)
    return shown


def write_thread(argv: list[str], model: ScriptedModelServer, home: Path, cwd: Path) -> str:
    """A thread with two turns, written by the server ``argv``; its id."""
    model.add(message("First answer."), message("Second answer."))
    session = Session(argv, model, home, cwd)
    try:
        thread_id = str(session.server.result("thread/start", {})["thread"]["id"])
        session.turn(thread_id, "one")
        session.turn(thread_id, "two")
    finally:
        session.close()
    return thread_id


def stored_views(session: Session, thread_id: str) -> dict[str, dict[str, Any]]:
    """How a server that has not loaded the thread shows it: its ``thread/list`` entry, the
    thread ``thread/resume`` answers, and ``thread/read`` with turns once resumed."""
    listed = session.listed(thread_id)
    resumed = session.server.result("thread/resume", {"threadId": thread_id})["thread"]
    return {"list": stable(listed), "resume": stable(resumed),
            "read": stable(session.read(thread_id))}  # fmt: skip


def test_a_reference_rollout_resumes_in_codex_core(
    tmp_path: Path, model: ScriptedModelServer
) -> None:
    assert REFERENCE is not None
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    thread_id = write_thread(REFERENCE, model, home, cwd)
    reference = Session(REFERENCE, model, home, cwd)
    try:
        unloaded = reference.read(thread_id)
        expected = stored_views(reference, thread_id)
    finally:
        reference.close()
    assert texts(unloaded) == [[("user", "one"), ("agent", "First answer.")],
                               [("user", "two"), ("agent", "Second answer.")]]  # fmt: skip

    model.add(message("Third answer."))
    ours = Session(server_command(), model, home, cwd)
    try:
        assert stable(ours.read(thread_id)) == stable(unloaded)
        assert stored_views(ours, thread_id) == expected
        third = ours.turn(thread_id, "three")
        after = ours.read(thread_id)
    finally:
        ours.close()
    assert after["turns"][:2] == unloaded["turns"]
    assert after["turns"][2]["id"] == third["id"]
    assert texts(after)[2] == [("user", "three"), ("agent", "Third answer.")]
    assert len(list((home / "sessions").rglob("rollout-*.jsonl"))) == 1  # appended, not a copy

    # Back to the reference: the turn codex-core appended is part of the thread there too.
    reference = Session(REFERENCE, model, home, cwd)
    try:
        again = reference.server.result("thread/resume", {"threadId": thread_id})["thread"]
    finally:
        reference.close()
    assert stable(again) == stable(after)


def test_a_codex_core_rollout_resumes_in_the_reference(
    tmp_path: Path, model: ScriptedModelServer
) -> None:
    assert REFERENCE is not None
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    thread_id = write_thread(server_command(), model, home, cwd)
    ours = Session(server_command(), model, home, cwd)
    try:
        expected = stored_views(ours, thread_id)
    finally:
        ours.close()
    assert texts(expected["read"]) == [[("user", "one"), ("agent", "First answer.")],
                                       [("user", "two"), ("agent", "Second answer.")]]  # fmt: skip

    model.add(message("Third answer."))
    reference = Session(REFERENCE, model, home, cwd)
    try:
        # Not in its thread_history_1.sqlite yet: no turns until resumed (see the docstring).
        assert reference.read(thread_id)["turns"] == []
        assert stored_views(reference, thread_id) == expected
        third = reference.turn(thread_id, "three")
        after = reference.read(thread_id)
    finally:
        reference.close()
    assert after["turns"][:2] == expected["read"]["turns"]
    assert after["turns"][2]["id"] == third["id"]
    assert texts(after)[2] == [("user", "three"), ("agent", "Third answer.")]
    assert len(list((home / "sessions").rglob("rollout-*.jsonl"))) == 1

    # Back to codex-core: the turn the reference appended is part of the thread here too.
    ours = Session(server_command(), model, home, cwd)
    try:
        again = ours.server.result("thread/resume", {"threadId": thread_id})["thread"]
    finally:
        ours.close()
    assert stable(again) == stable(after)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, Path]:
    """The generator's template, recorded once by the reference; (template, its rollout)."""
    assert REFERENCE is not None
    rollout, home = record_template(REFERENCE, tmp_path_factory.mktemp("template"))
    return Template.parse(rollout, home), rollout


def test_generated_rollouts_keep_nothing_of_the_template(
    tmp_path: Path, template: tuple[Template, Path]
) -> None:
    """Every id, time, folder and message of the template is replaced per thread, so the
    threads are distinct and each file says what its name and the manifest say."""
    parsed, rollout = template
    original = rollout.read_text()
    uuids = set(re.findall(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}", original))
    first = json.loads(original.splitlines()[0])
    leftovers = {*uuids, first["timestamp"][:10], first["payload"]["cwd"], str(rollout.parents[4]),
                 TEMPLATE_QUESTION, TEMPLATE_ANSWER}  # fmt: skip
    home = tmp_path / "home"
    threads = generate(parsed, home, tmp_path / "projects", 40)
    assert len({thread.id for thread in threads}) == 40
    assert [t.created_ms for t in threads] == sorted({t.created_ms for t in threads})
    for thread in threads:
        path = home / thread.path
        text = path.read_text()
        assert not [value for value in leftovers if value in text], thread.path
        lines = [json.loads(line) for line in text.splitlines()]
        meta = lines[0]["payload"]
        assert (lines[0]["type"], meta["id"], meta["cwd"]) == (
            "session_meta",
            thread.id,
            thread.cwd,
        )
        created = datetime.fromtimestamp(thread.created_ms / 1000, UTC)
        assert path.name == f"rollout-{created:%Y-%m-%dT%H-%M-%S}-{thread.id}.jsonl"
        assert meta["timestamp"] == created.strftime("%Y-%m-%dT%H:%M:%S.") + (
            f"{thread.created_ms % 1000:03d}Z"
        )
        last = datetime.fromisoformat(lines[-1]["timestamp"].replace("Z", "+00:00"))
        assert path.stat().st_mtime == pytest.approx(last.timestamp(), abs=0.001)


@pytest.mark.parametrize("label", ["reference", "codex-core"])
def test_generated_threads_are_listed_and_resumed(
    tmp_path: Path, label: str, template: tuple[Template, Path]
) -> None:
    """``codex_core.testing.stored_threads`` (what bench/threads.py measures on) writes
    rollouts both servers list in order, with their previews, cwds and archived state, find
    by a word of their question, and resume with their turn."""
    assert REFERENCE is not None
    home = tmp_path / "generated" / "home"
    threads = generate(template[0], home, tmp_path / "projects", 20, mention_every=10)
    live = [thread for thread in reversed(threads) if not thread.archived]
    archived = [thread for thread in reversed(threads) if thread.archived]
    mentions = [thread.id for thread in live if SEARCH_TERM in thread.question]
    assert len(live) == 19 and len(archived) == 1 and len(mentions) == 2
    argv = REFERENCE if label == "reference" else server_command()
    env = {**os.environ, "CODEX_HOME": str(home)}
    server = StdioServer(argv, env, tmp_path)
    try:
        server.initialize(experimentalApi=True)
        listed = server.result("thread/list", {"limit": 100}, timeout=TURN_TIMEOUT)["data"]
        shown = [(t["id"], t["preview"], t["cwd"]) for t in listed]
        assert shown == [(t.id, t.question, t.cwd) for t in live]
        listed = server.result("thread/list", {"limit": 100, "archived": True})["data"]
        assert [t["id"] for t in listed] == [t.id for t in archived]
        for method in ("thread/search", "thread/list"):
            found = server.result(method, {"searchTerm": SEARCH_TERM})["data"]
            assert [t.get("thread", t)["id"] for t in found] == mentions, method
        resumed = server.result("thread/resume", {"threadId": live[-1].id}, timeout=TURN_TIMEOUT)
        assert texts(resumed["thread"]) == [[("user", live[-1].question),
                                             ("agent", live[-1].answer)]]  # fmt: skip
    finally:
        server.close()


@pytest.mark.parametrize(
    ("configured", "params", "listed"),
    [
        ("mock", {}, True),  # the server's own provider
        ("openai", {}, False),  # another provider's threads are not listed by default...
        ("openai", {"modelProviders": []}, True),  # ...unless every provider is asked for
        ("openai", {"modelProviders": ["mock"]}, True),
    ],
    ids=["own-provider", "other-provider", "all-providers", "named-provider"],
)
def test_thread_list_defaults_to_the_configured_provider(
    model: ScriptedModelServer,
    tmp_path: Path,
    configured: str,
    params: dict[str, Any],
    listed: bool,
) -> None:
    """A thread written against the scripted model (provider ``mock``) is listed by a server
    configured with another provider only when the request names it or asks for all, on both
    servers."""
    assert REFERENCE is not None
    home = tmp_path / "home"
    home.mkdir()
    thread_id = write_thread(REFERENCE, model, home, tmp_path)
    seen = {}
    for label, argv in (("reference", REFERENCE), ("codex-core", server_command())):
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        provider = ("-c", f"model_provider={configured}")  # after the scripted model's own
        server = StdioServer([*argv, *model.config_args(), *provider], env, tmp_path)
        try:
            server.initialize()
            seen[label] = [thread["id"] for thread in server.result("thread/list", params)["data"]]
        finally:
            server.close()
    expected = [thread_id] if listed else []
    assert seen == {"reference": expected, "codex-core": expected}
