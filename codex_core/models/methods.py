"""``model/list``: the models clients offer, from the catalog shipped with the kernel.

The catalog works offline, as the official one does. ``model_catalog_json`` names a file in
the reference's ``models.json`` format (``{"models": [{"slug", "display_name", ...}]}``) whose
entries overlay it: an entry replaces the built-in model with its slug, or adds one. Pagination
cursors are offsets into the list, encoded as strings, which is what the reference hands out.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from codex_core.config import listing
from codex_core.hookspecs import hookimpl
from codex_core.rpc import INVALID_REQUEST, RequestContext, RpcError, RpcMethod

CATALOG = Path(__file__).with_name("catalog.json")


@cache
def catalog() -> tuple[dict[str, Any], ...]:
    return tuple(json.loads(CATALOG.read_text()))


def default_model() -> str:
    return str(next(entry["id"] for entry in catalog() if entry["isDefault"]))


def models(config: Any) -> list[dict[str, Any]]:
    """The built-in catalog with ``model_catalog_json``'s entries laid over it."""
    path = config.get("model_catalog_json")
    if not path:
        return list(catalog())
    try:
        raw = json.loads(Path(str(path)).expanduser().read_text(encoding="utf-8"))
        overlay = [model_entry(info) for info in raw["models"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RpcError(INVALID_REQUEST, f"model_catalog_json {path}: {exc}") from None
    by_id = {entry["id"]: entry for entry in catalog()}
    added = [entry for entry in overlay if entry["id"] not in by_id]
    by_id.update((entry["id"], {**entry, "isDefault": by_id[entry["id"]]["isDefault"]})
                 for entry in overlay if entry["id"] in by_id)  # fmt: skip
    return [*by_id.values(), *added]


def model_entry(info: dict[str, Any]) -> dict[str, Any]:
    """A ``models.json`` entry (the reference's ``ModelInfo``) as a protocol ``Model``."""
    slug = str(info["slug"])
    levels = info.get("supported_reasoning_levels") or []
    return {
        "id": slug,
        "model": slug,
        "upgrade": None,
        "upgradeInfo": None,
        "availabilityNux": info.get("availability_nux"),
        "displayName": info.get("display_name") or slug,
        "description": info.get("description") or "",
        "modelSpecialty": None,
        "hidden": info.get("visibility", "list") != "list",
        "supportedReasoningEfforts": [
            {"reasoningEffort": level["effort"], "description": level.get("description", "")}
            for level in levels
        ],
        "defaultReasoningEffort": info.get("default_reasoning_level") or "none",
        "inputModalities": info.get("input_modalities") or ["text", "image"],
        "supportsPersonality": False,
        "multiAgentVersion": None,
        "additionalSpeedTiers": [],
        "serviceTiers": [],
        "defaultServiceTier": None,
        "availableAccessPrograms": None,
        "isDefault": False,
    }


async def model_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    provider = params.model_provider
    if provider is not None and not listing.provider_configured(ctx.kernel.config, provider):
        raise listing.provider_not_configured(provider)
    entries = [
        entry for entry in models(ctx.kernel.config) if params.include_hidden or not entry["hidden"]
    ]
    start = 0
    if params.cursor is not None:
        # The reference's cursor is an unsigned offset, at most the catalog's length.
        if not params.cursor.isdigit():
            raise RpcError(INVALID_REQUEST, f"invalid cursor: {params.cursor}")
        start = int(params.cursor)
        if start > len(entries):
            raise RpcError(INVALID_REQUEST, f"cursor {start} exceeds total models {len(entries)}")
    end = len(entries) if params.limit is None else start + max(params.limit, 1)
    page = entries[start:end]
    return {"data": page, "nextCursor": str(end) if end < len(entries) else None}


@hookimpl
def codex_rpc_methods() -> list[RpcMethod]:
    return [RpcMethod("model/list", model_list)]
