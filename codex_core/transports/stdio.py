"""The built-in ``stdio://`` transport: one JSON message per line on stdin/stdout.

The channel itself (``stdio_channel``, with asyncio's streams) is imported when the transport
serves, not when the plugin loads (``--help``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codex_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from codex_core.kernel import Kernel


class StdioTransport:
    scheme = "stdio"

    async def serve(self, url: str, kernel: Kernel) -> None:
        if url not in ("stdio", "stdio://"):
            raise ValueError(f"stdio takes no address: use --listen stdio:// (got {url!r})")
        from codex_core.transports.stdio_channel import StdioChannel

        channel, answered = await StdioChannel.open()
        await kernel.serve_channel(channel, answered=answered)


@hookimpl
def codex_transports() -> list[StdioTransport]:
    return [StdioTransport()]
