"""Approval reviewers: who answers when ``approval_policy`` says an action needs a decision.

The built-in ``user`` reviewer sends the request (``item/commandExecution/requestApproval``,
``item/fileChange/requestApproval``) to the connections subscribed to the thread and returns
the first answer; see ``codex_core.threads.tools.ask_subscribers`` for the details (resolved
notifications, disconnects, interrupts). Other reviewers come from plugins through the
``codex_approval_reviewers`` hook and are chosen by ``approvals_reviewer``; a configured
reviewer that no plugin provides (its plugin disabled or not installed) is reported to clients
as a ``configWarning``, and the ``user`` reviewer answers in its place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codex_core.hookspecs import ApprovalRequest, hookimpl

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

__all__ = [
    "UserReviewer",
    "active_turn",
    "codex_approval_reviewers",
    "codex_config_loaded",
]


class UserReviewer:
    """Asks the person at the client: the thread's subscribers get the server request."""

    name = "user"

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    async def review(self, request: ApprovalRequest) -> dict[str, Any]:
        from codex_core.threads.tools import ask_subscribers

        turn = active_turn(self.kernel, request)
        if turn is None:
            return {"decision": "cancel"}
        return await ask_subscribers(turn, request.method, request.params)


def active_turn(kernel: Kernel, request: ApprovalRequest) -> Any:
    """The running turn a request belongs to, or ``None`` when that turn is over.

    Every reviewer needs it (to reach the thread's subscribers, its cwd, its history); a
    request for a turn that has ended is answered ``cancel``.
    """
    registry = kernel.services.get("threads")
    loaded = registry.threads.get(request.thread_id) if registry is not None else None
    turn = loaded.active if loaded is not None else None
    return turn if turn is not None and turn.id == request.turn_id else None


@hookimpl
def codex_approval_reviewers(kernel: Kernel) -> list[UserReviewer]:
    return [UserReviewer(kernel)]


@hookimpl
def codex_config_loaded(kernel: Kernel) -> None:
    """Warn when ``approvals_reviewer`` names a reviewer that no active plugin provides."""
    name = kernel.config.approvals_reviewer
    if name is None or name in kernel.approval_reviewers:
        return
    kernel.config.warnings.append(
        {
            "summary": f'`approvals_reviewer = "{name}"` names a reviewer that no active plugin '
            "provides; approval requests go to the user instead.",
            "details": "Install or enable the plugin that provides it (`guardian_subagent` and "
            '`auto_review`: codex-plugin-guardian), or set `approvals_reviewer = "user"`. Run '
            "`codex-app-server plugins list` for every plugin's state.",
            "path": None,
            "range": None,
        }
    )
