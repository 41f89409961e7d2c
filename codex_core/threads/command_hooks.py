"""Command hooks (not plugin hooks): the ``SessionStart``, ``Stop``, ``PreCompact`` and
``PostCompact`` commands the user configures in ``[hooks]``.

The configuration is the official server's (``[[hooks.<Event>]]`` matcher groups, each with a
``hooks`` array of handlers), read through ``codex_core.config.listing`` (what ``hooks/list``
shows) and numbered as the reference numbers hooks, which makes their run ids. As there, only
handlers the user trusted run: a managed layer's, or one whose ``[hooks.state."<key>"]``
``trusted_hash`` (in the user's own config, never a project's) equals its current hash.

``run_hooks`` runs the matching handlers of one event at once, each as ``<shell> -c <command>``
(the user's shell) in the thread's cwd with the event's JSON on stdin, and reports them the
reference's way: every ``hook/started`` first, then, once all have finished, every
``hook/completed`` in configuration order. What the turn engine does with the outcome (model
context, a blocked stop's ``<hook_prompt>`` user message, ending the turn) is up to it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio
from anyio.abc import ByteReceiveStream, Process
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from codex_core.config.listing import MATCHED_EVENTS, hooks_for
from codex_core.threads.ids import uuid7

if TYPE_CHECKING:
    from codex_core.config.loader import Config

log = logging.getLogger(__name__)

#: The events this module runs: config name -> (run id label, wire name, scope).
EVENTS = {
    "SessionStart": ("session-start", "sessionStart", "thread"),
    "Stop": ("stop", "stop", "turn"),
    "PreCompact": ("pre-compact", "preCompact", "turn"),
    "PostCompact": ("post-compact", "postCompact", "turn"),
}
#: The reference numbers a layer's hooks event by event in this order (the protocol's
#: ``HookEventName`` order), whatever the order of the file.
EVENT_ORDER = (
    "PreModelRequest", "PostModelRequest", "PreToolUse", "PermissionRequest", "PostToolUse",
    "PreCompact", "PostCompact", "SessionStart", "SessionEnd", "UserPromptSubmit",
    "SubagentStart", "SubagentStop", "Stop", "Interrupt",
)  # fmt: skip

Emit = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class HookHandler:
    """One command hook that may run: enabled and trusted."""

    event: str
    command: str
    matcher: str | None
    timeout_sec: int
    status_message: str | None
    source_path: str
    source: str
    display_order: int

    @property
    def run_id(self) -> str:
        """The reference's run id, which also names the hook in a ``<hook_prompt>``."""
        return f"{EVENTS[self.event][0]}:{self.display_order}:{self.source_path}"

    def summary(self, status: str, started_at: int) -> dict[str, Any]:
        """A ``HookRunSummary`` with no outcome yet."""
        _, wire_name, scope = EVENTS[self.event]
        return {
            "id": self.run_id,
            "eventName": wire_name,
            "handlerType": "command",
            "executionMode": "sync",
            "scope": scope,
            "sourcePath": self.source_path,
            "source": self.source,
            "displayOrder": self.display_order,
            "status": status,
            "statusMessage": self.status_message,
            "startedAt": started_at,
            "completedAt": None,
            "durationMs": None,
            "entries": [],
        }


def hook_handlers(config: Config) -> list[HookHandler]:
    """The handlers of ``config`` for the ``EVENTS`` run here that may run, in display order.

    ``async`` handlers are not run (their output would belong to a later turn);
    ``[features] hooks = false`` turns all hooks off.
    """
    if (config.get("features") or {}).get("hooks") is False:
        return []
    handlers: list[HookHandler] = []
    for display_order, event, entry in _numbered(config):
        if event not in EVENTS or entry["async"]:
            continue
        if entry["enabled"] and entry["trustStatus"] in ("managed", "trusted"):
            matcher = entry["matcher"] if event in MATCHED_EVENTS else None
            handlers.append(
                HookHandler(event, entry["command"], matcher, max(1, int(entry["timeoutSec"])),
                            entry["statusMessage"], entry["sourcePath"], entry["source"],
                            display_order)
            )  # fmt: skip
    return handlers


