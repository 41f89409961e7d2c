"""Device-code login through a real server subprocess against a loopback fake issuer."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing import LoopbackRequest, Reply
from codex_core.testing.pytest_plugin import LoopbackFactory


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


ID_TOKEN = jwt(
    {
        "email": "dev@example.com",
        "https://api.openai.com/auth": {
            "chatgpt_plan_type": "pro",
            "chatgpt_account_id": "acct-9",
            "chatgpt_user_id": "user-9",
        },
    }
)


class FakeIssuer:
    """The issuer's device-code and token endpoints; ``usercode_status``/``pending`` steer it."""

    def __init__(self, start: LoopbackFactory) -> None:
        self.usercode_status = 200
        self.pending = 1  # polls answered 403 before the code is issued
        self.poll_status = 200
        self.server = start(self.handle)
        self.url = self.server.url

    def handle(self, request: LoopbackRequest) -> Reply:
        if request.method != "POST":
            return Reply(404, {})
        if request.path == "/api/accounts/deviceauth/usercode":
            if self.usercode_status != 200:
                return Reply(self.usercode_status, {"error": "no"})
            return Reply(
                200, {"device_auth_id": "dev-1", "user_code": "ABCD-1234", "interval": "0"}
            )
        if request.path == "/api/accounts/deviceauth/token":
            if self.pending > 0:
                self.pending -= 1
                return Reply(403, {"error": "authorization_pending"})
            if self.poll_status != 200:
                return Reply(self.poll_status, {"error": "denied"})
            return Reply(
                200, {"authorization_code": "code-1", "code_challenge": "c", "code_verifier": "v"}
            )
        if request.path == "/oauth/token":
            return Reply(
                200, {"id_token": ID_TOKEN, "access_token": jwt({}), "refresh_token": "rt-1"}
            )
        return Reply(404, {})


@pytest.fixture
def issuer(codex_loopback_factory: LoopbackFactory) -> FakeIssuer:
    return FakeIssuer(codex_loopback_factory)


@pytest.fixture
def start(codex_server_factory: Any, issuer: FakeIssuer) -> Any:
    def run(*args: str) -> Any:
        server = codex_server_factory("-c", f'plugins.device-code.issuer="{issuer.url}"', *args)
        server.initialize()
        return server

    return run


def test_device_code_success(start: Any, issuer: FakeIssuer, codex_home: Path) -> None:
    server = start()
    result = server.result("account/login/start", {"type": "chatgptDeviceCode"})
    assert result["type"] == "chatgptDeviceCode"
    assert result["verificationUrl"] == f"{issuer.url}/codex/device"
    assert result["userCode"] == "ABCD-1234"
    completed = server.wait_notification("account/login/completed")["params"]
    assert completed == {
        "loginId": result["loginId"],
        "success": True,
        "error": None,
        "onboardingEntrypoint": None,
    }
    updated = server.wait_notification("account/updated")["params"]
    assert updated == {"authMode": "chatgpt", "planType": "pro"}
    auth = json.loads((codex_home / "auth.json").read_text())
    assert auth["auth_mode"] == "chatgpt"
    assert auth["tokens"]["id_token"] == ID_TOKEN
    assert auth["tokens"]["refresh_token"] == "rt-1"
    assert auth["tokens"]["account_id"] == "acct-9"
    assert (codex_home / "auth.json").stat().st_mode & 0o777 == 0o600
    read = server.result("account/read", {})
    assert read["account"] == {
        "type": "chatgpt",
        "email": "dev@example.com",
        "planType": "pro",
        "workspaceName": None,
    }
    exchange = [r.text for r in issuer.server.requests if r.path == "/oauth/token"]
    assert "grant_type=authorization_code" in exchange[0]
    assert "code_verifier=v" in exchange[0]


def test_device_code_policy_refusal(start: Any, issuer: FakeIssuer) -> None:
    issuer.usercode_status = 404
    server = start()
    assert server.error("account/login/start", {"type": "chatgptDeviceCode"}) == {
        "code": -32600,
        "message": "device code login is not enabled for this Codex server. "
        "Use the browser login or verify the server URL.",
    }
    issuer.usercode_status = 500
    error = server.error("account/login/start", {"type": "chatgptDeviceCode"})
    assert error["code"] == -32603
    assert error["message"].startswith("failed to request device code: ")


def test_device_code_cancel(start: Any, issuer: FakeIssuer, codex_home: Path) -> None:
    issuer.pending = 10**9
    server = start()
    login_id = server.result("account/login/start", {"type": "chatgptDeviceCode"})["loginId"]
    assert server.result("account/login/cancel", {"loginId": login_id}) == {"status": "canceled"}
    completed = server.wait_notification("account/login/completed")["params"]
    assert completed["loginId"] == login_id
    assert completed["success"] is False
    assert completed["error"] == "Login was not completed"
    server.barrier()
    assert not any(n["method"] == "account/updated" for n in server.notifications)
    assert server.result("account/login/cancel", {"loginId": login_id}) == {"status": "notFound"}
    assert not (codex_home / "auth.json").exists()


def test_device_code_failure_and_workspace(
    start: Any, issuer: FakeIssuer, codex_home: Path
) -> None:
    issuer.poll_status = 500
    server = start()
    server.result("account/login/start", {"type": "chatgptDeviceCode"})
    completed = server.wait_notification("account/login/completed")["params"]
    assert completed["success"] is False
    assert "500" in completed["error"]

    issuer.poll_status, issuer.pending = 200, 0
    forced = start("-c", 'forced_chatgpt_workspace_id="other"')
    forced.result("account/login/start", {"type": "chatgptDeviceCode"})
    completed = forced.wait_notification("account/login/completed")["params"]
    assert completed["success"] is False
    assert "other" in completed["error"]
    assert not (codex_home / "auth.json").exists()


def test_new_login_cancels_pending(start: Any, issuer: FakeIssuer) -> None:
    issuer.pending = 10**9
    server = start()
    login_id = server.result("account/login/start", {"type": "chatgptDeviceCode"})["loginId"]
    server.result("account/login/start", {"type": "apiKey", "apiKey": "sk"})
    deadline = time.monotonic() + 10
    while True:
        completed = server.wait_notification("account/login/completed")["params"]
        if completed["loginId"] == login_id:
            break
        assert time.monotonic() < deadline
    assert completed["success"] is False


def test_device_code_timeout(start: Any, issuer: FakeIssuer, codex_home: Path) -> None:
    issuer.pending = 10**9
    server = start("-c", "plugins.device-code.timeout_seconds=0.3")
    login_id = server.result("account/login/start", {"type": "chatgptDeviceCode"})["loginId"]
    completed = server.wait_notification("account/login/completed")["params"]
    assert completed == {
        "loginId": login_id,
        "success": False,
        "error": "device auth timed out after 0.3 seconds",
        "onboardingEntrypoint": None,
    }
    assert not (codex_home / "auth.json").exists()
