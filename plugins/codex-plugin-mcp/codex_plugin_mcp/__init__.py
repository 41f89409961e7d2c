"""MCP servers for codex-core: ``[mcp_servers.NAME]`` in config, their tools offered to the
model, and the ``mcpServer*`` methods, built on the official ``mcp`` SDK.

Servers start in parallel the first time something needs them (a client connecting, a status
list, a direct call); their tools join ``kernel.tools`` once ready, as ``mcp__SERVER__TOOL``.
The resource tools (``resource_tools``: list and read the servers' resources) are offered to
every thread that has MCP servers.
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
    from codex_core.rpc.connection import Connection

__all__ = ["McpManager", "ServerConfig", "parse_servers", "qualified_name"]


@hookimpl
def codex_rpc_methods(kernel: Kernel) -> list[RpcMethod]:
    return rpc_methods()


@hookimpl
def codex_tools(kernel: Kernel) -> list[ResourceTool]:
    return resource_tools(kernel)


@hookimpl
def codex_turn_starting(kernel: Kernel) -> Awaitable[None]:
    """Offer the model every configured server's tools, even on a thread's first turn."""
    return manager_of(kernel).wait_started()


@hookimpl
def codex_shutdown(kernel: Kernel) -> Awaitable[None]:
    return manager_of(kernel).close()


@hookimpl
def codex_config_loaded(kernel: Kernel, config: dict[str, Any]) -> None:
    manager = kernel.services.get("mcp")
    if manager is not None:
        manager.configure(config)


@hookimpl
def codex_connection_opened(connection: Connection) -> None:
    """A client is here: once it has initialized (so it hears ``mcpServer/startupStatus/updated``),
    start the servers in the background, so their tools are ready for its first turn."""
    manager = manager_of(connection.kernel)
    if manager.configs and not manager.handles:
        manager.start_when_initialized(connection)
