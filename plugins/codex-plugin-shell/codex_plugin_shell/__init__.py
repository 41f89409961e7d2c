"""Shell commands: the model's (``exec_command``, with the user's approval when needed), the
user's own (``thread/shellCommand``), the model's background terminals
(``thread/backgroundTerminals/list|clean``), and a client's own outside any thread
(``command/exec`` with ``/write``, ``/resize``, ``/terminate``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from codex_core.hookspecs import hookimpl
from codex_core.rpc import RpcMethod
from codex_plugin_shell.background import BackgroundTerminals
from codex_plugin_shell.command_exec import CommandExec
from codex_plugin_shell.exec import ExecCommand
from codex_plugin_shell.user_shell import ShellCommand

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

__all__ = [
    "BackgroundTerminals",
    "CommandExec",
    "ExecCommand",
    "ShellCommand",
    "codex_rpc_methods",
    "codex_tools",
]


@hookimpl
def codex_tools(kernel: Kernel) -> list[ExecCommand]:
    return [ExecCommand()]


@hookimpl
def codex_rpc_methods(kernel: Kernel) -> list[RpcMethod]:
    terminals = BackgroundTerminals(kernel)
    commands = CommandExec(kernel)
    return [
        RpcMethod("command/exec", commands.exec),
        RpcMethod("command/exec/write", commands.write),
        RpcMethod("command/exec/resize", commands.resize),
        RpcMethod("command/exec/terminate", commands.terminate),
        RpcMethod("thread/shellCommand", ShellCommand(kernel)),
        RpcMethod("thread/backgroundTerminals/list", terminals.list),
        RpcMethod("thread/backgroundTerminals/clean", terminals.clean),
    ]
