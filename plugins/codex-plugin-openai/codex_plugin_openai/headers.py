"""The OpenAI headers: who asks (on the request) and what the answer says about itself.

The request carries the client (``originator``, ``user-agent``), the session and thread it
belongs to (``session-id``, ``thread-id``, ``x-client-request-id``: the thread id, as the
reference sends them) and, for a helper working for a thread (the guardian),
``x-openai-subagent``, ``x-codex-parent-thread-id`` and ``x-codex-turn-metadata``. The answer
names the model that served it (``OpenAI-Model``, which may differ from the one asked) and the
account's rate limits (``x-codex-primary-used-percent`` and friends), which become the
``ResponseStarted`` event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codex_core.accounts import rate_limits
from codex_core.models.contract import ModelRequest, ResponseStarted

#: The response header naming the model that served the request.
SERVED_MODEL_HEADER = "openai-model"


def request_headers(request: ModelRequest) -> dict[str, str]:
    """The identity headers of ``request``, in the order the reference sends them."""
    headers = {"originator": request.originator}
    if request.user_agent is not None:
        headers["user-agent"] = request.user_agent
    if request.thread_id is not None:
        headers["session-id"] = request.thread_id
        headers["thread-id"] = request.thread_id
        headers["x-client-request-id"] = request.thread_id
    if request.subagent is not None:
        headers["x-openai-subagent"] = request.subagent
    if request.parent_thread_id is not None:
        headers["x-codex-parent-thread-id"] = request.parent_thread_id
    if request.turn_metadata is not None:
        headers["x-codex-turn-metadata"] = request.turn_metadata
    return headers


def response_started(response_id: str | None, headers: Mapping[str, str]) -> ResponseStarted:
    """``ResponseStarted`` for an answer with these HTTP headers."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return ResponseStarted(
        response_id=response_id,
        served_model=lowered.get(SERVED_MODEL_HEADER) or None,
        rate_limits=reported_rate_limits(lowered),
    )


def reported_rate_limits(headers: Mapping[str, str]) -> list[dict[str, Any]]:
    """The account's rate limits an answer's headers report (``RateLimitSnapshot`` dicts)."""
    return rate_limits.from_headers(headers)
