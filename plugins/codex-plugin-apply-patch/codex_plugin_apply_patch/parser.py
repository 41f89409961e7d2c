"""The patch format the model writes, parsed, checked against the files, and applied atomically.

::

    *** Begin Patch
    *** Add File: path        then "+line" lines
    *** Delete File: path
    *** Update File: path     then optional "*** Move to: path", then chunks:
    @@ [a line to find first]
     context / -removed / +added lines, optional "*** End of File"
    *** End Patch

``parse`` checks the syntax, ``plan`` computes every new file content (nothing is written yet:
a patch that does not fit fails as a whole), ``apply`` writes them all or none.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

BEGIN = "*** Begin Patch"
END = "*** End Patch"
ADD = "*** Add File: "
DELETE = "*** Delete File: "
UPDATE = "*** Update File: "
MOVE = "*** Move to: "
EOF_MARK = "*** End of File"


class PatchError(Exception):
    """A patch that cannot be parsed or does not fit the files; the message is for the model."""


@dataclass(slots=True)
class Chunk:
    context: str | None
    old: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    end_of_file: bool = False


@dataclass(slots=True)
class Hunk:
    kind: str  # add | delete | update
    path: str
    content: str = ""
    move_to: str | None = None
    chunks: list[Chunk] = field(default_factory=list)


@dataclass(slots=True)
class Change:
    """One file's change, resolved against the cwd: ``old``/``new`` are full contents."""

    kind: str
    path: str  # absolute
    shown: str  # the path as the patch names it (the destination for a move)
    old: str | None
    new: str | None
    move_to: str | None = None  # absolute


def parse(text: str) -> list[Hunk]:
    lines = text.strip().splitlines()
    if not lines or lines[0].strip() != BEGIN:
        raise PatchError("invalid patch: the first line of the patch must be '*** Begin Patch'")
    if lines[-1].strip() != END:
        raise PatchError("invalid patch: the last line of the patch must be '*** End Patch'")
    body = lines[1:-1]
    hunks: list[Hunk] = []
    index = 0
    while index < len(body):
        line = body[index]
        number = index + 2
        if line.startswith(ADD):
            hunk = Hunk("add", line[len(ADD) :].strip())
            index += 1
            added: list[str] = []
            while index < len(body) and body[index].startswith("+"):
                added.append(body[index][1:])
                index += 1
            hunk.content = "".join(f"{entry}\n" for entry in added)
        elif line.startswith(DELETE):
            hunk = Hunk("delete", line[len(DELETE) :].strip())
            index += 1
        elif line.startswith(UPDATE):
            hunk = Hunk("update", line[len(UPDATE) :].strip())
            index += 1
            if index < len(body) and body[index].startswith(MOVE):
                hunk.move_to = body[index][len(MOVE) :].strip()
                index += 1
            index = _chunks(body, index, hunk)
            if not hunk.chunks:
                raise PatchError(
                    f"invalid hunk at line {number}: update hunk for path '{hunk.path}' is empty"
                )
        elif not line.strip():
            index += 1
            continue
        else:
            raise PatchError(
                f"invalid hunk at line {number}: '{line}' is not a valid hunk header. Valid "
                "hunk headers: '*** Add File: {path}', '*** Delete File: {path}', "
                "'*** Update File: {path}'"
            )
        if not hunk.path:
            raise PatchError(f"invalid hunk at line {number}: missing file path")
        hunks.append(hunk)
    if not hunks:
        raise PatchError("invalid patch: no files to change")
    return hunks


def _chunks(body: list[str], index: int, hunk: Hunk) -> int:
    chunk: Chunk | None = None
    while index < len(body):
        line = body[index]
        if line.startswith("*** ") and line.strip() != EOF_MARK:
            break
        if line.startswith("@@"):
            chunk = Chunk(line[2:].strip() or None)
            hunk.chunks.append(chunk)
        elif line.strip() == EOF_MARK:
            if chunk is not None:
                chunk.end_of_file = True
        else:
            if chunk is None:  # the first chunk may leave out its "@@"
                chunk = Chunk(None)
                hunk.chunks.append(chunk)
            marker, rest = (line[:1], line[1:]) if line else (" ", "")
            if marker == " ":
                chunk.old.append(rest)
                chunk.new.append(rest)
            elif marker == "-":
                chunk.old.append(rest)
            elif marker == "+":
                chunk.new.append(rest)
            else:
                raise PatchError(
                    f"invalid hunk: unexpected line '{line}' in the update of '{hunk.path}'; "
                    "every line of a chunk starts with ' ', '-' or '+'"
                )
        index += 1
    return index


def resolve(cwd: str, path: str) -> str:
    return os.path.normpath(os.path.join(cwd, path))


