"""``thread/shellCommand``: the user's own ``!`` command, run in the thread's cwd for all to see.

Unlike the model's commands it runs unsandboxed and without approval (the user typed it), as a
``commandExecution`` item with ``source: userShell``: inside the running turn, or in a turn of
its own when the thread is idle. The model reads what happened in its next request, wrapped as
``<user_shell_command>`` (the reference's framing).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from codex_core.rpc import INVALID_REQUEST, RequestContext, RpcError
from codex_core.threads.tools import ToolContext
from codex_plugin_shell.exec import command_item, default_shell, execute, prepare

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.threads.turns import Turn

#: How long a user's command may run when the request does not say (one hour, as the reference).
DEFAULT_TIMEOUT_MS = 60 * 60 * 1000


class ShellCommand:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    async def __call__(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        command = params.command.strip()
        if not command:
            raise RpcError(INVALID_REQUEST, "command must not be empty")
        timeout_ms = DEFAULT_TIMEOUT_MS if params.timeout_ms is None else params.timeout_ms
        if timeout_ms < 0:
            raise RpcError(INVALID_REQUEST, "timeoutMs must not be negative")
        threads = self.kernel.services.get("threads")
        if threads is None:
            raise RpcError(INVALID_REQUEST, "threads are not available")

        async def body(turn: Turn) -> None:
            await run_user_command(turn, command, timeout_ms)

        threads.run_beside_model(ctx, params.thread_id, body)
        return {}


async def run_user_command(turn: Turn, command: str, timeout_ms: int) -> None:
    context = ToolContext(turn, str(uuid.uuid4()))
    argv = [default_shell(), "-lc", command]
    item = command_item(context.call_id, argv, context.cwd, command, source="userShell")
    policy = context.config.get("shell_environment_policy") or {}
    argv, env = await prepare(argv, policy)
    ran = await execute(context, item, argv, context.cwd, env, timeout_ms)
    output = ran.error if ran.error is not None else ran.output
    text = (
        f"<user_shell_command>\n<command>\n{command}\n</command>\n<result>\n"
        f"Exit code: {ran.exit_code}\nDuration: {ran.wall:.4f} seconds\nOutput:\n{output}\n"
        "</result>\n</user_shell_command>"
    )
    turn.remember(
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )
