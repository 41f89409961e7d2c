"""Migration from Claude Code: externalAgentConfig/detect and /import on real temp folders."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing.pytest_plugin import StdioServer


@pytest.fixture
def home(tmp_path: Path, codex_home: Path, server_env: dict[str, str]) -> Path:
    """``$HOME`` for the server: ``~/.claude`` is read from here."""
    folder = tmp_path / "home"
    (folder / ".claude").mkdir(parents=True)
    server_env["HOME"] = str(folder)
    return folder


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    (folder / ".git").mkdir(parents=True)
    (folder / ".claude").mkdir()
    return folder


def skill(root: Path, name: str, text: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text(text)
    return folder


def detect(server: StdioServer, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = server.result("externalAgentConfig/detect", params)["items"]
    return items


def run_import(server: StdioServer, items: list[dict[str, Any]]) -> dict[str, Any]:
    import_id = server.result("externalAgentConfig/import", {"migrationItems": items})["importId"]
    for _ in items:
        progress = server.wait_notification("externalAgentConfig/import/progress")["params"]
        assert progress["importId"] == import_id
    completed: dict[str, Any] = server.wait_notification("externalAgentConfig/import/completed")[
        "params"
    ]
    assert completed["importId"] == import_id
    return completed


def noop_import(server: StdioServer, item_type: str, cwd: str | None) -> list[Any]:
    """Import one item that has nothing to do: an answer, and no notification at all."""
    item = {"itemType": item_type, "description": "", "cwd": cwd, "details": None}
    server.result("externalAgentConfig/import", {"migrationItems": [item]})
    # config/read is answered after anything the import would have sent.
    server.result("config/read", {})
    seen = [
        message
        for message in server.notifications
        if str(message.get("method", "")).startswith("externalAgentConfig/")
    ]
    return seen


def test_detects_and_imports_everything(
    home: Path, repo: Path, codex_home: Path, start_server: Any
) -> None:
    (home / ".claude" / "settings.json").write_text(
        '{"env": {"FOO": "bar", "N": 3, "ON": true, "NULL": null, "LIST": [1]},'
        ' "sandbox": {"enabled": true}, "model": "claude-x"}'
    )
    skill(home / ".claude" / "skills", "foo", "Use Claude Code; see CLAUDE.md. claudes stay.\n")
    (home / ".claude" / "skills" / "foo" / "helper.txt").write_text("Claude untouched\n")
    (repo / ".claude" / "settings.json").write_text('{"env": {"R": "1"}}')
    skill(repo / ".claude" / "skills", "bar", "Ask claude-code\n")
    (repo / "CLAUDE.md").write_text("CLAUDE_CODE rules for Claude.\n")
    server: StdioServer = start_server()
    server.initialize()
    items = detect(server, includeHome=True, cwds=[str(repo)])
    user_config = codex_home / "config.toml"
    home_skills = codex_home.parent / ".agents" / "skills"
    assert items == [
        {
            "itemType": "CONFIG",
            "description": f"Migrate {home / '.claude' / 'settings.json'} into {user_config}",
            "cwd": None,
            "details": None,
        },
        {
            "itemType": "SKILLS",
            "description": f"Migrate skills from {home / '.claude' / 'skills'} to {home_skills}",
            "cwd": None,
            "details": {
                "plugins": [],
                "skills": [{"name": "foo"}],
                "sessions": [],
                "mcpServers": [],
                "hooks": [],
                "subagents": [],
                "commands": [],
            },
        },
        {
            "itemType": "CONFIG",
            "description": f"Migrate {repo / '.claude' / 'settings.json'} into "
            f"{repo / '.codex' / 'config.toml'}",
            "cwd": str(repo),
            "details": None,
        },
        {
            "itemType": "SKILLS",
            "description": f"Migrate skills from {repo / '.claude' / 'skills'} to "
            f"{repo / '.agents' / 'skills'}",
            "cwd": str(repo),
            "details": items[3]["details"],
        },
        {
            "itemType": "AGENTS_MD",
            "description": f"Migrate {repo / 'CLAUDE.md'} to {repo / 'AGENTS.md'}",
            "cwd": str(repo),
            "details": None,
        },
    ]
    completed = run_import(server, items)
    assert [result["itemType"] for result in completed["itemTypeResults"]] == [
        "CONFIG",
        "SKILLS",
        "AGENTS_MD",
    ]
    skills = completed["itemTypeResults"][1]["successes"]
    assert [(s["source"], s["target"], s["cwd"]) for s in skills] == [
        ("foo", "foo", None),
        ("bar", "bar", str(repo)),
    ]
    assert tomllib.loads(user_config.read_text()) == {
        "sandbox_mode": "workspace-write",
        "shell_environment_policy": {
            "inherit": "core",
            "set": {"FOO": "bar", "N": "3", "ON": "true"},
        },
    }
    assert tomllib.loads((repo / ".codex" / "config.toml").read_text()) == {
        "shell_environment_policy": {"inherit": "core", "set": {"R": "1"}}
    }
    assert (home_skills / "foo" / "SKILL.md").read_text() == (
        "Use Codex; see AGENTS.md. claudes stay.\n"
    )
    assert (home_skills / "foo" / "helper.txt").read_text() == "Claude untouched\n"
    assert (repo / ".agents" / "skills" / "bar" / "SKILL.md").read_text() == "Ask Codex\n"
    assert (repo / "AGENTS.md").read_text() == "Codex rules for Codex.\n"
    # The server reloaded the user config it migrated into.
    assert server.result("config/read", {})["config"]["sandbox_mode"] == "workspace-write"
    # Nothing is left to migrate.
    assert detect(server, includeHome=True, cwds=[str(repo)]) == []


def test_never_overwrites(home: Path, repo: Path, codex_home: Path, start_server: Any) -> None:
    (repo / ".claude" / "settings.json").write_text(
        '{"env": {"A": "new", "B": "new"}, "sandbox": {"enabled": true}}'
    )
    codex = repo / ".codex"
    codex.mkdir()
    original = (
        "# keep this comment\n"
        'sandbox_mode = "read-only"\n\n'
        "[shell_environment_policy]\n"
        'inherit = "all"  # mine\n'
        "[shell_environment_policy.set]\n"
        'A = "old"\n'
    )
    (codex / "config.toml").write_text(original)
    skill(repo / ".claude" / "skills", "same", "from Claude\n")
    skill(repo / ".claude" / "skills", "fresh", "from Claude\n")
    skill(repo / ".agents" / "skills", "same", "already here\n")
    (repo / "CLAUDE.md").write_text("Claude rules\n")
    (repo / "AGENTS.md").write_text("my own agents file\n")
    server: StdioServer = start_server()
    server.initialize()
    items = detect(server, cwds=[str(repo)])
    assert [item["itemType"] for item in items] == ["CONFIG", "SKILLS"]
    assert items[1]["details"]["skills"] == [{"name": "fresh"}]
    run_import(server, items)
    text = (codex / "config.toml").read_text()
    assert text.startswith(original)  # only additions, comments kept
    assert tomllib.loads(text) == {
        "sandbox_mode": "read-only",
        "shell_environment_policy": {"inherit": "all", "set": {"A": "old", "B": "new"}},
    }
    assert (repo / ".agents" / "skills" / "same" / "SKILL.md").read_text() == "already here\n"
    assert (repo / ".agents" / "skills" / "fresh" / "SKILL.md").read_text() == "from Codex\n"
    assert (repo / "AGENTS.md").read_text() == "my own agents file\n"
    # Importing an item detection would not list changes nothing either.
    assert noop_import(server, "AGENTS_MD", str(repo)) == []
    assert (repo / "AGENTS.md").read_text() == "my own agents file\n"


def test_blank_agents_md_is_replaced_and_home_claude_md_goes_to_codex_home(
    home: Path, repo: Path, codex_home: Path, start_server: Any
) -> None:
    (repo / "CLAUDE.md").write_text("See CLAUDE.md, ask Claude.\n")
    (repo / "AGENTS.md").write_text("  \n\t\n")
    (home / ".claude" / "CLAUDE.md").write_text("Claude Code at home\n")
    (home / ".claude" / "settings.json").write_text('{"sandbox": {"enabled": false}}')
    nested = repo / "a" / "b"
    nested.mkdir(parents=True)
    server: StdioServer = start_server()
    server.initialize()
    items = detect(server, includeHome=True, cwds=[str(nested)])
    # sandbox.enabled = false maps to nothing: no CONFIG item; the repo root is found from a
    # nested folder.
    assert [(item["itemType"], item["cwd"]) for item in items] == [
        ("AGENTS_MD", None),
        ("AGENTS_MD", str(repo)),
    ]
    run_import(server, items)
    assert (repo / "AGENTS.md").read_text() == "See AGENTS.md, ask Codex.\n"
    assert (codex_home / "AGENTS.md").read_text() == "Codex at home\n"
    assert not (codex_home / "config.toml").exists()


def test_existing_but_complete_config_is_not_detected(
    home: Path, codex_home: Path, start_server: Any
) -> None:
    (home / ".claude" / "settings.json").write_text(
        '{"env": {"FOO": "bar"}, "sandbox": {"enabled": true}}'
    )
    (codex_home / "config.toml").write_text(
        'sandbox_mode = "danger-full-access"\n[shell_environment_policy]\n'
        'inherit = "none"\n[shell_environment_policy.set]\nFOO = "x"\n'
    )
    server: StdioServer = start_server()
    server.initialize()
    assert detect(server, includeHome=True) == []
    before = (codex_home / "config.toml").read_text()
    assert noop_import(server, "CONFIG", None) == []
    assert (codex_home / "config.toml").read_text() == before
