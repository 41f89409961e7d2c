"""``model/list``: the models clients offer, from the catalog shipped with the kernel.

The catalog works offline, as the official one does. Pagination cursors are offsets into the
list, encoded as strings, which is what the reference hands out.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from codex_core.hookspecs import hookimpl
from codex_core.rpc import INVALID_REQUEST, RequestContext, RpcError, RpcMethod

CATALOG = Path(__file__).with_name("catalog.json")


@cache
def catalog() -> tuple[dict[str, Any], ...]:
    return tuple(json.loads(CATALOG.read_text()))


def default_model() -> str:
    return str(next(entry["id"] for entry in catalog() if entry["isDefault"]))


async def model_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    entries = [entry for entry in catalog() if params.include_hidden or not entry["hidden"]]
    start = 0
    if params.cursor is not None:
        try:
            start = int(params.cursor)
        except ValueError:
            raise RpcError(INVALID_REQUEST, f"invalid cursor: {params.cursor}") from None
    end = len(entries) if params.limit is None else start + max(params.limit, 1)
    page = entries[start:end]
    return {"data": page, "nextCursor": str(end) if end < len(entries) else None}


@hookimpl
def codex_rpc_methods() -> list[RpcMethod]:
    return [RpcMethod("model/list", model_list)]
