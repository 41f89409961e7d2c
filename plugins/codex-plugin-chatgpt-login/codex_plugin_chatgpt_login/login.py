"""The browser login flow: ``account/login/start {"type": "chatgpt"}``.

1. Bind the callback server on loopback, answer at once with ``authUrl`` and ``loginId``.
2. The person signs in; the issuer redirects the browser to
   ``http://127.0.0.1:PORT/auth/callback?code=...&state=...``. A wrong ``state`` is refused
   (400) and the login keeps waiting; an ``error`` ends it.
3. The code is exchanged at ``{issuer}/oauth/token``, the ID token checked against
   ``forced_chatgpt_workspace_id``, an API key obtained (best effort) and everything stored as
   managed ``chatgpt`` auth; the browser is sent on to ``/success``, whose page ends the login
   with ``account/login/completed {success: true}`` then ``account/updated``.

Cancel (``account/login/cancel``, another login starting, ``account/logout``), the timeout and
every failure end it with a failed ``account/login/completed`` only, worded as the official
server words them; the port is free by the time that notification goes out.
"""

from __future__ import annotations

import html
import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio

from codex_core.accounts.service import (
    DEFAULT_CLIENT_ID,
    DEFAULT_ISSUER,
    AccountsService,
    accounts_service,
)
from codex_core.accounts.tokens import InvalidToken, jwt_claims
from codex_core.rpc import INTERNAL_ERROR, INVALID_REQUEST, RpcError
from codex_plugin_chatgpt_login import callback, oauth
from codex_plugin_chatgpt_login.callback import Reply
from codex_plugin_chatgpt_login.pkce import Pkce, new_state

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.rpc.connection import Connection

log = logging.getLogger(__name__)

ISSUER_ENV = "CODEX_APP_SERVER_LOGIN_ISSUER"
#: The official server abandons a browser login after ten minutes.
DEFAULT_TIMEOUT_SECONDS = 600.0
HTTP_TIMEOUT_SECONDS = 30.0
NOT_COMPLETED = "Login was not completed"
TIMED_OUT = "Login timed out"
HTML = [("content-type", "text/html; charset=utf-8")]
SUCCESS_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Signed in to Codex</title></head>"
    "<body><h1>Signed in to Codex</h1><p>You may now close this page.</p></body></html>"
)


@dataclass(slots=True)
class _Attempt:
    """One pending browser login: what the callback needs, and how it ended."""

    login_id: str
    issuer: str
    client_id: str
    redirect_uri: str
    port: int
    pkce: Pkce
    state: str
    workspaces: tuple[str, ...]
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    #: ``None`` while pending; then ``""`` for success or the error for the client.
    error: str | None = None

    def end(self, error: str) -> None:
        if self.error is None:
            self.error = error


