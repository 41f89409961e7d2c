"""``thread/attachment/add|list|remove`` and ``thread/attachmentOwner/list``: things a client
ties to a thread (a pull request, a ticket), found again from either side.

An attachment is ``{id, attachmentType, identityKey, payload, createdAt}``: the type and key
(kept as given, never blank) identify it within its thread, so adding the same pair again
answers the first one (``outcome: "existing"``, payload unchanged) instead of a copy. The
thread must be stored (a rollout; a thread without one is "not found", as in the reference).
Creations and deletions are told to every client as ``thread/attachment/updated``. A thread's
attachments list in creation order (cursor ``<threadId>|<createdAt>|<id>`` of the page's last);
``attachmentOwner/list`` finds the threads holding a type and key (``archived: false`` leaves
archived threads out). They persist in ``$CODEX_HOME/thread_attachments.jsonl`` (one line per
change; ``journal``). Refusals are ``-32602`` with the reference's words.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.protocol.wire import to_wire
from codex_core.rpc import INVALID_PARAMS, RpcError
from codex_core.threads import journal, rollout
from codex_core.threads.ids import reference_uuid_error, uuid7

if TYPE_CHECKING:
    from codex_core.rpc import RequestContext
    from codex_core.threads.methods import ThreadRegistry
    from codex_core.threads.store import ThreadStore

FILE = "thread_attachments.jsonl"

#: An attachment's identity within its thread.
Key = tuple[str, str, str]


def load(codex_home: Path) -> dict[Key, dict[str, Any]]:
    """Every attachment by ``(threadId, attachmentType, identityKey)``, in creation order."""
    found: dict[Key, dict[str, Any]] = {}
    for line in journal.records(codex_home / FILE):
        key = (line.get("threadId"), line.get("attachmentType"), line.get("identityKey"))
        if not all(isinstance(part, str) for part in key):
            continue
        if line.get("deleted"):
            found.pop(key, None)  # type: ignore[arg-type]
        elif isinstance(line.get("attachment"), dict):
            found.setdefault(key, line["attachment"])  # type: ignore[arg-type]
    return found


def _invalid(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


def _thread_id(raw: str) -> str:
    problem = reference_uuid_error(raw)
    if problem is not None:
        raise _invalid(f"invalid thread id: {problem}")
    return raw.lower()


def _identity(params: Any) -> tuple[str, str]:
    if not params.attachment_type.strip():
        raise _invalid("attachmentType must not be empty")
    if not params.identity_key.strip():
        raise _invalid("identityKey must not be empty")
    return params.attachment_type, params.identity_key


def _store(ctx: RequestContext) -> ThreadStore:
    """The thread store (chosen on the event loop, where plugins' hooks run)."""
    registry: ThreadRegistry = ctx.kernel.services["threads"]
    return registry.store


async def _stored(ctx: RequestContext, thread_id: str) -> Path:
    path = await anyio.to_thread.run_sync(_store(ctx).find, thread_id)
    if path is None:
        raise _invalid(f"thread not found: {thread_id}")
    return path


def _lock(ctx: RequestContext) -> anyio.Lock:
    found = ctx.kernel.services.get("thread_attachments_lock")
    if not isinstance(found, anyio.Lock):
        found = ctx.kernel.services["thread_attachments_lock"] = anyio.Lock()
    return found


def _announce(ctx: RequestContext, thread_id: str, attachment: dict[str, Any], op: str) -> None:
    updated = {"threadId": thread_id, "attachmentType": attachment["attachmentType"],
               "identityKey": attachment["identityKey"], "attachmentId": attachment["id"],
               "operation": op}  # fmt: skip
    ctx.after_reply.append(lambda: ctx.kernel.broadcast("thread/attachment/updated", updated))


@contextlib.asynccontextmanager
async def _editing(
    ctx: RequestContext, params: Any
) -> AsyncIterator[tuple[Key, dict[str, Any] | None]]:
    """The checked ``(thread, type, identity)`` and its current attachment, if any, under the
    lock that serializes edits of the journal."""
    kind, identity = _identity(params)  # checked before the thread id, as the reference
    thread_id = _thread_id(params.thread_id)
    async with _lock(ctx):
        await _stored(ctx, thread_id)
        everything = await anyio.to_thread.run_sync(load, ctx.kernel.codex_home)
        yield (thread_id, kind, identity), everything.get((thread_id, kind, identity))


async def attachment_add(ctx: RequestContext, params: Any) -> dict[str, Any]:
    home = ctx.kernel.codex_home
    async with _editing(ctx, params) as ((thread_id, kind, identity), existing):
        if existing is not None:
            return {"outcome": "existing", "attachment": existing}
        attachment = {
            "id": uuid7(),
            "attachmentType": kind,
            "identityKey": identity,
            "payload": to_wire(params.payload),
            "createdAt": int(time.time()),
        }
        record = {"threadId": thread_id, "attachmentType": kind, "identityKey": identity,
                  "attachment": attachment}  # fmt: skip
        await anyio.to_thread.run_sync(journal.append, home / FILE, record)
    _announce(ctx, thread_id, attachment, "created")
    return {"outcome": "created", "attachment": attachment}


async def attachment_remove(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """Removing what is not there is no error (and no news)."""
    home = ctx.kernel.codex_home
    async with _editing(ctx, params) as ((thread_id, kind, identity), existing):
        if existing is None:
            return {}
        record = {"threadId": thread_id, "attachmentType": kind, "identityKey": identity,
                  "deleted": True}  # fmt: skip
        await anyio.to_thread.run_sync(journal.append, home / FILE, record)
    _announce(ctx, thread_id, existing, "deleted")
    return {}


def _page(items: list[Any], limit: int | None) -> tuple[list[Any], bool]:
    size = len(items) if limit is None else max(limit, 1)
    return items[:size], len(items) > size


async def attachment_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    thread_id = _thread_id(params.thread_id)
    everything = await anyio.to_thread.run_sync(load, ctx.kernel.codex_home)
    mine = sorted(
        (item for key, item in everything.items() if key[0] == thread_id),
        key=lambda item: (item["createdAt"], item["id"]),
    )
    if params.cursor is not None:
        parts = params.cursor.split("|")
        if len(parts) != 3 or not parts[1].isdigit():
            raise _invalid("invalid pagination cursor")
        after = (int(parts[1]), parts[2])
        mine = [item for item in mine if (item["createdAt"], item["id"]) > after]
    page, more = _page(mine, params.limit)
    cursor = f"{thread_id}|{page[-1]['createdAt']}|{page[-1]['id']}" if more else None
    return {"data": page, "nextCursor": cursor}


async def attachment_owner_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    _identity(params)
    home = ctx.kernel.codex_home
    everything = await anyio.to_thread.run_sync(load, home)
    store = _store(ctx)
    owners = []
    for thread_id, kind, identity in everything:
        if (kind, identity) != (params.attachment_type, params.identity_key):
            continue
        path = await anyio.to_thread.run_sync(store.find, thread_id)
        if path is None:
            continue  # the thread was deleted
        archived = rollout.ARCHIVED in path.parts
        if params.archived is not None and archived != params.archived:
            continue
        owners.append({"threadId": thread_id, "archived": archived})
    owners.sort(key=lambda owner: str(owner["threadId"]))
    if params.cursor is not None:
        owners = [owner for owner in owners if owner["threadId"] > params.cursor]
    page, more = _page(owners, params.limit)
    return {"data": page, "nextCursor": page[-1]["threadId"] if more else None}
