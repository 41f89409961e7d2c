"""``thread/inject_items``: raw Responses API items appended to what a thread's model reads.

The TUI's ``/side`` forks the thread and injects its side conversation this way. Items are
checked as the reference's serde ``ResponseItem`` reads them, with its words (``items[1] is not
a valid response item: missing field `role```); a type the reference does not know is
accepted and dropped, as its catch-all variant is.
"""

from __future__ import annotations

from typing import Any

from codex_core.rpc import INVALID_REQUEST, RpcError
from codex_core.rpc.validation import describe

#: Required fields of the item types the model reads, in the reference's declaration order
#: (serde reports the first one missing).
REQUIRED = {
    "message": ("role", "content"),
    "reasoning": ("summary",),
    "function_call": ("name", "arguments", "call_id"),
    "function_call_output": ("call_id", "output"),
    "custom_tool_call": ("call_id", "name", "input"),
    "custom_tool_call_output": ("call_id", "output"),
}
#: Fields that hold a list (``invalid type: ..., expected a sequence`` otherwise).
SEQUENCES = {"content", "summary"}


def serde_value(value: Any) -> str:
    """A JSON value as serde names it here: containers with an article (``a sequence``)."""
    if isinstance(value, list | dict):
        return "a sequence" if isinstance(value, list) else "a map"
    return describe(value)


def problem(item: Any) -> str | None:
    """Why the reference would refuse ``item`` as a ``ResponseItem``, or ``None``."""
    if (isinstance(item, list) and not item) or (isinstance(item, dict) and "type" not in item):
        return "missing field `type`"
    if not isinstance(item, dict):
        return f"invalid type: {serde_value(item)}, expected internally tagged enum ResponseItem"
    kind = item["type"]
    if isinstance(kind, (int, float)) and not isinstance(kind, bool):
        return "invalid type: number, expected variant identifier"
    if not isinstance(kind, str):
        return f"invalid type: {serde_value(kind)}, expected variant identifier"
    for name in REQUIRED.get(kind, ()):
        if name not in item:
            return f"missing field `{name}`"
        if name in SEQUENCES and not isinstance(item[name], list):
            return f"invalid type: {serde_value(item[name])}, expected a sequence"
    return None


def response_items(raw: list[Any]) -> list[dict[str, Any]]:
    """The items the model is to read (unknown types dropped); ``RpcError`` for the first
    one the reference would refuse."""
    if not raw:
        raise RpcError(INVALID_REQUEST, "items must not be empty")
    for index, item in enumerate(raw):
        reason = problem(item)
        if reason is not None:
            raise RpcError(
                INVALID_REQUEST, f"items[{index}] is not a valid response item: {reason}"
            )
    return [item for item in raw if item["type"] in REQUIRED]
