"""Turning handler results and notification params into JSON text.

Handlers may return generated models or plain dicts already in wire shape; both end up as
compact JSON. Models are dumped by alias with ``None`` kept, because the official server emits
optional output fields as ``null`` rather than omitting them.

pydantic is not imported here: a value can only be a model once pydantic has been imported by
whoever built it, so plugins that import this module stay light to load (``--help``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

from codex_core.protocol.envelope import dumps

if TYPE_CHECKING:
    from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class JsonText:
    """A result a handler has already encoded as JSON; ``to_json`` passes ``text`` through.

    For replies too big to build twice: a 500 MB ``fs/readFile`` is 667 MB of base64, which the
    JSON encoder would scan and copy again only to find nothing to escape.
    """

    text: str


def _is_model(value: Any) -> TypeGuard[BaseModel]:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(value, pydantic.BaseModel)


def to_json(value: Any) -> str:
    if isinstance(value, JsonText):
        return value.text
    if _is_model(value):
        return value.model_dump_json(by_alias=True)
    return dumps(to_wire(value))


def to_wire(value: Any) -> Any:
    """Plain JSON data for ``value``; models nested in dicts or lists are converted too."""
    if _is_model(value):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, dict):
        return {key: to_wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    return value
