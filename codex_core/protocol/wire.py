"""Turning handler results and notification params into JSON text.

Handlers may return generated models or plain dicts already in wire shape; both end up as
compact JSON. Models are dumped by alias with ``None`` kept, because the official server emits
optional output fields as ``null`` rather than omitting them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from codex_core.protocol.envelope import dumps


def to_json(value: Any) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json(by_alias=True)
    return dumps(to_wire(value))


def to_wire(value: Any) -> Any:
    """Plain JSON data for ``value``; models nested in dicts or lists are converted too."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, dict):
        return {key: to_wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    return value
