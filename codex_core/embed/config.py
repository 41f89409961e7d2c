"""``Codex(config={...})``: a nested dict turned into the kernel's ``-c key=value`` overrides.

The kernel takes overrides as the command line does (a dotted key, a TOML value), so a host's
dict goes through the same layer, precedence and validation as ``codex-app-server -c``. JSON
renders strings, numbers, booleans and arrays exactly as TOML spells them; nested tables become
dotted keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(part: str) -> str:
    return part if _BARE_KEY.match(part) else json.dumps(part)


def to_overrides(config: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``{"features": {"x": True}, "model": "m"}`` -> ``["features.x=true", 'model="m"']``.

    ``None`` values are refused: TOML has no null, and silently dropping one would hide a
    mistake in the host's config.
    """
    overrides: list[str] = []
    for name, value in config.items():
        key = f"{prefix}{_key(str(name))}"
        if isinstance(value, Mapping):
            overrides += to_overrides(value, f"{key}.")
        elif value is None:
            raise ValueError(f"config key {key!r} is None: TOML has no null; leave the key out")
        else:
            overrides.append(f"{key}={json.dumps(value, allow_nan=False)}")
    return overrides
