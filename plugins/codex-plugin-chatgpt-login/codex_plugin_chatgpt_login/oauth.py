"""The issuer's side of the browser login: the authorize URL and the two token requests.

Both requests go to ``{issuer}/oauth/token`` as forms, the way the official login server sends
them: the authorization-code exchange (with the PKCE verifier), then a token exchange of the
ID token for an API key, which is best effort (a login without it is still a login).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from codex_plugin_chatgpt_login.pkce import Pkce

if TYPE_CHECKING:
    import httpx

SCOPES = "openid profile email offline_access api.connectors.read api.connectors.invoke"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"


class TokenEndpointError(Exception):
    """The token endpoint could not be reached or refused; the message is for the user."""


@dataclass(frozen=True, slots=True)
class Tokens:
    id_token: str
    access_token: str
    refresh_token: str


def authorize_url(
    issuer: str,
    client_id: str,
    redirect_uri: str,
    pkce: Pkce,
    state: str,
    originator: str,
    workspaces: tuple[str, ...],
) -> str:
    """``{issuer}/oauth/authorize`` with the official query, in its order and encoding."""
    query = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", pkce.challenge),
        ("code_challenge_method", "S256"),
        ("state", state),
        ("scope", SCOPES),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
        ("originator", originator),
    ]
    if workspaces:
        query.append(("allowed_workspace_id", ",".join(workspaces)))
    return f"{issuer}/oauth/authorize?{urlencode(query)}"


async def exchange_code(
    http: httpx.AsyncClient,
    issuer: str,
    client_id: str,
    redirect_uri: str,
    pkce: Pkce,
    code: str,
) -> Tokens:
    form = {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": pkce.verifier,
    }
    response = await _post(http, f"{issuer}/oauth/token", form)
    if not response.is_success:
        raise TokenEndpointError(
            f"token endpoint returned status {response.status_code} {response.reason_phrase}: "
            f"{error_detail(response.text)}"
        )
    try:
        body = response.json()
        return Tokens(str(body["id_token"]), str(body["access_token"]), str(body["refresh_token"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenEndpointError(f"error decoding response body: {exc}") from None


async def obtain_api_key(
    http: httpx.AsyncClient, issuer: str, client_id: str, id_token: str
) -> str | None:
    """The API key the issuer mints for this login, or ``None`` when it will not."""
    form = {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "client_id": client_id,
        "requested_token": "openai-api-key",
        "subject_token": id_token,
        "subject_token_type": ID_TOKEN_TYPE,
    }
    try:
        response = await _post(http, f"{issuer}/oauth/token", form)
        key = response.json().get("access_token") if response.is_success else None
    except (TokenEndpointError, ValueError, AttributeError):
        return None
    return key if isinstance(key, str) and key else None


async def _post(http: httpx.AsyncClient, url: str, form: dict[str, str]) -> httpx.Response:
    import httpx

    try:
        return await http.post(url, data=form)
    except httpx.HTTPError:
        raise TokenEndpointError(f"error sending request for url ({url})") from None


def error_detail(body: str) -> str:
    """What a token endpoint's error body says: its description, message or code, else the text."""
    text = body.strip()
    if not text:
        return "unknown error"
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        return text
    if isinstance(parsed, dict):
        error = parsed.get("error")
        description = parsed.get("error_description")
        if isinstance(description, str) and description.strip():
            return description
        if isinstance(error, dict):
            message, code = error.get("message"), error.get("code")
            if isinstance(message, str) and message.strip():
                return message
            if isinstance(code, str) and code.strip():
                return code
        if isinstance(error, str) and error.strip():
            return error
    return text
