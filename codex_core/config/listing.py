"""What the configuration switches on: ``experimentalFeature/list``, ``modelProvider/list``
and ``hooks/list``, shaped like the official server's answers."""

from __future__ import annotations

import hashlib
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.config.diagnostics import SUMMARY
from codex_core.config.loader import Config, Layer
from codex_core.rpc import INVALID_REQUEST, RpcError

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.rpc import RequestContext

#: The official server's feature flags (name, stage, texts, default), in its order.
FEATURES = Path(__file__).with_name("features.json")


@cache
def feature_catalog() -> list[dict[str, Any]]:
    catalog: list[dict[str, Any]] = json.loads(FEATURES.read_text())
    return catalog


#: The features a client may switch for the running server (``experimentalFeature/
#: enablement/set``), as the official server allows; others in a request are ignored.
RUNTIME_FEATURES = frozenset(
    {
        "auth_elicitation",
        "memories",
        "mentions_v2",
        "remote_control",
        "remote_plugin",
        "tool_suggest",
    }
)


def runtime_enablement(kernel: Kernel) -> dict[str, bool]:
    """What clients switched with ``experimentalFeature/enablement/set`` (process-wide, lost
    at exit): below ``[features]`` in the configuration, above the defaults."""
    found = kernel.services.get("feature_enablement")
    if not isinstance(found, dict):
        found = kernel.services["feature_enablement"] = {}
    return found


def features(config: Config, runtime: dict[str, bool] | None = None) -> list[dict[str, Any]]:
    """Every feature flag with ``enabled`` from the configuration's layers, else ``runtime``
    (what clients switched), else the packaged defaults, else the catalog's default."""
    configured = config.layered().get("features") or {}
    effective = config.get("features") or {}
    rows = []
    for entry in feature_catalog():
        name = entry["name"]
        row = {key: value for key, value in entry.items() if key != "defaultEnabled"}
        for source in (configured, runtime or {}, effective):
            value = source.get(name)
            if isinstance(value, bool):
                break
        row["enabled"] = value if isinstance(value, bool) else entry["defaultEnabled"]
        row["defaultEnabled"] = entry["defaultEnabled"]
        rows.append(row)
    return rows


async def experimental_feature_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    rows = features(ctx.kernel.config, runtime_enablement(ctx.kernel))
    start = 0
    if params is not None and params.cursor is not None:
        if not params.cursor.isdigit():
            raise RpcError(INVALID_REQUEST, f"invalid cursor: {params.cursor}")
        start = int(params.cursor)
    limit = params.limit if params is not None and params.limit else len(rows)
    page = rows[start : start + limit]
    end = start + len(page)
    return {"data": page, "nextCursor": str(end) if end < len(rows) else None}


