"""Pages of a thread's history: ``thread/turns/list`` and ``thread/items/list``.

Clients page through a long thread instead of hydrating it whole. A cursor is opaque to them;
like the reference's, it is JSON naming the thread, an anchor and whether the anchor belongs
to the page, so that ``nextCursor`` continues in the same direction (anchor excluded) and
``backwardsCursor`` rereads in the opposite direction (anchor included) while new turns keep
being appended. Anchors are turn and item ids rather than positions, so a page stays right
when the history grows between two calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from codex_core.rpc import INVALID_PARAMS, INVALID_REQUEST, RpcError

#: Page size when the request gives none (the reference's).
DEFAULT_LIMIT = 25
TURNS = "turns"
ITEMS = "itemsByCreatedAtOrdinal"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page:
    data: list[Any]
    next_cursor: str | None
    backwards_cursor: str | None

    def wire(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "nextCursor": self.next_cursor,
            "backwardsCursor": self.backwards_cursor,
        }


def turn_view(turn: dict[str, Any], view: str) -> dict[str, Any]:
    """A turn with ``full`` items, a ``summary`` (the request and the final answer) or none."""
    items: list[dict[str, Any]] = list(turn.get("items") or [])
    if view == "notLoaded":
        items = []
    elif view == "summary":
        request = next((i for i in items if i.get("type") == "userMessage"), None)
        answer = next((i for i in reversed(items) if i.get("type") == "agentMessage"), None)
        items = [item for item in (request, answer) if item is not None]
    return {**turn, "items": items, "itemsView": view}


def item_entries(turns: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``ThreadItemEntry`` values: every item of the turns, oldest first."""
    return [
        {
            "turnId": turn["id"],
            "item": item,
            "startedAtMs": item.get("startedAtMs"),
            "completedAtMs": item.get("completedAtMs"),
        }
        for turn in turns
        for item in turn.get("items") or ()
    ]


def entry_key(entry: dict[str, Any]) -> str:
    return f"{entry['turnId']}/{entry['item']['id']}"


def turn_key(turn: dict[str, Any]) -> str:
    return str(turn["id"])


def paginate(
    entries: Sequence[T],
    key: Callable[[T], str],
    *,
    thread_id: str,
    scope: str,
    cursor: Any,
    limit: int | None,
    descending: bool,
) -> Page:
    """One page of ``entries`` (oldest first) in the asked direction, after ``cursor``."""
    ordered = list(reversed(entries)) if descending else list(entries)
    start = 0
    if cursor is not None:
        anchor, include = _decode(cursor, thread_id, scope)
        keys = [key(entry) for entry in ordered]
        if anchor not in keys:
            raise RpcError(INVALID_REQUEST, f"invalid cursor: {cursor}")
        start = keys.index(anchor) + (0 if include else 1)
    size = max(1, limit if limit is not None else DEFAULT_LIMIT)
    data = ordered[start : start + size]
    more = start + size < len(ordered)
    return Page(
        data=data,
        next_cursor=_encode(thread_id, scope, key(data[-1]), include=False) if more else None,
        backwards_cursor=_encode(thread_id, scope, key(data[0]), include=True) if data else None,
    )


def anchor_cursor(
    entries: Sequence[dict[str, Any]], cursor: dict[str, Any], turn_id: str | None, thread_id: str
) -> str:
    """An item anchor (``{"type": "item", "itemId"}``) as the equivalent string cursor."""
    if not turn_id:
        raise RpcError(INVALID_PARAMS, "turnId is required when cursor is an item anchor")
    key = f"{turn_id}/{cursor.get('itemId')}"
    if key not in {entry_key(entry) for entry in entries}:
        raise RpcError(
            INVALID_PARAMS, "cursor.itemId does not identify an item in the requested history scope"
        )
    return _encode(thread_id, ITEMS, key, include=False)


def _encode(thread_id: str, scope: str, anchor: str, *, include: bool) -> str:
    return json.dumps(
        {"requestedThreadId": thread_id, "anchor": anchor, "includeAnchor": include,
         "scope": {"kind": scope}},
        separators=(",", ":"),
    )  # fmt: skip


def _decode(cursor: str, thread_id: str, scope: str) -> tuple[str, bool]:
    try:
        value = json.loads(cursor)
    except ValueError:
        value = None
    if (
        not isinstance(value, dict)
        or value.get("requestedThreadId") != thread_id
        or (value.get("scope") or {}).get("kind") != scope
        or not isinstance(value.get("anchor"), str)
    ):
        raise RpcError(INVALID_REQUEST, f"invalid cursor: {cursor}")
    return value["anchor"], bool(value.get("includeAnchor"))
