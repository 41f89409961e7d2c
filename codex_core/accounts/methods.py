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

from codex_core.accounts import backend_methods, gateway_oauth
from codex_core.accounts.backend import call, chatgpt_credentials, checked, json_object
from codex_core.accounts.bedrock import check_gov_cloud_requirements
from codex_core.accounts.providers import ApiKeyProvider, ChatgptAuthTokensProvider
from codex_core.accounts.rate_limits import rate_limits_response
from codex_core.accounts.service import AccountsService, AuthRefreshError, accounts_service
from codex_core.accounts.storage import AuthStoreError
from codex_core.fs.oserror import os_error_message
from codex_core.hookspecs import AuthProvider, hookimpl
from codex_core.protocol.wire import to_wire
from codex_core.rpc import INTERNAL_ERROR, INVALID_REQUEST, RequestContext, RpcError, RpcMethod

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

log = logging.getLogger(__name__)

#: Login types the official server only accepts from clients that opted into the experimental
#: API (the variant is marked unstable in the schema); checked after the params are validated.
EXPERIMENTAL_LOGIN_TYPES = frozenset({"chatgptAuthTokens"})
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
    if login_type in EXPERIMENTAL_LOGIN_TYPES and not ctx.connection.experimental_api:
        raise RpcError(
            INVALID_REQUEST, f"account/login/start.{login_type} requires experimentalApi capability"
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
    except OSError as exc:  # AuthStoreError included
        raise RpcError(INTERNAL_ERROR, f"logout failed: {os_error_message(exc)}") from None
    updated = await service.account_updated_params()
    ctx.after_reply.append(lambda: ctx.kernel.broadcast("account/updated", updated))
    return {}


async def rate_limits_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    failed = "failed to fetch codex rate limits"
    credentials = await chatgpt_credentials(ctx, "to read rate limits")
    reply = checked(await call(ctx, credentials, "GET", "/wham/usage", failed=failed), failed)
    return rate_limits_response(json_object(reply, failed), credentials.account_id)


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
        RpcMethod("account/gatewayOAuth/read", gateway_oauth.gateway_oauth_read),
        RpcMethod("account/gatewayOAuth/cancel", gateway_oauth.gateway_oauth_cancel),
        RpcMethod("account/bedrock/checkGovCloudRequirements", check_gov_cloud_requirements),
        RpcMethod("account/usage/read", backend_methods.usage_read),
        RpcMethod("account/workspaceMessages/read", backend_methods.workspace_messages_read),
        RpcMethod("account/securitySetup/read", backend_methods.security_setup_read),
        RpcMethod(
            "account/rateLimitResetCredit/consume",
            backend_methods.rate_limit_reset_credit_consume,
        ),
        RpcMethod("account/sendAddCreditsNudgeEmail", backend_methods.send_add_credits_nudge_email),
    ]
