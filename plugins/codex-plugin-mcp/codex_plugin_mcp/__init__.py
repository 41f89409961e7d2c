"""MCP servers for codex-core: ``[mcp_servers.NAME]`` in config, their tools offered to the
model, and the ``mcpServer*`` methods, built on the official ``mcp`` SDK.

As in the reference, each thread runs its own servers: they start in parallel when the thread
is loaded and stop when it unloads; their tools join ``kernel.tools`` once ready, as
``mcp__SERVER__TOOL``, and a call runs on the calling thread's server. The resource tools
(``resource_tools``: list and read the servers' resources) are offered to every thread that has
MCP servers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codex_core.hookspecs import hookimpl
from codex_plugin_mcp.config import ServerConfig, parse_servers
from codex_plugin_mcp.manager import McpManager, qualified_name
from codex_plugin_mcp.methods import manager_of, rpc_methods
from codex_plugin_mcp.resource_tools import ResourceTool, resource_tools

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from codex_core.kernel import Kernel
    from codex_core.rpc import RpcMethod

__all__ = ["McpManager", "ServerConfig", "parse_servers", "qualified_name"]


@hookimpl
def codex_rpc_methods(kernel: Kernel) -> list[RpcMethod]:
    return rpc_methods()


@hookimpl
def codex_tools(kernel: Kernel) -> list[ResourceTool]:
    return resource_tools(kernel)


@hookimpl
def codex_thread_loaded(kernel: Kernel, thread_id: str) -> None:
    """The thread's servers start now, so their tools are ready for its first turn."""
    manager_of(kernel).thread_loaded(thread_id)


@hookimpl
def codex_turn_starting(kernel: Kernel, thread_id: str) -> Awaitable[None]:
    """Offer the model the thread's servers' tools, even on its first turn."""
    return manager_of(kernel).group(thread_id).wait_started()


@hookimpl
def codex_thread_unloading(kernel: Kernel, thread_id: str) -> Awaitable[None] | None:
    """The thread's servers stop with it."""
    manager = kernel.services.get("mcp")
    return None if manager is None else manager.thread_unloading(thread_id)


@hookimpl
def codex_shutdown(kernel: Kernel) -> Awaitable[None]:
    return manager_of(kernel).close()


@hookimpl
def codex_config_loaded(kernel: Kernel, config: dict[str, Any]) -> None:
    manager = kernel.services.get("mcp")
    if manager is not None:
        manager.configure(config)
