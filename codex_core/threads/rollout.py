"""Rollout files: a thread's history as JSONL, in the official server's format.

A rollout lives at ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<timestamp>-<threadId>.jsonl``
(``archived_sessions/`` once archived). Each line is
``{"timestamp", "ordinal", "type", "payload"}``; the types this module writes and reads:

- ``session_meta``: the thread's id, cwd, originator, cli version, source, model provider;
- ``turn_context``: a turn's settings (model, cwd, approval policy, sandbox);
- ``response_item``: what the model saw or said (Responses API items), for resuming;
- ``compacted``: a compaction's summary (``message``) and the history that replaced the
  model's (``replacement_history``, ``codex_core.threads.compaction``);
- ``event_msg``: ``task_started``, ``item_completed`` (the protocol items, in the reference's
  ``UserMessage`` / ``AgentMessage`` / ``Reasoning`` shapes), ``token_count``,
  ``task_complete`` (with ``error`` when the turn failed), ``turn_aborted``.

Lines of other types (``world_state``, ``token_usage_record``, ...) are kept by the reference
for itself and skipped here. Thread names live beside the rollouts in
``$CODEX_HOME/session_index.jsonl`` (one ``{"id", "thread_name", "updated_at"}`` per rename;
the last one wins).
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from codex_core.threads import review_format
from codex_core.threads.compaction import compacted_history

log = logging.getLogger(__name__)

SESSIONS = "sessions"
ARCHIVED = "archived_sessions"
SESSION_INDEX = "session_index.jsonl"
_NAME = re.compile(
    r"^rollout-(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})-"
    r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\.jsonl$"
)


def rollout_path(codex_home: Path, thread_id: str, when: datetime) -> Path:
    return (
        codex_home
        / SESSIONS
        / when.strftime("%Y/%m/%d")
        / f"rollout-{when.strftime('%Y-%m-%dT%H-%M-%S')}-{thread_id}.jsonl"
    )


def thread_id_of(path: Path) -> str | None:
    match = _NAME.match(path.name)
    return match.group(7).lower() if match else None


def created_of(path: Path) -> datetime:
    """When a rollout was created, from its name (to the second, UTC)."""
    match = _NAME.match(path.name)
    if match is None:
        raise ValueError(f"not a rollout file name: {path.name}")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class RolloutWriter:
    """Appends lines to one rollout; every line is flushed, so a crash loses nothing written."""

    def __init__(self, path: Path, ordinal: int = 0) -> None:
        self.path = path
        self.ordinal = ordinal
        self._file: IO[str] | None = None

    def append(self, kind: str, payload: dict[str, Any]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        line = {"timestamp": iso_now(), "ordinal": self.ordinal, "type": kind, "payload": payload}
        self.ordinal += 1
        self._file.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._file.flush()

    def event(self, payload: dict[str, Any]) -> None:
        self.append("event_msg", payload)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


# ---------------------------------------------------------------------------- item shapes


def item_to_rollout(item: dict[str, Any]) -> dict[str, Any] | None:
    """A protocol item in the reference's ``item_completed`` shape (``None``: not stored)."""
    kind = item.get("type")
    if kind == "userMessage":
        return {"type": "UserMessage", "id": item["id"], "content": item["content"]}
    if kind == "agentMessage":
        return {"type": "AgentMessage", "id": item["id"],
                "content": [{"type": "Text", "text": item["text"]}]}  # fmt: skip
    if kind == "hookPrompt":
        return {"type": "HookPrompt", "id": item["id"], "fragments": item["fragments"]}
    if kind == "contextCompaction":
        return {"type": "ContextCompaction", "id": item["id"]}
    if kind == "reasoning":
        return {"type": "Reasoning", "id": item["id"], "summary_text": item["summary"],
                "raw_content": item["content"]}  # fmt: skip
    if kind == "commandExecution" and item.get("status") != "declined":
        duration = int(item.get("durationMs") or 0)
        return {
            "type": "CommandExecution",
            "id": item["id"],
            "process_id": item.get("processId"),
            "command": shlex.split(item["command"]),
            "cwd": Path(item["cwd"]).as_uri(),
            "parsed_cmd": [
                {k: v for k, v in action.items() if k != "command"} | {"cmd": action["command"]}
                for action in item.get("commandActions") or []
            ],
            "source": snake(item.get("source") or "agent"),
            "status": item.get("status"),
            "aggregated_output": item.get("aggregatedOutput"),
            "exit_code": item.get("exitCode"),
            "duration": {"secs": duration // 1000, "nanos": duration % 1000 * 1_000_000},
        }
    if kind == "fileChange" and item.get("status") != "declined":
        return {"type": "FileChange", "id": item["id"],
                "changes": {c["path"]: change_to_rollout(c) for c in item.get("changes") or []},
                "status": item.get("status"), "stdout": "", "stderr": ""}  # fmt: skip
    return None


MOVED = "\n\nMoved to: "


def change_to_rollout(change: dict[str, Any]) -> dict[str, Any]:
    """A ``FileUpdateChange`` -> the reference's stored ``FileChange`` entry."""
    kind = change.get("kind") or {}
    diff = str(change.get("diff") or "")
    if kind.get("type") == "update":
        move = kind.get("move_path")
        if move and diff.endswith(MOVED + move):
            diff = diff[: -len(MOVED + move)]
        return {"type": "update", "unified_diff": diff, "move_path": move}
    return {"type": kind.get("type") or "add", "content": diff}


def change_from_rollout(path: str, stored: dict[str, Any]) -> dict[str, Any]:
    if stored.get("type") == "update":
        move = stored.get("move_path")
        diff = str(stored.get("unified_diff") or "") + (MOVED + move if move else "")
        return {"path": path, "kind": {"type": "update", "move_path": move}, "diff": diff}
    kind = "delete" if stored.get("type") == "delete" else "add"
    return {"path": path, "kind": {"type": kind}, "diff": str(stored.get("content") or "")}


def item_from_rollout(
    stored: dict[str, Any], started_at_ms: int | None, completed_at_ms: int | None
) -> dict[str, Any] | None:
    """The protocol item for an ``item_completed`` payload's ``item`` (``None``: unknown)."""
    kind = stored.get("type")
    times = {"startedAtMs": started_at_ms, "completedAtMs": completed_at_ms}
    if kind == "UserMessage":
        return {"type": "userMessage", "id": stored.get("id"), "clientId": None,
                "content": stored.get("content") or [], **times}  # fmt: skip
    if kind == "AgentMessage":
        text = "".join(
            part.get("text", "") for part in stored.get("content") or [] if isinstance(part, dict)
        )
        return agent_message(str(stored.get("id")), text, **_ms(times))
    if kind == "ContextCompaction":
        return {"type": "contextCompaction", "id": stored.get("id"), **times}
    if kind == "HookPrompt":
        return {"type": "hookPrompt", "id": stored.get("id"),
                "fragments": list(stored.get("fragments") or []), **times}  # fmt: skip
    if kind == "EnteredReviewMode":
        return {"type": "enteredReviewMode", "id": stored.get("id"),
                "review": str(stored.get("user_facing_hint") or ""), **times}  # fmt: skip
    if kind == "ExitedReviewMode":
        output = stored.get("review_output")
        return {"type": "exitedReviewMode", "id": stored.get("id"),
                "review": review_format.render(output if isinstance(output, dict) else None),
                **times}  # fmt: skip
    if kind == "Reasoning":
        return {"type": "reasoning", "id": stored.get("id"),
                "summary": list(stored.get("summary_text") or []),
                "content": list(stored.get("raw_content") or []), **times}  # fmt: skip
    if kind == "CommandExecution":
        return command_from_rollout(stored, times)
    if kind == "FileChange":
        changes = stored.get("changes") or {}
        return {"type": "fileChange", "id": stored.get("id"),
                "changes": [change_from_rollout(str(path), entry)
                            for path, entry in changes.items() if isinstance(entry, dict)],
                "status": stored.get("status") or "completed", **times}  # fmt: skip
    return None


def command_from_rollout(stored: dict[str, Any], times: dict[str, Any]) -> dict[str, Any]:
    command = stored.get("command")
    cwd = str(stored.get("cwd") or "")
    if cwd.startswith("file://"):
        cwd = cwd[len("file://") :]
    duration = stored.get("duration")
    duration_ms = None
    if isinstance(duration, dict):
        duration_ms = int(duration.get("secs", 0)) * 1000 + int(duration.get("nanos", 0)) // 10**6
    source = str(stored.get("source") or "agent")
    return {
        "type": "commandExecution",
        "id": stored.get("id"),
        "pluginId": None,
        "scriptPath": None,
        "command": shlex.join(command) if isinstance(command, list) else str(command or ""),
        "cwd": cwd,
        "processId": stored.get("process_id"),
        "source": re.sub(r"_([a-z])", lambda m: m.group(1).upper(), source),
        "status": stored.get("status") or "completed",
        "commandActions": [
            {k: v for k, v in action.items() if k != "cmd"} | {"command": action.get("cmd", "")}
            for action in stored.get("parsed_cmd") or []
            if isinstance(action, dict)
        ],
        "aggregatedOutput": stored.get("aggregated_output"),
        "exitCode": stored.get("exit_code"),
        "durationMs": duration_ms,
        **times,
    }


def _ms(times: dict[str, int | None]) -> dict[str, int | None]:
    return {"started_at_ms": times["startedAtMs"], "completed_at_ms": times["completedAtMs"]}


def agent_message(
    item_id: str, text: str, *, started_at_ms: int | None, completed_at_ms: int | None
) -> dict[str, Any]:
    return {
        "type": "agentMessage",
        "moderation": None,
        "id": item_id,
        "text": text,
        "phase": None,
        "memoryCitation": None,
        "delivery": None,
        "questions": None,
        "startedAtMs": started_at_ms,
        "completedAtMs": completed_at_ms,
    }


def camel(value: Any) -> Any:
    """``internal_server_error`` -> ``internalServerError`` (the rollout stores snake case)."""
    if isinstance(value, str):
        head, *rest = value.split("_")
        return head + "".join(part[:1].upper() + part[1:] for part in rest)
    if isinstance(value, dict):
        return {camel(key): camel(item) if isinstance(item, dict) else item
                for key, item in value.items()}  # fmt: skip
    return value


def snake(value: Any) -> Any:
    """``internalServerError`` -> ``internal_server_error``."""
    if isinstance(value, str):
        return re.sub(r"(?<!^)([A-Z])", r"_\1", value).lower()
    if isinstance(value, dict):
        return {snake(key): snake(item) if isinstance(item, dict) else item
                for key, item in value.items()}  # fmt: skip
    return value


# ---------------------------------------------------------------------------- reading


@dataclass(slots=True)
class StoredThread:
    """What a rollout says about its thread."""

    path: Path
    id: str
    meta: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0
    #: When the session meta line was written (ISO 8601 with milliseconds), if it says.
    written_at: str | None = None
    updated_at: int = 0
    preview: str = ""
    model: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    turns: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    token_usage: dict[str, Any] | None = None
    lines: int = 0
    #: The id of the first turn (where a thread nobody read is unread from).
    first_turn: str | None = None

    @property
    def archived(self) -> bool:
        return ARCHIVED in self.path.parts


#: The line types a listing reads; it passes over the others (the model history, the
#: reference's bookkeeping: most of a rollout's bytes) without parsing them.
_SUMMARY_LINES = (b'"type":"session_meta"', b'"type":"turn_context"', b'"type":"event_msg"')


def _lines(path: Path, only: tuple[bytes, ...] = ()) -> Iterator[dict[str, Any]]:
    """The JSON lines of ``path``; with ``only``, just the lines whose type (in the head of
    the line, where both servers write it) is one of those."""
    with path.open("rb") as handle:
        for raw in handle:
            if only and not any(marker in raw[:100] for marker in only):
                continue
            try:
                line = json.loads(raw.decode("utf-8", errors="replace"))
            except ValueError:
                continue  # a torn last line after a crash, say
            if isinstance(line, dict):
                yield line


def _epoch(timestamp: Any) -> int:
    if not isinstance(timestamp, str):
        return 0
    try:
        return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def read_rollout(path: Path, *, full: bool = True) -> StoredThread | None:
    """Parse a rollout; ``full=False`` stops after the first user message (for listings),
    without the model history (and without counting ``lines``)."""
    thread_id = thread_id_of(path)
    if thread_id is None:
        return None
    stored = StoredThread(path=path, id=thread_id)
    try:
        stored.updated_at = int(path.stat().st_mtime)
        parse_lines(stored, _lines(path, () if full else _SUMMARY_LINES), full=full)
    except OSError as exc:
        log.warning("cannot read rollout %s: %s", path, exc)
        return None
    if not stored.meta:
        return None
    return stored


def read_summary(path: Path) -> StoredThread | None:
    """What ``thread/read`` shows of a thread without its turns: a listing's read, with the
    settings of the last turn (its model) found from the end of the file instead of parsing
    every line before it."""
    stored = read_rollout(path, full=False)
    if stored is None:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return stored
    at = data.rfind(b'"type":"turn_context"')
    if at >= 0:
        start = data.rfind(b"\n", 0, at) + 1
        end = data.find(b"\n", at)
        try:
            line = json.loads(data[start : end if end >= 0 else len(data)])
        except ValueError:
            line = None
        payload = line.get("payload") if isinstance(line, dict) else None
        if isinstance(payload, dict) and line.get("type") == "turn_context":
            stored.context = payload
            stored.model = payload.get("model") or stored.model
    return stored


def parse_lines(stored: StoredThread, lines: Iterable[dict[str, Any]], *, full: bool) -> None:
    """Rebuild turns, model history and settings from rollout lines, oldest first."""
    current: dict[str, Any] | None = None
    for line in lines:
        stored.lines += 1
        kind = line.get("type")
        payload = line.get("payload")
        if not isinstance(payload, dict):
            continue
        if kind == "session_meta":
            stored.meta = payload
            stored.created_at = _epoch(payload.get("timestamp") or line.get("timestamp"))
            written = line.get("timestamp")
            stored.written_at = written if isinstance(written, str) else None
        elif kind == "turn_context":
            stored.context = payload
            stored.model = payload.get("model") or stored.model
        elif kind == "response_item":
            if full and _keep_in_history(payload):
                stored.history.append(_clean_response_item(payload))
        elif kind == "compacted" and full:
            stored.history = compacted(stored.history, payload)
        elif kind == "event_msg":
            current = _apply_event(stored, current, payload)
            if not full and stored.preview:
                break


def fork_lines(
    path: Path | None, *, through_turn: str | None, running_turn: str | None, marker: str
) -> list[dict[str, Any]]:
    """The lines a fork starts from: the source's history, through ``through_turn`` if given.

    Without ``through_turn`` a turn still running in the source ends the copy as interrupted:
    a ``turn_aborted`` event, and ``marker`` as a user message so the model knows.
    """
    lines = [line for line in _lines(path) if line.get("type") != "session_meta"] if path else []
    if through_turn is not None:
        ends = [
            index
            for index, line in enumerate(lines)
            if line.get("type") == "event_msg"
            and (line.get("payload") or {}).get("type") in ("task_complete", "turn_aborted")
            and (line.get("payload") or {}).get("turn_id") == through_turn
        ]
        if not ends:
            raise KeyError(through_turn)
        return lines[: ends[0] + 1]
    if running_turn is not None:
        message = {"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": marker}]}  # fmt: skip
        lines.append({"type": "response_item", "payload": message})
        aborted = {"type": "turn_aborted", "turn_id": running_turn, "reason": "interrupted"}
        lines.append({"type": "event_msg", "payload": aborted})
    return lines


