"""Accounts: login types, notifications and their order, storage, external tokens, rate limits.

Every test drives a real ``codex-app-server`` subprocess over stdio in a temporary CODEX_HOME;
remote services (the usage API) are loopback HTTP servers.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from codex_core.accounts.storage import KEYRING_SERVICE, keyring_account
from codex_core.testing import LoopbackServer, Reply
from codex_core.testing.file_keyring import file_keyring_env
from codex_core.testing.pytest_plugin import (
    LoopbackFactory,
    StdioServer,
    needs_reference,
    write_distribution,
)
from codex_core.testing.reference import reference_server_command


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def chatgpt_token(account_id: str = "acct-1", plan: str = "pro", email: str = "a@b.c") -> str:
    return jwt(
        {
            "email": email,
            "exp": 9_999_999_999,
            "https://api.openai.com/auth": {
                "chatgpt_plan_type": plan,
                "chatgpt_account_id": account_id,
                "chatgpt_user_id": "user-1",
            },
        }
    )


def messages(server: StdioServer, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """The next ``count`` messages in arrival order (responses and notifications alike)."""
    found = []
    deadline = time.monotonic() + timeout
    while len(found) < count:
        message = server._lines.get(timeout=max(0.01, deadline - time.monotonic()))
        assert message is not None, "server exited"
        found.append(message)
    return found


def without_time(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "emittedAtMs"}


LOGGED_OUT = {"account": None, "userId": None, "requiresOpenaiAuth": True, "workspaceRouting": None}


# --------------------------------------------------------------------------- apiKey


def test_api_key_login_order_storage_and_logout(server: StdioServer, codex_home: Path) -> None:
    assert server.result("account/read", {}) == LOGGED_OUT
    server.send(
        {"id": 1, "method": "account/login/start", "params": {"type": "apiKey", "apiKey": "sk-1"}}
    )
    got = [without_time(m) for m in messages(server, 3)]
    assert got == [
        {"id": 1, "result": {"type": "apiKey"}},
        {
            "method": "account/login/completed",
            "params": {
                "loginId": None,
                "success": True,
                "error": None,
                "onboardingEntrypoint": None,
            },
        },
        {"method": "account/updated", "params": {"authMode": "apikey", "planType": None}},
    ]
    auth = codex_home / "auth.json"
    assert json.loads(auth.read_text()) == {"auth_mode": "apikey", "OPENAI_API_KEY": "sk-1"}
    assert auth.stat().st_mode & 0o777 == 0o600
    assert server.result("account/read", {"refreshToken": True})["account"] == {"type": "apiKey"}
    assert server.error("account/rateLimits/read") == {
        "code": -32600,
        "message": "chatgpt authentication required to read rate limits",
    }

    server.send({"id": 2, "method": "account/logout"})
    got = [without_time(m) for m in messages(server, 2)]
    assert got == [
        {"id": 2, "result": {}},
        {"method": "account/updated", "params": {"authMode": None, "planType": None}},
    ]
    assert not auth.exists()
    assert server.result("account/read", {}) == LOGGED_OUT


def test_logged_out_errors_and_cancel(start_server: Any) -> None:
    server = start_server("--disable-plugin", "device-code", "--disable-plugin", "chatgpt-login")
    server.initialize()
    assert server.error("account/rateLimits/read") == {
        "code": -32600,
        "message": "codex account authentication required to read rate limits",
    }
    assert server.error("account/login/cancel", {"loginId": "abc"}) == {
        "code": -32600,
        "message": "invalid login id: abc",
    }
    assert server.result(
        "account/login/cancel", {"loginId": "00000000-0000-0000-0000-000000000000"}
    ) == {"status": "notFound"}
    # Login types of the protocol that no installed plugin provides.
    for missing in ("chatgptDeviceCode", "chatgpt"):
        assert server.error("account/login/start", {"type": missing}) == {
            "code": -32600,
            "message": f"Invalid request: unknown variant `{missing}`, "
            "expected one of `apiKey`, `chatgptAuthTokens`",
        }


def test_an_auth_file_that_cannot_be_replaced(server: StdioServer, codex_home: Path) -> None:
    """auth.json is a folder: reads see no login; writes fail in the reference's words."""
    (codex_home / "auth.json").mkdir()
    assert server.result("account/read", {}) == LOGGED_OUT
    assert server.error("account/logout") == {
        "code": -32603,
        "message": "logout failed: Is a directory (os error 21)",
    }
    assert server.error("account/login/start", {"type": "apiKey", "apiKey": "sk-test"}) == {
        "code": -32603,
        "message": "failed to save api key: Is a directory (os error 21)",
    }
    assert [path.name for path in codex_home.iterdir() if path.name.startswith(".auth")] == []


