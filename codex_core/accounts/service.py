"""``kernel.services["accounts"]``: who the server acts as, for the model provider and plugins.

The model provider asks for credentials before each request and for a refresh when the model
API answers 401::

    accounts = kernel.services["accounts"]
    credentials = await accounts.fresh_credentials()  # None when logged out
    headers = credentials.headers() if credentials else {}
    ...
    try:
        credentials = await accounts.refresh("unauthorized")
    except AuthRefreshError as exc:
        fail_the_turn(exc.message)

Login plugins store what their flow produced and announce the outcome::

    problem = accounts.login_workspace_error(id_token)   # forced_chatgpt_workspace_id
    await accounts.save_chatgpt_tokens(id_token=..., access_token=..., refresh_token=...)
    await accounts.login_completed(login_id, success=True)  # login/completed + account/updated
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.accounts.refresh import DEFAULT_CLIENT_ID as DEFAULT_CLIENT_ID
from codex_core.accounts.refresh import DEFAULT_ISSUER as DEFAULT_ISSUER
from codex_core.accounts.refresh import AuthRefreshError as AuthRefreshError
from codex_core.accounts.refresh import endpoint, is_stale, now, request_refresh, timestamp
from codex_core.accounts.storage import AuthStore, AuthStoreError, create_store
from codex_core.accounts.tokens import InvalidToken, TokenInfo, token_info, wire_plan_type
from codex_core.rpc import ClientErrorResponse, RequestCancelled, RequestTimeout

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.rpc.connection import Connection

log = logging.getLogger(__name__)

#: How long the server waits for the client's answer to ``account/chatgptAuthTokens/refresh``.
EXTERNAL_REFRESH_TIMEOUT_SECONDS = 10.0
#: Tests shorten the wait above through this environment variable.
REFRESH_TIMEOUT_ENV = "CODEX_CORE_AUTH_REFRESH_TIMEOUT_SECONDS"
DEFAULT_CHATGPT_BASE_URL = "https://chatgpt.com/backend-api"


@dataclass(frozen=True, slots=True)
class Credentials:
    """The current login, as the model provider needs it.

    ``auth_mode`` is the protocol's ``AuthMode``: ``apikey``, ``chatgpt`` (managed tokens in
    the store) or ``chatgptAuthTokens`` (external tokens a client supplied, memory only).
    """

    auth_mode: str
    api_key: str | None = None
    access_token: str | None = None
    account_id: str | None = None
    plan_type: str | None = None
    email: str | None = None
    user_id: str | None = None

    @property
    def token(self) -> str | None:
        """What goes after ``Bearer``: the API key or the ChatGPT access token."""
        return self.api_key if self.auth_mode == "apikey" else self.access_token

    def headers(self) -> dict[str, str]:
        """``authorization`` (and ``chatgpt-account-id`` for ChatGPT logins)."""
        headers: dict[str, str] = {}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        if self.auth_mode != "apikey" and self.account_id:
            headers["chatgpt-account-id"] = self.account_id
        return headers

    def account(self) -> dict[str, Any]:
        """The protocol's ``Account`` for this login."""
        if self.auth_mode == "apikey":
            return {"type": "apiKey"}
        return {
            "type": "chatgpt",
            "email": self.email,
            "planType": wire_plan_type(self.plan_type),
            "workspaceName": None,
        }


def credentials_from_auth(auth: dict[str, Any] | None) -> Credentials | None:
    """Read a stored ``auth.json`` document (either server's)."""
    if not auth:
        return None
    mode = auth.get("auth_mode")
    key = auth.get("OPENAI_API_KEY")
    tokens = auth.get("tokens") if isinstance(auth.get("tokens"), dict) else None
    has_key = isinstance(key, str) and bool(key)
    # An API key login stands even with an empty key, as the reference's does.
    if (isinstance(key, str) and mode == "apikey") or (has_key and mode is None):
        return Credentials("apikey", api_key=key)
    if tokens and isinstance(tokens.get("access_token"), str):
        info = TokenInfo()
        if isinstance(tokens.get("id_token"), str):
            try:
                info = token_info(tokens["id_token"])
            except InvalidToken:
                log.warning("stored ChatGPT id_token is not a JWT")
        account_id = tokens.get("account_id") or info.account_id
        return Credentials(
            "chatgpt",
            access_token=tokens["access_token"],
            account_id=account_id if isinstance(account_id, str) else None,
            plan_type=info.plan_type,
            email=info.email,
            user_id=info.user_id,
        )
    if has_key:
        return Credentials("apikey", api_key=key)
    return None