def compacted(history: list[dict[str, Any]], payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The history after a ``compacted`` line: its ``replacement_history``, or, in rollouts
    written before the reference stored one, the history rebuilt around its ``message``."""
    replacement = payload.get("replacement_history")
    if isinstance(replacement, list):
        return [
            _clean_response_item(item)
            for item in replacement
            if isinstance(item, dict) and _keep_in_history(item)
        ]
    return compacted_history(history, str(payload.get("message") or ""))


def _keep_in_history(payload: dict[str, Any]) -> bool:
    if payload.get("type") == "message" and payload.get("role") in ("developer", "system"):
        return False
    return payload.get("type") in (
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
    )


def _clean_response_item(payload: dict[str, Any]) -> dict[str, Any]:
    """A response item as sent back to the model: bookkeeping keys dropped."""
    drop = {"internal_chat_message_metadata_passthrough", "metadata"}
    return {key: value for key, value in payload.items() if key not in drop}


def _apply_event(
    stored: StoredThread, current: dict[str, Any] | None, payload: dict[str, Any]
) -> dict[str, Any] | None:
    kind = payload.get("type")
    if kind == "task_started":
        turn_id = str(payload.get("turn_id"))
        current = {
            "id": turn_id,
            "rootTurnId": payload.get("root_turn_id") or turn_id,
            "items": [],
            "itemsView": "full",
            "status": "inProgress",
            "error": None,
            "startedAt": payload.get("started_at"),
            "completedAt": None,
            "durationMs": None,
        }
        stored.turns.append(current)
        stored.first_turn = stored.first_turn or turn_id
    elif kind == "item_completed":
        item = payload.get("item")
        if isinstance(item, dict):
            converted = item_from_rollout(
                item, payload.get("started_at_ms"), payload.get("completed_at_ms")
            )
            if converted is not None:
                if converted["type"] == "userMessage" and not stored.preview:
                    stored.preview = user_text(converted)
                owner = _owner(stored, current, payload.get("turn_id"))
                if owner is not None:
                    owner["items"].append(converted)
    elif kind in ("task_complete", "turn_aborted") and current is not None:
        error = payload.get("error")
        if kind == "turn_aborted":
            current["status"] = "interrupted"
        elif error:
            current["status"] = "failed"
            current["error"] = {
                "message": error.get("message", ""),
                "codexErrorInfo": camel(error.get("codex_error_info")),
                "additionalDetails": error.get("additional_details"),
            }
        else:
            current["status"] = "completed"
        current["completedAt"] = payload.get("completed_at")
        current["durationMs"] = payload.get("duration_ms")
        current = None
    elif kind == "token_count":
        info = payload.get("info")
        if isinstance(info, dict):
            stored.token_usage = info
    return current


def _owner(
    stored: StoredThread, current: dict[str, Any] | None, turn_id: Any
) -> dict[str, Any] | None:
    """The turn an ``item_completed`` belongs to: the running one, or the earlier turn it
    names (a background terminal's command completes after its turn ended; the reference
    records it then, and lists it in that turn)."""
    if current is not None and turn_id in (None, current["id"]):
        return current
    named = next((turn for turn in reversed(stored.turns) if turn["id"] == turn_id), None)
    return named if named is not None else current


def user_text(item: dict[str, Any]) -> str:
    return "".join(
        part.get("text", "")
        for part in item.get("content") or []
        if isinstance(part, dict) and part.get("type") == "text"
    )


# ---------------------------------------------------------------------------- names


def read_names(codex_home: Path) -> dict[str, str | None]:
    names: dict[str, str | None] = {}
    index = codex_home / SESSION_INDEX
    if not index.is_file():
        return names
    for line in _lines(index):
        thread_id = line.get("id")
        if isinstance(thread_id, str):
            name = line.get("thread_name")
            names[thread_id] = name if isinstance(name, str) and name else None
    return names


def write_name(codex_home: Path, thread_id: str, name: str | None) -> None:
    index = codex_home / SESSION_INDEX
    index.parent.mkdir(parents=True, exist_ok=True)
    entry = {"id": thread_id, "thread_name": name, "updated_at": iso_now()}
    with index.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        handle.flush()
