"""The ``account/*`` methods answered by the ChatGPT backend.

- ``account/usage/read``: ``GET /wham/profiles/me`` (token activity: its ``stats``, daily
  buckets included), or for one thread ``POST /wham/usage/thread_usage/query``;
- ``account/workspaceMessages/read``: ``GET /wham/workspace-messages`` (a 404 means the route
  is not enabled for this client: ``featureEnabled: false``);
- ``account/securitySetup/read``: ``GET /wham/security-setup``, a best-effort reminder: signed
  out, an API key or any failure is "no notice";
- ``account/rateLimitResetCredit/consume``: ``POST /wham/rate-limit-reset-credits/consume``;
- ``account/sendAddCreditsNudgeEmail``: ``POST /wham/accounts/send_add_credits_nudge_email``
  (a 429 is the backend's cooldown, not an error).

Requests, results and error texts are the official server's (see ``codex_core.accounts.backend``).
"""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Any

from codex_core.accounts.backend import call, chatgpt_credentials, checked, json_object
from codex_core.accounts.service import Credentials, accounts_service
from codex_core.protocol.wire import to_wire
from codex_core.rpc import INTERNAL_ERROR, INVALID_REQUEST, RpcError

if TYPE_CHECKING:
    from codex_core.rpc import RequestContext

#: The backend's reset outcome codes and the protocol's names for them.
RESET_OUTCOMES = {
    "reset": "reset",
    "nothing_to_reset": "nothingToReset",
    "no_credit": "noCredit",
    "already_redeemed": "alreadyRedeemed",
}
WORKSPACE_MESSAGE_TYPES = frozenset({"headline", "announcement"})
_MISSING = object()


# --------------------------------------------------------------------------- token usage


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage_summary(stats: dict[str, Any]) -> dict[str, int | None]:
    return {
        "lifetimeTokens": _int_or_none(stats.get("lifetime_tokens")),
        "peakDailyTokens": _int_or_none(stats.get("peak_daily_tokens")),
        "longestRunningTurnSec": _int_or_none(stats.get("longest_running_turn_sec")),
        "currentStreakDays": _int_or_none(stats.get("current_streak_days")),
        "longestStreakDays": _int_or_none(stats.get("longest_streak_days")),
    }


def _daily_buckets(raw: Any) -> list[dict[str, Any]] | None:
    if not isinstance(raw, list):
        return None
    return [
        {"startDate": str(bucket.get("start_date")), "tokens": _int_or_none(bucket.get("tokens"))}
        for bucket in raw
        if isinstance(bucket, dict)
    ]


async def usage_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """Account-wide token activity, or, for a ``threadId``, that thread's estimated usage
    alone (the summary then all null, as the reference answers)."""
    thread_id = getattr(params, "thread_id", None)
    if thread_id is not None:
        _check_thread_id(thread_id)
    credentials = await chatgpt_credentials(ctx, "to read token usage")
    if thread_id is not None:
        return {
            "summary": _usage_summary({}),
            "dailyUsageBuckets": None,
            "threadUsage": await _thread_usage(ctx, credentials, thread_id),
        }
    failed = "failed to fetch token usage profile"
    reply = checked(await call(ctx, credentials, "GET", "/wham/profiles/me", failed=failed), failed)
    stats = json_object(reply, failed).get("stats", _MISSING)
    if not isinstance(stats, dict):
        problem = (
            f"missing field `stats` {reply.at(reply.object_end())}"
            if stats is _MISSING
            else f"invalid type: {json.dumps(stats)}, expected struct TokenUsageProfileStats "
            + reply.at(reply.value_end("stats"))
        )
        raise RpcError(INTERNAL_ERROR, f"{failed}: {reply.decode_error(problem)}")
    return {
        "summary": _usage_summary(stats),
        "dailyUsageBuckets": _daily_buckets(stats.get("daily_usage_buckets")),
        "threadUsage": None,
    }


async def _thread_usage(
    ctx: RequestContext, credentials: Credentials, thread_id: str
) -> dict[str, Any] | None:
    """``POST /wham/usage/thread_usage/query``; a 403 or 404 (no estimate for this account or
    thread) is no usage rather than an error."""
    failed = "failed to fetch thread usage"
    path = "/wham/usage/thread_usage/query"
    body = {"thread_ids": [thread_id]}
    reply = await call(ctx, credentials, "POST", path, failed=failed, body=body)
    if reply.status in (403, 404):
        return None
    raw = json_object(checked(reply, failed), failed).get("threads")
    rows = [row for row in raw if isinstance(row, dict)] if isinstance(raw, list) else []
    if any(row.get("thread_id") != thread_id for row in rows):
        raise RpcError(INTERNAL_ERROR, f"{failed}: thread usage returned unexpected threads")
    if not rows:
        raise RpcError(INTERNAL_ERROR, f"{failed}: thread usage response omitted requested thread")
    row = rows[0]
    return {
        "threadId": thread_id,
        "estimatedUsageCreditsMicros": _int_or_none(row.get("estimated_usage_credits_micros")),
        "estimatedUsageUsdMicros": _int_or_none(row.get("estimated_usage_usd_micros")),
        "nativeUsageUsdMicros": _int_or_none(row.get("native_usage_usd_micros")),
        "groups": [
            _usage_group(group) for group in row.get("groups") or [] if isinstance(group, dict)
        ],
    }


