"""``thread/settings/update``: change a loaded thread's settings for its next turns.

What the official TUI sends from ``/model`` (model, reasoning effort), ``/permissions`` (a
permission profile, or an approval policy with a sandbox policy) and ``/plan`` (a collaboration
mode). As the reference: the reply is ``{}``; when anything actually changed, the thread's
subscribers that use the experimental API then get ``thread/settings/updated`` with the whole
``ThreadSettings``; a request that changes nothing is answered and announces nothing. A turn
already running keeps the settings it started with.

The thread's collaboration mode follows its model and effort (changing either changes the
mode's settings too), and choosing a mode sets both from the mode's settings, as the reference
does.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from codex_core.config.permissions import BUILTIN_PROFILES, implied_mode
from codex_core.protocol.wire import to_wire
from codex_core.rpc import INVALID_REQUEST, RequestContext, RpcError
from codex_core.threads import modes

if TYPE_CHECKING:
    from codex_core.threads.methods import LoadedThread, ThreadRegistry


#: The sandbox policy each legacy sandbox mode stands for.
SANDBOXES: dict[str, dict[str, Any]] = {
    "read-only": {"type": "readOnly", "networkAccess": False},
    "workspace-write": {
        "type": "workspaceWrite",
        "writableRoots": [],
        "networkAccess": False,
        "excludeTmpdirEnvVar": False,
        "excludeSlashTmp": False,
    },
    "danger-full-access": {"type": "dangerFullAccess"},
}


def sandbox_policy(wire: dict[str, Any]) -> dict[str, Any]:
    """A client's ``SandboxPolicy`` with its keys in the reference's order (``type`` first)."""
    template = next((policy for policy in SANDBOXES.values() if policy["type"] == wire["type"]), {})
    return {**{key: wire[key] for key in template if key in wire}, **wire}


def reviewer_name(reviewer: Any) -> str:
    """The ``ApprovalsReviewer`` a thread reports: ``guardian_subagent`` is the legacy name of
    ``auto_review`` (the reference answers with the new one); unset means ``user``."""
    name = to_wire(getattr(reviewer, "root", reviewer)) if reviewer is not None else "user"
    name = str(getattr(name, "value", name))
    return "auto_review" if name == "guardian_subagent" else name


def collaboration_mode(loaded: LoadedThread) -> dict[str, Any]:
    """The thread's mode as the wire shows it: the chosen one (or Default with no
    instructions), with the thread's current model and effort."""
    settings = loaded.settings
    chosen = loaded.collaboration_mode
    if chosen is None:
        return modes.initial_mode(settings["model"], settings["reasoningEffort"])
    return {
        "mode": chosen["mode"],
        "settings": {
            "model": settings["model"],
            "reasoning_effort": settings["reasoningEffort"],
            "developer_instructions": chosen["settings"]["developer_instructions"],
        },
    }


def thread_settings(loaded: LoadedThread) -> dict[str, Any]:
    """``ThreadSettings`` (``thread/settings/updated``) in the reference's key order."""
    settings = loaded.settings
    cwd = settings["cwd"]
    return {
        "disabledPluginIds": list(settings["disabledPluginIds"]),
        "cwd": cwd,
        "environments": [{"environmentId": "local", "cwd": cwd, "runtimeWorkspaceRoots": [cwd]}],
        "approvalPolicy": settings["approvalPolicy"],
        "approvalsReviewer": settings["approvalsReviewer"],
        "sandboxPolicy": settings["sandbox"],
        "activePermissionProfile": settings["activePermissionProfile"],
        "model": settings["model"],
        "modelProvider": settings["modelProvider"],
        "serviceTier": settings["serviceTier"],
        "effort": settings["reasoningEffort"],
        "summary": loaded.reasoning_summary,
        "collaborationMode": collaboration_mode(loaded),
        "multiAgentMode": "explicitRequestOnly",
        "personality": loaded.personality,
    }


