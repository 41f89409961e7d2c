"""The history of migrations from other agents: ``externalAgentConfig/import/recordHistory``
and ``.../readHistories``.

Every finished ``externalAgentConfig/import`` is recorded (``providerId`` null), and a client
that migrated something itself records that with ``recordHistory`` (its ``providerId``). The
history survives restarts, as the official server's does: it is kept in
``$CODEX_HOME/external_agent_import_history.json`` (the official server keeps it in its state
database), read newest first.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from codex_core.rpc import RequestContext

HISTORY_FILE = "external_agent_import_history.json"
#: Serializes read-modify-write of the file between the requests of this process.
_lock = threading.Lock()


def _success(raw: dict[str, Any]) -> dict[str, Any]:
    """An ``ExternalAgentConfigImportItemTypeSuccess`` with every key the reference sends."""
    return {
        "itemType": raw.get("itemType"),
        "cwd": raw.get("cwd"),
        "source": raw.get("source"),
        "target": raw.get("target"),
        "title": raw.get("title"),
    }


def _failure(raw: dict[str, Any]) -> dict[str, Any]:
    """An ``ExternalAgentConfigImportItemTypeFailure`` with every key the reference sends."""
    return {
        "itemType": raw.get("itemType"),
        "errorType": raw.get("errorType"),
        "subErrorType": raw.get("subErrorType"),
        "failureStage": raw.get("failureStage"),
        "message": raw.get("message"),
        "cwd": raw.get("cwd"),
        "source": raw.get("source"),
    }


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        entries = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except ValueError:  # a damaged file is no history rather than a failing method
        return []
    return (
        [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []
    )


def record(
    codex_home: Path,
    provider_id: str | None,
    item_type_results: list[dict[str, Any]],
    import_id: str | None = None,
) -> str:
    """Append one finished import (``itemTypeResults`` in wire shape); its id."""
    entry = {
        "importId": import_id or str(uuid.uuid4()),
        "providerId": provider_id,
        "completedAtMs": int(time.time() * 1000),
        "successes": [_success(s) for r in item_type_results for s in r.get("successes") or []],
        "failures": [_failure(f) for r in item_type_results for f in r.get("failures") or []],
    }
    from codex_core.fs.atomic import write as atomic_write

    path = codex_home / HISTORY_FILE
    with _lock:
        entries = _load(path)
        entries.append(entry)
        atomic_write(path, json.dumps(entries, indent=1) + "\n")
    return str(entry["importId"])


def read(codex_home: Path) -> list[dict[str, Any]]:
    """Every recorded import, newest first."""
    with _lock:
        entries = _load(codex_home / HISTORY_FILE)
    return entries[::-1]


async def record_history(ctx: RequestContext, params: Any) -> dict[str, Any]:
    from codex_core.protocol.wire import to_wire

    wire = to_wire(params)
    import_id = await anyio.to_thread.run_sync(
        record, ctx.kernel.config.codex_home, wire["providerId"], wire["itemTypeResults"]
    )
    return {"importId": import_id}


async def read_histories(ctx: RequestContext, params: Any) -> dict[str, Any]:
    data = await anyio.to_thread.run_sync(read, ctx.kernel.config.codex_home)
    return {"data": data, "connectors": []}
