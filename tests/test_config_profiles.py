"""Profiles as the official CLI has them now: ``--profile NAME`` layers
``$CODEX_HOME/NAME.config.toml`` over the base user config; the legacy ``profile = "NAME"``
selector is refused with the reference's texts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import test_config_layers

from codex_core.testing.pytest_plugin import StdioServer

system_dir = test_config_layers.system_dir  # the fixture standing in for /etc/codex


def test_profile_layers_over_the_user_config(
    codex_home: Path, system_dir: Path, start_server: Any
) -> None:
    base = codex_home / "config.toml"
    base.write_text('model = "base"\nmodel_verbosity = "low"\n')
    work = codex_home / "work.config.toml"
    work.write_text('model = "work-model"\nmodel_reasoning_effort = "high"\n')
    server: StdioServer = start_server("--profile", "work", "-c", 'model_verbosity="high"')
    server.initialize()
    read = server.result("config/read", {"includeLayers": True})
    profile_name = {"type": "user", "file": str(work), "profile": "work"}
    base_name = {"type": "user", "file": str(base), "profile": None}
    assert [layer["name"] for layer in read["layers"]] == [
        {"type": "sessionFlags"},
        profile_name,
        base_name,
        {"type": "system", "file": str(system_dir / "config.toml")},
    ]
    assert read["config"]["model"] == "work-model"
    assert read["config"]["model_reasoning_effort"] == "high"
    assert read["config"]["model_verbosity"] == "high"
    assert read["origins"]["model"]["name"] == profile_name
    assert read["origins"]["model_verbosity"]["name"] == {"type": "sessionFlags"}
    # Writes still go to the base user file; the profile keeps winning over it.
    written = server.result(
        "config/value/write", {"keyPath": "model", "value": "mine", "mergeStrategy": "replace"}
    )
    assert written["filePath"] == str(base)
    assert written["status"] == "okOverridden"
    assert written["overriddenMetadata"]["effectiveValue"] == "work-model"


def test_a_missing_profile_file_is_an_empty_layer(
    codex_home: Path, system_dir: Path, start_server: Any
) -> None:
    server: StdioServer = start_server("-p", "nothere")
    server.initialize()
    read = server.result("config/read", {"includeLayers": True})
    assert read["layers"][0] == {
        "name": {
            "type": "user",
            "file": str(codex_home / "nothere.config.toml"),
            "profile": "nothere",
        },
        "version": read["layers"][1]["version"],  # both empty
        "config": {},
    }


def test_the_legacy_selector_is_refused(
    codex_home: Path, system_dir: Path, start_server: Any, codex_cli: Any
) -> None:
    config = codex_home / "config.toml"
    config.write_text('profile = "p"\n[profiles.p]\nmodel = "from-profile"\n')
    server: StdioServer = start_server()
    server.initialize()
    details = (
        'legacy `profile = "p"` config is no longer supported; use `--profile p` with '
        "`p.config.toml` instead"
    )
    assert server.wait_notification("configWarning")["params"] == {
        "summary": "Invalid configuration; using defaults.",
        "details": details,
    }
    assert server.error("config/read", {}) == {
        "code": -32603,
        "message": f"failed to resolve feature override precedence: {details}",
    }
    assert server.result("thread/start", {})["model"] != "from-profile"
    # On the command line it stops the CLI, as the reference.
    config.write_text("[profiles.q]\nmodel = 'q'\n")
    done = codex_cli("-c", "profile=x")
    assert (done.returncode, done.stderr) == (
        2,
        'codex-app-server: legacy `profile = "x"` config is no longer supported; use '
        "`--profile x` with `x.config.toml` instead\n",
    )
    # A --profile whose name the legacy tables still use is refused too.
    done = codex_cli("--profile", "q")
    assert done.returncode == 2
    assert done.stderr == (
        f"codex-app-server: --profile `q` cannot be used while {config} contains legacy "
        f'`profile = "q"` or `[profiles.q]` config; move those settings into '
        f"{codex_home / 'q.config.toml'} and remove the legacy profile selector/table. See "
        "https://developers.openai.com/codex/config-advanced#profiles for more information.\n"
    )
    done = codex_cli("--profile", "a/b")
    assert done.returncode == 2
    assert "invalid --profile value `a/b`; pass a plain name such as `work`" in done.stderr
