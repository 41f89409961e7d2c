"""Pydantic validation errors rendered the way the official (serde-based) server words them.

Clients and their users see these messages, so they follow serde's phrasing
(``missing field `threadId```, ``invalid type: integer `5`, expected a string``) and name the
field when it is nested, so the fix is obvious from the message alone.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError
    from pydantic_core import ErrorDetails

_EXPECTED = {
    "string_type": "a string",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "list_type": "a sequence",
    "tuple_type": "a sequence",
    "dict_type": "a map",
    "model_type": "a map",
    "model_attributes_type": "a map",
    "none_required": "null",
}


def describe(value: Any) -> str:
    """serde's ``Unexpected`` wording for a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):  # escaped as Rust's Debug escapes it
        return f"string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, list | tuple):
        return "sequence"
    return "map"


def _field_path(error: ErrorDetails, data: Any) -> list[str]:
    """The error's location as the client's field names.

    Pydantic's ``loc`` also names the union member it tried (a class name) and, for tagged
    unions, the tag value; neither is a field of the client's JSON, so walking the input tells
    them apart: a part that is not a key of the object there, but is its ``type``, is the tag.
    """
    path: list[str] = []
    value = data
    tag_seen = False  # the tag comes once per object, before the object's own fields
    for part in error["loc"]:
        if isinstance(value, dict):
            if value.get("type") == part and not tag_seen:
                tag_seen = True
            elif part in value:
                path.append(str(part))
                value = value[part]
                tag_seen = False
            elif not _is_union_branch(part):
                path.append(str(part))  # a missing field
                value = None
        elif isinstance(value, list) and isinstance(part, int):
            path.append(str(part))
            value = value[part] if part < len(value) else None
            tag_seen = False
        elif not _is_union_branch(part) and value is not None:
            path.append(str(part))
    return path


def _is_union_branch(part: Any) -> bool:
    # Pydantic puts the tried union member into ``loc`` as a class or type name.
    return isinstance(part, str) and (part[:1].isupper() or "[" in part)


def _message(error: ErrorDetails, path: list[str]) -> str:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return f"missing field `{path[-1] if path else '?'}`"
    if kind in _EXPECTED:
        return f"invalid type: {describe(value)}, expected {_EXPECTED[kind]}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"invalid value: {describe(value)}, {error['msg'].lower()}"
    if kind in ("literal_error", "enum"):
        return f"unknown variant `{value}`, expected {_variants(str(ctx.get('expected', '')))}"
    if kind == "union_tag_invalid":
        tags = ", ".join(
            f"`{tag.strip().strip(chr(39))}`"
            for tag in str(ctx.get("expected_tags", "")).split(",")
        )
        return f"unknown variant `{ctx.get('tag')}`, expected one of {tags}"
    if kind == "union_tag_not_found":
        # pydantic quotes the tag and, for callable discriminators, appends "()".
        tag = str(ctx.get("discriminator", "type")).strip("'").removesuffix("()")
        return f"missing field `{tag}`"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return error["msg"]


_NO_DATA: Any = object()


def serde_message(exc: ValidationError, data: Any = _NO_DATA) -> str:
    """One line for the first error, like serde, which stops at the first problem.

    ``data`` is what was validated; a nested field's path is appended, which serde omits but
    which tells the person where to look.
    """
    first = exc.errors(include_url=False)[0]
    if data is _NO_DATA:
        path = [str(part) for part in first["loc"] if not _is_union_branch(part)]
    else:
        path = _field_path(first, data)
    message = _message(first, path)
    if len(path) > 1:
        message = f"{message} at `{'.'.join(path)}`"
    return message


def _variants(expected: str) -> str:
    """pydantic's ``'a', 'b' or 'c'`` as serde lists variants: `` `a` ``, `` `a` or `b` ``,
    ``one of `a`, `b`, `c` ``."""
    names = [f"`{name}`" for name in re.findall(r"'([^']*)'", expected)]
    if not names:
        return expected or "a known variant"
    if len(names) <= 2:
        return " or ".join(names)
    return "one of " + ", ".join(names)
