"""The ``config`` plugin: reading and writing the layered configuration over JSON-RPC.

``config/read`` (with ``cwd``: project layers too), ``config/value/write``,
``config/batchWrite``, ``configRequirements/read``; ``experimentalFeature/list``,
``modelProvider/list`` and ``hooks/list`` (``listing.py``); ``permissionProfile/list``
(``permissions.py``); ``externalAgentConfig/detect`` and ``/import`` (``migration.py``).
Writes are done by the ``ConfigService`` published as ``kernel.services["config"]``
(see ``writer.py``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.config import import_history, listing, migration, permissions, provider_write
from codex_core.config.loader import DEFAULTS, Config
from codex_core.config.writer import ConfigService, Edit
from codex_core.hookspecs import hookimpl
from codex_core.rpc import INTERNAL_ERROR, RequestContext, RpcError, RpcMethod

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

#: The keys ``config/read`` reports (unset ones as null), with their packaged defaults.
_KNOWN_KEYS: list[str] = list(json.loads(DEFAULTS.read_text()))


#: Tables ``config/read`` reports in the reference's typed shape: each field (defaults filled
#: in), nothing else, so unknown keys in a file do not reach the client. The layers still show
#: the files as written.
_TABLES: dict[str, dict[str, Any]] = {
    "tools": {"web_search": None},
    "sandbox_workspace_write": {
        "writable_roots": [],
        "network_access": False,
        "exclude_tmpdir_env_var": False,
        "exclude_slash_tmp": False,
    },
    "history": {"persistence": "save-all", "max_bytes": None},
    "shell_environment_policy": dict.fromkeys(
        (
            "inherit",
            "ignore_default_excludes",
            "exclude",
            "set",
            "include_only",
            "filters",
            "experimental_use_profile",
        )
    ),
}


#: ``[model_providers.<id>]`` as the reference reports each provider: every field.
_PROVIDER: dict[str, Any] = {
    "name": "",  # a built-in cloud provider's table sets only its account fields
    **dict.fromkeys(
        ("base_url", "model_catalog_url", "env_key", "env_key_instructions",
         "experimental_bearer_token", "auth", "gateway_oauth", "aws", "project_id", "location",
         "credential_file")
    ),
    "wire_api": "responses",
    **dict.fromkeys(
        ("capabilities", "query_params", "http_headers", "env_http_headers",
         "request_max_retries", "stream_max_retries", "stream_idle_timeout_ms",
         "websocket_connect_timeout_ms")
    ),
    "requires_openai_auth": False,
    "supports_websockets": False,
    "supports_standalone_web_search": False,
}  # fmt: skip
#: A Bedrock provider's ``aws`` table, every field.
_AWS = dict.fromkeys(("profile", "region", "credential_export", "auth_refresh"))
#: ``[mcp_servers.<id>]``: the reference reports the fields that are set (these) and always
#: ``environment_id``, ``enabled`` and ``tool_timeout_sec`` (``args`` too for a command).
_MCP_FIELDS = frozenset(
    {"command", "args", "env", "env_vars", "cwd", "url", "bearer_token_env_var", "http_headers",
     "env_http_headers", "environment_id", "enabled", "required", "startup_timeout_sec",
     "tool_timeout_sec", "enabled_tools", "disabled_tools", "scopes", "oauth_resource"}
)  # fmt: skip


def _mcp_server(entry: dict[str, Any]) -> dict[str, Any]:
    server = {field: value for field, value in entry.items() if field in _MCP_FIELDS}
    if "command" in server:
        server.setdefault("args", [])
    server.setdefault("environment_id", "local")
    server.setdefault("enabled", True)
    server.setdefault("tool_timeout_sec", None)
    return server


def _provider(entry: dict[str, Any]) -> dict[str, Any]:
    provider = {field: entry.get(field, default) for field, default in _PROVIDER.items()}
    if isinstance(provider["aws"], dict):
        provider["aws"] = {field: provider["aws"].get(field) for field in _AWS}
    return provider


def _typed(key: str, value: Any) -> Any:
    """An effective value as the reference reports it (see ``_TABLES``)."""
    if key in ("model_providers", "mcp_servers") and isinstance(value, dict):
        return {
            entry_id: _mcp_server(entry) if key == "mcp_servers" else _provider(entry)
            for entry_id, entry in value.items()
            if isinstance(entry, dict)
        }
    shape = _TABLES.get(key)
    if shape is None or not isinstance(value, dict):
        return value
    table = {field: value.get(field, default) for field, default in shape.items()}
    if key == "tools" and not isinstance(table["web_search"], dict):
        table["web_search"] = None  # the legacy `web_search = true` is not a tool config
    return table


def read_config(config: Config, include_layers: bool) -> dict[str, Any]:
    result: dict[str, Any] = {
        "config": {key: _typed(key, config.effective.get(key)) for key in _KNOWN_KEYS},
        "origins": {key: layer.metadata() for key, layer in config.origins.items()},
    }
    if include_layers:
        # The key is absent, not null, when layers were not asked for (as the reference).
        result["layers"] = [layer.to_wire() for layer in config.layers]
    return result


def service(kernel: Kernel) -> ConfigService:
    found = kernel.services.get("config")
    if not isinstance(found, ConfigService):
        found = kernel.services["config"] = ConfigService(kernel)
    return found


async def config_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """Read from disk on every call, as the reference: another process's edit shows at once
    (project layers too, with ``cwd``). A configuration the reference cannot load is its error
    (-32603), though the server keeps running on what it loaded."""
    config = await _fresh(ctx, params.cwd)
    result = read_config(config, bool(params.include_layers))
    features = result["config"].get("features")
    runtime = listing.runtime_enablement(ctx.kernel)
    if runtime and isinstance(features, dict):
        # What clients switched at run time shows where no layer sets the feature.
        configured = config.layered().get("features") or {}
        switched = {k: v for k, v in runtime.items() if not isinstance(configured.get(k), bool)}
        result["config"]["features"] = {**features, **switched}
    return result


async def _fresh(ctx: RequestContext, cwd: str | None) -> Config:
    config = await anyio.to_thread.run_sync(ctx.kernel.config.reload, cwd)
    if config.read_error is not None:
        raise RpcError(INTERNAL_ERROR, config.read_error)
    return config


async def config_value_write(ctx: RequestContext, params: Any) -> dict[str, Any]:
    edit = Edit(params.key_path, params.value, _strategy(params.merge_strategy))
    return await service(ctx.kernel).write([edit], params.file_path, params.expected_version)


async def config_batch_write(ctx: RequestContext, params: Any) -> dict[str, Any]:
    edits = [
        Edit(edit.key_path, edit.value, _strategy(edit.merge_strategy)) for edit in params.edits
    ]
    return await service(ctx.kernel).write(edits, params.file_path, params.expected_version)


def _strategy(value: Any) -> str:
    return str(getattr(value, "value", value))


async def config_requirements_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """``requirements.toml`` (and the legacy managed file's constraints) as read now; null
    when there are none."""
    config = await _fresh(ctx, None)
    requirements = config.requirements
    return {
        "supportsIndependentSpeedModes": True,
        "requirements": requirements.to_wire(config.get("forced_login_method"))
        if requirements
        else None,
    }


@hookimpl
def codex_rpc_methods(kernel: Kernel) -> list[RpcMethod]:
    service(kernel)
    return [
        RpcMethod("config/read", config_read),
        RpcMethod("config/value/write", config_value_write),
        RpcMethod("config/batchWrite", config_batch_write),
        RpcMethod("configRequirements/read", config_requirements_read),
        RpcMethod("experimentalFeature/list", listing.experimental_feature_list),
        RpcMethod("modelProvider/list", listing.model_provider_list),
        RpcMethod("modelProvider/config/write", provider_write.model_provider_config_write),
        RpcMethod("hooks/list", listing.hooks_list),
        RpcMethod("permissionProfile/list", permissions.permission_profile_list),
        RpcMethod("externalAgentConfig/detect", migration.external_agent_config_detect),
        RpcMethod("externalAgentConfig/import", migration.external_agent_config_import),
        RpcMethod("externalAgentConfig/import/recordHistory", import_history.record_history),
        RpcMethod("externalAgentConfig/import/readHistories", import_history.read_histories),
        RpcMethod(
            "experimentalFeature/enablement/set", listing.experimental_feature_enablement_set
        ),
        RpcMethod("modelProvider/capabilities/read", listing.model_provider_capabilities_read),
    ]
