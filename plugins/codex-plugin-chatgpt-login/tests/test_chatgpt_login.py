"""Browser login through a real server subprocess against a loopback fake issuer.

The test plays the browser with httpx: it opens ``authUrl``, the fake issuer's authorize
endpoint redirects to the plugin's callback server with a code, the callback redirects to
``/success``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

from codex_core.testing import LoopbackRequest, Reply
from codex_core.testing.pytest_plugin import LoopbackFactory, StdioServer

KEY = "issuer-signing-key-for-tests-only-32b"


def id_token(account_id: str = "acct-7", plan: str = "plus") -> str:
    return jwt.encode(
        {
            "email": "user@example.com",
            "exp": 4_102_444_800,
            "https://api.openai.com/auth": {
                "chatgpt_plan_type": plan,
                "chatgpt_account_id": account_id,
                "chatgpt_user_id": "user-7",
            },
        },
        KEY,
        algorithm="HS256",
    )


def token_fields(request: LoopbackRequest) -> dict[str, str]:
    """A token request's fields: a form, or the JSON of a refresh."""
    if request.headers.get("content-type") == "application/json":
        return dict(request.json)
    return request.form


class FakeIssuer:
    """``/oauth/authorize`` redirects to the callback; ``/oauth/token`` issues tokens."""

    def __init__(self, start: LoopbackFactory) -> None:
        self.account_id = "acct-7"
        self.code_status = 200
        self.server = start(self.handle)
        self.url = self.server.url

    @property
    def token_requests(self) -> list[dict[str, str]]:
        return [token_fields(r) for r in self.server.requests if r.method == "POST"]

    def handle(self, request: LoopbackRequest) -> Reply:
        if request.method == "GET":
            if request.path != "/oauth/authorize":
                return Reply(404, {})
            back = urlencode({"code": "code-1", "state": request.query["state"]})
            return Reply.redirect(f"{request.query['redirect_uri']}?{back}")
        form = token_fields(request)
        if form.get("grant_type") == "authorization_code":
            if self.code_status != 200:
                return Reply(self.code_status, {"error": "invalid_grant"})
            return Reply(
                200,
                {
                    "id_token": id_token(self.account_id),
                    "access_token": id_token(self.account_id),
                    "refresh_token": "rt-1",
                },
            )
        if form.get("requested_token") == "openai-api-key":
            return Reply(200, {"access_token": "sk-exchanged"})
        if form.get("grant_type") == "refresh_token":
            return Reply(200, {"access_token": id_token(plan="pro")})
        return Reply(400, {"error": "unsupported_grant_type"})


@pytest.fixture
def issuer(codex_loopback_factory: LoopbackFactory) -> FakeIssuer:
    return FakeIssuer(codex_loopback_factory)


@pytest.fixture
def start(codex_server_factory: Any, issuer: FakeIssuer) -> Any:
    def run(*args: str) -> StdioServer:
        server: StdioServer = codex_server_factory(
            "-c", f'plugins.chatgpt-login.issuer="{issuer.url}"',
            "-c", "plugins.chatgpt-login.port=0",
            *args,
        )  # fmt: skip
        server.initialize()
        return server

    return run


