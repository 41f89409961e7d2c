"""The typed shape of the configuration keys the product uses, checked layer by layer.

Each layer (a file, the ``-c`` flags) is validated on its own, so a mistake is reported against
the file that holds it. Keys not modelled here pass through untouched (``extra="allow"``): the
official server knows many more, and plugins add their own. A value of the wrong type is
reported with serde's wording (``invalid type: boolean `true`, expected a string``) and dropped,
so that key falls back to the layers below it and the defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from codex_core.rpc.validation import describe

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

#: Config sections plugins contribute: top-level table name -> the pydantic model checking it.
Sections = Mapping[str, type[BaseModel]]


class _Table(BaseModel):
    # Validators are built on first use: a server whose config files are empty or absent never
    # needs them, and building them all costs startup time.
    model_config = ConfigDict(extra="allow", strict=True, defer_build=True)


class GranularApproval(_Table):
    granular: dict[str, Any]


ApprovalPolicy = Literal["untrusted", "on-failure", "on-request", "never"] | GranularApproval
SandboxMode = Literal["read-only", "workspace-write", "danger-full-access"]
ApprovalsReviewer = Literal["user", "auto_review", "guardian_subagent"]


class ModelProviderInfo(_Table):
    name: str | None = None
    base_url: str | None = None
    env_key: str | None = None
    env_key_instructions: str | None = None
    wire_api: Literal["responses", "chat"] | None = None
    query_params: dict[str, str] | None = None
    http_headers: dict[str, str] | None = None
    env_http_headers: dict[str, str] | None = None
    request_max_retries: int | None = None
    stream_max_retries: int | None = None
    stream_idle_timeout_ms: int | None = None
    requires_openai_auth: bool | None = None


class McpServer(_Table):
    command: str | None = None
    args: list[str] | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    bearer_token_env_var: str | None = None
    http_headers: dict[str, str] | None = None
    enabled: bool | None = None
    required: bool | None = None
    startup_timeout_sec: float | int | None = None
    tool_timeout_sec: float | int | None = None
    enabled_tools: list[str] | None = None
    disabled_tools: list[str] | None = None


class PluginSettings(_Table):
    enabled: bool | None = None


class ShellEnvironmentPolicy(_Table):
    inherit: Literal["core", "all", "none"] | None = None
    ignore_default_excludes: bool | None = None
    exclude: list[str] | None = None
    set: dict[str, str] | None = None
    include_only: list[str] | None = None
    experimental_use_profile: bool | None = None


class Profile(_Table):
    model: str | None = None
    model_provider: str | None = None
    approval_policy: ApprovalPolicy | None = None
    sandbox_mode: SandboxMode | None = None
    approvals_reviewer: ApprovalsReviewer | None = None
    model_reasoning_effort: str | None = None


class ProjectSettings(_Table):
    trust_level: Literal["trusted", "untrusted"] | None = None


class Settings(_Table):
    """One layer, or the effective configuration, as far as codex-core itself reads it."""

    model: str | None = None
    review_model: str | None = None
    model_provider: str | None = None
    model_providers: dict[str, ModelProviderInfo] | None = None
    approval_policy: ApprovalPolicy | None = None
    sandbox_mode: SandboxMode | None = None
    approvals_reviewer: ApprovalsReviewer | None = None
    #: Deprecated spelling of ``approvals_reviewer = "guardian_subagent"``.
    guardian_approval: bool | None = None
    cli_auth_credentials_store: Literal["file", "keyring", "auto", "ephemeral"] | None = None
    forced_chatgpt_workspace_id: str | None = None
    forced_login_method: Literal["chatgpt", "api"] | None = None
    mcp_servers: dict[str, McpServer] | None = None
    features: dict[str, bool | None] | None = None
    plugins: dict[str, PluginSettings] | None = None
    profile: str | None = None
    profiles: dict[str, Profile] | None = None
    projects: dict[str, ProjectSettings] | None = None
    shell_environment_policy: ShellEnvironmentPolicy | None = None
    model_instructions_file: str | None = None
    tools: dict[str, Any] | None = None
    sandbox_workspace_write: dict[str, Any] | None = None
    project_root_markers: list[str] | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """A value that does not fit the schema: where (key path) and serde's description."""

    loc: tuple[str | int, ...]
    message: str

    @property
    def dotted(self) -> str:
        """The key path as serde names it: up to the array holding the value, if any."""
        keys = []
        for part in self.loc:
            if not isinstance(part, str):
                break
            keys.append(part)
        return ".".join(keys)


