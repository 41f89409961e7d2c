"""Where a problem sits in a config file, and the ``configWarning`` that reports it.

tomllib keeps no positions, so a key's value is located with tomlkit, which round-trips a file
byte for byte: the value is swapped for a sentinel of another kind and the first byte where the
rendered document differs from the original is where the value starts. That follows TOML's own
rules (tables, dotted keys, inline tables, quoted keys) instead of guessing with a regex.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

#: The summary the official server uses for every invalid config file.
SUMMARY = "Invalid configuration; using defaults."


def position(text: str, offset: int) -> dict[str, int]:
    """1-based line and column of a character offset."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return {"line": line, "column": column}


def locate(text: str, loc: tuple[str | int, ...]) -> dict[str, Any] | None:
    """The range (1-based, end inclusive) of the value at key path ``loc``, or None."""
    keys = [part for part in loc if isinstance(part, str)]
    keys = keys[: next((i for i, p in enumerate(loc) if not isinstance(p, str)), len(loc))]
    if not keys:
        return None
    try:
        document = tomlkit.parse(text)
        container: Any = document
        for key in keys[:-1]:
            container = container[key]
        original = container.item(keys[-1])
        rendered = original.as_string()
        sentinel: Any = 7 if rendered.startswith('"') else '"'
        container[keys[-1]] = sentinel
        changed = document.as_string()
    except (TOMLKitError, KeyError, TypeError, AttributeError):
        return None
    start = next((i for i, (a, b) in enumerate(zip(text, changed, strict=False)) if a != b), None)
    if start is None:
        return None
    rendered = rendered.rstrip()
    end = position(text, start + max(len(rendered), 1) - 1)
    return {"start": position(text, start), "end": end}


def snippet(text: str, range_: dict[str, Any]) -> str:
    """The offending line with carets under the value, like the Rust toml crate renders it."""
    start, end = range_["start"], range_["end"]
    lines = text.splitlines()
    number = start["line"]
    source = lines[number - 1] if 0 < number <= len(lines) else ""
    width = (end["column"] if end["line"] == number else len(source)) - start["column"] + 1
    gutter = " " * len(str(number))
    carets = " " * (start["column"] - 1) + "^" * max(width, 1)
    return f"{gutter} |\n{number} | {source}\n{gutter} | {carets}"


def warning(
    path: Path, message: str, range_: dict[str, Any] | None, text: str | None = None
) -> dict[str, Any]:
    """A ``configWarning``: summary, ``path:line:column: message`` and the snippet."""
    if range_ is None:
        details = f"{path}: {message}"
    else:
        start = range_["start"]
        details = f"{path}:{start['line']}:{start['column']}: {message}"
        if text is not None:
            details += "\n" + snippet(text, range_)
    return {"summary": SUMMARY, "details": details, "path": str(path), "range": range_}
