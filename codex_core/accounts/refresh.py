"""Refreshing managed ChatGPT tokens at the issuer's token endpoint, as the official server does.

When: before a model request if the access token expires within five minutes (its ``exp``)
or, for tokens without one, the last refresh is older than ``TOKEN_REFRESH_INTERVAL``; and
after the model API answered 401. Where: ``CODEX_REFRESH_TOKEN_URL_OVERRIDE`` (the official
override), else the ``{issuer}/oauth/token`` of the issuer that granted the login
(``tokens.oauth_provenance``), else ``https://auth.openai.com/oauth/token``.

A refusal that cannot get better (the endpoint says 401, or ``refresh_token_expired``,
``refresh_token_reused``, ``refresh_token_invalidated``) is *permanent*: the accounts service
remembers it for that stored login and fails later refreshes at once (see ``service``).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from codex_core.accounts.tokens import InvalidToken, token_info

DEFAULT_ISSUER = "https://auth.openai.com"
DEFAULT_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
#: The official server's override of the managed-auth token endpoint (also honoured here).
REFRESH_URL_ENV = "CODEX_REFRESH_TOKEN_URL_OVERRIDE"
TOKEN_REFRESH_INTERVAL = timedelta(days=8)
#: An access token this close to its ``exp`` is refreshed before use.
ACCESS_TOKEN_REFRESH_WINDOW = timedelta(minutes=5)
HTTP_TIMEOUT_SECONDS = 30.0

EXPIRED = (
    "Your access token could not be refreshed because your refresh token has expired. "
    "Please log out and sign in again."
)
REUSED = (
    "Your access token could not be refreshed because your refresh token was already used. "
    "Please log out and sign in again."
)
REVOKED = (
    "Your access token could not be refreshed because your refresh token was revoked. "
    "Please log out and sign in again."
)
UNKNOWN = "Your access token could not be refreshed. Please log out and sign in again."
PERMANENT_CODES = {
    "refresh_token_expired": EXPIRED,
    "refresh_token_reused": REUSED,
    "refresh_token_invalidated": REVOKED,
}


class AuthRefreshError(Exception):
    """A refresh that did not produce new credentials; ``message`` is for the user.

    ``permanent``: retrying with the same stored login cannot succeed. ``canceled``: the client
    that owns external tokens went away.
    """

    def __init__(self, message: str, *, canceled: bool = False, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.canceled = canceled
        self.permanent = permanent


def now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """``last_refresh`` as the official server writes it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_stale(stored: dict[str, Any]) -> bool:
    """Whether stored ChatGPT tokens should be refreshed before they are used."""
    tokens = stored.get("tokens") if isinstance(stored.get("tokens"), dict) else {}
    access = tokens.get("access_token") if tokens else None
    if isinstance(access, str):
        try:
            expires_at = token_info(access).expires_at
        except InvalidToken:
            expires_at = None
        if expires_at is not None:
            return expires_at <= (now() + ACCESS_TOKEN_REFRESH_WINDOW).timestamp()
    raw = stored.get("last_refresh")
    if not isinstance(raw, str):
        return False
    try:
        last = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return False
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return last < now() - TOKEN_REFRESH_INTERVAL


def endpoint(tokens: dict[str, Any]) -> tuple[str, str]:
    """The token endpoint URL and client id for these stored tokens."""
    provenance = tokens.get("oauth_provenance")
    provenance = provenance if isinstance(provenance, dict) else {}
    issuer = str(provenance.get("issuer") or DEFAULT_ISSUER).rstrip("/")
    client_id = str(provenance.get("client_id") or DEFAULT_CLIENT_ID)
    return os.environ.get(REFRESH_URL_ENV) or f"{issuer}/oauth/token", client_id


async def request_refresh(url: str, client_id: str, refresh_token: str) -> dict[str, Any]:
    """The endpoint's new tokens (any of ``id_token``, ``access_token``, ``refresh_token``)."""
    import httpx

    body = {"client_id": client_id, "grant_type": "refresh_token", "refresh_token": refresh_token}
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
            response = await http.post(url, json=body)
    except httpx.HTTPError:
        raise AuthRefreshError(f"error sending request for url ({url})") from None
    if response.is_success:
        try:
            answer = response.json()
        except ValueError as exc:
            raise AuthRefreshError(f"error decoding response body: {exc}") from None
        if not isinstance(answer, dict):
            raise AuthRefreshError("error decoding response body: not a JSON object")
        return answer
    code = _error_code(response.text)
    message = PERMANENT_CODES.get((code or "").lower())
    if response.status_code == 401 or message is not None:
        raise AuthRefreshError(message or UNKNOWN, permanent=True)
    raise AuthRefreshError(
        f"Failed to refresh token: {response.status_code} {response.reason_phrase}: "
        f"{_error_message(response.text)}"
    )


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _error_code(text: str) -> str | None:
    """``error.code``, ``error`` (a string) or ``code`` of an error body."""
    body = _parsed(text)
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return str(error["code"])
    if isinstance(error, str):
        return error
    code = body.get("code")
    return code if isinstance(code, str) else None


def _error_message(text: str) -> str:
    body = _parsed(text)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return text or "Unknown error"
