"""Migration from another agent (Claude Code): ``externalAgentConfig/detect`` and ``/import``.

What moves, as the official server does it:

- ``CONFIG``: ``settings.json`` (``~/.claude/`` or ``<repo>/.claude/``) into ``config.toml``
  (``$CODEX_HOME/`` or ``<repo>/.codex/``), adding keys only where the file lacks them:
  ``env`` -> ``[shell_environment_policy] inherit = "core"`` + ``set`` (string, number and
  boolean values, as text), ``sandbox.enabled = true`` -> ``sandbox_mode = "workspace-write"``;
- ``SKILLS``: every folder of ``.claude/skills`` copied into ``.agents/skills`` (home: next to
  ``CODEX_HOME``), never over an existing folder, with Claude's terms in ``SKILL.md`` rewritten;
- ``AGENTS_MD``: ``CLAUDE.md`` -> ``AGENTS.md`` (home: into ``CODEX_HOME``) when ``AGENTS.md``
  is missing or blank, terms rewritten.

Detection lists only items that would change something. The import answers ``{importId}``,
then sends one ``externalAgentConfig/import/progress`` per item and ``.../completed``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.config import import_history

if TYPE_CHECKING:
    import tomlkit

    from codex_core.rpc import RequestContext

_EMPTY_DETAILS: dict[str, list[Any]] = {
    "plugins": [],
    "skills": [],
    "sessions": [],
    "mcpServers": [],
    "hooks": [],
    "subagents": [],
    "commands": [],
}


def claude_home() -> Path:
    home = os.environ.get("HOME") or os.environ.get("USERPROFILE")
    return Path(home) / ".claude" if home else Path(".claude")


def repo_root(cwd: str) -> Path | None:
    """The nearest folder holding ``.git`` above ``cwd``, else ``cwd`` itself."""
    folder = Path(os.path.abspath(cwd))
    if not folder.exists():
        return None
    if folder.is_file():
        folder = folder.parent
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder


# --------------------------------------------------------------------------- rewriting

_TERMS = [
    ("claude.md", "AGENTS.md"),
    ("claude code", "Codex"),
    ("claude-code", "Codex"),
    ("claude_code", "Codex"),
    ("claudecode", "Codex"),
    ("claude", "Codex"),
]


def rewrite_terms(text: str) -> str:
    """Claude's names for itself and its files, as Codex's (whole words, any case)."""
    for term, replacement in _TERMS:
        pattern = r"(?<![A-Za-z0-9_])" + re.escape(term) + r"(?![A-Za-z0-9_])"
        text = re.sub(pattern, replacement, text, flags=re.IGNORECASE)
    return text


# --------------------------------------------------------------------------- config


def settings_to_config(settings: Any) -> dict[str, Any]:
    """The ``config.toml`` keys a ``settings.json`` maps to (empty: nothing to migrate)."""
    if not isinstance(settings, dict):
        raise ValueError("external agent settings root must be an object")
    migrated: dict[str, Any] = {}
    env = settings.get("env")
    if isinstance(env, dict):
        values = {
            key: _env_text(value)
            for key, value in env.items()
            if isinstance(value, str | int | float | bool)
        }
        if values:
            migrated["shell_environment_policy"] = {"inherit": "core", "set": values}
    sandbox = settings.get("sandbox")
    if isinstance(sandbox, dict) and sandbox.get("enabled") is True:
        migrated["sandbox_mode"] = "workspace-write"
    return migrated


def _env_text(value: str | int | float | bool) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _merge_missing(target: Any, incoming: dict[str, Any]) -> bool:
    """Add the keys of ``incoming`` that ``target`` lacks (tables recursively)."""
    changed = False
    for key, value in incoming.items():
        if key not in target:
            target[key] = value
            changed = True
        elif isinstance(value, dict) and isinstance(target[key], dict):
            changed = _merge_missing(target[key], value) or changed
    return changed


def _config_paths(root: Path | None, codex_home: Path) -> tuple[Path, Path]:
    if root is None:
        return claude_home() / "settings.json", codex_home / "config.toml"
    return root / ".claude" / "settings.json", root / ".codex" / "config.toml"


def _config_plan(source: Path, target: Path) -> tuple[tomlkit.TOMLDocument, bool] | None:
    """The updated target document and whether it changes, or None without a source."""
    if not source.is_file():
        return None
    migrated = settings_to_config(json.loads(source.read_text()))
    if not migrated:
        return None
    import tomlkit

    text = target.read_text() if target.exists() else ""
    document = tomlkit.parse(text) if text.strip() else tomlkit.document()
    return document, _merge_missing(document, migrated)


# --------------------------------------------------------------------------- skills / AGENTS.md


def _skills_paths(root: Path | None, codex_home: Path) -> tuple[Path, Path]:
    if root is None:
        return claude_home() / "skills", codex_home.parent / ".agents" / "skills"
    return root / ".claude" / "skills", root / ".agents" / "skills"


def _missing_skills(source: Path, target: Path) -> list[str]:
    if not source.is_dir():
        return []
    return sorted(
        entry.name
        for entry in source.iterdir()
        if entry.is_dir() and not (target / entry.name).exists()
    )


def _copy_skill(source: Path, target: Path) -> None:
    """Copy a skill folder; ``SKILL.md`` files get Claude's terms rewritten."""
    target.mkdir(parents=True)
    for entry in source.iterdir():
        destination = target / entry.name
        if entry.is_dir() and not entry.is_symlink():
            _copy_skill(entry, destination)
        elif entry.is_file():
            if entry.name.lower() == "skill.md":
                destination.write_text(rewrite_terms(entry.read_text()))
            else:
                shutil.copy2(entry, destination)


