"""Device-code login through a real server subprocess against a loopback fake issuer."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


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

    def __init__(self) -> None:
        self.usercode_status = 200
        self.pending = 1  # polls answered 403 before the code is issued
        self.poll_status = 200
        self.requests: list[tuple[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                fake.requests.append((self.path, body))
                if self.path == "/api/accounts/deviceauth/usercode":
                    if fake.usercode_status != 200:
                        return self.reply(fake.usercode_status, {"error": "no"})
                    return self.reply(
                        200, {"device_auth_id": "dev-1", "user_code": "ABCD-1234", "interval": "0"}
                    )
                if self.path == "/api/accounts/deviceauth/token":
                    if fake.pending > 0:
                        fake.pending -= 1
                        return self.reply(403, {"error": "authorization_pending"})
                    if fake.poll_status != 200:
                        return self.reply(fake.poll_status, {"error": "denied"})
                    return self.reply(
                        200,
                        {
                            "authorization_code": "code-1",
                            "code_challenge": "c",
                            "code_verifier": "v",
                        },
                    )
                if self.path == "/oauth/token":
                    return self.reply(
                        200,
                        {"id_token": ID_TOKEN, "access_token": jwt({}), "refresh_token": "rt-1"},
                    )
                self.reply(404, {})

            def reply(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    fake = FakeIssuer()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


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
    exchange = [body for path, body in issuer.requests if path == "/oauth/token"]
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
    server.drain(0.3)
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
