"""``config/value/write`` and ``config/batchWrite``: edits to the user's config.toml.

Edits go through tomlkit, so every comment, blank line and key order of the untouched lines
survives byte for byte. A write is

- **checked** first, as the official server does: only the user's file may be written, the
  ``expectedVersion`` must match the file's current version, key paths must be well formed and
  the resulting file must validate (``configValidationError`` otherwise, nothing written);
- **serialized**: one ``anyio.Lock`` per kernel, held from reading the file to replacing it,
  so two clients writing at once never lose an update. Writes that arrive while one is being
  committed queue up and are committed together: each is checked and applied in arrival order
  on the text the ones before it produced (its own ``expectedVersion`` check, its own error),
  then the file is replaced and the config reloaded once for all of them. A burst of pipelined
  writes thus costs one fsynced replace, not one each;
- **atomic**: the new text goes to a temporary file in the same folder, is fsynced and renamed
  over the old one, so a crash leaves either the old or the new file, never half of one
  (``codex_core.fs.atomic``); writers in other processes wait on ``.config.toml.lock`` beside
  it (filelock). A writer killed before its rename leaves its temporary file behind; the next
  write removes it (``_sweep_temp_files``).

Afterwards the kernel's effective config (``kernel.config``) is reloaded and plugins get
``codex_config_loaded``.
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.config import diagnostics
from codex_core.config.loader import (
    Config,
    Layer,
    plain,
    resolve_paths,
    value_at,
    version_of,
)
from codex_core.rpc import INTERNAL_ERROR, INVALID_REQUEST, RpcError

if TYPE_CHECKING:
    from codex_core.kernel import Kernel


class ConfigWriteError(RpcError):
    """A refused write, with the official server's ``config_write_error_code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(INVALID_REQUEST, message, {"config_write_error_code": code})


@dataclass(frozen=True, slots=True)
class Edit:
    key_path: str
    value: Any  # JSON; null removes the key
    merge_strategy: str  # "replace" | "upsert"


def _is_table(value: Any) -> bool:
    """A tomlkit table, inline or not (tomlkit is imported by the first write, not at startup)."""
    from tomlkit.items import InlineTable, Table

    return isinstance(value, (Table, InlineTable))


#: The random part of ``tempfile.mkstemp`` names (``_RandomNameSequence``: 8 characters).
_TEMP_RANDOM = "[a-z0-9_]{8}"


@dataclass(slots=True, eq=False)
class _Queued:
    """A write waiting for a commit, and how the commit went for it."""

    edits: Sequence[Edit]
    expected_version: str | None
    done: bool = False
    version: str = ""
    error: Exception | None = None


class ConfigService:
    """The kernel's config writer, published as ``kernel.services["config"]``."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._lock = anyio.Lock()
        self._queue: list[_Queued] = []

    async def write(
        self, edits: Sequence[Edit], file_path: str | None, expected_version: str | None
    ) -> dict[str, Any]:
        """Apply ``edits`` to the user's config.toml; the ``ConfigWriteResponse`` wire dict."""
        target = self.kernel.config.user_file
        if file_path is not None and not _same_file(target, file_path):
            raise ConfigWriteError(
                "configLayerReadonly", "Only writes to the user config are allowed"
            )
        queued = _Queued(edits, expected_version)
        self._queue.append(queued)
        try:
            async with self._lock:
                if not queued.done:  # else a commit that ran meanwhile took it along
                    # Shielded: the commit carries other requests' writes too.
                    with anyio.CancelScope(shield=True):
                        await self._commit()
        finally:
            if not queued.done:  # cancelled while waiting (the client left): never written
                self._queue.remove(queued)
        if queued.error is not None:
            raise queued.error
        reloaded = self.kernel.config
        overridden = _overridden(reloaded, [_segments(edit.key_path) for edit in edits])
        return {
            "status": "okOverridden" if overridden else "ok",
            "version": queued.version,
            "filePath": str(target),
            "overriddenMetadata": overridden,
        }

    async def _commit(self) -> None:
        """Apply every queued write, replace the file once, reload, tell the plugins."""
        batch, self._queue = self._queue, []
        config = self.kernel.config
        requests = [(queued.edits, queued.expected_version) for queued in batch]
        outcomes: list[str | Exception]
        try:
            outcomes, accepted = await anyio.to_thread.run_sync(
                _apply, config.user_file, requests, config.sections
            )
            if accepted:
                self.kernel.config = await anyio.to_thread.run_sync(config.reload)
        except Exception as exc:  # the file could not be read or replaced: all of them failed
            outcomes = [exc] * len(batch)
        for queued, outcome in zip(batch, outcomes, strict=True):
            queued.done = True
            if isinstance(outcome, Exception):
                queued.error = outcome
            else:
                queued.version = outcome
        if self.kernel.config is not config:
            self.kernel.plugins.notify(
                "codex_config_loaded", kernel=self.kernel, config=self.kernel.config.effective
            )


