"""``codex-app-server plugin new NAME [--tool | --transport]``: a new plugin distribution, ready
to test and publish.

The layout is docs/writing-plugins.md's (a package, ``tests/conftest.py`` pinning the event
loop, one test module on the kit's fixtures, a README), so a plugin author starts from
something that passes its own tests and grows it from there. The default plugin adds a JSON-RPC
method; ``--tool`` makes one that gives the model a tool, tested in a real turn against the
scripted model server, as in that page's main example; ``--transport`` makes one that serves the
protocol at ``NAME://HOST:PORT`` (JSON lines over TCP), tested with a client on loopback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from packaging.version import Version

from codex_core import __version__

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
Kind = Literal["method", "tool", "transport"]


def _kernel_range() -> str:
    """This kernel's minor series: plugins declare what they were written against."""
    version = Version(__version__)
    return f">={version.major}.{version.minor},<{version.major}.{version.minor + 1}"


def _pyproject(name: str, module: str, distribution: str) -> str:
    return f'''[project]
name = "{distribution}"
version = "0.1.0"
description = "A codex-core plugin."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["codex-core{_kernel_range()}"]

[project.optional-dependencies]
test = ["pytest", "anyio"]

[project.entry-points."codex_core.plugins"]
{name} = "{module}"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["{module}"]
'''


_CONFTEST = """import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
"""


def _method_files(name: str, module: str, distribution: str) -> dict[str, str]:
    return {
        f"{module}/__init__.py": f'''"""{distribution}: adds `{name}/hello` to codex-core."""

from __future__ import annotations

from typing import Any

from codex_core.hookspecs import hookimpl
from codex_core.rpc import RequestContext, RpcMethod


async def hello(ctx: RequestContext, params: Any) -> dict[str, Any]:
    return {{"greeting": f"hello {{ctx.connection.client_name}}"}}


@hookimpl
def codex_rpc_methods() -> list[RpcMethod]:
    return [RpcMethod("{name}/hello", hello)]
''',
        f"tests/test_{module}.py": f'''"""{distribution}, tested with codex-core's test kit."""

import pytest

import {module}


@pytest.mark.anyio
@pytest.mark.codex_kernel(plugins=[{module}], load_entry_points=False)
async def test_hello_in_process(codex_client):
    assert await codex_client.request("{name}/hello", {{}}) == {{"greeting": "hello pytest"}}


def test_hello_over_stdio(codex_server):
    """A real server loads the plugin through its entry point: this checks the packaging."""
    assert codex_server.result("{name}/hello", {{}}) == {{"greeting": "hello pytest"}}
''',
    }


def _tool_files(name: str, module: str, distribution: str) -> dict[str, str]:
    tool = name.replace("-", "_")
    return {
        f"{module}/__init__.py": f'''"""{distribution}: gives the model the `{tool}` tool."""

from __future__ import annotations

from typing import Any

from codex_core.hookspecs import Tool, ToolResult, hookimpl
from codex_core.threads.tools import ToolContext


class Greet(Tool):
    """What the model sees (name, description, arguments schema), and `call`."""

    name = "{tool}"
    description = "Greet someone from the current folder."
    input_schema: dict[str, Any] = {{
        "type": "object",
        "properties": {{"who": {{"type": "string", "description": "whom to greet"}}}},
        "required": ["who"],
        "additionalProperties": False,
    }}

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return ToolResult(f"hello {{arguments['who']}} from {{context.cwd}}")


@hookimpl
def codex_tools() -> list[Tool]:
    return [Greet()]
''',
        f"tests/test_{module}.py": f'''"""{distribution}: the model calls the tool in a turn."""

from codex_core.testing import ModelResponse, function_call, message

TEXT = [{{"type": "text", "text": "Greet Ada.", "text_elements": []}}]


def test_the_model_calls_the_tool(codex_server_factory, codex_model_server, tmp_path):
    call = function_call("{tool}", {{"who": "Ada"}}, call_id="c1")
    codex_model_server.add(ModelResponse([call]), message("Done."))
    server = codex_server_factory(*codex_model_server.config_args(), env=codex_model_server.env)
    server.initialize()
    thread = server.result("thread/start", {{"cwd": str(tmp_path)}})["thread"]
    server.result("turn/start", {{"threadId": thread["id"], "input": TEXT}})
    done = server.wait_notification("turn/completed", timeout=30)
    assert done["params"]["turn"]["status"] == "completed"

    first, second = codex_model_server.requests
    assert "{tool}" in [tool.get("name") for tool in first.body["tools"]]
    [output] = [i for i in second.body["input"] if i["type"] == "function_call_output"]
    assert output["output"] == f"hello Ada from {{tmp_path}}"
''',
    }


