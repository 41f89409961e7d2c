"""``account/gatewayOAuth/read`` and ``/cancel``: whether a provider signs in through its gateway.

A ``[model_providers.<id>.gateway_oauth]`` table (``authorization_url``, ``token_url``,
``client_id``, ``redirect_port``, optionally ``device_authorization_url``) says the provider's
gateway wants its own OAuth token besides the model credential. ``read`` reports, without
starting anything, whether the provider (the configured default unless one is named) needs
that, whether device authorization is offered, and how far sign-in got: codex-core does not run
the gateway sign-in yet (``account/gatewayOAuth/login``, see docs/accounts.md), so a gateway
provider is always ``notReady`` (announced to every client with ``account/gatewayOAuth/changed``
after the first read that finds it, as the reference announces the state it first observes),
and ``cancel`` has nothing to stop: it answers ``{}`` as the
reference does when no sign-in is running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codex_core.config import listing

if TYPE_CHECKING:
    from codex_core.rpc import RequestContext

#: Providers the reference knows without configuration, by the name ``read`` reports.
BUILTIN_NAMES = {
    "openai": "OpenAI",
    "ollama": "gpt-oss",
    "lmstudio": "gpt-oss",
    "amazon-bedrock": "Amazon Bedrock",
    "amazon-bedrock-runtime": "Amazon Bedrock Runtime",
    "gcp": "Google Cloud Vertex AI",
}


def readiness(config: Any, provider_id: str) -> dict[str, Any]:
    """The ``GatewayOAuthReadResponse`` of ``provider_id`` (the reference's refusal when it is
    neither built in nor configured)."""
    info = (config.get("model_providers") or {}).get(provider_id)
    if not isinstance(info, dict):
        if provider_id not in BUILTIN_NAMES:
            raise listing.provider_not_configured(provider_id)
        info = {}
    name = info.get("name")
    if not isinstance(name, str) or not name:
        name = BUILTIN_NAMES.get(provider_id, provider_id)
    gateway = info.get("gateway_oauth")
    required = isinstance(gateway, dict)
    device = isinstance(gateway, dict) and bool(gateway.get("device_authorization_url"))
    return {
        "providerId": provider_id,
        "providerName": name,
        "required": required,
        "supportsDeviceAuth": device,
        "status": "notReady" if required else None,
        "error": None,
    }


async def gateway_oauth_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    params = getattr(params, "root", params)
    config = ctx.kernel.config
    provider_id = getattr(params, "model_provider", None)
    if provider_id is None:
        default = config.get("model_provider")
        provider_id = default if isinstance(default, str) else "openai"
    answer = readiness(config, provider_id)
    announced = ctx.kernel.services.setdefault("gateway_oauth_announced", set())
    if answer["required"] and provider_id not in announced:
        announced.add(provider_id)
        changed = {"loginId": None, "authUrl": None, "providerId": provider_id,
                   "status": answer["status"], "error": None}  # fmt: skip
        ctx.after_reply.append(
            lambda: ctx.kernel.broadcast("account/gatewayOAuth/changed", changed)
        )
    return answer


async def gateway_oauth_cancel(ctx: RequestContext, params: Any) -> dict[str, Any]:
    return {}