def read_text(path: str, purpose: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PatchError(f"Failed to read file to {purpose} {path}: {exc}") from exc


def plan(hunks: list[Hunk], cwd: str) -> list[Change]:
    """Every change with its new content; raises ``PatchError`` when a hunk does not fit."""
    changes: list[Change] = []
    for hunk in hunks:
        path = resolve(cwd, hunk.path)
        if hunk.kind == "add":
            old = Path(path).read_text() if Path(path).is_file() else None
            changes.append(Change("add", path, hunk.path, old, hunk.content))
        elif hunk.kind == "delete":
            changes.append(Change("delete", path, hunk.path, read_text(path, "delete"), None))
        else:
            old = read_text(path, "update")
            new = update(old, hunk.chunks, path)
            move = resolve(cwd, hunk.move_to) if hunk.move_to else None
            shown = hunk.move_to or hunk.path
            changes.append(Change("update", path, shown, old, new, move))
    return changes


def update(text: str, chunks: list[Chunk], path: str) -> str:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    cursor = 0
    replacements: list[tuple[int, int, list[str]]] = []
    for chunk in chunks:
        if chunk.context is not None:
            found = seek(lines, [chunk.context], cursor, False)
            if found is None:
                raise PatchError(f"Failed to find context '{chunk.context}' in {path}")
            cursor = found + 1
        if not chunk.old:
            replacements.append((len(lines), 0, chunk.new))
            continue
        old, new = chunk.old, chunk.new
        found = seek(lines, old, cursor, chunk.end_of_file)
        if found is None and old and old[-1] == "":
            old, new = old[:-1], new[:-1] if new and new[-1] == "" else new
            found = seek(lines, old, cursor, chunk.end_of_file)
        if found is None:
            raise PatchError(f"Failed to find expected lines in {path}:\n" + "\n".join(chunk.old))
        replacements.append((found, len(old), new))
        cursor = found + len(old)
    for start, length, new in sorted(replacements, reverse=True):
        lines[start : start + length] = new
    return "\n".join(lines) + "\n" if lines else ""


def seek(lines: list[str], pattern: list[str], start: int, at_end: bool) -> int | None:
    """Where ``pattern`` occurs from ``start``: exact, then ignoring trailing, then all
    surrounding whitespace. ``at_end``: try the end of the file first."""
    if not pattern:
        return start
    if len(pattern) > len(lines):
        return None
    last = len(lines) - len(pattern)
    begin = last if at_end and last >= start else start
    for normal in (lambda s: s, str.rstrip, str.strip):
        for index in range(begin, last + 1):
            if all(normal(lines[index + k]) == normal(pattern[k]) for k in range(len(pattern))):
                return index
        if at_end and begin != start:
            for index in range(start, last + 1):
                if all(normal(lines[index + k]) == normal(pattern[k]) for k in range(len(pattern))):
                    return index
    return None


def apply(changes: list[Change]) -> None:
    """Write every change or none: new contents go to temporary files first, then each is
    renamed into place; a failure puts back what was already replaced."""
    from codex_core.fs import atomic

    staged: list[tuple[str, str | None]] = []  # (target, temp file with its content or None)
    try:
        for change in changes:
            target = change.move_to or change.path
            if change.new is None:
                staged.append((target, None))
                continue
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            mode = 0o644  # a new file; an updated one keeps its permissions
            if change.kind == "update" and os.path.exists(change.path):
                with contextlib.suppress(OSError):
                    mode = os.stat(change.path).st_mode & 0o7777
            staged.append((target, str(atomic.stage(Path(target), change.new, mode=mode))))
    except OSError as exc:
        for _target, leftover in staged:
            if leftover is not None:
                with contextlib.suppress(OSError):
                    os.unlink(leftover)
        raise PatchError(f"Failed to write {exc.filename or 'file'}: {exc.strerror}") from exc
    done: list[tuple[str, bytes | None]] = []  # what was there before, to undo
    try:
        for change, (target, staged_file) in zip(changes, staged, strict=True):
            for path in {change.path, target}:
                done.append((path, Path(path).read_bytes() if os.path.isfile(path) else None))
            if staged_file is not None:
                os.replace(staged_file, target)
            if change.kind == "delete" or (change.move_to and change.move_to != change.path):
                os.unlink(change.path)
    except OSError as exc:
        for path, data in reversed(done):
            with contextlib.suppress(OSError):
                if data is None:
                    os.unlink(path)
                else:
                    Path(path).write_bytes(data)
        for _target, leftover in staged:
            if leftover is not None:
                with contextlib.suppress(OSError):
                    os.unlink(leftover)
        raise PatchError(f"Failed to apply patch: {exc}") from exc
