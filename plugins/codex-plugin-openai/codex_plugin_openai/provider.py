"""Model providers over httpx: provider config, auth, retries with backoff, SSE parsing.

``StreamingProvider`` holds what every wire API shares (the request, its headers and retries,
the 401 refresh, the idle timeout, error mapping); ``ResponsesProvider`` speaks the Responses
API, ``codex_plugin_openai.chat.ChatProvider`` Chat Completions. httpx is imported by the first
model request, not when the plugin loads.
"""

from __future__ import annotations

import json
import logging
import os
import random
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

if TYPE_CHECKING:
    import httpx

    from codex_core.kernel import Kernel

log = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
#: The environment variable older Codex read the base URL from; still honoured, with a notice.
LEGACY_BASE_URL_VARIABLE = "OPENAI_BASE_URL"
BASE_URL_DEPRECATED = {
    "summary": "`OPENAI_BASE_URL` is deprecated. Set `openai_base_url` in config.toml instead.",
    "details": None,
}
DEFAULT_REQUEST_MAX_RETRIES = 4
#: Hard caps, whatever the config says (the reference caps them too).
MAX_REQUEST_RETRIES = 100
DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000
CONNECT_TIMEOUT_SECONDS = 30.0
BACKOFF_BASE_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 10.0
#: The message the reference shows for 5xx answers (the body is usually not worth showing).
#: The payload that ends a Chat Completions stream.
SSE_DONE = "[DONE]"
SERVER_ERROR_MESSAGE = (
    "We\u2019re currently experiencing high demand, which may cause temporary errors."
)


