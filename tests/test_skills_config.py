"""``skills/config/write`` (the TUI's ``/skills`` toggle), ours against the official server:
each answer, the user's config.toml (as values) after it, and what ``skills/list`` says."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing.pytest_plugin import StdioServer, server_command
from codex_core.testing.reference import reference_server_command

REFERENCE = reference_server_command()


def steps(root: Path) -> list[dict[str, Any]]:
    """Writes by name and by path, on and off, twice, for skills that exist and not, and
    the requests the reference refuses."""
    skill = str(root / "home" / "skills" / "demo" / "SKILL.md")
    return [
        {"path": skill, "enabled": False},
        {"path": skill, "enabled": False},
        {"name": "demo", "enabled": False},
        {"path": skill, "enabled": True},
        {"name": "imagegen", "enabled": False},
        {"path": str(root / "nowhere" / "SKILL.md"), "enabled": False},
        {"name": "demo", "enabled": True},
        {"name": "imagegen", "enabled": True},
        {"enabled": False},
        {"name": "", "enabled": True},
        {"name": "demo", "path": skill, "enabled": False},
        {"path": "relative/SKILL.md", "enabled": False},
    ]


def run(argv: list[str], root: Path) -> list[Any]:
    home, cwd = root / "home", root / "cwd"
    skill = home / "skills" / "demo"
    skill.mkdir(parents=True)
    cwd.mkdir()
    (skill / "SKILL.md").write_text("---\nname: demo\ndescription: A demo skill\n---\nDo it.\n")
    env = {**os.environ, "CODEX_HOME": str(home), "HOME": str(root / "user")}
    server = StdioServer(argv, env, cwd)
    seen: list[Any] = []
    try:
        server.initialize()
        for params in steps(root):
            reply = server.request("skills/config/write", params)
            config = home / "config.toml"
            listed = server.result("skills/list", {"cwds": [str(cwd)]})["data"][0]["skills"]
            seen.append(
                {
                    "reply": reply.get("error") or reply["result"],
                    "config": tomllib.loads(config.read_text()) if config.exists() else None,
                    "enabled": {s["name"]: s["enabled"] for s in listed},
                }
            )
    finally:
        server.close()
    return [masked(step, str(root)) for step in seen]


def masked(value: Any, root: str) -> Any:
    if isinstance(value, dict):
        return {key: masked(inner, root) for key, inner in value.items()}
    if isinstance(value, list):
        return [masked(inner, root) for inner in value]
    return value.replace(root, "<root>") if isinstance(value, str) else value


@pytest.mark.skipif(REFERENCE is None, reason="the official server is not installed")
def test_skills_config_write_matches_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = run(server_command(), tmp_path / "ours")
    theirs = run(REFERENCE, tmp_path / "reference")
    assert ours == theirs
    assert ours[0]["enabled"]["demo"] is False and ours[0]["reply"] == {"effectiveEnabled": False}
    assert ours[4]["enabled"]["imagegen"] is False
    assert ours[8]["reply"]["code"] == -32602


def over_odd_files(argv: list[str], root: Path) -> list[Any]:
    """Writes over a config.toml that does not parse, one whose ``skills.config`` is not a
    list, and one with comments and other entries: the answers and the files' values."""
    home, cwd = root / "home", root / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir()
    env = {**os.environ, "CODEX_HOME": str(home), "HOME": str(root / "user")}
    config = home / "config.toml"
    server = StdioServer(argv, env, cwd)
    seen: list[Any] = []
    try:
        server.initialize()
        for text in (
            "model = \n",
            "[skills]\nconfig = 5\n",
            '# kept\nmodel = "x"\n[[skills.config]]\nname = "other"\nenabled = false\n',
        ):
            config.write_text(text)
            reply = server.request("skills/config/write", {"name": "demo", "enabled": False})
            after = config.read_text()
            seen.append(
                {
                    "reply": reply.get("error") or reply["result"],
                    "config": tomllib.loads(after)
                    if after != text or "error" not in reply
                    else None,
                    "comment kept": after.startswith("# kept") if text.startswith("#") else None,
                }
            )
    finally:
        server.close()
    return seen


@pytest.mark.skipif(REFERENCE is None, reason="the official server is not installed")
def test_skills_config_write_over_odd_files_matches_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = over_odd_files(server_command(), tmp_path / "ours")
    theirs = over_odd_files(REFERENCE, tmp_path / "reference")
    assert ours == theirs
    assert ours[0]["reply"]["message"].startswith(
        "failed to update skill settings: TOML parse error at line 1, column 9"
    )
    assert ours[2]["comment kept"] is True
