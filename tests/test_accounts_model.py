"""The model provider and the accounts service together: a 401 asks for new credentials, and
the rate limits a model response reports become ``account/rateLimits/updated``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_accounts import chatgpt_token

from codex_core.testing import ModelResponse, ScriptedModelServer, http_error, message
from codex_core.testing.pytest_plugin import StdioServer


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


def start(start_server: Any, model: ScriptedModelServer) -> StdioServer:
    """The built-in `openai` provider pointed at the scripted model, with no API key set."""
    server: StdioServer = start_server(
        "-c", f'openai_base_url="{model.base_url}"', "-c", 'model="mock-model"',
        env={"OPENAI_API_KEY": ""},
    )  # fmt: skip
    server.initialize(experimentalApi=True)
    return server


def login_with_external_tokens(server: StdioServer, token: str) -> None:
    server.result(
        "account/login/start",
        {"type": "chatgptAuthTokens", "accessToken": token, "chatgptAccountId": "acct-1"},
    )


def run_turn(server: StdioServer) -> str:
    thread = server.result("thread/start", {})["thread"]["id"]
    server.result("turn/start", {"threadId": thread, "input": [{"type": "text", "text": "hi"}]})
    return str(thread)


def test_a_401_asks_the_client_for_new_tokens_and_retries(
    start_server: Any, model: ScriptedModelServer
) -> None:
    first, second = chatgpt_token(), chatgpt_token(plan="plus")
    model.add(
        http_error(401, "token expired", type="invalid_request_error"), message("welcome back")
    )
    server = start(start_server, model)
    login_with_external_tokens(server, first)
    run_turn(server)
    refresh = server.wait_server_request("account/chatgptAuthTokens/refresh")
    assert refresh["params"] == {"reason": "unauthorized", "previousAccountId": "acct-1"}
    server.send(
        {"id": refresh["id"], "result": {"accessToken": second, "chatgptAccountId": "acct-1"}}
    )
    completed = server.wait_notification("turn/completed")["params"]["turn"]
    assert completed["status"] == "completed"
    sent = model.wait_for_requests(2)
    assert sent[0].headers["authorization"] == f"Bearer {first}"
    assert sent[1].headers["authorization"] == f"Bearer {second}"
    assert sent[1].headers["chatgpt-account-id"] == "acct-1"


def test_a_refused_refresh_fails_the_turn_with_the_clients_error(
    start_server: Any, model: ScriptedModelServer
) -> None:
    model.add(http_error(401, "token expired", type="invalid_request_error"))
    server = start(start_server, model)
    login_with_external_tokens(server, chatgpt_token())
    run_turn(server)
    refresh = server.wait_server_request("account/chatgptAuthTokens/refresh")
    server.send({"id": refresh["id"], "error": {"code": -32000, "message": "refresh failed"}})
    turn = server.wait_notification("turn/completed")["params"]["turn"]
    assert turn["status"] == "failed"
    assert (
        turn["error"]["message"]
        == "auth refresh request failed: code=-32000 message=refresh failed"
    )
    assert turn["error"]["codexErrorInfo"] == "unauthorized"


NO_LIMITS = {
    "limitId": "codex",
    "limitName": None,
    "normalModelSlug": None,
    "primary": None,
    "secondary": None,
    "credits": None,
    "individualLimit": None,
    "spendControlReached": None,
    "planType": None,
    "rateLimitReachedType": None,
}


def test_model_response_headers_become_rate_limit_updates(
    start_server: Any, model: ScriptedModelServer
) -> None:
    headers = {
        "x-codex-primary-used-percent": "12.5",
        "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-at": "1900000000",
        "x-codex-secondary-used-percent": "0",
        "x-codex-credits-has-credits": "true",
        "x-codex-credits-unlimited": "false",
        "x-codex-credits-balance": "5.25",
        "x-codex-bengalfox-primary-used-percent": "80",
        "x-codex-bengalfox-limit-name": "GPT Spark",
    }
    model.add(ModelResponse([message("limited")], headers=headers), message("plain"))
    server = start(start_server, model)
    server.result("account/login/start", {"type": "apiKey", "apiKey": "sk-test"})
    run_turn(server)
    codex = server.wait_notification("account/rateLimits/updated")["params"]
    other = server.wait_notification("account/rateLimits/updated")["params"]
    server.wait_notification("turn/completed")
    credits = {"hasCredits": True, "unlimited": False, "balance": "5.25"}
    assert codex == {
        "rateLimits": {
            **NO_LIMITS,
            "primary": {"usedPercent": 13, "windowDurationMins": 300, "resetsAt": 1900000000},
            "credits": credits,
        }
    }
    assert other == {
        "rateLimits": {
            **NO_LIMITS,
            "limitId": "codex_bengalfox",
            "limitName": "GPT Spark",
            "primary": {"usedPercent": 80, "windowDurationMins": None, "resetsAt": None},
            "credits": credits,
        }
    }
    # A response without the headers reports an all-null `codex` snapshot, as the reference.
    run_turn(server)
    server.wait_notification("turn/completed")
    server.barrier()
    updates = [n["params"] for n in server.notifications
               if n["method"] == "account/rateLimits/updated"]  # fmt: skip
    assert updates == [{"rateLimits": NO_LIMITS}]
