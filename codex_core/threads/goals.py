"""Thread goals: ``thread/goal/get|set|clear`` and their notifications (the TUI's ``/goal``).

A goal is an objective the user gives a thread, with a status (``active``, ``paused``,
``blocked``, ``usageLimited``, ``budgetLimited``, ``complete``), an optional token budget and
what was used so far. As the reference: ``thread/goal/set`` with an ``objective`` makes a goal
(``active`` unless a status is given) when there is none, and otherwise changes only what the
request names, keeping when it was created; ``thread/goal/clear`` answers whether there was
one. Subscribers (and the caller) hear ``thread/goal/updated`` / ``thread/goal/cleared`` after
the reply; ``thread/resume`` tells every subscriber the goal again (or that there is none).

The goal runtime: while a loaded thread's goal is ``active`` and the thread is idle, a goal
turn pursues it (the model reads a continuation prompt instead of a user's message); each
response's tokens and the turn's time count against the goal, the budget stops it
(``budgetLimited``), a failed goal turn blocks it, an interrupt pauses the pursuit without
changing it, and the model can read and finish it with ``get_goal`` / ``create_goal`` /
``update_goal``.

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
from codex_core.threads import journal

if TYPE_CHECKING:
    from codex_core.rpc.connection import Connection
    from codex_core.threads.methods import LoadedThread, ThreadRegistry
    from codex_core.threads.turns import Turn

FILE = "thread_goals.jsonl"
#: The rollout event the reference records a goal change with.
ROLLOUT_EVENT = "thread_goal_updated"


def load(codex_home: Path) -> dict[str, dict[str, Any] | None]:
    """Every thread's goal as last saved (None: cleared)."""
    goals: dict[str, dict[str, Any] | None] = {}
    for line in journal.records(codex_home / FILE):
        if isinstance(line.get("threadId"), str):
            goal = line.get("goal")
            goals[line["threadId"]] = goal if isinstance(goal, dict) else None
    return goals


def save(codex_home: Path, thread_id: str, goal: dict[str, Any] | None) -> None:
    journal.append(codex_home / FILE, {"threadId": thread_id, "goal": goal})


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


#: The statuses the model may give a goal with ``update_goal`` (the others are the user's or
#: the server's to set).
MODEL_STATUSES = ("paused", "complete", "blocked")

TOOLS: tuple[dict[str, Any], ...] = (
    {"type": "function", "name": "get_goal", "strict": False,
     "description": "Read this thread's goal: its objective, status, token budget and the "
                    "tokens and time used so far.",
     "parameters": {"type": "object", "properties": {}, "required": [],
                    "additionalProperties": False}},
    {"type": "function", "name": "create_goal", "strict": False,
     "description": "Start a new goal for this thread, only when the user (or the system or "
                    "developer instructions) asks for one. Refused while an unfinished goal "
                    "exists. Give token_budget only when a budget was asked for.",
     "parameters": {"type": "object", "properties": {
         "objective": {"type": "string", "description": "What is to be achieved."},
         "token_budget": {"type": "integer", "description": "A positive token budget."}},
         "required": ["objective"], "additionalProperties": False}},
    {"type": "function", "name": "update_goal", "strict": False,
     "description": "Change this thread's goal status: `complete` once the objective is "
                    "achieved and verified; `blocked` once the same obstacle stopped the work "
                    "for three goal turns in a row; `paused` only when the user asks.",
     "parameters": {"type": "object", "properties": {
         "status": {"type": "string", "enum": list(MODEL_STATUSES)}},
         "required": ["status"], "additionalProperties": False}},
)  # fmt: skip


