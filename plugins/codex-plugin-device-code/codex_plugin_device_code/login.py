"""The device-code flow against a configurable issuer.

1. ``POST {issuer}/api/accounts/deviceauth/usercode {"client_id"}`` -> ``device_auth_id``,
   ``user_code``, ``interval`` (seconds, a string). 404 means the issuer refuses device codes
   (a JSON-RPC error for the client, as the official server answers).
2. ``POST {issuer}/api/accounts/deviceauth/token {"device_auth_id", "user_code"}`` every
   ``interval`` seconds: 403/404 mean "not yet", 200 carries ``authorization_code``,
   ``code_verifier`` (and ``code_challenge``); anything else fails the login.
3. ``POST {issuer}/oauth/token`` (form: ``grant_type=authorization_code``, ``code``,
   ``redirect_uri={issuer}/deviceauth/callback``, ``client_id``, ``code_verifier``) ->
   ``id_token``, ``access_token``, ``refresh_token``, stored as ``chatgpt`` auth.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.accounts.service import (
    DEFAULT_CLIENT_ID,
    DEFAULT_ISSUER,
    AccountsService,
    accounts_service,
)
from codex_core.rpc import INTERNAL_ERROR, INVALID_REQUEST, RpcError

if TYPE_CHECKING:
    import httpx

    from codex_core.kernel import Kernel
    from codex_core.rpc.connection import Connection

log = logging.getLogger(__name__)

ISSUER_ENV = "CODEX_APP_SERVER_LOGIN_ISSUER"
#: How long a device code stays valid: polling stops after this.
MAX_WAIT_SECONDS = 15 * 60
HTTP_TIMEOUT_SECONDS = 30.0
NOT_ENABLED = (
    "device code login is not enabled for this Codex server. "
    "Use the browser login or verify the server URL."
)
CANCELED = "Login was not completed"


class DeviceCodeError(Exception):
    pass


@dataclass(slots=True)
class _Attempt:
    login_id: str
    scope: anyio.CancelScope
    cancelled: bool = False


class DeviceCodeProvider:
    login_type = "chatgptDeviceCode"

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._attempts: dict[str, _Attempt] = {}

    # ------------------------------------------------------------------ settings

    def _setting(self, name: str) -> Any:
        table = self.kernel.config.get("plugins.device-code") or {}
        return table.get(name) if isinstance(table, dict) else None

    @property
    def timeout(self) -> float:
        """How long to poll for the person's approval (the code's lifetime)."""
        value = self._setting("timeout_seconds")
        return MAX_WAIT_SECONDS if value is None else float(value)

    @property
    def issuer(self) -> str:
        value = self._setting("issuer") or os.environ.get(ISSUER_ENV) or DEFAULT_ISSUER
        return str(value).rstrip("/")

    @property
    def client_id(self) -> str:
        return str(self._setting("client_id") or DEFAULT_CLIENT_ID)

    # ------------------------------------------------------------------ AuthProvider

    async def start_login(self, params: dict[str, Any], connection: Connection) -> dict[str, Any]:
        service = accounts_service(self.kernel)
        if service.config("forced_login_method") == "api":
            raise RpcError(INVALID_REQUEST, "ChatGPT login is disabled. Use API key login instead.")
        import httpx

        issuer, client_id = self.issuer, self.client_id
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
            try:
                response = await http.post(
                    f"{issuer}/api/accounts/deviceauth/usercode", json={"client_id": client_id}
                )
            except httpx.HTTPError as exc:
                raise RpcError(
                    INTERNAL_ERROR, f"failed to request device code: {_describe(exc)}"
                ) from None
        if response.status_code == 404:
            raise RpcError(INVALID_REQUEST, NOT_ENABLED)
        if response.status_code // 100 != 2:
            raise RpcError(
                INTERNAL_ERROR,
                "failed to request device code: device code request failed with status "
                f"{response.status_code} {response.reason_phrase}",
            )
        try:
            body = response.json()
            device_auth_id = str(body["device_auth_id"])
            user_code = str(body.get("user_code") or body["usercode"])
            interval = float(str(body.get("interval") or "5").strip())
        except (ValueError, KeyError, TypeError) as exc:
            raise RpcError(INTERNAL_ERROR, f"failed to request device code: {exc}") from None
        login_id = str(uuid.uuid4())
        attempt = _Attempt(login_id, anyio.CancelScope())
        self._attempts[login_id] = attempt
        service.begin_login(login_id, lambda: self._cancel(login_id))
        self.kernel.start_soon(
            self._complete,
            attempt,
            issuer,
            client_id,
            device_auth_id,
            user_code,
            interval,
            name=f"device-code login {login_id}",
        )
        return {
            "type": "chatgptDeviceCode",
            "loginId": login_id,
            "verificationUrl": f"{issuer}/codex/device",
            "userCode": user_code,
        }

    async def cancel_login(self, login_id: str) -> bool:
        return self._cancel(login_id)

    def _cancel(self, login_id: str) -> bool:
        attempt = self._attempts.get(login_id)
        if attempt is None or attempt.cancelled:
            return False
        attempt.cancelled = True
        attempt.scope.cancel()
        return True

    # ------------------------------------------------------------------ background

    async def _complete(
        self,
        attempt: _Attempt,
        issuer: str,
        client_id: str,
        device_auth_id: str,
        user_code: str,
        interval: float,
    ) -> None:
        service = accounts_service(self.kernel)
        success, error = False, CANCELED
        try:
            with attempt.scope:
                await self._login(service, issuer, client_id, device_auth_id, user_code, interval)
                success, error = True, ""
        except DeviceCodeError as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("device-code login %s failed", attempt.login_id)
            error = f"device code login failed: {exc}"
        finally:
            self._attempts.pop(attempt.login_id, None)
            service.end_login(attempt.login_id)
        with anyio.CancelScope(shield=True):
            await service.login_completed(
                attempt.login_id, success=success, error=None if success else error
            )

    async def _login(
        self,
        service: AccountsService,
        issuer: str,
        client_id: str,
        device_auth_id: str,
        user_code: str,
        interval: float,
    ) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
            code = await self._poll(http, issuer, device_auth_id, user_code, interval)
            try:
                response = await http.post(
                    f"{issuer}/oauth/token",
                    data={
                        "grant_type": "authorization_code",
                        "client_id": client_id,
                        "code": code["authorization_code"],
                        "redirect_uri": f"{issuer}/deviceauth/callback",
                        "code_verifier": code["code_verifier"],
                    },
                )
            except httpx.HTTPError as exc:
                raise DeviceCodeError(f"device code exchange failed: {_describe(exc)}") from None
            if response.status_code // 100 != 2:
                raise DeviceCodeError(
                    "device code exchange failed: token endpoint returned status "
                    f"{response.status_code} {response.reason_phrase}"
                )
            try:
                tokens = response.json()
                id_token = str(tokens["id_token"])
                access_token = str(tokens["access_token"])
                refresh_token = str(tokens["refresh_token"])
            except (ValueError, KeyError, TypeError) as exc:
                raise DeviceCodeError(f"device code exchange failed: {exc}") from None
        problem = service.login_workspace_error(id_token)
        if problem is not None:
            raise DeviceCodeError(problem)
        await service.save_chatgpt_tokens(
            id_token=id_token,
            access_token=access_token,
            refresh_token=refresh_token,
            issuer=issuer,
            client_id=client_id,
        )

    async def _poll(
        self,
        http: httpx.AsyncClient,
        issuer: str,
        device_auth_id: str,
        user_code: str,
        interval: float,
    ) -> dict[str, Any]:
        import httpx

        url = f"{issuer}/api/accounts/deviceauth/token"
        started = time.monotonic()
        while True:
            try:
                response = await http.post(
                    url, json={"device_auth_id": device_auth_id, "user_code": user_code}
                )
            except httpx.HTTPError as exc:
                raise DeviceCodeError(f"device auth failed: {_describe(exc)}") from None
            if response.status_code // 100 == 2:
                try:
                    body = response.json()
                    if isinstance(body, dict) and "authorization_code" in body:
                        return body
                except ValueError:
                    pass
                raise DeviceCodeError("device auth failed: malformed token response")
            if response.status_code not in (403, 404):
                raise DeviceCodeError(
                    f"device auth failed with status {response.status_code} "
                    f"{response.reason_phrase}"
                )
            elapsed, limit = time.monotonic() - started, self.timeout
            if elapsed >= limit:
                raise DeviceCodeError(
                    "device auth timed out after 15 minutes"  # the official text
                    if limit == MAX_WAIT_SECONDS
                    else f"device auth timed out after {limit:g} seconds"
                )
            await anyio.sleep(min(interval, limit - elapsed))


def _describe(exc: httpx.HTTPError) -> str:
    request = getattr(exc, "_request", None)
    url = request.url if request is not None else "?"
    return f"error sending request for url ({url})"
