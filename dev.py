#!/usr/bin/env python3
"""Set up the development environment and run the demo or the whole test suite.

    python3 dev.py demo    # the server with the bundled plugins and a scripted client session
    python3 dev.py test    # lint, types, every test, the conformance cases and the docs site

Needs only python3 with venv and pip: the first run creates .venv and installs the kernel,
every plugin under plugins/ (editable) and the development tools into it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
SHARED = ROOT.parent / "shared"


def run(*command: str | Path, **kwargs: object) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    subprocess.run([str(part) for part in command], check=True, cwd=ROOT, **kwargs)  # type: ignore[call-overload]


def setup() -> None:
    """Create .venv and install everything editable; cheap when nothing changed."""
    stamp = VENV / ".installed"
    inputs = [ROOT / "pyproject.toml", *sorted(ROOT.glob("plugins/*/pyproject.toml"))]
    if stamp.exists() and all(p.stat().st_mtime <= stamp.stat().st_mtime for p in inputs):
        return
    if not PYTHON.exists():
        run(sys.executable, "-m", "venv", VENV)
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    editable = ["-e", f"{ROOT}[dev]"]
    for plugin in sorted(ROOT.glob("plugins/*/pyproject.toml")):
        editable += ["-e", str(plugin.parent)]
    run(PYTHON, "-m", "pip", "install", "--quiet", *editable)
    stamp.touch()


def demo() -> None:
    run(PYTHON, ROOT / "scripts" / "demo.py")


def test() -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    run(BIN / "ruff", "check", ".", env=env)
    run(BIN / "ruff", "format", "--check", ".", env=env)
    run(BIN / "mypy", env=env)
    run(PYTHON, "-m", "pytest", "-q", env=env)
    # The documentation site, warnings as errors (mkdocs.yml); builds offline into build/site.
    run(BIN / "mkdocs", "build", "--strict", env={**env, "NO_MKDOCS_2_WARNING": "1"})
    if not SHARED.is_dir():
        print(f"conformance cases skipped: {SHARED} not found", flush=True)
        return
    for folder in (SHARED / "conformance" / "cases", ROOT / "tests" / "conformance"):
        run(
            PYTHON,
            SHARED / "conformance" / "diff.py",
            "--cases",
            folder,
            "--server",
            "codex-app-server",
            "--reference",
            "none",
            env=env,
        )


def main() -> int:
    commands = {"demo": demo, "test": test, "setup": lambda: None}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    setup()
    try:
        commands[sys.argv[1]]()
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