class BrowserLoginProvider:
    login_type = "chatgpt"

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._attempts: dict[str, _Attempt] = {}

    # ------------------------------------------------------------------ settings

    def _setting(self, name: str) -> Any:
        table = self.kernel.config.get("plugins.chatgpt-login") or {}
        return table.get(name) if isinstance(table, dict) else None

    @property
    def issuer(self) -> str:
        value = self._setting("issuer") or os.environ.get(ISSUER_ENV) or DEFAULT_ISSUER
        return str(value).rstrip("/")

    @property
    def client_id(self) -> str:
        return str(self._setting("client_id") or DEFAULT_CLIENT_ID)

    @property
    def port(self) -> int:
        value = self._setting("port")
        return callback.DEFAULT_PORT if value is None else int(value)

    @property
    def timeout(self) -> float:
        value = self._setting("timeout_seconds")
        return DEFAULT_TIMEOUT_SECONDS if value is None else float(value)

    # ------------------------------------------------------------------ AuthProvider

    async def start_login(self, params: dict[str, Any], connection: Connection) -> dict[str, Any]:
        service = accounts_service(self.kernel)
        if service.config("forced_login_method") == "api":
            raise RpcError(INVALID_REQUEST, "ChatGPT login is disabled. Use API key login instead.")
        # An earlier attempt of ours would hold the port: end it first.
        service.cancel_active_login()
        try:
            listener = await callback.bind(self.port)
        except OSError as exc:
            message = exc.strerror or str(exc)
            raise RpcError(INTERNAL_ERROR, f"failed to start login server: {message}") from None
        port = callback.port_of(listener)
        attempt = _Attempt(
            login_id=str(uuid.uuid4()),
            issuer=self.issuer,
            client_id=self.client_id,
            redirect_uri=f"http://127.0.0.1:{port}/auth/callback",
            port=port,
            pkce=Pkce.generate(),
            state=new_state(),
            workspaces=service.forced_workspaces,
        )
        self._attempts[attempt.login_id] = attempt
        service.begin_login(attempt.login_id, lambda: self._cancel(attempt.login_id))
        self.kernel.start_soon(
            self._run, attempt, listener, name=f"browser login {attempt.login_id}"
        )
        auth_url = oauth.authorize_url(
            attempt.issuer,
            attempt.client_id,
            attempt.redirect_uri,
            attempt.pkce,
            attempt.state,
            connection.client_name or "codex_cli_rs",
            attempt.workspaces,
        )
        return {"type": "chatgpt", "loginId": attempt.login_id, "authUrl": auth_url}

    async def cancel_login(self, login_id: str) -> bool:
        return self._cancel(login_id)

    def _cancel(self, login_id: str) -> bool:
        attempt = self._attempts.get(login_id)
        if attempt is None or attempt.error is not None:
            return False
        attempt.end(f"Login server error: {NOT_COMPLETED}")
        attempt.scope.cancel()
        return True

    # ------------------------------------------------------------------ background

    async def _run(self, attempt: _Attempt, listener: callback.Listener) -> None:
        service = accounts_service(self.kernel)

        async def handle(target: str) -> Reply:
            return await self._handle(service, attempt, target)

        try:
            with attempt.scope:
                async with listener:
                    with anyio.move_on_after(self.timeout):
                        await callback.serve(listener, handle)
                    attempt.end(TIMED_OUT)
        except Exception as exc:
            log.exception("browser login %s failed", attempt.login_id)
            attempt.end(f"Login server error: {exc}")
        finally:
            self._attempts.pop(attempt.login_id, None)
            service.end_login(attempt.login_id)
        success = attempt.error == ""
        with anyio.CancelScope(shield=True):
            await service.login_completed(
                attempt.login_id, success=success, error=None if success else attempt.error
            )

    async def _handle(self, service: AccountsService, attempt: _Attempt, target: str) -> Reply:
        url = urlsplit(target)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        if url.path == "/auth/callback":
            return await self._callback(service, attempt, query)
        if url.path == "/success":
            attempt.end("")
            return Reply(200, SUCCESS_PAGE.encode(), HTML, final=True)
        if url.path == "/cancel":
            attempt.end("Login server error: Login cancelled")
            return Reply(200, b"Login cancelled", final=True)
        return Reply(404, b"Not Found")

    async def _callback(
        self, service: AccountsService, attempt: _Attempt, query: dict[str, str]
    ) -> Reply:
        if query.get("state") != attempt.state:
            log.warning("login callback state mismatch")
            return Reply(400, b"State mismatch")
        if query.get("error"):
            return _failed(attempt, _callback_error(query["error"], query.get("error_description")))
        code = query.get("code")
        if not code:
            return _failed(attempt, "Missing authorization code. Sign-in could not be completed.")
        import httpx

        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
            try:
                tokens = await oauth.exchange_code(
                    http,
                    attempt.issuer,
                    attempt.client_id,
                    attempt.redirect_uri,
                    attempt.pkce,
                    code,
                )
            except oauth.TokenEndpointError as exc:
                return _failed(attempt, f"Token exchange failed: {exc}")
            problem = service.login_workspace_error(tokens.id_token)
            if problem is not None:
                return _failed(attempt, problem)
            api_key = await oauth.obtain_api_key(
                http, attempt.issuer, attempt.client_id, tokens.id_token
            )
        try:
            await service.save_chatgpt_tokens(
                id_token=tokens.id_token,
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                api_key=api_key,
                issuer=attempt.issuer,
                client_id=attempt.client_id,
            )
        except OSError as exc:
            log.warning("failed to store the browser login: %s", exc)
            return _failed(attempt, "Sign-in completed but credentials could not be saved locally.")
        return Reply(302, headers=[("location", _success_url(attempt, tokens))])


def _failed(attempt: _Attempt, message: str) -> Reply:
    """An error page for the browser; the login ends with ``message``."""
    attempt.end(f"Login server error: {message}")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>Sign-in could not be completed</title></head><body>"
        f"<h1>Sign-in could not be completed</h1><p>{html.escape(message)}</p>"
        "<p>Return to Codex to retry, switch accounts, or contact your workspace admin if "
        "access is restricted.</p></body></html>"
    )
    return Reply(200, page.encode(), HTML, final=True)


def _callback_error(code: str, description: str | None) -> str:
    if code == "access_denied" and "missing_codex_entitlement" in (description or "").lower():
        return (
            "Codex is not enabled for your workspace. Contact your workspace administrator "
            "to request access to Codex."
        )
    if description and description.strip():
        return f"Sign-in failed: {description}"
    return f"Sign-in failed: {code}"


def _auth_claims(token: str) -> dict[str, Any]:
    try:
        claims = jwt_claims(token).get("https://api.openai.com/auth")
    except InvalidToken:
        return {}
    return claims if isinstance(claims, dict) else {}


def _success_url(attempt: _Attempt, tokens: oauth.Tokens) -> str:
    """Where the browser goes after the callback: the same query the official server builds."""
    claims, access = _auth_claims(tokens.id_token), _auth_claims(tokens.access_token)
    needs_setup = not claims.get("completed_platform_onboarding") and bool(
        claims.get("is_org_owner")
    )
    platform = (
        "https://platform.openai.com"
        if attempt.issuer == DEFAULT_ISSUER
        else "https://platform.api.openai.org"
    )
    query = urlencode(
        {
            "id_token": tokens.id_token,
            "needs_setup": str(needs_setup).lower(),
            "org_id": str(claims.get("organization_id") or ""),
            "project_id": str(claims.get("project_id") or ""),
            "plan_type": str(access.get("chatgpt_plan_type") or ""),
            "platform_url": platform,
        }
    )
    return f"http://127.0.0.1:{attempt.port}/success?{query}"
