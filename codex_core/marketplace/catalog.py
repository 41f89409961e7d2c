"""The catalog format: Codex's ``marketplace.json``, with Python package sources.

A catalog is ``{name, interface: {displayName}, plugins: [...]}``; each plugin entry has a
``name``, a ``source``, a ``policy`` ({installation, authentication, products}), and optionally
``category``, ``description``, ``version``, ``keywords`` and ``defaultPrompt``. A Python
plugin's ``source`` is one of:

- ``"./path"`` or ``{"source": "local", "path": "./path"}``: a project folder, relative to the
  catalog (built into a wheel at install time; no hash, so trust the folder);
- ``{"source": "wheel", "url": "https://.../x-1.0-py3-none-any.whl", "sha256": "..."}``: a
  wheel and its hash (a relative URL is relative to the catalog);
- ``{"source": "pypi", "requirement": "codex-plugin-x==1.0", "hashes": ["sha256:..."],
  "indexUrl": "..."}``: a requirement pinned with ``==`` and its hashes.

A catalog that does not parse is skipped and reported (``marketplaceLoadErrors``); an entry
that does not parse (a Codex-only git source, a requirement without hashes) is skipped with a
warning, like Codex does, and listed in ``Catalog.skipped`` so it is not invisible.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

log = logging.getLogger(__name__)

MAX_DEFAULT_PROMPTS = 3
MAX_DEFAULT_PROMPT_LEN = 128
#: Where a folder keeps its catalog: ours first, then Codex's layout.
CATALOG_FILES = ("marketplace.json", ".agents/plugins/marketplace.json")
#: Under ``$CODEX_HOME``: catalogs downloaded by ``marketplace/add`` (the official server's
#: folder for the marketplaces it clones).
INSTALLED_MARKETPLACES = ".tmp/marketplaces"
#: The repository's own catalog (the plugins under ``plugins/``), present in a source checkout.
DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "marketplace" / "marketplace.json"
_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")


class _Model(BaseModel):
    # Validators are built when a catalog is first read, not at startup.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class Policy(_Model):
    installation: Literal["NOT_AVAILABLE", "AVAILABLE", "INSTALLED_BY_DEFAULT"] = "AVAILABLE"
    authentication: Literal["ON_INSTALL", "ON_USE"] = "ON_INSTALL"
    products: list[str] | None = None


class LocalSource(_Model):
    source: Literal["local"] = "local"
    path: str


class WheelSource(_Model):
    source: Literal["wheel"]
    url: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]


class PypiSource(_Model):
    source: Literal["pypi"]
    requirement: str
    hashes: Annotated[list[str], Field(min_length=1)]
    index_url: Annotated[str | None, Field(alias="indexUrl")] = None

    @field_validator("requirement")
    @classmethod
    def _pinned(cls, value: str) -> str:
        from packaging.requirements import Requirement

        specifiers = list(Requirement(value).specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==":
            raise ValueError(f"{value!r} must be pinned to one version with ==")
        return value

    @field_validator("hashes")
    @classmethod
    def _sha256(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.fullmatch(r"sha256:[0-9a-fA-F]{64}", item):
                raise ValueError(f"{item!r} is not sha256:<64 hex digits>")
        return value


Source = Annotated[LocalSource | WheelSource | PypiSource, Field(discriminator="source")]


class Entry(_Model):
    name: Annotated[str, Field(pattern=_SEGMENT.pattern)]
    source: Source
    policy: Policy = Policy()
    category: str | None = None
    description: str | None = None
    version: str | None = None
    keywords: list[str] = []
    #: The distribution the source installs, when it cannot be read off the source.
    package: str | None = None
    default_prompt: Annotated[list[str] | None, Field(alias="defaultPrompt")] = None

    @field_validator("source", mode="before")
    @classmethod
    def _path_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"source": "local", "path": value}
        return value

    @field_validator("default_prompt", mode="before")
    @classmethod
    def _prompts(cls, value: Any) -> list[str] | None:
        return normalize_default_prompt(value)


class Interface(_Model):
    display_name: Annotated[str | None, Field(alias="displayName")] = None


class RawCatalog(_Model):
    name: Annotated[str, Field(pattern=_SEGMENT.pattern)]
    interface: Interface | None = None
    plugins: list[dict[str, Any]]


def normalize_default_prompt(value: Any) -> list[str] | None:
    """A string or an array; keep at most 3 prompts of at most 128 characters, never fail.

    A string that is too long becomes null; in an array, entries that are not strings or are
    too long are dropped (nulled), then anything past the third is dropped.
    """
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    kept = [
        item.strip()
        for item in items
        if isinstance(item, str) and item.strip() and len(item) <= MAX_DEFAULT_PROMPT_LEN
    ]
    return kept[:MAX_DEFAULT_PROMPTS] or None


@dataclass(frozen=True, slots=True)
class CatalogSource:
    """Where a catalog is read from (a file, a folder or a URL) and what its relative
    references resolve against: a catalog downloaded by ``marketplace/add`` is read from its
    local copy, but its ``x.whl`` still means the file next to the URL it came from."""

    location: str
    base: str | None = None


@dataclass(slots=True)
class Catalog:
    """A parsed catalog and where it came from (a file path or a URL)."""

    name: str
    location: str
    display_name: str | None
    entries: list[Entry]
    skipped: list[str] = field(default_factory=list)
    base: str | None = None

    @property
    def path(self) -> str | None:
        return None if is_url(self.location) else self.location

    def entry(self, name: str) -> Entry | None:
        return next((entry for entry in self.entries if entry.name == name), None)

    def resolve(self, reference: str) -> str:
        """A source path or URL, made absolute against the catalog's own location."""
        if is_url(reference) or Path(reference).is_absolute():
            return reference
        base = self.base or self.location
        if is_url(base):
            return urllib.parse.urljoin(base, reference)
        folder = Path(base).parent
        if base.endswith(CATALOG_FILES[1]):  # Codex's layout: relative to the repository
            folder = folder.parent.parent
        return str((folder / reference).resolve())


