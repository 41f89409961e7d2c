"""Approvals and client tools with two connections to one kernel: only the subscriber is asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from codex_core.kernel import Kernel
from codex_core.testing import ModelResponse, ScriptedModelServer, function_call

pytest.importorskip("codex_plugin_shell")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


TEXT = [{"type": "text", "text": "go", "text_elements": []}]


def kernel_for(model: ScriptedModelServer, home: Path, *extra: str) -> Kernel:
    args = model.config_args()
    overrides = [args[i + 1] for i in range(0, len(args), 2)]
    overrides += ['approval_policy="on-request"', 'sandbox_mode="read-only"', *extra]
    return Kernel(codex_home=home, config_overrides=overrides)


async def collect(client: Any, into: list[tuple[str, Any]]) -> None:
    async for item in client.notifications():
        into.append(item)


@pytest.mark.anyio
async def test_only_the_subscribed_connection_gets_the_approval_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ScriptedModelServer() as model:
        monkeypatch.setenv(model.env_key, model.api_key)
        cwd = tmp_path / "work"
        cwd.mkdir()
        args = {"cmd": "touch made.txt", "sandbox_permissions": "require_escalated"}
        model.add(ModelResponse([function_call("exec_command", args, call_id="c1")]), "done")
        kernel = kernel_for(model, tmp_path / "home")
        asked: dict[str, list[Any]] = {"a": [], "b": []}
        seen_b: list[tuple[str, Any]] = []
        async with kernel, kernel.connect() as a, kernel.connect() as b:
            await a.initialize("a", "1")
            await b.initialize("b", "1")

            async def accept(params: Any) -> dict[str, Any]:
                asked["a"].append(params)
                return {"decision": "accept"}

            async def refuse(params: Any) -> dict[str, Any]:
                asked["b"].append(params)
                return {"decision": "decline"}

            a.on_request("item/commandExecution/requestApproval", accept)
            b.on_request("item/commandExecution/requestApproval", refuse)
            thread = (await a.request("thread/start", {"cwd": str(cwd)}))["thread"]
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(collect, b, seen_b)
                await a.request("turn/start", {"threadId": thread["id"], "input": TEXT})
                with anyio.fail_after(15):
                    done = await a.wait_for("turn/completed")
                tasks.cancel_scope.cancel()
            assert done["turn"]["status"] == "completed"
            assert len(asked["a"]) == 1 and asked["b"] == []
            assert asked["a"][0]["itemId"] == "c1"
            assert seen_b == []  # no thread events either
            assert (cwd / "made.txt").exists()
            # The second connection resumes the thread and gets every item.
            resumed = await b.request("thread/resume", {"threadId": thread["id"]})
            items = resumed["thread"]["turns"][0]["items"]
            assert [i["type"] for i in items] == ["userMessage", "commandExecution",
                                                  "agentMessage"]  # fmt: skip


@pytest.mark.anyio
async def test_dynamic_tools_are_called_through_item_tool_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ScriptedModelServer() as model:
        monkeypatch.setenv(model.env_key, model.api_key)
        model.add(
            ModelResponse([function_call("lookup", {"key": "x"}, call_id="d1")]),
            ModelResponse([function_call("secret_helper", {}, call_id="d2")]),
            "done",
        )
        kernel = kernel_for(model, tmp_path / "home")
        calls: list[Any] = []
        async with kernel, kernel.connect() as client:
            await client.initialize("host", "1", experimental_api=True)

            async def tool_call(params: Any) -> dict[str, Any]:
                calls.append(params)
                text = f"value of {params['arguments'].get('key', '?')}"
                return {"success": True, "contentItems": [{"type": "inputText", "text": text}]}

            client.on_request("item/tool/call", tool_call)
            specs = [
                {"type": "function", "name": "lookup", "description": "Look a key up.",
                 "inputSchema": {"type": "object", "properties": {"key": {"type": "string"}}}},
                {"type": "function", "name": "secret_helper", "description": "Hidden.",
                 "inputSchema": {"type": "object"}, "deferLoading": True},
            ]  # fmt: skip
            thread = (await client.request("thread/start", {"dynamicTools": specs}))["thread"]
            events: list[tuple[str, Any]] = []
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(collect, client, events)
                await client.request("turn/start", {"threadId": thread["id"], "input": TEXT})
                with anyio.fail_after(15):
                    while not any(name == "turn/completed" for name, _ in events):
                        await anyio.sleep(0.02)
                tasks.cancel_scope.cancel()
        assert [c["tool"] for c in calls] == ["lookup", "secret_helper"]
        expected = {"threadId": thread["id"], "turnId": calls[0]["turnId"], "callId": "d1",
                    "tool": "lookup", "arguments": {"key": "x"}}  # fmt: skip
        assert calls[0] == expected
        offered = [t["name"] for t in model.requests[0].body["tools"]]
        assert "lookup" in offered and "secret_helper" not in offered
        assert model.requests[1].body["input"][-1]["output"] == "value of x"
        items = [p["item"] for name, p in events if name == "item/completed"]
        dynamic = [i for i in items if i["type"] == "dynamicToolCall"]
        assert dynamic[0]["status"] == "completed" and dynamic[0]["success"] is True
        resolved = [p for name, p in events if name == "serverRequest/resolved"]
        assert len(resolved) == 2


def test_without_an_os_sandbox_the_policy_asks_before_writes() -> None:
    """The fallback when commands cannot be confined (no bubblewrap): read-only asks first."""
    from codex_core.threads.tools import approval_verdict

    ask = {"escalated": False, "safe": False}
    assert approval_verdict("on-request", "read-only", **ask) == "ask"
    assert approval_verdict("on-request", "read-only", **ask, confined=True) == "run"
    assert approval_verdict("never", "read-only", **ask) == "reject"
    assert approval_verdict("never", "read-only", **ask, confined=True) == "run"
    assert approval_verdict("on-request", "read-only", escalated=False, safe=True) == "run"
    assert approval_verdict("on-request", "workspace-write", escalated=True, safe=True) == "ask"
    assert approval_verdict("untrusted", "danger-full-access", **ask, confined=True) == "ask"


def test_the_deprecated_guardian_approval_flag_picks_the_automatic_reviewer(
    start_server: Any,
) -> None:
    """`guardian_approval = true` backfills `approvals_reviewer` (reported by its new name)."""
    server = start_server("-c", "guardian_approval=true")
    server.initialize()
    assert server.result("thread/start", {})["approvalsReviewer"] == "auto_review"
    plain = start_server()
    plain.initialize()
    assert plain.result("thread/start", {})["approvalsReviewer"] == "user"
