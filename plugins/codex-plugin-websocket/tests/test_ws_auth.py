"""``--ws-auth``: 401s at the upgrade (before initialize) and startup errors, as the reference."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from codex_plugin_websocket.auth import AuthPolicy
from websockets.exceptions import InvalidStatus

from codex_core.testing.pytest_plugin import CodexCli, WsServerFactory

from .conftest import WsServer, initialize

SECRET = "s" * 40
TOKEN = "capability-token-123"


def refusal(server: WsServer, token: str | None = None, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as refused:
        server.connect(token, **kwargs)
    response = refused.value.response
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    return response.status_code, response.body.decode()


def signed(claims: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def test_capability_token_file(codex_ws_server_factory: WsServerFactory, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}\n")
    server: WsServer = codex_ws_server_factory(
        "--ws-auth", "capability-token", "--ws-token-file", str(token_file)
    )
    assert refusal(server) == (401, "missing websocket bearer token")
    assert refusal(server, "wrong") == (401, "invalid websocket bearer token")
    assert refusal(server, additional_headers={"Authorization": "Basic abc"}) == (
        401,
        "invalid authorization header",
    )
    assert server.http("GET", "/readyz")[0] == 200, "health probes are not authenticated"
    with server.connect(TOKEN) as ws:
        initialize(ws)


def test_capability_token_sha256(codex_ws_server_factory: WsServerFactory) -> None:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    server: WsServer = codex_ws_server_factory(
        "--ws-auth", "capability-token", "--ws-token-sha256", digest
    )
    assert refusal(server, TOKEN + "x") == (401, "invalid websocket bearer token")
    with server.connect(TOKEN) as ws:
        initialize(ws)


def test_signed_bearer_token(codex_ws_server_factory: WsServerFactory, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    server: WsServer = codex_ws_server_factory(
        "--ws-auth",
        "signed-bearer-token",
        "--ws-shared-secret-file",
        str(secret_file),
        "--ws-issuer",
        "issuer-a",
        "--ws-audience",
        "codex",
        "--ws-max-clock-skew-seconds",
        "5",
    )
    now = int(time.time())
    good = {"iss": "issuer-a", "aud": "codex", "exp": now + 60}
    cases = [
        ({**good, "exp": now - 60}, "expired websocket jwt"),
        ({**good, "iss": "issuer-b"}, "websocket jwt issuer mismatch"),
        ({**good, "aud": "other"}, "websocket jwt audience mismatch"),
        ({**good, "nbf": now + 60}, "websocket jwt is not valid yet"),
        ({"iss": "issuer-a", "aud": "codex"}, "invalid websocket jwt"),
    ]
    for claims, reason in cases:
        assert refusal(server, signed(claims)) == (401, reason), claims
    assert refusal(server, signed(good, "t" * 40)) == (401, "invalid websocket jwt")
    assert refusal(server, "not.a.jwt") == (401, "invalid websocket jwt")
    for claims in (good, {**good, "aud": ["x", "codex"]}):
        with server.connect(signed(claims)) as ws:
            initialize(ws)
    # Expired 3 s ago, within the 5 s skew: timed from now, not from the start of the test,
    # which a loaded machine can make more than 2 s ago.
    with server.connect(signed({**good, "exp": int(time.time()) - 3})) as ws:
        initialize(ws)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--ws-auth", "capability-token"],
            "`--ws-token-file` or `--ws-token-sha256` is required when "
            "`--ws-auth capability-token` is set",
        ),
        (
            ["--ws-auth", "signed-bearer-token"],
            "`--ws-shared-secret-file` is required when `--ws-auth signed-bearer-token` is set",
        ),
        (
            ["--ws-auth", "capability-token", "--ws-token-file", "/nonexistent/token"],
            "failed to read websocket auth secret /nonexistent/token: "
            "No such file or directory (os error 2)",
        ),
        (
            ["--ws-auth", "capability-token", "--ws-token-sha256", "abcd"],
            "--ws-token-sha256 must be a 64-character hex SHA-256 digest",
        ),
        (
            ["--ws-token-sha256", "ab" * 32],
            "websocket auth flags require `--ws-auth capability-token` or "
            "`--ws-auth signed-bearer-token`",
        ),
    ],
)
def test_startup_errors(codex_cli: CodexCli, args: list[str], message: str) -> None:
    completed = codex_cli("--listen", "ws://127.0.0.1:0", *args)
    assert completed.returncode == 1
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr


def test_short_shared_secret_is_refused(codex_cli: CodexCli, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("x" * 31)
    completed = codex_cli(
        "--listen",
        "ws://127.0.0.1:0",
        "--ws-auth",
        "signed-bearer-token",
        "--ws-shared-secret-file",
        str(secret_file),
    )
    assert completed.returncode == 1
    assert f"signed websocket bearer secret {secret_file} must be at least 32 bytes" in (
        completed.stderr
    )


def test_policy_unit_checks() -> None:
    policy = AuthPolicy.from_options(
        {"ws_auth": "capability-token", "ws_token_sha256": hashlib.sha256(b"t").hexdigest()}
    )
    assert policy.authorize("Bearer t") is None
    assert policy.authorize("bearer   t  ") is None
    assert policy.authorize("Bearer ") == "invalid authorization header"
    assert policy.authorize("Bearertoken") == "invalid authorization header"
    assert AuthPolicy().authorize(None) is None


def test_non_loopback_without_auth_starts_with_a_warning(
    codex_ws_server_factory: WsServerFactory,
) -> None:
    """Unlike the reference (which refuses), start, but say so in the log and the banner.

    Only the banner is read: no traffic goes anywhere but the process's own stderr.
    """
    server = codex_ws_server_factory(listen="ws://0.0.0.0:0")
    assert server.port
    assert "note: WARNING: no websocket auth" in server.stderr
    assert "accepts clients from other machines without auth" in server.stderr
