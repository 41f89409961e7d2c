"""Differential cases that need files or flags before the server starts.

The shared harness (``../shared/conformance/diff.py``) starts every server with an empty
``CODEX_HOME`` and no flags, so cases about startup (a layer stack with ``-c`` and the managed
file, an invalid value's ``configWarning``, requirements) live in
``tests/conformance/config_setup/``: ``NAME.jsonl`` is an ordinary case, ``NAME.json`` says
what to put in place first (``codex_home`` files, ``etc`` files for ``/etc/codex``, ``args``;
``values: true`` compares values too, as ``--values`` does).
Each server command is wrapped to copy the files into the harness's fresh ``CODEX_HOME``;
codex-core reads ``etc`` through ``CODEX_CORE_SYSTEM_CONFIG_DIR``, the reference through an
overlay on ``/etc`` in a private mount namespace, so the machine's ``/etc`` is never touched.
Runs when the reference (``codex-peer``) and the harness are installed, as in CI.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "tests" / "conformance" / "config_setup"
HARNESS = REPO.parent / "shared" / "conformance" / "diff.py"


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


pytestmark = [
    pytest.mark.skipif(shutil.which("codex-peer") is None, reason="no codex-peer"),
    pytest.mark.skipif(not HARNESS.exists(), reason="no ../shared/conformance/diff.py"),
]


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
    candidate = (
        copy + f"CODEX_CORE_SYSTEM_CONFIG_DIR={shlex.quote(str(etc))} exec codex-app-server {args}"
    )
    (workdir / "work").mkdir()
    mount = (
        "mount -t overlay overlay -o "
        f"lowerdir=/etc,upperdir={workdir / 'upper'},workdir={workdir / 'work'} /etc"
    )
    reference = (
        copy
        + "exec unshare -m sh -c "
        + shlex.quote(f"{mount} && exec codex-peer app-server {args}")
    )
    return shlex.join(["sh", "-c", candidate]), shlex.join(["sh", "-c", reference])


@pytest.mark.parametrize("case", sorted(path.stem for path in CASES.glob("*.jsonl")))
def test_case_agrees_with_the_reference(case: str, tmp_path: Path) -> None:
    setup = json.loads((CASES / f"{case}.json").read_text())
    if setup.get("etc") and not _can_overlay_etc():
        pytest.skip("cannot overlay /etc for the reference here")
    candidate, reference = _commands(setup, tmp_path)
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
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
