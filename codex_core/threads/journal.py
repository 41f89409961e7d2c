"""Per-thread state kept as a JSON-lines change log in ``$CODEX_HOME`` (read states, goals).

One line per change, appended; reading replays them, so a thread's last line wins. Appending
never rewrites the file, and a torn last line (a crash mid-write) is skipped on reading.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def records(path: Path) -> Iterator[dict[str, Any]]:
    """Every JSON object line of ``path`` in order; nothing when it does not exist."""
    if not path.is_file():
        return
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue  # a torn last line
        if isinstance(line, dict):
            yield line


def append(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, separators=(",", ":")) + "\n")
