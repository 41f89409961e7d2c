"""The ``write_stdin`` tool: the model types into a running session of its, or polls it.

As the reference: the session is named by the id ``exec_command`` answered with (one of this
thread's); ``chars`` go to the command's stdin (a PTY's, only ``tty`` sessions have one), then
the call waits for output (250 ms by default after typing, 5 s to 5 min for an empty poll) and
answers in ``exec_command``'s shape. A call after which the command still runs is shown to the
client as ``item/commandExecution/terminalInteraction`` on the session's item (an empty
``stdin`` for a poll); one that saw the command end is not (the item's completion says it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from codex_core.hookspecs import Tool, ToolResult
from codex_plugin_shell import unified_exec
from codex_plugin_shell.exec import DEFAULT_MAX_OUTPUT_TOKENS, number, reply

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "chars": {
            "type": "string",
            "description": "Bytes to write to stdin. Defaults to empty, which polls without "
            "writing.",
        },
        "max_output_tokens": {
            "type": "number",
            "description": "Output token budget. Defaults to 10000 tokens; larger requests may "
            "be capped by policy.",
        },
        "session_id": {
            "type": "number",
            "description": "Identifier of the running unified exec session.",
        },
        "yield_time_ms": {
            "type": "number",
            "description": "Wait before yielding output. Non-empty writes default to 250 ms and "
            "cap at 30000 ms; empty polls wait 5000-300000 ms by default.",
        },
    },
    "required": ["session_id"],
    "additionalProperties": False,
}

#: What the model reads when it types into a session without a terminal.
STDIN_CLOSED = (
    "write_stdin failed: stdin is closed for this session; rerun exec_command with tty=true "
    "to keep stdin open"
)


class WriteStdin(Tool):
    """The ``write_stdin`` tool (a ``codex_core.hookspecs.Tool``)."""

    name = "write_stdin"
    description = "Writes characters to an existing unified exec session and returns recent output."
    input_schema = INPUT_SCHEMA

    @staticmethod
    def offered(setting: Callable[[str], Any]) -> bool:
        """Offered with ``exec_command`` (whose sessions it reaches), never without it."""
        return setting("features.shell_tool") is not False

    async def call(self, arguments: dict[str, Any], context: Any) -> ToolResult:
        raw_id = arguments.get("session_id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, int | float):
            # Worded as the reference's serde error (the column: the end of the arguments).
            problem = "missing field" if raw_id is None else "invalid type for"
            return ToolResult(
                f"failed to parse function arguments: {problem} `session_id` at line 1 "
                f"column {len(json.dumps(arguments))}",
                success=False,
            )
        store = unified_exec.sessions(context.kernel)
        session = store.get(context.thread_id, int(raw_id))
        if session is None:
            return ToolResult(
                f"write_stdin failed: Unknown process id {int(raw_id)}", success=False
            )
        started = time.monotonic()
        chars = arguments.get("chars")
        chars = chars if isinstance(chars, str) else ""
        if chars:
            if session.child.stdin is None:
                return ToolResult(STDIN_CLOSED, success=False)
            await session.child.write(chars.encode())
            wait_ms = unified_exec.clamp(
                arguments.get("yield_time_ms"), unified_exec.DEFAULT_WRITE_YIELD_MS,
                unified_exec.MIN_YIELD_MS, unified_exec.MAX_YIELD_MS,
            )  # fmt: skip
        else:
            wait_ms = unified_exec.clamp(
                arguments.get("yield_time_ms"), unified_exec.MIN_POLL_MS,
                unified_exec.MIN_POLL_MS, unified_exec.MAX_POLL_MS,
            )  # fmt: skip
        await session.wait(wait_ms)
        if session.exit_code is None:
            context.emit(
                "item/commandExecution/terminalInteraction",
                {"threadId": context.thread_id, "turnId": context.turn_id,
                 "itemId": session.item["id"], "processId": session.process_id, "stdin": chars},
            )  # fmt: skip
        budget = number(arguments.get("max_output_tokens"), DEFAULT_MAX_OUTPUT_TOKENS)
        return reply(store, session, started, budget)
