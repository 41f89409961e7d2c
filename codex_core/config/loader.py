"""Reading the configuration layers into one effective config.

Layers, highest precedence first as ``config/read`` lists them (the official server's order):

1. the legacy managed file, ``/etc/codex/managed_config.toml`` (``$CODEX_HOME/managed_config.toml``
   on Windows): an administrator's settings, above everything, even ``-c``;
2. session flags (``-c key=value``);
3. project layers, ``.codex/config.toml`` in every folder from ``cwd`` up to the project root
   (nearest first), only when ``config/read`` names a ``cwd`` and the project is trusted
   (``[projects."<root>"] trust_level = "trusted"``); untrusted ones are listed, disabled;
4. the selected profile, ``$CODEX_HOME/<name>.config.toml`` (``--profile NAME``), a second
   ``user`` layer naming the profile;
5. the user's ``$CODEX_HOME/config.toml``;
6. the system ``/etc/codex/config.toml``;

and below them the packaged defaults. Tables merge key by key; scalars and arrays replace.
Relative paths in a file resolve against that file's folder.

Nothing in a file stops the server. A file that does not parse is skipped; a value of the wrong
type is dropped (that key falls back to the layers below and the defaults). Both become a
``configWarning`` for every client, with the file, the position and the offending line, and
make ``config/read`` fail with the reference's error (``read_error``) until they are fixed.
``/etc/codex/requirements.toml`` constrains some keys (see ``requirements.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_core.config import diagnostics
from codex_core.config.locations import managed_config_path, system_config_path, system_dir

if TYPE_CHECKING:
    # The schema (pydantic models) is imported by the functions that validate: importing this
    # module, as every plugin that reads config does, stays cheap (``--help``).
    from codex_core.config.requirements import Requirements
    from codex_core.config.schema import Problem, Sections, Settings

#: Packaged defaults, shaped like the official server's effective config (every key it reports,
#: unset ones as null). A plain path: importlib.resources costs ~15 ms of startup.
DEFAULTS = Path(__file__).with_name("defaults.json")
#: Keys holding a path, resolved against the folder of the file that sets them.
PATH_KEYS = frozenset(
    {
        "model_instructions_file",
        "experimental_compact_prompt_file",
        "log_dir",
        "sqlite_home",
        "js_repl_node_path",
        "model_catalog_json",
    }
)


@dataclass(slots=True)
class Layer:
    """One source of settings, named as ``ConfigLayerSource`` on the wire.

    ``data`` is what the source holds (as ``config/read`` lists it); ``applied`` is what takes
    part in the merge: ``data`` minus the values that failed validation, or nothing at all when
    the layer is disabled.
    """

    name: dict[str, Any]
    version: str
    data: dict[str, Any]
    applied: dict[str, Any] = field(default_factory=dict)
    disabled_reason: str | None = None
    #: The values validation refused (left out of ``applied``).
    problems: list[Problem] = field(default_factory=list)
    #: The file's text, to point at a key in messages (None for ``-c`` flags).
    text: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"name": self.name, "version": self.version, "config": self.data}
        if self.disabled_reason is not None:
            wire["disabledReason"] = self.disabled_reason
        return wire

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}


@dataclass(slots=True)
class Config:
    layers: list[Layer]  # highest precedence first
    effective: dict[str, Any]
    origins: dict[str, Layer]  # dotted key -> the layer that set it
    warnings: list[dict[str, Any]] = field(default_factory=list)
    codex_home: Path = field(default_factory=Path)
    overrides: tuple[str, ...] = ()
    cwd: Path | None = None
    #: Plugins' config tables (``codex_config_sections``), kept so reloads check them too.
    sections: Mapping[str, Any] = field(default_factory=dict)
    #: Every problem ``--strict-config`` refuses: invalid values, unreadable files, unknown keys.
    problems: list[str] = field(default_factory=list)
    #: The ``--profile`` name, if any.
    profile: str | None = None
    requirements: Requirements | None = None
    #: Why ``config/read`` fails (as the reference: a file that does not parse, an invalid
    #: value, a legacy ``profile`` key, a broken requirements.toml); None when it succeeds.
    read_error: str | None = None
    #: What stops ``codex-app-server`` at startup, as the reference (``-c profile=``, a
    #: ``--profile`` clashing with legacy profile tables, an invalid requirements.toml).
    fatal: list[str] = field(default_factory=list)

    def get(self, dotted: str, default: Any = None) -> Any:
        """An effective value; keys the requirements constrain give the allowed value."""
        if self.requirements is not None and dotted in self.requirements.allowed:
            allowed, _warning = self.requirements.enforce(dotted, self.effective.get(dotted))
            return default if allowed is None else allowed
        value: Any = self.effective
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                return default
            value = value[part]
        return value

    def disabled_plugins(self) -> set[str]:
        """Kernel plugins switched off with ``[plugins.NAME] enabled = false``."""
        table = self.get("plugins", {})
        return {
            name
            for name, settings in table.items()
            if isinstance(settings, dict) and settings.get("enabled") is False
        }

    @property
    def user_file(self) -> Path:
        return self.codex_home / "config.toml"

    def user_layer(self) -> Layer | None:
        """The base user layer (``config.toml``), not a profile's."""
        return next(
            (
                layer
                for layer in self.layers
                if layer.name["type"] == "user" and layer.name.get("profile") is None
            ),
            None,
        )

    def reload(self, cwd: str | os.PathLike[str] | None = None) -> Config:
        """The same sources read again from disk (with ``cwd``: its project layers too)."""
        return load_config(
            self.codex_home, self.overrides, cwd, self.sections, profile=self.profile
        )

    def layered(self) -> dict[str, Any]:
        """The merge of the enabled layers alone, without the packaged defaults."""
        merged: dict[str, Any] = {}
        for layer in reversed(self.layers):
            merge(merged, layer.applied)
        return merged

    @property
    def settings(self) -> Settings:
        """The effective config, typed, with deprecated spellings turned into current ones."""
        effective = dict(self.effective)
        for key in self.requirements.allowed if self.requirements else ():
            effective[key] = self.get(key)
        effective["approvals_reviewer"] = self.approvals_reviewer
        present = {key: value for key, value in effective.items() if value is not None}
        from pydantic import ValidationError

        from codex_core.config.schema import Settings

        try:
            return Settings.model_validate(present)
        except ValidationError:  # every layer was checked; only defaults could disagree
            return Settings.model_construct(**present)

    @property
    def approvals_reviewer(self) -> str | None:
        """``approvals_reviewer``, without typing the whole config (the kernel checks it at
        every start).

        ``guardian_approval = true`` (top level or under ``[features]``) means
        ``approvals_reviewer = "guardian_subagent"`` in the layer that says it, unless that same
        layer sets ``approvals_reviewer``; a higher layer still wins.
        """
        for layer in self.layers:
            data = layer.applied
            if "approvals_reviewer" in data:
                break
            features = data.get("features")
            if data.get("guardian_approval") is True or (
                isinstance(features, dict) and features.get("guardian_approval") is True
            ):
                return "guardian_subagent"
        value = self.get("approvals_reviewer")
        return None if value is None else str(value)


