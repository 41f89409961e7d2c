"""Reading the configuration layers into one effective config.

Layers, highest precedence first as ``config/read`` lists them: session flags (``-c``), the
user's ``$CODEX_HOME/config.toml``, the system ``/etc/codex/config.toml``; below them the
packaged defaults. Tables merge key by key; scalars and arrays replace. A file that does not
parse never stops the server: its layer is skipped and the problem becomes a ``configWarning``
for every client, with the file and position.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SYSTEM_CONFIG = Path("/etc/codex/config.toml")
#: Packaged defaults, shaped like the official server's effective config (every key it reports,
#: unset ones as null). A plain path: importlib.resources costs ~15 ms of startup.
DEFAULTS = Path(__file__).with_name("defaults.json")


@dataclass(slots=True)
class Layer:
    """One source of settings, named as ``ConfigLayerSource`` on the wire."""

    name: dict[str, Any]
    version: str
    data: dict[str, Any]


@dataclass(slots=True)
class Config:
    layers: list[Layer]  # highest precedence first
    effective: dict[str, Any]
    origins: dict[str, Layer]  # dotted key -> the layer that set it
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def get(self, dotted: str, default: Any = None) -> Any:
        value: Any = self.effective
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                return default
            value = value[part]
        return value

    def disabled_plugins(self) -> set[str]:
        """Kernel plugins switched off with ``[plugins.NAME] enabled = false``."""
        table = self.get("plugins", {})
        return {
            name
            for name, settings in table.items()
            if isinstance(settings, dict) and settings.get("enabled") is False
        }


def version_of(raw: bytes) -> str:
    """The layer version clients pass back as ``expectedVersion`` (as the reference)."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def load_config(codex_home: Path, overrides: Sequence[str] = ()) -> Config:
    warnings: list[dict[str, Any]] = []
    layers: list[Layer] = []
    if overrides:
        flags: dict[str, Any] = {}
        for override in overrides:
            key, value = parse_override(override)
            _set_dotted(flags, key, value)
        raw = json.dumps(flags, sort_keys=True).encode()
        layers.append(Layer({"type": "sessionFlags"}, version_of(raw), flags))
    user_file = codex_home / "config.toml"
    user = _file_layer(
        user_file, {"type": "user", "file": str(user_file), "profile": None}, warnings
    )
    if user is not None:
        layers.append(user)
    system = _file_layer(SYSTEM_CONFIG, {"type": "system", "file": str(SYSTEM_CONFIG)}, warnings)
    layers.append(
        system or Layer({"type": "system", "file": str(SYSTEM_CONFIG)}, version_of(b""), {})
    )

    effective = json.loads(DEFAULTS.read_text())
    origins: dict[str, Layer] = {}
    for layer in reversed(layers):
        _merge(effective, layer.data)
        for key in _leaf_keys(layer.data):
            origins[key] = layer
    return Config(layers, effective, origins, warnings)


def parse_override(override: str) -> tuple[str, Any]:
    """``key=value`` with a TOML value, or the raw text when it is not TOML (as the reference)."""
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"invalid -c override {override!r}: expected key=value")
    try:
        value = tomllib.loads(f"value = {text.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    return key, value


def _file_layer(path: Path, name: dict[str, Any], warnings: list[dict[str, Any]]) -> Layer | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        warnings.append(_warning(path, f"cannot read {path}: {exc.strerror}", None))
        return None
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        warnings.append(_warning(path, f"{path}: {exc}", _position(exc)))
        return None
    return Layer(name, version_of(raw), data)


def _position(exc: Exception) -> dict[str, Any] | None:
    # tomllib reports "(at line L, column C)" at the end of its message.
    text = str(exc)
    marker = "(at line "
    if marker not in text:
        return None
    line_text, _, column_text = text.rsplit(marker, 1)[1].rstrip(")").partition(", column ")
    try:
        line, column = int(line_text), int(column_text)
    except ValueError:
        return None
    point = {"line": line, "column": column}
    return {"start": point, "end": point}


def _warning(path: Path, details: str, position: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "summary": f"Error loading config file {path}; its settings are ignored.",
        "details": details,
        "path": str(path),
        "range": position,
    }


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[last] = value


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> None:
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _leaf_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            keys.extend(_leaf_keys(value, dotted + "."))
        else:
            keys.append(dotted)
    return keys
