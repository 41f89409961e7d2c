"""``modelProvider/config/write`` beyond what the conformance case compares with the reference
(``tests/conformance/model_provider_config_write.jsonl``): concurrent creations, what lands in
config.toml, and providers the user's file does not own."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from codex_core.testing.pytest_plugin import StdioServer

WRITE = "modelProvider/config/write"


def _gateway(**fields: Any) -> dict[str, Any]:
    return {"settings": {"type": "customGateway", **fields}}


def test_concurrent_creations_get_distinct_ids(codex_home: Path, server: StdioServer) -> None:
    params = _gateway(name="Team GW", baseUrl="http://127.0.0.1:9/v1")
    for request_id in (101, 102, 103):  # sent back to back, before any is answered
        server.send({"id": request_id, "method": WRITE, "params": params})
    ids = sorted(
        server.wait_response(request_id)["result"]["provider"]["id"]
        for request_id in (101, 102, 103)
    )
    assert ids == ["team-gw", "team-gw-2", "team-gw-3"]
    written = tomllib.loads((codex_home / "config.toml").read_text())["model_providers"]
    assert sorted(written) == ids


def test_written_toml_keeps_comments_and_is_the_hand_written_form(
    codex_home: Path, start_server: Any
) -> None:
    (codex_home / "config.toml").write_text('# my settings\nmodel = "gpt-5.1"  # pinned\n')
    server: StdioServer = start_server()
    server.initialize()
    created = server.result(WRITE, _gateway(name="Lab", baseUrl="https://lab.test/v1"))
    assert created["provider"]["id"] == "lab"
    server.result(WRITE, _gateway(providerId="lab", envKey="LAB_KEY"))
    server.result(
        WRITE, {"settings": {"type": "bedrock", "providerId": "amazon-bedrock", "region": "r1"}}
    )
    text = (codex_home / "config.toml").read_text()
    assert text.startswith('# my settings\nmodel = "gpt-5.1"  # pinned\n')
    data = tomllib.loads(text)
    assert data["model_providers"] == {
        "lab": {
            "base_url": "https://lab.test/v1",
            "name": "Lab",
            "wire_api": "responses",
            "env_key": "LAB_KEY",
        },
        "amazon-bedrock": {"aws": {"region": "r1"}},
    }
    listed = {entry["id"]: entry for entry in server.result("modelProvider/list", {})["data"]}
    assert listed["lab"]["settings"]["auth"] == {"mode": "environmentVariable", "envKey": "LAB_KEY"}
    assert listed["amazon-bedrock"]["settings"] == {
        "type": "bedrock",
        "profile": None,
        "region": "r1",
    }


def test_a_provider_outside_the_users_file_is_read_only(
    codex_home: Path, start_server: Any
) -> None:
    """Only the user's config.toml is written: a provider from ``-c`` flags is read-only (as
    the reference answers), one that is nowhere unknown."""
    server: StdioServer = start_server(
        "-c", 'model_providers.flagged={name="Flagged", base_url="http://h/v1"}'
    )
    server.initialize()
    error = server.error(WRITE, _gateway(providerId="flagged", name="Renamed"))
    assert error["code"] == -32600
    assert error["message"] == "This configuration field is read-only."
    assert error["data"] == {"config_write_error_code": "configLayerReadonly"}
    error = server.error(WRITE, _gateway(providerId="elsewhere", name="Renamed"))
    assert (error["message"], error["data"]) == (
        "Unknown provider ID.",
        {"config_write_error_code": "configPathNotFound"},
    )
    assert not (codex_home / "config.toml").exists()