async def experimental_feature_enablement_set(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """Switch runtime features; the answer names those that were (sorted, as the reference)."""
    updated = {
        name: enabled for name, enabled in params.enablement.items() if name in RUNTIME_FEATURES
    }
    runtime_enablement(ctx.kernel).update(updated)
    return {"enablement": dict(sorted(updated.items()))}


async def model_provider_capabilities_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """What the configured provider offers beyond text: the reference answers both for every
    provider it can be configured with (OpenAI, the local ones and custom gateways alike)."""
    return {"imageGeneration": True, "webSearch": True}


# --------------------------------------------------------------------------- model providers


#: Providers the reference knows without configuration (``modelProvider/list`` shows only
#: ``openai``; the local ones are usable by id).
BUILTIN_PROVIDERS = frozenset({"openai", "ollama", "lmstudio"})
#: Built-in cloud providers, listed once configured (``modelProvider/config/write`` sets their
#: account fields), by their display name.
CLOUD_PROVIDERS = {
    "amazon-bedrock": "Amazon Bedrock Mantle",
    "amazon-bedrock-runtime": "Amazon Bedrock Runtime",
    "gcp": "Google Cloud Vertex AI",
}


def provider_configured(config: Config, provider_id: str) -> bool:
    """Whether a thread may use ``provider_id``: a built-in one or a ``[model_providers.*]``."""
    return provider_id in BUILTIN_PROVIDERS or provider_id in (config.get("model_providers") or {})


def provider_not_configured(provider_id: str) -> RpcError:
    """The reference's refusal of a provider that is not configured (any more)."""
    return RpcError(
        INVALID_REQUEST,
        f"This chat uses model provider \u201c{provider_id}\u201d, which is no longer configured. "
        "Restore this provider\u2019s configuration to continue.",
        {"type": "modelProviderNotConfigured", "modelProvider": provider_id},
    )


def model_providers(config: Config) -> dict[str, Any]:
    """The built-in ``openai`` provider and every ``[model_providers.*]``, sorted by id."""
    user = config.user_layer()
    editable = set(((user.data if user else {}).get("model_providers") or {}).keys())
    summaries = {"openai": _summary("openai", {"name": "OpenAI"}, editable=False, builtin=True)}
    for provider_id, info in (config.get("model_providers") or {}).items():
        if not isinstance(info, dict) or provider_id == "openai":
            continue
        editable_here = provider_id in editable
        summaries[provider_id] = (
            cloud_summary(provider_id, info, editable_here)
            if provider_id in CLOUD_PROVIDERS
            else _summary(provider_id, info, editable_here)
        )
    default = config.get("model_provider")
    return {
        "data": [summaries[key] for key in sorted(summaries)],
        "defaultProviderId": default if isinstance(default, str) else "openai",
        "canChangeDefault": True,
    }


def _summary(
    provider_id: str, info: dict[str, Any], editable: bool, builtin: bool = False
) -> dict[str, Any]:
    if builtin:
        settings: dict[str, Any] = {"type": "openai"}
    else:
        env_key = info.get("env_key")
        auth = (
            {"mode": "environmentVariable", "envKey": env_key}
            if isinstance(env_key, str) and env_key
            else {"mode": "none"}
        )
        settings = {"type": "customGateway", "auth": auth}
    base_url = info.get("base_url")
    name = info.get("name")
    return {
        "id": provider_id,
        "name": name if isinstance(name, str) and name else provider_id,
        "canEdit": editable,
        "baseUrl": base_url if isinstance(base_url, str) and not builtin else None,
        "settings": settings,
    }


def cloud_summary(provider_id: str, info: dict[str, Any], editable: bool) -> dict[str, Any]:
    """A built-in cloud provider: its account fields, never an endpoint."""
    settings: dict[str, Any]
    if provider_id == "gcp":
        settings = {"type": "gcp"} | {
            wire: _text(info.get(key))
            for wire, key in (("projectId", "project_id"), ("location", "location"),
                              ("credentialFile", "credential_file"))
        }  # fmt: skip
    else:
        aws = info.get("aws")
        aws = aws if isinstance(aws, dict) else {}
        settings = {"type": "bedrock", "profile": _text(aws.get("profile")),
                    "region": _text(aws.get("region"))}  # fmt: skip
    return {
        "id": provider_id,
        "name": CLOUD_PROVIDERS[provider_id],
        "canEdit": editable,
        "baseUrl": None,
        "settings": settings,
    }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


async def model_provider_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    return model_providers(ctx.kernel.config)


# --------------------------------------------------------------------------- hooks

#: ``HookSource`` of each layer type.
_SOURCES = {
    "system": "system",
    "user": "user",
    "project": "project",
    "sessionFlags": "sessionFlags",
    "legacyManagedConfigTomlFromFile": "legacyManagedConfigFile",
}
#: Handler timeout when a hook names none (seconds), as the official server.
DEFAULT_HOOK_TIMEOUT = 600


def _camel(event: str) -> str:
    return event[:1].lower() + event[1:]


def _snake(event: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", event).lower()


def _layer_file(layer: Layer, config: Config) -> str:
    name = layer.name
    if "file" in name:
        return str(name["file"])
    if "dotCodexFolder" in name:
        return str(Path(name["dotCodexFolder"]) / "config.toml")
    return str(config.user_file)


def hooks_for(config: Config) -> list[dict[str, Any]]:
    """``HookMetadata`` for each handler of ``[hooks]`` in the enabled layers, lowest first.

    Config shape (as the official server): ``[[hooks.<Event>]]`` matcher groups with an
    optional ``matcher`` and a ``hooks`` array of handlers (``type``, ``command``, ``timeout``,
    ``statusMessage``, ``async``). A hook's ``key`` is ``<file>:<event>:<group>:<handler>``;
    ``[hooks.state."<key>"]`` in the user's config disables it (``enabled = false``) or trusts
    it (``trusted_hash`` equal to its ``currentHash``).
    """
    states = _hook_states(config)
    found: list[dict[str, Any]] = []
    for layer in reversed(config.layers):
        table = layer.applied.get("hooks")
        if not isinstance(table, dict):
            continue
        source_path = _layer_file(layer, config)
        managed = layer.name["type"] == "legacyManagedConfigTomlFromFile"
        for event, groups in table.items():
            if not isinstance(groups, list):
                continue
            for group_index, group in enumerate(groups):
                if not isinstance(group, dict):
                    continue
                matcher = group.get("matcher")
                for handler_index, handler in enumerate(group.get("hooks") or []):
                    if not isinstance(handler, dict):
                        continue
                    entry = _hook(handler, matcher)
                    if entry is None:
                        continue
                    key = f"{source_path}:{_snake(event)}:{group_index}:{handler_index}"
                    state = states.get(key, {})
                    current = _current_hash(event, entry, handler)
                    trusted = state.get("trusted_hash")
                    entry.update(
                        key=key,
                        eventName=_camel(event),
                        sourcePath=source_path,
                        source=_SOURCES.get(layer.name["type"], "unknown"),
                        pluginId=None,
                        environmentId=None,
                        displayOrder=len(found),
                        enabled=managed
                        or (handler.get("enabled", True) is not False
                            and state.get("enabled") is not False),
                        isManaged=managed,
                        currentHash=current,
                        trustStatus="managed" if managed
                        else "trusted" if trusted == current
                        else "modified" if trusted
                        else "untrusted",
                    )  # fmt: skip
                    found.append(entry)
    return found


#: Events whose groups' matcher takes part (in matching, and in a hook's trust hash).
MATCHED_EVENTS = {"PreToolUse", "PermissionRequest", "PostToolUse", "SessionStart"}


def _current_hash(event: str, entry: dict[str, Any], handler: dict[str, Any]) -> str:
    if entry["handlerType"] != "command":
        digest = json.dumps(handler, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(digest.encode()).hexdigest()
    normalized = {"type": "command", "command": entry["command"],
                  "timeout": max(1, entry["timeoutSec"]), "async": entry["async"]}  # fmt: skip
    if entry["statusMessage"] is not None:
        normalized["statusMessage"] = entry["statusMessage"]
    matcher = entry["matcher"] if event in MATCHED_EVENTS else None
    return trust_hash(event, matcher, normalized)


def trust_hash(event: str, matcher: str | None, handler: dict[str, Any]) -> str:
    """A command hook's ``currentHash``, computed as the reference does, so a hook the user
    trusted in either server is trusted in both.

    ``handler`` is the normalized handler (``type``, ``command``, ``timeout``, ``async``,
    ``statusMessage`` when set); the identity is hashed as compact JSON with sorted keys.
    """
    identity: dict[str, Any] = {"event_name": _snake(event), "hooks": [handler]}
    if matcher is not None:
        identity["matcher"] = matcher
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _hook_states(config: Config) -> dict[str, dict[str, Any]]:
    """``[hooks.state."<key>"]`` of the user's own layers (a project cannot trust its own
    hooks), later layers winning field by field."""
    states: dict[str, dict[str, Any]] = {}
    for layer in reversed(config.layers):
        if layer.name["type"] not in ("user", "sessionFlags"):
            continue
        table = (layer.data.get("hooks") or {}).get("state")
        for key, state in (table or {}).items() if isinstance(table, dict) else ():
            if isinstance(state, dict) and key.strip():
                merged = states.setdefault(key.strip(), {})
                merged.update({k: state[k] for k in ("enabled", "trusted_hash") if k in state})
    return states


def _hook(handler: dict[str, Any], matcher: Any) -> dict[str, Any] | None:
    kind = handler.get("type", "command")
    entry: dict[str, Any] = {}
    if kind == "command":
        command = handler.get("command")
        if not isinstance(command, str):
            return None
        entry = {"handlerType": "command", "command": command}
        entry["async"] = handler.get("async") is True
    elif kind in ("prompt", "agent"):
        entry = {"handlerType": kind}
    else:
        return None
    timeout = handler.get("timeout", handler.get("timeout_sec"))
    limit = handler.get("additionalContextLimit")
    message = handler.get("statusMessage", handler.get("status_message"))
    entry.update(
        matcher=matcher if isinstance(matcher, str) else None,
        timeoutSec=timeout if isinstance(timeout, int) and timeout >= 0 else DEFAULT_HOOK_TIMEOUT,
        statusMessage=message if isinstance(message, str) else None,
        additionalContextLimit=limit if isinstance(limit, int) and limit >= 0 else None,
    )
    return entry


def hooks_entry(config: Config, cwd: str) -> dict[str, Any]:
    errors = [
        {"path": cwd, "message": str(warning.get("details") or "").partition("\n")[0]}
        for warning in config.warnings
        if warning.get("summary") == SUMMARY
    ]
    return {"cwd": cwd, "hooks": hooks_for(config), "warnings": [], "errors": errors}


async def hooks_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    config = ctx.kernel.config
    cwds = list(getattr(params, "cwds", None) or []) or [os.getcwd()]
    data = []
    for cwd in cwds:
        loaded = await anyio.to_thread.run_sync(config.reload, os.path.abspath(cwd))
        data.append(hooks_entry(loaded, cwd))  # named as asked, as the reference
    return {"data": data}
