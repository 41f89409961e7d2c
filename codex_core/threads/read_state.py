"""Read state: where a thread's unread results begin, so clients can mark threads unread.

A thread's ``ThreadReadState`` is ``{firstUnread, revision}``: ``firstUnread`` is the earliest
turn whose answer nobody has read (``{"type": "turn", "turnId"}``), ``{"type":
"threadStart"}`` when a user marked the thread unread, or ``None`` when it is read; the opaque
``revision`` changes with every change, so a client's ``thread/readState/update`` made on what it
saw is refused when something happened since (as the reference does). States persist in
``$CODEX_HOME/read_state.jsonl``, one line per change, the last line of a thread winning.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

FILE = "read_state.jsonl"


def initial(thread_id: str, turns: list[dict[str, Any]]) -> dict[str, Any]:
    """The state of a thread nobody marked yet: unread from its first turn."""
    first = {"type": "turn", "turnId": turns[0]["id"]} if turns else None
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
    path = codex_home / FILE
    if not path.is_file():
        return states
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue  # a torn last line
        if isinstance(line, dict) and isinstance(line.get("id"), str):
            states[line["id"]] = {"firstUnread": line.get("firstUnread"),
                                  "revision": str(line.get("revision"))}  # fmt: skip
    return states


def save(codex_home: Path, thread_id: str, state: dict[str, Any]) -> None:
    codex_home.mkdir(parents=True, exist_ok=True)
    with (codex_home / FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": thread_id, **state}, separators=(",", ":")) + "\n")
        handle.flush()
