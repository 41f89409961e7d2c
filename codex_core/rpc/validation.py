"""Pydantic validation errors rendered the way the official (serde-based) server words them.

Clients and their users see these messages, so they follow serde's phrasing
(``missing field `threadId```, ``invalid type: integer `5`, expected a string``) and name the
field when it is nested, so the fix is obvious from the message alone.
"""

from __future__ import annotations

from typing import Any

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
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, list | tuple):
        return "sequence"
    return "map"


def _location(error: ErrorDetails) -> str:
    parts = [str(part) for part in error["loc"] if not _is_union_branch(part)]
    return ".".join(parts)


def _is_union_branch(part: Any) -> bool:
    # Pydantic puts the tried union member or tag into ``loc``; it means nothing to a client.
    return isinstance(part, str) and (part[:1].isupper() or "[" in part)


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    loc = [part for part in error["loc"] if not _is_union_branch(part)]
    if kind == "missing":
        return f"missing field `{loc[-1] if loc else '?'}`"
    if kind in _EXPECTED:
        return f"invalid type: {describe(value)}, expected {_EXPECTED[kind]}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"invalid value: {describe(value)}, {error['msg'].lower()}"
    if kind in ("literal_error", "enum"):
        return f"unknown variant `{value}`, expected {ctx.get('expected', 'a known variant')}"
    if kind == "union_tag_invalid":
        return f"unknown variant `{ctx.get('tag')}`, expected one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        # pydantic quotes the tag and, for callable discriminators, appends "()".
        tag = str(ctx.get("discriminator", "type")).strip("'").removesuffix("()")
        return f"missing field `{tag}`"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return error["msg"]


def serde_message(exc: ValidationError) -> str:
    """One line for the first error, like serde, which stops at the first problem."""
    first = exc.errors(include_url=False)[0]
    message = _message(first)
    where = _location(first)
    if "." in where:
        message = f"{message} at `{where}`"
    return message
