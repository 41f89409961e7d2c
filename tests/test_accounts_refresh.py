"""Managed ChatGPT tokens: refresh before expiry and after a 401, and poisoning.

A real ``codex-app-server`` subprocess reads a ChatGPT ``auth.json`` from its temporary
CODEX_HOME; a loopback token endpoint (``CODEX_REFRESH_TOKEN_URL_OVERRIDE``) counts the
refresh requests it gets; the scripted model stands in for the model API.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_accounts import jwt

from codex_core.testing import Reply, ScriptedModelServer, http_error, message
from codex_core.testing.pytest_plugin import LoopbackFactory, StdioServer

REUSED = (
    "Your access token could not be refreshed because your refresh token was already used. "
    "Please log out and sign in again."
)
EXPIRED = (
    "Your access token could not be refreshed because your refresh token has expired. "
    "Please log out and sign in again."
)


def access_token(name: str, expires_at: int = 4_102_444_800) -> str:
    return jwt({"exp": expires_at, "name": name})


ID_TOKEN = jwt(
    {
        "email": "dev@example.com",
        "https://api.openai.com/auth": {"chatgpt_plan_type": "plus", "chatgpt_account_id": "a-1"},
    }
)


def write_auth(codex_home: Path, access: str, refresh: str = "rt-old") -> dict[str, Any]:
    auth = {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": ID_TOKEN,
            "access_token": access,
            "refresh_token": refresh,
            "account_id": "a-1",
        },
        "last_refresh": "2026-01-01T00:00:00.000000Z",
    }
    (codex_home / "auth.json").write_text(json.dumps(auth))
    return auth


class TokenEndpoint:
    """Answers ``POST /oauth/token`` with ``status`` and ``body``; records each request."""

    def __init__(self, start: LoopbackFactory) -> None:
        self.status = 200
        self.body: Any = {"access_token": access_token("new"), "refresh_token": "rt-new"}
        self.server = start(lambda request: Reply(self.status, self.body))
        self.url = f"{self.server.url}/oauth/token"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of the refresh requests, oldest first."""
        return [request.json for request in self.server.requests]

    def fail(self, status: int, code: str) -> None:
        self.status = status
        self.body = {"error": {"message": f"{code} (from the fake)", "code": code}}


@pytest.fixture
def token_endpoint(codex_loopback_factory: LoopbackFactory) -> TokenEndpoint:
    return TokenEndpoint(codex_loopback_factory)


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def start(start_server: Any, token_endpoint: TokenEndpoint, model: ScriptedModelServer) -> Any:
    def run() -> StdioServer:
        server: StdioServer = start_server(
            "-c", f'openai_base_url="{model.base_url}"', "-c", 'model="mock-model"',
            env={"OPENAI_API_KEY": "", "CODEX_REFRESH_TOKEN_URL_OVERRIDE": token_endpoint.url},
        )  # fmt: skip
        server.initialize()
        return server

    return run


def run_turn(server: StdioServer) -> dict[str, Any]:
    thread = server.result("thread/start", {})["thread"]["id"]
    server.result("turn/start", {"threadId": thread, "input": [{"type": "text", "text": "hi"}]})
    turn: dict[str, Any] = server.wait_notification("turn/completed", timeout=20)["params"]["turn"]
    return turn


def test_an_access_token_about_to_expire_is_refreshed_before_the_request(
    start: Any, token_endpoint: TokenEndpoint, model: ScriptedModelServer, codex_home: Path
) -> None:
    # Two minutes left: within the reference's five-minute window.
    write_auth(codex_home, access_token("old", expires_at=int(time.time()) + 120))
    model.add(message("hello"))
    server = start()
    assert run_turn(server)["status"] == "completed"
    assert token_endpoint.requests == [
        {
            "client_id": "app_EMoamEEZ73f0CkXaXp7hrann",
            "grant_type": "refresh_token",
            "refresh_token": "rt-old",
        }
    ]
    [sent] = model.requests
    assert sent.headers["authorization"] == f"Bearer {access_token('new')}"
    assert sent.headers["chatgpt-account-id"] == "a-1"
    stored = json.loads((codex_home / "auth.json").read_text())
    assert stored["tokens"]["access_token"] == access_token("new")
    assert stored["tokens"]["refresh_token"] == "rt-new"
    assert stored["tokens"]["id_token"] == ID_TOKEN
    assert stored["last_refresh"] > "2026-01-01T00:00:00.000000Z"


