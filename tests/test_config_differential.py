"""Differential cases that need files or flags before the server starts.

The differential runner (``tests/conformance/diff.py``) starts every server with an empty
``CODEX_HOME`` and no flags, so cases about startup (a layer stack with ``-c`` and the managed
file, an invalid value's ``configWarning``, requirements) live in
``tests/conformance/config_setup/``: ``NAME.jsonl`` is an ordinary case, ``NAME.json`` says
what to put in place first (``codex_home`` files, ``etc`` files for ``/etc/codex``, ``args``;
``values: true`` compares values too, as ``--values`` does).
Each server command is wrapped to copy the files into the harness's fresh ``CODEX_HOME``;
codex-core reads ``etc`` through ``CODEX_CORE_SYSTEM_CONFIG_DIR``, the reference through an
overlay on ``/etc`` in a private mount namespace, so the machine's ``/etc`` is never touched.
Runs where the pinned official server is installed (``python3 dev.py setup``), as in CI.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from codex_core.cli import server_command
from codex_core.testing.pytest_plugin import needs_reference
from codex_core.testing.reference import reference_server_command

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "tests" / "conformance" / "config_setup"
RUNNER = REPO / "tests" / "conformance" / "diff.py"


@cache
def _can_overlay_etc() -> bool:
    """Whether a private mount namespace with an overlay on /etc can be made (root, Linux)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"],
        capture_output=True,
        timeout=10,
    )
    return probe.returncode == 0


pytestmark = needs_reference


def _case(name: str) -> object:
    """One case; one that installs ``/etc`` files skips where no overlay can be mounted."""
    setup = json.loads((CASES / f"{name}.json").read_text())
    needs_etc = bool(setup.get("etc"))
    return pytest.param(
        name,
        marks=pytest.mark.skipif(
            needs_etc and not _can_overlay_etc(), reason="cannot overlay /etc for the reference"
        ),
    )


def _commands(setup: dict[str, object], workdir: Path) -> tuple[str, str]:
    """The candidate's and the reference's server commands for one case."""
    home = workdir / "home"
    home.mkdir()
    for name, text in dict(setup.get("codex_home") or {}).items():  # type: ignore[call-overload]
        (home / name).write_text(str(text))
    etc = workdir / "upper" / "codex"
    etc.mkdir(parents=True)
    for name, text in dict(setup.get("etc") or {}).items():  # type: ignore[call-overload]
        (etc / name).write_text(str(text))
    args = shlex.join([str(arg) for arg in list(setup.get("args") or [])])  # type: ignore[call-overload]
    copy = f'cp -R {shlex.quote(str(home))}/. "$CODEX_HOME"/ && '
    ours = shlex.join(server_command())
    theirs = reference_server_command()
    assert theirs is not None, "needs_reference skips this module without the reference"
    candidate = copy + f"CODEX_CORE_SYSTEM_CONFIG_DIR={shlex.quote(str(etc))} exec {ours} {args}"
    (workdir / "work").mkdir()
    mount = (
        "mount -t overlay overlay -o "
        f"lowerdir=/etc,upperdir={workdir / 'upper'},workdir={workdir / 'work'} /etc"
    )
    reference = (
        copy
        + "exec unshare -m sh -c "
        + shlex.quote(f"{mount} && exec {shlex.join(theirs)} {args}")
    )
    return shlex.join(["sh", "-c", candidate]), shlex.join(["sh", "-c", reference])


@pytest.mark.parametrize("case", [_case(path.stem) for path in sorted(CASES.glob("*.jsonl"))])
def test_case_agrees_with_the_reference(case: str, tmp_path: Path) -> None:
    setup = json.loads((CASES / f"{case}.json").read_text())
    candidate, reference = _commands(setup, tmp_path)
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            str(RUNNER),
            "--cases",
            str(CASES / f"{case}.jsonl"),
            "--server",
            candidate,
            "--reference",
            reference,
            "--json",
            str(report),
            *(["--values"] if setup.get("values") else []),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
