"""Layered configuration: config.toml files, ``-c`` flags and packaged defaults."""

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
