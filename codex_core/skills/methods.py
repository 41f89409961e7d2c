"""``skills/list``: the skills a client can offer for each working directory.

A skill is a folder with a ``SKILL.md`` whose YAML front matter names and describes it
(``metadata.short-description`` too), and optionally an ``agents/openai.yaml`` saying how
clients show it (``interface``). They are found where the official server looks:
``.agents/skills/`` in the working directory and its parents up to the repository root (scope
``repo``), ``$CODEX_HOME/skills/``, ``~/.agents/skills/`` and the roots a client added with
``skills/extraRoots/set`` (scope ``user``), and the bundled skills in
``$CODEX_HOME/skills/.system/`` (scope ``system``); each root is searched six folders deep. A
file that cannot be read as a skill is reported in ``errors`` with its path, never fatal.

Like the official server, codex-core bundles system skills with the same names and metadata
as the official ones (``imagegen``, ``openai-docs``, ``review-agent``, ``skill-creator``,
``skill-installer``), so clients offer the same set; their instructions and icons are
codex-core's own. They are written to ``$CODEX_HOME/skills/.system/`` when first listed, and
again whenever the bundled copy changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import anyio

from codex_core.hookspecs import hookimpl
from codex_core.rpc import RequestContext, RpcMethod
from codex_core.skills.config import disabled, skills_config_write
from codex_core.skills.extra_roots import extra_roots, skills_extra_roots_set

FRONT_MATTER_MISSING = "missing YAML frontmatter delimited by ---"
#: The bundled system skills, and the file that says which copy is in ``CODEX_HOME``.
SYSTEM_SKILLS = Path(__file__).with_name("system")
SYSTEM_DIR = ".system"
SYSTEM_MARKER = ".codex-system-skills.marker"
_INSTALLING = threading.Lock()


def simple_yaml(lines: list[str]) -> dict[str, Any]:
    """The YAML that skills use: ``key: scalar`` lines and one level of nested maps.

    Enough for front matter and ``agents/openai.yaml`` without a YAML dependency; anything
    more elaborate (lists, multi-line strings) is left out rather than misread.
    """
    top: dict[str, Any] = {}
    current: dict[str, Any] | None = None
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.strip().partition(":")
        if not sep:
            continue
        nested = line.startswith((" ", "\t"))
        value = value.strip()
        if not nested:
            current = None
            if value:
                top[key.strip()] = _scalar(value)
            else:
                current = top[key.strip()] = {}
        elif current is not None and value:
            current[key.strip()] = _scalar(value)
    return top


def _scalar(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return {"true": True, "false": False}.get(text, text)


def parse_skill(path: Path) -> dict[str, Any]:
    """The front matter; ``ValueError`` says what is wrong."""
    text = path.read_text(errors="replace")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---" or "---" not in (line.strip() for line in lines[1:]):
        raise ValueError(FRONT_MATTER_MISSING)
    end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == "---")
    fields = simple_yaml(lines[1:end])
    for required in ("name", "description"):
        if not isinstance(fields.get(required), str) or not fields[required]:
            raise ValueError(f"missing field `{required}` in frontmatter")
    return fields


def interface(folder: Path) -> dict[str, Any] | None:
    """``agents/openai.yaml``'s ``interface`` as the protocol's ``SkillInterface`` (icon
    paths made absolute), or ``None`` without one."""
    try:
        text = (folder / "agents" / "openai.yaml").read_text(errors="replace")
    except OSError:
        return None
    raw = simple_yaml(text.splitlines()).get("interface")
    if not isinstance(raw, dict):
        return None

    def icon(key: str) -> str | None:
        value = raw.get(key)
        return str((folder / value).resolve()) if isinstance(value, str) and value else None

    return {"displayName": raw.get("display_name"),
            "shortDescription": raw.get("short_description"),
            "iconSmall": icon("icon_small"), "iconLarge": icon("icon_large"),
            "iconSmallUrl": raw.get("icon_small_url"), "iconLargeUrl": raw.get("icon_large_url"),
            "brandColor": raw.get("brand_color"),
            "defaultPrompt": raw.get("default_prompt")}  # fmt: skip


def install_system_skills(codex_home: Path) -> Path:
    """Write the bundled system skills to ``$CODEX_HOME/skills/.system`` unless that copy is
    already there (the marker holds a digest of the bundle); returns the folder."""
    target = codex_home / "skills" / SYSTEM_DIR
    files = sorted(path for path in SYSTEM_SKILLS.rglob("*") if path.is_file())
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(SYSTEM_SKILLS)).encode() + b"\0" + path.read_bytes())
    marker = target / SYSTEM_MARKER
    stamp = digest.hexdigest()[:16]
    try:
        if marker.read_text().strip() == stamp:
            return target
    except OSError:
        pass
    with _INSTALLING:  # two listings at once must not both replace the folder
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".system-", dir=target.parent))
        shutil.copytree(SYSTEM_SKILLS, staging, dirs_exist_ok=True)
        (staging / SYSTEM_MARKER).write_text(stamp + "\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    return target


def _repo_dirs(cwd: Path) -> list[Path]:
    """``cwd`` and its parents up to the repository root (the folder holding ``.git``)."""
    folders = []
    for folder in [cwd, *cwd.parents]:
        folders.append(folder)
        if (folder / ".git").exists():
            return folders
    return [cwd]


#: How many folders below a root a ``SKILL.md`` may sit, as the reference looks.
MAX_DEPTH = 6
#: The order of the scopes in a listing (within one, skills are sorted by name, then path).
SCOPE_ORDER = {"repo": 0, "user": 1, "system": 2}


def skill_files(root: Path) -> list[Path]:
    """Every ``SKILL.md`` under ``root``, at most ``MAX_DEPTH`` folders down, hidden folders
    skipped and symlinked ones followed (each real folder once), as real paths."""
    found: list[Path] = []
    seen: set[str] = set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        depth = len(Path(folder).relative_to(root).parts)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        subfolders[:] = [] if depth >= MAX_DEPTH else [
            name for name in subfolders if not name.startswith(".")
        ]  # fmt: skip
        if "SKILL.md" in files:
            found.append(Path(real) / "SKILL.md")
    return found


def scan(
    cwd: Path,
    codex_home: Path,
    home: Path,
    off: tuple[set[str], set[str]] = (set(), set()),
    extra_roots: tuple[Path, ...] = (),
) -> dict[str, Any]:
    """The skills ``cwd`` sees; those named in ``off`` (names, ``SKILL.md`` paths) are
    reported as disabled. ``extra_roots`` (``skills/extraRoots/set``) are user roots too."""
    roots = [(folder / ".agents" / "skills", "repo") for folder in _repo_dirs(cwd)]
    roots += [(codex_home / "skills", "user"), (home / ".agents" / "skills", "user")]
    roots += [(root, "user") for root in extra_roots]
    roots.append((install_system_skills(codex_home), "system"))
    skills: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    listed: set[Path] = set()  # a file under two roots is listed once, by the first
    for root, scope in roots:
        for path in skill_files(root):
            if path in listed:
                continue
            listed.add(path)
            try:
                fields = parse_skill(path)
            except (OSError, ValueError) as exc:
                errors.append({"path": str(path), "message": str(exc)})
                continue
            entry: dict[str, Any] = {"name": fields["name"], "description": fields["description"]}
            metadata = fields.get("metadata")
            short = metadata.get("short-description") if isinstance(metadata, dict) else None
            if isinstance(short, str):
                entry["shortDescription"] = short
            shown = interface(path.parent)
            if shown is not None:
                entry["interface"] = shown
            enabled = fields["name"] not in off[0] and str(path) not in off[1]
            entry |= {"path": str(path), "scope": scope, "enabled": enabled, "pluginId": None}
            skills.append(entry)
    skills.sort(key=lambda entry: (SCOPE_ORDER[entry["scope"]], entry["name"], entry["path"]))
    return {"cwd": str(cwd), "skills": skills, "errors": errors}


async def skills_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    cwds = [Path(cwd) for cwd in (params.cwds or [])] or [Path.cwd()]
    home, codex_home = Path.home(), ctx.kernel.codex_home
    off, extra = disabled(ctx.kernel.config), extra_roots(ctx.kernel)
    data = [await anyio.to_thread.run_sync(scan, cwd, codex_home, home, off, extra) for cwd in cwds]
    return {"data": data}


@hookimpl
def codex_rpc_methods() -> list[RpcMethod]:
    return [
        RpcMethod("skills/list", skills_list),
        RpcMethod("skills/config/write", skills_config_write),
        RpcMethod("skills/extraRoots/set", skills_extra_roots_set),
    ]