def test_a_fresh_token_is_not_refreshed_and_a_401_refreshes_once(
    start: Any, token_endpoint: TokenEndpoint, model: ScriptedModelServer, codex_home: Path
) -> None:
    old = access_token("old", expires_at=int(time.time()) + 3600)
    write_auth(codex_home, old)
    model.add(http_error(401, "expired", type="invalid_request_error"), message("again"))
    server = start()
    assert run_turn(server)["status"] == "completed"
    assert len(token_endpoint.requests) == 1
    first, second = model.requests
    assert first.headers["authorization"] == f"Bearer {old}"
    assert second.headers["authorization"] == f"Bearer {access_token('new')}"


def test_a_permanent_failure_poisons_the_login_until_it_changes(
    start: Any, token_endpoint: TokenEndpoint, model: ScriptedModelServer, codex_home: Path
) -> None:
    write_auth(codex_home, access_token("old"))
    token_endpoint.fail(401, "refresh_token_reused")
    unauthorized = http_error(401, "expired", type="invalid_request_error")
    model.add(unauthorized, unauthorized)
    server = start()
    for _ in range(2):
        turn = run_turn(server)
        assert turn["status"] == "failed"
        assert turn["error"]["message"] == REUSED
        assert turn["error"]["codexErrorInfo"] == "unauthorized"
    # The second refresh failed at once: the token endpoint was asked only once.
    assert len(token_endpoint.requests) == 1

    # account/read {refreshToken} answers with what it has and does not ask either.
    read = server.result("account/read", {"refreshToken": True})
    assert read["account"]["email"] == "dev@example.com"
    assert len(token_endpoint.requests) == 1

    # Different stored auth (another process logged in again): a new chance.
    token_endpoint.fail(400, "refresh_token_expired")
    write_auth(codex_home, access_token("old"), refresh="rt-other")
    server.result("account/read", {"refreshToken": True})
    assert [r["refresh_token"] for r in token_endpoint.requests] == ["rt-old", "rt-other"]
    server.result("account/read", {"refreshToken": True})
    assert len(token_endpoint.requests) == 2

    # Logout forgets the poison even if the very same login comes back.
    server.result("account/logout")
    write_auth(codex_home, access_token("old"), refresh="rt-other")
    server.result("account/read", {"refreshToken": True})
    assert len(token_endpoint.requests) == 3


def test_transient_failures_do_not_poison(
    start: Any, token_endpoint: TokenEndpoint, model: ScriptedModelServer, codex_home: Path
) -> None:
    write_auth(codex_home, access_token("old"))
    token_endpoint.fail(500, "server_error")
    model.add(http_error(401, "expired", type="invalid_request_error"))
    server = start()
    turn = run_turn(server)
    assert turn["status"] == "failed"
    assert turn["error"]["message"] == (
        "Failed to refresh token: 500 Internal Server Error: server_error (from the fake)"
    )
    server.result("account/read", {"refreshToken": True})
    assert len(token_endpoint.requests) == 2
    token_endpoint.fail(400, "refresh_token_expired")
    model.add(http_error(401, "expired", type="invalid_request_error"))
    assert run_turn(server)["error"]["message"] == EXPIRED


