"""``skills/list``: the skills a client can offer for each working directory.

A skill is a folder with a ``SKILL.md`` whose YAML front matter names and describes it. They
are found where the official server looks: ``.agents/skills/`` in the working directory and its
parents up to the repository root (scope ``repo``), and ``$CODEX_HOME/skills/`` and
``~/.agents/skills/`` (scope ``user``). A file that cannot be read as a skill is reported in
``errors`` with its path, never fatal. (The official server also bundles ``system`` skills;
codex-core ships none.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from codex_core.hookspecs import hookimpl
from codex_core.rpc import RequestContext, RpcMethod

FRONT_MATTER_MISSING = "missing YAML frontmatter delimited by ---"


def parse_skill(path: Path) -> dict[str, str]:
    """``name`` and ``description`` from the front matter; ``ValueError`` says what is wrong."""
    text = path.read_text(errors="replace")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---" or "---" not in (line.strip() for line in lines[1:]):
        raise ValueError(FRONT_MATTER_MISSING)
    end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == "---")
    fields: dict[str, str] = {}
    for line in lines[1:end]:
        key, sep, value = line.partition(":")
        if sep and not line.startswith((" ", "\t")):
            fields[key.strip()] = value.strip().strip("\"'")
    for required in ("name", "description"):
        if not fields.get(required):
            raise ValueError(f"missing field `{required}` in frontmatter")
    return fields


def _repo_dirs(cwd: Path) -> list[Path]:
    """``cwd`` and its parents up to the repository root (the folder holding ``.git``)."""
    folders = []
    for folder in [cwd, *cwd.parents]:
        folders.append(folder)
        if (folder / ".git").exists():
            return folders
    return [cwd]


def scan(cwd: Path, codex_home: Path, home: Path) -> dict[str, Any]:
    roots = [(folder / ".agents" / "skills", "repo") for folder in _repo_dirs(cwd)]
    roots += [(codex_home / "skills", "user"), (home / ".agents" / "skills", "user")]
    skills: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for root, scope in roots:
        for path in sorted(root.glob("*/SKILL.md")):
            try:
                fields = parse_skill(path)
            except (OSError, ValueError) as exc:
                errors.append({"path": str(path), "message": str(exc)})
                continue
            skills.append({"name": fields["name"], "description": fields["description"],
                           "path": str(path), "scope": scope, "enabled": True,
                           "pluginId": None})  # fmt: skip
    return {"cwd": str(cwd), "skills": skills, "errors": errors}


async def skills_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    cwds = [Path(cwd) for cwd in (params.cwds or [])] or [Path.cwd()]
    home, codex_home = Path.home(), ctx.kernel.codex_home
    data = [await anyio.to_thread.run_sync(scan, cwd, codex_home, home) for cwd in cwds]
    return {"data": data}


@hookimpl
def codex_rpc_methods() -> list[RpcMethod]:
    return [RpcMethod("skills/list", skills_list)]
