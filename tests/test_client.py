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
from codex_core.rpc import ClientErrorResponse, RequestContext, RpcError, RpcMethod

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