def test_tokens_without_an_expiry_are_refreshed_by_age(
    start: Any, token_endpoint: TokenEndpoint, model: ScriptedModelServer, codex_home: Path
) -> None:
    """No ``exp`` to go by (no claim, or not a JWT): ``last_refresh`` older than 8 days."""
    server = start()
    day = 24 * 3600

    def stamp(seconds_ago: float, zone: str = "Z") -> str:
        moment = time.gmtime(time.time() - seconds_ago)
        return time.strftime("%Y-%m-%dT%H:%M:%S.000000", moment) + zone

    no_exp = jwt({"name": "no-exp"})
    cases = [  # access token, last_refresh, refreshed before the request?
        (no_exp, stamp(9 * day), True),
        ("opaque-token", stamp(9 * day, zone=""), True),  # no zone: UTC
        (no_exp, stamp(7 * day), False),
        ("opaque-token", stamp(1 * day, zone="+00:00"), False),
        (no_exp, "not a date", False),
        (no_exp, None, False),
    ]
    for access, last_refresh, refreshed in cases:
        auth = write_auth(codex_home, access)
        auth["last_refresh"] = last_refresh
        (codex_home / "auth.json").write_text(json.dumps(auth))
        asked = len(token_endpoint.requests)
        model.add(message("ok"))
        assert run_turn(server)["status"] == "completed"
        sent = model.requests[-1].headers["authorization"]
        expected = access_token("new") if refreshed else access
        assert (len(token_endpoint.requests) - asked, sent) == (
            int(refreshed),
            f"Bearer {expected}",
        ), (access, last_refresh)


def test_what_a_token_endpoint_may_answer(
    start: Any, token_endpoint: TokenEndpoint, model: ScriptedModelServer, codex_home: Path
) -> None:
    """Each answer the refresh after a 401 can get, as the turn's error (or its success)."""
    write_auth(codex_home, access_token("old"))
    server = start()
    unauthorized = http_error(401, "expired", type="invalid_request_error")

    def refused_turn(status: int, body: Any) -> str:
        token_endpoint.status, token_endpoint.body = status, body
        model.add(unauthorized)
        turn = run_turn(server)
        assert turn["status"] == "failed"
        return str(turn["error"]["message"])

    # Transient: the stored login is kept and the next 401 asks again.
    assert refused_turn(200, b"not json").startswith("error decoding response body: ")
    assert refused_turn(200, ["a", "list"]) == "error decoding response body: not a JSON object"
    assert refused_turn(502, b"bad gateway") == (
        "Failed to refresh token: 502 Bad Gateway: bad gateway"
    )
    assert (
        refused_turn(503, b"") == "Failed to refresh token: 503 Service Unavailable: Unknown error"
    )
    assert refused_turn(500, {"error": {"code": "server_error"}}) == (
        'Failed to refresh token: 500 Internal Server Error: {"error": {"code": "server_error"}}'
    )
    assert len(token_endpoint.requests) == 5
    # Permanent, whichever way the body spells the code (then a new login gets a new chance).
    assert refused_turn(400, {"error": "refresh_token_expired"}) == EXPIRED
    write_auth(codex_home, access_token("old"), refresh="rt-2")
    assert refused_turn(400, {"code": "refresh_token_invalidated"}) == (
        "Your access token could not be refreshed because your refresh token was revoked. "
        "Please log out and sign in again."
    )
    write_auth(codex_home, access_token("old"), refresh="rt-3")
    assert refused_turn(401, {"detail": "who are you"}) == (
        "Your access token could not be refreshed. Please log out and sign in again."
    )
    assert len(token_endpoint.requests) == 8


def test_an_unreachable_token_endpoint_fails_the_turn(
    start_server: Any, model: ScriptedModelServer, codex_home: Path
) -> None:
    """The issuer that granted the login (its ``oauth_provenance``) is where refreshes go."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        issuer = f"http://127.0.0.1:{probe.getsockname()[1]}"
    auth = write_auth(codex_home, access_token("old"))
    auth["tokens"]["oauth_provenance"] = {"issuer": issuer, "client_id": "my-client"}
    (codex_home / "auth.json").write_text(json.dumps(auth))
    model.add(http_error(401, "expired", type="invalid_request_error"))
    server: StdioServer = start_server(
        "-c", f'openai_base_url="{model.base_url}"', "-c", 'model="mock-model"',
        env={"OPENAI_API_KEY": "", "CODEX_REFRESH_TOKEN_URL_OVERRIDE": ""},
    )  # fmt: skip
    server.initialize()
    turn = run_turn(server)
    assert turn["status"] == "failed"
    assert turn["error"]["message"] == f"error sending request for url ({issuer}/oauth/token)"