def _usage_group(raw: dict[str, Any]) -> dict[str, Any]:
    def text(key: str) -> str | None:
        value = raw.get(key)
        return value if isinstance(value, str) else None

    return {
        "model": text("model"),
        "reasoningEffort": text("reasoning_effort"),
        "speed": text("speed"),
        "estimatedUsageCreditsMicros": _int_or_none(raw.get("estimated_usage_credits_micros")),
        "netNewInputTokens": _int_or_none(raw.get("net_new_input_tokens")),
        "cachedInputTokens": _int_or_none(raw.get("cached_input_tokens")),
        "inputTokens": _int_or_none(raw.get("input_tokens")),
        "outputTokens": _int_or_none(raw.get("output_tokens")),
        "totalTokens": _int_or_none(raw.get("total_tokens")),
    }


def _check_thread_id(text: str) -> None:
    """Refuse a thread id that is no UUID, as the reference does."""
    from codex_core.threads.ids import reference_uuid_error

    problem = reference_uuid_error(text)
    if problem is not None:
        raise RpcError(INVALID_REQUEST, f"invalid thread id: {problem}")


# --------------------------------------------------------------------------- workspace messages


def _timestamp(value: Any) -> int | None:
    """An RFC 3339 time as Unix seconds (the backend sends text, the protocol numbers)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return int(parsed.timestamp())


def _workspace_message(raw: dict[str, Any]) -> dict[str, Any]:
    kind = raw.get("message_type")
    return {
        "messageId": str(raw.get("message_id")),
        "messageType": kind if kind in WORKSPACE_MESSAGE_TYPES else "unknown",
        "messageBody": str(raw.get("message_body")),
        "createdAt": _timestamp(raw.get("created_at")),
        "archivedAt": _timestamp(raw.get("archived_at")),
    }


async def workspace_messages_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    failed = "failed to fetch workspace messages"
    credentials = await chatgpt_credentials(ctx, "to read workspace messages")
    reply = await call(ctx, credentials, "GET", "/wham/workspace-messages", failed=failed)
    if reply.status == 404:
        return {"featureEnabled": False, "messages": []}
    body = json_object(checked(reply, failed), failed)
    raw = body.get("messages")
    messages = [_workspace_message(item) for item in raw or [] if isinstance(item, dict)]
    return {"featureEnabled": True, "messages": messages}


# --------------------------------------------------------------------------- security setup


async def security_setup_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """The account's security reminder, bound to the account and user that fetched it."""
    credentials = await accounts_service(ctx.kernel).credentials()
    if credentials is None or credentials.auth_mode == "apikey":
        return {"notice": None}
    try:
        reply = await call(ctx, credentials, "GET", "/wham/security-setup", failed="")
        body = reply.json() if reply.ok else None
    except (RpcError, ValueError):
        return {"notice": None}
    notice = body.get("notice") if isinstance(body, dict) else None
    if not isinstance(notice, dict) or not isinstance(notice.get("action"), dict):
        return {"notice": None}
    action = notice["action"]
    return {
        "notice": {
            "accountId": credentials.account_id,
            "userId": credentials.user_id,
            "title": str(notice.get("title")),
            "description": str(notice.get("description")),
            "action": {"label": str(action.get("label")), "url": str(action.get("url"))},
        }
    }


# --------------------------------------------------------------------------- credits


async def rate_limit_reset_credit_consume(ctx: RequestContext, params: Any) -> dict[str, Any]:
    failed = "failed to consume rate limit reset"
    credentials = await chatgpt_credentials(ctx, "for rate limit reset credits")
    body: dict[str, Any] = {"redeem_request_id": params.idempotency_key}
    if params.credit_id is not None:
        body["credit_id"] = params.credit_id
    path = "/wham/rate-limit-reset-credits/consume"
    reply = checked(await call(ctx, credentials, "POST", path, failed=failed, body=body), failed)
    code = json_object(reply, failed).get("code")
    if code not in RESET_OUTCOMES:
        expected = ", ".join(f"`{name}`" for name in RESET_OUTCOMES)
        problem = (
            f"missing field `code` {reply.at(reply.object_end())}"
            if code is None
            else f"unknown variant `{code}`, expected one of {expected} "
            + reply.at(reply.value_end("code"))
        )
        raise RpcError(INTERNAL_ERROR, f"{failed}: {reply.decode_error(problem)}")
    return {"outcome": RESET_OUTCOMES[code]}


async def send_add_credits_nudge_email(ctx: RequestContext, params: Any) -> dict[str, Any]:
    failed = "failed to notify workspace owner"
    credentials = await chatgpt_credentials(ctx, "to notify workspace owner")
    body = {"credit_type": to_wire(params)["creditType"]}
    path = "/wham/accounts/send_add_credits_nudge_email"
    reply = await call(ctx, credentials, "POST", path, failed=failed, body=body)
    if reply.status == 429:
        return {"status": "cooldown_active"}
    checked(reply, failed)
    return {"status": "sent"}
