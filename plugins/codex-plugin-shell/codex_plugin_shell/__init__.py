"""``exec_command``: the model runs shell commands, with the user's approval when needed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from codex_core.hookspecs import hookimpl
from codex_plugin_shell.exec import ExecCommand

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

__all__ = ["ExecCommand", "codex_tools"]


@hookimpl
def codex_tools(kernel: Kernel) -> list[ExecCommand]:
    return [ExecCommand()]
