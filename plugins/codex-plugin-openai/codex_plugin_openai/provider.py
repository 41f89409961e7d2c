"""Model providers over httpx: provider config, auth, retries with backoff, SSE parsing.

``StreamingProvider`` holds what every wire API shares (the request, its headers and retries,
the 401 refresh, the idle timeout, error mapping);
``codex_plugin_openai.responses.ResponsesProvider`` speaks the Responses API,
``codex_plugin_openai.chat.ChatProvider`` Chat Completions. httpx, httpx-sse and tenacity are
imported by the first model request, not when the plugin loads.
"""

from __future__ import annotations

import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

from codex_core.models.contract import (
    ModelErrorKind,
    ModelEvent,
    ModelRequest,
    ResponseCompleted,
    ResponseFailed,
)
from codex_plugin_openai.headers import reported_rate_limits, request_headers

if TYPE_CHECKING:
    import httpx
    from httpx_sse import ServerSentEvent
    from tenacity import RetryCallState

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
#: The reference's words for a 429 whose error type is ``usage_limit_reached``.
USAGE_LIMIT_MESSAGE = "You\u2019ve hit your usage limit. Try again later."
SERVER_ERROR_MESSAGE = (
    "We\u2019re currently experiencing high demand, which may cause temporary errors."
)


class ModelError(Exception):
    """A model request that failed; ``stream`` reports it as the ``ResponseFailed`` event.

    ``kind`` is the protocol's ``CodexErrorInfo`` kind (``"unauthorized"``,
    ``"responseStreamDisconnected"``, ...); ``retryable`` failures (5xx, connection
    failures before the answer started) are retried, after ``retry_after`` seconds (the
    answer's ``Retry-After`` header) when it said.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: ModelErrorKind = "other",
        http_status_code: int | None = None,
        retryable: bool = False,
        retry_after: str | None = None,
        rate_limits: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind: ModelErrorKind = kind
        self.http_status_code = http_status_code
        self.retryable = retryable
        self.retry_after = retry_after
        #: The account's limits, for a failure about them (``ResponseFailed.rate_limits``).
        self.rate_limits = rate_limits


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
            kind="badRequest",
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
            raise ModelError(f"model provider `{provider_id}` has no base_url", kind="badRequest")
    # Without the environment variable, the built-in provider uses the account's login
    # (``kernel.services["accounts"]``), resolved per request in ``stream``.
    api_key = os.environ.get(env_key) if env_key else None
    if env_key and not api_key and provider_id != "openai":
        raise ModelError(
            f"Missing environment variable: `{env_key}`. "
            f"Set it to the API key of model provider `{provider_id}`.",
            kind="unauthorized",
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


def status_error(response: httpx.Response, body: bytes) -> ModelError:
    """The failure an answer other than 200 is: a 5xx is retried (after its ``Retry-After``,
    when it says); a 429 is not, as in the reference: it is the account's usage limit, or the
    end of the attempts."""
    status = response.status_code
    if status == 429:
        if _error_type(body) == "usage_limit_reached":
            return ModelError(
                USAGE_LIMIT_MESSAGE,
                kind="usageLimitExceeded",
                http_status_code=429,
                rate_limits=reported_rate_limits(response.headers),
            )
        return ModelError(
            f"exceeded retry limit, last status: 429 {HTTPStatus(429).phrase}",
            kind="responseTooManyFailedAttempts",
            http_status_code=429,
        )
    return ModelError(
        _error_message(response, body),
        kind=kind_for_status(status),
        http_status_code=status,
        retryable=status >= 500,
        retry_after=response.headers.get("retry-after"),
    )


def _error_type(body: bytes) -> str | None:
    """The ``error.type`` of an API error body, if it has one."""
    try:
        kind = json.loads(body)["error"]["type"]
    except (ValueError, KeyError, TypeError):
        return None
    return kind if isinstance(kind, str) else None


def kind_for_status(status: int) -> ModelErrorKind:
    if status in (401, 403):
        return "unauthorized"
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


def retry_wait(state: RetryCallState) -> float:
    """How long to wait before the next attempt: the failed answer's ``Retry-After`` (in
    seconds, capped) when it had one, else exponential backoff with jitter."""
    from tenacity import wait_exponential_jitter

    failure = state.outcome.exception() if state.outcome is not None else None
    retry_after = failure.retry_after if isinstance(failure, ModelError) else None
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), BACKOFF_MAX_SECONDS)
        except ValueError:
            pass
    backoff = wait_exponential_jitter(
        multiplier=BACKOFF_BASE_SECONDS, max=BACKOFF_MAX_SECONDS, jitter=BACKOFF_BASE_SECONDS / 2
    )
    return float(backoff(state))


def _retryable(failure: BaseException) -> bool:
    return isinstance(failure, ModelError) and failure.retryable


def sse_json(event: ServerSentEvent) -> dict[str, Any] | None:
    """A server-sent event's JSON object; its ``event:`` name is the ``type`` when the data
    has none. ``None`` for data that is not a JSON object (logged and skipped)."""
    try:
        data = json.loads(event.data)
    except ValueError:
        log.warning("dropped a server-sent event that is not JSON: %.200s", event.data)
        return None
    if not isinstance(data, dict):
        return None
    if "type" not in data and event.event and event.event != "message":
        data["type"] = event.event
    return data


@dataclass(slots=True)
class _Opened:
    """A model answer whose status was good and whose first event arrived."""

    response: httpx.Response
    close: Callable[[], Awaitable[None]]
    events: AsyncIterator[ServerSentEvent]
    first: ServerSentEvent


class StreamingProvider(ABC):
    """A model wire API over HTTP with server-sent events; subclasses say what to send.

    ``encode`` writes a ``ModelRequest`` as the wire API's body (sent to ``path`` under the
    provider's base URL) and ``events`` reads its stream (parsed SSE, as JSON objects) back as
    ``ModelEvent``s, ending with ``ResponseCompleted``. Everything else is shared: the
    provider's config, auth (and the 401 refresh), retries with backoff (tenacity) of what
    failed before the answer started, the idle timeout, and the mapping of failures to the
    ``ResponseFailed`` the stream ends with.
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

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """The model's answer to ``request``; a failure ends it with ``ResponseFailed``."""
        events = self._stream(request)
        try:
            async for event in events:
                yield event
        except ModelError as exc:
            yield ResponseFailed(exc.message, exc.kind, exc.http_status_code, exc.rate_limits)
        finally:
            await events.aclose()  # (closed early: the HTTP answer is released now)

    async def _stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        provider = resolve_provider(self.kernel, request.provider_id)
        headers = {
            "accept": "text/event-stream",
            "content-type": "application/json",
            **provider.headers,
            **request_headers(request),
        }
        accounts = self.kernel.services.get("accounts") if not provider.api_key else None
        if provider.api_key:
            headers["authorization"] = f"Bearer {provider.api_key}"
        elif accounts is not None and provider.id == "openai":
            credentials = await accounts.fresh_credentials()
            if credentials is not None:
                headers.update(credentials.headers())
        body = json.dumps(self.encode(request)).encode()
        opened = await self._open_with_retries(provider, headers, body, accounts)
        completed = False
        try:
            with self._failures(provider, started=True):
                stream = self._json_events(opened.first, opened.events)
                async for event in self.events(request, stream, opened.response.headers):
                    yield event
                    if isinstance(event, ResponseCompleted):
                        completed = True
                        break
        finally:
            await opened.close()
        if not completed:
            raise ModelError(
                "stream disconnected before completion: stream closed before response.completed",
                kind="responseStreamDisconnected",
            )

    async def _open_with_retries(
        self,
        provider: ProviderConfig,
        headers: dict[str, str],
        body: bytes,
        accounts: Any,
    ) -> _Opened:
        """Send the request until an answer starts: 5xx, connection failures and streams
        that end before their first event are retried (``request_max_retries`` times), and a
        401 once after the account refreshed its credentials."""
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

        refreshed = False
        while True:
            retrying = AsyncRetrying(
                retry=retry_if_exception(_retryable),
                stop=stop_after_attempt(provider.request_max_retries + 1),
                wait=retry_wait,
                sleep=anyio.sleep,
                before_sleep=_log_retry,
                reraise=True,
            )
            try:
                opened: _Opened = await retrying(self._open, provider, headers, body)
                return opened
            except ModelError as exc:
                if exc.http_status_code == 401 and accounts is not None and not refreshed:
                    # Once per request: ask the account for new credentials (a client's
                    # external tokens, or the token endpoint), then try again.
                    refreshed = True
                    headers.update(await self._refreshed_headers(accounts))
                    continue
                raise

    async def _open(
        self, provider: ProviderConfig, headers: dict[str, str], body: bytes
    ) -> _Opened:
        """One attempt: the request, its status, and the answer's first event."""
        import httpx
        from httpx_sse import EventSource

        timeout = httpx.Timeout(
            connect=CONNECT_TIMEOUT_SECONDS,
            read=provider.stream_idle_timeout,
            write=CONNECT_TIMEOUT_SECONDS,
            pool=CONNECT_TIMEOUT_SECONDS,
        )
        context = self._http().stream(
            "POST",
            provider.url(self.path),
            content=body,
            headers=dict(headers),
            params=provider.query_params or None,
            timeout=timeout,
        )
        with self._failures(provider, started=False):
            response = await context.__aenter__()
        try:
            with self._failures(provider, started=False):
                if response.status_code != 200:
                    raise status_error(response, await response.aread())
                events = EventSource(response).aiter_sse()
                first = await anext(events, None)
                if first is None:
                    raise ModelError(
                        "stream disconnected before completion: "
                        "stream closed before response.completed",
                        kind="responseStreamDisconnected",
                        retryable=True,
                    )
        except BaseException:
            await context.__aexit__(None, None, None)
            raise

        async def close() -> None:
            await context.__aexit__(None, None, None)

        return _Opened(response, close, events, first)

    @staticmethod
    async def _json_events(
        first: ServerSentEvent, rest: AsyncIterator[ServerSentEvent]
    ) -> AsyncIterator[dict[str, Any]]:
        """The answer's events as JSON objects, up to ``data: [DONE]`` (the end of a Chat
        Completions stream)."""
        event: ServerSentEvent | None = first
        while event is not None:
            if event.data == SSE_DONE:
                return
            data = sse_json(event) if event.data else None
            if data is not None:
                yield data
            event = await anext(rest, None)

    @contextmanager
    def _failures(self, provider: ProviderConfig, *, started: bool) -> Iterator[None]:
        """httpx's and httpx-sse's exceptions as ``ModelError``s: retryable only before the
        answer started."""
        import httpx
        from httpx_sse import SSEError

        try:
            yield
        except SSEError as exc:  # (a TransportError too: the answer is not a stream)
            raise ModelError(
                f"stream disconnected before completion: {exc}", kind="responseStreamDisconnected"
            ) from None
        except httpx.ReadTimeout:
            raise ModelError(
                "stream disconnected before completion: idle timeout waiting for SSE",
                kind="responseStreamDisconnected",
                retryable=not started,
            ) from None
        except httpx.TimeoutException:
            raise ModelError(
                f"timed out connecting to model provider `{provider.id}` at {provider.base_url}",
                kind="httpConnectionFailed",
                retryable=True,
            ) from None
        except httpx.TransportError as exc:
            raise ModelError(
                f"error sending request to model provider `{provider.id}` at "
                f"{provider.url(self.path)}: {exc or type(exc).__name__}",
                kind="responseStreamDisconnected" if started else "httpConnectionFailed",
                retryable=not started,
            ) from None

    @staticmethod
    async def _refreshed_headers(accounts: Any) -> dict[str, str]:
        from codex_core.accounts.service import AuthRefreshError

        try:
            credentials = await accounts.refresh("unauthorized")
        except AuthRefreshError as exc:
            raise ModelError(exc.message, kind="unauthorized") from None
        return dict(credentials.headers())

    @abstractmethod
    def encode(self, request: ModelRequest) -> dict[str, Any]:
        """The wire API's request body for ``request``."""

    @abstractmethod
    def events(
        self,
        request: ModelRequest,
        stream: AsyncIterator[dict[str, Any]],
        headers: Mapping[str, str],
    ) -> AsyncIterator[ModelEvent]:
        """The wire API's events (parsed SSE) as ``ModelEvent``s, the first being
        ``ResponseStarted`` (which reads the answer's HTTP ``headers``); a failure the stream
        reports raises ``ModelError``."""


def _log_retry(state: RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome is not None else None
    delay = state.next_action.sleep if state.next_action is not None else 0.0
    log.info("model request failed (%s); retry %d in %.2fs", failure, state.attempt_number, delay)


def incomplete_message(reason: str) -> str:
    """The reference's error for an answer cut short (``max_output_tokens``, ...)."""
    return f"Incomplete response returned, reason: {reason}"
