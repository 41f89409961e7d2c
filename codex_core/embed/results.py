"""What ``thread.run(...)`` returns, and how a host's approval answer becomes a wire result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    from codex_core.protocol.models import (
        CommandExecutionRequestApprovalParams,
        FileChangeRequestApprovalParams,
        PermissionsRequestApprovalParams,
        ThreadItem,
        ThreadTokenUsage,
        Turn,
    )

    #: What ``on_approval`` is asked about: the server request's params, as generated models.
    ApprovalRequest: TypeAlias = (
        CommandExecutionRequestApprovalParams
        | FileChangeRequestApprovalParams
        | PermissionsRequestApprovalParams
    )

#: The answers every approval request understands.
Decision: TypeAlias = Literal["accept", "acceptForSession", "decline", "cancel"]

#: The server requests answered by ``on_approval``, with their params model.
APPROVAL_METHODS = {
    "item/commandExecution/requestApproval": "CommandExecutionRequestApprovalParams",
    "item/fileChange/requestApproval": "FileChangeRequestApprovalParams",
    "item/permissions/requestApproval": "PermissionsRequestApprovalParams",
}


@dataclass(frozen=True, slots=True)
class RunResult:
    """One finished turn: what the agent said last, every item it produced, the token usage."""

    thread_id: str
    turn: Turn
    #: The text of the turn's last agent message ("" when it sent none).
    text: str
    #: Every item of the turn, in completion order (user message, commands, messages, ...).
    items: list[ThreadItem] = field(default_factory=list)
    #: The thread's token usage after the turn (None when the model reported none).
    usage: ThreadTokenUsage | None = None


def approval_result(request: ApprovalRequest, answer: Decision | dict[str, Any]) -> Any:
    """The wire result of an approval request from what the host's callback returned.

    A dict is sent as it is (a decision with an execpolicy amendment, say). A decision string
    becomes ``{"decision": ...}``; for a permissions request, which has no decision, "accept"
    grants what was asked for this turn, "acceptForSession" for the session, anything else
    grants nothing.
    """
    if isinstance(answer, dict):
        return answer
    if answer not in ("accept", "acceptForSession", "decline", "cancel"):
        raise ValueError(
            f"on_approval returned {answer!r}: return 'accept', 'acceptForSession', "
            "'decline', 'cancel' or a dict with the wire result"
        )
    from codex_core.protocol.models import PermissionsRequestApprovalParams

    if not isinstance(request, PermissionsRequestApprovalParams):
        return {"decision": answer}
    if answer in ("accept", "acceptForSession"):
        granted = request.permissions.model_dump(mode="json", by_alias=True, exclude_none=True)
        return {"permissions": granted, "scope": "turn" if answer == "accept" else "session"}
    return {"permissions": {}}
