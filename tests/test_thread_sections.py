"""Thread sections and threads in them outlive the server: what
``tests/conformance/thread_sections.jsonl`` and ``thread_section_move.jsonl`` compare with the
reference within one process, read back by the next one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_turns import model, run_turn, serve, start_thread

from codex_core.testing import ScriptedModelServer
from codex_core.testing.pytest_plugin import StdioServer
from codex_core.threads.sections import PINNED

__all__ = ["model"]  # the fixture the tests use


def test_sections_persist_across_restarts(start_server: Any, codex_home: Path) -> None:
    server: StdioServer = start_server()
    server.initialize()
    kept = server.result("threadSection/create", {"name": "Kept", "appearance": {"icon": "i"}})
    gone = server.result("threadSection/create", {"name": "Gone"})["section"]
    renamed = server.result(
        "threadSection/update", {"sectionId": kept["section"]["id"], "name": "Renamed"}
    )["section"]
    assert renamed["appearance"] == {"icon": "i", "color": None}  # omitted: kept
    server.result("threadSection/delete", {"sectionId": gone["id"]})
    server.close()

    again: StdioServer = start_server()
    again.initialize()
    assert again.result("threadSection/list", {}) == {"data": [PINNED, renamed], "nextCursor": None}
    error = again.error("threadSection/delete", {"sectionId": gone["id"]})
    assert (error["code"], error["message"]) == (-32602, f"thread section not found: {gone['id']}")


def test_a_stored_thread_keeps_its_section_and_lists_by_it(
    start_server: Any, model: ScriptedModelServer, codex_home: Path
) -> None:
    model.add("one", "two")
    server = serve(start_server, model)
    first, second = start_thread(server), start_thread(server)
    run_turn(server, first, "hi")
    run_turn(server, second, "hello")
    work = server.result("threadSection/create", {"name": "Work"})["section"]
    server.result("thread/section/move", {"threadId": first, "sectionId": work["id"]})
    server.result(
        "thread/section/move",
        {"threadId": second, "sectionId": work["id"], "beforeThreadId": first},
    )
    server.result("thread/section/move", {"threadId": second, "sectionId": None})
    server.close()

    again = serve(start_server, model)
    listed = again.result("thread/list", {"sectionId": work["id"]})["data"]
    assert [thread["id"] for thread in listed] == [first]
    assert listed[0]["section"] == work
    assert isinstance(listed[0]["sectionEnteredAt"], int)
    everything = {t["id"]: t for t in again.result("thread/list", {})["data"]}
    assert everything[second]["section"] is None
    resumed = again.result("thread/resume", {"threadId": first})["thread"]
    assert resumed["section"] == work
    # Deleting the section empties it.
    again.result("threadSection/delete", {"sectionId": work["id"]})
    assert again.result("thread/read", {"threadId": first})["thread"]["section"] is None
    assert again.result("thread/list", {"sectionId": work["id"]})["data"] == []
