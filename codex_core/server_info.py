"""What a server says about itself in ``initialize``: user agent, ``CODEX_HOME``, platform.

Kept apart from the kernel, and free of heavy imports, because ``codex-app-server`` answers a
stdio client's ``initialize`` before the kernel has loaded (``transports.stdio_handshake``).
"""

from __future__ import annotations

import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

from codex_core import __version__


def resolve_codex_home(codex_home: str | os.PathLike[str] | None) -> Path:
    """``CODEX_HOME`` as the official server resolves it: argument, environment, ~/.codex."""
    raw = codex_home or os.environ.get("CODEX_HOME") or Path.home() / ".codex"
    return Path(raw).expanduser().absolute()


def initialize_result(codex_home: Path, client_name: str, client_version: str) -> dict[str, Any]:
    return {
        "userAgent": user_agent(client_name, client_version),
        "codexHome": str(codex_home),
        "platformFamily": "windows" if os.name == "nt" else "unix",
        "platformOs": {"darwin": "macos", "win32": "windows"}.get(sys.platform, "linux"),
    }


def user_agent(client_name: str, client_version: str) -> str:
    """``name/version (os os-version; arch) terminal (name; client-version)``, as the reference."""
    terminal = os.environ.get("TERM_PROGRAM") or os.environ.get("TERM") or "unknown"
    return (
        f"{client_name}/{__version__} ({_system()}; {platform.machine()}) "
        f"{terminal} ({client_name}; {client_version})"
    )


def _system() -> str:
    """The OS and its version as the reference's ``os_info`` prints them: ``Debian 12.0.0``.

    A numeric version is shown as three numbers (``12`` -> ``12.0.0``, ``22.04`` ->
    ``22.4.0``); any other is shown as it is.
    """
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return f"{platform.system()} {platform.release()}".strip()
    name = release.get("NAME", "Linux").split()[0]
    version = release.get("VERSION_ID", "")
    if re.fullmatch(r"\d+(\.\d+){0,2}", version):
        numbers = [int(part) for part in version.split(".")]
        version = ".".join(str(number) for number in [*numbers, 0, 0][:3])
    return f"{name} {version}".strip()
