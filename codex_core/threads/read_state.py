"""Read state: where a thread's unread results begin, so clients can mark threads unread.

A thread's ``ThreadReadState`` is ``{firstUnread, revision}``: ``firstUnread`` is the earliest
turn whose answer nobody has read (``{"type": "turn", "turnId"}``), ``{"type":
"threadStart"}`` when a user marked the thread unread, or ``None`` when it is read; the opaque
``revision`` changes with every change, so a client's ``thread/readState/update`` made on what it
saw is refused when something happened since (as the reference does). States persist in
``$CODEX_HOME/read_state.jsonl``, one line per change, the last line of a thread winning.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from codex_core.threads import journal

FILE = "read_state.jsonl"


def initial(thread_id: str, first_turn: str | None) -> dict[str, Any]:
    """The state of a thread nobody marked yet: unread from its first turn."""
    first = {"type": "turn", "turnId": first_turn} if first_turn else None
    return {"firstUnread": first, "revision": f"initial:{thread_id}"}


def answered(state: dict[str, Any], turn_id: str) -> dict[str, Any]:
    """After a turn answered: unread from there, unless something earlier already is."""
    first = state.get("firstUnread") or {"type": "turn", "turnId": turn_id}
    return {"firstUnread": first, "revision": str(uuid.uuid4())}


def marked(operation: str) -> dict[str, Any]:
    """A user marked the thread ``read`` or ``unread``."""
    first = None if operation == "read" else {"type": "threadStart"}
    return {"firstUnread": first, "revision": str(uuid.uuid4())}


def load(codex_home: Path) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = {}
    for line in journal.records(codex_home / FILE):
        if isinstance(line.get("id"), str):
            states[line["id"]] = {"firstUnread": line.get("firstUnread"),
                                  "revision": str(line.get("revision"))}  # fmt: skip
    return states


def save(codex_home: Path, thread_id: str, state: dict[str, Any]) -> None:
    journal.append(codex_home / FILE, {"id": thread_id, **state})
