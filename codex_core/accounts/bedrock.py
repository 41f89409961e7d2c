"""``account/bedrock/checkGovCloudRequirements``: the advisory a client shows at startup when
the Amazon Bedrock provider runs in an AWS GovCloud region without the administrator's baseline.

As the official server: any provider but ``amazon-bedrock`` is not GovCloud. For Bedrock, the
region is the one named by the provider's ``base_url`` host (``bedrock-mantle.<region>.api.aws``
or ``bedrock-runtime[-fips].<region>.amazonaws.com``), else ``[model_providers.amazon-bedrock.aws]
region``, else ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` (codex-core reads no AWS profile files).
A GovCloud region warns unless requirements.toml both restricts logins to API keys
(``allowed_login_methods = ["api"]``) and allows the Bedrock endpoint's domain in
``[application.network.domains]`` with the network enabled.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio

from codex_core.rpc import INTERNAL_ERROR, RpcError

if TYPE_CHECKING:
    from codex_core.config.loader import Config
    from codex_core.rpc import RequestContext

BEDROCK_PROVIDER = "amazon-bedrock"
#: Endpoint host prefix -> the suffix after the region, for the hosts that name a region.
_ENDPOINT_SUFFIXES = {
    "bedrock-mantle": ".api.aws",
    "bedrock-runtime": ".amazonaws.com",
    "bedrock-runtime-fips": ".amazonaws.com",
}


def endpoint_region(host: str) -> str | None:
    """The region an AWS Bedrock endpoint host names; None for any other host (a proxy's)."""
    service, _, rest = host.rstrip(".").partition(".")
    suffix = _ENDPOINT_SUFFIXES.get(service)
    if suffix is None or not rest.endswith(suffix):
        return None
    region = rest[: -len(suffix)]
    return region if region and "." not in region else None


def gov_cloud_check(config: Config) -> dict[str, bool]:
    """``{isGovCloud, shouldWarn}`` for the configured model provider."""
    if config.get("model_provider") != BEDROCK_PROVIDER:
        return {"isGovCloud": False, "shouldWarn": False}
    providers = config.get("model_providers")
    provider = providers.get(BEDROCK_PROVIDER) if isinstance(providers, dict) else None
    provider = provider if isinstance(provider, dict) else {}
    domain: str | None = None
    if isinstance(base_url := provider.get("base_url"), str):
        domain = (urlsplit(base_url).hostname or "").rstrip(".")
        if not domain:
            raise RpcError(INTERNAL_ERROR, "Amazon Bedrock endpoint has no valid hostname")
    region = endpoint_region(domain) if domain else None
    if region is None:
        aws = provider.get("aws")
        configured = aws.get("region") if isinstance(aws, dict) else None
        region = (
            configured
            if isinstance(configured, str) and configured
            else os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
        )
    if not region.startswith("us-gov-"):
        return {"isGovCloud": False, "shouldWarn": False}
    domain = domain or f"bedrock-mantle.{region}.api.aws"
    return {"isGovCloud": True, "shouldWarn": not _baseline_met(config, domain)}


def _baseline_met(config: Config, domain: str) -> bool:
    requirements: dict[str, Any] = config.requirements.data if config.requirements else {}
    logins = requirements.get("allowed_login_methods")
    api_only = isinstance(logins, list) and bool(logins) and all(m == "api" for m in logins)
    application = requirements.get("application")
    network = application.get("network") if isinstance(application, dict) else None
    if not isinstance(network, dict) or network.get("enabled") is not True:
        return False
    domains = network.get("domains")
    return api_only and isinstance(domains, dict) and domains.get(domain) == "allow"


async def check_gov_cloud_requirements(ctx: RequestContext, params: Any) -> dict[str, bool]:
    """Checked against the configuration as it is on disk now, as the reference does."""
    config = await anyio.to_thread.run_sync(ctx.kernel.config.reload, None)
    if config.read_error is not None:
        raise RpcError(INTERNAL_ERROR, f"failed to load configuration: {config.read_error}")
    return gov_cloud_check(config)
