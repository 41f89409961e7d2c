"""``spawn_agent`` and ``wait_agent``: the model's side of sub-agents, as the reference offers them.

Both sit in the reference's ``multi_agent_v1`` namespace and show up in the parent's turn as
``collabAgentToolCall`` items. ``spawn_agent`` returns at once with the child's id and nickname
(the child works meanwhile); ``wait_agent`` blocks until one of the given children is done and
hands the model their final messages. Arguments, outputs and error texts are the reference's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from codex_core.hookspecs import Tool, ToolResult
from codex_core.threads.tools import ToolContext
from codex_plugin_subagents import agents

NAMESPACE = "multi_agent_v1"


def offered(setting: Callable[[str], Any]) -> bool:
    """``features.multi_agent = false`` takes the sub-agent tools away from a thread's model,
    as in the reference (the TUI's temporary structured threads set it)."""
    return setting("features.multi_agent") is not False


DEFAULT_WAIT_MS, MIN_WAIT_MS, MAX_WAIT_MS = 30_000, 10_000, 3_600_000
#: ``items`` entries of ``spawn_agent`` -> the protocol's ``UserInput``: its type, the entry's
#: key and the ``UserInput`` field that holds the value.
_ITEM_TYPES = {"text": ("text", "text", "text"), "image": ("image", "image_url", "url"),
               "local_image": ("localImage", "path", "path")}  # fmt: skip
_INPUT_ITEMS = {
    "type": "array",
    "description": "Structured input for the agent instead of `message`: text, images.",
    "items": {
        "type": "object",
        "properties": {
            "type": {"type": "string", "description": "text, image or local_image."},
            "text": {"type": "string", "description": "The text, when type is text."},
            "image_url": {"type": "string", "description": "The image URL, when type is image."},
            "path": {"type": "string", "description": "The file, when type is local_image."},
        },
        "additionalProperties": False,
    },
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def output(value: dict[str, Any]) -> str:
    """A tool output as the reference writes it: compact JSON."""
    return json.dumps(value, separators=(",", ":"))


def collab_item(context: ToolContext, tool: str, **fields: Any) -> dict[str, Any]:
    """A ``collabAgentToolCall`` item of the calling turn, in progress."""
    return {"type": "collabAgentToolCall", "id": context.call_id, "tool": tool,
            "status": "inProgress", "senderThreadId": context.thread_id, "receiverThreadIds": [],
            "prompt": None, "model": None, "reasoningEffort": None, "agentsStates": {},
            "startedAtMs": now_ms(), "completedAtMs": None, **fields}  # fmt: skip


def agent_input(arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """The child's first user input, from ``message`` or ``items`` (exactly one of them)."""
    message, items = arguments.get("message"), arguments.get("items")
    if message is not None and items is not None:
        raise agents.CollabError("Provide either message or items, but not both")
    if message is None and items is None:
        raise agents.CollabError("Provide one of: message or items")
    if message is not None:
        if not isinstance(message, str) or not message.strip():
            raise agents.CollabError("Empty message can't be sent to an agent")
        return [{"type": "text", "text": message, "text_elements": []}]
    if not isinstance(items, list) or not items:
        raise agents.CollabError("Items can't be empty")
    content: list[dict[str, Any]] = []
    for entry in items:
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind not in _ITEM_TYPES:
            raise agents.CollabError(f"unsupported input item type for an agent: {kind}")
        wire_type, key, field = _ITEM_TYPES[kind]
        value = entry.get(key)
        if not isinstance(value, str):
            raise agents.CollabError(f"a {kind} item needs `{key}`")
        content.append({"type": wire_type, field: value}
                       | ({"text_elements": []} if wire_type == "text" else {}))  # fmt: skip
    return content


class SpawnAgent(Tool):
    """``spawn_agent``: start a sub-agent on a task; returns its id at once."""

    name = "spawn_agent"
    namespace = NAMESPACE
    namespaced_name = "spawn_agent"
    offered = staticmethod(offered)
    description = (
        "Start a sub-agent: a separate agent with its own thread that works on a well-scoped "
        "task in the same workspace, with your model, permissions and working directory. "
        "Returns its `agent_id` and `nickname` at once; it works in the background, and "
        "`wait_agent` returns its final answer. Only spawn agents when the user or the "
        "project's instructions ask for sub-agents or parallel work."
    )
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "message": {"type": "string",
                        "description": "The agent's task, as plain text. Use message or items."},
            "items": _INPUT_ITEMS,
            "model": {"type": "string", "description": "Another model for the agent; omit to "
                                                       "use yours."},
            "reasoning_effort": {"type": "string", "description": "Reasoning effort for the "
                                                                  "agent; omit to use yours."},
        },
        "additionalProperties": False,
    }  # fmt: skip

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        model, effort = arguments.get("model"), arguments.get("reasoning_effort")
        try:
            content = agent_input(arguments)
            for key, value in (("model", model), ("reasoning_effort", effort)):
                if value is not None and not (isinstance(value, str) and value):
                    raise agents.CollabError(f"{key} must be a non-empty string")
        except agents.CollabError as exc:
            return ToolResult(str(exc), success=False)
        settings = context.turn.settings
        prompt = "\n".join(str(part["text"]) for part in content if part["type"] == "text")
        item = collab_item(context, "spawnAgent", prompt=prompt, model=model or "",
                           reasoningEffort=effort or settings["reasoningEffort"])  # fmt: skip
        context.item_started(item)
        try:
            child = await agents.spawn(context, content, model=model, effort=effort)
        except Exception as exc:
            context.item_completed({**item, "status": "failed", "completedAtMs": now_ms()})
            if isinstance(exc, agents.CollabError):
                return ToolResult(str(exc), success=False)
            raise
        status, message = agents.state(agents.registry_of(context), child.id)
        context.item_completed(
            {**item, "status": "completed", "receiverThreadIds": [child.id],
             "model": child.settings["model"], "completedAtMs": now_ms(),
             "agentsStates": {child.id: {"status": status, "message": message}}}
        )  # fmt: skip
        nickname = child.thread["agentNickname"]
        return ToolResult(output({"agent_id": child.id, "nickname": nickname}))


class WaitAgent(Tool):
    """``wait_agent``: block until one of the given sub-agents is done; their final states."""

    name = "wait_agent"
    namespace = NAMESPACE
    namespaced_name = "wait_agent"
    offered = staticmethod(offered)
    description = (
        "Wait until one of the given sub-agents finishes, then return the final status of "
        "those that did: a completed agent's status carries its final message. Returns an "
        "empty status with `timed_out: true` when none finished in time. Only wait when your "
        "next step needs the result."
    )
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "targets": {"type": "array", "items": {"type": "string"},
                        "description": "Agent ids (from spawn_agent); returns when any of them "
                                       "finishes."},
            "timeout_ms": {"type": "number",
                           "description": f"How long to wait: default {DEFAULT_WAIT_MS}, at "
                                          f"least {MIN_WAIT_MS}, at most {MAX_WAIT_MS}."},
        },
        "required": ["targets"],
        "additionalProperties": False,
    }  # fmt: skip

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        targets = arguments.get("targets")
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            return ToolResult("targets must be a list of agent ids", success=False)
        if not targets:
            return ToolResult("agent ids must be non-empty", success=False)
        timeout_ms = arguments.get("timeout_ms", DEFAULT_WAIT_MS)
        if not isinstance(timeout_ms, int | float) or timeout_ms <= 0:
            return ToolResult("timeout_ms must be greater than zero", success=False)
        timeout_ms = min(max(timeout_ms, MIN_WAIT_MS), MAX_WAIT_MS)
        registry = agents.registry_of(context)
        item = collab_item(context, "wait", receiverThreadIds=list(targets))
        context.item_started(item)
        finished = await agents.wait_any(registry, targets, timeout_ms / 1000)
        states = {target: agents.state(registry, target) for target in targets}
        final = {t: s for t, s in states.items() if s[0] in agents.FINAL}
        context.item_completed(
            {**item, "status": "completed", "completedAtMs": now_ms(),
             "agentsStates": {t: {"status": s, "message": m} for t, (s, m) in final.items()}}
        )  # fmt: skip
        return ToolResult(output({"status": {t: model_status(s, m) for t, (s, m) in final.items()},
                                  "timed_out": not finished}))  # fmt: skip


def model_status(status: str, message: str | None) -> Any:
    """A ``CollabAgentStatus`` as the model reads it (the reference's ``AgentStatus``)."""
    if status in ("completed", "errored"):
        return {status: message}
    return {"pendingInit": "pending_init", "notFound": "not_found"}.get(status, status)
