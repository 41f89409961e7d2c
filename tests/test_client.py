"""``codex_core.client``: the embedding API, in-process and over a stdio subprocess."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from codex_core.client import Client
from codex_core.hookspecs import hookimpl
from codex_core.kernel import Kernel
from codex_core.rpc import (
    ClientErrorResponse,
    RequestCancelled,
    RequestContext,
    RpcError,
    RpcMethod,
)
from codex_core.transports.memory import channel_pair

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class HostPlugin:
    """A host application's own plugin object, registered without any entry point."""

    __name__ = "host"

    @hookimpl
    def codex_rpc_methods(self) -> list[RpcMethod]:
        async def ask(ctx: RequestContext, params: Any) -> Any:
            try:
                return await ctx.connection.request("item/tool/call", params, timeout=5)
            except ClientErrorResponse as exc:
                return {"failed": str(exc)}

        async def shout(ctx: RequestContext, params: Any) -> Any:
            ctx.kernel.broadcast(
                "warning", {"message": str(params["text"]).upper(), "threadId": None}
            )
            return {}

        return [RpcMethod("host/ask", ask), RpcMethod("host/shout", shout)]


async def test_in_process_kernel(codex_home: Path, tmp_path: Path) -> None:
    kernel = Kernel(codex_home=codex_home, plugins=[HostPlugin()])
    async with kernel, kernel.connect() as client:
        info = await client.initialize("embedding-host", "3.1")
        assert info["codexHome"] == str(codex_home)
        started = await client.request("thread/start", {"cwd": str(tmp_path)})
        assert started["cwd"] == str(tmp_path)
        notification = await client.wait_for("thread/started")
        assert notification["thread"]["id"] == started["thread"]["id"]

        target = tmp_path / "note.txt"
        await client.request("fs/writeFile", {"path": str(target), "dataBase64": "aGk="})
        assert target.read_text() == "hi"

        with pytest.raises(RpcError) as caught:
            await client.request("thread/read", {"threadId": 5})
        assert caught.value.code == -32600

        async def tool_call(params: Any) -> Any:
            return {
                "success": True,
                "contentItems": [{"type": "inputText", "text": params["tool"]}],
            }

        client.on_request("item/tool/call", tool_call)
        answer = await client.request("host/ask", {"tool": "lookup"})
        assert answer["contentItems"][0]["text"] == "lookup"

        async def refuse(params: Any) -> Any:
            raise RpcError(-32000, "not today")

        client.on_request("item/tool/call", refuse)
        assert await client.request("host/ask", {"tool": "x"}) == {
            "failed": "item/tool/call request failed: code=-32000 message=not today"
        }

        await client.request("host/shout", {"text": "hey"})
        assert (await client.wait_for("warning"))["message"] == "HEY"


async def test_stdio_subprocess(server_env: dict[str, str], tmp_path: Path) -> None:
    command = [sys.executable, "-m", "codex_core"]
    async with await Client.spawn(command, env=server_env, cwd=tmp_path) as client:
        await client.initialize()
        listed = await client.request("model/list", {"limit": 2})
        assert len(listed["data"]) == 2 and listed["nextCursor"] == "2"
        with anyio.fail_after(10):
            assert (await client.request("configRequirements/read"))["requirements"] is None


class Broadcaster:
    __name__ = "broadcaster"

    @hookimpl
    def codex_rpc_methods(self) -> list[RpcMethod]:
        async def flood(ctx: RequestContext, params: Any) -> Any:
            for index in range(params["count"]):
                ctx.kernel.broadcast("warning", {"message": f"event {index}", "threadId": None})
                await anyio.sleep(0)
            return {"sent": params["count"]}

        return [RpcMethod("test/flood", flood)]


async def test_a_client_that_never_reads_does_not_stall_others(codex_home: Path) -> None:
    kernel = Kernel(codex_home=codex_home, plugins=[Broadcaster()])
    stalled_side, server_side = channel_pair()
    async with kernel, kernel.connect() as client, anyio.create_task_group() as tasks:
        tasks.start_soon(kernel.serve_channel, server_side)
        await stalled_side.send(
            ['{"id":0,"method":"initialize","params":{"clientInfo":{"name":"slow","version":"1"}}}']
        )
        with anyio.fail_after(10):
            while not any(c.client_name == "slow" for c in kernel.connections):
                await anyio.sleep(0.01)
        await client.initialize()
        seen = 0

        async def count() -> None:
            nonlocal seen
            async for method, _params in client.notifications():
                if method == "warning":
                    seen += 1

        tasks.start_soon(count)
        # Far more than the stalled client's queues hold: it is cut off, the reader is not.
        with anyio.fail_after(30):
            assert await client.request("test/flood", {"count": 10_000}) == {"sent": 10_000}
            assert "account" in await client.request("account/read", {})
            while seen < 10_000:
                await anyio.sleep(0.01)
        stalled = [c for c in kernel.connections if c.client_name == "slow"]
        assert stalled == [], "the client that stopped reading should have been disconnected"
        tasks.cancel_scope.cancel()


class Asker:
    __name__ = "asker"

    @hookimpl
    def codex_rpc_methods(self) -> list[RpcMethod]:
        async def ask(ctx: RequestContext, params: Any) -> Any:
            try:
                await ctx.connection.request("item/tool/call", params)
            except RequestCancelled as exc:
                ctx.kernel.services["outcome"] = str(exc)
            return {}

        return [RpcMethod("test/ask", ask)]


async def test_closing_the_connection_cancels_server_requests(codex_home: Path) -> None:
    kernel = Kernel(codex_home=codex_home, plugins=[Asker()])
    async with kernel:
        async with kernel.connect() as client:
            await client.initialize()
            asked = anyio.Event()

            async def never_answer(params: Any) -> Any:
                asked.set()
                await anyio.sleep_forever()

            client.on_request("item/tool/call", never_answer)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(lambda: client.request("test/ask", {"tool": "t"}, timeout=None))
                await asked.wait()
                tasks.cancel_scope.cancel()
        with anyio.fail_after(10):
            while "outcome" not in kernel.services:
                await anyio.sleep(0.01)
        assert kernel.services["outcome"] == "item/tool/call: connection closed"
