"""Where a problem sits in a config file, and the ``configWarning`` that reports it.

Syntax errors are worded by toml-rs, which wraps the Rust ``toml`` crate the official server
parses with, so the messages (``unclosed array, expected `]```, ``duplicate key``) and spans
are the reference's. tomllib stays the parser: it is in the standard library and its import is
free at startup, and toml-rs is only imported to explain a file tomllib refused.

tomllib keeps no positions, so a key's value is located with tomlkit, which round-trips a file
byte for byte: the value is swapped for a sentinel of another kind and the first byte where the
rendered document differs from the original is where the value starts. That follows TOML's own
rules (tables, dotted keys, inline tables, quoted keys) instead of guessing with a regex. Like
toml-rs, tomlkit is imported only when there is a problem to point at.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: The summary the official server uses for every invalid config file.
SUMMARY = "Invalid configuration; using defaults."
#: The lines of the toml crate's rendering that are its snippet (`` |``, ``3 | text``, carets).
_SNIPPET_LINE = re.compile(r"^ *\d* \|")
_CARETS = re.compile(r"^ +\| +\^+$")


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
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

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


def locate_key(text: str, keys: tuple[str, ...]) -> dict[str, int] | None:
    """1-based line and column of the key at path ``keys`` (where the reference points for an
    unknown field): on its value's line, where the key's name is written."""
    found = locate(text, keys)
    if found is None:
        return None
    start = found["start"]
    line = text.splitlines()[start["line"] - 1]
    column = line.rfind(keys[-1], 0, start["column"] - 1)
    return {"line": start["line"], "column": column + 1 if column >= 0 else start["column"]}


def syntax_error(text: str) -> tuple[str, dict[str, Any] | None, str]:
    """Why ``text`` is not TOML: the message, its range and the crate's full rendering
    (``TOML parse error at line L, column C`` + snippet + message)."""
    import toml_rs

    try:
        toml_rs.loads(text)
    except toml_rs.TOMLDecodeError as exc:
        rendering, line, column = exc.msg, exc.lineno, exc.colno
    else:  # toml-rs accepts what tomllib refused (never seen); say what the crate says
        return "invalid TOML", None, "invalid TOML"
    lines = rendering.split("\n")
    message = "\n".join(line for line in lines[1:] if not _SNIPPET_LINE.match(line))
    start = {"line": line, "column": column}
    carets = next((line.count("^") for line in lines if _CARETS.match(line)), 1)
    end = {"line": line, "column": column + max(carets, 1) - 1}
    return message, {"start": start, "end": end}, rendering


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