# --------------------------------------------------------------------------- external tokens


def test_chatgpt_auth_tokens_login_memory_only(raw_server: StdioServer, codex_home: Path) -> None:
    server = raw_server
    server.initialize(experimentalApi=True)
    params = {
        "type": "chatgptAuthTokens",
        "accessToken": chatgpt_token(),
        "chatgptAccountId": "acct-1",
        "chatgptPlanType": "plus",
    }
    server.send({"id": 1, "method": "account/login/start", "params": params})
    got = [without_time(m) for m in messages(server, 3)]
    assert got[0] == {"id": 1, "result": {"type": "chatgptAuthTokens"}}
    assert got[1]["method"] == "account/login/completed"
    assert got[1]["params"]["success"] is True
    assert got[2] == {
        "method": "account/updated",
        "params": {"authMode": "chatgptAuthTokens", "planType": "plus"},
    }
    read = server.result("account/read", {})
    assert read["account"] == {
        "type": "chatgpt",
        "email": "a@b.c",
        "planType": "plus",
        "workspaceName": None,
    }
    assert read["userId"] == "user-1"
    assert not (codex_home / "auth.json").exists()
    for other in ({"type": "apiKey", "apiKey": "sk"},):
        error = server.error("account/login/start", other)
        assert error["code"] == -32600
        assert error["message"].startswith("External auth is active.")
    server.result("account/logout")
    assert server.result("account/read", {}) == LOGGED_OUT
    error = server.error(
        "account/login/start", {**params, "accessToken": "not-a-jwt", "chatgptPlanType": None}
    )
    assert error == {
        "code": -32603,
        "message": "failed to set external auth: invalid ID token format",
    }


def test_chatgpt_auth_tokens_need_the_experimental_api(server: StdioServer) -> None:
    params = {"type": "chatgptAuthTokens", "accessToken": chatgpt_token(), "chatgptAccountId": "a"}
    assert server.error("account/login/start", params) == {
        "code": -32600,
        "message": "account/login/start.chatgptAuthTokens requires experimentalApi capability",
    }
    # The params are validated first, as the reference does.
    del params["accessToken"]
    assert server.error("account/login/start", params) == {
        "code": -32600,
        "message": "Invalid request: missing field `accessToken`",
    }


def test_forced_workspace_enforced_at_login(start_server: Any) -> None:
    server = start_server("-c", 'forced_chatgpt_workspace_id="ws-1"')
    server.initialize(experimentalApi=True)
    params = {
        "type": "chatgptAuthTokens",
        "accessToken": chatgpt_token("acct-2"),
        "chatgptAccountId": "acct-2",
    }
    assert server.error("account/login/start", params) == {
        "code": -32600,
        "message": 'External auth must use one of workspace(s) ["ws-1"], but received "acct-2".',
    }
    assert server.result("account/login/start", {**params, "chatgptAccountId": "ws-1"}) == {
        "type": "chatgptAuthTokens"
    }