def continuation_prompt(goal: dict[str, Any]) -> dict[str, Any]:
    """What the model reads at the start of a goal turn (codex-core's own words), as a user
    message in the reference's ``<codex_internal_context source="goal">`` wrapping."""
    used = goal["tokensUsed"]
    budget = goal.get("tokenBudget")
    spent = f"Tokens used so far: {used}"
    if budget is not None:
        spent += f"; budget: {budget}; remaining: {max(budget - used, 0)}"
    text = (
        '<codex_internal_context source="goal">\n'
        "Keep working toward this thread's goal.\n\n"
        f"Objective: {goal['objective']}\n\n{spent}.\n\n"
        "Check the current state of the work before relying on what earlier turns said, and "
        "make real progress on the whole objective rather than a smaller one. When it is "
        "achieved and verified, call update_goal with status `complete`. If the same obstacle "
        "has stopped you for three goal turns in a row and only the user can remove it, call "
        "update_goal with status `blocked` and say what you need.\n"
        "</codex_internal_context>"
    )
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def tool_output(goal: dict[str, Any] | None) -> str:
    """What a goal tool answers the model: the goal as the rollout stores it (no null budget)
    and the tokens left, in the reference's shape."""
    if goal is None:
        return json.dumps({"goal": None}, separators=(",", ":"))
    budget = goal.get("tokenBudget")
    shown = {key: value for key, value in goal.items() if key != "tokenBudget" or budget}
    remaining = max(budget - goal["tokensUsed"], 0) if budget is not None else None
    answer = {"goal": shown, "remainingTokens": remaining, "completionBudgetReport": None}
    return json.dumps(answer, separators=(",", ":"))


