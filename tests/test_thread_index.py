"""The default thread store's SQLite index (``codex_core.threads.indexed_store``) is only a
cache of the rollouts: whatever happens to it, ``thread/list`` and ``thread/read`` answer what
the rollouts say.

Real servers over stdio in a temporary ``CODEX_HOME``: the index deleted, corrupted, or left
behind by a server killed mid-burst; rollouts added or removed by another process (a copy, the
official server) while ours runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codex_core.hookspecs import hookimpl
from codex_core.testing import ScriptedModelServer
from codex_core.testing.pytest_plugin import StdioServer, needs_reference
from codex_core.testing.reference import reference_server_command
from codex_core.threads.indexed_store import IndexedThreadStore
from codex_core.threads.store import ListedThread, ThreadQuery

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "rollouts" / "sessions"
FIXTURE_ID = "01a2097f-4bbc-7ad0-94ab-ac027bc8f10e"
INDEX = Path("codex-core") / "threads.sqlite"
#: The listings compared before and after: every filter and order the index answers.
LISTINGS: list[dict[str, Any]] = [
    {},
    {"limit": 2},
    {"sortKey": "updated_at"},
    {"sortDirection": "asc", "limit": 3},
    {"archived": True},
    {"searchTerm": "named"},
    {"searchTerm": "second"},
    {"modelProviders": ["mock"]},
    {"sourceKinds": ["subAgent", "vscode", "cli", "exec"]},
]


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


def serve(start_server: Any, model: ScriptedModelServer) -> StdioServer:
    server: StdioServer = start_server(*model.config_args(), env=model.env)
    server.initialize()
    return server


def start_turn(server: StdioServer, thread_id: str, text: str, **settings: Any) -> None:
    text_input = [{"type": "text", "text": text, "text_elements": []}]
    server.result("turn/start", {"threadId": thread_id, "input": text_input, **settings})


def new_thread(server: StdioServer, model: ScriptedModelServer, text: str) -> str:
    model.add(f"answer to {text}")
    thread_id = str(server.result("thread/start", {})["thread"]["id"])
    start_turn(server, thread_id, text)
    server.wait_notification("turn/completed", where=lambda p: p["threadId"] == thread_id)
    return thread_id


def snapshot(server: StdioServer) -> dict[str, Any]:
    """Every listing of ``LISTINGS`` (following cursors to the end) and every thread read."""
    listings = []
    ids: set[str] = set()
    for params in LISTINGS:
        pages, cursor = [], None
        while True:
            page = server.result("thread/list", {**params, "cursor": cursor})
            pages.append(page)
            ids.update(thread["id"] for thread in page["data"])
            cursor = page["nextCursor"]
            if cursor is None:
                break
        listings.append(pages)
    reads = {}
    for thread_id in sorted(ids):
        full = server.result("thread/read", {"threadId": thread_id, "includeTurns": True})
        alone = server.result("thread/read", {"threadId": thread_id})
        # Without its turns a thread is read from the rollout's head and last turn settings:
        # the same thread, the same read state.
        assert alone == {**full, "thread": {**full["thread"], "turns": []}}
        reads[thread_id] = full
    return {"listings": listings, "reads": reads}


def remove_index(home: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{home / INDEX}{suffix}").unlink(missing_ok=True)


def listed_on_disk(home: Path) -> set[str]:
    """The threads whose rollout (not archived) has a user message: what ``thread/list``
    must list, read from the files themselves."""
    found = set()
    for path in (home / "sessions").rglob("rollout-*.jsonl"):
        for raw in path.read_text(encoding="utf-8").splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            item = (line.get("payload") or {}).get("item") or {}
            if line.get("type") == "event_msg" and item.get("type") == "UserMessage":
                found.add(path.name[-len(FIXTURE_ID) - len(".jsonl") : -len(".jsonl")])
                break
    return found


def all_listed(server: StdioServer) -> set[str]:
    ids, cursor = set(), None
    while True:
        page = server.result("thread/list", {"limit": 100, "cursor": cursor})
        ids.update(thread["id"] for thread in page["data"])
        cursor = page["nextCursor"]
        if cursor is None:
            return ids


def test_deleting_or_corrupting_the_index_loses_nothing(
    start_server: Any, model: ScriptedModelServer, codex_home: Path
) -> None:
    server = serve(start_server, model)
    first = new_thread(server, model, "first thread")
    second = new_thread(server, model, "second thread")
    new_thread(server, model, "third thread")
    archived = new_thread(server, model, "archived thread")
    model.add("a later answer")
    start_turn(server, first, "a later turn", model="a-later-model")
    server.wait_notification("turn/completed")
    server.result("thread/name/set", {"threadId": second, "name": "Named one"})
    server.result("thread/archive", {"threadId": archived})
    server.close()
    assert (codex_home / INDEX).is_file()

    server = serve(start_server, model)  # (all unloaded, as after every restart)
    before = snapshot(server)
    server.close()
    assert [t["id"] for t in before["listings"][0][0]["data"]][-1] == first
    assert before["reads"][first]["thread"]["model"] == "a-later-model"
    assert before["listings"][5][0]["data"][0]["name"] == "Named one"
    assert [t["id"] for t in before["listings"][4][0]["data"]] == [archived]

    remove_index(codex_home)
    server = serve(start_server, model)
    assert snapshot(server) == before
    server.close()
    assert (codex_home / INDEX).is_file()

    (codex_home / INDEX).write_bytes(b"this is not an SQLite database" * 100)
    server = serve(start_server, model)
    assert snapshot(server) == before


def test_rollouts_added_and_removed_by_another_process_show(
    start_server: Any, model: ScriptedModelServer, codex_home: Path
) -> None:
    server = serve(start_server, model)
    ours = new_thread(server, model, "ours")
    assert [t["id"] for t in server.result("thread/list", {})["data"]] == [ours]
    # Another process writes a rollout into a folder the index has not seen.
    shutil.copytree(FIXTURE, codex_home / "sessions", dirs_exist_ok=True)
    listed = server.result("thread/list", {})["data"]
    assert [t["id"] for t in listed] == [ours, FIXTURE_ID]
    assert listed[1]["preview"] == "hi there" and listed[1]["modelProvider"] == "mock"
    read = server.result("thread/read", {"threadId": FIXTURE_ID, "includeTurns": True})
    assert len(read["thread"]["turns"]) == 2
    # ... and removes it again: gone from the listing, unknown to lookups.
    next((codex_home / "sessions").rglob(f"*{FIXTURE_ID}.jsonl")).unlink()
    assert [t["id"] for t in server.result("thread/list", {})["data"]] == [ours]
    error = server.error("thread/read", {"threadId": FIXTURE_ID})
    assert error["message"] == f"thread not loaded: {FIXTURE_ID}"


@needs_reference
def test_a_thread_the_reference_writes_meanwhile_is_listed_and_resumed(
    start_server: Any, model: ScriptedModelServer, codex_home: Path, tmp_path: Path
) -> None:
    reference = reference_server_command()
    assert reference is not None
    server = serve(start_server, model)
    ours = new_thread(server, model, "ours first")
    assert [t["id"] for t in server.result("thread/list", {})["data"]] == [ours]

    env = {**os.environ, "CODEX_HOME": str(codex_home), **model.env}
    official = StdioServer([*reference, *model.config_args()], env, tmp_path)
    try:
        official.initialize()
        theirs = new_thread(official, model, "written by the reference")
    finally:
        official.close()

    listed = server.result("thread/list", {})["data"]
    assert [t["id"] for t in listed] == [theirs, ours]
    assert listed[0]["preview"] == "written by the reference"
    resumed = server.result("thread/resume", {"threadId": theirs})["thread"]
    assert [t["status"] for t in resumed["turns"]] == ["completed"]
    model.add("we carry on")
    start_turn(server, theirs, "our turn in their thread")
    server.wait_notification("turn/completed", where=lambda p: p["threadId"] == theirs)
    assert model.requests[-1].input_texts("assistant") == ["answer to written by the reference"]


@pytest.mark.parametrize("opened", [True, False], ids=["index-open", "index-not-open-yet"])
def test_a_server_killed_during_a_burst_of_writes_leaves_index_and_rollouts_consistent(
    start_server: Any, model: ScriptedModelServer, codex_home: Path, opened: bool
) -> None:
    """With the index open, writers mark their rollouts in it; before a request opened it,
    new threads' turns do not wait for it, and the next server finds their rollouts by their
    folders' mtimes."""
    server = serve(start_server, model)
    all_listed(server)  # the index exists
    if not opened:  # ... and this server has not opened it
        server.close()
        server = serve(start_server, model)
    threads = []
    for n in range(8):
        model.add(f"answer {n}")
        threads.append(server.result("thread/start", {})["thread"]["id"])
    for n, thread_id in enumerate(threads):
        start_turn(server, thread_id, f"burst {n}")
    server.wait_until(
        lambda: sum(m["method"] == "turn/completed" for m in server.notifications) >= 3,
        timeout=30,
        what="three turns of the burst done",
    )
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()

    server = serve(start_server, model)
    after_kill = snapshot(server)
    listed = all_listed(server)
    assert listed == listed_on_disk(codex_home)
    assert len(listed) >= 3
    server.close()

    remove_index(codex_home)
    server = serve(start_server, model)
    assert snapshot(server) == after_kill


