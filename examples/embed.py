"""The in-process embedding example from docs/embedding.md."""

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


async def main() -> None:
    kernel = Kernel(plugins=[HostPlugin()])  # CODEX_HOME from the environment
    async with kernel, kernel.connect() as client:  # startup/shutdown hooks, then a session
        info = await client.initialize("my-app", "2.0")
        print("codex home:", info["codexHome"])
        print(await client.request("host/version", {}))
        thread = await client.request("thread/start", {})
        started = await client.wait_for("thread/started")
        assert started["thread"]["id"] == thread["thread"]["id"]


anyio.run(main)