REFRESH_PLUGIN = """
from codex_core.hookspecs import hookimpl
from codex_core.rpc import RpcMethod


async def refresh(ctx, params):
    from codex_core.accounts.service import AuthRefreshError

    accounts = ctx.kernel.services["accounts"]
    try:
        credentials = await accounts.refresh("unauthorized")
    except AuthRefreshError as exc:
        return {"error": exc.message, "canceled": exc.canceled}
    return {"headers": credentials.headers(), "plan": credentials.plan_type}


async def current(ctx, params):
    credentials = await ctx.kernel.services["accounts"].credentials()
    return {"headers": None if credentials is None else credentials.headers()}


@hookimpl
def codex_rpc_methods():
    return [
        RpcMethod("accountsProbe/refresh", refresh),
        RpcMethod("accountsProbe/current", current),
    ]
"""


@pytest.fixture
def refresh_server(plugin_site: Path, start_server: Any) -> Iterator[Any]:
    write_distribution(plugin_site, "accounts-probe", REFRESH_PLUGIN)

    def start(*args: str, env: dict[str, str] | None = None) -> StdioServer:
        server: StdioServer = start_server(*args, env=env)
        server.initialize(experimentalApi=True)
        server.result(
            "account/login/start",
            {
                "type": "chatgptAuthTokens",
                "accessToken": chatgpt_token("ws-1"),
                "chatgptAccountId": "ws-1",
            },
        )
        return server

    yield start


def test_external_refresh_answered(refresh_server: Any) -> None:
    server = refresh_server()
    server.send({"id": "r", "method": "accountsProbe/refresh", "params": {}})
    request = server.wait_server_request("account/chatgptAuthTokens/refresh")
    assert request["params"] == {"reason": "unauthorized", "previousAccountId": "ws-1"}
    new_token = chatgpt_token("ws-2", plan="team")
    server.send(
        {
            "id": request["id"],
            "result": {"accessToken": new_token, "chatgptAccountId": "ws-2"},
        }
    )
    answer = server.wait_response("r")["result"]
    assert answer["headers"] == {
        "authorization": f"Bearer {new_token}",
        "chatgpt-account-id": "ws-2",
    }
    assert answer["plan"] == "team"


def test_external_refresh_client_error_and_workspace(refresh_server: Any) -> None:
    server = refresh_server("-c", 'forced_chatgpt_workspace_id="ws-1"')
    server.send({"id": "r1", "method": "accountsProbe/refresh", "params": {}})
    request = server.wait_server_request("account/chatgptAuthTokens/refresh")
    server.send({"id": request["id"], "error": {"code": -32000, "message": "refresh failed"}})
    assert server.wait_response("r1")["result"] == {
        "error": "auth refresh request failed: code=-32000 message=refresh failed",
        "canceled": False,
    }
    # A token for another workspace is refused, and the next refresh asks again.
    server.send({"id": "r2", "method": "accountsProbe/refresh", "params": {}})
    request = server.wait_server_request("account/chatgptAuthTokens/refresh")
    server.send(
        {
            "id": request["id"],
            "result": {"accessToken": chatgpt_token("ws-9"), "chatgptAccountId": "ws-9"},
        }
    )
    assert "ws-9" in server.wait_response("r2")["result"]["error"]
    before = server.result("accountsProbe/current", {})["headers"]
    assert before["chatgpt-account-id"] == "ws-1"
    server.send({"id": "r3", "method": "accountsProbe/refresh", "params": {}})
    request = server.wait_server_request("account/chatgptAuthTokens/refresh")
    assert request["params"]["previousAccountId"] == "ws-1"


def test_external_refresh_timeout(refresh_server: Any) -> None:
    server = refresh_server(env={"CODEX_CORE_AUTH_REFRESH_TIMEOUT_SECONDS": "0.3"})
    started = time.monotonic()
    answer = server.result("accountsProbe/refresh", {})
    assert answer == {"error": "auth refresh request timed out after 0.3s", "canceled": False}
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------- storage