class CatalogError(Exception):
    """A catalog that could not be read or parsed: skipped, and reported.

    ``message`` is the official server's wording where it has one; ``advice`` is what a
    person at a terminal is told to do besides (the CLI prints both).
    """

    def __init__(self, location: str, message: str, advice: str | None = None) -> None:
        super().__init__(message)
        self.location = location
        self.message = message
        self.advice = advice


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://", "file://"))


def read_text(location: str, *, timeout: float = 30) -> str:
    """A catalog's text from a file or URL; ``CatalogError`` saying what to do otherwise."""
    from codex_core.marketplace import download

    try:
        if is_url(location):
            data = download.read_bytes(location, timeout=timeout)
        else:
            data = Path(location).read_bytes()
    except download.DownloadError as exc:
        raise CatalogError(
            location, f"failed to download marketplace `{location}`: {exc}"
        ) from None
    except OSError as exc:
        message = f"failed to read marketplace file `{location}`: {exc.strerror}"
        raise CatalogError(location, message) from None
    return decode(data, location)


def decode(data: bytes, location: str) -> str:
    """UTF-8 text, or a ``CatalogError`` that says the file is not a catalog at all (in the
    official server's words for a file, which it also reads)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = f"byte 0x{data[exc.start]:02x} at offset {exc.start}"
        advice = (
            f"`{location}` is not UTF-8 text ({byte}): a catalog is a marketplace.json "
            "file; check that this is the catalog you meant"
        )
        if is_url(location):
            message = f"invalid marketplace file `{location}`: not UTF-8 text ({byte})"
            raise CatalogError(location, f"{message}; {advice.partition(': ')[2]}") from None
        message = "failed to read marketplace file: stream did not contain valid UTF-8"
        raise CatalogError(location, message, advice) from None


def locate(source: str) -> str:
    """The catalog file of a source: a file, a folder holding one, or a URL."""
    if is_url(source):
        return source
    path = Path(source).expanduser()
    if path.is_dir():
        for name in CATALOG_FILES:
            if (path / name).is_file():
                return str((path / name).resolve())
        raise CatalogError(str(path.resolve()), f"no {CATALOG_FILES[0]} in {path}")
    return str(path.resolve())


def load(source: str | CatalogSource) -> Catalog:
    """Read and parse one catalog; raises ``CatalogError`` saying what is wrong and where."""
    source = source if isinstance(source, CatalogSource) else CatalogSource(source)
    location = locate(source.location)
    return parse(read_text(location), location, base=source.base)


def parse(text: str, location: str, *, base: str | None = None) -> Catalog:
    invalid = f"invalid marketplace file `{location}`"
    try:
        raw = RawCatalog.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise CatalogError(
            location,
            f"{invalid}: not JSON ({exc}); a catalog is a JSON object with a name and plugins",
        ) from None
    except ValidationError as exc:
        raise CatalogError(location, f"{invalid}: {_first_error(exc)}") from None
    for index, item in enumerate(raw.plugins):
        missing = next((key for key in ("name", "source") if key not in item), None)
        if missing is not None:  # the official server refuses the catalog, not the entry
            where = _entry_end(text, index)
            raise CatalogError(
                location,
                f"{invalid}: missing field `{missing}`{where}",
                f"plugins[{index}] has no `{missing}`: add it, or remove that entry",
            )
    display_name = raw.interface.display_name if raw.interface else None
    catalog = Catalog(raw.name, location, display_name, [], base=base)
    seen: set[str] = set()
    for index, item in enumerate(raw.plugins):
        label = item.get("name") if isinstance(item, dict) else None
        try:
            entry = Entry.model_validate(item)
        except ValidationError as exc:
            message = f"plugins[{index}] ({label or '?'}): {_first_error(exc)}"
            log.warning("%s: skipping invalid marketplace plugin %s", location, message)
            catalog.skipped.append(message)
            continue
        if entry.name in seen:
            catalog.skipped.append(f"plugins[{index}] ({entry.name}): duplicate name")
            continue
        seen.add(entry.name)
        catalog.entries.append(entry)
    return catalog


def _entry_end(text: str, index: int) -> str:
    """`` at line L column C``: where the official server's JSON reader stops on the entry
    ``plugins[index]``, the closing brace of that object (serde_json's position: 1-based
    line, the column counts the characters read on that line). Empty if it cannot be found."""
    decoder = json.JSONDecoder()

    def skip(at: int) -> int:
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        return at

    at = skip(0)
    if not text.startswith("{", at):
        return ""
    at = skip(at + 1)
    while at < len(text) and text[at] == '"':
        key, at = decoder.raw_decode(text, at)
        at = skip(skip(at) + 1)  # past the colon
        if key != "plugins":
            at = skip(decoder.raw_decode(text, at)[1])
            at = skip(at + 1) if text.startswith(",", at) else at
            continue
        at = skip(at + 1)  # past the bracket
        for _ in range(index):
            at = skip(decoder.raw_decode(text, at)[1])
            at = skip(at + 1)  # past the comma
        end = decoder.raw_decode(text, at)[1]
        line = text.count("\n", 0, end) + 1
        return f" at line {line} column {end - (text.rfind(chr(10), 0, end) + 1)}"
    return ""


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def configured_sources(config: dict[str, Any], codex_home: Path) -> list[CatalogSource]:
    """The catalogs a server lists: the repository's own, then ``[marketplaces.NAME]``.

    The table is the official server's: ``source_type = "local"`` reads the folder in
    ``source``; ``source_type = "git"`` (added by the official server) reads its clone under
    ``$CODEX_HOME/.tmp/marketplaces/NAME``; a ``source`` URL without ``source_type`` (ours,
    from ``marketplace/add``) reads the copy downloaded there, or the URL itself when there is
    no copy; any other ``source`` is a folder or file. ``[marketplace] default = false`` drops
    the repository's catalog.
    """
    sources: list[CatalogSource] = []
    settings = config.get("marketplace")
    use_default = not (isinstance(settings, dict) and settings.get("default") is False)
    if use_default and DEFAULT_CATALOG.is_file():
        sources.append(CatalogSource(str(DEFAULT_CATALOG)))
    table = config.get("marketplaces")
    if isinstance(table, dict):
        for name, value in table.items():
            found = _configured_source(name, value, codex_home)
            if found is None:
                log.warning("marketplaces.%s has no source", name)
            else:
                sources.append(found)
    return sources


def _configured_source(name: str, value: Any, codex_home: Path) -> CatalogSource | None:
    if not isinstance(value, dict):
        return CatalogSource(value) if isinstance(value, str) and value else None
    source, kind = value.get("source"), value.get("source_type")
    copy = installed_root(codex_home, name)
    if kind == "git":
        return CatalogSource(str(copy))
    if not isinstance(source, str) or not source:
        return None
    if kind is None and is_url(source) and _has_catalog(copy):
        return CatalogSource(str(copy), base=source)
    return CatalogSource(source)


def installed_root(codex_home: Path, name: str) -> Path:
    """Where a downloaded catalog is kept: the official server's folder for its git clones."""
    return codex_home / INSTALLED_MARKETPLACES / name


def _has_catalog(folder: Path) -> bool:
    return any((folder / name).is_file() for name in CATALOG_FILES)


def load_all(sources: list[CatalogSource]) -> tuple[list[Catalog], list[CatalogError]]:
    catalogs: list[Catalog] = []
    errors: list[CatalogError] = []
    names: set[str] = set()
    for source in sources:
        try:
            catalog = load(source)
        except CatalogError as exc:
            log.warning("skipping marketplace %s: %s", exc.location, exc.message)
            errors.append(exc)
            continue
        if catalog.name in names:  # the first one wins, as Codex does
            log.warning("marketplace %s at %s ignored: name taken", catalog.name, catalog.location)
            continue
        names.add(catalog.name)
        catalogs.append(catalog)
    return catalogs, errors
