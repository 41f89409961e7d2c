"""``codex-app-server`` as an operator runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codex_core import __version__
from codex_core.testing.pytest_plugin import StdioServer


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codex_core", *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def test_version(server_env: dict[str, str]) -> None:
    assert run_cli(server_env, "--version").stdout.strip() == f"codex-app-server {__version__}"


def test_console_script_is_installed(server_env: dict[str, str]) -> None:
    """pip installs ``codex-app-server`` beside this interpreter (the venv's ``bin``)."""
    script = Path(sys.executable).with_name("codex-app-server")
    completed = subprocess.run(
        [str(script), "--version"], env=server_env, capture_output=True, text=True, timeout=60
    )
    assert completed.stdout.strip() == f"codex-app-server {__version__}", completed.stderr


def test_unknown_listen_scheme_lists_installed_transports(server_env: dict[str, str]) -> None:
    completed = run_cli(server_env, "--listen", "carrier-pigeon://loft")
    assert completed.returncode == 2
    assert "no installed transport serves carrier-pigeon://" in completed.stderr
    assert "installed: stdio://" in completed.stderr


def test_stdio_takes_no_address(server_env: dict[str, str]) -> None:
    completed = run_cli(server_env, "--listen", "stdio://somewhere")
    assert completed.returncode != 0
    assert "stdio takes no address" in completed.stderr


def test_config_overrides_are_toml_with_raw_string_fallback(start_server: Any) -> None:
    server: StdioServer = start_server(
        "-c", 'model_reasoning_effort="high"', "-c", "foo.bar=unquoted value", "-c", "model=gpt-x"
    )
    server.initialize()
    result = server.result("config/read", {"includeLayers": True})
    assert result["config"]["model_reasoning_effort"] == "high"
    assert result["config"]["model"] == "gpt-x"
    assert result["origins"]["foo.bar"]["name"] == {"type": "sessionFlags"}
    flags = result["layers"][0]
    assert flags["name"] == {"type": "sessionFlags"}
    assert flags["config"]["foo"] == {"bar": "unquoted value"}
    assert flags["version"].startswith("sha256:")


def test_malformed_override_is_a_clear_error(server_env: dict[str, str]) -> None:
    completed = run_cli(server_env, "-c", "no-equals-sign")
    assert completed.returncode == 2
    assert "invalid -c override 'no-equals-sign': expected key=value" in completed.stderr


def test_broken_config_file_warns_and_serves(codex_home: Path, start_server: Any) -> None:
    (codex_home / "config.toml").write_text('model = "ok"\nbroken = = 1\n')
    server: StdioServer = start_server()
    server.initialize()
    warning = server.wait_notification("configWarning")["params"]
    assert warning["path"] == str(codex_home / "config.toml")
    assert warning["range"]["start"]["line"] == 2
    assert server.error("config/read", {})["code"] == -32603  # the reference's answer
    assert server.result("thread/start", {})["model"] != "ok"  # it serves, on the defaults


@pytest.mark.parametrize("experimental", [False, True])
def test_generate_json_schema_matches_the_official_one(
    server_env: dict[str, str], tmp_path: Path, experimental: bool
) -> None:
    out = tmp_path / "schema"
    args = ["generate-json-schema", "--out", str(out)] + (
        ["--experimental"] if experimental else []
    )
    assert run_cli(server_env, *args).returncode == 0
    vendored = Path(__file__).resolve().parents[1] / "codex_core" / "protocol" / "schema"
    expected = vendored / ("experimental" if experimental else "stable")
    produced = sorted(p.relative_to(out) for p in out.rglob("*.json"))
    assert produced == sorted(p.relative_to(expected) for p in expected.rglob("*.json"))
    bundle = json.loads((out / "codex_app_server_protocol.schemas.json").read_text())
    assert "definitions" in bundle


def test_generate_ts_writes_the_reference_layout(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "ts"
    assert run_cli(server_env, "generate-ts", "--out", str(out)).returncode == 0
    assert (out / "index.ts").is_file() and (out / "v2" / "ThreadStartParams.ts").is_file()
    assert (
        (out / "ClientRequest.ts")
        .read_text()
        .startswith("// GENERATED CODE! DO NOT MODIFY BY HAND!")
    )


def test_stdio_from_files_and_dev_null(server_env: dict[str, str], tmp_path: Path) -> None:
    """Scripts redirect stdin/stdout to files, which asyncio cannot poll."""
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        json.dumps(
            {
                "id": 0,
                "method": "initialize",
                "params": {"clientInfo": {"name": "f", "version": "1"}},
            }
        )
        + "\n"
    )
    replies = tmp_path / "replies.jsonl"
    with requests.open("rb") as stdin, replies.open("wb") as stdout:
        completed = subprocess.run(
            [sys.executable, "-m", "codex_core"],
            env=server_env,
            stdin=stdin,
            stdout=stdout,
            timeout=30,
        )
    assert completed.returncode == 0
    assert json.loads(replies.read_text().splitlines()[0])["result"]["platformFamily"] == "unix"
    quiet = run_cli(server_env)  # stdin is /dev/null: the client is gone at once
    assert quiet.returncode == 0


def test_plugin_list_shows_the_default_catalog(server_env: dict[str, str]) -> None:
    completed = run_cli(server_env, "plugin", "list")
    assert completed.returncode == 0, completed.stderr
    assert "websocket@codex-core" in completed.stdout
