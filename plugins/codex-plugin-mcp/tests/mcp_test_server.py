"""A small MCP server written with the official SDK, for the plugin's tests.

``python mcp_test_server.py stdio`` serves over stdin/stdout; ``python mcp_test_server.py http
PORT`` serves streamable HTTP on 127.0.0.1:PORT/mcp (it checks ``Authorization`` when
``MCP_TEST_TOKEN`` is set). Tools: ``echo`` (read-only), ``add``, ``slow`` (read-only, reports
progress), ``crash`` (the process exits mid-call), ``whoami`` (the env var ``MCP_TEST_WHO``),
``greet`` (read-only; asks the user's name with an elicitation), ``plain`` (read-only; text
content only, no structured content), ``fail`` (raises: an ``isError`` result), ``pid`` (read-only;
the server's process id: which process a thread's call reached).
Resource: ``test://greeting``.
"""

from __future__ import annotations

import os
import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel

server = MCPServer("codex-test")


READ_ONLY = ToolAnnotations(read_only_hint=True)


@server.tool(description="Echo the text back.", annotations=READ_ONLY)
def echo(text: str) -> str:
    return f"echo: {text}"


@server.tool(description="Add two integers.")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="Report progress, then answer.", annotations=READ_ONLY)
async def slow(ctx: Context) -> str:
    await ctx.report_progress(1, 2, "halfway")
    await anyio.sleep(0.1)
    return "done"


@server.tool(description="Exit the server process in the middle of the call.")
def crash() -> str:
    os._exit(3)


@server.tool(description="The MCP_TEST_WHO environment variable and the working directory.")
def whoami() -> str:
    return f"{os.environ.get('MCP_TEST_WHO', '')} in {os.getcwd()}"


class Name(BaseModel):
    name: str


@server.tool(description="Ask the user's name, then greet them.", annotations=READ_ONLY)
async def greet(ctx: Context) -> str:
    answer = await ctx.elicit("What is your name?", Name)
    return f"hello {answer.data.name}" if answer.action == "accept" else answer.action


@server.tool(description="Two text blocks, no structured content.", annotations=READ_ONLY,
             structured_output=False)  # fmt: skip
def plain() -> list[str]:
    return ["first", "second"]


@server.tool(description="Always fails.", annotations=READ_ONLY)
def fail() -> str:
    raise ValueError("this tool always fails")


@server.tool(description="The server's process id.", annotations=READ_ONLY)
def pid() -> int:
    return os.getpid()


@server.resource("test://greeting", description="A greeting.", mime_type="text/plain")
def greeting() -> str:
    return "hello from a resource"


def main() -> None:
    if sys.argv[1:2] == ["http"]:
        port = int(sys.argv[2])
        token = os.environ.get("MCP_TEST_TOKEN")
        if token:
            import uvicorn

            app = server.streamable_http_app()

            async def guarded(scope, receive, send):  # type: ignore[no-untyped-def]
                if scope["type"] == "http":
                    headers = dict(scope.get("headers") or [])
                    if headers.get(b"authorization") != f"Bearer {token}".encode():
                        await send({"type": "http.response.start", "status": 401, "headers": []})
                        await send({"type": "http.response.body", "body": b"unauthorized"})
                        return
                await app(scope, receive, send)

            uvicorn.run(guarded, host="127.0.0.1", port=port, log_level="warning")
        else:
            server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