@pytest.mark.parametrize("mode", ["keyring", "auto"])
def test_keyring_storage(mode: str, start_server: Any, codex_home: Path, tmp_path: Path) -> None:
    secrets = tmp_path / "keyring.json"
    env = file_keyring_env(secrets)
    server = start_server("-c", f'cli_auth_credentials_store="{mode}"', env=env)
    server.initialize()
    (codex_home / "auth.json").write_text('{"OPENAI_API_KEY": "stale"}')
    server.result("account/login/start", {"type": "apiKey", "apiKey": "sk-keyring"})
    stored = json.loads(secrets.read_text())
    key = f"{KEYRING_SERVICE}\0{keyring_account(codex_home)}"
    assert json.loads(stored[key]) == {"auth_mode": "apikey", "OPENAI_API_KEY": "sk-keyring"}
    assert not (codex_home / "auth.json").exists()
    server.close()

    again = start_server("-c", f'cli_auth_credentials_store="{mode}"', env=env)
    again.initialize()
    assert again.result("account/read", {})["account"] == {"type": "apiKey"}
    again.result("account/logout")
    assert json.loads(secrets.read_text()) == {}


def test_auto_falls_back_to_file(start_server: Any, codex_home: Path, plugin_site: Path) -> None:
    (plugin_site / "broken_keyring.py").write_text(
        "from keyring.backend import KeyringBackend\n"
        "class Broken(KeyringBackend):\n"
        "    priority = 1\n"
        "    def get_password(self, s, u): raise RuntimeError('locked')\n"
        "    def set_password(self, s, u, p): raise RuntimeError('locked')\n"
        "    def delete_password(self, s, u): raise RuntimeError('locked')\n"
    )
    env = {"PYTHON_KEYRING_BACKEND": "broken_keyring.Broken"}
    server = start_server("-c", 'cli_auth_credentials_store="auto"', env=env)
    server.initialize()
    server.result("account/login/start", {"type": "apiKey", "apiKey": "sk-file"})
    assert json.loads((codex_home / "auth.json").read_text())["OPENAI_API_KEY"] == "sk-file"
    assert server.result("account/read", {})["account"] == {"type": "apiKey"}


def peer(codex_home: Path, *requests: tuple[str, Any]) -> list[dict[str, Any]]:
    """Run the reference server on ``codex_home`` for a few requests; their responses."""
    lines = [
        {
            "id": 0,
            "method": "initialize",
            "params": {"clientInfo": {"name": "t", "title": None, "version": "1"}},
        }
    ]
    lines += [{"id": i, "method": m, "params": p} for i, (m, p) in enumerate(requests, 1)]
    process = subprocess.Popen(
        reference_server_command(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "CODEX_HOME": str(codex_home)},
    )
    assert process.stdin is not None and process.stdout is not None
    answers: dict[int, dict[str, Any]] = {}
    for line in lines:
        process.stdin.write((json.dumps(line) + "\n").encode())
        process.stdin.flush()
        while line["id"] not in answers:
            message = json.loads(process.stdout.readline())
            if "id" in message and "method" not in message:
                answers[message["id"]] = message
    process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return [answers[i] for i in range(1, len(lines))]


@needs_reference
def test_reference_auth_json_is_read_by_us(start_server: Any, codex_home: Path) -> None:
    [login] = peer(codex_home, ("account/login/start", {"type": "apiKey", "apiKey": "sk-ref"}))
    assert login["result"] == {"type": "apiKey"}
    server = start_server()
    server.initialize()
    assert server.result("account/read", {})["account"] == {"type": "apiKey"}


@needs_reference
def test_our_auth_json_is_read_by_the_reference(server: StdioServer, codex_home: Path) -> None:
    server.result("account/login/start", {"type": "apiKey", "apiKey": "sk-ours"})
    server.close()
    [read] = peer(codex_home, ("account/read", {}))
    assert read["result"]["account"] == {"type": "apiKey"}


