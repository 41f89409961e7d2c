"""experimentalFeature/list, modelProvider/list, hooks/list; unknown keys, --strict-config's
problems and plugins' config sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from codex_core.config import load_config, strict_problems
from codex_core.testing.pytest_plugin import StdioServer


@pytest.fixture(autouse=True)
def system_dir(tmp_path: Path, server_env: dict[str, str], monkeypatch: Any) -> Path:
    folder = tmp_path / "etc-codex"
    folder.mkdir()
    server_env["CODEX_CORE_SYSTEM_CONFIG_DIR"] = str(folder)
    monkeypatch.setenv("CODEX_CORE_SYSTEM_CONFIG_DIR", str(folder))
    return folder


def test_experimental_features_follow_config_and_paginate(
    codex_home: Path, start_server: Any
) -> None:
    (codex_home / "config.toml").write_text(
        "[features]\nnetwork_proxy = true\nunified_exec = false\n"
    )
    server: StdioServer = start_server()
    server.initialize()
    everything = server.result("experimentalFeature/list", {})
    assert everything["nextCursor"] is None
    rows = {row["name"]: row for row in everything["data"]}
    assert len(rows) > 100
    assert rows["network_proxy"] == {
        "name": "network_proxy",
        "stage": "beta",
        "displayName": "Network proxy",
        "description": "Apply network proxy restrictions to sandboxed sessions that already "
        "have network access.",
        "announcement": "NEW: Network proxy can now be enabled from /experimental. "
        "Restart Codex after enabling it.",
        "enabled": True,
        "defaultEnabled": False,
    }
    assert (rows["unified_exec"]["enabled"], rows["unified_exec"]["defaultEnabled"]) == (
        False,
        True,
    )
    first = server.result("experimentalFeature/list", {"limit": 2})
    assert first["nextCursor"] == "2"
    second = server.result("experimentalFeature/list", {"limit": 2, "cursor": "2"})
    assert [r["name"] for r in first["data"] + second["data"]] == list(rows)[:4]


def test_model_providers(codex_home: Path, start_server: Any) -> None:
    (codex_home / "config.toml").write_text(
        'model_provider = "mine"\n'
        '[model_providers.mine]\nname = "Mine"\nbase_url = "http://localhost:1/v1"\n'
        '[model_providers.keyed]\nbase_url = "https://x/v1"\nenv_key = "KEYED_KEY"\n'
    )
    server: StdioServer = start_server("-c", 'model_providers.flag.base_url="https://f/v1"')
    server.initialize()
    assert server.result("modelProvider/list", {}) == {
        "data": [
            {
                "id": "flag",
                "name": "flag",
                "canEdit": False,
                "baseUrl": "https://f/v1",
                "settings": {"type": "customGateway", "auth": {"mode": "none"}},
            },
            {
                "id": "keyed",
                "name": "keyed",
                "canEdit": True,
                "baseUrl": "https://x/v1",
                "settings": {
                    "type": "customGateway",
                    "auth": {"mode": "environmentVariable", "envKey": "KEYED_KEY"},
                },
            },
            {
                "id": "mine",
                "name": "Mine",
                "canEdit": True,
                "baseUrl": "http://localhost:1/v1",
                "settings": {"type": "customGateway", "auth": {"mode": "none"}},
            },
            {
                "id": "openai",
                "name": "OpenAI",
                "canEdit": False,
                "baseUrl": None,
                "settings": {"type": "openai"},
            },
        ],
        "defaultProviderId": "mine",
        "canChangeDefault": True,
    }


def test_hooks_per_cwd(tmp_path: Path, codex_home: Path, start_server: Any) -> None:
    user = codex_home / "config.toml"
    trusted = tmp_path / "trusted"
    (trusted / ".git").mkdir(parents=True)
    (trusted / ".codex").mkdir()
    other = tmp_path / "other"
    (other / ".codex").mkdir(parents=True)
    user.write_text(
        f'[projects."{trusted}"]\ntrust_level = "trusted"\n'
        '[[hooks.PreToolUse]]\nmatcher = "shell"\n'
        '[[hooks.PreToolUse.hooks]]\ntype = "command"\ncommand = "echo hi"\ntimeout = 30\n'
    )
    hooks = (
        "[[hooks.SessionStart]]\n"
        'hooks = [{type = "command", command = "y", statusMessage = "hi"}, {type = "prompt"}]\n'
    )
    (trusted / ".codex" / "config.toml").write_text(hooks)
    (other / ".codex" / "config.toml").write_text(hooks)
    server: StdioServer = start_server()
    server.initialize()
    data = server.result("hooks/list", {"cwds": [str(trusted), str(other)]})["data"]
    assert [entry["cwd"] for entry in data] == [str(trusted), str(other)]
    first, *project = data[0]["hooks"]
    assert first == {
        "key": f"{user}:pre_tool_use:0:0",
        "eventName": "preToolUse",
        "handlerType": "command",
        "command": "echo hi",
        "async": False,
        "matcher": "shell",
        "timeoutSec": 30,
        "statusMessage": None,
        "additionalContextLimit": None,
        "sourcePath": str(user),
        "source": "user",
        "pluginId": None,
        "environmentId": None,
        "displayOrder": 0,
        "enabled": True,
        "isManaged": False,
        "currentHash": first["currentHash"],
        "trustStatus": "untrusted",
    }
    assert first["currentHash"].startswith("sha256:")
    project_file = str(trusted / ".codex" / "config.toml")
    assert [(h["key"], h["handlerType"], h["source"], h["displayOrder"]) for h in project] == [
        (f"{project_file}:session_start:0:0", "command", "project", 1),
        (f"{project_file}:session_start:0:1", "prompt", "project", 2),
    ]
    assert project[0]["statusMessage"] == "hi" and project[0]["timeoutSec"] == 600
    # An untrusted project's hooks are not loaded.
    assert [h["source"] for h in data[1]["hooks"]] == ["user"]
    assert data[0]["warnings"] == data[0]["errors"] == []


def test_hooks_list_reports_config_errors(codex_home: Path, start_server: Any) -> None:
    config = codex_home / "config.toml"
    config.write_text("model = true\n")
    server: StdioServer = start_server()
    server.initialize()
    (entry,) = server.result("hooks/list", {})["data"]
    assert entry["hooks"] == []
    assert entry["errors"] == [
        {
            "path": entry["cwd"],
            "message": f"{config}:1:9: invalid type: boolean `true`, expected a string",
        }
    ]


def test_unknown_keys_warn(codex_home: Path, start_server: Any) -> None:
    config = codex_home / "config.toml"
    config.write_text('model = "m"\nbogus_key = 1\n[my_table]\nx = 1\n')
    server: StdioServer = start_server("-c", "qqq=1")
    server.initialize()
    warning = server.wait_notification("configWarning")["params"]
    assert warning == {
        "summary": "Codex is ignoring 3 unrecognized configuration settings. Check for typos "
        "or deprecated settings.\n"
        "  session-flags: `qqq` is ignored.\n"
        f"  user ({config}): `bogus_key` is ignored.\n"
        f"  user ({config}): `my_table` is ignored.",
        "details": None,
    }
    # Ignored by the reference, but kept in the merge for plugins that read them.
    assert server.result("config/read", {"includeLayers": True})["layers"][1]["config"][
        "my_table"
    ] == {"x": 1}


def test_strict_problems(codex_home: Path) -> None:
    config = codex_home / "config.toml"
    assert strict_problems(load_config(codex_home)) == []
    config.write_text('approval_policy = "sometimes"\ntypo_key = 1\n')
    assert strict_problems(load_config(codex_home)) == [
        f"{config}:1:19: unknown variant `sometimes`, expected one of `untrusted`, "
        "`on-failure`, `on-request`, `never`",
        f"{config}:2:1: unknown configuration field `typo_key`",
    ]
    config.write_text("model = \n")
    (problem,) = strict_problems(load_config(codex_home))
    assert problem.startswith(f"{config}:1:")


class Greeter(BaseModel):
    model_config = {"extra": "forbid", "strict": True}
    greeting: str = "hello"
    times: int = 1


def test_plugin_sections_are_validated_per_layer(codex_home: Path) -> None:
    config = codex_home / "config.toml"
    config.write_text('[greeter]\ngreeting = "hi"\ntimes = "twice"\n')
    loaded = load_config(codex_home, ["greeter.times=3"], sections={"greeter": Greeter})
    # The user layer's bad value is dropped and reported at its position; -c wins anyway.
    assert loaded.get("greeter") == {"greeting": "hi", "times": 3}
    (warning,) = loaded.warnings
    assert warning["details"].startswith(
        f'{config}:3:9: invalid type: string "twice", expected i64'
    )
    # A known section is not an unknown key; without the section it is.
    assert strict_problems(loaded) == [warning["details"].partition("\n")[0]]
    assert strict_problems(load_config(codex_home)) == [
        f"{config}:1:1: unknown configuration field `greeter`"
    ]
    config.write_text("greeter = 3\n")
    assert load_config(codex_home, sections={"greeter": Greeter}).get("greeter") is None