def _numbered(config: Config) -> list[tuple[int, str, dict[str, Any]]]:
    """(display order, event, ``HookMetadata``) of each command hook, numbered as the
    reference numbers them: layer by layer, event by event in ``EVENT_ORDER``, leaving out
    blank commands and groups whose matcher is not a valid regex."""
    layers: list[list[dict[str, Any]]] = []
    for entry in hooks_for(config):
        if not layers or layers[-1][0]["sourcePath"] != entry["sourcePath"]:
            layers.append([])
        layers[-1].append(entry)
    numbered: list[tuple[int, str, dict[str, Any]]] = []
    for layer in layers:
        events = [(_configured_name(entry["eventName"]), entry) for entry in layer]
        known = sorted(
            ((event, entry) for event, entry in events if event in EVENT_ORDER),
            key=lambda pair: EVENT_ORDER.index(pair[0]),
        )
        for event, entry in known:
            command = entry.get("command")
            if entry["handlerType"] != "command" or not isinstance(command, str):
                continue
            matcher = entry["matcher"] if event in MATCHED_EVENTS else None
            if not command.strip() or (matcher is not None and not _valid_matcher(matcher)):
                log.warning("hook %s skipped: blank command or invalid matcher", entry["key"])
                continue
            numbered.append((len(numbered), event, entry))
    return numbered


def _configured_name(wire_name: str) -> str:
    """``sessionStart`` (``HookMetadata.eventName``) -> ``SessionStart`` (the config key)."""
    return wire_name[:1].upper() + wire_name[1:]


# --------------------------------------------------------------------------- matchers

_EXACT = re.compile(r"[A-Za-z0-9_|]*")


def _valid_matcher(matcher: str) -> bool:
    if _EXACT.fullmatch(matcher) or matcher == "*":
        return True
    try:
        re.compile(matcher)
    except re.error:
        return False
    return True


def matches(matcher: str | None, value: str) -> bool:
    """The reference's matcher rule: none, ``""`` or ``*`` match everything; a plain word
    list (``startup|resume``) matches exactly; anything else is a regex searched in ``value``."""
    if matcher is None or matcher in ("", "*"):
        return True
    if _EXACT.fullmatch(matcher):
        return value in matcher.split("|")
    return re.search(matcher, value) is not None


# --------------------------------------------------------------------------- hook input


def permission_mode(approval_policy: Any) -> str:
    """The ``permission_mode`` hooks are told: ``bypassPermissions`` when nothing is asked."""
    return "bypassPermissions" if approval_policy == "never" else "default"


def session_start_input(
    *, thread_id: str, transcript_path: str | None, cwd: str, model: str,
    approval_policy: Any, source: str,
) -> dict[str, Any]:  # fmt: skip
    """The JSON a ``SessionStart`` hook reads on stdin (the reference's fields and order);
    ``source`` is ``startup`` for a new thread, ``resume`` for one loaded again."""
    return {
        "session_id": thread_id,
        "transcript_path": transcript_path,
        "cwd": cwd,
        "hook_event_name": "SessionStart",
        "model": model,
        "permission_mode": permission_mode(approval_policy),
        "source": source,
    }


def stop_input(
    *, thread_id: str, turn_id: str, transcript_path: str | None, cwd: str, model: str,
    approval_policy: Any, stop_hook_active: bool, last_assistant_message: str | None,
) -> dict[str, Any]:  # fmt: skip
    """The JSON a ``Stop`` hook reads on stdin; ``stop_hook_active`` is true when the turn
    already continued because of a Stop hook, so a hook can let it end."""
    return {
        "session_id": thread_id,
        "turn_id": turn_id,
        "transcript_path": transcript_path,
        "cwd": cwd,
        "hook_event_name": "Stop",
        "model": model,
        "permission_mode": permission_mode(approval_policy),
        "stop_hook_active": stop_hook_active,
        "last_assistant_message": last_assistant_message,
    }


def compact_input(
    event: Literal["PreCompact", "PostCompact"], *, thread_id: str, turn_id: str,
    transcript_path: str | None, cwd: str, model: str, trigger: Literal["manual", "auto"],
) -> dict[str, Any]:  # fmt: skip
    """The JSON a ``PreCompact`` / ``PostCompact`` hook reads on stdin; ``trigger`` is
    ``manual`` for ``thread/compact/start``, ``auto`` past ``model_auto_compact_token_limit``."""
    return {
        "session_id": thread_id,
        "turn_id": turn_id,
        "transcript_path": transcript_path,
        "cwd": cwd,
        "hook_event_name": event,
        "model": model,
        "trigger": trigger,
    }


