"""``threadSection/list|create|update|delete``: the named groups clients sort threads into.

The desktop app shows threads under sections the user names (and colors, and gives an icon),
the same on every client of a server. A section has a stable UUIDv7 ``id`` (so ids sort by
creation), a ``name`` (trimmed, never blank; duplicates allowed) and an optional ``appearance
{color, icon}`` kept as given. As in the reference there is always the built-in *Pinned*
section, with a fixed id, which can be neither renamed nor deleted. ``list`` pages in id order:
the cursor is the last id of the page, the next page starts after it, a ``limit`` of 0 counts as
1. Sections persist in ``$CODEX_HOME/thread_sections.jsonl`` (one line per change; ``journal``).
Refusals are ``-32602`` with the reference's words. Putting threads in sections is
``section_members``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.rpc import INVALID_PARAMS, RpcError
from codex_core.threads import journal
from codex_core.threads.ids import uuid7

if TYPE_CHECKING:
    from codex_core.rpc import RequestContext

FILE = "thread_sections.jsonl"
PINNED_ID = "01984de2-8f74-7c91-a3b2-5c5e937cf318"
PINNED = {"id": PINNED_ID, "name": "Pinned", "appearance": None}


def load(codex_home: Path) -> dict[str, dict[str, Any]]:
    """Every section by id, the built-in one first, replayed from the journal."""
    sections: dict[str, dict[str, Any]] = {PINNED_ID: dict(PINNED)}
    for line in journal.records(codex_home / FILE):
        section_id = line.get("id")
        if not isinstance(section_id, str) or section_id == PINNED_ID:
            continue
        if line.get("deleted"):
            sections.pop(section_id, None)
        elif isinstance(line.get("name"), str):
            sections[section_id] = {"id": section_id, "name": line["name"],
                                    "appearance": line.get("appearance")}  # fmt: skip
    return sections


def _name(raw: str) -> str:
    name = raw.strip()
    if not name:
        raise RpcError(INVALID_PARAMS, "section name must not be empty")
    return name


def _appearance(params: Any) -> dict[str, Any] | None:
    """The appearance as given (nothing trimmed), both fields always present."""
    appearance = params.appearance
    if appearance is None:
        return None
    return {"icon": appearance.icon, "color": appearance.color}


def _not_found(section_id: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"thread section not found: {section_id}")


def _lock(ctx: RequestContext) -> anyio.Lock:
    """One change at a time: each reads the journal, checks, then appends."""
    found = ctx.kernel.services.get("thread_sections_lock")
    if not isinstance(found, anyio.Lock):
        found = ctx.kernel.services["thread_sections_lock"] = anyio.Lock()
    return found


async def section_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    sections = sorted(
        (await anyio.to_thread.run_sync(load, ctx.kernel.codex_home)).values(),
        key=lambda section: str(section["id"]),
    )
    if params.cursor is not None:
        sections = [section for section in sections if section["id"] > params.cursor]
    limit = len(sections) if params.limit is None else max(params.limit, 1)
    page = sections[:limit]
    more = len(sections) > limit
    return {"data": page, "nextCursor": page[-1]["id"] if more else None}


async def section_create(ctx: RequestContext, params: Any) -> dict[str, Any]:
    section = {"id": uuid7(), "name": _name(params.name), "appearance": _appearance(params)}
    async with _lock(ctx):
        await anyio.to_thread.run_sync(journal.append, ctx.kernel.codex_home / FILE, section)
    return {"section": section}


async def section_update(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """Rename, and change the appearance when given (``null`` clears it)."""
    name = _name(params.name)
    async with _lock(ctx):
        home = ctx.kernel.codex_home
        current = (await anyio.to_thread.run_sync(load, home)).get(params.section_id)
        if current is None:
            raise _not_found(params.section_id)
        if current["id"] == PINNED_ID:
            raise RpcError(INVALID_PARAMS, "the built-in pinned section cannot be renamed")
        section = {**current, "name": name}
        if "appearance" in params.model_fields_set:
            section["appearance"] = _appearance(params)
        await anyio.to_thread.run_sync(journal.append, home / FILE, section)
        _refresh_threads(ctx)
    return {"section": section}


async def section_delete(ctx: RequestContext, params: Any) -> dict[str, Any]:
    async with _lock(ctx):
        home = ctx.kernel.codex_home
        if params.section_id not in await anyio.to_thread.run_sync(load, home):
            raise _not_found(params.section_id)
        if params.section_id == PINNED_ID:
            raise RpcError(INVALID_PARAMS, "the built-in pinned section cannot be deleted")
        record = {"id": params.section_id, "deleted": True}
        await anyio.to_thread.run_sync(journal.append, home / FILE, record)
        _refresh_threads(ctx)  # its threads are in no section now
    return {}


def _refresh_threads(ctx: RequestContext) -> None:
    """Loaded threads show their section as it is now."""
    from codex_core.threads.section_members import refresh_loaded

    registry = ctx.kernel.services.get("threads")
    if registry is not None:
        refresh_loaded(registry)
