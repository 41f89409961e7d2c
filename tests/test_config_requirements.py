"""``/etc/codex/requirements.toml``: ``configRequirements/read`` and the values it constrains.

Expected texts and shapes were captured from the official server (0.169) with the same files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import test_config_layers

from codex_core.config import load_config
from codex_core.testing.pytest_plugin import StdioServer

system_dir = test_config_layers.system_dir  # the fixture standing in for /etc/codex

#: ``ConfigRequirements`` with nothing set, as the reference answers once any source exists.
EMPTY = {
    "modelProvider": None,
    "modelProviders": None,
    "allowedLoginMethods": ["api", "chatgpt"],
    "cliAuthCredentialsStore": None,
    "chatgptBaseUrl": None,
    "additionalDeveloperInstructions": None,
    "allowedApprovalPolicies": None,
    "allowedApprovalsReviewers": None,
    "allowedSandboxModes": None,
    "allowedWindowsSandboxImplementations": None,
    "allowedPermissionProfiles": None,
    "defaultPermissions": None,
    "allowedWebSearchModes": None,
    "allowManagedHooksOnly": None,
    "allowBrowserAndComputerUse": None,
    "allowAppshots": None,
    "allowRemoteControl": None,
    "computerUse": None,
    "browserUse": None,
    "inAppBrowser": None,
    "featureRequirements": None,
    "hooks": None,
    "enforceResidency": None,
    "network": None,
    "application": None,
    "autoReview": None,
    "models": None,
    "sqliteHome": None,
    "logDir": None,
    "modelCatalogJson": None,
    "checkForUpdateOnStartup": None,
    "allowLoginShell": None,
    "feedback": None,
    "otel": None,
}

REQUIREMENTS = """\
allowed_approval_policies = ["never", "on-request"]
allowed_sandbox_modes = ["read-only"]
allowed_web_search_modes = ["cached"]
enforce_residency = "us"
[features]
memories = false
"""


def test_no_requirements_is_null(codex_home: Path, system_dir: Path, start_server: Any) -> None:
    # The reference reads requirements from the system folder only.
    (codex_home / "requirements.toml").write_text('allowed_sandbox_modes = ["read-only"]\n')
    server: StdioServer = start_server()
    server.initialize()
    assert server.result("configRequirements/read") == {
        "supportsIndependentSpeedModes": True,
        "requirements": None,
    }


def test_requirements_are_reported_and_enforced(
    codex_home: Path, system_dir: Path, start_server: Any
) -> None:
    path = system_dir / "requirements.toml"
    path.write_text(REQUIREMENTS)
    (codex_home / "config.toml").write_text(
        'approval_policy = "on-request"\nsandbox_mode = "danger-full-access"\n'
        'web_search = "live"\n[features]\nmemories = true\n'
    )
    server: StdioServer = start_server()
    server.initialize()
    sandbox = server.wait_notification("configWarning")["params"]
    web = server.wait_notification("configWarning")["params"]
    assert sandbox == {
        "summary": "Configured value for `permission_profile` is disallowed by requirements; "
        "falling back to required value Managed { file_system: Restricted { entries: "
        "[FileSystemSandboxEntry { path: Special { value: Root }, access: Read, "
        "missing_path_behavior: None }], glob_scan_max_depth: None }, network: Restricted }. "
        "Details: invalid value for `sandbox_mode`: `DangerFullAccess` is not in the allowed "
        f"set [ReadOnly] (set by {path})",
        "details": None,
    }
    assert web == {
        "summary": "Configured value for `web_search_mode` is disallowed by requirements; "
        "falling back to required value Cached. Details: invalid value for `web_search_mode`: "
        f"`Live` is not in the allowed set [Disabled, Cached] (set by {path})",
        "details": None,
    }
    assert server.result("configRequirements/read") == {
        "supportsIndependentSpeedModes": True,
        "requirements": {
            **EMPTY,
            "allowedApprovalPolicies": ["never", "on-request"],
            "allowedSandboxModes": ["read-only"],
            "allowedWebSearchModes": ["cached", "disabled"],
            "featureRequirements": {"memories": False},
            "enforceResidency": "us",
        },
    }
    # config/read shows the files as they are, except that required features are pinned.
    read = server.result("config/read", {})
    assert read["config"]["sandbox_mode"] == "danger-full-access"
    assert read["config"]["web_search"] == "live"
    assert read["config"]["features"]["memories"] is False
    # What runs uses the allowed value.
    thread = server.result("thread/start", {})
    assert thread["approvalPolicy"] == "on-request"
    assert thread["sandbox"]["type"] == "readOnly"


def test_a_refused_policy_falls_back_to_the_first_allowed(
    codex_home: Path, system_dir: Path, start_server: Any
) -> None:
    path = system_dir / "requirements.toml"
    path.write_text('allowed_approval_policies = ["on-request"]\n')
    server: StdioServer = start_server("-c", 'approval_policy="never"')
    server.initialize()
    assert server.wait_notification("configWarning")["params"] == {
        "summary": "Configured value for `approval_policy` is disallowed by requirements; "
        "falling back to required value OnRequest. Details: invalid value for "
        "`approval_policy`: `Never` is not in the allowed set [OnRequest] "
        f"(set by {path})",
        "details": None,
    }
    assert server.result("thread/start", {})["approvalPolicy"] == "on-request"
    assert server.result("config/read", {})["config"]["approval_policy"] == "never"


def test_legacy_managed_values_become_requirements(
    codex_home: Path, system_dir: Path, start_server: Any
) -> None:
    (system_dir / "managed_config.toml").write_text(
        'approval_policy = "never"\nsandbox_mode = "read-only"\n'
    )
    server: StdioServer = start_server()
    server.initialize()
    assert server.result("configRequirements/read")["requirements"] == {
        **EMPTY,
        "allowedApprovalPolicies": ["never"],
        "allowedSandboxModes": ["read-only"],
    }


def test_a_broken_requirements_file_warns(
    codex_home: Path, system_dir: Path, start_server: Any
) -> None:
    path = system_dir / "requirements.toml"
    path.write_text('allowed_approval_policies = ["never"\n')
    server: StdioServer = start_server()
    server.initialize()
    details = (
        f"failed to parse requirements layer {path}: TOML parse error at line 1, column 37\n"
        "  |\n"
        '1 | allowed_approval_policies = ["never"\n'
        "  |                                     ^\n"
        "unclosed array, expected `]`\n"
    )
    assert server.wait_notification("configWarning")["params"] == {
        "summary": "Invalid configuration; using defaults.",
        "details": details,
    }
    assert server.error("configRequirements/read") == {
        "code": -32603,
        "message": f"failed to read configuration layers: {details}",
    }


def test_invalid_requirements_stop_the_cli(
    codex_home: Path, system_dir: Path, codex_cli: Any
) -> None:
    path = system_dir / "requirements.toml"
    path.write_text('allowed_approval_policies = ["bogus"]\n')
    done = codex_cli()
    assert done.returncode == 2
    assert done.stderr == (
        f"codex-app-server: failed to parse requirements layer {path}: unknown variant "
        "`bogus`, expected one of `untrusted`, `on-failure`, `on-request`, `granular`, "
        "`never`\nin `allowed_approval_policies`\n\n"
    )
    path.write_text('allowed_sandbox_modes = ["danger-full-access"]\n')
    done = codex_cli()
    assert done.returncode == 2
    assert done.stderr == (
        "codex-app-server: invalid value for `allowed_sandbox_modes`: `[DangerFullAccess]` is "
        "not in the allowed set must include 'read-only' to allow any PermissionProfile "
        f"(set by {path})\n"
    )


def test_unset_values_keep_an_allowed_default(
    codex_home: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    monkeypatch.setenv("CODEX_CORE_SYSTEM_CONFIG_DIR", str(etc))
    requirements = etc / "requirements.toml"
    requirements.write_text(
        'allowed_approval_policies = ["never", "on-request"]\n'
        'allowed_sandbox_modes = ["workspace-write", "read-only"]\n'
    )
    loaded = load_config(codex_home)
    assert (loaded.get("approval_policy"), loaded.get("sandbox_mode")) == (None, None)
    assert loaded.warnings == []
    requirements.write_text('allowed_approval_policies = ["never"]\n')
    loaded = load_config(codex_home)
    assert loaded.get("approval_policy") == "never"  # the default is not allowed: silently
    assert loaded.settings.approval_policy == "never"
    assert loaded.warnings == []
