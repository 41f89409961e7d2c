"""``thread/list``'s order and cursors, and which threads a listing shows.

Like the reference's, a cursor is a position in time rather than in a list, so pages stay right
while threads are created: ``<time>|<id>`` continues after that entry, a bare ``<time>`` starts
at that time, included. Anything else is refused as an invalid cursor. Every ``ThreadStore``
lists with these, so that a client's cursors mean the same whichever store answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from codex_core.rpc import INVALID_REQUEST, RpcError

if TYPE_CHECKING:
    from codex_core.threads.rollout import StoredThread

#: What ``thread/list`` lists without ``sourceKinds``: threads people started, not sub-agents.
INTERACTIVE_SOURCES = frozenset({"cli", "vscode"})


@dataclass(frozen=True, slots=True)
class ListingEntry:
    """A rollout in ``thread/list`` order: its sort time (UTC) and thread id."""

    when: datetime
    thread_id: str
    sort_key: str

    def next_cursor(self) -> str:
        """Continues after this entry (``<time>|<id>``, the reference's form)."""
        return f"{self.when.strftime('%Y-%m-%dT%H:%M:%S')}Z|{self.thread_id}"

    def backwards_cursor(self, stored: StoredThread) -> str:
        """A bare time at or just after this entry's (the reference's form): rereads the page
        from its start. Like the reference's, it is the moment the thread was written to the
        millisecond, while creation times sort to the second."""
        if self.sort_key == "created_at" and stored.written_at:
            return stored.written_at
        return self.when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True, slots=True)
class Cursor:
    """A parsed cursor: from ``when`` (seconds since the epoch) on, after ``thread_id``
    when it names one, else ``when`` included."""

    when: float
    thread_id: str | None


def parse_cursor(cursor: str) -> Cursor:
    when_text, _, thread_id = cursor.partition("|")
    try:
        when = datetime.fromisoformat(when_text.replace("Z", "+00:00"))
    except ValueError:
        raise RpcError(INVALID_REQUEST, f"invalid cursor: {cursor}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return Cursor(when.timestamp(), thread_id or None)


def wire_source(raw: Any) -> Any:
    """A rollout's ``source`` as the protocol's ``SessionSource``."""
    if isinstance(raw, dict) and "subagent" in raw:
        return {"subAgent": raw["subagent"]}
    return raw if isinstance(raw, str) else "vscode"


def thread_source_kinds(source: Any) -> set[str]:
    """The ``ThreadSourceKind`` values a thread's ``source`` matches (``subAgent`` and the
    specific sub-agent kind for a sub-agent)."""
    if not isinstance(source, dict) or "subAgent" not in source:
        return {str(source)}
    sub = source["subAgent"]
    specific = {"review": "subAgentReview", "compact": "subAgentCompact"}.get(str(sub))
    if isinstance(sub, dict) and "thread_spawn" in sub:
        specific = "subAgentThreadSpawn"
    return {"subAgent", specific or "subAgentOther"}
