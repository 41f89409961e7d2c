"""``mcpServer/oauth/login`` against a loopback authorization server and a protected MCP server
(``oauth_test_server.py``, both written with the SDK), through a real ``codex-app-server``; the
test plays the browser with httpx."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from codex_core.testing import ScriptedModelServer
from codex_core.testing.file_keyring import file_keyring_env
from codex_core.testing.pytest_plugin import ServerFactory, StdioServer, needs_reference
from codex_core.testing.reference import reference_server_command

OAUTH_SERVER = Path(__file__).with_name("oauth_test_server.py")
COMPLETED = "mcpServer/oauthLogin/completed"
#: Forces ``auto`` storage off the OS keyring, onto the file, whatever the machine has.
NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


@pytest.fixture
def protected(start_loopback: Callable[..., int]) -> str:
    return f"http://127.0.0.1:{start_loopback(OAUTH_SERVER)}/mcp"


def start(
    factory: ServerFactory,
    model: ScriptedModelServer,
    url: str,
    *config: str,
    env: dict[str, str] = NO_KEYRING,
) -> StdioServer:
    overrides = [f'mcp_servers.prot={{url="{url}"}}', *config]
    args = [arg for override in overrides for arg in ("-c", override)]
    server = factory(*model.config_args(), *args, env={**model.env, **env})
    server.initialize()
    return server


def status(server: StdioServer) -> dict[str, Any]:
    listed = server.result("mcpServerStatus/list", {}, timeout=30)
    return dict(listed["data"][0])


def browse(url: str) -> httpx.Response:
    """What the user's browser does: open the URL, follow the redirects back to the callback."""
    return httpx.get(url, follow_redirects=True, timeout=30)


def call_tool(server: StdioServer, tmp_path: Path, tool: str, **arguments: Any) -> Any:
    thread = server.result("thread/start", {"cwd": str(tmp_path)})["thread"]
    params = {"threadId": thread["id"], "server": "prot", "tool": tool, "arguments": arguments}
    return server.result("mcpServer/tool/call", params, timeout=30)


def stored(codex_home: Path) -> dict[str, Any]:
    path = codex_home / ".credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entries = json.loads(path.read_text())
    assert len(entries) == 1
    return dict(next(iter(entries.values())))


