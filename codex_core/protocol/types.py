"""Hand-written types the generated protocol models use.

``AbsolutePathBuf`` mirrors the reference server's type of the same name: without a base path
(the app-server never sets one), a relative path is rejected with the exact serde message
"AbsolutePathBuf deserialized without a base path", and an absolute path is normalised
lexically (``.`` and ``..`` components and repeated or trailing separators removed), not
resolved against the filesystem.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["ABSOLUTE_PATH_ERROR", "AbsolutePathBuf", "absolute_path"]

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
