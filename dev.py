#!/usr/bin/env python3
"""Set up the development environment and run the demo or the whole test suite.

    python3 dev.py demo    # the server with the bundled plugins and a scripted client session
    python3 dev.py test    # lint, types, every test (the conformance cases too) and the docs site
    python3 dev.py setup   # only the environment (what `test` does first)

Needs only python3 with venv and pip: the first run creates .venv and installs the kernel and
every plugin under plugins/ (editable) into it, every other package at the version uv.lock
pins; `test` and `setup` add the development tools and, where npm is present, the pinned
official server the differential tests compare against. No venv needs to be active and nothing
needs to be on PATH.
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
#: The uv that turns uv.lock into pins for pip (installed into .venv by pip itself).
UV = "uv==0.13.10"


def run(*command: str | Path, **kwargs: object) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    subprocess.run([str(part) for part in command], check=True, cwd=ROOT, **kwargs)  # type: ignore[call-overload]


def setup(*, dev: bool = True) -> None:
    """Create .venv, install everything editable and byte-compile; cheap when nothing changed.

    The demo needs only the kernel and the plugins (``dev=False``); the development tools and
    the official server the differential tests compare against come with ``dev=True``.
    """
    stamps = [VENV / ".installed-dev"] + ([] if dev else [VENV / ".installed"])
    inputs = [
        ROOT / "pyproject.toml",
        ROOT / "uv.lock",
        *sorted(ROOT.glob("plugins/*/pyproject.toml")),
    ]
    current = [
        stamp
        for stamp in stamps
        if stamp.exists() and all(p.stat().st_mtime <= stamp.stat().st_mtime for p in inputs)
    ]
    if not current:
        if not PYTHON.exists():
            run(sys.executable, "-m", "venv", VENV)
        run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
        editable = ["-e", f"{ROOT}[dev]" if dev else str(ROOT)]
        for plugin in sorted(ROOT.glob("plugins/*/pyproject.toml")):
            editable += ["-e", str(plugin.parent)]
        run(PYTHON, "-m", "pip", "install", "--quiet", "-r", locked(dev=dev), *editable)
        compile_bytecode()
        stamps[-1].touch()
    if dev:
        install_reference()


def locked(*, dev: bool) -> Path:
    """uv.lock as a requirements file pip installs from: every package that is not part of
    this repository, at its locked version (with the development tools when ``dev``).

    pip installs, not uv, so the machine's pip settings (indexes, wheel folders) still apply;
    uv only reads the lock. ``--frozen``: the lock is used as committed, never re-resolved
    (docs/development.md says how to update it).
    """
    run(PYTHON, "-m", "pip", "install", "--quiet", UV)
    target = VENV / ("requirements-dev.txt" if dev else "requirements.txt")
    extras = ["--extra", "dev"] if dev else []
    run(
        BIN / "uv", "export", "--quiet", "--frozen", "--all-packages", "--no-emit-workspace",
        "--no-hashes", *extras, "--output-file", target,
    )  # fmt: skip
    return target


def compile_bytecode() -> None:
    """Write the .pyc files Python would otherwise write on first import.

    Where ``PYTHONDONTWRITEBYTECODE`` is set (this workplace sets it) nothing writes them, so
    every server start would compile every module again; startup is measured against the
    reference. The venv's own packages, then the repository's sources (the editable installs)
    without the venv a second time.
    """
    purelib = subprocess.run(
        [PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    run(PYTHON, "-m", "compileall", "-q", "-j", "0", purelib)
    run(PYTHON, "-m", "compileall", "-q", "-j", "0", "-x", r"/(\.venv|\.git|build)/", ROOT)


def install_reference() -> None:
    """Install the pinned official server (npm) once; without it the differential tests skip.

    Not fatal: the reason is printed (and becomes the tests' skip reason), and the next run
    tries again.
    """
    marker = VENV / ".reference-installed"
    if marker.exists():
        return
    print("+ installing the official server for the differential tests (npm)", flush=True)
    done = subprocess.run([PYTHON, "-m", "codex_core.testing.reference"], cwd=ROOT)
    if done.returncode == 0:
        marker.touch()


def demo() -> None:
    run(PYTHON, ROOT / "scripts" / "demo.py")


def test() -> None:
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "mypy")
    run(PYTHON, "-m", "pytest", "-q")
    # The documentation site, warnings as errors (mkdocs.yml); builds offline into build/site.
    run(BIN / "mkdocs", "build", "--strict", env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def main() -> int:
    commands = {"demo": demo, "test": test, "setup": lambda: None}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        setup(dev=sys.argv[1] != "demo")
        commands[sys.argv[1]]()
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
