"""Layered configuration: config.toml files, ``-c`` flags and packaged defaults."""

from codex_core.config.loader import Config, Layer, load_config, parse_override, version_of

__all__ = ["Config", "Layer", "load_config", "parse_override", "version_of"]
