"""``skills/config/write``: turning a skill off (or back on) in the user's config.toml.

As the reference, a skill is turned off by a ``[[skills.config]]`` entry naming it, by
``name`` or by the ``path`` of its ``SKILL.md``, with ``enabled = false``; turning it on
removes the entry with that selector (a skill is on unless an entry turns it off), and turning
it off again keeps the one entry. Entries are kept for skills that do not exist (yet). The
write goes through the kernel's ``ConfigService``, so it is atomic and serialized with
``config/*`` writes, and ``skills/list`` reports ``enabled`` from the reloaded config.
"""

from __future__ import annotations

import tomllib
from typing import TYPE_CHECKING, Any

from codex_core.rpc import INTERNAL_ERROR, INVALID_PARAMS, RequestContext, RpcError

if TYPE_CHECKING:
    from codex_core.config.loader import Config

EXACTLY_ONE = "skills/config/write requires exactly one of path or name"


def disabled(config: Config) -> tuple[set[str], set[str]]:
    """The skill names and ``SKILL.md`` paths the effective config turns off."""
    names: set[str] = set()
    paths: set[str] = set()
    for entry in config.get("skills.config") or ():
        if not isinstance(entry, dict) or entry.get("enabled") is not False:
            continue
        if isinstance(entry.get("name"), str):
            names.add(entry["name"])
        if isinstance(entry.get("path"), str):
            paths.add(entry["path"])
    return names, paths


def _selector(params: Any) -> tuple[str, str]:
    path = str(params.path) if params.path is not None else None
    if bool(params.name) == bool(path):  # (an empty name counts as none, as the reference)
        raise RpcError(INVALID_PARAMS, EXACTLY_ONE)
    return ("name", params.name) if params.name else ("path", str(path))


def _entries(config: Config) -> list[Any]:
    """The ``[[skills.config]]`` entries of the user's file as it is now (anything else under
    that key is replaced, as the reference does); a file that does not parse fails the call
    with the reference's words."""
    try:
        text = config.user_file.read_text()
    except FileNotFoundError:
        return []
    try:
        current = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        from codex_core.config import diagnostics

        rendering = diagnostics.syntax_error(text)[2]
        raise RpcError(INTERNAL_ERROR, f"failed to update skill settings: {rendering}\n") from None
    skills = current.get("skills")
    entries = skills.get("config") if isinstance(skills, dict) else None
    return list(entries) if isinstance(entries, list) else []


async def skills_config_write(ctx: RequestContext, params: Any) -> dict[str, Any]:
    key, value = _selector(params)
    from codex_core.config.methods import service
    from codex_core.config.writer import Edit

    entries = _entries(ctx.kernel.config)
    kept = [entry for entry in entries if not (isinstance(entry, dict) and entry.get(key) == value)]
    if not params.enabled:
        at = next((i for i, e in enumerate(entries) if isinstance(e, dict) and e.get(key) == value),
                  len(kept))  # fmt: skip
        kept.insert(min(at, len(kept)), {key: value, "enabled": False})
    if kept != entries:
        edit = Edit("skills.config", kept or None, "replace")
        await service(ctx.kernel).write([edit], None, None)
    return {"effectiveEnabled": bool(params.enabled)}
