"""``thread/metadata/update``: a client corrects the Git facts stored with a thread.

The desktop app and the IDE extensions show a thread's repository, branch and commit
(``Thread.gitInfo``) and let the user fix them, for example after a branch was renamed. Each
field of ``gitInfo`` is a patch: omitted keeps it, ``null`` clears it, a string (trimmed, never
blank) replaces it; an origin URL that looks like a URL of a scheme with hosts (``http://``,
``https://``, ...; the scheme as written, lowercase) must name one. Patches are checked before
the thread is looked up, with the reference's wording. They persist in
``$CODEX_HOME/thread_git_info.jsonl`` (one line per patch, the last value of each field winning;
``journal``), so ``thread/read``, ``thread/list`` and a resumed thread show them; an ephemeral
thread keeps them in memory only.
"""

from __future__ import annotations

import os
import re
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_core.rpc import INVALID_REQUEST, RpcError
from codex_core.threads import journal, rollout
from codex_core.threads.ids import reference_uuid_error

if TYPE_CHECKING:
    from codex_core.rpc import RequestContext
    from codex_core.threads.methods import ThreadRegistry

FILE = "thread_git_info.jsonl"
#: ``gitInfo``'s fields: wire name, and the name the patch model gives it.
FIELDS = {"sha": "sha", "branch": "branch", "originUrl": "origin_url"}
#: URL schemes whose URLs must name a host (the WHATWG "special" schemes, minus ``file``).
_HOST_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)")
_cache: dict[Path, tuple[tuple[int, int], dict[str, dict[str, Any]]]] = {}


def _invalid(message: str) -> RpcError:
    return RpcError(INVALID_REQUEST, message)


def patch_of(params: Any) -> dict[str, str | None]:
    """The fields to change, checked in the reference's order and words."""
    git = params.git_info
    if git is None:
        raise _invalid("thread metadata update must include at least one field")
    given = git.model_fields_set
    patch: dict[str, str | None] = {}
    for wire, attribute in FIELDS.items():
        if attribute not in given:
            continue
        value = getattr(git, attribute)
        if value is not None:
            value = value.strip()
            if not value:
                raise _invalid(f"gitInfo.{wire} must not be empty")
            found = _URL.match(value) if wire == "originUrl" else None
            if found and found.group(1) in _HOST_SCHEMES and not found.group(2):
                raise _invalid("gitInfo.originUrl must be a valid Git remote")
        patch[wire] = value
    if not patch:
        raise _invalid("gitInfo must include at least one field")
    return patch


def saved(codex_home: Path) -> dict[str, dict[str, Any]]:
    """Every thread's stored ``gitInfo``, replayed from the journal (cached until it grows)."""
    path = codex_home / FILE
    try:
        stat = os.stat(path)
    except OSError:
        return {}
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _cache.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    infos: dict[str, dict[str, Any]] = {}
    for line in journal.records(path):
        thread_id, patch = line.get("id"), line.get("gitInfo")
        if isinstance(thread_id, str) and isinstance(patch, dict):
            merged = infos.setdefault(thread_id, dict.fromkeys(FIELDS))
            merged.update({k: v for k, v in patch.items() if k in FIELDS})
    _cache[path] = (key, infos)
    return infos


def git_info(codex_home: Path, thread_id: str) -> dict[str, Any] | None:
    """A stored thread's ``gitInfo``: what clients set, else none."""
    found = saved(codex_home).get(thread_id)
    return dict(found) if found is not None else None


def patched(current: dict[str, Any] | None, patch: dict[str, str | None]) -> dict[str, Any]:
    return {**(current or dict.fromkeys(FIELDS)), **patch}


async def metadata_update(
    registry: ThreadRegistry, ctx: RequestContext, params: Any
) -> dict[str, Any]:
    import anyio

    problem = reference_uuid_error(params.thread_id)
    if problem is not None:
        raise _invalid(f"invalid thread id: {problem}")
    thread_id = registry.thread_id(params.thread_id)
    patch = patch_of(params)
    loaded = registry.threads.get(thread_id)
    if loaded is not None:
        loaded.thread["gitInfo"] = patched(loaded.thread.get("gitInfo"), patch)
        if not loaded.thread["ephemeral"]:
            await anyio.to_thread.run_sync(
                journal.append, registry.home / FILE, {"id": thread_id, "gitInfo": patch}
            )
        # The reference answers from its thread store, which does not know a live connection's
        # ``canAcceptDirectInput``.
        return {"thread": {**loaded.thread, "canAcceptDirectInput": None}}
    stored = await anyio.to_thread.run_sync(partial(registry.stored, thread_id, full=False))
    if stored is None:
        raise _invalid(f"no rollout found for thread id {thread_id}")
    await anyio.to_thread.run_sync(
        journal.append, registry.home / FILE, {"id": thread_id, "gitInfo": patch}
    )
    name = rollout.read_names(registry.home).get(thread_id)
    return {"thread": registry.stored_thread(stored, name)}
