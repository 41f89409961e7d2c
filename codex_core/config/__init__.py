"""Layered configuration: config.toml files, ``-c`` flags and packaged defaults.

The names below are imported on first use: the loader needs pydantic, and a start that only
asks ``locations`` whether its config could refuse it should not wait for that.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codex_core.config.loader import (
        Config,
        Layer,
        load_config,
        parse_override,
        strict_problems,
        version_of,
    )
    from codex_core.config.schema import config_sections

__all__ = [
    "Config",
    "Layer",
    "config_sections",
    "load_config",
    "parse_override",
    "strict_problems",
    "version_of",
]

_HOMES = {name: "loader" for name in __all__} | {"config_sections": "schema"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"codex_core.config.{home}"), name)