@dataclass(slots=True)
class _External:
    credentials: Credentials
    connection: Connection


@dataclass(slots=True)
class _ActiveLogin:
    login_id: str
    cancel: Callable[[], object]


class AccountsService:
    """Credentials, the store they live in, external tokens, and login bookkeeping."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.store: AuthStore = create_store(
            kernel.codex_home, kernel.config.get("cli_auth_credentials_store")
        )
        self._external: _External | None = None
        self._active: _ActiveLogin | None = None
        self._refresh_lock = anyio.Lock()
        #: The stored login whose refresh failed for good, and how (see ``_refresh_managed``).
        self._poisoned: tuple[dict[str, Any], AuthRefreshError] | None = None
        #: Seconds to wait for a client's ``account/chatgptAuthTokens/refresh`` answer.
        self.refresh_timeout = float(
            os.environ.get(REFRESH_TIMEOUT_ENV) or EXTERNAL_REFRESH_TIMEOUT_SECONDS
        )

    # ------------------------------------------------------------------ reading

    @property
    def external_active(self) -> bool:
        """Whether a client's ``chatgptAuthTokens`` are in use (they win over the store)."""
        return self._external is not None

    async def load_stored(self) -> dict[str, Any] | None:
        """The stored ``auth.json`` document, or ``None``."""
        return await anyio.to_thread.run_sync(self.store.load)

    async def credentials(self) -> Credentials | None:
        """The current login; ``None`` when logged out (or the store cannot be read)."""
        if self._external is not None:
            return self._external.credentials
        try:
            return credentials_from_auth(await self.load_stored())
        except AuthStoreError as exc:
            log.warning("%s", exc)
            return None

    async def fresh_credentials(self) -> Credentials | None:
        """The credentials for a model request: stale managed ChatGPT tokens are refreshed first.

        A failed refresh is logged and the stored tokens are used anyway (the model API's 401
        then leads to ``refresh``), as the official server does.
        """
        credentials = await self.credentials()
        if credentials is None or credentials.auth_mode != "chatgpt":
            return credentials
        async with self._refresh_lock:
            try:
                stored = await self.load_stored()
                if stored is None or not is_stale(stored):
                    return credentials_from_auth(stored)
                return await self._refresh_managed(stored)
            except (AuthRefreshError, AuthStoreError) as exc:
                log.error("Failed to refresh token: %s", exc)
                return credentials

    def config(self, key: str, default: Any = None) -> Any:
        return self.kernel.config.get(key, default)

    @property
    def forced_workspaces(self) -> tuple[str, ...]:
        """``forced_chatgpt_workspace_id``: one id or a list of them (empty: no restriction)."""
        value = self.config("forced_chatgpt_workspace_id")
        values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        return tuple(str(item) for item in values if isinstance(item, str) and item)

    def workspace_error(self, account_id: str | None) -> str | None:
        """Why external tokens of ``account_id`` are refused (``None``: they are fine)."""
        forced = self.forced_workspaces
        if not forced or account_id in forced:
            return None
        return (
            f"External auth must use one of workspace(s) {json.dumps(list(forced))}, "
            f"but received {json.dumps(account_id)}."
        )

    def login_workspace_error(self, id_token: str) -> str | None:
        """Why a login whose ID token is ``id_token`` is refused (``None``: it is fine)."""
        forced = self.forced_workspaces
        if not forced:
            return None
        try:
            account_id = token_info(id_token).account_id
        except InvalidToken:
            account_id = None
        if account_id is None:
            return (
                "Login is restricted to a specific workspace, but the token did not include an "
                "chatgpt_account_id claim."
            )
        if account_id in forced:
            return None
        return f"Login is restricted to workspace id(s) {', '.join(forced)}."

    # ------------------------------------------------------------------ writing

    async def save_auth(self, auth: dict[str, Any]) -> None:
        """Store a login document (the ``auth.json`` layout) in the configured store."""
        self._external = None
        self._poisoned = None
        await anyio.to_thread.run_sync(self.store.save, auth)

    async def save_api_key(self, api_key: str) -> None:
        await self.save_auth({"auth_mode": "apikey", "OPENAI_API_KEY": api_key})

    async def save_chatgpt_tokens(
        self,
        *,
        id_token: str,
        access_token: str,
        refresh_token: str,
        api_key: str | None = None,
        issuer: str | None = None,
        client_id: str | None = None,
    ) -> None:
        """Store a managed ChatGPT login the way the official server does.

        ``issuer``/``client_id`` (kept as ``tokens.oauth_provenance``, a key the official server
        ignores) say where refreshes go when they are not the defaults.
        """
        account_id = None
        with contextlib.suppress(InvalidToken):
            account_id = token_info(id_token).account_id
        tokens: dict[str, Any] = {
            "id_token": id_token,
            "access_token": access_token,
            "refresh_token": refresh_token,
            "account_id": account_id,
        }
        if issuer or client_id:
            tokens["oauth_provenance"] = {"issuer": issuer, "client_id": client_id}
        await self.save_auth(
            {
                "auth_mode": "chatgpt",
                "OPENAI_API_KEY": api_key,
                "tokens": tokens,
                "last_refresh": _now(),
            }
        )

    def set_external_tokens(
        self,
        connection: Connection,
        access_token: str,
        account_id: str,
        plan_type: str | None = None,
    ) -> Credentials:
        """Use a client's ChatGPT tokens (memory only); raises ``InvalidToken``."""
        info = token_info(access_token)
        credentials = Credentials(
            "chatgptAuthTokens",
            access_token=access_token,
            account_id=account_id,
            plan_type=plan_type or info.plan_type,
            email=info.email,
            user_id=info.user_id,
        )
        self._external = _External(credentials, connection)
        return credentials

    async def logout(self) -> None:
        """Forget every login: external tokens, the stored one, a login in progress."""
        self.cancel_active_login()
        self._external = None
        self._poisoned = None
        await anyio.to_thread.run_sync(self.store.delete)

    # ------------------------------------------------------------------ logins in progress

    def begin_login(self, login_id: str, cancel: Callable[[], object]) -> None:
        """Record a pending (browser, device-code) login; an earlier one is cancelled."""
        self.cancel_active_login()
        self._active = _ActiveLogin(login_id, cancel)

    def end_login(self, login_id: str) -> None:
        if self._active is not None and self._active.login_id == login_id:
            self._active = None

    def cancel_active_login(self) -> None:
        active, self._active = self._active, None
        if active is not None:
            active.cancel()

    @property
    def active_login_id(self) -> str | None:
        return None if self._active is None else self._active.login_id

    # ------------------------------------------------------------------ notifications

    async def account_updated_params(self) -> dict[str, Any]:
        credentials = await self.credentials()
        if credentials is None:
            return {"authMode": None, "planType": None}
        plan = None if credentials.auth_mode == "apikey" else wire_plan_type(credentials.plan_type)
        return {"authMode": credentials.auth_mode, "planType": plan}

    async def login_completed(
        self, login_id: str | None, *, success: bool, error: str | None = None
    ) -> None:
        """Tell every client how a login ended; a success is followed by ``account/updated``."""
        self.kernel.broadcast(
            "account/login/completed",
            {"loginId": login_id, "success": success, "error": error, "onboardingEntrypoint": None},
        )
        if success:
            self.kernel.broadcast("account/updated", await self.account_updated_params())

    # ------------------------------------------------------------------ refresh

    async def refresh(self, reason: str = "unauthorized") -> Credentials:
        """New credentials after the model API refused the current ones (401).

        External tokens: asks the client that logged in with ``account/chatgptAuthTokens/refresh``
        and waits at most ``refresh_timeout`` seconds. Managed ChatGPT tokens: the issuer's token
        endpoint. Raises ``AuthRefreshError`` when no new credentials come of it.
        """
        async with self._refresh_lock:
            if self._external is not None:
                return await self._refresh_external(reason)
            stored = await self.load_stored()
            credentials = credentials_from_auth(stored)
            if credentials is None:
                raise AuthRefreshError("not logged in")
            if credentials.auth_mode != "chatgpt" or stored is None:
                raise AuthRefreshError(f"{credentials.auth_mode} credentials cannot be refreshed")
            return await self._refresh_managed(stored)

    async def _refresh_external(self, reason: str) -> Credentials:
        assert self._external is not None
        external = self._external
        previous = external.credentials.account_id
        try:
            result = await external.connection.request(
                "account/chatgptAuthTokens/refresh",
                {"reason": reason, "previousAccountId": previous},
                timeout=self.refresh_timeout,
            )
        except ClientErrorResponse as exc:
            raise AuthRefreshError(
                f"auth refresh request failed: code={exc.code} message={exc.message}"
            ) from None
        except RequestCancelled:
            raise AuthRefreshError("auth refresh request canceled", canceled=True) from None
        except RequestTimeout:
            raise AuthRefreshError(
                f"auth refresh request timed out after {self.refresh_timeout:g}s"
            ) from None
        if not isinstance(result, dict) or not isinstance(result.get("accessToken"), str):
            raise AuthRefreshError("auth refresh response is missing `accessToken`")
        account_id = result.get("chatgptAccountId")
        if not isinstance(account_id, str):
            raise AuthRefreshError("auth refresh response is missing `chatgptAccountId`")
        problem = self.workspace_error(account_id)
        if problem is not None:
            raise AuthRefreshError(problem)
        plan = result.get("chatgptPlanType")
        try:
            return self.set_external_tokens(
                external.connection,
                result["accessToken"],
                account_id,
                plan if isinstance(plan, str) else None,
            )
        except InvalidToken as exc:
            raise AuthRefreshError(f"auth refresh returned an invalid token: {exc}") from None

    async def _refresh_managed(self, stored: dict[str, Any]) -> Credentials:
        """The token endpoint's new tokens for ``stored``, saved; or ``AuthRefreshError``.

        A permanent refusal poisons ``stored``: until the stored login changes, refreshing it
        again fails at once with the same error, without asking the endpoint.
        """
        if self._poisoned is not None:
            snapshot, error = self._poisoned
            if snapshot == stored:
                raise error
            self._poisoned = None
        tokens = dict(stored.get("tokens") or {})
        refresh_token = tokens.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise AuthRefreshError("stored ChatGPT auth has no refresh token")
        url, client_id = endpoint(tokens)
        try:
            answer = await request_refresh(url, client_id, refresh_token)
        except AuthRefreshError as exc:
            if exc.permanent:
                self._poisoned = (stored, exc)
            raise
        for name in ("id_token", "access_token", "refresh_token"):
            if isinstance(answer.get(name), str) and answer[name]:
                tokens[name] = answer[name]
        refreshed = {**stored, "tokens": tokens, "last_refresh": _now()}
        await anyio.to_thread.run_sync(self.store.save, refreshed)
        credentials = credentials_from_auth(refreshed)
        assert credentials is not None
        return credentials

    # ------------------------------------------------------------------ backend

    def chatgpt_base_url(self) -> str:
        return str(self.config("chatgpt_base_url") or DEFAULT_CHATGPT_BASE_URL).rstrip("/")


def _now() -> str:
    return timestamp(now())


def accounts_service(kernel: Kernel) -> AccountsService:
    """The kernel's accounts service, created on first use."""
    service = kernel.services.get("accounts")
    if not isinstance(service, AccountsService):
        service = kernel.services["accounts"] = AccountsService(kernel)
    return service
