"""Layers (managed, flags, project, user, system) and diagnostics for invalid values."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing.pytest_plugin import StdioServer


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
    # config/read fails as the reference's does until the file is fixed...
    response = server.request("config/read", {"includeLayers": True})
    assert response["error"] == {
        "code": -32603,
        "message": "invalid configuration: invalid type: integer `3`, expected a string\n"
        "in `approval_policy`\n",
    }
    # ...but the server serves: the bad keys use their defaults, the good ones are kept.
    thread = server.result("thread/start", {})
    assert thread["model"] == "kept"
    assert thread["approvalPolicy"] == "on-request"
    features = server.result("experimentalFeature/list", {})["data"]
    (row,) = [row for row in features if row["name"] == "collaboration_modes"]
    assert row["enabled"] == row["defaultEnabled"]


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
    assert server.result("modelProvider/list", {})["data"]  # still serving


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


def test_syntax_errors_use_the_reference_wording(
    codex_home: Path, system_dir: Path, start_server: Any
) -> None:
    config = codex_home / "config.toml"
    config.write_text('# settings\nmodel = "x"\nfoo = [1, 2\n')
    server: StdioServer = start_server()
    server.initialize()
    warning = server.wait_notification("configWarning")["params"]
    first_line = f"{config}:3:12: unclosed array, expected `]`"
    assert warning == {
        "summary": "Invalid configuration; using defaults.",
        "details": f"{first_line}\n  |\n3 | foo = [1, 2\n  |            ^",
        "path": str(config),
        "range": {"start": {"line": 3, "column": 12}, "end": {"line": 3, "column": 12}},
    }
    assert server.error("config/read", {}) == {
        "code": -32603,
        "message": f"failed to read configuration layers: {first_line}",
    }
    # The CLI says the same on stderr.
    server.wait_stderr(f"Invalid configuration; using defaults. {first_line}\n  |\n3 |")
    # A span covers the whole token, as the Rust toml crate reports it.
    config.write_text('model = "x"\nmodel = "y"\n')
    again: StdioServer = start_server()
    again.initialize()
    warning = again.wait_notification("configWarning")["params"]
    assert warning["details"] == f'{config}:2:1: duplicate key\n  |\n2 | model = "y"\n  | ^^^^^'
    assert warning["range"] == {"start": {"line": 2, "column": 1}, "end": {"line": 2, "column": 5}}


def test_unknown_nested_keys_warn_and_strict_refuses(
    codex_home: Path, system_dir: Path, start_server: Any, codex_cli: Any
) -> None:
    config = codex_home / "config.toml"
    config.write_text(
        "top_bogus = 2\n"
        '[model_providers.x]\nname = "X"\nbogus = 1\n'
        "[features]\nnope = true\nguardian_approval = true\n"
        "[shell_environment_policy]\nwhat = 1\n"
        '[mcp_servers.m]\ncommand = "x"\nzzz = 1\n'
    )
    server: StdioServer = start_server("-c", "aaa=1")
    server.initialize()
    warning = server.wait_notification("configWarning")["params"]
    assert warning == {
        "summary": "Codex is ignoring 6 unrecognized configuration settings. Check for typos "
        "or deprecated settings.\n"
        "  session-flags: `aaa` is ignored.\n"
        f"  user ({config}): `features.nope` is ignored.\n"
        f"  user ({config}): `mcp_servers.m.zzz` is ignored.\n"
        "  ... and 3 more ignored settings.",
        "details": None,
    }
    # --strict-config refuses them, pointing at each key (an unknown feature only warns).
    done = codex_cli("--strict-config")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"codex-app-server: {config}:12:1: unknown configuration field `mcp_servers.m.zzz`",
        f"codex-app-server: {config}:4:1: unknown configuration field `model_providers.x.bogus`",
        f"codex-app-server: {config}:9:1: unknown configuration field "
        "`shell_environment_policy.what`",
        f"codex-app-server: {config}:1:1: unknown configuration field `top_bogus`",
    ]


def test_config_read_sees_changes_made_on_disk(
    codex_home: Path, system_dir: Path, start_server: Any
) -> None:
    server: StdioServer = start_server()
    server.initialize()
    assert server.result("config/read", {})["config"]["model"] is None
    config = codex_home / "config.toml"
    config.write_text('model = "edited-elsewhere"\n')  # another process, after startup
    read = server.result("config/read", {})
    assert read["config"]["model"] == "edited-elsewhere"
    assert read["origins"]["model"]["name"] == {
        "type": "user",
        "file": str(config),
        "profile": None,
    }
