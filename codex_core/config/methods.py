"""``config/read`` and ``configRequirements/read``: the effective configuration as clients see it.

Writes (``config/value/write``, ``config/batchWrite``) arrive with the full layered
configuration work; reading is built in because every client asks for it at startup.
"""

from __future__ import annotations

import json
from typing import Any

from codex_core.config.loader import DEFAULTS, Config
from codex_core.hookspecs import hookimpl
from codex_core.rpc import RequestContext, RpcMethod

#: The keys ``config/read`` reports (unset ones as null), with their packaged defaults.
_KNOWN_KEYS: list[str] = list(json.loads(DEFAULTS.read_text()))


def read_config(config: Config, include_layers: bool) -> dict[str, Any]:
    result: dict[str, Any] = {
        "config": {key: config.effective.get(key) for key in _KNOWN_KEYS},
        "origins": {
            key: {"name": layer.name, "version": layer.version}
            for key, layer in config.origins.items()
        },
    }
    if include_layers:
        # The key is absent, not null, when layers were not asked for (as the reference).
        result["layers"] = [
            {"name": layer.name, "version": layer.version, "config": layer.data}
            for layer in config.layers
        ]
    return result


async def config_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    return read_config(ctx.kernel.config, bool(params.include_layers))


async def config_requirements_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    # No managed requirements source is configured yet, which the protocol spells as null.
    return {"supportsIndependentSpeedModes": True, "requirements": None}


@hookimpl
def codex_rpc_methods() -> list[RpcMethod]:
    return [
        RpcMethod("config/read", config_read),
        RpcMethod("configRequirements/read", config_requirements_read),
    ]