# --------------------------------------------------------------------------- hook output


class _Universal(BaseModel):
    """Hook output JSON as the reference reads it: an unknown key makes it invalid;
    ``suppressOutput`` is accepted and, as there, changes nothing."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    continue_: bool = Field(True, alias="continue")
    stop_reason: str | None = Field(None, alias="stopReason")
    suppress_output: bool = Field(False, alias="suppressOutput")
    system_message: str | None = Field(None, alias="systemMessage")


class _SessionStartSpecific(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    hookEventName: str  # required, but (as the reference) not checked
    additionalContext: str | None = None


class _SessionStartOutput(_Universal):
    hook_specific_output: _SessionStartSpecific | None = Field(None, alias="hookSpecificOutput")


class _StopOutput(_Universal):
    decision: Literal["block"] | None = None
    reason: str | None = None


_Output = TypeVar("_Output", bound=_Universal)


def _parse(model: type[_Output], stdout: str) -> _Output | None:
    try:
        value = json.loads(stdout)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


@dataclass(slots=True)
class _Ran:
    """What one handler's process did."""

    started_at: int
    started: float
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    completed_at: int = 0
    duration_ms: int = 0


@dataclass(slots=True)
class _Parsed:
    status: str = "completed"
    entries: list[dict[str, str]] = field(default_factory=list)
    stop_reason: str | None = None
    stop: bool = False
    block_reason: str | None = None
    contexts: list[str] = field(default_factory=list)

    def entry(self, kind: str, text: str) -> None:
        self.entries.append({"kind": kind, "text": text})

    def fail(self, text: str) -> None:
        self.status = "failed"
        self.entry("error", text)

    def universal(self, output: _Universal) -> None:
        if output.system_message is not None:
            self.entry("warning", output.system_message)

    def stopped(self, output: _Universal) -> None:
        self.status, self.stop, self.stop_reason = "stopped", True, output.stop_reason
        if output.stop_reason is not None:
            self.entry("stop", output.stop_reason)


def _parse_session_start(ran: _Ran) -> _Parsed:
    parsed = _Parsed()
    if _failed(ran, parsed):
        return parsed
    text = ran.stdout.strip()
    if not text:
        return parsed
    output = _parse(_SessionStartOutput, text)
    if output is not None:
        parsed.universal(output)
        specific = output.hook_specific_output
        if specific is not None and specific.additionalContext is not None:
            parsed.entry("context", specific.additionalContext)
            parsed.contexts.append(specific.additionalContext)
        if not output.continue_:
            parsed.stopped(output)
    elif text.startswith(("{", "[")):
        parsed.fail("hook returned invalid session start JSON output")
    else:
        parsed.entry("context", text)
        parsed.contexts.append(text)
    return parsed


def _parse_stop(ran: _Ran) -> _Parsed:
    parsed = _Parsed()
    if ran.error is None and ran.exit_code == 2:
        reason = ran.stderr.strip()
        if reason:
            _block(parsed, reason)
        else:
            parsed.fail(
                "Stop hook exited with code 2 but did not write a continuation prompt to stderr"
            )
        return parsed
    if _failed(ran, parsed):
        return parsed
    text = ran.stdout.strip()
    if not text:
        return parsed
    output = _parse(_StopOutput, text)
    if output is None:
        parsed.fail("hook returned invalid stop hook JSON output")
        return parsed
    parsed.universal(output)
    if not output.continue_:
        parsed.stopped(output)
    elif output.decision == "block":
        reason = (output.reason or "").strip()
        if reason:
            _block(parsed, reason)
        else:
            parsed.fail("Stop hook returned decision:block without a non-empty reason")
    return parsed


def _block(parsed: _Parsed, reason: str) -> None:
    parsed.status, parsed.block_reason = "blocked", reason
    parsed.entry("feedback", reason)


