"""``permissionProfile/list``: the permission profiles a client may offer (the TUI's
``/permissions``), as the official server lists them.

The three built-in profiles come first, in the reference's order, then every
``[permissions.<id>]`` table of the effective configuration sorted by id, with its
``description``. ``allowed`` says whether the administrator's requirements let a thread select
the profile: a profile is refused when the sandbox mode it implies is not in
``allowed_sandbox_modes`` (read-only always is). A configured profile implies the mode of the
built-in it ``extends``; without ``extends``, ``workspace-write`` if it grants any filesystem
write, else ``read-only``.

The configuration is read again from disk for each request (with ``cwd``: its project layers
too), as the reference does, so a profile written a moment ago is listed. Pages are offsets
into the list, encoded as strings.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.rpc import INTERNAL_ERROR, INVALID_REQUEST, RpcError

if TYPE_CHECKING:
    from codex_core.config.loader import Config
    from codex_core.rpc import RequestContext

#: Built-in profile id -> the sandbox mode it stands for, in the reference's order.
BUILTIN_PROFILES = {
    ":read-only": "read-only",
    ":workspace": "workspace-write",
    ":danger-full-access": "danger-full-access",
}

#: What the reference's cursor parsing (Rust ``usize``) accepts.
_OFFSET = re.compile(r"\+?[0-9]+")


def catalog(config: Config) -> list[dict[str, Any]]:
    """Every profile with its description and whether the requirements allow it.

    A configured profile named like a built-in (``:`` prefix) or with a description that is
    not a string makes the whole list fail, as it does for the reference.
    """
    profiles = [
        {"id": profile_id, "description": None, "allowed": _mode_allowed(config, mode)}
        for profile_id, mode in BUILTIN_PROFILES.items()
    ]
    table = config.get("permissions")
    for profile_id, profile in sorted((table if isinstance(table, dict) else {}).items()):
        if profile_id.startswith(":"):
            raise _unresolved(f"permissions profile `{profile_id}` uses a reserved built-in "
                              "profile prefix")  # fmt: skip
        profile = profile if isinstance(profile, dict) else {}
        description = profile.get("description")
        if description is not None and not isinstance(description, str):
            raise _unresolved(f"invalid type: {type(description).__name__} `{description}`, "
                              "expected a string")  # fmt: skip
        profiles.append(
            {
                "id": profile_id,
                "description": description,
                "allowed": _mode_allowed(config, implied_mode(profile)),
            }
        )
    return profiles


def implied_mode(profile: dict[str, Any]) -> str:
    """The sandbox mode a configured profile stands for (what ``allowed`` is checked
    against, and what a thread selecting it runs under)."""
    base = profile.get("extends")
    if isinstance(base, str) and base in BUILTIN_PROFILES:
        return BUILTIN_PROFILES[base]
    filesystem = profile.get("filesystem")
    writes = isinstance(filesystem, dict) and "write" in filesystem.values()
    return "workspace-write" if writes else "read-only"


def _mode_allowed(config: Config, mode: str) -> bool:
    requirements = config.requirements
    if requirements is None or "sandbox_mode" not in requirements.allowed:
        return True
    return mode == "read-only" or mode in requirements.allowed["sandbox_mode"][0]


def _unresolved(detail: str) -> RpcError:
    return RpcError(INTERNAL_ERROR, f"failed to resolve permission profiles: {detail}")


async def permission_profile_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    cwd = os.path.abspath(params.cwd) if params.cwd is not None else None
    config = await anyio.to_thread.run_sync(ctx.kernel.config.reload, cwd)
    if config.read_error is not None:
        raise RpcError(INTERNAL_ERROR, f"failed to reload config: {config.read_error}")
    profiles = catalog(config)
    total = len(profiles)
    start = 0
    if params.cursor is not None:
        if _OFFSET.fullmatch(params.cursor) is None:
            raise RpcError(INVALID_REQUEST, f"invalid cursor: {params.cursor}")
        start = int(params.cursor)
        if start > total:
            raise RpcError(
                INVALID_REQUEST, f"cursor {start} exceeds total permission profiles {total}"
            )
    # at least one a page, so that limit 0 still advances
    limit = max(params.limit if params.limit is not None else total, 1)
    end = min(start + limit, total)
    return {"data": profiles[start:end], "nextCursor": str(end) if end < total else None}
