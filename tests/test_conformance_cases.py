"""The conformance cases, each run by the differential runner (``tests/conformance/diff.py``).

Every case file (``tests/conformance/basics/`` and ``tests/conformance/*.jsonl``) runs against our
server and the pinned official one, comparing values after masking ids, times and temp paths
(``--values``); the runner also validates every message we send against the official schema.
Where the official server is not installed, that test skips with what to do and each case runs
against ours alone instead (``--reference none``: the schema and the case's own assertions).
The runner starts servers with this interpreter, and this interpreter's ``bin`` leads ``PATH``
so a case that configures an MCP server as ``python`` gets one with the MCP SDK.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing.pytest_plugin import needs_reference
from codex_core.testing.reference import reference_binary

CONFORMANCE = Path(__file__).resolve().parent / "conformance"
RUNNER = CONFORMANCE / "diff.py"
#: Seconds an expect step waits: generous, so a loaded machine is not a difference.
STEP_TIMEOUT = "20"
CASES = sorted(CONFORMANCE.glob("basics/*.jsonl")) + sorted(CONFORMANCE.glob("*.jsonl"))

#: Cases whose values differ from the reference on purpose, with why. Strict: a case that
#: starts agreeing fails here until it is taken off the list.
VALUE_DIFFERENCES = {
    "plugin_list_broken_marketplace": (
        "deliberate: plugin/list also lists our bundled codex-core catalog, and the broken "
        "catalog's parse error is worded by Python's json, not serde_json"
    ),
}


def _param(case: Path, *, differential: bool) -> Any:
    name = case.relative_to(CONFORMANCE).with_suffix("").as_posix()
    known = VALUE_DIFFERENCES.get(case.stem) if differential else None
    marks = [pytest.mark.xfail(reason=known, strict=True)] if known else []
    return pytest.param(case, id=name, marks=marks)


def run_case(case: Path, *options: str) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [sys.executable, str(RUNNER), "--cases", str(case), "--timeout", STEP_TIMEOUT, *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@needs_reference
@pytest.mark.parametrize("case", [_param(case, differential=True) for case in CASES])
def test_case_agrees_with_the_reference(case: Path) -> None:
    done = run_case(case, "--values")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(
    reference_binary() is not None,
    reason="the differential run of the same case checks this and more",
)
@pytest.mark.parametrize("case", [_param(case, differential=False) for case in CASES])
def test_case_passes_on_our_server_alone(case: Path) -> None:
    done = run_case(case, "--reference", "none")
    assert done.returncode == 0, done.stdout + done.stderr