def _transport_files(name: str, module: str, distribution: str) -> dict[str, str]:
    return {
        f"{module}/__init__.py": f'''"""{distribution}: serves the protocol at `{name}://HOST:PORT`.

One JSON-RPC message per line over TCP, like stdio but reachable over the network: a
starting point for a transport of your own (`codex-app-server --listen {name}://127.0.0.1:0`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from codex_core.hookspecs import Transport, hookimpl

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

#: The longest message accepted; a longer line ends that client's connection.
MAX_LINE = 16 * 1024 * 1024


class LineChannel:
    """One client: a `Channel` whose frames are lines."""

    def __init__(self, stream: SocketStream) -> None:
        self._stream = stream
        self._lines = BufferedByteReceiveStream(stream)
        host, port = stream.extra(SocketAttribute.remote_address)[:2]
        self.peer = f"{{host}}:{{port}}"

    async def receive(self) -> bytes:
        try:
            return await self._lines.receive_until(b"\\n", MAX_LINE)
        except (anyio.IncompleteRead, anyio.DelimiterNotFound) as exc:
            raise anyio.EndOfStream from exc

    async def send(self, frames: Sequence[str]) -> None:
        await self._stream.send("".join(frame + "\\n" for frame in frames).encode())

    async def aclose(self) -> None:
        await self._stream.aclose()


class LineTransport(Transport):
    scheme = "{name}"

    async def serve(self, url: str, kernel: Kernel) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
        if not host or port is None:
            raise ValueError(f"{{url}}: expected {name}://HOST:PORT (0: a free port)")
        listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
        port = listener.extra(SocketAttribute.local_port)
        print(f"listening on: {name}://{{host}}:{{port}}", file=sys.stderr, flush=True)

        async def client(stream: SocketStream) -> None:
            async with stream:
                await kernel.serve_channel(LineChannel(stream))

        await listener.serve(client)


@hookimpl
def codex_transports() -> list[Transport]:
    return [LineTransport()]
''',
        f"tests/test_{module}.py": f'''"""{distribution}: a loopback client talks to a server at `{name}://`."""

import json
import socket
import subprocess

from codex_core.cli import server_command

CLIENT = {{"name": "t", "version": "1"}}
INITIALIZE = {{"id": 1, "method": "initialize", "params": {{"clientInfo": CLIENT}}}}


def test_a_client_initializes_over_the_transport(codex_env, tmp_path):
    listen = server_command("--listen", "{name}://127.0.0.1:0")
    server = subprocess.Popen(
        listen, env=codex_env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    try:
        for line in server.stderr:
            if line.startswith("listening on: "):
                port = int(line.rsplit(":", 1)[1])
                break
        else:
            raise AssertionError(f"the server ended ({{server.wait()}}) before listening")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall((json.dumps(INITIALIZE) + "\\n").encode())
            reply = json.loads(client.makefile().readline())
        assert reply["id"] == 1
        assert "userAgent" in reply["result"]
    finally:
        server.kill()
        server.wait()
''',
    }


def _readme(name: str, module: str, distribution: str, kind: Kind) -> str:
    adds = {
        "tool": f"the tool `{name.replace('-', '_')}` to the model's turns",
        "transport": f"a transport: `codex-app-server --listen {name}://127.0.0.1:0`",
        "method": f"the JSON-RPC method `{name}/hello`",
    }[kind]
    return f"""# {distribution}

A codex-core plugin. It adds {adds}.

```sh
pip install -e '.[test]'
pytest
codex-app-server plugins list     # shows `{name}`
```

Start from `{module}/__init__.py`; every hook a plugin can implement is in
`codex_core/hookspecs.py`. codex-core's `docs/writing-plugins.md` walks through a plugin like
this one, and `docs/testing-plugins.md` describes the test fixtures.
"""


def files_for(name: str, kind: Kind = "method") -> dict[str, str]:
    """Relative path -> content of the new plugin distribution ``codex-plugin-<name>``."""
    module = "codex_plugin_" + name.replace("-", "_")
    distribution = f"codex-plugin-{name}"
    code = {"method": _method_files, "tool": _tool_files, "transport": _transport_files}[kind]
    return {
        "pyproject.toml": _pyproject(name, module, distribution),
        **code(name, module, distribution),
        "tests/conftest.py": _CONFTEST,
        "README.md": _readme(name, module, distribution, kind),
    }


def create(name: str, parent: Path, kind: Kind = "method") -> Path:
    """Write ``codex-plugin-<name>/`` under ``parent``; refuses to touch an existing folder."""
    if not _NAME.match(name):
        raise ValueError(
            f"invalid plugin name {name!r}: use lowercase letters, digits and single hyphens, "
            "starting with a letter (for example `weather` or `jira-tools`)"
        )
    root = parent / f"codex-plugin-{name}"
    if root.exists():
        raise ValueError(f"{root} already exists; choose another name or folder")
    for relative, content in files_for(name, kind).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root
