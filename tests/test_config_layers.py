"""Layers (managed, flags, project, user, system) and diagnostics for invalid values."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import StdioServer


@pytest.fixture
def system_dir(tmp_path: Path, server_env: dict[str, str]) -> Path:
    """Stands in for /etc/codex (system config.toml and the legacy managed_config.toml)."""
    folder = tmp_path / "etc-codex"
    folder.mkdir()
    server_env["CODEX_CORE_SYSTEM_CONFIG_DIR"] = str(folder)
    return folder


def names(read: dict[str, Any]) -> list[str]:
    return [layer["name"]["type"] for layer in read["layers"]]


def test_invalid_values_warn_and_fall_back(
    codex_home: Path, system_dir: Path, start_server: Any
) -> None:
    config = codex_home / "config.toml"
    config.write_text(
        'model = "kept"\napproval_policy = 3\n\n[features]\ncollaboration_modes = "true"\n'
    )
    server: StdioServer = start_server()
    server.initialize()
    first = server.wait_notification("configWarning")["params"]
    second = server.wait_notification("configWarning")["params"]
    assert first == {
        "summary": "Invalid configuration; using defaults.",
        "details": f"{config}:2:19: invalid type: integer `3`, expected a string\n"
        "  |\n"
        "2 | approval_policy = 3\n"
        "  |                   ^",
        "path": str(config),
        "range": {"start": {"line": 2, "column": 19}, "end": {"line": 2, "column": 19}},
    }
    assert second["details"] == (
        f'{config}:5:23: invalid type: string "true", expected a boolean\n'
        "  |\n"
        '5 | collaboration_modes = "true"\n'
        "  |                       ^^^^^^"
    )
    assert second["range"] == {"start": {"line": 5, "column": 23}, "end": {"line": 5, "column": 28}}
    # The server serves: the bad keys use their defaults, the good ones are kept.
    read = server.result("config/read", {"includeLayers": True})
    assert read["config"]["model"] == "kept"
    assert read["config"]["approval_policy"] is None
    assert "collaboration_modes" not in read["config"]["features"]
    assert "approval_policy" not in read["origins"]
    # config/read still lists the file as it is.
    assert read["layers"][0]["config"]["approval_policy"] == 3


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("model = true", "invalid type: boolean `true`, expected a string"),
        (
            'sandbox_mode = "bogus"',
            "unknown variant `bogus`, expected one of `read-only`, `workspace-write`, "
            "`danger-full-access`",
        ),
        ("[mcp_servers.foo]\nargs = 5", "invalid type: integer `5`, expected a sequence"),
        ("[model_providers.x]\nbase_url = 3", "invalid type: integer `3`, expected a string"),
        (
            '[shell_environment_policy]\ninherit = "weird"',
            "unknown variant `weird`, expected one of `core`, `all`, `none`",
        ),
    ],
)
def test_messages_follow_the_reference(
    codex_home: Path, system_dir: Path, start_server: Any, toml: str, message: str
) -> None:
    (codex_home / "config.toml").write_text(toml + "\n")
    server: StdioServer = start_server()
    server.initialize()
    warning = server.wait_notification("configWarning")["params"]
    first_line = warning["details"].splitlines()[0]
    assert first_line.endswith(f": {message}")
    assert "config" in server.result("config/read", {})  # still serving


def test_managed_flags_user_and_system_stack(
    codex_home: Path, system_dir: Path, start_server: Any
) -> None:
    (system_dir / "managed_config.toml").write_text('model = "managed"\n')
    (system_dir / "config.toml").write_text('model_reasoning_effort = "high"\n')
    (codex_home / "config.toml").write_text('model = "user"\nmodel_verbosity = "low"\n')
    server: StdioServer = start_server("-c", 'model="flag"', "-c", 'approval_policy="never"')
    server.initialize()
    read = server.result("config/read", {"includeLayers": True})
    assert names(read) == ["legacyManagedConfigTomlFromFile", "sessionFlags", "user", "system"]
    managed = read["layers"][0]
    assert managed["name"] == {
        "type": "legacyManagedConfigTomlFromFile",
        "file": str(system_dir / "managed_config.toml"),
    }
    assert read["config"]["model"] == "managed"
    assert read["config"]["approval_policy"] == "never"
    assert read["config"]["model_verbosity"] == "low"
    assert read["config"]["model_reasoning_effort"] == "high"
    assert read["origins"]["model"]["name"] == managed["name"]
    assert read["origins"]["approval_policy"]["name"] == {"type": "sessionFlags"}
    assert read["origins"]["model_reasoning_effort"]["name"] == {
        "type": "system",
        "file": str(system_dir / "config.toml"),
    }
    written = server.result(
        "config/value/write", {"keyPath": "model", "value": "mine", "mergeStrategy": "replace"}
    )
    assert written["overriddenMetadata"] == {
        "message": f"Overridden by legacy managed_config.toml: {system_dir}/managed_config.toml",
        "overridingLayer": {"name": managed["name"], "version": managed["version"]},
        "effectiveValue": "managed",
    }


def test_project_layers_need_trust(
    codex_home: Path, system_dir: Path, tmp_path: Path, start_server: Any
) -> None:
    repo = tmp_path / "repo"
    (repo / "sub" / ".codex").mkdir(parents=True)
    (repo / ".codex").mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".codex" / "config.toml").write_text(
        'model = "root"\nmodel_verbosity = "high"\nmodel_instructions_file = "instr.md"\n'
    )
    (repo / "sub" / ".codex" / "config.toml").write_text('model = "sub"\n')
    user = codex_home / "config.toml"
    user.write_text('model = "user"\n')
    server: StdioServer = start_server()
    server.initialize()
    cwd = str(repo / "sub")

    untrusted = server.result("config/read", {"includeLayers": True, "cwd": cwd})
    assert names(untrusted) == ["project", "project", "user", "system"]
    assert untrusted["config"]["model"] == "user"
    assert untrusted["layers"][0]["disabledReason"] == (
        "To load project-local config, hooks, and exec policies, "
        f"add {repo} as a trusted project in {user}."
    )

    server.result(
        "config/value/write",
        {
            "keyPath": "projects",
            "value": {str(repo): {"trust_level": "trusted"}},
            "mergeStrategy": "upsert",
        },
    )
    trusted = server.result("config/read", {"includeLayers": True, "cwd": cwd})
    assert [layer["name"] for layer in trusted["layers"][:2]] == [
        {"type": "project", "dotCodexFolder": str(repo / "sub" / ".codex")},
        {"type": "project", "dotCodexFolder": str(repo / ".codex")},
    ]
    assert "disabledReason" not in trusted["layers"][0]
    assert trusted["config"]["model"] == "sub"
    assert trusted["config"]["model_verbosity"] == "high"
    # Relative paths resolve against the folder of the file that holds them.
    assert trusted["config"]["model_instructions_file"] == str(repo / ".codex" / "instr.md")
    # Without cwd, no project layers.
    assert names(server.result("config/read", {"includeLayers": True})) == ["user", "system"]


def test_versions_ignore_formatting(codex_home: Path, system_dir: Path, start_server: Any) -> None:
    (codex_home / "config.toml").write_text('# hello\nmodel   = "x"\n')
    server: StdioServer = start_server()
    server.initialize()
    version = server.result("config/read", {})["origins"]["model"]["version"]
    # sha256 of {"model":"x"} as compact sorted JSON, like the reference.
    assert version == "sha256:" + __import__("hashlib").sha256(b'{"model":"x"}').hexdigest()
