"""``experimentalFeature/enablement/set`` and ``modelProvider/capabilities/read``, compared with
the official server: which features a client may switch at run time, how that shows in
``experimentalFeature/list``, and that ``[features]`` in config.toml still wins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codex_core.cli import server_command
from codex_core.testing.pytest_plugin import StdioServer, needs_reference
from codex_core.testing.reference import reference_server_command
from codex_core.testing.session import NO_PARAMS, Session, run_session

SWITCHABLE = [
    "auth_elicitation",
    "memories",
    "mentions_v2",
    "remote_control",
    "remote_plugin",
    "tool_suggest",
]
NOT_SWITCHABLE = ["apps", "plugins", "tool_search", "undo", "memory_tool", "no_such_feature"]


def run_both(
    tmp_path: Path, env: dict[str, str], config: str, requests: list[tuple[str, Any]]
) -> tuple[Session, Session]:
    sessions = []
    reference = reference_server_command()
    assert reference is not None
    for name, command, extra in (("ours", server_command(), env), ("theirs", reference, None)):
        home = tmp_path / name
        home.mkdir()
        (home / "config.toml").write_text(config)
        sessions.append(run_session(command, home, requests, env=extra))
    return sessions[0], sessions[1]


def enabled(result: dict[str, Any], names: list[str]) -> dict[str, bool]:
    return {row["name"]: row["enabled"] for row in result["data"] if row["name"] in names}


@needs_reference
def test_enablement_matches_the_reference(tmp_path: Path, codex_env: dict[str, str]) -> None:
    everything = SWITCHABLE + NOT_SWITCHABLE
    requests: list[tuple[str, Any]] = [
        ("experimentalFeature/enablement/set", {"enablement": dict.fromkeys(everything, True)}),
        ("experimentalFeature/list", {}),
        ("experimentalFeature/enablement/set", {"enablement": {"memories": False}}),
        ("experimentalFeature/enablement/set", {"enablement": {}}),
        ("experimentalFeature/list", {}),
        ("config/read", {}),
        # Errors: no map, a value that is no boolean, no params.
        ("experimentalFeature/enablement/set", {}),
        ("experimentalFeature/enablement/set", {"enablement": {"memories": 1}}),
        ("experimentalFeature/enablement/set", NO_PARAMS),
    ]
    ours, theirs = run_both(tmp_path, codex_env, "", requests)
    assert ours.results[0] == theirs.results[0] == {"enablement": dict.fromkeys(SWITCHABLE, True)}
    assert (
        ours.results[2:4]
        == theirs.results[2:4]
        == [
            {"enablement": {"memories": False}},
            {"enablement": {}},
        ]
    )
    for index in (1, 4):
        assert enabled(ours.results[index], everything) == enabled(
            theirs.results[index], everything
        )
    assert enabled(ours.results[4], ["memories", "tool_suggest"]) == {
        "memories": False,
        "tool_suggest": True,
    }
    # Errors: the same, but for the path of a nested field ours adds (serde names none).
    # config/read shows the switches too (memories off again, the rest on).
    features = ours.results[5]["config"]["features"]
    assert features == theirs.results[5]["config"]["features"]
    assert features["memories"] is False and features["remote_control"] is True
    for mine, reference in zip(ours.results[6:], theirs.results[6:], strict=True):
        assert mine["error"]["code"] == reference["error"]["code"]
        assert mine["error"]["message"].split(" at `")[0] == reference["error"]["message"]


@needs_reference
def test_config_file_wins(tmp_path: Path, codex_env: dict[str, str]) -> None:
    config = "[features]\nmemories = false\ntool_suggest = true\n"
    requests: list[tuple[str, Any]] = [
        (
            "experimentalFeature/enablement/set",
            {"enablement": {"memories": True, "tool_suggest": False}},
        ),
        ("experimentalFeature/list", {}),
        ("config/read", {}),
    ]
    ours, theirs = run_both(tmp_path, codex_env, config, requests)
    features = ours.results[2]["config"]["features"]
    assert features == theirs.results[2]["config"]["features"]
    assert (features["memories"], features["tool_suggest"]) == (False, True)
    assert ours.results[0] == theirs.results[0]
    names = ["memories", "tool_suggest"]
    assert (
        enabled(ours.results[1], names)
        == enabled(theirs.results[1], names)
        == {
            "memories": False,
            "tool_suggest": True,
        }
    )


@needs_reference
@pytest.mark.parametrize(
    "config",
    [
        "",
        'model_provider = "ollama"\n',
        'model_provider = "gw"\n[model_providers.gw]\nname = "gw"\n'
        'base_url = "http://127.0.0.1:9/v1"\nwire_api = "responses"\n',
    ],
    ids=["openai", "ollama", "custom"],
)
def test_capabilities_match_the_reference(
    tmp_path: Path, codex_env: dict[str, str], config: str
) -> None:
    requests: list[tuple[str, Any]] = [
        ("modelProvider/capabilities/read", {}),
        ("modelProvider/capabilities/read", NO_PARAMS),
    ]
    ours, theirs = run_both(tmp_path, codex_env, config, requests)
    assert ours.results == theirs.results
    assert ours.results[0] == {"imageGeneration": True, "webSearch": True}


def test_enablement_is_per_process(start_server: Any) -> None:
    """Lost at exit: a new server starts from the defaults again."""
    first: StdioServer = start_server()
    first.initialize()
    first.result("experimentalFeature/enablement/set", {"enablement": {"memories": True}})
    assert enabled(first.result("experimentalFeature/list", {}), ["memories"]) == {"memories": True}
    first.close()
    second: StdioServer = start_server()
    second.initialize()
    assert enabled(second.result("experimentalFeature/list", {}), ["memories"]) == {
        "memories": False
    }
