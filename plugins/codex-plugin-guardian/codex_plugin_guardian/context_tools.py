"""Read-only tools the guardian may call to gather context before it decides.

A command such as ``./deploy.sh`` or ``make clean`` says little by itself; the reviewer can
read the script or the Makefile first. It gets two tools, confined to the thread's working
directory (symlinks resolved, so a link cannot lead outside): ``read_file`` and ``list_dir``.
Nothing is written and nothing runs. ``[guardian] context_rounds`` bounds how many rounds of
tool calls a review may make; the last request offers no tools, so the model must answer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio

__all__ = ["TOOLS", "run_tool"]

#: At most this much of a file is returned (characters), and this many directory entries.
MAX_CHARS = 20_000
MAX_ENTRIES = 200

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "read_file",
        "description": "Read a text file under the working directory (relative or absolute "
        f"path). Returns up to {MAX_CHARS} characters, from line `start_line` (1-based).",
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "start_line": {"type": "integer", "minimum": 1},
            },
            "required": ["path"],
            "additionalProperties": False,
        },
    },
    {
        "type": "function",
        "name": "list_dir",
        "description": "List a directory under the working directory: one entry a line, "
        f"directories ending in `/`, at most {MAX_ENTRIES} entries.",
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
            "additionalProperties": False,
        },
    },
]


class ToolError(Exception):
    """What the model reads instead of the tool's output."""


def _inside(cwd: str, raw: Any) -> Path:
    if not isinstance(raw, str) or not raw:
        raise ToolError("`path` must be a non-empty string")
    root = Path(os.path.realpath(cwd))
    path = Path(os.path.realpath(root / raw))
    if path != root and root not in path.parents:
        raise ToolError(f"{raw} is outside the working directory {root}; it cannot be read")
    return path


def _read_file(cwd: str, arguments: dict[str, Any]) -> str:
    path = _inside(cwd, arguments.get("path"))
    start = arguments.get("start_line", 1)
    if not isinstance(start, int) or isinstance(start, bool) or start < 1:
        raise ToolError("`start_line` must be an integer from 1")
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            lines = handle.readlines()
    except OSError as exc:
        raise ToolError(f"cannot read {path}: {exc.strerror or exc}") from None
    text = "".join(lines[start - 1 :])
    if len(text) > MAX_CHARS:
        return text[:MAX_CHARS] + f"\n[... truncated: {len(text) - MAX_CHARS} more characters]"
    return text


def _list_dir(cwd: str, arguments: dict[str, Any]) -> str:
    path = _inside(cwd, arguments.get("path"))
    try:
        entries = sorted(os.scandir(path), key=lambda entry: entry.name)
    except OSError as exc:
        raise ToolError(f"cannot list {path}: {exc.strerror or exc}") from None
    names = [entry.name + ("/" if entry.is_dir() else "") for entry in entries]
    shown = "\n".join(names[:MAX_ENTRIES])
    if len(names) > MAX_ENTRIES:
        shown += f"\n[... {len(names) - MAX_ENTRIES} more entries]"
    return shown


_RUN = {"read_file": _read_file, "list_dir": _list_dir}


async def run_tool(name: str, raw_arguments: Any, cwd: str) -> str:
    """The output of one tool call of the guardian (errors included, as text)."""
    run = _RUN.get(name)
    if run is None:
        return f"unknown tool {name}: only read_file and list_dir are available"
    try:
        arguments = json.loads(raw_arguments) if isinstance(raw_arguments, str) else {}
    except ValueError as exc:
        return f"failed to parse function arguments: {exc}"
    if not isinstance(arguments, dict):
        return "the arguments must be a JSON object"
    try:
        return await anyio.to_thread.run_sync(run, cwd, arguments)
    except ToolError as exc:
        return f"error: {exc}"
