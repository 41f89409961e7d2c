"""A host plugin and the low-level client: docs/embedding.md's lower-level example.

Usage: python examples/host_plugin.py [CODEX_HOME] (a new temporary home without one).
"""

import sys
import tempfile

import anyio

from codex_core.hookspecs import hookimpl
from codex_core.kernel import Kernel
from codex_core.rpc import RpcMethod


class HostPlugin:
    """The host's own features, registered like any plugin (no entry point needed)."""

    __name__ = "my-host"

    @hookimpl
    def codex_rpc_methods(self):
        async def version(ctx, params):
            return {"host": "my-app 2.0"}

        return [RpcMethod("host/version", version)]


async def main(home: str) -> None:
    kernel = Kernel(codex_home=home, plugins=[HostPlugin()])
    async with kernel, kernel.connect() as client:  # startup/shutdown hooks, then a session
        info = await client.initialize("my-app", "2.0")
        print("codex home:", info["codexHome"])
        print(await client.request("host/version", {}))
        thread = await client.request("thread/start", {})
        started = await client.wait_for("thread/started")
        assert started["thread"]["id"] == thread["thread"]["id"]


home = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="codex-home-")
anyio.run(main, home)
