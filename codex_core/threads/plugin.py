"""The ``threads`` plugin: its hooks, and nothing else at import.

The registry, turns and the pydantic models behind them are imported when the kernel collects
the plugin's contributions; loading the plugin (say, for ``--help``) costs almost nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codex_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from pydantic import BaseModel

    from codex_core.kernel import Kernel
    from codex_core.rpc import RpcMethod
    from codex_core.rpc.connection import Connection
    from codex_core.threads.methods import ThreadRegistry


@hookimpl
def codex_rpc_methods(kernel: Kernel) -> list[RpcMethod]:
    from codex_core.threads.methods import rpc_methods

    return rpc_methods(kernel)


@hookimpl
def codex_config_sections() -> dict[str, type[BaseModel]]:
    from codex_core.threads.methods import ThreadsConfig

    return {"threads": ThreadsConfig}


@hookimpl
def codex_connection_closed(connection: Connection) -> None:
    registry: ThreadRegistry | None = connection.kernel.services.get("threads")
    if registry is not None:
        registry.forget(connection)


@hookimpl
def codex_shutdown(kernel: Kernel) -> Any:
    registry: ThreadRegistry | None = kernel.services.get("threads")
    return registry.shutdown() if registry is not None else None