def test_login_then_the_protected_server_accepts_the_tokens(
    codex_server_factory: ServerFactory,
    codex_model_server: ScriptedModelServer,
    assert_schema: Callable[[str, Any], None],
    protected: str,
    codex_home: Path,
    tmp_path: Path,
) -> None:
    server = start(codex_server_factory, codex_model_server, protected)
    before = status(server)
    assert before["authStatus"] == "notLoggedIn" and before["tools"] == {}
    assert "log in with mcpServer/oauth/login" in before["toolsError"]

    started = server.result("mcpServer/oauth/login", {"name": "prot"}, timeout=30)
    assert set(started) == {"authorizationUrl", "loginId"}
    assert_schema("McpServerOauthLoginResponse", started)
    query = parse_qs(urlsplit(started["authorizationUrl"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["scope"] == ["mcp"]
    assert query["resource"] == [protected]
    assert query["redirect_uri"][0].startswith("http://127.0.0.1:")
    assert "/callback/" in query["redirect_uri"][0]

    page = browse(started["authorizationUrl"])
    assert page.status_code == 200
    assert page.text == "Authentication complete. You may close this window."
    completed = server.wait_notification(COMPLETED, timeout=30)["params"]
    assert completed == {
        "name": "prot", "threadId": None, "loginId": started["loginId"], "success": True,
    }  # fmt: skip
    assert_schema("McpServerOauthLoginCompletedNotification", completed)

    # `auto` storage without a keyring: the reference's fallback file, keyed as it keys it.
    entry = stored(codex_home)
    assert entry["server_name"] == "prot" and entry["server_url"] == protected
    assert entry["scopes"] == ["mcp"] and entry["refresh_token"] and entry["client_id"]

    after = status(server)
    assert after["authStatus"] == "oAuth" and set(after["tools"]) == {"echo", "grants", "revoke"}
    result = call_tool(server, tmp_path, "echo", text="hi")
    assert result["isError"] is False and result["content"][0]["text"] == "echo: hi"

    # The server stops accepting the access token (401): refreshed, and the call goes through.
    call_tool(server, tmp_path, "revoke")
    grants = call_tool(server, tmp_path, "grants")["content"][0]["text"]
    assert grants == "code,refresh"


def test_a_login_nobody_finishes_times_out(
    codex_server_factory: ServerFactory,
    codex_model_server: ScriptedModelServer,
    protected: str,
    codex_home: Path,
) -> None:
    server = start(codex_server_factory, codex_model_server, protected)
    started = server.result("mcpServer/oauth/login", {"name": "prot", "timeoutSecs": 1})
    completed = server.wait_notification(COMPLETED, timeout=30)["params"]
    assert completed == {
        "name": "prot", "threadId": None, "loginId": started["loginId"], "success": False,
        "error": "timed out waiting for OAuth callback",
    }  # fmt: skip
    # The callback listener is gone, nothing was stored, the server is still not logged in.
    redirect = parse_qs(urlsplit(started["authorizationUrl"]).query)["redirect_uri"][0]
    with pytest.raises(httpx.ConnectError):
        httpx.get(redirect, params={"code": "late", "state": "x"})
    assert not (codex_home / ".credentials.json").exists()
    assert status(server)["authStatus"] == "notLoggedIn"


def test_expired_tokens_are_refreshed_before_use(
    codex_server_factory: ServerFactory,
    codex_model_server: ScriptedModelServer,
    start_loopback: Callable[..., int],
    codex_home: Path,
    tmp_path: Path,
) -> None:
    # Access tokens that live one second: every use after the login needs a refresh.
    port = start_loopback(OAUTH_SERVER, env={"MCP_TEST_TOKEN_TTL": "1"})
    url = f"http://127.0.0.1:{port}/mcp"
    server = start(
        codex_server_factory, codex_model_server, url, 'mcp_oauth_credentials_store="file"'
    )
    started = server.result("mcpServer/oauth/login", {"name": "prot"}, timeout=30)
    assert browse(started["authorizationUrl"]).status_code == 200
    assert server.wait_notification(COMPLETED, timeout=30)["params"]["success"] is True
    first = stored(codex_home)["access_token"]

    grants = call_tool(server, tmp_path, "grants")["content"][0]["text"].split(",")
    assert grants[0] == "code" and "refresh" in grants[1:]
    entry = stored(codex_home)
    assert entry["access_token"] != first and entry["refresh_token"]
    assert status(server)["authStatus"] == "oAuth"


def test_keyring_mode_keeps_the_tokens_in_the_keyring(
    codex_server_factory: ServerFactory,
    codex_model_server: ScriptedModelServer,
    protected: str,
    codex_home: Path,
    tmp_path: Path,
) -> None:
    secrets = tmp_path / "keyring.json"
    env = file_keyring_env(secrets)
    keyring_mode = 'mcp_oauth_credentials_store="keyring"'
    server = start(codex_server_factory, codex_model_server, protected, keyring_mode, env=env)
    started = server.result("mcpServer/oauth/login", {"name": "prot"}, timeout=30)
    assert browse(started["authorizationUrl"]).status_code == 200
    assert server.wait_notification(COMPLETED, timeout=30)["params"]["success"] is True

    # The reference's entry: service `Codex MCP Credentials`, account `NAME|<hash of the URL>`.
    (entry, raw), *others = json.loads(secrets.read_text()).items()
    assert not others and not (codex_home / ".credentials.json").exists()
    service, account = entry.split("\0")
    name, digest = account.split("|")
    assert service == "Codex MCP Credentials" and name == "prot" and len(digest) == 16
    document = json.loads(raw)
    assert document["server_name"] == "prot" and document["url"] == protected
    response = document["token_response"]
    assert response["token_type"] == "bearer" and response["scope"] == "mcp"
    assert response["access_token"] and response["refresh_token"]
    assert isinstance(document["expires_at"], int) and document["client_id"]

    # The restarted connection read them back from the keyring.
    assert status(server)["authStatus"] == "oAuth"
    assert call_tool(server, tmp_path, "echo", text="k")["content"][0]["text"] == "echo: k"


def test_bad_logins_are_refused_or_reported(
    codex_server_factory: ServerFactory,
    codex_model_server: ScriptedModelServer,
    protected: str,
) -> None:
    stdio = f'mcp_servers.local={{command="{sys.executable}", args=["-c", "pass"]}}'
    server = start(codex_server_factory, codex_model_server, protected, stdio)
    unknown = server.error("mcpServer/oauth/login", {"name": "nope"})
    assert unknown == {"code": -32600, "message": "No MCP server named 'nope' found."}
    local = server.error("mcpServer/oauth/login", {"name": "local"})
    assert local == {
        "code": -32600, "message": "OAuth login is only supported for streamable HTTP servers.",
    }  # fmt: skip

    # The user declines in the browser: the provider sends the browser back with an error.
    started = server.result("mcpServer/oauth/login", {"name": "prot"}, timeout=30)
    redirect = parse_qs(urlsplit(started["authorizationUrl"]).query)["redirect_uri"][0]
    stray = httpx.get(redirect.rsplit("/", 1)[0] + "/elsewhere", params={"code": "c"})
    assert stray.status_code == 400 and stray.text == "Invalid OAuth callback"
    denied = httpx.get(redirect, params={"error": "access_denied", "error_description": "no"})
    assert denied.status_code == 400
    completed = server.wait_notification(COMPLETED, timeout=30)["params"]
    assert completed["success"] is False
    assert completed["error"] == "OAuth provider returned `access_denied`: no"


@needs_reference
def test_the_reference_server_uses_our_login(
    codex_server_factory: ServerFactory,
    codex_model_server: ScriptedModelServer,
    protected: str,
    codex_env: dict[str, str],
    codex_home: Path,
    tmp_path: Path,
) -> None:
    """Tokens stored by us (file fallback) are the reference's: it finds them and connects."""
    server = start(codex_server_factory, codex_model_server, protected)
    started = server.result("mcpServer/oauth/login", {"name": "prot"}, timeout=30)
    assert browse(started["authorizationUrl"]).status_code == 200
    assert server.wait_notification(COMPLETED, timeout=30)["params"]["success"] is True
    server.close()

    argv = [*reference_server_command(), "-c", f'mcp_servers.prot={{url="{protected}"}}']
    reference = StdioServer(argv, {**codex_env, **NO_KEYRING}, tmp_path)
    try:
        reference.initialize()
        theirs = reference.result("mcpServerStatus/list", {}, timeout=60)["data"][0]
    finally:
        reference.close()
    assert theirs["authStatus"] == "oAuth" and "echo" in theirs["tools"]
