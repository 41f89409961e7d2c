"""MCP servers written with the SDK (``mcp_test_server.py``), driven through a real
``codex-app-server``: over stdio and over streamable HTTP on loopback."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing import ScriptedModelServer, function_call, message
from codex_core.testing.pytest_plugin import ServerFactory, StdioServer, needs_reference
from codex_core.testing.reference import reference_server_command

SERVER = Path(__file__).with_name("mcp_test_server.py")
TOKEN = "s3cret-token"


def stdio_table(name: str, *extra: str) -> list[str]:
    fields = ", ".join([f'command="{sys.executable}"', f'args=["{SERVER}", "stdio"]', *extra])
    return ["-c", f"mcp_servers.{name}={{{fields}}}"]


@pytest.fixture
def http_server(start_loopback: Callable[..., int]) -> str:
    """The test server over streamable HTTP on loopback, requiring ``Bearer s3cret-token``."""
    port = start_loopback(SERVER, "http", env={"MCP_TEST_TOKEN": TOKEN})
    return f"http://127.0.0.1:{port}/mcp"


def start(
    factory: ServerFactory, model: ScriptedModelServer, *args: str, **env: str
) -> StdioServer:
    server = factory(*model.config_args(), *args, env={**model.env, **env})
    server.initialize()
    return server


def startup(server: StdioServer, name: str) -> list[dict[str, Any]]:
    """The ``mcpServer/startupStatus/updated`` params of one server, in order."""
    return [
        n["params"]
        for n in server.notifications
        if n["method"] == "mcpServer/startupStatus/updated" and n["params"]["name"] == name
    ]


def statuses(server: StdioServer, name: str) -> list[str]:
    return [params["status"] for params in startup(server, name)]


def run_turn(server: StdioServer, cwd: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One turn; returns the notifications it sent and its ``turn/completed`` params."""
    thread = server.result("thread/start", {"cwd": str(cwd)})["thread"]
    text = [{"type": "text", "text": "go", "text_elements": []}]
    before = len(server.notifications)
    server.result("turn/start", {"threadId": thread["id"], "input": text})
    completed = server.wait_notification("turn/completed", timeout=30)["params"]
    return server.notifications[before:], completed