def _failed(ran: _Ran, parsed: _Parsed) -> bool:
    """Record a run that did not exit 0; true when there is nothing more to read."""
    if ran.error is not None:
        parsed.fail(ran.error)
    elif ran.exit_code is None:
        parsed.fail("hook exited without a status code")
    elif ran.exit_code != 0:
        parsed.fail(f"hook exited with code {ran.exit_code}")
    else:
        return False
    return True


def _compact_parser(event: str) -> Callable[[_Ran], _Parsed]:
    """How the reference reads a ``PreCompact`` / ``PostCompact`` hook: exit 2 fails with its
    stderr, plain text is ignored, JSON may carry a ``systemMessage`` or ``continue: false``
    (a PreCompact one cancels the compaction), anything else in it is invalid."""

    def parse(ran: _Ran) -> _Parsed:
        parsed = _Parsed()
        if ran.error is None and ran.exit_code == 2 and ran.stderr.strip():
            parsed.fail(ran.stderr.strip())
            return parsed
        if _failed(ran, parsed):
            return parsed
        text = ran.stdout.strip()
        if not text.startswith(("{", "[")):
            return parsed
        output = _parse(_Universal, text)
        if output is None:
            parsed.fail(f"hook returned invalid {event} hook JSON output")
            return parsed
        parsed.universal(output)
        if not output.continue_:
            parsed.stopped(output)
        return parsed

    return parse


_PARSERS = {
    "SessionStart": _parse_session_start,
    "Stop": _parse_stop,
    "PreCompact": _compact_parser("PreCompact"),
    "PostCompact": _compact_parser("PostCompact"),
}


# --------------------------------------------------------------------------- running


@dataclass(slots=True)
class HookOutcome:
    """What the hooks of one event decided, for the turn engine to act on."""

    #: The ``HookRunSummary`` of each hook that ran, as ``hook/completed`` carried it.
    runs: list[dict[str, Any]] = field(default_factory=list)
    #: A hook answered ``continue: false``: end the turn now (no block, no more sampling).
    stop: bool = False
    stop_reason: str | None = None
    #: ``HookPromptFragment``s (``text``, ``hookRunId``) of the Stop hooks that blocked.
    fragments: list[dict[str, str]] = field(default_factory=list)
    #: ``SessionStart`` text for the model (one developer message each).
    additional_contexts: list[str] = field(default_factory=list)

    @property
    def block(self) -> bool:
        """A Stop hook blocked: continue the turn with ``hook_prompt_message(fragments)``."""
        return bool(self.fragments)


async def run_hooks(
    handlers: list[HookHandler],
    event: Literal["SessionStart", "Stop", "PreCompact", "PostCompact"],
    payload: dict[str, Any],
    *,
    cwd: str,
    thread_id: str,
    turn_id: str | None,
    emit: Emit,
    matcher_input: str | None = None,
) -> HookOutcome:
    """Run the handlers of ``event`` that match ``matcher_input`` (a SessionStart's
    ``source``; Stop hooks ignore matchers) and return what they decided.

    ``emit(method, params)`` sends ``hook/started`` for each before any runs and
    ``hook/completed`` for each, in configuration order, once all have finished.
    """
    selected = [
        handler
        for handler in handlers
        if handler.event == event
        and (event == "Stop" or matches(handler.matcher, matcher_input or ""))
    ]
    outcome = HookOutcome()
    if not selected:
        return outcome
    stdin = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    for handler in selected:
        params = {"threadId": thread_id, "turnId": turn_id,
                  "run": handler.summary("running", int(time.time()))}  # fmt: skip
        emit("hook/started", params)
    results: list[_Ran | None] = [None] * len(selected)

    async def run(index: int, handler: HookHandler) -> None:
        results[index] = await _run_command(handler, stdin, cwd)

    async with anyio.create_task_group() as group:
        for index, handler in enumerate(selected):
            group.start_soon(run, index, handler)
    for handler, ran in zip(selected, results, strict=True):
        assert ran is not None
        parsed = _PARSERS[event](ran)
        summary = handler.summary(parsed.status, ran.started_at)
        summary.update(completedAt=ran.completed_at, durationMs=ran.duration_ms,
                       entries=parsed.entries)  # fmt: skip
        emit("hook/completed", {"threadId": thread_id, "turnId": turn_id, "run": summary})
        outcome.runs.append(summary)
        outcome.additional_contexts.extend(parsed.contexts)
        if parsed.stop:
            outcome.stop = True
            outcome.stop_reason = outcome.stop_reason or parsed.stop_reason
        if parsed.block_reason is not None:
            outcome.fragments.append({"text": parsed.block_reason, "hookRunId": handler.run_id})
    if outcome.stop:
        outcome.fragments = []  # a hook that stops the turn wins over one that continues it
    return outcome


