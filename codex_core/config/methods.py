"""The ``config`` plugin: reading and writing the layered configuration over JSON-RPC.

``config/read`` (with ``cwd``: project layers too), ``config/value/write``,
``config/batchWrite``, ``configRequirements/read``; ``experimentalFeature/list``,
``modelProvider/list`` and ``hooks/list`` (``listing.py``); ``externalAgentConfig/detect`` and
``/import`` (``migration.py``). Writes are done by the
``ConfigService`` published as ``kernel.services["config"]`` (see ``writer.py``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.config import listing, migration
from codex_core.config.loader import DEFAULTS, Config
from codex_core.config.writer import ConfigService, Edit
from codex_core.hookspecs import hookimpl
from codex_core.rpc import INTERNAL_ERROR, RequestContext, RpcError, RpcMethod

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

#: The keys ``config/read`` reports (unset ones as null), with their packaged defaults.
_KNOWN_KEYS: list[str] = list(json.loads(DEFAULTS.read_text()))


def read_config(config: Config, include_layers: bool) -> dict[str, Any]:
    result: dict[str, Any] = {
        "config": {key: config.effective.get(key) for key in _KNOWN_KEYS},
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
    return read_config(config, bool(params.include_layers))


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
        RpcMethod("hooks/list", listing.hooks_list),
        RpcMethod("externalAgentConfig/detect", migration.external_agent_config_detect),
        RpcMethod("externalAgentConfig/import", migration.external_agent_config_import),
    ]