def _permission_profile(registry: ThreadRegistry, profile_id: str) -> tuple[str, dict[str, Any]]:
    """The sandbox mode a named permission profile stands for, and its
    ``activePermissionProfile``; refused in the reference's words when unknown."""
    if profile_id.startswith(":"):
        mode = BUILTIN_PROFILES.get(profile_id)
        if mode is None:
            raise RpcError(
                INVALID_REQUEST,
                "failed to load configuration: default_permissions refers to unknown built-in "
                f"profile `{profile_id}`",
            )
        return mode, {"id": profile_id, "extends": None}
    table = registry.kernel.config.get("permissions")
    if not isinstance(table, dict) or not table:
        raise RpcError(
            INVALID_REQUEST,
            "failed to load configuration: default_permissions requires a `[permissions]` table",
        )
    profile = table.get(profile_id)
    if not isinstance(profile, dict):
        raise RpcError(
            INVALID_REQUEST,
            f"failed to load configuration: default_permissions refers to undefined profile "
            f"`{profile_id}`",
        )
    extends = profile.get("extends") if isinstance(profile.get("extends"), str) else None
    return implied_mode(profile), {"id": profile_id, "extends": extends}


def choose_mode(loaded: LoadedThread, wire: dict[str, Any]) -> None:
    """Switch the thread to a collaboration mode (wire data): its model and effort become the
    thread's."""
    chosen = loaded.collaboration_mode = modes.chosen_mode(wire)
    settings, thread = loaded.settings, loaded.thread
    settings["model"] = thread["model"] = chosen["settings"]["model"]
    effort = chosen["settings"]["reasoning_effort"]
    settings["reasoningEffort"] = thread["reasoningEffort"] = effort


def apply(registry: ThreadRegistry, loaded: LoadedThread, params: Any) -> None:
    """Apply the settings of a ``thread/settings/update`` (or ``turn/start``) request that
    are set; refuses the whole request, changing nothing, when one of them is invalid."""
    if params.permissions is not None and params.sandbox_policy is not None:
        raise RpcError(INVALID_REQUEST, "`permissions` cannot be combined with `sandboxPolicy`")
    profile = None
    if params.permissions is not None:
        profile = _permission_profile(registry, params.permissions)
    settings, thread = loaded.settings, loaded.thread
    if params.model:
        settings["model"] = thread["model"] = params.model
    if params.effort is not None:
        effort = to_wire(params.effort)
        settings["reasoningEffort"] = thread["reasoningEffort"] = effort
    if params.collaboration_mode is not None:  # over model and effort, as on turn/start
        choose_mode(loaded, to_wire(params.collaboration_mode))
    if params.disabled_plugin_ids is not None:
        settings["disabledPluginIds"] = list(params.disabled_plugin_ids)
    if "service_tier" in params.model_fields_set:  # null (not omitted) means the default
        settings["serviceTier"] = params.service_tier or "default"
    if params.summary is not None:  # (saved and reported, as the reference)
        loaded.reasoning_summary = to_wire(params.summary)
    if params.personality is not None:
        loaded.personality = to_wire(params.personality)
    if params.cwd:
        cwd = os.path.abspath(params.cwd)
        settings["cwd"] = thread["cwd"] = cwd
        settings["runtimeWorkspaceRoots"] = [cwd]
        thread["environments"] = [
            {"environmentId": "local", "cwd": cwd, "runtimeWorkspaceRoots": [cwd]}
        ]
    if params.approval_policy is not None:
        settings["approvalPolicy"] = to_wire(params.approval_policy)
    if params.approvals_reviewer is not None:
        settings["approvalsReviewer"] = reviewer_name(params.approvals_reviewer)
    if params.sandbox_policy is not None:
        settings["sandbox"] = sandbox_policy(to_wire(params.sandbox_policy))
        settings["activePermissionProfile"] = None  # a policy, not a profile, chose it
    if profile is not None:
        sandbox_mode, active = profile
        settings["sandbox"] = dict(SANDBOXES[sandbox_mode])
        settings["activePermissionProfile"] = active


async def update(registry: ThreadRegistry, ctx: RequestContext, params: Any) -> dict[str, Any]:
    thread_id = registry.thread_id(params.thread_id)
    loaded = registry.threads.get(thread_id)
    if loaded is None:
        raise RpcError(INVALID_REQUEST, f"thread not found: {thread_id}")
    before = thread_settings(loaded)
    apply(registry, loaded, params)
    after = thread_settings(loaded)
    if after != before:
        notice = {"threadId": thread_id, "threadSettings": after}
        ctx.after_reply.append(lambda: _announce(loaded, notice))
    return {}


def _announce(loaded: LoadedThread, notice: dict[str, Any]) -> None:
    """``thread/settings/updated`` goes to the subscribers that use the experimental API,
    the only ones the reference tells."""
    for connection in list(loaded.subscribers):
        if connection.experimental_api:
            connection.notify("thread/settings/updated", notice)
