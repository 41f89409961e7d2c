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
from codex_core.config.loader import DEFAULTS, Config, load_config
from codex_core.config.writer import ConfigService, Edit
from codex_core.hookspecs import hookimpl
from codex_core.rpc import RequestContext, RpcMethod

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
    config = ctx.kernel.config
    if params.cwd is not None:
        # Project layers depend on the folder, so they are read for this request only.
        config = await anyio.to_thread.run_sync(
            load_config, config.codex_home, config.overrides, params.cwd, config.sections
        )
    return read_config(config, bool(params.include_layers))


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
    # No managed requirements source is configured yet, which the protocol spells as null.
    return {"supportsIndependentSpeedModes": True, "requirements": None}


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