# --------------------------------------------------------------------------- applying edits


def _same_file(target: Path, provided: str) -> bool:
    if not os.path.isabs(provided):
        return False
    return os.path.realpath(provided) == os.path.realpath(target)


def _segments(key_path: str) -> list[str]:
    if not key_path.strip():
        raise ConfigWriteError("configValidationError", "keyPath must not be empty")
    segments = key_path.split(".")
    if any(not segment for segment in segments):
        raise ConfigWriteError("configValidationError", "keyPath segments must not be empty")
    return segments


def _apply(
    target: Path,
    requests: Sequence[tuple[Sequence[Edit], str | None]],
    sections: Mapping[str, Any] | None = None,
) -> tuple[list[str | Exception], bool]:
    """Apply each request's edits in turn and replace the file once (in a worker thread).

    Returns, per request, the file's version after its edits, or the error that refused it
    (that request's edits are then left out; the others go on); and whether any was
    accepted (the config is then reloaded, picking up what other processes wrote too).
    """
    from codex_core.fs import atomic

    real = Path(os.path.realpath(target))
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        raise _persist_error(real) from None
    with atomic.folder_lock(real.parent, LOCK_FILE):
        _sweep_temp_files(real)
        try:
            text: str | None = real.read_text()
        except FileNotFoundError:
            text = None
        except IsADirectoryError:
            raise RpcError(
                INTERNAL_ERROR,
                f"failed to load configuration: Failed to read config file {target}: "
                f"path `{target}` is not a file",
            ) from None
        current = text or ""
        outcomes: list[str | Exception] = []
        for edits, expected_version in requests:
            try:
                current = _edited(current, target, edits, expected_version, sections)
            except Exception as exc:  # this request's problem, worded for its client
                outcomes.append(exc)
            else:
                outcomes.append(_version(tomllib.loads(current), target))
        accepted = any(isinstance(outcome, str) for outcome in outcomes)
        if accepted and (text is None or current != text):  # a missing file is created
            try:
                atomic.write(real, current)  # keeps the file's mode; a new one is 0600
            except OSError:
                raise _persist_error(real) from None
    return outcomes, accepted


def _sweep_temp_files(path: Path) -> None:
    """Remove the temporary files of writers that died before their rename.

    Writers create their temporary file only while they hold the folder lock, which the caller
    now holds: every such file in the folder belongs to a writer that is gone.
    """
    from codex_core.fs import atomic

    stale = re.compile(rf"{re.escape(atomic.temp_prefix(path))}{_TEMP_RANDOM}\.tmp")
    with os.scandir(path.parent) as entries:
        for entry in entries:
            if stale.fullmatch(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


#: The lock file beside config.toml that writers in every process take (``_apply``).
LOCK_FILE = ".config.toml.lock"


def _edited(
    text: str,
    target: Path,
    edits: Sequence[Edit],
    expected_version: str | None,
    sections: Mapping[str, Any] | None = None,
) -> str:
    """``text`` with ``edits`` applied; raises what refuses the write."""
    import tomlkit

    try:
        document = tomlkit.parse(text)
        current = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, tomlkit.exceptions.TOMLKitError):
        # Nothing is written over a file that does not parse; the reference's words.
        message, range_, _rendering = diagnostics.syntax_error(text)
        where = "" if range_ is None else f":{range_['start']['line']}:{range_['start']['column']}"
        raise RpcError(
            INTERNAL_ERROR, f"failed to load configuration: {target}{where}: {message}"
        ) from None
    if expected_version is not None and expected_version != _version(current, target):
        raise ConfigWriteError(
            "configVersionConflict",
            "Configuration was modified since last read. Fetch latest version and retry.",
        )
    for edit in edits:
        segments = _segments(edit.key_path)
        value = _toml_value(edit.value)
        if value is None:
            _clear(document, segments)
        else:
            _set(document, segments, value, upsert=edit.merge_strategy == "upsert")
    updated = document.unwrap()
    from codex_core.config.schema import validate

    problems = validate(updated, sections)
    if problems:
        first = problems[0]
        raise ConfigWriteError(
            "configValidationError",
            f"Invalid configuration: {first.message}\nin `{first.dotted}`\n",
        )
    return document.as_string()