def test_rollouts_named_after_the_index_are_found_by_id(
    start_server: Any, model: ScriptedModelServer, codex_home: Path
) -> None:
    """``thread/name/set`` and ``thread/resume`` of a thread the index has not seen yet
    (copied in while the server runs): a lookup by id rescans before it gives up."""
    server = serve(start_server, model)
    assert server.result("thread/list", {})["data"] == []
    shutil.copytree(FIXTURE, codex_home / "sessions")
    assert server.result("thread/name/set", {"threadId": FIXTURE_ID, "name": "Copied"}) == {}
    (listed,) = server.result("thread/list", {})["data"]
    assert listed["name"] == "Copied"
    assert server.result("thread/resume", {"threadId": FIXTURE_ID})["thread"]["name"] == "Copied"


class RecordingStore(IndexedThreadStore):
    """The default store with its index elsewhere, noting which of its methods are called."""

    def __init__(self, home: Path, index: Path) -> None:
        super().__init__(home, index)
        self.calls: list[str] = []

    def find(self, thread_id: str) -> Path | None:
        self.calls.append("find")
        return super().find(thread_id)

    def list(self, query: ThreadQuery) -> Iterator[ListedThread]:
        self.calls.append("list")
        return super().list(query)

    def set_name(self, thread_id: str, name: str | None) -> None:
        self.calls.append("set_name")
        super().set_name(thread_id, name)


