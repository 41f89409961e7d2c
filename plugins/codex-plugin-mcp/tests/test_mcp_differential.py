"""MCP, ours against the official server: the same SDK server (``mcp_test_server.py``), the
same scripted model, the same calls.

One turn calls tools with structured content (``echo``, ``add``), with text content only
(``plain``), one that fails (``fail``: ``isError``), and the resource tools: every server's
resources and templates, one server's resources, a resource, an unknown URI and an unknown
server. Compared, ids and times masked: the ``mcpToolCall`` items the client sees, what the model
reads of each call, the tools the model is offered (names and parameter schemas; the
descriptions are each server's own words), and ``mcpServer/resource/read``'s answers (a
resource, an unknown URI, an unknown server). A second turn's calls need approval, which the
client declines, then cancels: compared are the approval requests, the items and what the
model reads of a refusal.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call, message
from codex_core.testing.pytest_plugin import StdioServer, server_command
from codex_core.testing.reference import reference_server_command

REFERENCE = reference_server_command()

pytestmark = pytest.mark.skipif(
    REFERENCE is None,
    reason="the official server is not installed (python -m codex_core.testing.reference)",
)

SERVER = Path(__file__).with_name("mcp_test_server.py")
TIMES = {"startedAtMs", "completedAtMs", "durationMs"}
IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
WALL = re.compile(r"Wall time: \d+\.\d{4} seconds")
#: (tool, arguments, namespace): the server's own tools are called inside their namespace.
CALLS: list[tuple[str, dict[str, Any], str | None]] = [
    ("echo", {"text": "hi"}, "mcp__probe"),
    ("add", {"a": 1, "b": 2}, "mcp__probe"),
    ("plain", {}, "mcp__probe"),
    ("fail", {}, "mcp__probe"),
    ("list_mcp_resources", {}, None),
    ("list_mcp_resource_templates", {}, None),
    ("list_mcp_resources", {"server": "probe"}, None),
    ("read_mcp_resource", {"server": "probe", "uri": "test://greeting"}, None),
    ("read_mcp_resource", {"server": "probe", "uri": "test://nope"}, None),
    ("read_mcp_resource", {"server": "nope", "uri": "test://greeting"}, None),
]
RESOURCE_TOOLS = {"list_mcp_resources", "list_mcp_resource_templates", "read_mcp_resource"}


def mask(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {name: mask(inner, name) for name, inner in value.items()}
    if isinstance(value, list):
        return [mask(inner, key) for inner in value]
    if key in TIMES and value is not None:
        return "<time>"
    if isinstance(value, str):
        return WALL.sub("Wall time: <wall> seconds", IDS.sub("<id>", value))
    return value


def shape(schema: Any) -> Any:
    """A parameter schema without its descriptions (each server's own words)."""
    if isinstance(schema, dict):
        return {
            k: shape(v)
            for k, v in schema.items()
            if not (k == "description" and isinstance(v, str))
        }
    return schema


def offered(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """The MCP tools offered: the resource tools' and the server's (its namespace), by name,
    with their parameters (as sent: the reference drops JSON-schema titles)."""
    seen = {t["name"]: shape(t["parameters"]) for t in tools if t.get("name") in RESOURCE_TOOLS}
    for namespace in (t for t in tools if t["type"] == "namespace"):
        if namespace["name"] == "mcp__probe":
            for tool in namespace["tools"]:
                seen[f"mcp__probe/{tool['name']}"] = tool["parameters"]
    return seen


def session(argv: list[str], base: Path) -> dict[str, Any]:
    home, cwd = base / "home", base / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir()
    table = (f'mcp_servers.probe={{command="{sys.executable}", args=["{SERVER}", "stdio"], '
             'default_tools_approval_mode="approve"}')  # fmt: skip
    with ScriptedModelServer() as model:
        for number, (tool, arguments, namespace) in enumerate(CALLS):
            call = function_call(tool, arguments, call_id=f"c{number}", namespace=namespace)
            model.add(ModelResponse([call]))
        model.add(message("done"))
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer(
            [*argv, *model.config_args(), "-c", table, "-c", 'approval_policy="never"'], env, cwd
        )
        try:
            server.initialize(experimentalApi=True)
            thread_id = server.result("thread/start", {"cwd": str(cwd)})["thread"]["id"]
            server.wait_notification(
                "mcpServer/startupStatus/updated", 30, where=lambda p: p["status"] == "ready"
            )
            turn = {"threadId": thread_id, "input": [{"type": "text", "text": "go"}]}
            server.result("turn/start", turn)
            completed = server.wait_notification("turn/completed", 60)
            assert completed["params"]["turn"]["status"] == "completed"
            server.barrier()
            items = [
                {"method": n["method"], "item": n["params"]["item"]}
                for n in server.notifications
                if n["method"] in ("item/started", "item/completed")
                and n["params"]["item"]["type"] == "mcpToolCall"
            ]
            read = {"threadId": thread_id, "server": "probe", "uri": "test://greeting"}
            answers = [
                server.request("mcpServer/resource/read", params, timeout=20)
                for params in (read, {**read, "uri": "test://nope"}, {**read, "server": "nope"})
            ]
        finally:
            server.close()
        requests = list(model.requests)
    outputs = {
        item["call_id"]: item["output"]
        for item in requests[-1].body["input"]
        if item.get("type") == "function_call_output"
    }
    return mask({
        "items": items,
        "model_reads": outputs,
        "offered": offered(requests[0].body["tools"]),
        "resource_read": [{k: v for k, v in answer.items() if k != "id"} for answer in answers],
    })  # fmt: skip


def test_tool_calls_resources_and_errors_match_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = session(server_command(), tmp_path / "ours")
    theirs = session(REFERENCE, tmp_path / "reference")
    for key in ("offered", "model_reads", "items", "resource_read"):
        assert ours[key] == theirs[key], key
    # What the comparison pins down, spelled out.
    reads = ours["model_reads"]
    assert reads["c0"] == 'Wall time: <wall> seconds\nOutput:\n{"result":"echo: hi"}'
    assert reads["c9"] == "unknown MCP server 'nope'"  # and no item for that call
    assert {i["item"]["id"] for i in ours["items"]} == {f"c{n}" for n in range(9)}
    assert ours["offered"]["mcp__probe/echo"] == {
        "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]
    }  # fmt: skip
    assert ours["resource_read"][1]["error"] == {
        "code": -32602, "message": "Unknown resource: test://nope", "data": {"uri": "test://nope"}
    }  # fmt: skip


def refusals(argv: list[str], base: Path) -> dict[str, Any]:
    """Two calls of ``add`` (a tool that may write): the client declines the first approval
    and cancels the second; what the client is asked and sees, and what the model reads."""
    home, cwd = base / "home", base / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir()
    table = f'mcp_servers.probe={{command="{sys.executable}", args=["{SERVER}", "stdio"]}}'
    with ScriptedModelServer() as model:
        for call_id in ("c1", "c2"):
            call = function_call("add", {"a": 1, "b": 2}, call_id=call_id, namespace="mcp__probe")
            model.add(ModelResponse([call]))
        model.add(message("done"))
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer([*argv, *model.config_args(), "-c", table], env, cwd)
        try:
            server.initialize()
            thread_id = server.result("thread/start", {"cwd": str(cwd)})["thread"]["id"]
            server.wait_notification(
                "mcpServer/startupStatus/updated", 30, where=lambda p: p["status"] == "ready"
            )
            turn = {"threadId": thread_id, "input": [{"type": "text", "text": "go"}]}
            server.result("turn/start", turn)
            asked = []
            for action in ("decline", "cancel"):
                ask = server.wait_server_request(timeout=30)
                asked.append({k: v for k, v in ask.items() if k != "id"})
                answer = {"action": action, "content": None, "_meta": None}
                server.send({"id": ask["id"], "result": answer})
            completed = server.wait_notification("turn/completed", 60)
            server.barrier()
            items = [
                n["params"]["item"]
                for n in server.notifications
                if n["method"] == "item/completed" and n["params"]["item"]["type"] == "mcpToolCall"
            ]
        finally:
            server.close()
        requests = list(model.requests)
    reads = [
        item["output"]
        for item in requests[-1].body["input"]
        if item.get("type") == "function_call_output"
    ]
    turn_status = completed["params"]["turn"]["status"]
    return mask({"asked": asked, "items": items, "model_reads": reads, "turn": turn_status})


def test_declined_and_cancelled_calls_match_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = refusals(server_command(), tmp_path / "ours")
    theirs = refusals(REFERENCE, tmp_path / "reference")
    for key in ("asked", "items", "model_reads", "turn"):
        assert ours[key] == theirs[key], key
    # What the comparison pins down, spelled out: the model reads a refusal as the output.
    assert ours["model_reads"][1] == [
        {"type": "input_text", "text": "Wall time: <wall> seconds\nOutput:"},
        {"type": "input_text", "text": "user cancelled MCP tool call"},
    ]
