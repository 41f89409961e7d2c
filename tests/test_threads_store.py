"""The thread store: rollouts on disk, listing, archive, names, subscriptions."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from codex_core.kernel import Kernel
from codex_core.testing import ScriptedModelServer
from codex_core.testing.pytest_plugin import StdioServer

REPO = Path(__file__).resolve().parents[1]

FIXTURE = REPO / "tests" / "fixtures" / "rollouts"
REFERENCE_ID = "01a2097f-4bbc-7ad0-94ab-ac027bc8f10e"


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


def serve(start_server: Any, model: ScriptedModelServer) -> StdioServer:
    server: StdioServer = start_server(*model.config_args(), env=model.env)
    server.initialize()
    return server


def turn(server: StdioServer, thread_id: str, text: str) -> None:
    server.result(
        "turn/start",
        {"threadId": thread_id, "input": [{"type": "text", "text": text, "text_elements": []}]},
    )
    server.wait_notification("turn/completed")


def new_thread(server: StdioServer, model: ScriptedModelServer, text: str) -> str:
    model.add(f"answer to {text}")
    thread_id = str(server.result("thread/start", {})["thread"]["id"])
    turn(server, thread_id, text)
    return thread_id


def test_reference_rollout_is_listed_read_and_resumed(
    start_server: Any, model: Any, codex_home: Path
) -> None:
    shutil.copytree(FIXTURE / "sessions", codex_home / "sessions")
    server = serve(start_server, model)
    (listed,) = server.result("thread/list", {})["data"]
    assert listed["id"] == REFERENCE_ID
    assert listed["preview"] == "hi there"
    assert listed["modelProvider"] == "mock" and listed["model"] == "mock-model"
    assert listed["cliVersion"] == "0.169.0" and listed["originator"] == "capture"
    assert listed["createdAt"] == 1795455667
    read = server.result("thread/read", {"threadId": REFERENCE_ID, "includeTurns": True})
    turns = read["thread"]["turns"]
    assert [t["status"] for t in turns] == ["completed", "completed"]
    assert [[i["type"] for i in t["items"]] for t in turns] == [
        ["userMessage", "agentMessage"], ["userMessage", "agentMessage"]]  # fmt: skip
    assert turns[0]["items"][1]["text"] == "Hello from the mock."
    assert turns[0]["durationMs"] == 117
    resumed = server.result("thread/resume", {"threadId": REFERENCE_ID})
    assert resumed["thread"]["turns"] == turns
    assert resumed["thread"]["status"] == {"type": "idle"}
    # The resumed thread goes on, with the reference's history sent to the model.
    model.add("third answer")
    turn(server, REFERENCE_ID, "third")
    request = model.requests[-1]
    assert request.input_texts("assistant") == ["Hello from the mock.", "Second answer."]
    assert request.input_texts("user")[-1] == "third"


def test_list_paginates_and_filters(start_server: Any, model: Any) -> None:
    server = serve(start_server, model)
    ids = [new_thread(server, model, f"t{n}") for n in range(3)]
    page = server.result("thread/list", {"limit": 2})
    assert [t["id"] for t in page["data"]] == ids[::-1][:2]
    assert page["nextCursor"] is not None
    rest = server.result("thread/list", {"limit": 2, "cursor": page["nextCursor"]})
    assert [t["id"] for t in rest["data"]] == [ids[0]]
    assert rest["nextCursor"] is None
    assert server.result("thread/list", {"modelProviders": ["openai"]})["data"] == []
    assert len(server.result("thread/list", {"modelProviders": ["mock"]})["data"]) == 3
    assert server.error("thread/list", {"cursor": "nope"})["code"] == -32600


def test_archive_unarchive_and_names(start_server: Any, model: Any, codex_home: Path) -> None:
    server = serve(start_server, model)
    thread_id = new_thread(server, model, "keep me")
    assert server.result("thread/name/set", {"threadId": thread_id, "name": "My thread"}) == {}
    named = server.wait_notification("thread/name/updated")["params"]
    assert named == {"threadId": thread_id, "threadName": "My thread"}
    assert server.result("thread/archive", {"threadId": thread_id}) == {}
    assert server.wait_notification("thread/archived")["params"] == {"threadId": thread_id}
    assert list((codex_home / "archived_sessions").glob(f"*{thread_id}.jsonl"))
    assert server.result("thread/list", {})["data"] == []
    (archived,) = server.result("thread/list", {"archived": True})["data"]
    assert archived["name"] == "My thread" and archived["status"] == {"type": "notLoaded"}
    restored = server.result("thread/unarchive", {"threadId": thread_id})["thread"]
    assert restored["id"] == thread_id and restored["name"] == "My thread"
    assert server.wait_notification("thread/unarchived")["params"] == {"threadId": thread_id}
    assert [t["id"] for t in server.result("thread/list", {})["data"]] == [thread_id]


def test_unknown_and_malformed_ids(server: StdioServer) -> None:
    zero = "00000000-0000-0000-0000-000000000000"
    for method in ("thread/read", "thread/resume", "thread/archive"):
        assert server.error(method, {"threadId": zero})["code"] == -32600
    error = server.error("turn/start", {"threadId": "nope", "input": []})
    assert error["message"].startswith("invalid thread id")
    assert server.result("thread/unsubscribe", {"threadId": zero}) == {"status": "notLoaded"}


@pytest.mark.anyio
async def test_only_subscribers_get_a_threads_events(
    model: ScriptedModelServer, tmp_path: Path
) -> None:
    overrides = model.config_args()[1::2]
    model.add("for the subscriber", "second")
    kernel = Kernel(codex_home=tmp_path, config_overrides=overrides)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(model.env_key, model.api_key)
        async with kernel, kernel.connect() as owner, kernel.connect() as other:
            await owner.initialize("owner", "1")
            await other.initialize("other", "1")
            started = await owner.request("thread/start", {})
            thread_id = started["thread"]["id"]
            text = [{"type": "text", "text": "hi", "text_elements": []}]
            await owner.request("turn/start", {"threadId": thread_id, "input": text})
            await owner.wait_for("turn/completed", timeout=10)
            seen: list[str] = []
            with anyio.move_on_after(0.3):
                async for method, _params in other.notifications():
                    seen.append(method)
            assert seen == []
            assert model.requests[0].headers["originator"] == "owner"
            # After unsubscribing, the owner hears nothing either.
            assert await owner.request("thread/unsubscribe", {"threadId": thread_id}) == {
                "status": "unsubscribed"}  # fmt: skip
            await other.request("thread/resume", {"threadId": thread_id})
            await other.request("turn/start", {"threadId": thread_id, "input": text})
            await other.wait_for("turn/completed", timeout=10)
            with anyio.move_on_after(0.3):
                async for method, _params in owner.notifications():
                    seen.append(method)
            assert "turn/completed" not in seen


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