_EXPECTED = {
    "string_type": "a string",
    "bool_type": "a boolean",
    "int_type": "i64",
    "float_type": "f64",
    "list_type": "a sequence",
    "dict_type": "a map",
    "model_type": "a map",
    "model_attributes_type": "a map",
}


def _toml_describe(value: Any) -> str:
    # TOML tables are serde maps, arrays sequences; the rest reads like JSON's wording.
    if isinstance(value, dict):
        return "map"
    return describe(value)


def _problem(error: ErrorDetails) -> Problem | None:
    # Pydantic names the tried branch of a union (``GranularApproval``, ``literal[...]``).
    loc = tuple(
        part
        for part in error["loc"]
        if not (isinstance(part, str) and (part[:1].isupper() or "[" in part))
    )
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "literal_error":
        variants = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        if not isinstance(value, str):
            return Problem(loc, f"invalid type: {_toml_describe(value)}, expected a string")
        expected = ", ".join(f"`{variant}`" for variant in variants)
        return Problem(loc, f"unknown variant `{value}`, expected one of {expected}")
    if kind in _EXPECTED:
        return Problem(loc, f"invalid type: {_toml_describe(value)}, expected {_EXPECTED[kind]}")
    if kind == "missing":
        return None
    return Problem(loc, error["msg"])


def validate(data: dict[str, Any], sections: Sections | None = None) -> list[Problem]:
    """Every value of ``data`` that does not fit the schema, one problem per key path.

    ``sections`` are the plugins' tables (``codex_config_sections``); each is checked by its
    model, like the built-in keys, and reported under its table name. An empty layer (a missing
    file, no ``-c`` flags) has nothing to check: every key is optional.
    """
    if not data:
        return []
    problems = problems_of(Settings, data)
    for name, model in (sections or {}).items():
        if name in data and name not in Settings.model_fields:
            value = data[name]
            if not isinstance(value, dict):
                problems.append(
                    Problem((name,), f"invalid type: {_toml_describe(value)}, expected a map")
                )
                continue
            problems.extend(Problem((name, *p.loc), p.message) for p in problems_of(model, value))
    return problems


