"""The documentation's examples run, and generated pages are current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_embedding_example_matches_the_guide_and_runs(server_env: dict[str, str]) -> None:
    guide = (REPO / "docs" / "embedding.md").read_text()
    snippet = re.search(r"## In-process\n\n```python\n(.*?)```", guide, re.S)
    assert snippet is not None
    example = REPO / "examples" / "embed.py"
    assert snippet.group(1) in example.read_text()
    completed = subprocess.run(
        [sys.executable, str(example)], env=server_env, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    assert "{'host': 'my-app 2.0'}" in completed.stdout


def test_protocol_coverage_page_is_current() -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from protocol_coverage import DOC, render
    finally:
        sys.path.pop(0)
    assert DOC.read_text() == render(), "run: python scripts/protocol_coverage.py"
