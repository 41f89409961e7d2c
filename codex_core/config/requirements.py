"""Administrator requirements: ``/etc/codex/requirements.toml`` and what it constrains.

The official server reads requirements from the system folder only (a
``$CODEX_HOME/requirements.toml`` is ignored), plus the legacy managed file's
``approval_policy`` / ``sandbox_mode``, each of which becomes a one-value allowed list.
``configRequirements/read`` reports them; the constrained keys (``approval_policy``,
``sandbox_mode``, ``web_search``) fall back to the first allowed value when the configuration
picks another one, with the reference's ``configWarning``; ``[features]`` requirements pin
those flags in the effective config.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_core.config import diagnostics
from codex_core.config.locations import REQUIREMENTS_FILE

#: ``ConfigRequirements`` keys in the reference's order, all present (null when unset).
WIRE_KEYS = (
    "modelProvider",
    "modelProviders",
    "allowedLoginMethods",
    "cliAuthCredentialsStore",
    "chatgptBaseUrl",
    "additionalDeveloperInstructions",
    "allowedApprovalPolicies",
    "allowedApprovalsReviewers",
    "allowedSandboxModes",
    "allowedWindowsSandboxImplementations",
    "allowedPermissionProfiles",
    "defaultPermissions",
    "allowedWebSearchModes",
    "allowManagedHooksOnly",
    "allowBrowserAndComputerUse",
    "allowAppshots",
    "allowRemoteControl",
    "computerUse",
    "browserUse",
    "inAppBrowser",
    "featureRequirements",
    "hooks",
    "enforceResidency",
    "network",
    "application",
    "autoReview",
    "models",
    "sqliteHome",
    "logDir",
    "modelCatalogJson",
    "checkForUpdateOnStartup",
    "allowLoginShell",
    "feedback",
    "otel",
)
#: requirements.toml keys whose wire name is not their camelCase.
_RENAMED = {"features": "featureRequirements"}

#: How the reference (Rust ``Debug``) names each value in its fallback warnings.
_DEBUG_NAMES = {
    "untrusted": "UnlessTrusted",
    "on-failure": "OnFailure",
    "on-request": "OnRequest",
    "never": "Never",
    "read-only": "ReadOnly",
    "workspace-write": "WorkspaceWrite",
    "danger-full-access": "DangerFullAccess",
    "disabled": "Disabled",
    "cached": "Cached",
    "live": "Live",
}
#: What each constrained key is when nothing sets it (the consumers' defaults).
_DEFAULTS = {"approval_policy": "on-request", "sandbox_mode": "read-only", "web_search": "cached"}
#: The permission profile read-only stands for, as the reference prints it.
_READ_ONLY_PROFILE = (
    "Managed { file_system: Restricted { entries: [FileSystemSandboxEntry { path: Special "
    "{ value: Root }, access: Read, missing_path_behavior: None }], glob_scan_max_depth: None "
    "}, network: Restricted }"
)


@dataclass(slots=True)
class Requirements:
    """What the administrator allows, and where each constraint comes from."""

    data: dict[str, Any]
    #: Constrained config key -> (allowed values, in the reference's order; source file).
    allowed: dict[str, tuple[list[str], str]] = field(default_factory=dict)

    def to_wire(self, forced_login_method: Any = None) -> dict[str, Any]:
        wire: dict[str, Any] = dict.fromkeys(WIRE_KEYS)
        for key, value in self.data.items():
            name = _RENAMED.get(key) or _camel(key)
            if name in wire:
                wire[name] = value
        if "web_search" in self.allowed:
            modes = list(self.data["allowed_web_search_modes"])
            wire["allowedWebSearchModes"] = modes + [m for m in ("disabled",) if m not in modes]
        for key, wire_key in (
            ("approval_policy", "allowedApprovalPolicies"),
            ("sandbox_mode", "allowedSandboxModes"),
        ):
            if key in self.allowed:
                wire[wire_key] = self.allowed[key][0]
        logins = ["api", "chatgpt"]
        wire["allowedLoginMethods"] = (
            [forced_login_method] if forced_login_method in logins else logins
        )
        return wire

    def apply(self, effective: dict[str, Any]) -> list[dict[str, Any]]:
        """Pin the required feature flags in ``effective``; the warnings for configured values
        the requirements refuse (those keys then read as allowed through ``Config.get``)."""
        pinned = self.data.get("features")
        if isinstance(pinned, dict):
            effective["features"] = {**(effective.get("features") or {}), **pinned}
        refused = (self.enforce(key, effective.get(key))[1] for key in self.allowed)
        return [warning for warning in refused if warning is not None]

    def enforce(self, key: str, value: Any) -> tuple[Any, dict[str, Any] | None]:
        """The value to use for ``key`` and, when the configured one is refused, the warning.

        An unset value keeps its default when that is allowed, else takes the fallback
        silently. The fallback is the first allowed value; for the sandbox, read-only (always
        allowed), as the reference.
        """
        if key not in self.allowed or not isinstance(value, str | None):
            return value, None
        allowed, source = self.allowed[key]
        if key == "web_search":
            shown = ["disabled", *(mode for mode in allowed if mode != "disabled")]
        else:
            shown = allowed
        fallback = "read-only" if key == "sandbox_mode" else allowed[0]
        if value is None:
            return (None if _DEFAULTS[key] in shown else fallback), None
        if value in shown:
            return value, None
        field_name = {"web_search": "web_search_mode"}.get(key, key)
        name, required = field_name, _DEBUG_NAMES.get(fallback, fallback)
        if key == "sandbox_mode":  # the reference checks the permission profile it implies
            name, required = "permission_profile", _READ_ONLY_PROFILE
        names = ", ".join(_DEBUG_NAMES.get(item, item) for item in shown)
        summary = (
            f"Configured value for `{name}` is disallowed by requirements; falling back to "
            f"required value {required}. Details: invalid value for `{field_name}`: "
            f"`{_DEBUG_NAMES.get(value, value)}` is not in the allowed set [{names}] "
            f"(set by {source})"
        )
        return fallback, {"summary": summary, "details": None}


@dataclass(slots=True)
class Loaded:
    """The outcome of reading requirements: the requirements (or None), a warning for a file
    that does not parse, and the problem that stops the CLI (an invalid value)."""

    requirements: Requirements | None = None
    warning: dict[str, Any] | None = None
    error: str | None = None
    fatal: str | None = None


def load_requirements(
    system_dir: Path, managed_file: Path, managed: dict[str, Any] | None
) -> Loaded:
    """Read ``<system_dir>/requirements.toml`` and the legacy managed file's constraints."""
    path = system_dir / REQUIREMENTS_FILE
    data: dict[str, Any] = {}
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        text = None
    except (OSError, UnicodeDecodeError) as exc:
        message = f"failed to read requirements layer {path}: {exc}"
        return Loaded(warning=_warning(message), error=message)
    if text is not None:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            reason = diagnostics.syntax_error(text)[2]
            message = f"failed to parse requirements layer {path}: {reason}\n"
            return Loaded(warning=_warning(message), error=message)
        from codex_core.config.schema import RequirementsToml, problems_of

        for problem in problems_of(RequirementsToml, data):
            return Loaded(
                fatal=f"failed to parse requirements layer {path}: {problem.message}\n"
                f"in `{problem.dotted}`\n"
            )
    allowed: dict[str, tuple[list[str], str]] = {}
    for key, toml_key in (
        ("approval_policy", "allowed_approval_policies"),
        ("sandbox_mode", "allowed_sandbox_modes"),
        ("web_search", "allowed_web_search_modes"),
    ):
        if isinstance(data.get(toml_key), list):
            allowed[key] = (list(data[toml_key]), str(path))
    modes = data.get("allowed_sandbox_modes")
    if isinstance(modes, list) and "read-only" not in modes:
        shown = ", ".join(_DEBUG_NAMES[mode] for mode in modes)
        return Loaded(
            fatal=f"invalid value for `allowed_sandbox_modes`: `[{shown}]` is not in the "
            "allowed set must include 'read-only' to allow any PermissionProfile "
            f"(set by {path})"
        )
    for key in ("approval_policy", "sandbox_mode"):
        value = (managed or {}).get(key)
        if isinstance(value, str) and key not in allowed:
            allowed[key] = ([value], str(managed_file))
    if text is None and not allowed:
        return Loaded()
    return Loaded(Requirements(data, allowed))


def _warning(details: str) -> dict[str, Any]:
    return {"summary": diagnostics.SUMMARY, "details": details}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
