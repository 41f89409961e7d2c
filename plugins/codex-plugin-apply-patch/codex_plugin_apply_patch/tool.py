"""The ``apply_patch`` tool: a freeform (grammar) tool whose input is the patch text.

The flow for one call, in the reference server's order::

    bad patch / does not fit   no item; the model reads ``apply_patch verification failed: ...``
    item/started (fileChange, every change with its diff)
    approval needed?  thread/status/changed waitingOnApproval -> item/fileChange/requestApproval
                      -> serverRequest/resolved -> thread/status/changed active
    accepted          files written (all or none) -> item/completed (completed)
                      -> turn/diff/updated (the turn's diff so far)
    declined          item/completed (declined); the model reads ``patch rejected by user``
    cancelled         item/completed (declined); the turn ends as interrupted

Writing inside the cwd under ``workspace-write`` needs no approval; ``read-only`` asks; a
write outside the cwd under ``workspace-write`` asks as an escalation.
"""

from __future__ import annotations

import os
import time
from typing import Any

from codex_core.hookspecs import Tool, ToolResult
from codex_core.threads.diff import hunks
from codex_plugin_apply_patch.parser import Change, PatchError, apply, parse, plan

#: The patch language, for models that constrain freeform tool input with a grammar.
GRAMMAR = r"""start: begin_patch hunk+ end_patch
begin_patch: "*** Begin Patch" LF
end_patch: "*** End Patch" LF?

hunk: add_hunk | delete_hunk | update_hunk
add_hunk: "*** Add File: " filename LF add_line+
delete_hunk: "*** Delete File: " filename LF
update_hunk: "*** Update File: " filename LF change_move? change?

filename: /(.+)/
add_line: "+" /(.*)/ LF -> line

change_move: "*** Move to: " filename LF
change: (change_context | change_line)+ eof_line?
change_context: ("@@" | "@@ " /(.+)/) LF
change_line: ("+" | "-" | " ") /(.*)/ LF
eof_line: "*** End of File" LF

%import common.LF
"""

DESCRIPTION = (
    "Edits files with a patch. Freeform tool: send the patch text itself, not JSON. "
    "The patch starts with '*** Begin Patch' and ends with '*** End Patch'; each file is "
    "'*** Add File: <path>' (lines prefixed '+'), '*** Delete File: <path>', or "
    "'*** Update File: <path>' (optionally '*** Move to: <path>') followed by '@@' chunks "
    "of context (' '), removed ('-') and added ('+') lines. Paths are relative to the cwd."
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class ApplyPatch(Tool):
    """The ``apply_patch`` tool (a ``codex_core.hookspecs.Tool``, freeform)."""

    name = "apply_patch"
    description = DESCRIPTION
    #: A freeform tool: offered as ``{"type": "custom", "format": ...}``, called with raw text.
    format: dict[str, Any] = {"type": "grammar", "syntax": "lark", "definition": GRAMMAR}
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {"input": {"type": "string", "description": "The whole patch."}},
        "required": ["input"],
        "additionalProperties": False,
    }

    async def call(self, arguments: dict[str, Any], context: Any) -> ToolResult:
        started = time.monotonic()
        text = arguments.get("input") if isinstance(arguments, dict) else None
        if not isinstance(text, str):
            return ToolResult("apply_patch verification failed: missing patch input", False)
        try:
            changes = plan(parse(text), context.cwd)
        except PatchError as exc:
            return ToolResult(f"apply_patch verification failed: {exc}", success=False)
        cwd = os.path.realpath(context.cwd)
        targets = sorted({path for c in changes for path in (c.path, c.move_to) if path})
        outside = any(not inside(cwd, path) for path in targets)
        escalated = outside and context.sandbox_mode == "workspace-write"
        key = "patch:" + "\0".join(targets)
        verdict = context.needs_approval(escalated=escalated, safe=False, key=key)
        if verdict == "reject":
            return ToolResult(
                "apply_patch failed: writing these files needs approval (the sandbox does not "
                "allow it) and approval_policy is `never`; do not retry the same patch",
                success=False,
            )
        item = {
            "type": "fileChange",
            "id": context.call_id,
            "changes": [wire_change(change) for change in changes],
            "status": "inProgress",
            "startedAtMs": now_ms(),
            "completedAtMs": None,
        }
        context.item_started(item)
        if verdict == "ask":
            params = {"threadId": context.thread_id, "turnId": context.turn_id,
                      "itemId": item["id"], "startedAtMs": now_ms(), "reason": None,
                      "grantRoot": None}  # fmt: skip
            answer = await context.request_approval("item/fileChange/requestApproval", params, item)
            decision = answer.get("decision")
            context.approval_finished()
            if decision == "acceptForSession":
                context.approve_for_session(key)
            elif decision != "accept":
                context.item_completed({**item, "status": "declined", "completedAtMs": now_ms()})
                if decision != "decline":
                    context.abort_turn()
                return ToolResult("patch rejected by user", success=False)
        for change in changes:
            context.remember_file(change.path)
            if change.move_to:
                context.file_moved(change.path, change.move_to)
        try:
            apply(changes)
        except PatchError as exc:
            context.item_completed({**item, "status": "failed", "completedAtMs": now_ms()})
            return ToolResult(f"apply_patch failed: {exc}", success=False)
        context.item_completed({**item, "status": "completed", "completedAtMs": now_ms()})
        context.files_changed()
        wall = time.monotonic() - started
        summary = "".join(f"{letter(change)} {change.shown}\n" for change in changes)
        return ToolResult(
            f"Exit code: 0\nWall time: {wall:.1f} seconds\nOutput:\n"
            f"Success. Updated the following files:\n{summary}"
        )


def inside(root: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def letter(change: Change) -> str:
    return {"add": "A", "delete": "D"}.get(change.kind, "M")


def wire_change(change: Change) -> dict[str, Any]:
    """A ``FileUpdateChange``: the path, its kind and the diff the reference shows."""
    if change.kind == "add":
        return {"path": change.path, "kind": {"type": "add"}, "diff": change.new or ""}
    if change.kind == "delete":
        return {"path": change.path, "kind": {"type": "delete"}, "diff": change.old or ""}
    diff = hunks(change.old or "", change.new or "")
    if change.move_to:
        diff += f"\n\nMoved to: {change.move_to}"
    return {"path": change.path, "kind": {"type": "update", "move_path": change.move_to},
            "diff": diff}  # fmt: skip