def _agents_paths(root: Path | None, codex_home: Path) -> tuple[Path, Path]:
    if root is None:
        return claude_home() / "CLAUDE.md", codex_home / "AGENTS.md"
    return root / "CLAUDE.md", root / "AGENTS.md"


def _missing_or_blank(path: Path) -> bool:
    if not path.exists():
        return True
    return path.is_file() and not path.read_text().strip()


# --------------------------------------------------------------------------- detect


def detect(codex_home: Path, include_home: bool, cwds: list[str]) -> list[dict[str, Any]]:
    """The migration items that would change something, home first, then each repo."""
    items: list[dict[str, Any]] = []
    roots: list[Path | None] = [None] if include_home else []
    roots += [root for root in map(repo_root, cwds) if root is not None]
    for root in roots:
        cwd = None if root is None else str(root)
        source, target = _config_paths(root, codex_home)
        plan = _config_plan(source, target)
        if plan is not None and plan[1]:
            items.append(_item("CONFIG", f"Migrate {source} into {target}", cwd))
        source, target = _skills_paths(root, codex_home)
        missing = _missing_skills(source, target)
        if missing:
            details = dict(_EMPTY_DETAILS, skills=[{"name": name} for name in missing])
            items.append(_item("SKILLS", f"Migrate skills from {source} to {target}", cwd, details))
        source, target = _agents_paths(root, codex_home)
        if source.is_file() and _missing_or_blank(target):
            items.append(_item("AGENTS_MD", f"Migrate {source} to {target}", cwd))
    return items


def _item(
    kind: str, description: str, cwd: str | None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"itemType": kind, "description": description, "cwd": cwd, "details": details}


# --------------------------------------------------------------------------- import


@dataclass(slots=True)
class Outcome:
    """What importing one item did: the successes and failures of its type."""

    item_type: str
    successes: list[dict[str, Any]]
    failures: list[dict[str, Any]]

    def to_wire(self) -> dict[str, Any]:
        return {
            "itemType": self.item_type,
            "successes": self.successes,
            "failures": self.failures,
        }


def import_item(codex_home: Path, item_type: str, cwd: str | None) -> Outcome:
    """Carry out one migration item; never overwrites what is already there."""
    from codex_core.fs.atomic import write as atomic_write

    outcome = Outcome(item_type, [], [])
    root = repo_root(cwd) if cwd else None
    if cwd and root is None:
        return outcome
    try:
        if item_type == "CONFIG":
            source, target = _config_paths(root, codex_home)
            plan = _config_plan(source, target)
            if plan is not None and plan[1]:
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(target, plan[0].as_string())
                outcome.successes.append(_success(item_type, cwd, str(source), str(target)))
        elif item_type == "SKILLS":
            source, target = _skills_paths(root, codex_home)
            for name in _missing_skills(source, target):
                _copy_skill(source / name, target / name)
                outcome.successes.append(_success(item_type, cwd, name, name))
        elif item_type == "AGENTS_MD":
            source, target = _agents_paths(root, codex_home)
            if source.is_file() and _missing_or_blank(target):
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(target, rewrite_terms(source.read_text()))
                outcome.successes.append(_success(item_type, cwd, str(source), str(target)))
    except (OSError, ValueError) as exc:
        outcome.failures.append(
            {
                "itemType": item_type,
                "errorType": None,
                "subErrorType": None,
                "failureStage": "import",
                "message": str(exc),
                "cwd": cwd,
                "source": None,
            }
        )
    return outcome


def _success(item_type: str, cwd: str | None, source: str, target: str) -> dict[str, Any]:
    return {
        "itemType": item_type,
        "cwd": cwd,
        "source": source,
        "target": target,
        "title": None,
    }


# --------------------------------------------------------------------------- methods


async def external_agent_config_detect(ctx: RequestContext, params: Any) -> dict[str, Any]:
    codex_home = ctx.kernel.config.codex_home
    include_home = bool(getattr(params, "include_home", False))
    cwds = list(getattr(params, "cwds", None) or [])
    items = await anyio.to_thread.run_sync(detect, codex_home, include_home, cwds)
    return {"items": items, "connectors": []}


async def external_agent_config_import(ctx: RequestContext, params: Any) -> dict[str, Any]:
    kernel = ctx.kernel
    import_id = str(uuid.uuid4())
    grouped: dict[str, Outcome] = {}
    for item in params.migration_items:
        kind = str(getattr(item.item_type, "value", item.item_type))
        outcome = await anyio.to_thread.run_sync(
            import_item, kernel.config.codex_home, kind, item.cwd or None
        )
        if not outcome.successes and not outcome.failures:
            continue
        ctx.notify_after_reply(
            "externalAgentConfig/import/progress",
            {"importId": import_id, "itemTypeResults": [outcome.to_wire()]},
        )
        total = grouped.setdefault(kind, Outcome(kind, [], []))
        total.successes += outcome.successes
        total.failures += outcome.failures
    if grouped:  # nothing done, nothing to report (as the reference)
        results = [o.to_wire() for o in grouped.values()]
        await anyio.to_thread.run_sync(
            import_history.record, kernel.config.codex_home, None, results, import_id
        )
        ctx.notify_after_reply(
            "externalAgentConfig/import/completed",
            {"importId": import_id, "itemTypeResults": results},
        )
    if "CONFIG" in grouped:
        kernel.config = await anyio.to_thread.run_sync(kernel.config.reload)
    return {"importId": import_id}
