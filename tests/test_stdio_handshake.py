"""``codex-app-server`` over stdio answers ``initialize`` while its plugins are still loading.

A test plugin holds the kernel's start until the test lets it go, so whether the answer came
early is observed, not timed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codex_core.testing.pytest_plugin import (
    CodexCli,
    ServerFactory,
    StdioServer,
    write_distribution,
)

CLIENT_INFO = {"name": "pytest", "title": None, "version": "1.0"}

#: A plugin whose import waits (at most 30 s) until the file ``release`` exists.
HELD_AT_IMPORT = """
import pathlib, time

RELEASE = pathlib.Path({release!r})
deadline = time.monotonic() + 30
while not RELEASE.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
"""


def held_server(
    codex_plugin_site: Path, factory: ServerFactory, tmp_path: Path
) -> tuple[StdioServer, Path]:
    release = tmp_path / "release"
    source = HELD_AT_IMPORT.format(release=str(release))
    write_distribution(codex_plugin_site, "codex-plugin-held", source)
    return factory(), release


def test_initialize_is_answered_before_the_plugins_have_loaded(
    codex_plugin_site: Path, codex_server_factory: ServerFactory, tmp_path: Path, codex_home: Path
) -> None:
    server, release = held_server(codex_plugin_site, codex_server_factory, tmp_path)
    result = server.result("initialize", {"clientInfo": CLIENT_INFO})
    assert not release.exists()  # the plugin is still loading
    assert result["codexHome"] == str(codex_home)
    assert result["userAgent"].endswith("(pytest; 1.0)")
    server.send({"id": "list", "method": "thread/list", "params": {}})
    release.touch()
    assert server.wait_response("list", timeout=30)["result"]["data"] == []
    # The connection adopted the handshake: a second one is refused as usual.
    assert server.error("initialize", {"clientInfo": CLIENT_INFO})["message"] == (
        "Already initialized"
    )
    server.barrier()
    assert server.unanswered() == {}


def test_the_adopted_handshake_keeps_capabilities_and_startup_notifications(
    codex_plugin_site: Path, codex_server_factory: ServerFactory, tmp_path: Path, codex_home: Path
) -> None:
    (codex_home / "config.toml").write_text("model = [\n")
    server, release = held_server(codex_plugin_site, codex_server_factory, tmp_path)
    opted_out = {
        "clientInfo": CLIENT_INFO,
        "capabilities": {"experimentalApi": True, "optOutNotificationMethods": ["thread/started"]},
    }
    server.result("initialize", opted_out)
    release.touch()
    warning = server.wait_notification("configWarning", timeout=30)
    assert warning["params"]["summary"] == "Invalid configuration; using defaults."
    # experimentalApi was adopted: an experimental method is served, not gated.
    assert "data" in server.result("collaborationMode/list", {})
    # optOutNotificationMethods too: the thread starts without a thread/started notification.
    server.result("thread/start", {})
    server.barrier()
    assert [n for n in server.notifications if n["method"] == "thread/started"] == []


@pytest.mark.parametrize("cause", ["-c profile", "--profile clash", "requirements.toml"])
def test_a_config_the_server_refuses_gets_no_early_answer(
    cause: str, codex_cli: CodexCli, codex_home: Path, codex_env: dict[str, str], tmp_path: Path
) -> None:
    """Each way ``Config.fatal`` can stop a start (``config.locations.may_refuse_start``)."""
    args = {"-c profile": ["-c", "profile=work"], "--profile clash": ["--profile", "p"]}
    (codex_home / "config.toml").write_text('[profiles.p]\nmodel = "x"\n')
    system = tmp_path / "etc-codex"
    system.mkdir()
    codex_env["CODEX_CORE_SYSTEM_CONFIG_DIR"] = str(system)
    if cause == "requirements.toml":
        (system / "requirements.toml").write_text(
            'allowed_sandbox_modes = ["danger-full-access"]\n'
        )
    initialize = {"id": 1, "method": "initialize", "params": {"clientInfo": CLIENT_INFO}}
    done = codex_cli(*args.get(cause, []), input=json.dumps(initialize) + "\n")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("codex-app-server: ")


def test_an_initialize_split_across_writes_is_answered(
    codex_server_factory: ServerFactory,
) -> None:
    server = codex_server_factory()
    line = json.dumps({"id": 1, "method": "initialize", "params": {"clientInfo": CLIENT_INFO}})
    assert server.process.stdin is not None
    server.process.stdin.write(line[:20].encode())
    server.process.stdin.flush()
    server.send_raw(line[20:])
    assert server.wait_response(1)["result"]["platformOs"] == "linux"
    assert server.result("thread/list", {})["data"] == []


def test_what_the_early_check_does_not_know_gets_the_validators_answer(
    codex_server_factory: ServerFactory,
) -> None:
    """Unusual params skip the early answer; the connection's validator judges them."""
    server = codex_server_factory()
    assert server.error("initialize", {"clientInfo": {"name": "pytest"}}) == {
        "code": -32600,
        "message": "Invalid request: missing field `version` at `clientInfo.version`",
    }
    extensions = {"clientInfo": CLIENT_INFO, "capabilities": {"extensions": {"x": {}}}}
    assert server.result("initialize", extensions)["platformOs"] == "linux"


def test_a_first_message_other_than_initialize_is_refused_as_before(
    codex_server_factory: ServerFactory,
) -> None:
    server = codex_server_factory()
    assert server.error("thread/list", {}) == {"code": -32600, "message": "Not initialized"}
    server.send_raw(b"not json")
    assert server.result("initialize", {"clientInfo": CLIENT_INFO})["platformFamily"] == "unix"


def test_stdin_closed_before_initialize_ends_the_server(
    codex_server_factory: ServerFactory,
) -> None:
    server = codex_server_factory()
    assert server.close() == 0
    assert "Traceback" not in server.stderr


def test_requests_pipelined_behind_an_early_initialize_are_answered_in_order(
    codex_server_factory: ServerFactory,
) -> None:
    server = codex_server_factory()
    lines = [
        {"id": 1, "method": "initialize", "params": {"clientInfo": CLIENT_INFO}},
        {"method": "initialized"},
        {"id": 2, "method": "thread/list", "params": {}},
        {"id": 3, "method": "initialize", "params": {"clientInfo": CLIENT_INFO}},
    ]
    server.send_raw("\n".join(json.dumps(line) for line in lines))
    assert server.wait_response(1)["result"]["platformOs"] == "linux"
    assert server.wait_response(2)["result"]["data"] == []
    assert server.wait_response(3)["error"]["message"] == "Already initialized"
