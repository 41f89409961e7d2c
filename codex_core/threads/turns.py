"""The turn engine: user input in, model events out, as protocol notifications and rollout lines.

One turn, in the official server's order (see ``docs/threads.md``)::

    turn/start result -> thread/status/changed active -> turn/started
    -> item/started + item/completed (userMessage)
    -> per model response: item/started, deltas, item/completed (reasoning, agentMessage)
       then thread/tokenUsage/updated
    -> thread/status/changed idle -> turn/completed

A model error fails the turn (``thread/status/changed systemError``, ``error``, then
``turn/completed`` with ``status: failed``); ``turn/interrupt`` ends it as ``interrupted``.

Function calls of the model go through ``Turn.call_tool``: a client's dynamic tool (the
``item/tool/call`` server request), a plugin ``Tool`` (``codex_tools``: shell, apply_patch,
...) with a ``ToolContext`` (``codex_core.threads.tools``) for items and approvals, or, for a
name nobody provides, ``unsupported call: <name>`` as the reference answers. The model is
sampled again after each round of calls, up to ``MAX_MODEL_ROUNDS`` times. As the reference,
a response's ``thread/tokenUsage/updated`` goes out after its tool calls ran.
"""

from __future__ import annotations

import base64
import json
import logging
import mimetypes
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio

from codex_core.accounts import rate_limits
from codex_core.models.contract import (
    ModelEvent,
    ModelFailed,
    ModelRequest,
    OutputItemAdded,
    OutputItemDone,
    OutputSchema,
    Reasoning,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    ReasoningTextDelta,
    ResponseCompleted,
    ResponseStarted,
    TextDelta,
    TokenUsage,
)
from codex_core.models.sampling import provider_for, sample
from codex_core.plugins import is_cancellation
from codex_core.threads import compaction, modes
from codex_core.threads.command_hooks import (
    HookOutcome,
    compact_input,
    context_message,
    hook_handlers,
    hook_prompt_item,
    hook_prompt_message,
    run_hooks,
    session_start_input,
    stop_input,
)
from codex_core.threads.diff import TurnDiff
from codex_core.threads.ids import uuid7
from codex_core.threads.rollout import agent_message, item_to_rollout, snake
from codex_core.threads.tools import ToolContext, TurnAborted, ask_subscribers, resolve

if TYPE_CHECKING:
    from codex_core.hookspecs import Tool, ToolResult
    from codex_core.threads.methods import LoadedThread, ThreadRegistry

log = logging.getLogger(__name__)

#: Model requests one turn may make (tool-call round trips) before it fails.
MAX_MODEL_ROUNDS = 64
#: The context window reported for models the catalog does not know (as the reference).
DEFAULT_CONTEXT_WINDOW = 258_400
#: How long an interrupted turn waits for the ``turn/interrupt`` reply to go out first.
INTERRUPT_REPLY_WAIT = 1.0

#: What the model reads after a turn the user interrupted (the reference's words).
INTERRUPTED_MARKER = (
    "<turn_aborted>\nThe user interrupted the previous turn on purpose. Any running unified "
    "exec processes may still be running in the background. If any tools/commands were "
    "aborted, they may have partially executed.\n</turn_aborted>"
)

