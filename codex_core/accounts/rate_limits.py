"""Rate limits in the protocol's ``RateLimitSnapshot`` shape, from the two places they come from.

- The usage API (``{chatgpt_base_url}/wham/usage``), for ``account/rateLimits/read``.
- The headers of every model response (``x-codex-primary-used-percent`` and friends, one
  ``x-<limit>-...`` family per metered limit), for ``account/rateLimits/updated``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from codex_core.accounts.tokens import wire_plan_type

PRIMARY_SUFFIX = "-primary-used-percent"


def snapshot(limit_id: str | None, **fields: Any) -> dict[str, Any]:
    """A ``RateLimitSnapshot`` with every key the official server sends (absent ones null)."""
    return {
        "limitId": limit_id,
        "limitName": None,
        "normalModelSlug": None,
        "primary": None,
        "secondary": None,
        "credits": None,
        "individualLimit": None,
        "spendControlReached": None,
        "planType": None,
        "rateLimitReachedType": None,
        **fields,
    }


def _percent(value: float) -> int:
    """As the official server: rounded half away from zero."""
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


# ----------------------------------------------------------------------------- usage API


def _usage_window(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("used_percent"), int | float):
        return None
    seconds = raw.get("limit_window_seconds")
    reset_at = raw.get("reset_at")
    return {
        "usedPercent": _percent(float(raw["used_percent"])),
        "windowDurationMins": int(seconds) // 60 if isinstance(seconds, int | float) else None,
        "resetsAt": int(reset_at) if isinstance(reset_at, int | float) else None,
    }


def _usage_snapshot(
    limit_id: str, limit_name: str | None, details: Any, plan: str, credits: Any
) -> dict[str, Any]:
    details = details if isinstance(details, dict) else {}
    return snapshot(
        limit_id,
        limitName=limit_name,
        primary=_usage_window(details.get("primary_window")),
        secondary=_usage_window(details.get("secondary_window")),
        credits=credits,
        planType=plan,
    )


def rate_limits_response(body: dict[str, Any], account_id: str | None) -> dict[str, Any]:
    """Turn the usage API's answer into ``account/rateLimits/read``'s result.

    The main bucket is ``codex``; ``additional_rate_limits`` entries become further buckets
    keyed by their ``metered_feature`` (or name).
    """
    plan = wire_plan_type(body.get("plan_type") if isinstance(body.get("plan_type"), str) else None)
    raw_credits = body.get("credits")
    credits = None
    if isinstance(raw_credits, dict):
        balance = raw_credits.get("balance")
        credits = {
            "hasCredits": bool(raw_credits.get("has_credits")),
            "unlimited": bool(raw_credits.get("unlimited")),
            "balance": None if balance is None else str(balance),
        }
    main = _usage_snapshot("codex", None, body.get("rate_limit"), plan, credits)
    by_id: dict[str, Any] = {"codex": main}
    for extra in body.get("additional_rate_limits") or []:
        if not isinstance(extra, dict):
            continue
        name = extra.get("limit_name")
        limit_id = extra.get("metered_feature") or name
        if isinstance(limit_id, str) and limit_id:
            by_id[limit_id] = _usage_snapshot(
                limit_id,
                name if isinstance(name, str) else None,
                extra.get("rate_limit"),
                plan,
                None,
            )
    return {"rateLimits": main, "rateLimitsByLimitId": by_id, "accountId": account_id}


# ----------------------------------------------------------------------------- headers


def from_headers(headers: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every limit a model response reports: ``codex`` first, then the others by id.

    Only limits with data (a window or credits) are returned, so a response without the
    headers (any provider but ChatGPT's) reports nothing; the official server reports an
    all-null ``codex`` snapshot for those too.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    others = {
        name[2 : -len(PRIMARY_SUFFIX)].replace("-", "_")
        for name in lowered
        if name.startswith("x-") and name.endswith(PRIMARY_SUFFIX)
    } - {"codex"}
    found = [_header_snapshot(lowered, limit_id) for limit_id in ["codex", *sorted(others)]]
    return [item for item in found if item["primary"] or item["secondary"] or item["credits"]]


def _header_snapshot(headers: Mapping[str, str], limit_id: str) -> dict[str, Any]:
    prefix = "x-" + limit_id.replace("_", "-")
    name = (headers.get(f"{prefix}-limit-name") or "").strip()
    return snapshot(
        limit_id,
        limitName=name or None,
        primary=_header_window(headers, f"{prefix}-primary"),
        secondary=_header_window(headers, f"{prefix}-secondary"),
        credits=_header_credits(headers),
    )


def _header_window(headers: Mapping[str, str], prefix: str) -> dict[str, Any] | None:
    used = _float(headers.get(f"{prefix}-used-percent"))
    if used is None:
        return None
    minutes = _int(headers.get(f"{prefix}-window-minutes"))
    resets_at = _int(headers.get(f"{prefix}-reset-at"))
    if used == 0 and not minutes and resets_at is None:
        return None
    return {"usedPercent": _percent(used), "windowDurationMins": minutes, "resetsAt": resets_at}


def _header_credits(headers: Mapping[str, str]) -> dict[str, Any] | None:
    has_credits = _bool(headers.get("x-codex-credits-has-credits"))
    unlimited = _bool(headers.get("x-codex-credits-unlimited"))
    if has_credits is None or unlimited is None:
        return None
    balance = (headers.get("x-codex-credits-balance") or "").strip()
    return {"hasCredits": has_credits, "unlimited": unlimited, "balance": balance or None}


def _float(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _bool(raw: str | None) -> bool | None:
    lowered = (raw or "").strip().lower()
    return True if lowered in ("true", "1") else False if lowered in ("false", "0") else None