def login(server: StdioServer) -> tuple[str, str, dict[str, str]]:
    """``account/login/start``: the login id, the auth URL and its query."""
    result = server.result("account/login/start", {"type": "chatgpt"})
    assert set(result) == {"type", "loginId", "authUrl"} and result["type"] == "chatgpt"
    query = {k: v[0] for k, v in parse_qs(urlsplit(result["authUrl"]).query).items()}
    return result["loginId"], result["authUrl"], query


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_browser_login_success(start: Any, issuer: FakeIssuer, codex_home: Path) -> None:
    server = start()
    login_id, auth_url, query = login(server)
    port = urlsplit(query["redirect_uri"]).port
    # The reference's 0.169 query: these keys in this order, form-encoded.
    assert auth_url.startswith(
        f"{issuer.url}/oauth/authorize?response_type=code&client_id=app_EMoamEEZ73f0CkXaXp7hrann"
        f"&redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fauth%2Fcallback&code_challenge="
    )
    assert list(query) == [
        "response_type", "client_id", "redirect_uri", "code_challenge", "code_challenge_method",
        "state", "scope", "id_token_add_organizations", "codex_cli_simplified_flow", "originator",
    ]  # fmt: skip
    assert "&scope=openid+profile+email+offline_access+api.connectors.read+" in auth_url
    assert query["client_id"] == "app_EMoamEEZ73f0CkXaXp7hrann"
    assert query["scope"] == (
        "openid profile email offline_access api.connectors.read api.connectors.invoke"
    )
    assert query["code_challenge_method"] == "S256"
    assert query["id_token_add_organizations"] == "true"
    assert query["codex_cli_simplified_flow"] == "true"
    assert query["originator"] == "pytest"
    assert "allowed_workspace_id" not in query

    page = httpx.get(auth_url, follow_redirects=True, timeout=10)
    assert page.status_code == 200
    assert page.url.path == "/success"
    assert "Signed in" in page.text

    # account/updated follows account/login/completed, as the reference orders them.
    updated = server.wait_notification("account/updated")
    assert [n["method"] for n in server.notifications] == ["account/login/completed"]
    completed = server.wait_notification("account/login/completed")
    assert completed["params"] == {
        "loginId": login_id,
        "success": True,
        "error": None,
        "onboardingEntrypoint": None,
    }
    assert updated["params"] == {"authMode": "chatgpt", "planType": "plus"}
    assert port is not None and port_is_free(port)

    exchange, api_key = issuer.token_requests[:2]
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["code"] == "code-1"
    assert exchange["redirect_uri"] == query["redirect_uri"]
    verifier = exchange["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge.decode() == query["code_challenge"]
    assert api_key["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert api_key["subject_token_type"] == "urn:ietf:params:oauth:token-type:id_token"

    auth_file = codex_home / "auth.json"
    auth = json.loads(auth_file.read_text())
    assert auth["auth_mode"] == "chatgpt"
    assert auth["OPENAI_API_KEY"] == "sk-exchanged"
    assert auth["tokens"]["refresh_token"] == "rt-1"
    assert auth["tokens"]["account_id"] == "acct-7"
    assert jwt.decode(auth["tokens"]["id_token"], KEY, algorithms=["HS256"])["email"] == (
        "user@example.com"
    )
    assert isinstance(auth["last_refresh"], str)
    assert auth_file.stat().st_mode & 0o777 == 0o600
    read = server.result("account/read", {})
    assert read["account"] == {
        "type": "chatgpt",
        "email": "user@example.com",
        "planType": "plus",
        "workspaceName": None,
    }
    assert read["userId"] == "user-7"

    # Refreshes go to the issuer that granted the login.
    read = server.result("account/read", {"refreshToken": True})
    assert issuer.token_requests[-1] == {
        "client_id": "app_EMoamEEZ73f0CkXaXp7hrann",
        "grant_type": "refresh_token",
        "refresh_token": "rt-1",
    }
    assert read["account"]["planType"] == "plus"  # the plan comes from the ID token, unchanged
    assert json.loads(auth_file.read_text())["tokens"]["access_token"] == id_token(plan="pro")


def test_wrong_workspace_fails_and_stores_nothing(
    start: Any, issuer: FakeIssuer, codex_home: Path
) -> None:
    server = start("-c", 'forced_chatgpt_workspace_id="ws-allowed"')
    login_id, auth_url, query = login(server)
    assert query["allowed_workspace_id"] == "ws-allowed"
    page = httpx.get(auth_url, follow_redirects=True, timeout=10)
    assert "Login is restricted to workspace id(s) ws-allowed." in page.text
    completed = server.wait_notification("account/login/completed")["params"]
    assert completed == {
        "loginId": login_id,
        "success": False,
        "error": "Login server error: Login is restricted to workspace id(s) ws-allowed.",
        "onboardingEntrypoint": None,
    }
    server.barrier()
    assert not any(n["method"] == "account/updated" for n in server.notifications)
    assert not (codex_home / "auth.json").exists()
    assert server.result("account/read", {})["account"] is None


def test_cancel_frees_the_port(start: Any, codex_home: Path) -> None:
    server = start()
    login_id, _, query = login(server)
    port = urlsplit(query["redirect_uri"]).port
    assert port is not None and not port_is_free(port)
    assert server.result("account/login/cancel", {"loginId": login_id}) == {"status": "canceled"}
    completed = server.wait_notification("account/login/completed")["params"]
    assert completed["loginId"] == login_id
    assert completed["success"] is False
    assert completed["error"] == "Login server error: Login was not completed"
    assert port_is_free(port)
    assert server.result("account/login/cancel", {"loginId": login_id}) == {"status": "notFound"}
    server.barrier()
    assert not any(n["method"] == "account/updated" for n in server.notifications)
    assert not (codex_home / "auth.json").exists()


def test_timeout(start: Any) -> None:
    server = start("-c", "plugins.chatgpt-login.timeout_seconds=0.5")
    login_id, _, query = login(server)
    completed = server.wait_notification("account/login/completed")["params"]
    assert completed == {
        "loginId": login_id,
        "success": False,
        "error": "Login timed out",
        "onboardingEntrypoint": None,
    }
    port = urlsplit(query["redirect_uri"]).port
    assert port is not None and port_is_free(port)


def test_state_mismatch_is_refused_and_the_login_goes_on(start: Any, issuer: FakeIssuer) -> None:
    server = start()
    login_id, auth_url, query = login(server)
    forged = f"{query['redirect_uri']}?{urlencode({'code': 'stolen', 'state': 'forged'})}"
    refused = httpx.get(forged, timeout=10)
    assert (refused.status_code, refused.text) == (400, "State mismatch")
    assert issuer.token_requests == []
    server.barrier()
    assert not any(n["method"] == "account/login/completed" for n in server.notifications)
    httpx.get(auth_url, follow_redirects=True, timeout=10)
    completed = server.wait_notification("account/login/completed")["params"]
    assert completed["loginId"] == login_id and completed["success"] is True


def test_token_exchange_failure_and_new_login_cancels_old(start: Any, issuer: FakeIssuer) -> None:
    issuer.code_status = 400
    server = start()
    first, _, _ = login(server)
    second, auth_url, _ = login(server)
    cancelled = server.wait_notification("account/login/completed")["params"]
    assert cancelled["loginId"] == first
    assert cancelled["error"] == "Login server error: Login was not completed"
    page = httpx.get(auth_url, follow_redirects=True, timeout=10)
    assert "Token exchange failed" in page.text
    failed = server.wait_notification("account/login/completed")["params"]
    assert failed["loginId"] == second
    assert failed["error"] == (
        "Login server error: Token exchange failed: token endpoint returned status "
        "400 Bad Request: invalid_grant"
    )


def test_refused_with_forced_api_login(start: Any) -> None:
    server = start("-c", 'forced_login_method="api"')
    assert server.error("account/login/start", {"type": "chatgpt"}) == {
        "code": -32600,
        "message": "ChatGPT login is disabled. Use API key login instead.",
    }