BASE_INSTRUCTIONS = (
    "You are Codex, a coding agent. You and the user share the same workspace and collaborate "
    "to achieve the user's goals. Be concise, direct and precise; state assumptions."
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class TurnFailed(Exception):
    """A turn that cannot go on; carries the protocol's ``TurnError`` fields."""

    def __init__(self, message: str, codex_error_info: Any = "other") -> None:
        super().__init__(message)
        self.message = message
        self.codex_error_info = codex_error_info


def turn_error(exc: BaseException) -> dict[str, Any]:
    """The ``TurnError`` for an exception: providers' errors carry ``codex_error_info``."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return {
        "message": str(message),
        "codexErrorInfo": getattr(exc, "codex_error_info", "other"),
        "additionalDetails": None,
    }


def empty_usage() -> dict[str, int]:
    return {
        "totalTokens": 0,
        "inputTokens": 0,
        "cachedInputTokens": 0,
        "cacheWriteInputTokens": 0,
        "outputTokens": 0,
        "reasoningOutputTokens": 0,
    }


def usage_breakdown(usage: TokenUsage) -> dict[str, int]:
    """A response's usage as the protocol's ``TokenUsageBreakdown``."""
    return {
        "totalTokens": usage.total,
        "inputTokens": usage.input_tokens,
        "cachedInputTokens": usage.cached_input_tokens,
        "cacheWriteInputTokens": 0,
        "outputTokens": usage.output_tokens,
        "reasoningOutputTokens": usage.reasoning_output_tokens,
    }


def add_usage(total: dict[str, int], last: dict[str, int]) -> dict[str, int]:
    return {key: total.get(key, 0) + value for key, value in last.items()}


def usage_from_rollout(usage: dict[str, Any]) -> dict[str, int]:
    result = empty_usage()
    for key in result:
        result[key] = int(usage.get(snake(key)) or 0)
    return result


def user_input_to_model(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Protocol ``UserInput`` items -> Responses API content parts (text and images)."""
    parts: list[dict[str, Any]] = []
    images = 0
    for entry in content:
        kind = entry.get("type")
        if kind == "text":
            parts.append({"type": "input_text", "text": entry.get("text", "")})
        elif kind == "image" and entry.get("url"):
            parts.append({"type": "input_image", "image_url": entry["url"]})
        elif kind == "localImage" and entry.get("path"):
            images += 1
            parts.extend(local_image(str(entry["path"]), entry.get("detail"), images))
        else:
            raise TurnFailed(f"input of type `{kind}` is not supported yet", "badRequest")
    return parts


def local_image(path: str, detail: Any, number: int) -> list[dict[str, Any]]:
    """A file the user attached, inlined as a data URL between the reference's ``<image>``
    markers (so the model knows its name); an unreadable file becomes a note instead."""
    mime = mimetypes.guess_type(path)[0] or ""
    try:
        if not mime.startswith("image/"):
            raise ValueError(f"unsupported image type `{mime or 'unknown'}`")
        data = base64.b64encode(Path(path).read_bytes()).decode()
    except (OSError, ValueError) as exc:
        reason = f"{exc.strerror} (os error {exc.errno})" if isinstance(exc, OSError) else exc
        text = f"Codex could not read the local image at `{path}`: {reason}"
        return [{"type": "input_text", "text": text}]
    return [
        {"type": "input_text", "text": f'<image name=[Image #{number}] path="{path}">'},
        {"type": "input_image", "image_url": f"data:{mime};base64,{data}",
         "detail": detail or "high"},
        {"type": "input_text", "text": "</image>"},
    ]  # fmt: skip


@dataclass(slots=True)
class Turn:
    """One running turn of a loaded thread."""

    registry: ThreadRegistry
    loaded: LoadedThread
    id: str
    #: The user's input; ``None`` for a turn that runs ``body`` instead of the model.
    user_item: dict[str, Any] | None
    client_name: str | None
    client_version: str | None
    #: What the turn does instead of sampling the model (a user's shell command, say).
    body: Callable[[Turn], Coroutine[Any, Any, None]] | None = None
    #: ``compact`` for the turn of ``thread/compact/start``, ``review`` for a review's: neither
    #: takes more input (``compaction.refuse_input``).
    kind: str = "regular"
    #: What the model reads instead of a user's message: a goal's continuation prompt
    #: (``codex_core.threads.goals``), which makes this a goal turn.
    goal_prompt: dict[str, Any] | None = None
    #: The turn ended with an error (``turn/completed`` ``failed``).
    failed: bool = False
    #: ``pending_usage`` was already counted against the goal (a goal tool needed it first).
    usage_counted: bool = False
    #: The thread's settings as the turn began: a ``thread/settings/update`` meanwhile is for
    #: the next turns (as the reference), so the turn and its tools read these.
    settings: dict[str, Any] = field(default_factory=dict)

    started_at: int = 0
    started_ms: int = 0
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    #: Set once the model stream stopped because of ``turn/interrupt``.
    aborted: anyio.Event = field(default_factory=anyio.Event)
    #: Set once the ``turn/interrupt`` reply went out (the reference answers it first).
    interrupt_replied: anyio.Event = field(default_factory=anyio.Event)
    done: anyio.Event = field(default_factory=anyio.Event)
    items: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    #: Items started but not completed (to close them on interrupt), by item id.
    open_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The last response's usage, reported once its tool calls ran (as the reference).
    pending_usage: TokenUsage | None = None
    #: Server requests left unanswered by an interrupt: resolved after ``turn/completed``.
    unresolved: list[tuple[Any, Any]] = field(default_factory=list)
    #: Files tools changed in this turn (``turn/diff/updated``); made on the first change.
    diff: TurnDiff | None = None
    #: The last ``turn/diff/updated`` text sent (re-sent after each token usage update).
    last_diff: str = ""
    #: User messages steered in (``turn/steer``), waiting for the next model request.
    steered: list[dict[str, Any]] = field(default_factory=list)
    #: Items ``thread/inject_items`` gave while the model was answering: the model reads them
    #: once its response is done, and is sampled again; an interrupt drops them (as the
    #: reference does both).
    injected: list[dict[str, Any]] = field(default_factory=list)
    #: Cancels the model stream in flight (a steer cuts it short).
    stream_scope: anyio.CancelScope | None = None
    #: False once the turn decided to end: a late steer is refused, not lost.
    accepts_input: bool = True
    #: ``model/rerouted`` went out for this turn.
    rerouted: bool = False
    #: The rate limits the last model response reported (``RateLimitSnapshot`` dicts).
    rate_limits: Sequence[Mapping[str, Any]] = ()
    #: ``outputSchema`` of ``turn/start``: the JSON schema this turn's answers must follow
    #: (for this turn only, as the reference).
    output_schema: Any = None
    #: The id ``turn/started`` gave clients when it is not ``id`` (a review announces its
    #: reviewer's turn): what ``turn/interrupt`` must name, as in the reference.
    started_id: str | None = None

    @property
    def active_id(self) -> str:
        return self.started_id or self.id

    def __post_init__(self) -> None:
        self.settings = dict(self.loaded.settings)

    @property
    def thread_id(self) -> str:
        return str(self.loaded.thread["id"])

    def wire(self, status: str = "inProgress", *, started: bool = True) -> dict[str, Any]:
        return {
            "id": self.id,
            "rootTurnId": self.id,
            "items": [],
            "itemsView": "notLoaded",
            "status": status,
            "error": None,
            "startedAt": self.started_at if started else None,
            "completedAt": None,
            "durationMs": None,
        }

    def snapshot(self) -> dict[str, Any]:
        """The running turn as history: the items completed so far."""
        return {**self.wire(), "items": list(self.items), "itemsView": "full"}

    def emit(self, method: str, params: dict[str, Any]) -> None:
        self.registry.emit(self.loaded, method, params)

    def record(self, kind: str, payload: dict[str, Any]) -> None:
        writer = self.loaded.writer
        if writer is not None:
            writer.append(kind, payload)

    # ------------------------------------------------------------------ items

    def item_started(self, item: dict[str, Any]) -> None:
        self.open_items[item["id"]] = item
        self.emit(
            "item/started",
            {"item": item, "threadId": self.thread_id, "turnId": self.id,
             "startedAtMs": item["startedAtMs"]},
        )  # fmt: skip

    def item_completed(self, item: dict[str, Any]) -> None:
        self.open_items.pop(item["id"], None)
        self.items.append(item)
        if self.done.is_set():
            # A background terminal's command completing after its turn ended: the turn lists
            # it from then on (as the reference does).
            for turn in self.loaded.turns:
                if turn["id"] == self.id:
                    turn["items"].append(item)
        stored = item_to_rollout(item)
        if stored is not None:
            self.record(
                "event_msg",
                {"type": "item_completed", "thread_id": self.thread_id, "turn_id": self.id,
                 "item": stored, "started_at_ms": item.get("startedAtMs"),
                 "completed_at_ms": item.get("completedAtMs")},
            )  # fmt: skip
        self.emit(
            "item/completed",
            {"item": item, "threadId": self.thread_id, "turnId": self.id,
             "contentTokenCount": None, "completedAtMs": item.get("completedAtMs")},
        )  # fmt: skip

    def delta(self, method: str, item_id: str, **extra: Any) -> None:
        self.emit(method, {"threadId": self.thread_id, "turnId": self.id, "itemId": item_id,
                           **extra})  # fmt: skip

    # ------------------------------------------------------------------ the turn

    async def run(self) -> None:
        """Run the turn to its end; never raises (every outcome ends in ``turn/completed``)."""
        error: dict[str, Any] | None = None
        try:
            with self.scope:
                try:
                    await self._run()
                except TurnAborted:
                    self.interrupted = True
                    self.flush_usage()
                except TurnFailed as exc:
                    error = turn_error(exc)
                except ModelFailed as exc:
                    error = turn_error(exc)
                    if exc.failure.rate_limits is not None:
                        self.emit_rate_limits(exc.failure.rate_limits)
                except BaseException as exc:  # model providers are plugins: anything goes
                    if is_cancellation(exc):
                        raise
                    log.warning("turn %s failed: %s", self.id, exc, exc_info=True)
                    error = turn_error(exc)
            if self.scope.cancelled_caught:
                self.interrupted = True
                self.flush_usage()
                self.aborted.set()
                with anyio.move_on_after(INTERRUPT_REPLY_WAIT):
                    await self.interrupt_replied.wait()
            self.failed = error is not None
            if self.failed:
                self.registry.goals.turn_failed(self)
            elif self.interrupted:  # the time it ran counts against the goal (as the reference)
                self.registry.goals.account(self, 0)
            self._finish(error)
            resolve(self, self.unresolved)
        finally:
            self.aborted.set()  # wakes a turn/interrupt that raced with the turn's end
            self.done.set()
            self.registry.turn_finished(self.loaded, self)

    async def _run(self) -> None:
        if self.body is not None:
            await self.body(self)
            return
        source = self.loaded.session_start
        if source is not None and (await self.session_start_hooks(source)).stop:
            return  # as the reference: the turn ends before the user's input is taken
        if self.auto_compact_due():
            await compaction.compact(self, "auto")  # before the input: it follows the summary
        self.mode_instructions()
        if self.user_item is not None:
            self.user_message(self.user_item)
        if self.goal_prompt is not None:
            self.remember(self.goal_prompt)
        provider_id = str(self.settings["modelProvider"])
        provider_for(self.registry.kernel, provider_id)  # (none installed: fail before the hooks)
        await self.registry.kernel.run_hook(
            "codex_turn_starting", thread_id=self.thread_id, turn_id=self.id
        )
        stop_hook_active = False
        for _round in range(MAX_MODEL_ROUNDS):
            while self.steered:
                self.user_message(self.steered.pop(0))
            while self.injected:
                self.remember(self.injected.pop(0))
            calls = await self._sample(provider_id)
            for call in calls:
                started = time.monotonic()
                try:
                    output: Any = await self.call_tool(call)
                except (TurnAborted, anyio.get_cancelled_exc_class()):
                    wall = time.monotonic() - started
                    self._call_output(call, f"Wall time: {wall:.1f} seconds\naborted by user")
                    raise
                self._call_output(call, output)
            self.flush_usage()
            self.resend_diff()
            if calls and self.auto_compact_due():
                await compaction.compact(self, "auto")  # the model goes on from the summary
            if not calls and not self.steered and not self.injected:
                outcome = await self.stop_hooks(stop_hook_active)
                if outcome.block:
                    self.hook_prompt(outcome)
                    stop_hook_active = True
                elif not self.steered and not self.injected:  # (input came meanwhile: go on)
                    self.accepts_input = False
                    return
        raise TurnFailed(f"the model made more than {MAX_MODEL_ROUNDS} requests in one turn")

    def auto_compact_due(self) -> bool:
        return compaction.limit_reached(self.loaded, self.loaded.auto_compact_limit)

    def mode_instructions(self) -> None:
        """Tell the model its collaboration mode (``codex_core.threads.modes``) when its
        instructions changed since the model last read them, as the reference does."""
        loaded = self.loaded
        chosen = loaded.collaboration_mode
        text = chosen["settings"]["developer_instructions"] if chosen is not None else None
        if text is None or text == loaded.mode_instructions_sent:
            return
        loaded.mode_instructions_sent = text
        self.remember(modes.instructions_message(text))

    def user_message(self, item: dict[str, Any]) -> None:
        """A user message of this turn (its input, or input steered in): an item and history."""
        item["startedAtMs"] = now_ms()
        content = user_input_to_model(item["content"])
        self.item_started(dict(item))
        item["completedAtMs"] = item["startedAtMs"]
        self.remember({"type": "message", "role": "user", "content": content})
        self.item_completed(dict(item))

    async def session_start_hooks(self, source: str) -> HookOutcome:
        """The thread's first turn (since start or resume): read its hooks (from the config
        as it is now, with the project layers of its cwd) and run the ``SessionStart`` ones,
        whose additional context the model reads as developer messages before the input."""
        loaded, settings = self.loaded, self.settings
        loaded.session_start = None
        config = self.registry.kernel.config
        loaded.hooks = hook_handlers(
            await anyio.to_thread.run_sync(config.reload, str(settings["cwd"]))
        )
        payload = session_start_input(
            thread_id=self.thread_id, transcript_path=self.loaded.thread["path"],
            cwd=str(settings["cwd"]), model=str(settings["model"]),
            approval_policy=settings["approvalPolicy"], source=source,
        )  # fmt: skip
        outcome = await run_hooks(loaded.hooks, "SessionStart", payload, cwd=str(settings["cwd"]),
                                  thread_id=self.thread_id, turn_id=self.id, emit=self.emit,
                                  matcher_input=source)  # fmt: skip
        for text in outcome.additional_contexts:
            self.remember(context_message(text))
        return outcome

    async def stop_hooks(self, active: bool) -> HookOutcome:
        """The model is done: ``Stop`` hooks may continue the turn (``stop_hook_active`` tells
        them it already did once, so they can let it end)."""
        settings = self.settings
        last = next((i["text"] for i in reversed(self.items) if i["type"] == "agentMessage"), None)
        payload = stop_input(
            thread_id=self.thread_id, turn_id=self.id, transcript_path=self.loaded.thread["path"],
            cwd=str(settings["cwd"]), model=str(settings["model"]),
            approval_policy=settings["approvalPolicy"], stop_hook_active=active,
            last_assistant_message=last,
        )  # fmt: skip
        return await run_hooks(self.loaded.hooks, "Stop", payload, cwd=str(settings["cwd"]),
                               thread_id=self.thread_id, turn_id=self.id,
                               emit=self.emit)  # fmt: skip

    async def compact_hooks(
        self, event: Literal["PreCompact", "PostCompact"], trigger: Literal["manual", "auto"]
    ) -> HookOutcome:
        """The thread's ``PreCompact`` (before the compaction item) or ``PostCompact`` (after
        it) hooks; hooks not read yet this session (a compaction first) are read now."""
        loaded, settings = self.loaded, self.loaded.settings
        if loaded.session_start is not None and not loaded.hooks:
            config = self.registry.kernel.config
            loaded.hooks = hook_handlers(
                await anyio.to_thread.run_sync(config.reload, str(settings["cwd"]))
            )
        payload = compact_input(
            event, thread_id=self.thread_id, turn_id=self.id,
            transcript_path=loaded.thread["path"], cwd=str(settings["cwd"]),
            model=str(settings["model"]), trigger=trigger,
        )  # fmt: skip
        return await run_hooks(loaded.hooks, event, payload, cwd=str(settings["cwd"]),
                               thread_id=self.thread_id, turn_id=self.id,
                               emit=self.emit)  # fmt: skip

    def hook_prompt(self, outcome: HookOutcome) -> None:
        """A Stop hook blocked: its prompt becomes a user message (a ``hookPrompt`` item)."""
        message = hook_prompt_message(outcome.fragments)
        item = hook_prompt_item(message, outcome.fragments)
        self.item_started({**item, "completedAtMs": None})
        self.remember(message)
        self.item_completed(item)

    def remember(self, entry: dict[str, Any]) -> None:
        """Add a Responses API input item to what the model reads from now on (and persist it)."""
        self.loaded.history.append(entry)
        self.record("response_item", entry)

    def steer(self, item: dict[str, Any]) -> None:
        """More user input for the running turn (``turn/steer``).

        As the reference, a model response still streaming is cut short (what it completed
        stays), and the model is sampled again with the new input; a running tool finishes
        first.
        """
        self.steered.append(item)
        if self.stream_scope is not None:
            self.stream_scope.cancel()

    def _call_output(self, call: Mapping[str, Any], output: Any) -> None:
        kind = "custom_tool_call_output" if call.get("type") == "custom_tool_call" else None
        item = {"type": kind or "function_call_output", "call_id": call.get("call_id"),
                "output": output}  # fmt: skip
        self.loaded.history.append(item)
        self.record("response_item", item)

    async def call_tool(self, call: Mapping[str, Any]) -> Any:
        """Run one function call of the model and return what the model sees.

        A dynamic tool of the thread (asked of the client), else a plugin ``Tool``, else
        ``unsupported call: <name>`` (what the reference answers for a tool it does not know).
        ``TurnAborted`` (the user cancelled) ends the turn as interrupted.
        """
        name = str(call.get("name") or "")
        call_id = str(call.get("call_id") or call.get("id") or uuid7())
        dynamic = self.loaded.dynamic_tools.get(name)
        tool = self._plugin_tool(name, call.get("namespace"))
        goal_tool = name in self.registry.goals.tool_names(self.loaded)
        if dynamic is None and tool is None and not goal_tool:
            return f"unsupported call: {name}"
        raw = call.get("arguments") if call.get("type") == "function_call" else call.get("input")
        if call.get("type") == "custom_tool_call":  # a freeform tool: the raw text is the input
            raw = json.dumps({"input": raw if isinstance(raw, str) else ""})
        try:
            arguments = json.loads(raw) if isinstance(raw, str) and raw.strip() else raw or {}
        except ValueError as exc:
            return f"failed to parse function arguments: {exc}"
        if goal_tool:
            if self.pending_usage is not None and not self.usage_counted:
                # As the reference: the goal has counted this response before the tool runs.
                self.usage_counted = True
                self.registry.goals.account(self, self.pending_usage.total)
            return self.registry.goals.call_tool(self, name, arguments)
        if dynamic is not None:
            return await self._call_dynamic(dynamic, call_id, arguments)
        assert tool is not None
        context = ToolContext(self, call_id)
        result: ToolResult | str
        try:
            result = await tool.call(arguments, context)
        except TurnAborted:
            raise
        except BaseException as exc:  # a plugin's tool may raise anything (sys.exit(), ...)
            if is_cancellation(exc):
                raise
            log.warning("turn %s: tool %s failed: %s", self.id, name, exc, exc_info=True)
            result = f"{name} failed: {exc}"
        # (Not on interrupt: the reference goes from waiting on approval straight to idle.)
        context.approval_finished()
        return getattr(result, "output", result)

    async def _call_dynamic(
        self, spec: dict[str, Any], call_id: str, arguments: Any
    ) -> str | list[dict[str, Any]]:
        """A client-provided tool: ``item/tool/call`` to the thread's subscribers."""
        namespace = spec.get("namespace")
        item = {"type": "dynamicToolCall", "id": call_id, "namespace": namespace,
                "tool": spec["name"], "arguments": arguments, "status": "inProgress",
                "contentItems": None, "success": None, "durationMs": None,
                "startedAtMs": now_ms(), "completedAtMs": None}  # fmt: skip
        self.item_started(item)
        params = {"threadId": self.thread_id, "turnId": self.id, "callId": call_id,
                  "tool": spec["name"], "arguments": arguments}  # fmt: skip
        if namespace is not None:
            params["namespace"] = namespace
        started = time.monotonic()
        answer = await ask_subscribers(self, "item/tool/call", params)
        items = answer.get("contentItems")
        success = bool(answer.get("success")) and isinstance(items, list)
        content = [entry for entry in items or [] if isinstance(entry, dict)]
        self.item_completed(
            {**item, "status": "completed" if success else "failed", "contentItems": content,
             "success": success, "durationMs": int((time.monotonic() - started) * 1000),
             "completedAtMs": now_ms()}
        )  # fmt: skip
        if not content:
            return "" if success else "the client did not run the tool"
        if all(entry.get("type") == "inputText" for entry in content):
            return "\n".join(str(entry.get("text", "")) for entry in content)
        return [
            {"type": "input_text", "text": entry.get("text", "")}
            if entry.get("type") == "inputText"
            else {"type": "input_image", "image_url": entry.get("imageUrl", "")}
            for entry in content
        ]

    def _plugin_tool(self, name: str, namespace: Any) -> Tool | None:
        """The plugin tool a call names: by its name, or by its name inside a namespace."""
        tools = self.registry.kernel.tools
        if not namespace:
            return tools.get(name)
        return next(
            (
                tool
                for tool in tools.values()
                if tool.namespace == namespace and tool.namespaced_name == name
            ),
            None,
        )

    def tool_specs(self) -> list[dict[str, Any]]:
        """The tools offered to the model: plugin tools, then the thread's dynamic tools."""
        specs: list[dict[str, Any]] = []
        namespaces: dict[str, dict[str, Any]] = {}
        config = self.registry.kernel.config

        def setting(key: str) -> Any:
            return self.loaded.setting(config, key)

        for tool in self.registry.kernel.tools.values():
            if not tool.offered(setting):
                continue  # turned off for this thread (a feature flag, its MCP servers, ...)
            freeform = tool.format  # a custom (freeform) tool, e.g. a grammar
            namespace = tool.namespace
            if namespace:  # grouped as the Responses API's namespaces (MCP servers' tools)
                group = namespaces.get(namespace)
                if group is None:
                    group = namespaces[namespace] = {
                        "type": "namespace",
                        "name": namespace,
                        "description": f"Tools in the {namespace} namespace.",
                        "tools": [],
                    }
                    specs.append(group)
                group["tools"].append({"type": "function", "name": tool.namespaced_name,
                                       "description": tool.description, "strict": False,
                                       "parameters": tool.input_schema})  # fmt: skip
            elif freeform is not None:
                specs.append({"type": "custom", "name": tool.name,
                              "description": tool.description, "format": freeform})  # fmt: skip
            else:
                specs.append({"type": "function", "name": tool.name,
                              "description": tool.description, "strict": False,
                              "parameters": tool.input_schema})  # fmt: skip
        specs.extend(self.registry.goals.tool_specs(self.loaded))
        for spec in self.loaded.dynamic_tools.values():
            if spec.get("deferLoading"):
                continue  # hidden from the model, callable by other tools
            specs.append({"type": "function", "name": spec["name"],
                          "description": spec.get("description", ""), "strict": False,
                          "parameters": spec.get("inputSchema") or {"type": "object"}})  # fmt: skip
        return specs

    def model_request(
        self,
        provider_id: str,
        model_input: Sequence[Mapping[str, Any]] | None = None,
        *,
        tools: bool = True,
    ) -> ModelRequest:
        """The model request for the thread's history (or ``model_input``); a compaction
        offers no tools."""
        from codex_core.server_info import user_agent

        loaded = self.loaded
        settings = self.settings
        effort = settings.get("reasoningEffort")
        name = self.client_name or "codex_core"
        return ModelRequest(
            provider_id=provider_id,
            model=str(settings["model"]),
            instructions=loaded.base_instructions or BASE_INSTRUCTIONS,
            input=list(loaded.history if model_input is None else model_input),
            tools=self.tool_specs() if tools else [],
            reasoning=Reasoning(str(effort)) if effort else None,
            output_schema=OutputSchema(self.output_schema) if self.output_schema is not None
            else None,
            prompt_cache_key=self.thread_id,
            originator=name,
            user_agent=user_agent(name, self.client_version or ""),
            thread_id=self.thread_id,
        )  # fmt: skip

    async def _sample(self, provider_id: str) -> list[Mapping[str, Any]]:
        """One model request: stream its events into items; returns its function calls."""
        calls: list[Mapping[str, Any]] = []
        texts: dict[str, list[str]] = {}
        summaries: dict[str, list[str]] = {}
        contents: dict[str, list[str]] = {}
        completed = False
        request = self.model_request(provider_id)
        with anyio.CancelScope() as self.stream_scope:
            async with aclosing(sample(self.registry.kernel, request)) as events:
                async for event in events:
                    completed = (
                        self._stream_event(event, calls, texts, summaries, contents) or completed
                    )
        self.stream_scope = None
        if self.steered and not completed:
            for item_id, parts in texts.items():  # cut short by a steer: keep what came
                self._item_done({"type": "message", "role": "assistant", "id": item_id,
                                 "content": [{"type": "output_text", "text": "".join(parts)}]},
                                texts, calls)  # fmt: skip
        return calls

    def _stream_event(
        self,
        event: ModelEvent,
        calls: list[Mapping[str, Any]],
        texts: dict[str, list[str]],
        summaries: dict[str, list[str]],
        contents: dict[str, list[str]],
    ) -> bool:
        """Turn one model event into items and deltas; True at ``ResponseCompleted``."""
        if isinstance(event, ResponseStarted):
            self.rate_limits = event.rate_limits
            self._check_served_model(event.served_model)
        elif isinstance(event, OutputItemAdded):
            item = event.item
            item_id = event.item_id or uuid7()
            if item.get("type") == "message" and item.get("role", "assistant") == "assistant":
                texts[item_id] = []
                self.item_started(
                    agent_message(item_id, "", started_at_ms=now_ms(), completed_at_ms=None)
                )
            elif item.get("type") == "reasoning":
                summaries[item_id], contents[item_id] = [], []
                self.item_started(
                    {"type": "reasoning", "id": item_id, "summary": [], "content": [],
                     "startedAtMs": now_ms(), "completedAtMs": None}
                )  # fmt: skip
        elif isinstance(event, TextDelta):
            if event.item_id in texts:
                texts[event.item_id].append(event.delta)
                self.delta("item/agentMessage/delta", event.item_id, delta=event.delta)
        elif isinstance(event, ReasoningSummaryPartAdded):
            parts = summaries.get(event.item_id)
            if parts is not None:
                parts.extend([""] * (event.summary_index + 1 - len(parts)))
                self.delta("item/reasoning/summaryPartAdded", event.item_id,
                           summaryIndex=event.summary_index)  # fmt: skip
        elif isinstance(event, ReasoningSummaryDelta):
            parts = summaries.get(event.item_id)
            if parts is not None:
                parts.extend([""] * (event.summary_index + 1 - len(parts)))
                parts[event.summary_index] += event.delta
                self.delta("item/reasoning/summaryTextDelta", event.item_id,
                           delta=event.delta, summaryIndex=event.summary_index)  # fmt: skip
        elif isinstance(event, ReasoningTextDelta):
            parts = contents.get(event.item_id)
            if parts is not None:
                parts.extend([""] * (event.content_index + 1 - len(parts)))
                parts[event.content_index] += event.delta
                self.delta("item/reasoning/textDelta", event.item_id,
                           delta=event.delta, contentIndex=event.content_index)  # fmt: skip
        elif isinstance(event, OutputItemDone):
            self._item_done(event.item, texts, calls)
        elif isinstance(event, ResponseCompleted):
            self.pending_usage = event.usage
            return True
        return False

    def _check_served_model(self, served: str | None) -> None:
        """``model/rerouted`` (once a turn) when another model than the one asked answers
        (the provider says which in ``ResponseStarted``)."""
        requested = str(self.settings["model"])
        if not served or served == requested or self.rerouted:
            return
        self.rerouted = True
        self.emit("model/rerouted", {"threadId": self.thread_id, "turnId": self.id,
                                     "fromModel": requested, "toModel": str(served),
                                     "reason": "highRiskCyberActivity"})  # fmt: skip

    def _item_done(
        self,
        item: Mapping[str, Any],
        texts: dict[str, list[str]],
        calls: list[Mapping[str, Any]],
    ) -> None:
        kind = item.get("type")
        item_id = str(item.get("id") or "")
        history_item = {k: v for k, v in item.items() if k != "status" or kind == "message"}
        if kind == "message" and item.get("role", "assistant") == "assistant":
            text = "".join(
                part.get("text", "")
                for part in item.get("content") or []
                if isinstance(part, dict) and part.get("type") == "output_text"
            )
            started = self.open_items.get(item_id)
            if started is None:  # no output_item.added: the item starts and ends here
                started = agent_message(item_id, "", started_at_ms=now_ms(), completed_at_ms=None)
                self.item_started(started)
            self.item_completed(
                agent_message(item_id, text, started_at_ms=started["startedAtMs"],
                              completed_at_ms=now_ms())
            )  # fmt: skip
            texts.pop(item_id, None)
        elif kind == "reasoning":
            summary = [
                part.get("text", "") for part in item.get("summary") or [] if isinstance(part, dict)
            ]
            content = [
                part.get("text", "") for part in item.get("content") or [] if isinstance(part, dict)
            ]
            started = self.open_items.get(item_id)
            if started is None:
                started = {"type": "reasoning", "id": item_id, "summary": [], "content": [],
                           "startedAtMs": now_ms(), "completedAtMs": None}  # fmt: skip
                self.item_started(started)
            self.item_completed(
                {"type": "reasoning", "id": item_id, "summary": summary, "content": content,
                 "startedAtMs": started["startedAtMs"], "completedAtMs": now_ms()}
            )  # fmt: skip
        elif kind in ("function_call", "custom_tool_call"):
            calls.append(item)
        else:
            log.info("turn %s: model output item of type %s ignored", self.id, kind)
            return
        self.loaded.history.append(history_item)
        self.record("response_item", history_item)

    def flush_usage(self) -> None:
        usage, self.pending_usage = self.pending_usage, None
        self._usage(usage)

    # ------------------------------------------------------------------ the turn's diff

    def turn_diff(self) -> TurnDiff:
        if self.diff is None:
            self.diff = TurnDiff(str(self.settings["cwd"]))
        return self.diff

    def files_changed(self) -> None:
        """A tool changed files: ``turn/diff/updated`` with the turn's diff so far."""
        if self.diff is None:
            return
        self.last_diff = self.diff.render()
        self.resend_diff()

    def resend_diff(self) -> None:
        """As the reference: the turn's diff again after each token usage update."""
        if self.last_diff:
            params = {"threadId": self.thread_id, "turnId": self.id, "diff": self.last_diff}
            self.emit("turn/diff/updated", params)

    def _usage(self, usage: TokenUsage | None) -> None:
        if usage is None:
            return
        last = usage_breakdown(usage)
        self.loaded.token_total = add_usage(self.loaded.token_total, last)
        self.report_usage(last)
        if not self.usage_counted:  # (a compaction's estimate is no use of the goal's tokens)
            self.registry.goals.account(self, last["totalTokens"])
        self.usage_counted = False

    def report_usage(self, last: dict[str, int], *, includes_reasoning: bool = False) -> None:
        """Record and announce the thread's usage with ``last`` as the latest request's (or,
        after a compaction, the estimate of the new history, which counts reasoning)."""
        loaded = self.loaded
        loaded.last_usage = dict(last)
        window = DEFAULT_CONTEXT_WINDOW
        self.record(
            "event_msg",
            {
                "type": "token_count",
                "info": {
                    "total_token_usage": {snake(k): v for k, v in loaded.token_total.items()},
                    "last_token_usage": {snake(k): v for k, v in last.items()},
                    "last_usage_includes_reasoning": includes_reasoning,
                    "model_context_window": window,
                },
                "rate_limits": None,
            },
        )
        self.emit(
            "thread/tokenUsage/updated",
            {"threadId": self.thread_id, "turnId": self.id,
             "tokenUsage": {"total": dict(loaded.token_total), "last": last,
                            "modelContextWindow": window}},
        )  # fmt: skip
        self.emit_rate_limits(self.rate_limits)

    def emit_rate_limits(self, reported: Sequence[Mapping[str, Any]]) -> None:
        """``account/rateLimits/updated`` for each limit a model answer reported, else (as the
        reference) for an all-null ``codex`` one."""
        for limits in reported or [rate_limits.snapshot("codex")]:
            self.emit("account/rateLimits/updated", {"rateLimits": limits})

    def _finish(self, error: dict[str, Any] | None) -> None:
        """Close open items, write the outcome and send the closing notifications."""
        completed_at = int(time.time())
        duration = now_ms() - self.started_ms
        for item in list(self.open_items.values()):
            if item.get("type") in (
                "commandExecution",
                "fileChange",
                "dynamicToolCall",
                "collabAgentToolCall",
                "contextCompaction",
            ):
                # The reference leaves a tool item (or a compaction) cut short open.
                self.open_items.pop(item["id"], None)
                continue
            if item.get("type") == "agentMessage":
                item = {**item, "completedAtMs": now_ms()}
            self.item_completed(item)
        turn = {**self.wire(), "completedAt": completed_at, "durationMs": duration}
        outcome = {"turn_id": self.id, "root_turn_id": self.id, "started_at": self.started_at,
                   "completed_at": completed_at, "duration_ms": duration}  # fmt: skip
        if self.interrupted:
            turn["status"] = "interrupted"
            marker = {"type": "input_text", "text": INTERRUPTED_MARKER}
            self.remember({"type": "message", "role": "user", "content": [marker]})
            self.record("event_msg", {"type": "turn_aborted", "reason": "interrupted", **outcome})
            self.registry.set_status(self.loaded, {"type": "idle"})
        elif error is not None:
            turn["status"] = "failed"
            turn["error"] = error
            self.record(
                "event_msg",
                {"type": "task_complete", "last_agent_message": None,
                 "error": {"message": error["message"],
                           "codex_error_info": snake(error["codexErrorInfo"])}, **outcome},
            )  # fmt: skip
            self.registry.set_status(self.loaded, {"type": "systemError"})
            self.emit("error", {"error": error, "willRetry": False, "threadId": self.thread_id,
                                "turnId": self.id})  # fmt: skip
        else:
            turn["status"] = "completed"
            last = next(
                (item for item in reversed(self.items) if item["type"] == "agentMessage"), None
            )
            self.record(
                "event_msg",
                {"type": "task_complete", "last_agent_message": last["text"] if last else None,
                 **outcome},
            )  # fmt: skip
            if last is not None:
                turn["items"] = [last]
                turn["itemsView"] = "summary"
                self.registry.turn_answered(self.loaded, self.id)
            # A failure the turn got past (a review whose reviewer failed) stays shown, as in the
            # reference.
            if self.loaded.thread["status"].get("type") != "systemError":
                self.registry.set_status(self.loaded, {"type": "idle"})
        self.loaded.turns.append({**turn, "items": list(self.items), "itemsView": "full"})
        self.loaded.thread["updatedAt"] = completed_at
        self.emit("turn/completed", {"threadId": self.thread_id, "turn": turn})
