"""Thread sections outlive the server: what ``tests/conformance/thread_sections.jsonl`` compares
with the reference within one process, read back by the next one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_core.testing.pytest_plugin import StdioServer
from codex_core.threads.sections import PINNED


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
