"""Where configuration lives on disk, and whether reading it could stop the server starting.

Free of heavy imports (the package's loader needs pydantic): ``codex-app-server`` asks
``may_refuse_start`` before it has read any config, to know whether a stdio client's
``initialize`` can be answered at once (``transports.stdio_handshake``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

#: Stands in for ``/etc/codex`` (tests, unusual installs).
SYSTEM_DIR_ENV = "CODEX_CORE_SYSTEM_CONFIG_DIR"
REQUIREMENTS_FILE = "requirements.toml"


def system_dir() -> Path:
    return Path(os.environ.get(SYSTEM_DIR_ENV) or "/etc/codex")


def system_config_path() -> Path:
    return system_dir() / "config.toml"


def managed_config_path(codex_home: Path) -> Path:
    """The legacy managed file: under /etc/codex on Unix, in ``CODEX_HOME`` elsewhere."""
    return (system_dir() if os.name == "posix" else codex_home) / "managed_config.toml"


def may_refuse_start(overrides: Sequence[str], profile: str | None) -> bool:
    """Whether ``load_config`` could report ``fatal`` problems for this start.

    Only three things can: a ``-c profile=...`` flag, a ``--profile`` (it may clash with legacy
    profile tables) and a ``requirements.toml`` (it may not parse, or forbid read-only). Keep
    this in step with ``Config.fatal``; without any of them, the config cannot refuse a start.
    """
    if profile is not None or any("profile" in override.split("=", 1)[0] for override in overrides):
        return True
    return (system_dir() / REQUIREMENTS_FILE).exists()
