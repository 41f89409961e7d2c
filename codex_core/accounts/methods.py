"""The ``accounts`` kernel plugin: ``account/*`` methods and the built-in login types.

``account/login/start`` dispatches on the params' ``type`` to ``kernel.auth_providers`` (the
``codex_auth_providers`` hook): ``apiKey`` and ``chatgptAuthTokens`` come from this module,
``chatgpt`` and ``chatgptDeviceCode`` from plugins. State lives in the accounts service
(``kernel.services["accounts"]``, see ``codex_core.accounts.service``); stored logins use the
official ``auth.json`` layout (``codex_core.accounts.storage``).
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.accounts.providers import ApiKeyProvider, ChatgptAuthTokensProvider
from codex_core.accounts.service import (
    AccountsService,
    AuthRefreshError,
    accounts_service,
    get_json,
)
from codex_core.accounts.storage import AuthStoreError
from codex_core.accounts.tokens import wire_plan_type
from codex_core.hookspecs import AuthProvider, hookimpl
from codex_core.protocol.wire import to_wire
from codex_core.rpc import INTERNAL_ERROR, INVALID_REQUEST, RequestContext, RpcError, RpcMethod

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

log = logging.getLogger(__name__)

EXTERNAL_AUTH_ACTIVE = (
    "External auth is active. Use account/login/start (chatgptAuthTokens) to update it or "
    "account/logout to clear it."
)


def _service(ctx: RequestContext) -> AccountsService:
    return accounts_service(ctx.kernel)


async def account_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    service = _service(ctx)
    if params is not None and params.refresh_token and not service.external_active:
        credentials = await service.credentials()
        if credentials is not None and credentials.auth_mode == "chatgpt":
            try:
                await service.refresh("unauthorized")
            except (AuthRefreshError, AuthStoreError) as exc:
                # The official server logs a failed refresh and answers with what it has.
                log.warning("token refresh failed: %s", exc)
    credentials = await service.credentials()
    return {
        "account": None if credentials is None else credentials.account(),
        "userId": None if credentials is None else credentials.user_id,
        "requiresOpenaiAuth": ctx.kernel.config.get("model_provider") in (None, "openai"),
        "workspaceRouting": None,
    }


async def login_start(ctx: RequestContext, params: Any) -> dict[str, Any]:
    variant = getattr(params, "root", params)
    wire: dict[str, Any] = to_wire(variant)
    login_type = str(wire.get("type"))
    providers: dict[str, AuthProvider] = ctx.kernel.auth_providers
    provider = providers.get(login_type)
    if provider is None:
        expected = ", ".join(f"`{name}`" for name in providers) or "nothing"
        raise RpcError(
            INVALID_REQUEST,
            f"Invalid request: unknown variant `{login_type}`, expected one of {expected}",
        )
    service = _service(ctx)
    if service.external_active and login_type != "chatgptAuthTokens":
        raise RpcError(INVALID_REQUEST, EXTERNAL_AUTH_ACTIVE)
    result = dict(await provider.start_login(wire, ctx.connection))
    if result.get("loginId") is None:
        # A login that finished within the request: announce it right after the result.
        ctx.after_reply.append(
            lambda: ctx.kernel.start_soon(_announce_login, service, name="account/login/completed")
        )
    return result


async def _announce_login(service: AccountsService) -> None:
    await service.login_completed(None, success=True)


async def login_cancel(ctx: RequestContext, params: Any) -> dict[str, Any]:
    login_id = params.login_id
    try:
        uuid.UUID(login_id)
    except ValueError:
        raise RpcError(INVALID_REQUEST, f"invalid login id: {login_id}") from None
    for provider in ctx.kernel.auth_providers.values():
        if await provider.cancel_login(login_id):
            return {"status": "canceled"}
    return {"status": "notFound"}


async def logout(ctx: RequestContext, params: Any) -> dict[str, Any]:
    service = _service(ctx)
    try:
        await service.logout()
    except (AuthStoreError, OSError) as exc:
        raise RpcError(INTERNAL_ERROR, f"logout failed: {exc}") from None
    updated = await service.account_updated_params()
    ctx.after_reply.append(lambda: ctx.kernel.broadcast("account/updated", updated))
    return {}


async def rate_limits_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    service = _service(ctx)
    credentials = await service.credentials()
    if credentials is None:
        raise RpcError(INVALID_REQUEST, "codex account authentication required to read rate limits")
    if credentials.auth_mode == "apikey":
        raise RpcError(INVALID_REQUEST, "chatgpt authentication required to read rate limits")
    url = f"{service.chatgpt_base_url()}/wham/usage"
    try:
        status, body = await anyio.to_thread.run_sync(get_json, url, credentials.headers())
    except AuthRefreshError as exc:
        raise RpcError(INTERNAL_ERROR, f"failed to fetch codex rate limits: {exc}") from None
    if status != 200 or not isinstance(body, dict):
        raise RpcError(
            INTERNAL_ERROR,
            f"failed to fetch codex rate limits: GET {url} failed: {status}; body={body}",
        )
    return rate_limits_response(body, credentials.account_id)


def _window(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("used_percent"), int | float):
        return None
    seconds = raw.get("limit_window_seconds")
    reset_at = raw.get("reset_at")
    return {
        "usedPercent": int(raw["used_percent"]),
        "windowDurationMins": int(seconds) // 60 if isinstance(seconds, int | float) else None,
        "resetsAt": int(reset_at) if isinstance(reset_at, int | float) else None,
    }


def _snapshot(
    limit_id: str, limit_name: str | None, details: Any, plan: str, credits: Any
) -> dict[str, Any]:
    details = details if isinstance(details, dict) else {}
    return {
        "limitId": limit_id,
        "limitName": limit_name,
        "primary": _window(details.get("primary_window")),
        "secondary": _window(details.get("secondary_window")),
        "credits": credits,
        "planType": plan,
    }


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
    main = _snapshot("codex", None, body.get("rate_limit"), plan, credits)
    by_id: dict[str, Any] = {"codex": main}
    for extra in body.get("additional_rate_limits") or []:
        if not isinstance(extra, dict):
            continue
        name = extra.get("limit_name")
        limit_id = extra.get("metered_feature") or name
        if isinstance(limit_id, str) and limit_id:
            by_id[limit_id] = _snapshot(
                limit_id,
                name if isinstance(name, str) else None,
                extra.get("rate_limit"),
                plan,
                None,
            )
    return {"rateLimits": main, "rateLimitsByLimitId": by_id, "accountId": account_id}


@hookimpl
def codex_auth_providers(kernel: Kernel) -> list[object]:
    accounts_service(kernel)
    return [ApiKeyProvider(kernel), ChatgptAuthTokensProvider(kernel)]


@hookimpl
def codex_rpc_methods() -> list[RpcMethod]:
    return [
        RpcMethod("account/read", account_read),
        RpcMethod("account/login/start", login_start),
        RpcMethod("account/login/cancel", login_cancel),
        RpcMethod("account/logout", logout),
        RpcMethod("account/rateLimits/read", rate_limits_read),
    ]
