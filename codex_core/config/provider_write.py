"""``modelProvider/config/write``: the provider form of the official clients' settings page.

A client creates or edits a custom gateway (``[model_providers.<id>]`` with ``name``,
``base_url``, ``env_key``) or sets the account fields of a built-in cloud provider (Bedrock's
``[model_providers.<id>.aws]``, Vertex AI's ``[model_providers.gcp]``). The patch is checked as
the reference checks it, in its order and with its wording, then applied as ordinary config
edits (``writer.ConfigService``: same lock, atomic replace, reload), so a provider written here
is the same TOML a user would write by hand. Omitted fields keep their values; ``null`` clears.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.config import listing
from codex_core.config.writer import ConfigWriteError, Edit

if TYPE_CHECKING:
    from codex_core.config.loader import Config
    from codex_core.kernel import Kernel
    from codex_core.rpc import RequestContext

#: Names of built-in providers a custom one may not take (compared exactly, after trimming).
RESERVED_NAMES = frozenset(
    {"OpenAI", "Amazon Bedrock", "Amazon Bedrock Runtime", "Google Cloud Vertex AI"}
)
#: Ids of built-in providers: a custom provider never gets one, and may not edit one.
BUILTIN_IDS = frozenset({*listing.BUILTIN_PROVIDERS, *listing.CLOUD_PROVIDERS})
#: The field each cloud provider's patch names, and where it lives under the provider's table.
CLOUD_FIELDS = {
    "bedrock": (("aws",), {"profile": "profile", "region": "region"}),
    "gcp": ((), {"project_id": "project_id", "location": "location",
                 "credential_file": "credential_file"}),
}  # fmt: skip
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _invalid(message: str) -> ConfigWriteError:
    return ConfigWriteError("configValidationError", message)


def _slug(name: str) -> str:
    """The id a new gateway gets from its name: ASCII letters and digits, the rest as dashes."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "custom"


def _allocate(name: str, taken: set[str]) -> str:
    """The name's slug, or with ``-2``, ``-3``... when a provider (or a built-in) has it."""
    base = _slug(name)
    candidate, suffix = base, 2
    while candidate in taken or candidate in BUILTIN_IDS:
        candidate, suffix = f"{base}-{suffix}", suffix + 1
    return candidate


def _base_url(value: str) -> str:
    """A trimmed http(s) URL without credentials, query or fragment, as the reference allows."""
    from urllib.parse import urlsplit

    url = value.strip()
    try:
        parts = urlsplit(url)
        valid = (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and parts.username is None
            and parts.password is None
            and not parts.query
            and not parts.fragment
            and "?" not in url
            and "#" not in url
        )
    except ValueError:
        valid = False
    if not valid:
        raise _invalid("Enter an HTTP(S) base URL without credentials, a query, or a fragment.")
    return url


def _gateway_edits(patch: Any, config: Config) -> tuple[str, list[Edit]]:
    """The edits creating or changing a custom gateway, and its id (checks in the reference's
    order: the id, the name, the base URL, the key variable, then what a new one needs)."""
    given = patch.model_fields_set
    provider_id = patch.provider_id
    providers = _user_providers(config)
    if provider_id is not None:
        if provider_id in BUILTIN_IDS:
            raise _invalid("A custom provider or gateway cannot use a built-in provider ID.")
        if not isinstance(providers.get(provider_id), dict):
            if provider_id in (config.get("model_providers") or {}):  # another layer's
                raise ConfigWriteError(
                    "configLayerReadonly", "This configuration field is read-only."
                )
            raise ConfigWriteError("configPathNotFound", "Unknown provider ID.")
    fields: dict[str, Any] = {}
    if "name" in given and patch.name is not None:
        name = patch.name.strip()
        if not name:
            raise _invalid("Enter a provider name.")
        if name in RESERVED_NAMES:
            raise _invalid(
                "This name is reserved for a built-in provider. "
                "Enter a different custom provider name."
            )
        fields["name"] = name
    elif provider_id is None:
        raise _invalid("Enter a provider name.")
    if "base_url" in given:
        fields["base_url"] = None if patch.base_url is None else _base_url(patch.base_url)
    if "env_key" in given:
        if patch.env_key is not None and not _ENV_KEY.fullmatch(patch.env_key):
            raise _invalid("Invalid API key environment variable name.")
        fields["env_key"] = patch.env_key
    if provider_id is None:
        if fields.get("base_url") is None:
            raise _invalid("A base URL is required to create a custom provider.")
        provider_id = _allocate(fields["name"], set(providers))
        table = {key: value for key, value in fields.items() if value is not None}
        return provider_id, [
            Edit(f"model_providers.{provider_id}", {**table, "wire_api": "responses"}, "upsert")
        ]
    return provider_id, [
        Edit(f"model_providers.{provider_id}.{key}", value, "replace")
        for key, value in fields.items()
    ]


def _cloud_edits(kind: str, patch: Any) -> tuple[str, list[Edit]]:
    """The edits setting a cloud provider's account fields; an empty string is refused
    (``null`` is how a field is cleared)."""
    where, keys = CLOUD_FIELDS[kind]
    prefix = ".".join(("model_providers", patch.provider_id, *where))
    edits = []
    for attribute, key in keys.items():
        if attribute not in patch.model_fields_set:
            continue
        value = getattr(patch, attribute)
        if value is not None and not value.strip():
            raise _invalid("Configuration values must not be empty; use null to clear a field.")
        edits.append(Edit(f"{prefix}.{key}", value, "replace"))
    return str(patch.provider_id), edits


def _user_providers(config: Config) -> dict[str, Any]:
    user = config.user_layer()
    found = (user.data if user else {}).get("model_providers")
    return found if isinstance(found, dict) else {}


def _lock(kernel: Kernel) -> anyio.Lock:
    found = kernel.services.get("model_provider_write_lock")
    if not isinstance(found, anyio.Lock):
        found = kernel.services["model_provider_write_lock"] = anyio.Lock()
    return found


async def model_provider_config_write(ctx: RequestContext, params: Any) -> dict[str, Any]:
    from codex_core.config.methods import service

    patch = params.settings.root if hasattr(params.settings, "root") else params.settings
    # One provider write at a time: a new gateway's id is picked from the providers the
    # previous write left, so two clients adding "My GW" at once get my-gw and my-gw-2.
    async with _lock(ctx.kernel):
        if patch.type == "customGateway":
            provider_id, edits = _gateway_edits(patch, ctx.kernel.config)
        else:
            provider_id, edits = _cloud_edits(patch.type, patch)
        if edits:
            await service(ctx.kernel).write(edits, None, None)
    summaries = listing.model_providers(ctx.kernel.config)["data"]
    found = next((entry for entry in summaries if entry["id"] == provider_id), None)
    return {"provider": found or listing.cloud_summary(provider_id, {}, editable=True)}
