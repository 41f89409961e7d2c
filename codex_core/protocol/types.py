"""Hand-written types the generated protocol models use.

``AbsolutePathBuf`` mirrors the reference server's type of the same name: without a base path
(the app-server never sets one), a relative path is rejected with the exact serde message
"AbsolutePathBuf deserialized without a base path", and an absolute path is normalised
lexically (``.`` and ``..`` components and repeated or trailing separators removed), not
resolved against the filesystem.

``OmitNone`` and ``NotNull`` mirror the reference's optional fields whose schema type does not
admit ``null`` (serde ``#[serde(default, skip_serializing_if = "Option::is_none")]``, or a
plain ``#[serde(default)]`` field): the generated field is typed ``Annotated[OmitNone[bool],
NotNull("a boolean")] = None``, so an explicit ``null`` on input is rejected with serde's
message ("invalid type: null, expected a boolean") and an unset value (``None``) is left out
of the output instead of being written as ``null``, which the schema would not allow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, Field, GetCoreSchemaHandler
from pydantic_core import core_schema

__all__ = [
    "ABSOLUTE_PATH_ERROR",
    "AbsolutePathBuf",
    "NotNull",
    "OmitNone",
    "absolute_path",
    "is_none",
    "null_error",
]

T = TypeVar("T")

ABSOLUTE_PATH_ERROR = "AbsolutePathBuf deserialized without a base path"


def absolute_path(value: str) -> str:
    """Validate and normalise an absolute path; ``ValueError`` if it is relative."""
    if not os.path.isabs(value):
        raise ValueError(ABSOLUTE_PATH_ERROR)
    if os.sep != "/":  # pragma: no cover - Windows
        return os.path.normpath(value)
    parts: list[str] = []
    for part in value.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


AbsolutePathBuf = Annotated[str, AfterValidator(absolute_path)]
"""A ``str`` that must be an absolute path (schema definition ``AbsolutePathBuf``)."""


def is_none(value: object) -> bool:
    """``exclude_if`` predicate of ``OmitNone`` fields."""
    return value is None


OmitNone = Annotated[T | None, Field(exclude_if=is_none)]
"""``T | None`` whose ``None`` (unset) is omitted from the output rather than dumped as null."""


def null_error(expected: str) -> str:
    """serde's message for an explicit ``null`` where ``expected`` (e.g. "a boolean") is due."""
    return f"invalid type: null, expected {expected}"


@dataclass(frozen=True, slots=True)
class NotNull:
    """Field metadata rejecting an explicit ``null`` with serde's wording, as a ``value_error``
    whose ``ctx["error"]`` is ``ValueError(null_error(expected))`` (strict mode included).

    ``expected`` is what serde says it expected: "a boolean", "a string", "a sequence",
    "a map", "i64", "struct Foo", "string or map" (a unit-variant enum)...
    """

    expected: str

    def __call__(self, value: Any) -> Any:
        if value is None:
            raise ValueError(null_error(self.expected))
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self, handler(source))