def mcp_items(notifications: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [
        n["params"]["item"]
        for n in notifications
        if n["method"] == method and n["params"]["item"]["type"] == "mcpToolCall"
    ]


def test_no_servers_lists_nothing(codex_server: StdioServer) -> None:
    assert codex_server.result("mcpServerStatus/list", {}) == {"data": [], "nextCursor": None}
    assert codex_server.result("config/mcpServer/reload") == {}


def test_stdio_server_status_methods_and_a_failing_server(
    codex_server_factory: ServerFactory, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    server = start(
        codex_server_factory,
        codex_model_server,
        *stdio_table(
            "probe", f'cwd="{tmp_path}"', 'env={MCP_TEST_WHO="codex"}', 'disabled_tools=["crash"]'
        ),
        "-c",
        'mcp_servers.broken={command="/nonexistent/mcp-server"}',
        "-c",
        'mcp_servers.off={command="/nonexistent/x", enabled=false}',
    )
    listed = server.result("mcpServerStatus/list", {}, timeout=30)
    assert listed["nextCursor"] is None
    broken, probe = listed["data"]
    assert set(probe) == {
        "name",
        "runtimeStatus",
        "pluginId",
        "httpOrigin",
        "serverInfo",
        "serverCapabilities",
        "toolListMeta",
        "tools",
        "toolsError",
        "resources",
        "resourceTemplates",
        "authStatus",
    }
    assert probe["name"] == "probe" and probe["authStatus"] == "unsupported"
    assert sorted(probe["tools"]) == [
        "add", "echo", "fail", "greet", "pid", "plain", "slow", "whoami"
    ]  # fmt: skip
    assert probe["tools"]["add"]["inputSchema"]["required"] == ["a", "b"]
    assert probe["serverInfo"]["name"] == "codex-test" and probe["toolsError"] is None
    assert probe["resources"] == [
        {
            "name": "greeting",
            "uri": "test://greeting",
            "description": "A greeting.",
            "mimeType": "text/plain",
        }
    ]
    assert broken["name"] == "broken" and broken["tools"] == {}
    spawn_failed = "MCP startup failed: No such file or directory (os error 2)"
    assert broken["toolsError"] == spawn_failed  # the reference's words
    server.barrier()
    # As the reference: servers start per thread; a status list reports no startup.
    assert statuses(server, "probe") == [] and statuses(server, "broken") == []
    page = server.result("mcpServerStatus/list", {"limit": 1, "detail": "toolsAndAuthOnly"})
    assert [e["name"] for e in page["data"]] == ["broken"] and page["nextCursor"] == "1"

    thread_id = server.result("thread/start", {})["thread"]["id"]
    server.wait_until(
        lambda: len(statuses(server, "probe")) >= 2 and len(statuses(server, "broken")) >= 2,
        what="the thread's startup statuses",
    )
    server.barrier()
    assert statuses(server, "probe") == ["starting", "ready"]
    assert startup(server, "broken") == [
        {"threadId": thread_id, "name": "broken", "status": "starting", "error": None,
         "failureReason": None},
        {"threadId": thread_id, "name": "broken", "status": "failed",
         "error": f"MCP client for `broken` failed to start: {spawn_failed}",
         "failureReason": None},
    ]  # fmt: skip
    call = {"threadId": thread_id, "server": "probe", "tool": "whoami", "arguments": {}}
    result = server.result("mcpServer/tool/call", call)
    assert result["content"] == [{"type": "text", "text": f"codex in {tmp_path}"}]
    assert result["isError"] is False
    added = server.result(
        "mcpServer/tool/call", {**call, "tool": "add", "arguments": {"a": 2, "b": 3}}
    )
    assert added["structuredContent"] == {"result": 5}
    read = server.result(
        "mcpServer/resource/read",
        {"threadId": thread_id, "server": "probe", "uri": "test://greeting"},
    )
    assert read == {
        "contents": [
            {"uri": "test://greeting", "mimeType": "text/plain", "text": "hello from a resource"}
        ],
        "originCallId": None,
    }
    # An unknown URI: the MCP server's own error, passed through; an unknown server: ours.
    nope = {"threadId": thread_id, "server": "probe", "uri": "test://nope"}
    assert server.error("mcpServer/resource/read", nope) == {
        "code": -32602, "message": "Unknown resource: test://nope", "data": {"uri": "test://nope"}
    }  # fmt: skip
    assert server.error("mcpServer/resource/read", {**nope, "server": "nope"}) == {
        "code": -32603, "message": "unknown MCP server 'nope'"
    }  # fmt: skip
    # The reference's codes: the server's side (-32603) for a server that is not there.
    error = server.error("mcpServer/tool/call", {**call, "server": "broken"})
    assert error == {"code": -32603, "message": f"failed to get client: {spawn_failed}"}
    unknown = server.error("mcpServer/tool/call", {**call, "server": "nope"})
    assert unknown == {"code": -32603, "message": "unknown MCP server 'nope'"}
    gone = "00000000-0000-0000-0000-000000000000"
    assert server.error("mcpServer/tool/call", {**call, "threadId": gone}) == {
        "code": -32600,
        "message": f"thread not found: {gone}",
    }


def test_the_model_calls_a_stdio_tool_and_survives_a_crash(
    codex_server_factory: ServerFactory, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    codex_model_server.add(
        function_call("slow", {}, call_id="c-slow", namespace="mcp__probe"),  # as the API calls
        function_call("mcp__probe__crash", {}, call_id="c-crash"),
        message("still here"),
    )
    approve_crash = 'tools={crash={approval_mode="approve"}}'
    server = start(codex_server_factory, codex_model_server, *stdio_table("probe", approve_crash))
    notifications, completed = run_turn(server, tmp_path)
    assert completed["turn"]["status"] == "completed"
    started = mcp_items(notifications, "item/started")
    done = mcp_items(notifications, "item/completed")
    assert [(i["id"], i["server"], i["tool"], i["status"]) for i in started] == [
        ("c-slow", "probe", "slow", "inProgress"),
        ("c-crash", "probe", "crash", "inProgress"),
    ]
    slow, crash = done
    assert slow["status"] == "completed" and slow["error"] is None
    assert slow["result"]["content"] == [{"type": "text", "text": "done"}]
    assert isinstance(slow["durationMs"], int)
    progress = [n["params"] for n in notifications if n["method"] == "item/mcpToolCall/progress"]
    assert [(p["itemId"], p["message"]) for p in progress] == [("c-slow", "halfway")]
    assert crash["status"] == "failed" and crash["result"] is None
    assert "crash" in crash["error"]["message"]
    offered = codex_model_server.requests[0].body["tools"]
    namespaces = {t["name"]: t for t in offered if t["type"] == "namespace"}
    assert {"slow", "echo"} <= {tool["name"] for tool in namespaces["mcp__probe"]["tools"]}
    outputs = [
        item["output"]
        for item in codex_model_server.requests[2].body["input"]
        if item.get("type") == "function_call_output"
    ]
    # As the reference: the wall time, then the structured content's compact JSON.
    assert re.fullmatch(r'Wall time: \d+\.\d{4} seconds\nOutput:\n\{"result":"done"\}', outputs[0])
    assert outputs[1].startswith("err: ")
    assert slow["result"]["_meta"] is None
    thread_id = completed["threadId"]
    call = {"threadId": thread_id, "server": "probe", "tool": "echo", "arguments": {"text": "x"}}
    gone = server.error("mcpServer/tool/call", call)  # the thread's server is the one that died
    assert gone["code"] == -32603 and "stopped" in gone["message"]
    assert server.result("config/mcpServer/reload") == {}  # the crashed server starts again
    server.wait_until(lambda: statuses(server, "probe")[-1:] == ["ready"] and
                      len(statuses(server, "probe")) == 4, what="the restart")  # fmt: skip
    assert server.result("mcpServer/tool/call", call)["content"][0]["text"] == "echo: x"


def test_the_model_calls_a_tool_over_streamable_http(
    codex_server_factory: ServerFactory,
    codex_model_server: ScriptedModelServer,
    http_server: str,
    tmp_path: Path,
) -> None:
    codex_model_server.add(
        function_call("mcp__web__echo", {"text": "over http"}, call_id="c-web"), message("ok")
    )
    server = start(
        codex_server_factory,
        codex_model_server,
        "-c",
        f'mcp_servers.web={{url="{http_server}", bearer_token_env_var="WEB_TOKEN"}}',
        "-c",
        f'mcp_servers.nokey={{url="{http_server}", bearer_token_env_var="UNSET_TOKEN"}}',
        "-c",
        f'mcp_servers.denied={{url="{http_server}", http_headers={{Authorization="no"}}}}',
        WEB_TOKEN=TOKEN,
    )
    data = {e["name"]: e for e in server.result("mcpServerStatus/list", {}, timeout=30)["data"]}
    web = data["web"]
    assert web["authStatus"] == "bearerToken" and web["httpOrigin"] == http_server[:-4]
    assert "echo" in web["tools"] and web["toolsError"] is None
    assert "UNSET_TOKEN" in data["nokey"]["toolsError"]
    assert data["denied"]["toolsError"] and data["denied"]["tools"] == {}
    notifications, completed = run_turn(server, tmp_path)
    assert completed["turn"]["status"] == "completed"
    (item,) = mcp_items(notifications, "item/completed")
    assert (item["id"], item["server"], item["tool"], item["status"]) == (
        "c-web",
        "web",
        "echo",
        "completed",
    )
    assert item["arguments"] == {"text": "over http"}
    assert item["result"]["content"] == [{"type": "text", "text": "echo: over http"}]


def test_tools_that_may_write_need_approval(
    codex_server_factory: ServerFactory, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    codex_model_server.add(
        function_call("mcp__probe__add", {"a": 1, "b": 2}, call_id="c-1"),
        function_call("mcp__probe__add", {"a": 3, "b": 4}, call_id="c-2"),
        function_call("mcp__probe__whoami", {}, call_id="c-3"),
        message("done"),
    )
    server = start(codex_server_factory, codex_model_server, *stdio_table("probe"))
    server.result("mcpServerStatus/list", {}, timeout=30)
    thread = server.result("thread/start", {"cwd": str(tmp_path)})["thread"]
    text = [{"type": "text", "text": "go", "text_elements": []}]
    server.result("turn/start", {"threadId": thread["id"], "input": text})
    ask = server.wait_server_request(timeout=20)
    assert ask["method"] == "mcpServer/elicitation/request"
    params = ask["params"]
    assert params["serverName"] == "probe" and params["mode"] == "form"
    assert params["message"] == 'Allow the probe MCP server to run tool "add"?'
    assert params["_meta"]["codex_approval_kind"] == "mcp_tool_call"
    assert params["_meta"]["tool_params"] == {"a": 1, "b": 2}
    server.send({"id": ask["id"], "result": {"action": "accept", "_meta": {"persist": "session"}}})
    ask = server.wait_server_request(timeout=20)  # `add` again runs unasked: this is `whoami`
    assert ask["params"]["_meta"]["tool_name"] == "whoami"
    server.send({"id": ask["id"], "result": {"action": "decline"}})
    completed = server.wait_notification("turn/completed", timeout=30)["params"]
    assert completed["turn"]["status"] == "completed"
    done = {i["id"]: i for i in mcp_items(server.notifications, "item/completed")}
    assert done["c-1"]["result"]["structuredContent"] == {"result": 3}
    assert done["c-2"]["result"]["structuredContent"] == {"result": 7}
    assert done["c-3"]["status"] == "failed"
    assert done["c-3"]["error"] == {"message": "user rejected MCP tool call"}


def test_approval_policy_never_refuses_tools_that_may_write(
    codex_server_factory: ServerFactory, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    codex_model_server.add(
        function_call("mcp__probe__add", {"a": 1, "b": 2}, call_id="c-1"),
        function_call("mcp__probe__echo", {"text": "x"}, call_id="c-2"),
        message("done"),
    )
    server = start(codex_server_factory, codex_model_server, *stdio_table("probe"),
                   "-c", 'approval_policy="never"')  # fmt: skip
    server.result("mcpServerStatus/list", {}, timeout=30)
    notifications, completed = run_turn(server, tmp_path)
    assert completed["turn"]["status"] == "completed"
    refused, echoed = mcp_items(notifications, "item/completed")
    assert refused["error"]["message"] == (
        "MCP tool call requires approval, but approval policy is never"
    )
    assert echoed["status"] == "completed" and echoed["readOnlyHint"] is True
    assert not server.server_requests


@needs_reference
def test_status_list_agrees_with_the_reference_on_shape(
    codex_server_factory: ServerFactory, codex_env: dict[str, str], tmp_path: Path
) -> None:
    """``mcpServerStatus/list`` with one stdio server, from ours and from the reference."""
    ours = codex_server_factory(*stdio_table("probe"))
    ours.initialize()
    home = tmp_path / "peer-home"
    home.mkdir()
    argv = [*reference_server_command(), *stdio_table("probe")]
    reference = StdioServer(argv, {**codex_env, "CODEX_HOME": str(home)}, tmp_path)
    details = ({}, {"detail": "toolsAndAuthOnly"})
    try:
        reference.initialize()
        theirs = [reference.result("mcpServerStatus/list", d, timeout=60) for d in details]
    finally:
        reference.close()
    for params, their in zip(details, theirs, strict=True):
        mine = ours.result("mcpServerStatus/list", params, timeout=30)
        assert set(mine) == set(their) and mine["nextCursor"] == their["nextCursor"]
        (a,), (b,) = mine["data"], their["data"]
        assert set(a) == set(b)
        same = ("name", "authStatus", "httpOrigin", "toolsError", "serverCapabilities", "resources")
        assert {k: a[k] for k in same} == {k: b[k] for k in same}
        assert set(a["serverInfo"]) == set(b["serverInfo"])
        assert set(a["tools"]) == set(b["tools"])
        for name, tool in a["tools"].items():
            assert tool["inputSchema"] == b["tools"][name]["inputSchema"]


def test_the_first_turn_waits_for_servers_to_start(
    codex_server_factory: ServerFactory, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    """A turn right after initialize still offers the tools (codex_turn_starting)."""
    codex_model_server.add(message("hi"))
    server = start(codex_server_factory, codex_model_server, *stdio_table("probe"))
    _notifications, completed = run_turn(server, tmp_path)
    assert completed["turn"]["status"] == "completed"
    offered = codex_model_server.requests[0].body["tools"]
    assert any(t["type"] == "namespace" and t["name"] == "mcp__probe" for t in offered)


def test_server_elicitations_reach_the_client(
    codex_server_factory: ServerFactory,
    codex_model_server: ScriptedModelServer,
    assert_schema: Callable[[str, Any], None],
    tmp_path: Path,
) -> None:
    """A server's ``elicitation/create`` mid-call is the reference's
    ``mcpServer/elicitation/request`` to the turn's thread, or to the client that called."""
    codex_model_server.add(function_call("mcp__probe__greet", {}, call_id="g-1"), message("ok"))
    server = start(codex_server_factory, codex_model_server, *stdio_table("probe"))
    server.result("mcpServerStatus/list", {}, timeout=30)
    thread = server.result("thread/start", {"cwd": str(tmp_path)})["thread"]
    text = [{"type": "text", "text": "go", "text_elements": []}]
    turn = server.result("turn/start", {"threadId": thread["id"], "input": text})["turn"]
    ask = server.wait_server_request(timeout=20)
    assert ask["method"] == "mcpServer/elicitation/request"
    params = ask["params"]
    assert (params["threadId"], params["turnId"]) == (thread["id"], turn["id"])
    assert params["serverName"] == "probe" and params["mode"] == "form"
    assert params["message"] == "What is your name?"
    assert params["requestedSchema"]["properties"]["name"]["type"] == "string"
    assert_schema("McpServerElicitationRequestParams", params)
    server.send({"id": ask["id"], "result": {"action": "decline", "content": None}})
    server.wait_notification("turn/completed", timeout=30)
    (item,) = mcp_items(server.notifications, "item/completed")
    assert item["status"] == "completed" and item["result"]["content"][0]["text"] == "decline"

    call = {"threadId": thread["id"], "server": "probe", "tool": "greet", "arguments": {}}
    server.send({"id": "greet", "method": "mcpServer/tool/call", "params": call})
    ask = server.wait_server_request(timeout=20)
    assert ask["params"]["threadId"] == thread["id"] and ask["params"]["turnId"] is None
    assert_schema("McpServerElicitationRequestParams", ask["params"])
    server.send({"id": ask["id"], "result": {"action": "accept", "content": {"name": "Ada"}}})
    result = server.wait_response("greet", timeout=30)["result"]
    assert result["content"][0]["text"] == "hello Ada" and result["isError"] is False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_each_thread_runs_its_own_servers_until_it_unloads(
    codex_server_factory: ServerFactory, codex_model_server: ScriptedModelServer
) -> None:
    """Two threads, two server processes; the idle unload of one stops its process only, and
    its id is then unknown to ``mcpServer/tool/call``."""
    server = start(codex_server_factory, codex_model_server, *stdio_table("probe"),
                   "-c", "threads.unload_idle_after_secs=0.3")  # fmt: skip
    threads = [server.result("thread/start", {})["thread"]["id"] for _ in range(2)]
    server.wait_until(lambda: statuses(server, "probe").count("ready") == 2, timeout=60,
                      what="both threads' servers")  # fmt: skip
    assert sorted(p["threadId"] for p in startup(server, "probe")) == sorted(threads * 2)
    calls = [{"threadId": t, "server": "probe", "tool": "pid", "arguments": {}} for t in threads]
    pids = [server.result("mcpServer/tool/call", call)["structuredContent"]["result"]
            for call in calls]  # fmt: skip
    assert pids[0] != pids[1] and all(alive(pid) for pid in pids)
    server.result("thread/unsubscribe", {"threadId": threads[0]})
    server.wait_notification("thread/closed", timeout=30)  # after its servers stopped
    assert not alive(pids[0]) and alive(pids[1])
    assert server.error("mcpServer/tool/call", calls[0]) == {
        "code": -32600, "message": f"thread not found: {threads[0]}"
    }  # fmt: skip
    assert server.result("mcpServer/tool/call", calls[1])["structuredContent"] == {
        "result": pids[1]
    }  # fmt: skip


def test_a_thread_without_servers_starts_none(
    codex_server_factory: ServerFactory, codex_model_server: ScriptedModelServer
) -> None:
    """``config: {"mcp_servers": {}}`` on ``thread/start`` (the TUI's temporary threads): no
    server starts, and its servers are unknown, as on the reference."""
    server = start(codex_server_factory, codex_model_server, *stdio_table("probe"))
    config = {"mcp_servers": {}}
    thread_id = server.result("thread/start", {"config": config})["thread"]["id"]
    server.barrier()
    read = {"threadId": thread_id, "server": "probe", "uri": "test://greeting"}
    assert server.error("mcpServer/resource/read", read) == {
        "code": -32603, "message": "unknown MCP server 'probe'"
    }  # fmt: skip
    assert statuses(server, "probe") == []
