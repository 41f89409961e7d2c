"""Fuzzy file search for clients: ``fuzzyFileSearch`` (stable) and the experimental session API
``fuzzyFileSearch/sessionStart|sessionUpdate|sessionStop`` with its ``sessionUpdated`` and
``sessionCompleted`` notifications, ranked as the official server ranks (``docs/file-search.md``).

Only the handlers' module is imported at startup; the ignore-file parser (pathspec) is loaded
by the first walk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codex_core.hookspecs import hookimpl
from codex_plugin_file_search.methods import FileSearchMethods

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.rpc import RpcMethod

__all__ = ["FileSearchMethods", "codex_rpc_methods"]


@hookimpl
def codex_rpc_methods(kernel: Kernel) -> list[RpcMethod]:
    return FileSearchMethods(kernel).rpc_methods()