def problems_of(model: type[BaseModel], data: dict[str, Any]) -> list[Problem]:
    """Every value of ``data`` that ``model`` refuses, worded as serde."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        problems: dict[tuple[str | int, ...], Problem] = {}
        for error in exc.errors(include_url=False):
            problem = _problem(error)
            if problem is None:
                continue
            # A union reports each branch; keep the first (most specific) message per key.
            if problem.loc not in problems:
                problems[problem.loc] = problem
        # A literal union also fails its table branch; prefer the variant message.
        return [
            p
            for p in problems.values()
            if not any(o.loc[: len(p.loc)] == p.loc and o is not p for o in problems.values())
        ]
    return []


# --------------------------------------------------------------------------- known keys

#: Top-level keys the official server reads (those ``config/read`` reports), plus ours.
_OFFICIAL_KEYS = frozenset(json.loads(Path(__file__).with_name("defaults.json").read_text()))
KNOWN_KEYS = _OFFICIAL_KEYS | frozenset(Settings.model_fields) | {"guardian_approval"}
#: Feature flags the official server knows: its catalog plus the legacy names it still accepts.
_FEATURES = frozenset(
    entry["name"] for entry in json.loads(Path(__file__).with_name("features.json").read_text())
) | {"collaboration_modes", "guardian_approval", "network_proxy"}
#: Keys of the named tables (``[model_providers.<id>]``, ...) that the official server reads
#: besides the ones modelled above; a key in neither is "ignored", as the reference says.
_MORE_KEYS: dict[str, frozenset[str]] = {
    "model_providers": frozenset(
        {
            "experimental_bearer_token",
            "auth",
            "gateway_oauth",
            "websocket_connect_timeout_ms",
            "supports_websockets",
            "project_id",
            "location",
        }
    ),
    "mcp_servers": frozenset(
        {
            "env_vars",
            "env_http_headers",
            "startup_timeout_ms",
            "scopes",
            "oauth_resource",
            "environment_id",
            "tools",
            "default_tools_approval_mode",
            "supports_parallel_tool_calls",
            "oauth",
        }
    ),
    "profiles": frozenset(
        {
            "model_reasoning_summary",
            "model_verbosity",
            "service_tier",
            "chatgpt_base_url",
            "model_instructions_file",
            "experimental_compact_prompt_file",
            "tools",
            "web_search",
            "features",
            "model_catalog_json",
            "personality",
            "plan_mode_reasoning_effort",
            "windows",
            "analytics",
        }
    ),
    "shell_environment_policy": frozenset({"filters"}),
}
#: Tables whose own keys are checked: name -> (model, keyed by id?).
_CHECKED_TABLES: dict[str, tuple[type[BaseModel], bool]] = {
    "model_providers": (ModelProviderInfo, True),
    "mcp_servers": (McpServer, True),
    "profiles": (Profile, True),
    "shell_environment_policy": (ShellEnvironmentPolicy, False),
}


def unknown_keys(data: Mapping[str, Any], sections: Sections | None = None) -> list[str]:
    """Dotted keys of one layer that neither the official server, codex-core nor a plugin
    reads, sorted: the reference warns "`key` is ignored" for them.

    Top-level keys are checked, and so are the keys inside ``[features]`` and the tables the
    reference types (``[model_providers.<id>]``, ``[mcp_servers.<id>]``,
    ``[profiles.<name>]``, ``[shell_environment_policy]``).
    """
    known = KNOWN_KEYS | set(sections or {})
    found = [key for key in data if key not in known]
    features = data.get("features")
    if isinstance(features, dict):
        found.extend(f"features.{name}" for name in features if name not in _FEATURES)
    for table, (model, by_id) in _CHECKED_TABLES.items():
        value = data.get(table)
        if not isinstance(value, dict):
            continue
        allowed = set(model.model_fields) | _MORE_KEYS.get(table, frozenset())
        entries = value.items() if by_id else [(None, value)]
        for entry_id, entry in entries:
            if not isinstance(entry, dict):
                continue
            prefix = table if entry_id is None else f"{table}.{entry_id}"
            found.extend(f"{prefix}.{key}" for key in entry if key not in allowed)
    return sorted(found)


def config_sections(kernel: Kernel) -> dict[str, type[BaseModel]]:
    """The tables plugins contribute through ``codex_config_sections(kernel)``.

    A plugin whose hook raises is marked failed by ``call_each`` and contributes nothing. A
    name the built-in schema owns is ignored.
    """
    found: dict[str, type[BaseModel]] = {}
    for _record, result in kernel.plugins.call_each("codex_config_sections", kernel=kernel):
        for name, model in dict(result or {}).items():
            if (
                isinstance(name, str)
                and isinstance(model, type)
                and issubclass(model, BaseModel)
                and name not in Settings.model_fields
            ):
                found.setdefault(name, model)
    return found


RequiredApproval = Literal["untrusted", "on-failure", "on-request", "granular", "never"]
WebSearchMode = Literal["disabled", "cached", "live"]


class RequirementsToml(BaseModel):
    """The keys codex-core types; the rest are reported as they are."""

    # Built on first use: most machines have no requirements.toml.
    model_config = ConfigDict(extra="allow", strict=True, defer_build=True)

    allowed_approval_policies: list[RequiredApproval] | None = None
    allowed_approvals_reviewers: list[str] | None = None
    allowed_sandbox_modes: list[SandboxMode] | None = None
    allowed_web_search_modes: list[WebSearchMode] | None = None
    enforce_residency: Literal["us"] | None = None
    features: dict[str, bool] | None = None