async def _run_command(handler: HookHandler, stdin: bytes, cwd: str) -> _Ran:
    """Run one handler with ``stdin``; a timeout or a cancellation kills its process group."""
    ran = _Ran(started_at=int(time.time()), started=time.monotonic())
    try:
        process = await anyio.open_process(
            [_shell(), "-c", handler.command], cwd=cwd, start_new_session=True
        )
    except OSError as exc:
        ran.error = str(exc)
        return _done(ran)
    async with process:
        try:
            with anyio.move_on_after(handler.timeout_sec) as scope:
                ran.stdout, ran.stderr = await _communicate(process, stdin)
                code = await process.wait()
                ran.exit_code = code if code >= 0 else None  # killed by a signal: no status
        finally:  # timed out, or the turn was interrupted: nothing of the hook survives
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
    if scope.cancelled_caught:
        ran.error = f"hook timed out after {handler.timeout_sec}s"
    return _done(ran)


def _shell() -> str:
    """The user's shell from the password database (not ``$SHELL``), as the reference."""
    try:
        return pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
    except KeyError:
        return "/bin/sh"


async def _communicate(process: Process, stdin: bytes) -> tuple[str, str]:
    assert process.stdin is not None and process.stdout is not None
    assert process.stderr is not None
    output: dict[str, str] = {}

    async def feed() -> None:
        assert process.stdin is not None
        try:
            await process.stdin.send(stdin)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the hook does not read its input: that is its choice
        finally:
            await process.stdin.aclose()

    async def read(name: str, stream: ByteReceiveStream) -> None:
        chunks = [chunk async for chunk in stream]
        output[name] = b"".join(chunks).decode(errors="replace")

    async with anyio.create_task_group() as group:
        group.start_soon(feed)
        group.start_soon(read, "stdout", process.stdout)
        group.start_soon(read, "stderr", process.stderr)
    return output["stdout"], output["stderr"]


def _done(ran: _Ran) -> _Ran:
    ran.completed_at = int(time.time())
    ran.duration_ms = int((time.monotonic() - ran.started) * 1000)
    return ran


# --------------------------------------------------------------------------- model input


def context_message(text: str) -> dict[str, Any]:
    """A SessionStart hook's additional context: a developer message the model reads from
    this turn on (with an id, as the reference sends it)."""
    return {"type": "message", "id": f"msg_{uuid7()}", "role": "developer",
            "content": [{"type": "input_text", "text": text}]}  # fmt: skip


def hook_prompt_text(text: str, hook_run_id: str) -> str:
    """One fragment as the model sees it: ``<hook_prompt hook_run_id="...">text</hook_prompt>``."""
    from xml.sax.saxutils import escape  # loads urllib.request: only when a hook speaks

    run_id = escape(hook_run_id, {'"': "&quot;"})
    return f'<hook_prompt hook_run_id="{run_id}">{escape(text)}</hook_prompt>'


def hook_prompt_message(fragments: list[dict[str, str]]) -> dict[str, Any]:
    """The user message (a Responses API item) a blocked Stop continues the turn with."""
    content = [
        {"type": "input_text", "text": hook_prompt_text(f["text"], f["hookRunId"])}
        for f in fragments
    ]
    return {"type": "message", "id": f"msg_{uuid7()}", "role": "user", "content": content}


def hook_prompt_item(message: dict[str, Any], fragments: list[dict[str, str]]) -> dict[str, Any]:
    """The ``hookPrompt`` thread item of that message (same id), for ``item/*``."""
    at = time.time_ns() // 1_000_000
    return {"type": "hookPrompt", "id": message["id"],
            "fragments": [{"text": f["text"], "hookRunId": f["hookRunId"]} for f in fragments],
            "startedAtMs": at, "completedAtMs": at}  # fmt: skip
