"""``codex-app-server plugin new``: the scaffold passes its own tests with the kit's fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from codex_core.testing.pytest_plugin import write_distribution


def cli(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codex_core", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "passed", "adds"),
    [
        ((), 2, "the JSON-RPC method `weather/hello`"),
        (("--tool",), 1, "the tool `weather`"),
        (("--transport",), 1, "a transport: `codex-app-server --listen weather://"),
    ],
    ids=["method", "tool", "transport"],
)
def test_a_new_plugin_passes_its_own_tests(
    server_env: dict[str, str], tmp_path: Path, flags: tuple[str, ...], passed: int, adds: str
) -> None:
    new = ("plugin", "new", "weather", *flags, "--dir", str(tmp_path))
    created = cli(server_env, *new, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    root = tmp_path / "codex-plugin-weather"
    assert {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} == {
        "pyproject.toml",
        "README.md",
        "codex_plugin_weather/__init__.py",
        "tests/conftest.py",
        "tests/test_codex_plugin_weather.py",
    }
    assert 'weather = "codex_plugin_weather"' in (root / "pyproject.toml").read_text()
    readme = (root / "README.md").read_text()
    assert "http" not in readme  # no placeholder links
    assert adds in readme

    # What `pip install -e .` would leave behind: the package importable, the entry point
    # declared (done by hand so the test needs no package index).
    site = tmp_path / "site"
    write_distribution(site, "codex-plugin-weather", "", entry_point="weather")
    (site / "codex_plugin_weather.py").unlink()  # the real package lives in the scaffold
    env = {**server_env, "PYTHONPATH": os.pathsep.join([str(root), str(site)])}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        env=env, cwd=root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert f"{passed} passed" in tests.stdout


def test_bad_names_and_existing_folders_are_refused(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    bad = cli(server_env, "plugin", "new", "Not A Name", "--dir", str(tmp_path), cwd=tmp_path)
    assert bad.returncode == 2
    assert "invalid plugin name 'Not A Name'" in bad.stderr
    (tmp_path / "codex-plugin-taken").mkdir()
    (tmp_path / "codex-plugin-taken" / "keep.txt").write_text("mine")
    taken = cli(server_env, "plugin", "new", "taken", "--dir", str(tmp_path), cwd=tmp_path)
    assert taken.returncode == 2
    assert "already exists" in taken.stderr
    assert (tmp_path / "codex-plugin-taken" / "keep.txt").read_text() == "mine"
    both = cli(server_env, "plugin", "new", "x", "--tool", "--transport", cwd=tmp_path)
    assert both.returncode == 2
    assert "not allowed with argument --tool" in both.stderr
