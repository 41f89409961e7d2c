"""``thread/metadata/update`` on stored threads: the patch outlives the process, shows in
``thread/list`` and on a resumed thread; the conformance case
(``tests/conformance/thread_metadata_update.jsonl``) compares a live thread and the refusals
with the reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_turns import model, run_turn, serve, start_thread

from codex_core.testing import ScriptedModelServer

__all__ = ["model"]  # the fixture the tests use


def test_git_info_persists_and_shows_everywhere(
    start_server: Any, model: ScriptedModelServer, codex_home: Path
) -> None:
    model.add("hello")
    server = serve(start_server, model)
    thread_id = start_thread(server)
    run_turn(server, thread_id, "hi")
    patch = {"branch": "main", "sha": "abc", "originUrl": "https://example.com/r.git"}
    answer = server.result("thread/metadata/update", {"threadId": thread_id, "gitInfo": patch})
    assert answer["thread"]["gitInfo"] == patch
    server.result("thread/metadata/update", {"threadId": thread_id, "gitInfo": {"sha": None}})
    server.close()

    expected = {**patch, "sha": None}
    again = serve(start_server, model)
    [listed] = again.result("thread/list", {})["data"]
    assert listed["gitInfo"] == expected
    assert again.result("thread/read", {"threadId": thread_id})["thread"]["gitInfo"] == expected
    # Not loaded: the stored thread is patched, and answered as stored.
    answer = again.result(
        "thread/metadata/update", {"threadId": thread_id, "gitInfo": {"branch": "next"}}
    )
    assert answer["thread"]["status"] == {"type": "notLoaded"}
    assert answer["thread"]["gitInfo"] == {**expected, "branch": "next"}
    resumed = again.result("thread/resume", {"threadId": thread_id})["thread"]
    assert resumed["gitInfo"] == {**expected, "branch": "next"}


def test_an_ephemeral_thread_keeps_its_patch_in_memory(
    start_server: Any, model: ScriptedModelServer, codex_home: Path
) -> None:
    server = serve(start_server, model)
    thread_id = start_thread(server, ephemeral=True)
    answer = server.result(
        "thread/metadata/update", {"threadId": thread_id, "gitInfo": {"branch": "tmp"}}
    )
    assert answer["thread"]["gitInfo"] == {"sha": None, "branch": "tmp", "originUrl": None}
    assert not (codex_home / "thread_git_info.jsonl").exists()