def _persist_error(path: Path) -> RpcError:
    """The file could not be replaced (a full disk, a read-only folder): nothing changed."""
    return RpcError(
        INTERNAL_ERROR, f"failed to persist config.toml: failed to persist config at {path}"
    )


def _version(data: dict[str, Any], path: Path) -> str:
    # The version config/read reports: computed after relative paths are resolved.
    resolved = plain(data)
    resolve_paths(resolved, path.parent)
    return version_of(resolved)


def _toml_value(value: Any, top: bool = True) -> Any:
    """A JSON value as TOML can hold it; null is only allowed as the whole value (a removal)."""
    if value is None:
        if top:
            return None
        raise ConfigWriteError(
            "configValidationError",
            "invalid value: invalid type: null, expected any valid TOML value",
        )
    if isinstance(value, dict):
        return {key: _toml_value(item, False) for key, item in value.items()}
    if isinstance(value, list):
        return [_toml_value(item, False) for item in value]
    return value


def _set(document: Any, segments: list[str], value: Any, *, upsert: bool) -> None:
    """Set ``value`` at ``segments``, creating the tables on the way.

    As the reference does, only the immediate parent must be a table: an ancestor above it
    that holds a plain value is replaced by the new tables.
    """
    container = document
    parent = len(segments) - 2
    for index, segment in enumerate(segments[:-1]):
        missing = segment not in container
        if missing or (index < parent and not _is_table(container[segment])):
            nested: Any = value
            for later in reversed(segments[index + 1 :]):
                nested = {later: nested}
            container[segment] = nested
            return
        child = container[segment]
        if not _is_table(child):
            raise ConfigWriteError("configValidationError", "cannot set value on non-table parent")
        container = child
    last = segments[-1]
    existing = container.get(last) if last in container else None
    if upsert and _is_table(existing) and isinstance(value, dict):
        _merge_into(existing, value)
    elif existing is None or _plain_value(existing) != value:
        container[last] = value


def _merge_into(table: Any, value: dict[str, Any]) -> None:
    for key, item in value.items():
        existing = table.get(key) if key in table else None
        if _is_table(existing) and isinstance(item, dict):
            _merge_into(existing, item)
        elif existing is None or _plain_value(existing) != item:
            table[key] = item


def _plain_value(item: Any) -> Any:
    return item.unwrap() if hasattr(item, "unwrap") else item


def _clear(document: Any, segments: list[str]) -> None:
    """Remove the key at ``segments``; a path that leads nowhere is no error (as the reference)."""
    container = document
    for segment in segments[:-1]:
        child = container.get(segment) if segment in container else None
        if not _is_table(child):
            return
        container = child
    if segments[-1] in container:
        del container[segments[-1]]


# --------------------------------------------------------------------------- overrides


_OVERRIDE_MESSAGES = {
    "sessionFlags": "Overridden by session flags",
    "system": "Overridden by managed config (system): {file}",
    "user": "Overridden by user config: {file}",
    "project": "Overridden by project config: {dotCodexFolder}/config.toml",
    "legacyManagedConfigTomlFromFile": "Overridden by legacy managed_config.toml: {file}",
    "legacyManagedConfigTomlFromMdm": "Overridden by legacy managed configuration from MDM",
    "mdm": "Overridden by managed policy (MDM): {domain}",
}


def _overridden(config: Config, edits: list[list[str]]) -> dict[str, Any] | None:
    """The first edited key a higher layer overrides, as ``OverriddenMetadata``."""
    user = config.user_layer()
    if user is None:
        return None
    effective = config.layered()
    for segments in edits:
        in_user, user_value = value_at(user.applied, segments)
        in_effective, effective_value = value_at(effective, segments)
        if (in_user and user_value == effective_value) or (not in_user and not in_effective):
            continue
        layer = next(
            (layer for layer in config.layers if value_at(layer.applied, segments)[0]), None
        )
        if layer is None:
            continue
        return {
            "message": _message(layer),
            "overridingLayer": layer.metadata(),
            "effectiveValue": effective_value,
        }
    return None


def _message(layer: Layer) -> str:
    template = _OVERRIDE_MESSAGES.get(layer.name["type"], "Overridden by {type}")
    return template.format_map({key: value for key, value in layer.name.items()})
