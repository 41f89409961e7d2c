"""OAuth for streamable HTTP MCP servers, as the reference does it: ``mcpServer/oauth/login``'s
browser flow, and tokens for the transport, refreshed before they expire.

The protocol pieces come from the ``mcp`` SDK's client auth (``mcp.client.auth``): metadata
discovery (protected resource metadata, then authorization server metadata), dynamic client
registration, PKCE and the token models. The SDK's ``OAuthClientProvider`` runs its flow inside
a request that got a 401; the reference instead answers the login request with the
authorization URL and finishes in the background, so the steps are driven from here.

A login binds a callback listener on 127.0.0.1 (``mcp_oauth_callback_port``, else any free
port) at ``/callback/<id>``, ``<id>`` derived from the server URL as the reference derives it,
discovers, registers a public client (``client_name`` ``Codex``) and answers with the URL. When
the browser comes back (to the kernel's shared loopback callback server,
``codex_core.loopback_callback``) the code is exchanged and the tokens stored
(``oauth_store.py``).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import httpx2
from anyio.abc import SocketAttribute, SocketStream
from mcp.client.auth import OAuthFlowError, OAuthTokenError, PKCEParameters
from mcp.client.auth.utils import (
    build_oauth_authorization_server_metadata_discovery_urls,
    build_protected_resource_metadata_discovery_urls,
    create_client_registration_request,
    create_oauth_metadata_request,
    get_client_metadata_scopes,
    handle_auth_metadata_response,
    handle_protected_resource_response,
    handle_registration_response,
    handle_token_response_scopes,
)
from mcp.shared.auth import (
    OAuthClientMetadata,
    OAuthMetadata,
    OAuthToken,
    ProtectedResourceMetadata,
)
from mcp.shared.auth_utils import check_resource_allowed, resource_url_from_server_url

from codex_core import loopback_callback
from codex_plugin_mcp.config import OAuthSettings
from codex_plugin_mcp.oauth_store import CredentialStore, StoredTokens, now_ms

if TYPE_CHECKING:
    from codex_plugin_mcp.config import ServerConfig

log = logging.getLogger(__name__)

#: The reference's defaults: five minutes for the browser, at least one second.
DEFAULT_LOGIN_TIMEOUT = 300
CLIENT_NAME = "Codex"
CALLBACK_DONE = "Authentication complete. You may close this window."
REAUTHENTICATE = "OAuth refresh token was rejected; reauthentication required"
HTTP_TIMEOUT = 30.0
GRANT_TYPES = ("authorization_code", "refresh_token")


@dataclass(frozen=True)
class Discovery:
    """What a server says about its authorization: RFC 9728 and RFC 8414 metadata."""

    resource: ProtectedResourceMetadata | None
    metadata: OAuthMetadata

    def resource_url(self, server_url: str) -> str:
        """The RFC 8707 ``resource``: the server's advertised resource when it covers the URL."""
        canonical = resource_url_from_server_url(server_url)
        advertised = str(self.resource.resource) if self.resource else None
        if advertised and check_resource_allowed(canonical, advertised):
            return advertised
        return canonical


def http_client(config: ServerConfig) -> httpx2.AsyncClient:
    """A client for the OAuth endpoints, with the server's configured headers."""
    return httpx2.AsyncClient(headers=config.static_headers(), timeout=HTTP_TIMEOUT)


async def discover(http: httpx2.AsyncClient, server_url: str) -> Discovery | None:
    """The server's authorization metadata; ``None`` when it publishes none (no OAuth)."""
    resource = None
    for url in build_protected_resource_metadata_discovery_urls(None, server_url):
        resource = await handle_protected_resource_response(
            await http.send(create_oauth_metadata_request(url))
        )
        if resource is not None:
            break
    auth_server = str(resource.authorization_servers[0]) if resource else None
    for url in build_oauth_authorization_server_metadata_discovery_urls(auth_server, server_url):
        response = await http.send(create_oauth_metadata_request(url))
        try_next, metadata = await handle_auth_metadata_response(response)
        if metadata is not None:
            return Discovery(resource, metadata)
        if not try_next:
            break
    return None


def callback_id(server_url: str) -> str:
    """The reference's per-server callback path segment: 9 bytes of SHA-256 of the URL."""
    parts = urlsplit(server_url)
    normalized = urlunsplit(parts._replace(path=parts.path or "/", fragment=""))
    digest = hashlib.sha256(normalized.encode()).digest()[:9]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def redirect_uri(settings: OAuthSettings, server_url: str, port: int) -> str:
    base = settings.callback_url or f"http://127.0.0.1:{port}/callback"
    return f"{base.rstrip('/')}/{callback_id(server_url)}"


