"""``thread/approveGuardianDeniedAction``: the user overrides a denial of the guardian.

The client sends back the denial it was shown (a core ``GuardianAssessmentEvent``). As in the
reference, nothing runs there and then: the thread's history gets a developer message saying
the user approved that exact action (the model reads it in its next request, in the running
turn or the next one) and the model decides whether to try again. Its retry is still reviewed;
the guardian, which never sees the thread's history, is told by us that the person approved
that exact action, for one review. A status other than ``denied`` is ignored (reply ``{}``),
as the reference does.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from codex_core.rpc import INVALID_REQUEST, RequestContext, RpcError
from codex_plugin_guardian.event import EventError, check_event
from codex_plugin_guardian.reviewer import NAME, GuardianReviewer

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

__all__ = ["ApproveDeniedAction", "approval_message"]

log = logging.getLogger(__name__)


def approval_message(action: dict[str, Any]) -> dict[str, Any]:
    """The developer message the model reads: which action the user approved, and its limits."""
    approved = json.dumps({"action": action, "outcome": "allowed"}, indent=2)
    text = (
        "The user overrode the automatic reviewer: an action it had rejected is now approved.\n\n"
        "This approval covers exactly that action, in the context it was requested in; it "
        "does not cover similar actions with other commands, files or arguments.\n\n"
        f"Approved action:\n{approved}"
    )
    return {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": text}],
    }


class ApproveDeniedAction:
    """The RPC handler; the reviewer keeps the overrides it must tell the guardian about."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    async def __call__(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        try:
            event = check_event(params.event)
        except EventError as exc:
            raise RpcError(INVALID_REQUEST, f"invalid Guardian denial event: {exc}") from None
        threads = self.kernel.services.get("threads")
        if threads is None:
            raise RpcError(INVALID_REQUEST, "threads are not available")
        thread_id = threads.thread_id(params.thread_id)
        loaded = threads.threads.get(thread_id)
        if loaded is None:
            raise RpcError(INVALID_REQUEST, f"thread not found: {thread_id}")
        if event["status"] != "denied":
            log.warning("ignoring an approval of review %s, which is not denied", event["id"])
            return {}
        reviewer = self.kernel.approval_reviewers.get(NAME)
        if isinstance(reviewer, GuardianReviewer):
            reviewer.user_approved(thread_id, event["action"])
        entry = approval_message(event["action"])
        loaded.history.append(entry)
        if loaded.writer is not None:
            loaded.writer.append("response_item", entry)
        return {}