def version_of(data: dict[str, Any]) -> str:
    """The layer version clients pass back as ``expectedVersion``.

    As the official server: the SHA-256 of the layer's parsed content as compact JSON with
    sorted keys, so comments and formatting do not change it.
    """
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def load_config(
    codex_home: Path,
    overrides: Sequence[str] = (),
    cwd: str | os.PathLike[str] | None = None,
    sections: Sections | None = None,
    *,
    profile: str | None = None,
) -> Config:
    """Read every layer from disk. Blocking: call it in a worker thread from async code.

    ``sections`` are the tables plugins contribute (see ``schema.config_sections``), checked
    layer by layer like the built-in keys. ``profile`` selects
    ``<codex_home>/<profile>.config.toml``.
    """
    sections = dict(sections or {})
    warnings: list[dict[str, Any]] = []
    fatal: list[str] = []
    layers: list[Layer] = []
    managed_file = managed_config_path(codex_home)
    managed = _file_layer(
        managed_file, {"type": "legacyManagedConfigTomlFromFile", "file": str(managed_file)}
    )
    if isinstance(managed, _FileLayer):
        layers.append(_checked(managed, warnings, sections))
    if overrides:
        flags: dict[str, Any] = {}
        for override in overrides:
            key, value = parse_override(override)
            _set_dotted(flags, key, value)
        resolve_paths(flags, Path.cwd())
        if isinstance(flags.get("profile"), str):
            fatal.append(_legacy_profile(flags["profile"]))
        layers.append(
            _checked(_FileLayer({"type": "sessionFlags"}, plain(flags)), warnings, sections)
        )
    user_file = codex_home / "config.toml"
    user_name = {"type": "user", "file": str(user_file), "profile": None}
    # The reference lists the user layer, empty, before config.toml exists.
    user = _file_layer(user_file, user_name) or _FileLayer(user_name, {})
    sources: list[_FileLayer | _Unreadable | None] = [managed, user]
    user_layers: list[_FileLayer | _Unreadable | None] = []
    if profile is not None:
        selected, clash = _profile_layer(codex_home, profile, user)
        sources.append(selected)
        user_layers.append(selected)
        fatal.extend(clash)
    system_file = system_config_path()
    system = _file_layer(system_file, {"type": "system", "file": str(system_file)})
    sources.append(system)
    below = [
        _checked(layer, warnings, sections)
        for layer in (
            *user_layers,
            user,
            system if isinstance(system, _FileLayer) else _empty_system(),
        )
        if isinstance(layer, _FileLayer)
    ]
    if cwd is not None:
        layers.extend(
            _project_layers(Path(cwd), codex_home, user_file, layers + below, warnings, sections)
        )
    layers.extend(below)
    # A file that could not be read or parsed: its warning, and no layer.
    for source in sources:
        if isinstance(source, _Unreadable):
            warnings.append(source.warning)
    read_error = next(
        (
            "failed to read configuration layers: " + source.warning["details"].split("\n")[0]
            for source in sources
            if isinstance(source, _Unreadable)
        ),
        None,
    )
    refused = next((p for layer in reversed(layers) for p in layer.problems), None)
    if read_error is None and refused is not None:
        read_error = f"invalid configuration: {refused.message}\nin `{refused.dotted}`\n"
    for layer in layers:
        # The reference no longer selects a profile from a file: it says how to move on.
        legacy = layer.applied.pop("profile", None)
        if isinstance(legacy, str) and layer.name["type"] != "sessionFlags":
            details = _legacy_profile(legacy)
            warnings.append({"summary": diagnostics.SUMMARY, "details": details})
            read_error = read_error or f"failed to resolve feature override precedence: {details}"

    effective = json.loads(DEFAULTS.read_text())
    origins: dict[str, Layer] = {}
    for layer in reversed(layers):
        merge(effective, layer.applied)
        for key in _leaf_keys(layer.applied):
            origins[key] = layer
    if any("features" in layer.applied for layer in layers):
        effective["features"].setdefault("network_proxy", None)
    managed_applied = (
        next(
            (layer.applied for layer in layers if layer.name["type"] == managed.name["type"]), None
        )
        if isinstance(managed, _FileLayer)
        else None
    )
    from codex_core.config.requirements import load_requirements

    loaded = load_requirements(system_dir(), managed_file, managed_applied)
    requirements = loaded.requirements
    if loaded.warning is not None:
        warnings.append(loaded.warning)
        read_error = read_error or f"failed to read configuration layers: {loaded.error}"
    if loaded.fatal is not None:
        fatal.append(loaded.fatal)
    if requirements is not None:
        warnings.extend(requirements.apply(effective))
    problems = [
        warning["details"].partition("\n")[0] for warning in warnings if warning.get("details")
    ]
    ignored = _unknown_settings(layers, sections)
    if ignored:
        warnings.append(_ignored_warning(ignored))
        problems.extend(
            f"{at}: unknown configuration field `{key}`"
            for _, key, at in ignored
            if not key.startswith("features.")  # the reference's strict mode lets these pass
        )
    return Config(
        layers,
        effective,
        origins,
        warnings,
        codex_home,
        tuple(overrides),
        None if cwd is None else Path(cwd),
        sections,
        problems,
        profile,
        requirements,
        read_error,
        fatal,
    )


