"""Shell commands: the model's (``exec_command``, with the user's approval when needed), the
user's own (``thread/shellCommand``), the model's background terminals (``write_stdin`` into
them, ``thread/backgroundTerminals/list|clean|terminate``), and a client's own outside any
thread (``command/exec`` with ``/write``, ``/resize``, ``/terminate``)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from codex_core.hookspecs import hookimpl
from codex_core.rpc import RpcMethod
from codex_plugin_shell.background import BackgroundTerminals
from codex_plugin_shell.command_exec import CommandExec
from codex_plugin_shell.exec import ExecCommand
from codex_plugin_shell.unified_exec import sessions
from codex_plugin_shell.user_shell import ShellCommand
from codex_plugin_shell.write_stdin import WriteStdin

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

__all__ = [
    "BackgroundTerminals",
    "CommandExec",
    "ExecCommand",
    "ShellCommand",
    "WriteStdin",
    "codex_rpc_methods",
    "codex_shutdown",
    "codex_thread_unloading",
    "codex_tools",
]


@hookimpl
def codex_tools(kernel: Kernel) -> list[ExecCommand | WriteStdin]:
    return [ExecCommand(), WriteStdin()]


@hookimpl
def codex_shutdown(kernel: Kernel) -> Awaitable[None] | None:
    """No command of the model outlives the server (each runs in a session of its own)."""
    sessions(kernel).close()
    return None


@hookimpl
def codex_thread_unloading(kernel: Kernel, thread_id: str) -> Awaitable[None]:
    """An archived, deleted or idle-unloaded thread takes its background terminals along."""
    return sessions(kernel).close_thread(thread_id)


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
        RpcMethod("thread/backgroundTerminals/terminate", terminals.terminate),
    ]