@needs_reference
def test_browser_login_start_matches_the_reference(start_server: Any, tmp_path: Path) -> None:
    """``account/login/start {type: chatgpt}``: the result and the authorize URL's query."""
    reference_home = tmp_path / "reference-home"
    reference_home.mkdir()
    theirs, _ = peer(reference_home, ("account/login/start", {"type": "chatgpt"}),
                     ("account/logout", {}))  # fmt: skip
    server = start_server("-c", "plugins.chatgpt-login.port=0")
    server.initialize()
    ours = server.result("account/login/start", {"type": "chatgpt"})
    server.result("account/logout")
    assert set(ours) == set(theirs["result"]) == {"type", "loginId", "authUrl"}

    def query(url: str) -> list[tuple[str, str]]:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
            "https://auth.openai.com/oauth/authorize"
        )
        return parse_qsl(parts.query)

    mine, reference = query(ours["authUrl"]), query(theirs["result"]["authUrl"])
    assert [key for key, _ in mine] == [key for key, _ in reference]
    varying = {"redirect_uri", "code_challenge", "state", "originator"}
    assert [kv for kv in mine if kv[0] not in varying] == [
        kv for kv in reference if kv[0] not in varying
    ]
    for pairs in (mine, reference):
        redirect = urlsplit(dict(pairs)["redirect_uri"])
        assert (redirect.scheme, redirect.hostname, redirect.path) == (
            "http", "127.0.0.1", "/auth/callback",
        )  # fmt: skip
    assert dict(mine)["originator"] == "pytest" and dict(reference)["originator"] == "t"


# --------------------------------------------------------------------------- rate limits


USAGE = {
    "plan_type": "pro",
    "rate_limit": {
        "primary_window": {
            "used_percent": 42,
            "limit_window_seconds": 18000,
            "reset_at": 1_900_000_000,
        },
        "secondary_window": None,
    },
    "credits": {"has_credits": True, "unlimited": False, "balance": "12.5"},
    "additional_rate_limits": [
        {
            "limit_name": "Spark",
            "metered_feature": "codex_spark",
            "rate_limit": {"primary_window": {"used_percent": 7}},
        }
    ],
}


@pytest.fixture
def usage_server(codex_loopback_factory: LoopbackFactory) -> LoopbackServer:
    """The usage API: every GET gets ``USAGE``."""
    return codex_loopback_factory(
        lambda request: Reply(200, USAGE) if request.method == "GET" else Reply(405, {})
    )


def test_rate_limits_from_usage_api(start_server: Any, usage_server: LoopbackServer) -> None:
    server = start_server("-c", f'chatgpt_base_url="{usage_server.url}/backend-api/"')
    server.initialize(experimentalApi=True)
    token = chatgpt_token("acct-7")
    server.result(
        "account/login/start",
        {"type": "chatgptAuthTokens", "accessToken": token, "chatgptAccountId": "acct-7"},
    )
    result = server.result("account/rateLimits/read")
    assert result["rateLimits"]["limitId"] == "codex"
    assert result["rateLimits"]["primary"] == {
        "usedPercent": 42,
        "windowDurationMins": 300,
        "resetsAt": 1_900_000_000,
    }
    assert result["rateLimits"]["credits"] == {
        "hasCredits": True,
        "unlimited": False,
        "balance": "12.5",
    }
    assert set(result["rateLimitsByLimitId"]) == {"codex", "codex_spark"}
    [request] = usage_server.requests
    assert (request.path, request.query) == ("/backend-api/wham/usage", {})
    assert request.headers["authorization"] == f"Bearer {token}"
    assert request.headers["chatgpt-account-id"] == "acct-7"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_external_refresh_after_the_client_left(codex_kernel_factory: Any) -> None:
    from codex_core.accounts.service import AuthRefreshError

    kernel = codex_kernel_factory()
    async with kernel:
        async with kernel.connect() as client:
            await client.initialize("pytest", "1.0", experimental_api=True)
            await client.request(
                "account/login/start",
                {
                    "type": "chatgptAuthTokens",
                    "accessToken": chatgpt_token(),
                    "chatgptAccountId": "acct-1",
                },
            )
        with pytest.raises(AuthRefreshError) as caught:
            await kernel.services["accounts"].refresh("unauthorized")
        assert caught.value.canceled
        assert caught.value.message == "auth refresh request canceled"
