"""Thread goals: ``thread/goal/get|set|clear`` and their notifications (the TUI's ``/goal``).

A goal is an objective the user gives a thread, with a status (``active``, ``paused``,
``blocked``, ``usageLimited``, ``budgetLimited``, ``complete``), an optional token budget and
what was used so far. As the reference: ``thread/goal/set`` with an ``objective`` makes a goal
(``active`` unless a status is given) when there is none, and otherwise changes only what the
request names, keeping when it was created; ``thread/goal/clear`` answers whether there was
one. Subscribers (and the caller) hear ``thread/goal/updated`` / ``thread/goal/cleared`` after
the reply, and a client resuming a thread with a goal gets ``thread/goal/updated``.

Goals persist in ``$CODEX_HOME/thread_goals.jsonl``, one line per change (``goal: null`` for a
clear), the last line of a thread winning, so a resumed thread keeps its goal; setting a goal
also writes the reference's ``thread_goal_updated`` event into the thread's rollout (writing
the rollout out first, as the reference does), and a thread the reference wrote gets its goal
from its last such event. The reference keeps its goals in a SQLite database of its own
(``goals_1.sqlite``), which codex-core neither reads nor writes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_core.protocol.wire import to_wire
from codex_core.rpc import INVALID_REQUEST, RequestContext, RpcError
from codex_core.threads import rollout

if TYPE_CHECKING:
    from codex_core.rpc.connection import Connection
    from codex_core.threads.methods import LoadedThread, ThreadRegistry

FILE = "thread_goals.jsonl"
#: The rollout event the reference records a goal change with.
ROLLOUT_EVENT = "thread_goal_updated"


def load(codex_home: Path) -> dict[str, dict[str, Any] | None]:
    """Every thread's goal as last saved (None: cleared)."""
    goals: dict[str, dict[str, Any] | None] = {}
    path = codex_home / FILE
    if not path.is_file():
        return goals
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue  # a torn last line
        if isinstance(line, dict) and isinstance(line.get("threadId"), str):
            goal = line.get("goal")
            goals[line["threadId"]] = goal if isinstance(goal, dict) else None
    return goals


def save(codex_home: Path, thread_id: str, goal: dict[str, Any] | None) -> None:
    codex_home.mkdir(parents=True, exist_ok=True)
    with (codex_home / FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"threadId": thread_id, "goal": goal}, separators=(",", ":")))
        handle.write("\n")


def from_rollout(path: Path) -> dict[str, Any] | None:
    """The goal of the last ``thread_goal_updated`` event in a rollout (the reference's)."""
    goal = None
    with path.open(encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            if ROLLOUT_EVENT not in raw:
                continue
            try:
                payload = json.loads(raw).get("payload") or {}
            except (ValueError, AttributeError):
                continue
            if payload.get("type") == ROLLOUT_EVENT and isinstance(payload.get("goal"), dict):
                goal = {"tokenBudget": None, **payload["goal"]}
    return goal


class Goals:
    """The goal methods over a ``ThreadRegistry``'s threads."""

    def __init__(self, registry: ThreadRegistry) -> None:
        self.registry = registry

    @property
    def home(self) -> Path:
        return self.registry.home

    def _known(self, raw_id: str) -> tuple[str, LoadedThread | None]:
        """A thread that is loaded or on disk, else the reference's refusal."""
        thread_id = self.registry.thread_id(raw_id)
        loaded = self.registry.threads.get(thread_id)
        if loaded is None and rollout.find_rollout(self.home, thread_id) is None:
            raise RpcError(INVALID_REQUEST, f"thread not found: {thread_id}")
        return thread_id, loaded

    def current(self, thread_id: str) -> dict[str, Any] | None:
        saved = load(self.home)
        if thread_id in saved:
            return saved[thread_id]
        path = rollout.find_rollout(self.home, thread_id)
        return from_rollout(path) if path is not None else None

    def _announce(
        self, ctx: RequestContext, loaded: LoadedThread | None, method: str, params: Any
    ) -> None:
        """Tell the caller and the thread's subscribers, after the reply."""
        audience: set[Connection] = {ctx.connection}
        if loaded is not None:
            audience |= loaded.subscribers

        def send() -> None:
            for connection in audience:
                connection.notify(method, params)

        ctx.after_reply.append(send)

    async def get(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        thread_id, _ = self._known(params.thread_id)
        return {"goal": self.current(thread_id)}

    async def set(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        thread_id, loaded = self._known(params.thread_id)
        objective = params.objective
        if objective is not None:
            objective = objective.strip()
            if not objective:
                raise RpcError(INVALID_REQUEST, "goal objective must not be empty")
        if params.token_budget is not None and params.token_budget <= 0:
            raise RpcError(INVALID_REQUEST, "goal budgets must be positive when provided")
        status = to_wire(params.status) if params.status is not None else None
        now = int(time.time())
        goal = self.current(thread_id)
        if goal is None:
            if objective is None:
                raise RpcError(
                    INVALID_REQUEST, f"cannot update goal for thread {thread_id}: no goal exists"
                )
            goal = {"threadId": thread_id, "objective": objective, "status": status or "active",
                    "tokenBudget": params.token_budget, "tokensUsed": 0, "timeUsedSeconds": 0,
                    "createdAt": now, "updatedAt": now}  # fmt: skip
        else:
            goal = {**goal, "updatedAt": now}
            if objective is not None:
                goal["objective"] = objective
            if status is not None:
                goal["status"] = status
            if params.token_budget is not None:
                goal["tokenBudget"] = params.token_budget
        save(self.home, thread_id, goal)
        self._record(loaded, goal)
        self._announce(ctx, loaded, "thread/goal/updated",
                       {"threadId": thread_id, "turnId": None, "goal": goal})  # fmt: skip
        return {"goal": goal}

    def _record(self, loaded: LoadedThread | None, goal: dict[str, Any]) -> None:
        """The reference's rollout event (a budget only when there is one)."""
        if loaded is None or loaded.thread["ephemeral"]:
            return
        self.registry.materialize(loaded)
        if loaded.writer is not None:
            stored = {key: value for key, value in goal.items()
                      if key != "tokenBudget" or value is not None}  # fmt: skip
            loaded.writer.event(
                {"type": ROLLOUT_EVENT, "threadId": goal["threadId"], "goal": stored}
            )

    async def clear(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        thread_id, loaded = self._known(params.thread_id)
        if self.current(thread_id) is None:
            return {"cleared": False}
        save(self.home, thread_id, None)
        self._announce(ctx, loaded, "thread/goal/cleared", {"threadId": thread_id})
        return {"cleared": True}

    def on_resume(self, ctx: RequestContext, thread_id: str) -> None:
        """A client resuming a thread with a goal hears it (after the reply)."""
        goal = self.current(thread_id)
        if goal is not None:
            ctx.notify_after_reply(
                "thread/goal/updated", {"threadId": thread_id, "turnId": None, "goal": goal}
            )
