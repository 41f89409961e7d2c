"""The unified diff of a turn so far (``turn/diff/updated``), in git's format.

A tool that writes files calls ``TurnDiff.remember(path)`` before it touches a path (the first
call keeps the content the turn started from) and ``moved(old, new)`` for renames; ``render()``
compares each remembered file with what is on disk now, as the reference does::

    diff --git a/a.txt b/a.txt
    index <blob sha1>..<blob sha1>
    --- a/a.txt
    +++ b/a.txt
    @@ -1,3 +1,3 @@
"""

from __future__ import annotations

import difflib
import hashlib
import os
from pathlib import Path

ZERO = "0" * 40


def blob_id(data: bytes | None) -> str:
    """Git's object id of a blob (``git hash-object``); zeros for a missing file."""
    if data is None:
        return ZERO
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def read(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def hunks(old: str, new: str) -> str:
    """The ``@@`` hunks between two texts (no file headers); git's ``\\ No newline`` marks."""
    out: list[str] = []
    lines = difflib.unified_diff(old.splitlines(True), new.splitlines(True), n=3)
    for index, line in enumerate(lines):
        if index < 2:  # the ---/+++ lines of difflib
            continue
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


class TurnDiff:
    """Files changed during one turn, and where they started."""

    def __init__(self, root: str) -> None:
        self.root = root
        #: original path -> content when the turn first touched it (None: did not exist).
        self.baseline: dict[str, bytes | None] = {}
        #: original path -> where it lives now (renames).
        self.current: dict[str, str] = {}

    def remember(self, path: str) -> None:
        path = os.path.abspath(path)
        if path in self.current.values() or path in self.baseline:
            return
        self.baseline[path] = read(path)
        self.current[path] = path

    def moved(self, old: str, new: str) -> None:
        old, new = os.path.abspath(old), os.path.abspath(new)
        self.remember(old)
        origin = next((o for o, c in self.current.items() if c == old), old)
        self.current[origin] = new
        # A file that lived at ``new`` before is replaced: keep its baseline as a deletion.
        if new in self.baseline and new != origin and self.current.get(new) == new:
            self.current[new] = new

    def relative(self, path: str) -> str:
        try:
            return os.path.relpath(path, self.root)
        except ValueError:
            return path

    def render(self) -> str:
        parts: list[str] = []
        for origin in sorted(self.baseline, key=self.relative):
            parts.append(self._file(origin, self.current[origin]))
        return "".join(parts)

    def _file(self, origin: str, now: str) -> str:
        before = self.baseline[origin]
        after = read(now)
        if before == after and origin == now:
            return ""
        old_name, new_name = self.relative(origin), self.relative(now)
        head = f"diff --git a/{old_name} b/{new_name}\n"
        mode = "100755" if after is not None and os.access(now, os.X_OK) else "100644"
        if before is None and after is None:
            return ""
        if before is None:
            head += f"new file mode {mode}\n"
        elif after is None:
            head += "deleted file mode 100644\n"
        head += f"index {blob_id(before)}..{blob_id(after)}\n"
        old_text = (before or b"").decode(errors="replace")
        new_text = (after or b"").decode(errors="replace")
        body = hunks(old_text, new_text)
        if not body:
            return head
        head += "--- /dev/null\n" if before is None else f"--- a/{old_name}\n"
        head += "+++ /dev/null\n" if after is None else f"+++ b/{new_name}\n"
        return head + body
