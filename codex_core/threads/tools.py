"""What a tool sees while it runs: the ``context`` of ``Tool.call`` and the approval flow.

``approval_policy`` decides *when* something needs a decision (``needs_approval``); the
thread's ``approvalsReviewer`` decides *who* answers (``kernel.approval_reviewers``, the
built-in ``user`` reviewer asks the thread's subscribers). A tool calls, in order::

    verdict = context.needs_approval(escalated=..., safe=..., key=...)
    decision = await context.request_approval(method, params, item)   # when "ask"
    context.approval_finished()          # status back to active, before running
    context.abort_turn()                 # on "cancel": the turn ends as interrupted
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import anyio

from codex_core.hookspecs import ApprovalRequest
from codex_core.rpc.errors import ClientErrorResponse, RequestCancelled, RequestTimeout

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.rpc.connection import Connection
    from codex_core.threads.turns import Turn

log = logging.getLogger(__name__)

Verdict = Literal["run", "ask", "reject"]
WAITING_ON_APPROVAL = "waitingOnApproval"


class TurnAborted(Exception):
    """Raised by a tool when the user cancelled: the turn ends as ``interrupted``."""


def approval_verdict(
    policy: Any,
    sandbox: str,
    *,
    escalated: bool,
    safe: bool,
    approved_for_session: bool = False,
    confined: bool = False,
) -> Verdict:
    """When an action needs a decision, from ``approval_policy`` and the sandbox mode.

    ``escalated``: the model asked to run outside the sandbox. ``safe``: the action only reads
    (a known read-only command), so a read-only sandbox would allow it. ``confined``: the tool
    runs the action inside an OS sandbox that enforces the mode; otherwise the read-only mode is
    enforced by asking before anything that may write.
    """
    if approved_for_session:
        return "run"
    name = policy if isinstance(policy, str) else "on-request"  # granular: like on-request
    blocked = sandbox == "read-only" and not safe and not confined
    if name == "never":
        return "reject" if escalated or blocked else "run"
    if name == "untrusted":
        return "run" if safe and not escalated else "ask"
    if sandbox == "danger-full-access":
        return "run"
    return "ask" if escalated or blocked else "run"


class ToolContext:
    """One function call of the model, as a ``Tool`` sees it."""

    def __init__(self, turn: Turn, call_id: str) -> None:
        self.turn = turn
        self.call_id = call_id
        #: This call set ``waitingOnApproval``; ``_asked``: it asked a reviewer at all.
        self._waiting = False
        self._asked = False

    # ------------------------------------------------------------------ where we are

    @property
    def kernel(self) -> Kernel:
        return self.turn.registry.kernel

    @property
    def config(self) -> Any:
        return self.kernel.config

    @property
    def thread_id(self) -> str:
        return self.turn.thread_id

    @property
    def turn_id(self) -> str:
        return self.turn.id

    @property
    def cwd(self) -> str:
        return str(self.turn.settings["cwd"])

    @property
    def approval_policy(self) -> Any:
        return self.turn.settings["approvalPolicy"]

    @property
    def sandbox_mode(self) -> str:
        kind = self.turn.settings["sandbox"].get("type")
        return {"readOnly": "read-only", "workspaceWrite": "workspace-write"}.get(
            kind, "danger-full-access" if kind == "dangerFullAccess" else "read-only"
        )

    # ------------------------------------------------------------------ items

    def item_started(self, item: dict[str, Any]) -> None:
        self.turn.item_started(item)

    def item_completed(self, item: dict[str, Any]) -> None:
        self.turn.item_completed(item)

    def delta(self, method: str, item_id: str, **extra: Any) -> None:
        self.turn.delta(method, item_id, **extra)

    def emit(self, method: str, params: dict[str, Any]) -> None:
        self.turn.emit(method, params)

    # ------------------------------------------------------------------ files

    def remember_file(self, path: str) -> None:
        """Before writing ``path``: keep what the turn started from (for the turn's diff)."""
        self.turn.turn_diff().remember(path)

    def file_moved(self, old: str, new: str) -> None:
        self.turn.turn_diff().moved(old, new)

    def files_changed(self) -> None:
        """After writing: ``turn/diff/updated`` with the turn's unified diff so far."""
        self.turn.files_changed()

    # ------------------------------------------------------------------ approvals

    def needs_approval(
        self, *, escalated: bool, safe: bool, key: str | None = None, confined: bool = False
    ) -> Verdict:
        return approval_verdict(
            self.approval_policy,
            self.sandbox_mode,
            escalated=escalated,
            safe=safe,
            approved_for_session=self.approved_for_session(key),
            confined=confined,
        )

    def approved_for_session(self, key: str | None) -> bool:
        return key is not None and key in self.turn.loaded.session_approvals

    def approve_for_session(self, key: str) -> None:
        self.turn.loaded.session_approvals.add(key)

    async def request_approval(
        self, method: str, params: dict[str, Any], item: dict[str, Any]
    ) -> dict[str, Any]:
        """Ask the thread's reviewer; returns its answer (``{"decision": ...}``).

        Sets the thread's ``waitingOnApproval`` flag, then starts ``item`` (the reference's
        order), then asks. The flag stays until ``approval_finished``. A reviewer that answers
        by itself (``automatic = True``, the guardian) sets no flag: nobody waits on the person,
        as with the reference; should it ask the person after all, it sets the flag itself.
        """
        reviewer = self.reviewer()
        self._asked = True
        if not getattr(reviewer, "automatic", False):
            self._waiting = True
            self.turn.registry.set_status(
                self.turn.loaded, {"type": "active", "activeFlags": [WAITING_ON_APPROVAL]}
            )
        if item["id"] not in self.turn.open_items:
            self.item_started(item)
        request = ApprovalRequest(method, self.thread_id, self.turn_id, item["id"], params)
        answer: dict[str, Any] = await reviewer.review(request)
        return answer

    def reviewer(self) -> Any:
        name = str(self.turn.settings.get("approvalsReviewer") or "user")
        reviewers = self.kernel.approval_reviewers
        reviewer = reviewers.get(name) or reviewers.get("user")
        if reviewer is None:
            from codex_core.approvals import UserReviewer

            reviewer = UserReviewer(self.kernel)
        return reviewer

    def approval_finished(self) -> None:
        """The decision is in: the thread is no longer waiting on approval (whether this
        context or the reviewer set the flag)."""
        flags = (self.turn.loaded.thread.get("status") or {}).get("activeFlags") or []
        if self._waiting or (self._asked and WAITING_ON_APPROVAL in flags):
            self._waiting = False
            self.turn.registry.set_status(self.turn.loaded, {"type": "active", "activeFlags": []})

    def abort_turn(self) -> NoReturn:
        """End the turn as interrupted (the user answered ``cancel``)."""
        self.approval_finished()
        raise TurnAborted("aborted by user")


# ---------------------------------------------------------------------- server requests


async def ask_subscribers(turn: Turn, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """Send a server request to every subscriber of the turn's thread; the first answer wins.

    Everyone asked gets ``serverRequest/resolved`` once it is decided. A subscriber that leaves
    counts as ``cancel``, an error answer as ``decline``; with nobody left to ask, ``cancel``.
    When the turn is interrupted meanwhile, ``serverRequest/resolved`` goes out after
    ``turn/completed``, as the reference sends it.
    """
    loaded = turn.loaded
    asked: list[tuple[Connection, Any]] = []
    answers: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    subscribers = list(loaded.subscribers)

    async def ask(connection: Connection, tasks: Any) -> None:
        try:
            result = await connection.request(
                method, params, on_id=lambda rid: asked.append((connection, rid))
            )
        except (RequestCancelled, RequestTimeout, ClientErrorResponse) as exc:
            failures.append(exc)
            if len(failures) == len(subscribers):
                tasks.cancel_scope.cancel()
            return
        answers.append(result if isinstance(result, dict) else {})
        tasks.cancel_scope.cancel()

    try:
        if subscribers:
            async with anyio.create_task_group() as tasks:
                for connection in subscribers:
                    tasks.start_soon(ask, connection, tasks)
    except anyio.get_cancelled_exc_class():
        turn.unresolved.extend(asked)
        raise
    resolve(turn, asked)
    if answers:
        return answers[0]
    if failures and all(isinstance(f, ClientErrorResponse) for f in failures):
        return {"decision": "decline"}
    return {"decision": "cancel"}


def resolve(turn: Turn, asked: list[tuple[Connection, Any]]) -> None:
    for connection, request_id in asked:
        connection.notify(
            "serverRequest/resolved", {"threadId": turn.thread_id, "requestId": request_id}
        )


def now_ms() -> int:
    return time.time_ns() // 1_000_000