def token_from_response(
    config: ServerConfig,
    client_id: str,
    token: OAuthToken,
    issuer: str | None,
    previous: StoredTokens | None = None,
) -> StoredTokens:
    """Stored tokens from a token response; a refresh may omit what does not change."""
    assert config.url is not None
    expires_at = now_ms() + token.expires_in * 1000 if token.expires_in is not None else None
    refresh = token.refresh_token or (previous.refresh_token if previous else None)
    scopes = token.scope.split() if token.scope is not None else []
    if token.scope is None and previous is not None:
        scopes = previous.scopes
    return StoredTokens(
        server_name=config.name, url=config.url, client_id=client_id,
        access_token=token.access_token, refresh_token=refresh, expires_at=expires_at,
        scopes=scopes, issuer=issuer,
    )  # fmt: skip


class ProviderError(Exception):
    """The authorization server sent the browser back with ``error``."""

    def __init__(self, error: str | None, description: str | None) -> None:
        if error and description:
            text = f"OAuth provider returned `{error}`: {description}"
        elif error:
            text = f"OAuth provider returned `{error}`"
        elif description:
            text = f"OAuth error: {description}"
        else:
            text = "OAuth provider returned an error"
        super().__init__(text)


class OAuthLogin:
    """One ``mcpServer/oauth/login``: started (URL known) by ``start``, ended by ``finish``."""

    def __init__(self, config: ServerConfig, store: CredentialStore) -> None:
        self.config = config
        self.store = store
        self.authorization_url = ""
        self.redirect_uri = ""
        self._listener: anyio.abc.Listener[SocketStream] | None = None
        self._path = ""
        self._state = secrets.token_urlsafe(16)
        self._pkce = PKCEParameters.generate()
        self._client_id = ""
        self._client_secret: str | None = None
        self._discovery: Discovery | None = None
        self._resource = ""
        self._callback: dict[str, str] | None = None

    @classmethod
    async def start(
        cls,
        config: ServerConfig,
        settings: OAuthSettings,
        store: CredentialStore,
        scopes: list[str] | None,
    ) -> OAuthLogin:
        """Listen for the callback, discover, register; raises when any of it fails."""
        assert config.url is not None
        login = cls(config, store)
        if settings.callback_port == 0:
            raise ValueError(
                "invalid MCP OAuth callback port `0`: port must be between 1 and 65535"
            )
        listener = await anyio.create_tcp_listener(
            local_host="127.0.0.1", local_port=settings.callback_port or 0
        )
        login._listener = listener
        try:
            port = listener.extra(SocketAttribute.local_port)
            login.redirect_uri = redirect_uri(settings, config.url, port)
            login._path = urlsplit(login.redirect_uri).path
            async with http_client(config) as http:
                await login._prepare(http, scopes)
        except BaseException:
            await login.aclose()
            raise
        return login

    async def _prepare(self, http: httpx2.AsyncClient, scopes: list[str] | None) -> None:
        config = self.config
        assert config.url is not None
        discovery = await discover(http, config.url)
        if discovery is None:
            raise OAuthFlowError(f"no OAuth metadata found for {config.url}")
        self._discovery = discovery
        if scopes is None:
            scopes = list(config.scopes) if config.scopes is not None else None
        if scopes is None:
            chosen = get_client_metadata_scopes(
                None, discovery.resource, discovery.metadata, list(GRANT_TYPES)
            )
            scopes = chosen.split() if chosen else []
        client = OAuthClientMetadata(
            redirect_uris=[self.redirect_uri], token_endpoint_auth_method="none",  # type: ignore[list-item]
            client_name=CLIENT_NAME, scope=" ".join(scopes) or None,
        )  # fmt: skip
        origin = urlsplit(config.url)
        base = f"{origin.scheme}://{origin.netloc}"
        request = create_client_registration_request(discovery.metadata, client, base)
        registered = await handle_registration_response(await http.send(request))
        self._client_id, self._client_secret = registered.client_id, registered.client_secret
        self._resource = config.oauth_resource or discovery.resource_url(config.url)
        query = {
            "response_type": "code", "client_id": self._client_id, "state": self._state,
            "code_challenge": self._pkce.code_challenge, "code_challenge_method": "S256",
            "redirect_uri": self.redirect_uri,
        }  # fmt: skip
        if scopes:
            query["scope"] = " ".join(scopes)
        query["resource"] = self._resource
        endpoint = str(discovery.metadata.authorization_endpoint)
        separator = "&" if urlsplit(endpoint).query else "?"
        self.authorization_url = f"{endpoint}{separator}{urlencode(query)}"

    async def finish(self, timeout: float) -> StoredTokens:
        """Wait for the browser (``timeout`` seconds), exchange the code, store the tokens."""
        assert self._listener is not None and self._discovery is not None
        try:
            with anyio.move_on_after(timeout) as waiting:
                await loopback_callback.serve(self._listener, self._answer, read_seconds=10)
            if waiting.cancelled_caught:
                raise OAuthFlowError("timed out waiting for OAuth callback")
        finally:
            await self.aclose()
        callback = self._callback or {}
        if "code" not in callback:
            raise ProviderError(callback.get("error"), callback.get("error_description"))
        if not secrets.compare_digest(callback.get("state", ""), self._state):
            raise OAuthFlowError("OAuth callback state does not match the login's")
        async with http_client(self.config) as http:
            tokens = await self._exchange(http, callback["code"])
        await anyio.to_thread.run_sync(self.store.save, tokens)
        return tokens

    async def _exchange(self, http: httpx2.AsyncClient, code: str) -> StoredTokens:
        assert self._discovery is not None
        data = {
            "grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
            "client_id": self._client_id, "code_verifier": self._pkce.code_verifier,
            "resource": self._resource,
        }  # fmt: skip
        if self._client_secret:
            data["client_secret"] = self._client_secret
        response = await http.post(str(self._discovery.metadata.token_endpoint), data=data)
        if response.status_code not in (200, 201):
            raise OAuthTokenError(
                f"Token exchange failed ({response.status_code}): {response.text}"
            )
        token = await handle_token_response_scopes(response)
        issuer = str(self._discovery.metadata.issuer)
        return token_from_response(self.config, self._client_id, token, issuer)

    async def _answer(self, target: str) -> loopback_callback.Reply:
        """One request to the callback listener: the browser coming back (the final reply),
        or a stray one."""
        status, body, params = self._outcome(target)
        headers = [("content-type", "text/plain; charset=utf-8")]
        final = params is not None and self._callback is None
        if final:
            self._callback = params
        return loopback_callback.Reply(status, body.encode(), headers, final=final)

    def _outcome(self, target: str) -> tuple[int, str, dict[str, str] | None]:
        """The answer to the browser, and the callback's parameters when it is the one."""
        path, _, query = target.partition("?")
        params = dict(parse_qsl(query))
        if path != self._path or not query or self._callback is not None:
            return 400, "Invalid OAuth callback", None
        if "code" in params and "state" in params:
            return 200, CALLBACK_DONE, params
        if "error" in params or "error_description" in params:
            error = ProviderError(params.get("error"), params.get("error_description"))
            return 400, str(error), params
        return 400, "Invalid OAuth callback", None

    async def aclose(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.aclose()


class OAuthSession:
    """A logged-in server's tokens for its transport: refreshed when they are about to expire
    (or the server says 401), and stored again."""

    def __init__(self, config: ServerConfig, store: CredentialStore, tokens: StoredTokens) -> None:
        self.config = config
        self.store = store
        self.tokens = tokens
        self._discovery: Discovery | None = None
        self._lock = anyio.Lock()

    async def access_token(self, *, rejected: str | None = None) -> str:
        """The token to send; refreshed first when it expires soon or ``rejected`` is it."""
        async with self._lock:
            stale = rejected is not None and rejected == self.tokens.access_token
            if (stale or self.tokens.needs_refresh()) and self.tokens.refresh_token:
                await self._refresh()
            return self.tokens.access_token

    async def _refresh(self) -> None:
        assert self.config.url is not None
        async with http_client(self.config) as http:
            if self._discovery is None:
                self._discovery = await discover(http, self.config.url)
            if self._discovery is None:
                raise OAuthTokenError(f"no OAuth metadata found for {self.config.url}")
            data = {"grant_type": "refresh_token", "client_id": self.tokens.client_id,
                    "refresh_token": str(self.tokens.refresh_token),
                    "resource": self.config.oauth_resource
                    or self._discovery.resource_url(self.config.url)}  # fmt: skip
            response = await http.post(str(self._discovery.metadata.token_endpoint), data=data)
            if response.status_code != 200:
                raise OAuthTokenError(REAUTHENTICATE)
            token = await handle_token_response_scopes(response)
        issuer = self.tokens.issuer or str(self._discovery.metadata.issuer)
        fresh = token_from_response(self.config, self.tokens.client_id, token, issuer, self.tokens)
        self.tokens = fresh
        await anyio.to_thread.run_sync(self.store.save, fresh)

    def auth(self) -> httpx2.Auth:
        return BearerAuth(self)


class BearerAuth(httpx2.Auth):
    """Adds the session's token to each transport request; one retry after a refresh on 401."""

    def __init__(self, session: OAuthSession) -> None:
        self.session = session

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        token = await self.session.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and self.session.tokens.refresh_token:
            fresh = await self.session.access_token(rejected=token)
            if fresh != token:
                request.headers["Authorization"] = f"Bearer {fresh}"
                yield request


async def resolve_auth(
    config: ServerConfig, store: CredentialStore
) -> tuple[str, OAuthSession | None]:
    """The server's ``authStatus`` (the reference's: ``unsupported``, ``bearerToken``,
    ``oAuth``, ``notLoggedIn``) and, when logged in, the session its transport uses."""
    if config.url is None:
        return "unsupported", None
    if config.bearer_token_env_var:
        return "bearerToken", None
    try:
        tokens = await anyio.to_thread.run_sync(store.load, config.name, config.url)
    except OSError as exc:
        log.warning("MCP server %s: %s", config.name, exc)
        tokens = None
    if tokens is not None and tokens.usable():
        return "oAuth", OAuthSession(config, store, tokens)
    try:
        async with http_client(config) as http:
            found = await discover(http, config.url)
    except httpx2.HTTPError as exc:
        log.info("MCP server %s: OAuth discovery failed: %s", config.name, exc)
        found = None
    return ("notLoggedIn" if found is not None else "unsupported"), None
