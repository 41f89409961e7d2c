"""The official Codex server, pinned, for differential tests and benchmarks.

The project's claim is wire compatibility with one official release, so every comparison runs
against that release and no other: a newer ``codex`` on ``PATH`` would move the goalposts.
``python -m codex_core.testing.reference`` installs it from npm into a per-user cache (``dev.py``
does this on setup); ``reference_binary()`` finds it, so tests and benchmarks skip with a reason
only where npm is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

VERSION = "0.169.0"
PACKAGE = f"@openai/codex@{VERSION}"
#: What to do where the official server is not installed.
MISSING = f"the official server ({PACKAGE}) is not installed: run python3 dev.py setup (needs npm)"


def install_dir() -> Path:
    """Where ``install()`` puts the npm package: outside the repository, shared by clones."""
    from codex_core.plugins import user_cache_dir

    return user_cache_dir() / f"codex-{VERSION}"


def _native_binary(root: Path) -> Path | None:
    """The platform binary the npm launcher would start: spawning it skips node's startup."""
    vendor = root / "node_modules" / "@openai"
    for candidate in sorted(vendor.glob("codex-*/vendor/*/bin/codex")):
        if os.access(candidate, os.X_OK):
            return candidate
    launcher = root / "node_modules" / ".bin" / "codex"
    return launcher if launcher.exists() else None


def reference_binary() -> str | None:
    """The pinned official ``codex`` executable, or None when it is not installed.

    ``CODEX_CORE_REFERENCE`` (a path) wins; then ``install()``'s cache; then ``codex-peer`` on
    ``PATH`` (the name the shared toolbox installs it under).
    """
    explicit = os.environ.get("CODEX_CORE_REFERENCE")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    installed = _native_binary(install_dir())
    if installed is not None:
        return str(installed)
    return shutil.which("codex-peer")


def _failure_note() -> Path:
    """Where ``main()`` records why the last install failed, beside the install folder."""
    return install_dir().with_name(f"codex-{VERSION}.failed")


def missing_reason() -> str:
    """Why a test that needs the official server skips: what to do, and why the last
    ``python -m codex_core.testing.reference`` (``dev.py setup``) did not install it."""
    try:
        last = _failure_note().read_text(encoding="utf-8").strip()
    except OSError:
        return MISSING
    return f"{MISSING}; the last attempt said: {last}"


def reference_server_command() -> list[str] | None:
    """The command line of the official app-server over stdio, or None when not installed."""
    binary = reference_binary()
    return None if binary is None else [binary, "app-server"]


def install() -> str:
    """Install the pinned release with npm (idempotent) and return its binary's path.

    Raises ``RuntimeError`` with what to do when npm is missing or the install fails.
    """
    root = install_dir()
    found = _native_binary(root)
    if found is not None:
        return str(found)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            f"npm is not installed: the differential tests need the official server ({PACKAGE}); "
            "install Node.js and npm, then run `python3 dev.py setup` again"
        )
    root.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(root), PACKAGE],
        capture_output=True,
        text=True,
    )
    found = _native_binary(root)
    if result.returncode != 0 or found is None:
        raise RuntimeError(f"npm install {PACKAGE} failed: {result.stderr.strip()[-2000:]}")
    return str(found)


def main() -> int:
    """Install, and record the outcome for ``missing_reason()``; 1 when not installed."""
    note = _failure_note()
    try:
        path = install()
    except RuntimeError as exc:
        print(f"official server not installed: {exc}", file=sys.stderr)
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(f"{exc}\n", encoding="utf-8")
        return 1
    note.unlink(missing_ok=True)
    print(f"official server {VERSION}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