def _profile_layer(
    codex_home: Path, profile: str, user: _FileLayer | _Unreadable | None
) -> tuple[_FileLayer | _Unreadable, list[str]]:
    """``<profile>.config.toml`` as a user layer naming the profile (empty when the file is
    missing, as the base user layer), and the reference's refusal when the base file still
    has the legacy selector or table of that name."""
    profile_file = codex_home / f"{profile}.config.toml"
    name = {"type": "user", "file": str(profile_file), "profile": profile}
    selected = _file_layer(profile_file, name) or _FileLayer(name, {})
    legacy = isinstance(user, _FileLayer) and (
        user.data.get("profile") == profile or profile in (user.data.get("profiles") or {})
    )
    if not legacy:
        return selected, []
    return selected, [
        f"--profile `{profile}` cannot be used while {codex_home / 'config.toml'} contains "
        f'legacy `profile = "{profile}"` or `[profiles.{profile}]` config; move those settings '
        f"into {profile_file} and remove the legacy profile selector/table. See "
        "https://developers.openai.com/codex/config-advanced#profiles for more information."
    ]


def _ignored_warning(ignored: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
    """The reference's one warning for every unknown key: three of them, then a count."""
    count = len(ignored)
    noun = "setting" if count == 1 else "settings"
    lines = "".join(f"\n  {label}: `{key}` is ignored." for label, key, _ in ignored[:3])
    if count > 3:
        lines += f"\n  ... and {count - 3} more ignored settings."
    return {
        "summary": f"Codex is ignoring {count} unrecognized configuration {noun}. "
        f"Check for typos or deprecated settings.{lines}",
        "details": None,
    }


def session_overrides(
    pairs: Mapping[str, Any], sections: Sections | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A request's ``config`` (dotted keys to values, as ``thread/start`` takes them) as a
    session-flags table, with the reference's ``configWarning`` for its unknown keys.

    Raises ``ValueError`` worded as the reference's refusal ("failed to load configuration:
    ..." follows it) for a value the schema refuses or a provider without a name: unlike a
    file's, a request's mistake is refused rather than dropped with a warning.
    """
    from codex_core.config.schema import unknown_keys, validate

    flags: dict[str, Any] = {}
    for key, value in pairs.items():
        _set_dotted(flags, key, value)
    problems = validate(flags, sections)
    if problems:
        raise ValueError(f"{problems[0].message}\nin `{problems[0].dotted}`\n")
    for provider_id, info in (flags.get("model_providers") or {}).items():
        if isinstance(info, dict) and not info.get("name"):
            raise ValueError(
                f"model_providers.{provider_id}: provider name must not be empty\n"
                "in `model_providers`\n"
            )
    ignored = [("session-flags", key, "session-flags") for key in unknown_keys(flags, sections)]
    return flags, _ignored_warning(ignored) if ignored else None


def _legacy_profile(name: str) -> str:
    return (
        f'legacy `profile = "{name}"` config is no longer supported; use `--profile {name}` '
        f"with `{name}.config.toml` instead"
    )


def strict_problems(config: Config) -> list[str]:
    """What ``--strict-config`` refuses at startup, one line each (empty: start normally).

    Invalid values and files that do not parse (``path:line:column: message``, as the
    ``configWarning`` details) and unrecognized keys (``path:line:column: unknown
    configuration field `key```; inside ``[features]`` they only warn, as the reference).
    Without the flag the same problems are only warnings.
    """
    return list(config.problems)


def _layer_label(name: Mapping[str, Any]) -> str:
    """How the reference names a layer in its "unrecognized setting" warning."""
    kind = name["type"]
    if kind == "sessionFlags":
        return "session-flags"
    where = _layer_path(name)
    label = {"legacyManagedConfigTomlFromFile": "managed"}.get(kind, kind)
    return f"{label} ({where})" if where else label


def _unknown_settings(layers: Sequence[Layer], sections: Sections) -> list[tuple[str, str, str]]:
    """``(layer label, dotted key, where)`` for each unknown key of an enabled layer, highest
    layer first and keys sorted within a layer (as the reference lists them). ``where`` is
    ``path:line:column`` of the key in its file, else the label."""
    found = []
    for layer in layers:
        if not layer.applied:
            continue
        from codex_core.config.schema import unknown_keys

        label = _layer_label(layer.name)
        for key in unknown_keys(layer.applied, sections):
            where = label
            path = _layer_path(layer.name)
            if path is not None and layer.text is not None:
                point = diagnostics.locate_key(layer.text, tuple(key.split(".")))
                where = f"{path}:{point['line']}:{point['column']}" if point else str(path)
            found.append((label, key, where))
    return found


def _layer_path(name: Mapping[str, Any]) -> str | None:
    if "file" in name:
        return str(name["file"])
    if "dotCodexFolder" in name:
        return str(Path(name["dotCodexFolder"]) / "config.toml")
    return None


def parse_override(override: str) -> tuple[str, Any]:
    """``key=value`` with a TOML value, or the raw text when it is not TOML (as the reference)."""
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"invalid -c override {override!r}: expected key=value")
    try:
        value = tomllib.loads(f"value = {text.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    return key, value


# --------------------------------------------------------------------------- reading files


@dataclass(slots=True)
class _FileLayer:
    name: dict[str, Any]
    data: dict[str, Any]
    text: str | None = None
    path: Path | None = None


@dataclass(slots=True)
class _Unreadable:
    warning: dict[str, Any]


def _file_layer(path: Path, name: dict[str, Any]) -> _FileLayer | _Unreadable | None:
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return _Unreadable(diagnostics.warning(path, f"cannot read: {exc.strerror}", None))
    try:
        text = raw.decode()
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        return _Unreadable(diagnostics.warning(path, f"invalid UTF-8: {exc.reason}", None))
    except tomllib.TOMLDecodeError:
        message, range_, _rendering = diagnostics.syntax_error(text)
        return _Unreadable(diagnostics.warning(path, message, range_, text))
    resolve_paths(data, path.parent)
    return _FileLayer(name, plain(data), text, path)


def _checked(
    layer: _FileLayer, warnings: list[dict[str, Any]], sections: Sections | None = None
) -> Layer:
    """Validate a parsed layer: report each bad value and leave it out of the merge.

    An empty layer (no ``config.toml`` yet, an empty system layer) has nothing to validate:
    the schema, a tree of pydantic models, is then not built at all.
    """
    applied = json.loads(json.dumps(layer.data))
    problems: list[Problem] = []
    if layer.data:
        from codex_core.config.schema import validate

        problems = validate(layer.data, sections)
    for problem in problems:
        _remove(applied, problem.loc)
        if layer.path is not None and layer.text is not None:
            range_ = diagnostics.locate(layer.text, problem.loc)
            warnings.append(diagnostics.warning(layer.path, problem.message, range_, layer.text))
        else:
            warnings.append(
                {
                    "summary": diagnostics.SUMMARY,
                    "details": f"-c {problem.dotted}: {problem.message}",
                    "path": None,
                    "range": None,
                }
            )
    return Layer(
        layer.name, version_of(layer.data), layer.data, applied, None, problems, layer.text
    )


def _empty_system() -> _FileLayer:
    path = system_config_path()
    return _FileLayer({"type": "system", "file": str(path)}, {})


def resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Make the known path keys absolute against ``base`` (also inside ``[profiles.*]``)."""
    tables = [data] + [p for p in (data.get("profiles") or {}).values() if isinstance(p, dict)]
    for table in tables:
        for key in PATH_KEYS & table.keys():
            value = table[key]
            if isinstance(value, str) and value and not os.path.isabs(value):
                table[key] = os.path.normpath(base / os.path.expanduser(value))


# --------------------------------------------------------------------------- project layers


def _project_layers(
    cwd: Path,
    codex_home: Path,
    user_file: Path,
    above_and_below: list[Layer],
    warnings: list[dict[str, Any]],
    sections: Sections | None = None,
) -> list[Layer]:
    """``.codex/config.toml`` from ``cwd`` up to the project root, nearest first."""
    merged: dict[str, Any] = json.loads(DEFAULTS.read_text())
    for layer in reversed(above_and_below):
        merge(merged, layer.applied)
    cwd = Path(os.path.abspath(cwd))
    markers = merged.get("project_root_markers") or [".git"]
    root = next(
        (
            folder
            for folder in _upwards(cwd)
            if any((folder / marker).exists() for marker in markers)
        ),
        cwd,
    )
    projects = merged.get("projects") or {}
    trusted = any(
        isinstance(projects.get(str(folder)), dict)
        and projects[str(folder)].get("trust_level") == "trusted"
        for folder in {root, cwd}
    )
    layers = []
    for folder in _upwards(cwd):
        dot_codex = folder / ".codex"
        if dot_codex != codex_home:
            found = _file_layer(
                dot_codex / "config.toml", {"type": "project", "dotCodexFolder": str(dot_codex)}
            )
            if isinstance(found, _Unreadable):
                warnings.append(found.warning)
            elif found is not None:
                if trusted:
                    layers.append(_checked(found, warnings, sections))
                else:
                    reason = (
                        "To load project-local config, hooks, and exec policies, "
                        f"add {root} as a trusted project in {user_file}."
                    )
                    layers.append(Layer(found.name, version_of(found.data), found.data, {}, reason))
        if folder == root:
            break
    return layers


def _upwards(folder: Path) -> Iterator[Path]:
    yield folder
    yield from folder.parents


# --------------------------------------------------------------------------- dict helpers


def plain(data: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready: TOML dates and times become their text."""
    plain: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return plain


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[last] = value


def _remove(data: dict[str, Any], loc: tuple[str | int, ...]) -> None:
    """Drop the value at ``loc`` (an array element's problem drops the whole array)."""
    keys = []
    for part in loc:
        if not isinstance(part, str):
            break
        keys.append(part)
    target: Any = data
    for key in keys[:-1]:
        target = target.get(key) if isinstance(target, dict) else None
    if keys and isinstance(target, dict):
        target.pop(keys[-1], None)


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> None:
    """Merge ``overlay`` into ``base``: tables key by key, everything else replaces."""
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        elif isinstance(value, dict):
            base[key] = json.loads(json.dumps(value))
        else:
            base[key] = value


def value_at(data: Any, segments: Sequence[str]) -> tuple[bool, Any]:
    """``(found, value)`` at a key path; array elements by index, as origins name them."""
    current = data
    for segment in segments:
        if isinstance(current, dict) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            return False, None
    return True, current


def _leaf_keys(data: Any, prefix: str = "") -> list[str]:
    """Dotted keys of every leaf; array elements count as ``key.0``, ``key.1`` (as origins)."""
    if isinstance(data, dict) and data:
        items: Iterator[tuple[str, Any]] = iter(data.items())
    elif isinstance(data, list) and data:
        items = ((str(index), value) for index, value in enumerate(data))
    else:
        return [prefix[:-1]] if prefix else []
    keys = []
    for key, value in items:
        keys.extend(_leaf_keys(value, f"{prefix}{key}."))
    return keys