class Goals:
    """The goal methods over a ``ThreadRegistry``'s threads, and the goal runtime: while a
    loaded thread's goal is ``active`` and the thread is idle, a goal turn pursues it."""

    def __init__(self, registry: ThreadRegistry) -> None:
        self.registry = registry
        #: Goals by thread id, read from ``thread_goals.jsonl`` (or a rollout) on first need.
        self._known_goals: dict[str, dict[str, Any] | None] | None = None
        #: When each running turn's time was last counted (``time.time()``), by turn id.
        self._clock: dict[str, float] = {}
        #: Seconds counted but not yet whole, by thread id.
        self._carry: dict[str, float] = {}

    @property
    def home(self) -> Path:
        return self.registry.home

    def _known(self, raw_id: str) -> tuple[str, LoadedThread | None]:
        """A thread that is loaded or on disk, else the reference's refusal."""
        thread_id = self.registry.thread_id(raw_id)
        loaded = self.registry.threads.get(thread_id)
        if loaded is None and self.registry.store.find(thread_id) is None:
            raise RpcError(INVALID_REQUEST, f"thread not found: {thread_id}")
        return thread_id, loaded

    def current(self, thread_id: str) -> dict[str, Any] | None:
        """A thread's goal: kept in memory once read (each turn's tools and accounting ask)."""
        if self._known_goals is None:
            self._known_goals = load(self.home)
        if thread_id not in self._known_goals:
            path = self.registry.store.find(thread_id)
            self._known_goals[thread_id] = from_rollout(path) if path is not None else None
        return self._known_goals[thread_id]

    def _store(self, thread_id: str, goal: dict[str, Any] | None) -> None:
        """Remember and persist a thread's goal (None: cleared)."""
        self.current(thread_id)  # (reads the file first, so the cache holds every thread)
        assert self._known_goals is not None
        self._known_goals[thread_id] = goal
        save(self.home, thread_id, goal)

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
        self._store(thread_id, goal)
        self._record(loaded, goal)
        self._announce(ctx, loaded, "thread/goal/updated",
                       {"threadId": thread_id, "turnId": None, "goal": goal})  # fmt: skip
        if loaded is not None:
            ctx.after_reply.append(lambda: self.pursue(loaded))
        return {"goal": goal}

    def _record(self, loaded: LoadedThread | None, goal: dict[str, Any]) -> None:
        """The reference's rollout event for a goal the user set (a budget only when there is
        one); like the reference, what the goal runtime changes is not recorded there."""
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
        self._store(thread_id, None)
        self._announce(ctx, loaded, "thread/goal/cleared", {"threadId": thread_id})
        return {"cleared": True}

    def on_resume(self, ctx: RequestContext, loaded: LoadedThread) -> None:
        """After a ``thread/resume`` reply, every subscriber hears the thread's goal, or that
        it has none (``thread/goal/cleared``), as the reference tells them."""
        goal = self.current(loaded.id)
        params: dict[str, Any]
        if goal is None:
            method, params = "thread/goal/cleared", {"threadId": loaded.id}
        else:
            method = "thread/goal/updated"
            params = {"threadId": loaded.id, "turnId": None, "goal": goal}
        ctx.after_reply.append(lambda: self.registry.emit(loaded, method, params))

    # ------------------------------------------------------------------ the goal runtime

    def pursue(self, loaded: LoadedThread) -> None:
        """Start a goal turn when the thread is loaded, idle and its goal active."""
        if self.registry.threads.get(loaded.id) is not loaded or loaded.active is not None:
            return
        goal = self.current(loaded.id)
        if goal is not None and goal["status"] == "active":
            self.registry.start_goal_turn(loaded, continuation_prompt(goal))

    def turn_failed(self, turn: Turn) -> None:
        """A failed goal turn blocks the goal (the TUI's "stalled"), announced before the
        turn's error, as the reference does."""
        goal = self.current(turn.thread_id)
        if turn.goal_prompt is not None and goal is not None and goal["status"] == "active":
            self._change(turn, {**goal, "status": "blocked"})

    def after_turn(self, loaded: LoadedThread, turn: Turn) -> None:
        """The work goes on while the goal is active, unless the user interrupted the turn
        or it failed."""
        self._clock.pop(turn.id, None)
        if not turn.interrupted and not turn.failed:
            self.pursue(loaded)

    def account(self, turn: Turn, tokens: int) -> None:
        """Count a model response's tokens (or an interrupted turn's time alone, with 0)
        against the active goal, with the turn's time since it was last counted; at its
        budget the goal is ``budgetLimited`` (and no goal turn follows)."""
        goal = self.current(turn.thread_id)
        if goal is None or goal["status"] != "active":
            return
        now = time.time()
        elapsed = now - self._clock.get(turn.id, turn.started_ms / 1000)
        self._clock[turn.id] = now
        carry = self._carry.get(turn.thread_id, 0.0) + max(elapsed, 0.0)
        seconds = int(carry)
        self._carry[turn.thread_id] = carry - seconds
        used = goal["tokensUsed"] + tokens
        status = goal["status"]
        if goal.get("tokenBudget") is not None and used >= goal["tokenBudget"]:
            status = "budgetLimited"
        if not tokens and not seconds:
            return  # nothing to count (a turn interrupted within the second)
        self._change(turn, {**goal, "tokensUsed": used, "status": status,
                            "timeUsedSeconds": goal["timeUsedSeconds"] + seconds})  # fmt: skip

    def _change(self, turn: Turn, goal: dict[str, Any]) -> None:
        """A change the runtime (or the model) made, announced to the thread's subscribers."""
        goal["updatedAt"] = int(time.time())
        self._store(turn.thread_id, goal)
        params = {"threadId": turn.thread_id, "turnId": turn.id, "goal": goal}
        self.registry.emit(turn.loaded, "thread/goal/updated", params)

    # ------------------------------------------------------------------ the model's tools

    def tool_specs(self, loaded: LoadedThread) -> list[dict[str, Any]]:
        """The goal tools, offered in threads that have a goal (only those: other threads'
        model requests stay as they were)."""
        return [dict(spec) for spec in TOOLS] if self.current(loaded.id) is not None else []

    def tool_names(self, loaded: LoadedThread) -> frozenset[str]:
        return frozenset(spec["name"] for spec in self.tool_specs(loaded))

    def call_tool(self, turn: Turn, name: str, arguments: Any) -> str:
        """Run a goal tool for the model; what it reads back is JSON (or why not)."""
        arguments = arguments if isinstance(arguments, dict) else {}
        goal = self.current(turn.thread_id)
        if name == "create_goal":
            objective = str(arguments.get("objective") or "").strip()
            budget = arguments.get("token_budget")
            if goal is not None and goal["status"] != "complete":
                return "cannot create a goal: this thread has an unfinished goal"
            if not objective:
                return "goal objective must not be empty"
            if budget is not None and (not isinstance(budget, int) or budget <= 0):
                return "goal budgets must be positive when provided"
            now = int(time.time())
            goal = {"threadId": turn.thread_id, "objective": objective, "status": "active",
                    "tokenBudget": budget, "tokensUsed": 0, "timeUsedSeconds": 0,
                    "createdAt": now, "updatedAt": now}  # fmt: skip
            self._change(turn, goal)
        elif name == "update_goal" and goal is not None:
            status = arguments.get("status")
            if status not in MODEL_STATUSES:
                return f"status must be one of: {', '.join(MODEL_STATUSES)}"
            goal = {**goal, "status": status}
            self._change(turn, goal)
        return tool_output(goal)
