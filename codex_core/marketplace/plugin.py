"""The ``marketplace`` plugin: its hooks, and nothing else at import.

The methods (and the pydantic model of the ``[marketplace]`` table) are imported when the kernel
collects the plugin's contributions; loading the plugin (say, for ``--help``) costs almost
nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codex_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from pydantic import BaseModel

    from codex_core.kernel import Kernel
    from codex_core.rpc import RpcMethod


@hookimpl
def codex_config_sections() -> dict[str, type[BaseModel]]:
    from codex_core.marketplace.methods import MarketplaceSettings

    return {"marketplace": MarketplaceSettings}


@hookimpl
def codex_startup(kernel: Kernel) -> None:
    """Listen for installs made by other processes (``codex_core.marketplace.control``)."""
    from codex_core.marketplace import control

    kernel.start_soon(control.serve, kernel, name="marketplace-control", service=True)


@hookimpl
def codex_rpc_methods() -> list[RpcMethod]:
    from codex_core.marketplace import remote_methods
    from codex_core.marketplace.methods import rpc_methods

    return [*rpc_methods(), *remote_methods.rpc_methods()]
