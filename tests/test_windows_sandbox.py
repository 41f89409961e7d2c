"""``windowsSandbox/readiness`` and ``/setupStart`` off Windows, as the official server answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_core.cli import server_command
from codex_core.testing.pytest_plugin import needs_reference
from codex_core.testing.reference import reference_server_command
from codex_core.testing.session import NO_PARAMS, run_session

REQUESTS: list[tuple[str, Any]] = [
    ("windowsSandbox/readiness", NO_PARAMS),
    ("windowsSandbox/readiness", {}),
    ("windowsSandbox/setupStart", {"mode": "elevated", "cwd": "/nonexistent"}),
    ("windowsSandbox/setupStart", {"mode": "unelevated"}),
    # Errors: no mode, an unknown one, a relative cwd.
    ("windowsSandbox/setupStart", {}),
    ("windowsSandbox/setupStart", {"mode": "bogus"}),
    ("windowsSandbox/setupStart", {"mode": "elevated", "cwd": "relative"}),
]


@needs_reference
def test_windows_sandbox_matches_the_reference(tmp_path: Path, codex_env: dict[str, str]) -> None:
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    reference = reference_server_command()
    assert reference is not None
    completed = ["windowsSandbox/setupCompleted"] * 2
    ours = run_session(
        server_command(), tmp_path / "ours", REQUESTS, env=codex_env, wait_for=completed
    )
    theirs = run_session(reference, tmp_path / "theirs", REQUESTS, wait_for=completed)
    assert ours.results == theirs.results
    assert ours.results[:4] == [
        {"status": "notConfigured"},
        {"status": "notConfigured"},
        {"started": True},
        {"started": True},
    ]

    def setups(notifications: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = [n["params"] for n in notifications if n["method"] == completed[0]]
        return sorted(found, key=lambda params: params["mode"])

    assert (
        setups(ours.notifications)
        == setups(theirs.notifications)
        == [
            {
                "mode": "elevated",
                "success": False,
                "error": "elevated Windows sandbox setup is only supported on Windows",
            },
            {
                "mode": "unelevated",
                "success": False,
                "error": "legacy Windows sandbox setup is only supported on Windows",
            },
        ]
    )
