"""The TUI's temporary structured threads (titles, ``/rename`` suggestions, ``/recap``), ours
against the official server, by what each sends the model.

The TUI starts them with ``thread/start`` (ephemeral, a ``config`` that turns the tools off)
and asks with ``turn/start`` + ``outputSchema``; it refuses any tool call the model makes in
them. Both servers run against a ``ScriptedModelServer`` and the model request bodies are
compared: the schema as ``text.format`` (that turn only) and the tools offered. Both are given
``apply_patch.catalog.json`` as ``model_catalog_json``: the reference offers ``apply_patch``
by the model's catalog entry whatever the thread's config, and ours always does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from codex_core.testing import ScriptedModelServer, message
from codex_core.testing.pytest_plugin import (
    ServerFactory,
    StdioServer,
    WsServerFactory,
    server_command,
)
from codex_core.testing.reference import reference_server_command

REFERENCE = reference_server_command()
FIXTURES = Path(__file__).parent / "fixtures" / "reference"
CATALOG = FIXTURES / "apply_patch.catalog.json"


def tui_side_thread_start() -> dict[str, Any]:
    """The ``thread/start`` params the official TUI sent for a title (from its trace)."""
    trace = FIXTURES / "traces" / "tui-turn-with-approval.ws.jsonl"
    for line in trace.read_text().splitlines():
        msg = json.loads(line).get("msg") or {}
        if msg.get("method") == "thread/start" and msg["params"]["threadSource"] == "thread_title":
            params: dict[str, Any] = msg["params"]
            return {key: value for key, value in params.items() if key not in ("cwd",)}
    raise AssertionError("no temporary structured thread in the trace")


SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string", "minLength": 1, "maxLength": 36}},
    "required": ["title"],
    "additionalProperties": False,
}


def tool_names(body: dict[str, Any]) -> list[str]:
    return sorted(str(tool.get("name")) for tool in body.get("tools") or [])


def side_thread_requests(argv: list[str], tmp: Path, *extra: str) -> list[dict[str, Any]]:
    """A title turn with ``outputSchema``, then a plain one, in a temporary structured
    thread; then a turn with ``outputSchema`` in an ordinary thread. What the model got."""
    home, cwd = tmp / "home", tmp / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    with ScriptedModelServer() as model:
        model.add(message('{"title":"Run the mock command"}'), message("plain"), message("{}"))
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer([*argv, *model.config_args(), *extra], env, cwd)
        try:
            server.initialize(experimentalApi=True)
            side = server.result("thread/start", tui_side_thread_start())["thread"]["id"]
            normal = server.result("thread/start", {})["thread"]["id"]
            for thread_id, schema in ((side, SCHEMA), (side, None), (normal, {"type": "object"})):
                turn = {"threadId": thread_id, "input": [{"type": "text", "text": "title?"}]}
                server.result("turn/start", {**turn, "outputSchema": schema}, timeout=30)
                completed = server.wait_notification(
                    "turn/completed",
                    where=lambda p, t=thread_id: p["threadId"] == t,
                    timeout=30,
                )
                assert completed["params"]["turn"]["status"] == "completed"
        finally:
            server.close()
        return [request.body for request in model.requests]


def summary(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"text": body.get("text"), "tools": tool_names(body)} for body in bodies]


@pytest.mark.skipif(REFERENCE is None, reason="the official server is not installed")
def test_side_thread_requests_match_the_reference(tmp_path: Path) -> None:
    """The schema goes out as the reference's strict ``json_schema`` format for its turn
    only, and the side thread's config leaves the model only what the catalog forces."""
    assert REFERENCE is not None
    catalog = f"model_catalog_json={json.dumps(str(CATALOG))}"
    ours = side_thread_requests(server_command(), tmp_path / "ours", "-c", catalog)
    theirs = side_thread_requests(REFERENCE, tmp_path / "reference", "-c", catalog)
    fmt = {"type": "json_schema", "strict": True, "schema": SCHEMA, "name": "codex_output_schema"}
    assert (
        summary(ours)[:2]
        == summary(theirs)[:2]
        == [
            {"text": {"format": fmt}, "tools": ["apply_patch"]},
            {"text": None, "tools": ["apply_patch"]},
        ]
    )
    assert ours[2]["text"] == theirs[2]["text"]
    assert json.dumps(ours[0]["text"]) == json.dumps(theirs[0]["text"])  # key order too


def test_the_side_thread_config_turns_every_tool_off(tmp_path: Path) -> None:
    """Without a catalog entry asking for ``apply_patch``: the shell and the sub-agent tools
    an ordinary thread gets are gone from the side thread's model requests."""
    ours = side_thread_requests(server_command(), tmp_path)
    assert {"exec_command", "multi_agent_v1"} <= set(tool_names(ours[2]))
    assert "exec_command" not in tool_names(ours[0])
    assert "multi_agent_v1" not in tool_names(ours[0])