class StorePlugin:
    def __init__(self, store: object) -> None:
        self.store = store

    @hookimpl
    def codex_thread_store(self) -> object:
        return self.store


@pytest.mark.anyio
async def test_a_store_a_plugin_provides_is_used(
    codex_kernel_factory: Any, codex_home: Path, tmp_path: Path
) -> None:
    shutil.copytree(FIXTURE, codex_home / "sessions")
    store = RecordingStore(codex_home, tmp_path / "elsewhere.sqlite")
    kernel = codex_kernel_factory(plugins=[StorePlugin(store)])
    async with kernel, kernel.connect() as client:
        await client.initialize("tests", "1")
        # The fixture was recorded with the scripted model's provider, not the configured one.
        (listed,) = (await client.request("thread/list", {"modelProviders": []}))["data"]
        assert listed["id"] == FIXTURE_ID
        await client.request("thread/name/set", {"threadId": FIXTURE_ID, "name": "Mine"})
        read = await client.request("thread/read", {"threadId": FIXTURE_ID})
        assert read["thread"]["name"] == "Mine"
    assert {"list", "find", "set_name"} <= set(store.calls)
    assert (tmp_path / "elsewhere.sqlite").is_file()
    assert not (codex_home / INDEX).exists()


@pytest.mark.anyio
async def test_a_plugin_returning_no_store_fails_and_the_default_serves(
    codex_kernel_factory: Any, codex_home: Path
) -> None:
    shutil.copytree(FIXTURE, codex_home / "sessions")
    kernel = codex_kernel_factory(plugins=[StorePlugin("not a store")])
    async with kernel, kernel.connect() as client:
        await client.initialize("tests", "1")
        # The fixture was recorded with the scripted model's provider, not the configured one.
        (listed,) = (await client.request("thread/list", {"modelProviders": []}))["data"]
        assert listed["id"] == FIXTURE_ID
    record = kernel.plugins.records["StorePlugin"]
    assert record.state == "failed"
    assert record.error == "codex_thread_store returned 'not a store', not a store"
    assert (codex_home / INDEX).is_file()