class ModelError(Exception):
    """A model request that failed for good.

    ``codex_error_info`` is the protocol's ``CodexErrorInfo`` (a string such as
    ``"unauthorized"`` or an object such as ``{"responseStreamDisconnected": {...}}``); the
    turn engine puts it in the ``error`` notification and the failed turn.
    """

    def __init__(
        self,
        message: str,
        *,
        codex_error_info: Any = "other",
        http_status_code: int | None = None,
        retryable: bool = False,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.codex_error_info = codex_error_info
        self.http_status_code = http_status_code
        self.retryable = retryable
        #: The ``Retry-After`` header of the answer, when it had one.
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One entry of ``model_providers`` (or the built-in ``openai``), resolved."""

    id: str
    name: str
    base_url: str
    api_key: str | None
    env_key: str | None
    request_max_retries: int
    stream_idle_timeout: float
    headers: dict[str, str] = field(default_factory=dict)
    query_params: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path}"


def resolve_provider(kernel: Kernel, provider_id: str) -> ProviderConfig:
    """Read ``model_providers.<id>`` (and ``openai_base_url`` for ``openai``) from the config."""
    config = kernel.config
    table = config.get(f"model_providers.{provider_id}")
    if table is None and provider_id != "openai":
        raise ModelError(
            f"model provider `{provider_id}` is not configured: add [model_providers.{provider_id}]"
            " with a base_url to config.toml",
            codex_error_info="badRequest",
        )
    table = dict(table or {})
    if provider_id == "openai":
        base_url = (
            table.get("base_url")
            or config.get("openai_base_url")
            or os.environ.get(LEGACY_BASE_URL_VARIABLE)
            or OPENAI_BASE_URL
        )
        env_key = table.get("env_key") or "OPENAI_API_KEY"
    else:
        base_url = table.get("base_url")
        env_key = table.get("env_key")
        if not base_url:
            raise ModelError(
                f"model provider `{provider_id}` has no base_url", codex_error_info="badRequest"
            )
    # Without the environment variable, the built-in provider uses the account's login
    # (``kernel.services["accounts"]``), resolved per request in ``stream``.
    api_key = os.environ.get(env_key) if env_key else None
    if env_key and not api_key and provider_id != "openai":
        raise ModelError(
            f"Missing environment variable: `{env_key}`. "
            f"Set it to the API key of model provider `{provider_id}`.",
            codex_error_info="unauthorized",
        )
    headers = {str(k): str(v) for k, v in (table.get("http_headers") or {}).items()}
    for header, variable in (table.get("env_http_headers") or {}).items():
        value = os.environ.get(str(variable))
        if value:
            headers[str(header)] = value
    retries = table.get("request_max_retries", DEFAULT_REQUEST_MAX_RETRIES)
    idle_ms = table.get("stream_idle_timeout_ms", DEFAULT_STREAM_IDLE_TIMEOUT_MS)
    return ProviderConfig(
        id=provider_id,
        name=str(table.get("name") or provider_id),
        base_url=str(base_url),
        api_key=api_key or None,
        env_key=env_key,
        request_max_retries=max(0, min(int(retries), MAX_REQUEST_RETRIES)),
        stream_idle_timeout=max(0.001, float(idle_ms) / 1000),
        headers=headers,
        query_params={str(k): str(v) for k, v in (table.get("query_params") or {}).items()},
    )


def error_info_for_status(status: int) -> Any:
    if status in (401, 403):
        return "unauthorized"
    if status == 429:
        return "rateLimitExceeded"
    if status >= 500:
        return "internalServerError"
    return "badRequest"


def _error_message(response: httpx.Response, body: bytes) -> str:
    if response.status_code >= 500:
        return SERVER_ERROR_MESSAGE
    try:
        data = json.loads(body)
        message = data["error"]["message"]
        if isinstance(message, str) and message:
            return f"unexpected status {response.status_code}: {message}"
    except (ValueError, KeyError, TypeError):
        pass
    text = body.decode("utf-8", errors="replace").strip()
    return f"unexpected status {response.status_code}: {text or response.reason_phrase}"


def backoff_seconds(attempt: int, retry_after: str | None = None) -> float:
    """Exponential backoff with jitter; a ``Retry-After`` in seconds wins (capped)."""
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), BACKOFF_MAX_SECONDS)
        except ValueError:
            pass
    delay: float = BACKOFF_BASE_SECONDS * (2**attempt)
    return float(min(delay * random.uniform(0.9, 1.1), BACKOFF_MAX_SECONDS))


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Server-sent events to JSON objects (``data:`` lines joined; comments skipped).

    ``data: [DONE]``, the last event of a Chat Completions stream, ends the iteration.
    """
    data: list[str] = []
    event_name: str | None = None
    async for line in lines:
        if line == "":
            if data:
                payload = "\n".join(data)
                data = []
                if payload == SSE_DONE:
                    return
                try:
                    event = json.loads(payload)
                except ValueError:
                    log.warning("dropped a server-sent event that is not JSON: %.200s", payload)
                    event_name = None
                    continue
                if isinstance(event, dict):
                    if "type" not in event and event_name:
                        event["type"] = event_name
                    yield event
            event_name = None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event_name = value
    if data:
        try:
            event = json.loads("\n".join(data))
        except ValueError:
            return
        if isinstance(event, dict):
            yield event


class StreamingProvider(ABC):
    """A model wire API over HTTP with server-sent events; subclasses say what to send.

    ``request`` (from the turn engine): ``model_provider`` (the provider id), ``body`` (a
    Responses API body) and ``headers`` (``originator``, ``session-id``, ...). ``encode``
    makes the body the wire API takes (sent to ``path`` under the provider's base URL) and
    ``events`` turns its stream back into Responses API events, ending with
    ``response.completed``, which is what the turn engine reads whatever the wire.
    """

    wire_api: ClassVar[str]
    path: ClassVar[str]

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(http2=False, follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def stream(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        import httpx

        provider = resolve_provider(self.kernel, str(request.get("model_provider") or "openai"))
        headers = {
            "accept": "text/event-stream",
            "content-type": "application/json",
            **provider.headers,
            **{str(k): str(v) for k, v in (request.get("headers") or {}).items()},
        }
        accounts = self.kernel.services.get("accounts") if not provider.api_key else None
        if provider.api_key:
            headers["authorization"] = f"Bearer {provider.api_key}"
        elif accounts is not None and provider.id == "openai":
            credentials = await accounts.fresh_credentials()
            if credentials is not None:
                headers.update(credentials.headers())
        request_body = dict(request.get("body") or {})
        body = json.dumps(self.encode(request_body)).encode()
        timeout = httpx.Timeout(
            connect=CONNECT_TIMEOUT_SECONDS,
            read=provider.stream_idle_timeout,
            write=CONNECT_TIMEOUT_SECONDS,
            pool=CONNECT_TIMEOUT_SECONDS,
        )
        attempt = 0
        refreshed = False
        while True:
            try:
                async for event in self._attempt(provider, headers, body, request_body, timeout):
                    yield event
                return
            except ModelError as exc:
                if exc.http_status_code == 401 and accounts is not None and not refreshed:
                    # Once per request: ask the account for new credentials (a client's
                    # external tokens, or the token endpoint), then try again.
                    refreshed = True
                    headers.update(await self._refreshed_headers(accounts))
                    continue
                if not exc.retryable or attempt >= provider.request_max_retries:
                    if exc.retryable and provider.request_max_retries:
                        exc.message = f"{exc.message} (after {attempt + 1} attempts)"
                        exc.args = (exc.message,)
                    raise
                delay = backoff_seconds(attempt, exc.retry_after)
                log.info("model request failed (%s); retry %d in %.2fs", exc, attempt + 1, delay)
                attempt += 1
                await anyio.sleep(delay)

    @staticmethod
    async def _refreshed_headers(accounts: Any) -> dict[str, str]:
        from codex_core.accounts.service import AuthRefreshError

        try:
            credentials = await accounts.refresh("unauthorized")
        except AuthRefreshError as exc:
            raise ModelError(exc.message, codex_error_info="unauthorized") from None
        return dict(credentials.headers())

    async def _attempt(
        self,
        provider: ProviderConfig,
        headers: Mapping[str, str],
        body: bytes,
        request_body: dict[str, Any],
        timeout: httpx.Timeout,
    ) -> AsyncIterator[dict[str, Any]]:
        """One HTTP request; only failures before the first event are retryable."""
        import httpx

        client = self._http()
        started = False
        try:
            async with client.stream(
                "POST",
                provider.url(self.path),
                content=body,
                headers=dict(headers),
                params=provider.query_params or None,
                timeout=timeout,
            ) as response:
                if response.status_code != 200:
                    raw = await response.aread()
                    status = response.status_code
                    raise ModelError(
                        _error_message(response, raw),
                        codex_error_info=error_info_for_status(status),
                        http_status_code=status,
                        retryable=status == 429 or status >= 500,
                        retry_after=response.headers.get("retry-after"),
                    )
                completed = False
                events = self.events(request_body, parse_sse(response.aiter_lines()))
                async for event in events:
                    kind = event.get("type")
                    if kind == "response.created":
                        # The HTTP headers, where the turn engine reads the model that served
                        # the request and the rate limits (what the event carries wins).
                        shell = event.setdefault("response", {})
                        shell["headers"] = {**response.headers, **(shell.get("headers") or {})}
                    started = True
                    yield event
                    if kind == "response.completed":
                        completed = True
                        break
                if not completed:
                    raise ModelError(
                        "stream disconnected before completion: "
                        "stream closed before response.completed",
                        codex_error_info={"responseStreamDisconnected": {"httpStatusCode": None}},
                        retryable=not started,
                    )
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ReadTimeout):
                raise ModelError(
                    "stream disconnected before completion: idle timeout waiting for SSE",
                    codex_error_info={"responseStreamDisconnected": {"httpStatusCode": None}},
                    retryable=not started,
                ) from None
            raise ModelError(
                f"timed out connecting to model provider `{provider.id}` at {provider.base_url}",
                codex_error_info={"httpConnectionFailed": {"httpStatusCode": None}},
                retryable=True,
            ) from None
        except httpx.TransportError as exc:
            info: Any
            if started:
                info = {"responseStreamDisconnected": {"httpStatusCode": None}}
            else:
                info = {"httpConnectionFailed": {"httpStatusCode": None}}
            raise ModelError(
                f"error sending request to model provider `{provider.id}` at "
                f"{provider.url(self.path)}: {exc or type(exc).__name__}",
                codex_error_info=info,
                retryable=not started,
            ) from None

    @abstractmethod
    def encode(self, body: dict[str, Any]) -> dict[str, Any]:
        """The wire API's request body for a Responses API ``body``."""

    @abstractmethod
    def events(
        self, body: dict[str, Any], stream: AsyncIterator[dict[str, Any]]
    ) -> AsyncIterator[dict[str, Any]]:
        """The wire API's events (parsed SSE) as Responses API events; a failure the stream
        reports raises ``ModelError``. ``body`` is the Responses API body of the request."""


class ResponsesProvider(StreamingProvider):
    """``wire_api = "responses"``: the request as it is, the events as they come."""

    wire_api = "responses"
    path = "responses"

    def encode(self, body: dict[str, Any]) -> dict[str, Any]:
        return body

    async def events(
        self, body: dict[str, Any], stream: AsyncIterator[dict[str, Any]]
    ) -> AsyncIterator[dict[str, Any]]:
        async for event in stream:
            kind = event.get("type")
            if kind == "response.failed":
                failure = (event.get("response") or {}).get("error") or {}
                message = failure.get("message") or "response.failed"
                raise ModelError(f"stream disconnected before completion: {message}")
            if kind == "response.incomplete":
                details = (event.get("response") or {}).get("incomplete_details") or {}
                raise ModelError(incomplete_message(details.get("reason") or "unknown"))
            yield event


def incomplete_message(reason: str) -> str:
    """The reference's error for an answer cut short (``max_output_tokens``, ...)."""
    return f"Incomplete response returned, reason: {reason}"