def loaded_after_unsubscribing(argv: list[str], tmp: Path) -> dict[str, Any]:
    """An ephemeral thread with a turn and an ephemeral fork (a ``/side`` conversation), both
    unsubscribed by their only client: what ``thread/loaded/list`` and ``thread/read`` say."""
    home, cwd = tmp / "home", tmp / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    with ScriptedModelServer() as model:
        model.add(message("main"), message("ephemeral"), message("side"))
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer([*argv, *model.config_args()], env, cwd)
        try:
            server.initialize()
            main = server.result("thread/start", {})["thread"]["id"]
            ephemeral = server.result("thread/start", {"ephemeral": True})["thread"]["id"]
            fork = {"threadId": main, "ephemeral": True, "excludeTurns": True}
            for thread_id in (main, ephemeral, None):
                if thread_id is None:
                    thread_id = side = server.result("thread/fork", fork)["thread"]["id"]
                turn = {"threadId": thread_id, "input": [{"type": "text", "text": "hi"}]}
                server.result("turn/start", turn)
                server.wait_notification(
                    "turn/completed", where=lambda p, t=thread_id: p["threadId"] == t, timeout=30
                )
            unsubscribed = [
                server.result("thread/unsubscribe", {"threadId": thread_id})["status"]
                for thread_id in (ephemeral, side)
            ]
            server.barrier()
            loaded = server.result("thread/loaded/list", {})["data"]
            read = server.result("thread/read", {"threadId": side})["thread"]
            return {
                "unsubscribed": unsubscribed,
                "closed": [n for n in server.notifications if n["method"] == "thread/closed"],
                "still loaded": [t in loaded for t in (main, ephemeral, side)],
                "side status": read["status"],
                "again": server.result("thread/unsubscribe", {"threadId": side})["status"],
            }
        finally:
            server.close()


@pytest.mark.skipif(REFERENCE is None, reason="the official server is not installed")
def test_ephemeral_threads_stay_loaded_when_unsubscribed_as_in_the_reference(
    tmp_path: Path,
) -> None:
    """The official server (0.169) keeps an ephemeral thread loaded after its last
    subscriber leaves, like any other thread, until it has been idle for
    ``unload_idle_after_secs``; so does ours (no ``thread/closed`` at once)."""
    assert REFERENCE is not None
    ours = loaded_after_unsubscribing(server_command(), tmp_path / "ours")
    theirs = loaded_after_unsubscribing(REFERENCE, tmp_path / "reference")
    assert (
        ours
        == theirs
        == {
            "unsubscribed": ["unsubscribed", "unsubscribed"],
            "closed": [],
            "still loaded": [True, True, True],
            "side status": {"type": "idle"},
            "again": "notSubscribed",
        }
    )


def test_an_unsubscribed_side_thread_is_closed_once_idle(
    start_server: ServerFactory, codex_model_server: ScriptedModelServer
) -> None:
    """``/side``'s ephemeral fork, unsubscribed, goes with the idle unload of any thread:
    ``thread/closed``, gone from ``thread/loaded/list``, and (with no rollout) unknown."""
    codex_model_server.add(message("main"))
    server = start_server(
        *codex_model_server.config_args(), "-c", "threads.unload_idle_after_secs=0.2",
        env=codex_model_server.env,
    )  # fmt: skip
    server.initialize()
    main = server.result("thread/start", {})["thread"]["id"]
    server.result("turn/start", {"threadId": main, "input": [{"type": "text", "text": "hi"}]})
    server.wait_notification("turn/completed", timeout=30)
    fork = {"threadId": main, "ephemeral": True, "excludeTurns": True}
    side = server.result("thread/fork", fork)["thread"]["id"]
    assert server.result("thread/unsubscribe", {"threadId": side}) == {"status": "unsubscribed"}
    closed = server.wait_notification("thread/closed", timeout=10)
    assert closed["params"] == {"threadId": side}
    assert server.result("thread/loaded/list", {})["data"] == [main]
    assert server.error("thread/read", {"threadId": side}) == {
        "code": -32600,
        "message": f"thread not loaded: {side}",
    }


def test_a_side_thread_whose_client_left_is_closed_once_idle(
    codex_ws_server_factory: WsServerFactory,
) -> None:
    """A client that disconnects leaves its ephemeral threads to the idle unload too; the
    clients still connected hear ``thread/closed``."""
    server = codex_ws_server_factory("-c", "threads.unload_idle_after_secs=0.2")

    async def go() -> None:
        async with await server.client() as watcher:
            await watcher.initialize()
            async with await server.client() as leaving:
                await leaving.initialize()
                started = await leaving.request("thread/start", {"ephemeral": True})
                side = started["thread"]["id"]
                assert (await watcher.request("thread/loaded/list", {}))["data"] == [side]
            assert await watcher.wait_for("thread/closed", timeout=10) == {"threadId": side}
            assert (await watcher.request("thread/loaded/list", {}))["data"] == []

    anyio.run(go)


def side_thread_started(argv: list[str], tmp: Path) -> dict[str, Any]:
    """The ``thread/start`` answer to the TUI's side-thread params, without what differs
    between any two runs (ids, times, the version, the test's folder)."""
    home, cwd = tmp / "home", tmp / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    with ScriptedModelServer() as model:  # (the TUI names the trace's model provider)
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer([*argv, *model.config_args()], env, cwd)
        try:
            server.initialize(experimentalApi=True)
            started: dict[str, Any] = server.result("thread/start", tui_side_thread_start())
        finally:
            server.close()
        base_url = model.base_url
    thread = started["thread"]
    for key in ("id", "sessionId", "createdAt", "updatedAt", "recencyAt", "cliVersion"):
        thread[key] = f"<{key}>"
    text = json.dumps(started).replace(str(tmp), "<tmp>").replace(base_url, "<model>")
    masked: dict[str, Any] = json.loads(text)
    return masked


@pytest.mark.skipif(REFERENCE is None, reason="the official server is not installed")
def test_the_side_thread_starts_as_in_the_reference(tmp_path: Path) -> None:
    """Its ``threadSource`` is kept, and ``environments: []`` leaves it without an
    environment (no ``runtimeWorkspaceRoots``)."""
    assert REFERENCE is not None
    ours = side_thread_started(server_command(), tmp_path / "ours")
    assert ours == side_thread_started(REFERENCE, tmp_path / "reference")
    assert ours["thread"]["threadSource"] == "thread_title"
    assert ours["thread"]["environments"] == ours["runtimeWorkspaceRoots"] == []
