"""Helpers shared by the protocol tests: trace reading and wire-form comparison."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
#: Exchanges of the official TUI with the official server, captured by a proxy (README there).
TRACES = REPO / "tests" / "fixtures" / "reference" / "traces"
# The traces replace the server's temporary directory by this placeholder, which is not an
# absolute path; an absolute stand-in keeps AbsolutePathBuf fields valid.
TMP_PLACEHOLDER = "<tmp>"
TMP_STAND_IN = "/tmp/codex-trace-home"


def unplaceholder(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(TMP_PLACEHOLDER, TMP_STAND_IN)
    if isinstance(value, list):
        return [unplaceholder(item) for item in value]
    if isinstance(value, dict):
        return {key: unplaceholder(item) for key, item in value.items()}
    return value


@dataclass
class Message:
    """One protocol message of a trace, classified, with the method it belongs to."""

    trace: str
    line: int
    direction: str  # "c2s" or "s2c"
    kind: str  # "request", "response", "error" or "notification"
    method: str | None
    msg: dict[str, Any]

    def where(self) -> str:
        return f"{self.trace}:{self.line} {self.direction} {self.kind} {self.method}"


def trace_messages(path: Path) -> Iterator[Message]:
    """The messages of one ``*.ws.jsonl`` trace; responses carry their request's method."""
    pending: dict[tuple[Any, str, str], str] = {}  # (conn, direction of request, id) -> method
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        if not raw.strip():
            continue
        entry = json.loads(raw)
        msg = unplaceholder(entry.get("msg"))
        direction = entry.get("dir")
        if not isinstance(msg, dict) or direction not in ("c2s", "s2c"):
            continue
        conn = entry.get("conn")
        key_id = json.dumps(msg.get("id"))
        if "method" in msg:
            kind = "request" if "id" in msg else "notification"
            if kind == "request":
                pending[(conn, direction, key_id)] = msg["method"]
            yield Message(path.name, number, direction, kind, msg["method"], msg)
        elif "result" in msg or "error" in msg:
            other = "s2c" if direction == "c2s" else "c2s"
            method = pending.pop((conn, other, key_id), None)
            kind = "response" if "result" in msg else "error"
            yield Message(path.name, number, direction, kind, method, msg)


def wire_differences(original: Any, dumped: Any, path: str = "") -> list[str]:
    """Where ``dumped`` loses a key of ``original`` or changes a value."""
    if isinstance(original, dict):
        if not isinstance(dumped, dict):
            return [f"{path or '/'}: object became {type(dumped).__name__}"]
        problems = []
        for key, value in original.items():
            if key not in dumped:
                problems.append(f"{path}/{key}: key dropped")
                continue
            problems += wire_differences(value, dumped[key], f"{path}/{key}")
        return problems
    if isinstance(original, list):
        if not isinstance(dumped, list) or len(original) != len(dumped):
            return [f"{path or '/'}: list changed"]
        problems = []
        for index, (a, b) in enumerate(zip(original, dumped, strict=True)):
            problems += wire_differences(a, b, f"{path}/{index}")
        return problems
    if original != dumped or type(original) is not type(dumped):
        return [f"{path or '/'}: {original!r} became {dumped!r}"]
    return []
