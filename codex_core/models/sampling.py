"""Sampling the model: the one way turns, compaction, reviews and the guardian call it.

``sample(kernel, request)`` finds the plugin that speaks the wire API of the request's
provider (``[model_providers.<id>] wire_api``, ``responses`` by default), streams its
``ModelEvent``s and turns the end of the stream into the contract's outcome: it stops after
``ResponseCompleted``, raises ``ModelFailed`` for ``ResponseFailed``, and for a stream that
stops before either (a provider that gave up silently) raises the disconnect the reference
reports. ``collect`` reads a whole response for callers that do not show it as it streams.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING

from codex_core.models.contract import (
    ModelEvent,
    ModelFailed,
    ModelRequest,
    OutputItemDone,
    ResponseCompleted,
    ResponseFailed,
    ResponseStarted,
    SampledResponse,
    TextDelta,
)

if TYPE_CHECKING:
    from codex_core.hookspecs import ModelProvider
    from codex_core.kernel import Kernel

#: What a stream that ended before its response completed reports (the reference's words).
DISCONNECTED = ResponseFailed(
    "stream disconnected before completion: stream closed before response.completed",
    "responseStreamDisconnected",
)


def provider_for(kernel: Kernel, provider_id: str) -> ModelProvider:
    """The installed plugin speaking the wire API of model provider ``provider_id``."""
    table = kernel.config.get(f"model_providers.{provider_id}") or {}
    wire_api = str(table.get("wire_api") or "responses")
    provider: ModelProvider | None = kernel.model_providers.get(wire_api)
    if provider is None:
        installed = ", ".join(sorted(kernel.model_providers)) or "none"
        raise ModelFailed(
            ResponseFailed(
                f"no installed plugin speaks the `{wire_api}` wire API of model provider "
                f"`{provider_id}` (installed: {installed}); install codex-plugin-openai"
            )
        )
    return provider


async def sample(kernel: Kernel, request: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
    """The response's events up to and including ``ResponseCompleted``.

    Raises ``ModelFailed`` when the provider reports a failure or stops early.
    """
    provider = provider_for(kernel, request.provider_id)
    events = provider.stream(request)
    try:
        async for event in events:
            if isinstance(event, ResponseFailed):
                raise ModelFailed(event)
            yield event
            if isinstance(event, ResponseCompleted):
                return
    finally:
        close = getattr(events, "aclose", None)  # (an async generator: end it now, not later)
        if close is not None:
            await close()
    raise ModelFailed(DISCONNECTED)


async def collect(kernel: Kernel, request: ModelRequest) -> SampledResponse:
    """The whole response: its done items, usage, served model and rate limits."""
    response = SampledResponse()
    streamed: list[str] = []
    async with aclosing(sample(kernel, request)) as events:
        async for event in events:
            if isinstance(event, ResponseStarted):
                response.served_model = event.served_model
                response.rate_limits = event.rate_limits
            elif isinstance(event, TextDelta):
                streamed.append(event.delta)
            elif isinstance(event, OutputItemDone):
                response.items.append(event.item)
            elif isinstance(event, ResponseCompleted):
                response.usage = event.usage
    response.streamed_text = "".join(streamed)
    return response
