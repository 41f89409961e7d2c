"""Adding, removing and upgrading catalogs: ``marketplace/add|remove|upgrade`` and the CLI.

What is recorded is the official server's ``[marketplaces.NAME]`` table in the user's
``config.toml``, so both servers read the same catalogs from a shared ``CODEX_HOME``:

- a local folder: ``source_type = "local"``, ``source = <the folder, resolved>``; nothing is
  copied, the folder is read on every request;
- a catalog URL (ours; the official server takes http(s) sources for git repositories): the
  catalog is downloaded into ``$CODEX_HOME/.tmp/marketplaces/NAME/.agents/plugins/`` (the
  folder the official server keeps its clones in, so it lists the copy too) and recorded as
  ``source = <the URL>`` and ``last_updated``, without ``source_type``, which the official
  server reads as "the copy in its folder". ``marketplace/upgrade`` downloads it again.

A catalog that does not parse is refused when it is added, and an upgrade keeps the old copy
when the new one does not parse: a bad download never replaces a good catalog.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.marketplace import catalog as catalogs

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
#: The official server's own curated catalog: nobody else may take its name.
RESERVED = "openai-curated"
#: Where a downloaded catalog is kept inside its folder: Codex's layout.
COPY_FILE = ".agents/plugins/marketplace.json"


class SourceError(Exception):
    """A refused ``marketplace/*`` request; the message is the official server's when it has one.

    ``advice`` is what the CLI adds to it: the official server's words stay as they are over
    the protocol, but a person at a terminal also needs the path it meant and what to do.
    """

    def __init__(self, message: str, advice: str | None = None) -> None:
        super().__init__(message)
        self.advice = advice

    def for_terminal(self) -> str:
        return f"{self}; {self.advice}" if self.advice else str(self)


@dataclass(frozen=True, slots=True)
class Added:
    name: str
    root: Path
    already: bool
    #: Entries of the catalog that did not parse (``Catalog.skipped``): the CLI shows them.
    skipped: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Upgraded:
    selected: list[str] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)


def check_name(name: str) -> None:
    if not name:
        raise SourceError("invalid marketplace name: must not be empty")
    if not _NAME.match(name):
        raise SourceError(
            "invalid marketplace name: only ASCII letters, digits, `_`, and `-` are allowed"
        )


def parse_source(source: str) -> Path | str:
    """A local folder (resolved) or a catalog URL, or ``SourceError`` saying why neither."""
    source = source.strip()
    if not source:
        raise SourceError("marketplace source must not be empty")
    if source.startswith(("http://", "https://")):
        return source
    local = os.path.isabs(source) or source in (".", "..")
    if not (local or source.startswith(("./", "../", "~/"))):
        raise SourceError(
            "invalid marketplace source format; expected a catalog URL or a local marketplace path",
            f"`{source}` is neither: write a folder as a path (`./{source}`) "
            "or a catalog as an http(s) URL",
        )
    try:
        path = Path(source).expanduser().resolve(strict=True)
    except OSError as exc:
        reason = f"{exc.strerror} (os error {exc.errno})"
        raise SourceError(
            f"failed to resolve local marketplace source path: {reason}",
            f"`{Path(source).expanduser().absolute()}` does not exist: "
            "give the folder that holds your marketplace.json",
        ) from None
    if path.is_file():
        raise SourceError(
            "local marketplace source must be a directory, not a file",
            f"give the folder that holds it: {path.parent}",
        )
    return path


def terminal_source(source: str) -> str:
    """What the CLI passes on: a plain relative name of an existing folder (``catalog``)
    means that folder, as a shell user expects; over the protocol the official server
    refuses it, and so does ``parse_source``."""
    plain = source.strip()
    if plain and not plain.startswith(("http://", "https://", "~")) and Path(plain).is_dir():
        return str(Path(plain).resolve())
    return source


def user_marketplaces(kernel: Kernel) -> dict[str, Any]:
    """``[marketplaces]`` of the user's own config.toml: what add and remove change."""
    layer = kernel.config.user_layer()
    table = layer.data.get("marketplaces") if layer else None
    return table if isinstance(table, dict) else {}


async def add(kernel: Kernel, source: str) -> Added:
    parsed = parse_source(source)
    if isinstance(parsed, Path):
        text = None
        catalog = await anyio.to_thread.run_sync(_load, str(parsed))
    else:
        text = await anyio.to_thread.run_sync(_download, parsed)
        catalog = _parse(text, parsed)
    name = catalog.name
    check_name(name)
    if name == RESERVED:
        raise SourceError(f"marketplace '{RESERVED}' is reserved and cannot be added from {parsed}")
    if isinstance(parsed, Path):
        root, same = parsed, {"source_type": "local", "source": str(parsed)}
        record = dict(same)
    else:
        root, same = catalogs.installed_root(kernel.codex_home, name), {"source": parsed}
        record = {"source": parsed, "last_updated": _now()}
    existing = user_marketplaces(kernel).get(name)
    matches = isinstance(existing, dict) and all(existing.get(k) == v for k, v in same.items())
    if matches and (text is None or (root / COPY_FILE).is_file()):
        return Added(name, root, already=True, skipped=catalog.skipped)
    if not matches and (existing is not None or (text is not None and root.exists())):
        raise SourceError(
            f"marketplace '{name}' is already added from a different source; "
            f"remove it before adding {parsed}"
        )
    if text is not None:
        await anyio.to_thread.run_sync(_store, root, text)
    try:
        await _write_config(kernel, name, record)
    except Exception:
        if text is not None:
            shutil.rmtree(root, ignore_errors=True)
        raise
    return Added(name, root, already=False, skipped=catalog.skipped)


async def remove(kernel: Kernel, name: str) -> Path | None:
    """Forget a catalog; returns the downloaded copy that was deleted, if there was one."""
    check_name(name)
    root = catalogs.installed_root(kernel.codex_home, name)
    removed = root if root.exists() else None
    configured = name in user_marketplaces(kernel)
    if removed is None and not configured:
        raise SourceError(f"marketplace `{name}` is not configured or installed")
    if removed is not None:
        await anyio.to_thread.run_sync(shutil.rmtree, root)
    if configured:
        await _write_config(kernel, name, None)
    return removed


async def upgrade(kernel: Kernel, name: str | None) -> Upgraded:
    """Download the URL catalogs again (or just ``name``); a failure keeps the old copy."""
    urls = {
        key: value["source"]
        for key, value in sorted(user_marketplaces(kernel).items())
        if isinstance(value, dict)
        and value.get("source_type") is None
        and isinstance(value.get("source"), str)
        and catalogs.is_url(value["source"])
    }
    if name is not None:
        check_name(name)
        if name not in urls:
            raise SourceError(f"marketplace `{name}` is not configured as a URL marketplace")
        urls = {name: urls[name]}
    outcome = Upgraded(selected=list(urls))
    for key, url in urls.items():
        root = catalogs.installed_root(kernel.codex_home, key)
        try:
            text = await anyio.to_thread.run_sync(_download, url)
            found = _parse(text, url)
            if found.name != key:
                raise SourceError(
                    f"upgraded marketplace name `{found.name}` does not match "
                    f"configured marketplace `{key}`"
                )
            copy = root / COPY_FILE
            if copy.is_file() and copy.read_text(encoding="utf-8") == text:
                continue
            await anyio.to_thread.run_sync(_store, root, text)
            await _write_config(kernel, key, {"source": url, "last_updated": _now()})
        except SourceError as exc:
            outcome.errors.append((key, str(exc)))
            continue
        outcome.roots.append(root)
    return outcome


# --------------------------------------------------------------------------- helpers


def _load(location: str) -> catalogs.Catalog:
    try:
        return catalogs.load(location)
    except catalogs.CatalogError as exc:
        raise SourceError(exc.message, exc.advice) from None


def _download(url: str) -> str:
    try:
        return catalogs.read_text(url)
    except catalogs.CatalogError as exc:
        raise SourceError(exc.message, exc.advice) from None


def _parse(text: str, url: str) -> catalogs.Catalog:
    try:
        return catalogs.parse(text, url)
    except catalogs.CatalogError as exc:
        raise SourceError(exc.message, exc.advice) from None


def _store(root: Path, text: str) -> None:
    """Write the copy atomically: a reader sees the old catalog or the new one."""
    from codex_core.fs import atomic

    atomic.write(root / COPY_FILE, text)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _write_config(kernel: Kernel, name: str, record: dict[str, Any] | None) -> None:
    from codex_core.config.methods import service
    from codex_core.config.writer import Edit

    await service(kernel).write([Edit(f"marketplaces.{name}", record, "replace")], None, None)
