"""The ``fs`` plugin: its hooks, and nothing else at import.

The methods, the blocking-work offload (and asyncio with it) and the polling watcher load when
the kernel collects the plugin's contributions; loading the plugin (``--help``) costs almost
nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codex_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from codex_core.fs.polling import PollingWatcher
    from codex_core.rpc import RpcMethod
    from codex_core.rpc.connection import Connection


@hookimpl
def codex_rpc_methods() -> list[RpcMethod]:
    from codex_core.fs.methods import rpc_methods

    return rpc_methods()


@hookimpl
def codex_fs_watchers() -> list[PollingWatcher]:
    """The fallback backend: works everywhere, lowest priority (a new one per kernel)."""
    from codex_core.fs.polling import PollingWatcher

    return [PollingWatcher()]


@hookimpl
def codex_connection_closed(connection: Connection) -> None:
    """Watches belong to their connection: drop them with it."""
    from codex_core.fs import watch

    watch.close_connection(connection)
