"""The ``event`` of ``thread/approveGuardianDeniedAction``: a serialized core
``GuardianAssessmentEvent`` (snake_case, the action tagged by ``type``).

Checked the way the reference's serde does it, with its wording, so a client that sends a bad
event reads the same error from both servers (``invalid Guardian denial event: missing field
`id```). Only what this server reads is checked in depth; unknown keys are ignored, as serde
ignores them.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["EventError", "action_key", "check_event"]


class EventError(ValueError):
    """The event does not deserialize; the message is serde's."""


_STATUSES = ("in_progress", "approved", "denied", "timed_out", "aborted")
_LEVELS = ("low", "medium", "high", "critical")
_AUTHORIZATIONS = ("unknown", "low", "medium", "high")
_SOURCES = ("shell", "unified_exec")
#: The action variants and, for each, its required fields in declaration order.
_ACTIONS: dict[str, tuple[str, ...]] = {
    "command": ("source", "command", "cwd"),
    "execve": ("source", "program", "argv", "cwd"),
    "write_stdin": (),
    "apply_patch": ("cwd", "files"),
    "network_access": ("target", "host", "protocol", "port"),
    "mcp_tool_call": ("server", "tool_name"),
    "request_permissions": ("permissions",),
}
_REQUIRED = ("id", "status", "action")


def _unexpected(value: Any) -> str:
    """How serde names a JSON value it did not expect."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def _variant(value: Any, allowed: tuple[str, ...], *, what: str = "string or map") -> str:
    if not isinstance(value, str):
        raise EventError(f"invalid type: {_unexpected(value)}, expected {what}")
    if value not in allowed:
        if len(allowed) == 2:
            expected = f"`{allowed[0]}` or `{allowed[1]}`"
        else:
            expected = "one of " + ", ".join(f"`{name}`" for name in allowed)
        raise EventError(f"unknown variant `{value}`, expected {expected}")
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise EventError(f"invalid type: {_unexpected(value)}, expected a string")
    return value


def _check_action(action: Any) -> dict[str, Any]:
    if not isinstance(action, dict):
        raise EventError(
            f"invalid type: {_unexpected(action)}, expected internally tagged enum "
            "GuardianAssessmentAction"
        )
    if "type" not in action:
        raise EventError("missing field `type`")
    kind = _variant(action["type"], tuple(_ACTIONS), what="variant identifier")
    for name, value in action.items():
        if name not in _ACTIONS[kind]:
            continue
        if name == "source":
            _variant(value, _SOURCES)
        elif name in ("command", "cwd", "program", "server", "tool_name"):
            _string(value)
        elif name in ("files", "argv") and not isinstance(value, list):
            raise EventError(f"invalid type: {_unexpected(value)}, expected a sequence")
    for name in _ACTIONS[kind]:
        if name not in action:
            raise EventError(f"missing field `{name}`")
    return action


def check_event(event: Any) -> dict[str, Any]:
    """The event as a dict, or ``EventError`` with serde's message."""
    if not isinstance(event, dict):
        raise EventError(
            f"invalid type: {_unexpected(event)}, expected struct GuardianAssessmentEvent"
        )
    for name, value in event.items():
        if name in ("id", "turn_id") or (name in ("target_item_id", "rationale") and value):
            _string(value)
        elif name in ("started_at_ms", "completed_at_ms") and value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise EventError(f"invalid type: {_unexpected(value)}, expected i64")
        elif name == "status":
            _variant(value, _STATUSES)
        elif name == "risk_level" and value is not None:
            _variant(value, _LEVELS)
        elif name == "user_authorization" and value is not None:
            _variant(value, _AUTHORIZATIONS)
        elif name == "action":
            _check_action(value)
    for name in _REQUIRED:
        if name not in event:
            raise EventError(f"missing field `{name}`")
    return event


def action_key(action: dict[str, Any]) -> str:
    """What identifies "the exact same action" across a denial and its retry.

    Takes either spelling, the core event's (``apply_patch``, ``tool_name``) or the
    notification's (``applyPatch``, ``toolName``); empty fields and the command's source are
    left out (the same command line is the same action whichever tool runs it).
    """
    fields = {
        re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower(): value
        for key, value in action.items()
        if key != "source" and value is not None
    }
    fields["type"] = re.sub(r"(?<!^)([A-Z])", r"_\1", str(fields.get("type") or "")).lower()
    if isinstance(fields.get("files"), list):
        fields["files"] = sorted(str(path) for path in fields["files"])
    return json.dumps(fields, sort_keys=True)
