"""Sub-agents as threads: how a child is started, what state it is in, waiting for it.

A sub-agent is an ordinary thread (persisted, readable, resumable, in ``thread/loaded/list``)
made with the registry's own ``thread/start`` and ``turn/start`` on behalf of a client that
watches the parent, so it gets the parent's model provider, cwd, approval policy, reviewer and
sandbox exactly as a client's thread would. What makes it a sub-agent are the reference's
fields on its ``Thread`` (``parentThreadId``, the ``subAgent.thread_spawn`` source,
``threadSource: subagent``, an ``agentNickname``, the parent's ``sessionId``) and that every
client subscribed to the parent is subscribed to it and told with ``thread/started``: they see
its turn stream and answer its approval requests.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.protocol.models import load
from codex_core.rpc import RequestContext

if TYPE_CHECKING:
    from codex_core.threads.methods import LoadedThread, ThreadRegistry
    from codex_core.threads.tools import ToolContext

#: How deep sub-agents may nest: the reference's default lets the user's thread spawn, not its
#: children.
MAX_DEPTH = 1
DEPTH_LIMIT = "Agent depth limit reached. Solve the task yourself."
#: Names for sub-agents, so people can tell them apart; the first one not in use is taken.
NICKNAMES = (
    "Euclid", "Hypatia", "Noether", "Gauss", "Lovelace", "Turing", "Ramanujan", "Euler",
    "Kovalevskaya", "Riemann", "Hilbert", "Germain", "Fermat", "Galois", "Leibniz", "Pascal",
)  # fmt: skip
#: States after which a sub-agent does nothing more until told to (``wait_agent`` returns).
FINAL = {"completed", "errored", "interrupted", "shutdown", "notFound"}


class CollabError(Exception):
    """A sub-agent call that cannot go on; the message is what the model reads."""


def registry_of(context: ToolContext) -> ThreadRegistry:
    registry: ThreadRegistry = context.kernel.services["threads"]
    return registry


def spawn_depth(thread: dict[str, Any]) -> int:
    """How many spawns away from a user's thread this thread is (0 for a user's thread)."""
    source = thread.get("source")
    sub_agent = source.get("subAgent") if isinstance(source, dict) else None
    spawn = sub_agent.get("thread_spawn") if isinstance(sub_agent, dict) else None
    return int(spawn.get("depth") or 0) if isinstance(spawn, dict) else 0


def nickname(registry: ThreadRegistry) -> str:
    taken = {loaded.thread.get("agentNickname") for loaded in registry.threads.values()}
    for round_ in itertools.count(1):
        for name in NICKNAMES:
            candidate = name if round_ == 1 else f"{name} {round_}"
            if candidate not in taken:
                return candidate
    raise AssertionError("unreachable")


async def spawn(
    context: ToolContext, content: list[dict[str, Any]], *, model: str | None, effort: str | None
) -> LoadedThread:
    """Start a child thread of the calling turn's thread and its first turn with ``content``."""
    registry = registry_of(context)
    parent = context.turn.loaded
    depth = spawn_depth(parent.thread) + 1
    if depth > MAX_DEPTH:
        raise CollabError(DEPTH_LIMIT)
    watchers = list(parent.subscribers)
    if not watchers:
        raise CollabError(f"no client is subscribed to thread {parent.id} to watch the agent")
    settings = parent.settings
    on_behalf = RequestContext(context.kernel, watchers[0], "thread/start", context.call_id)
    start = load("ThreadStartParams").model_validate(
        {"cwd": settings["cwd"], "model": model or settings["model"],
         "modelProvider": settings["modelProvider"], "approvalPolicy": settings["approvalPolicy"],
         "approvalsReviewer": settings["approvalsReviewer"], "sandbox": context.sandbox_mode,
         "baseInstructions": parent.base_instructions,
         "ephemeral": parent.thread["ephemeral"]}
    )  # fmt: skip
    started = await registry.start(on_behalf, start)  # its own thread/started is not sent
    child = registry.threads[started["thread"]["id"]]
    name = nickname(registry)
    child.thread.update(
        sessionId=parent.thread["sessionId"],
        parentThreadId=parent.id,
        source={"subAgent": {"thread_spawn": {
            "parent_thread_id": parent.id, "depth": depth, "agent_path": None,
            "agent_nickname": name, "agent_role": None}}},
        threadSource="subagent",
        agentNickname=name,
    )  # fmt: skip
    child.subscribers.update(watchers)
    registry.emit(child, "thread/started", {"thread": child.thread})
    on_behalf = RequestContext(context.kernel, watchers[0], "turn/start", context.call_id)
    turn = load("TurnStartParams").model_validate(
        {"threadId": child.id, "input": content, "sandboxPolicy": settings["sandbox"],
         "effort": effort or settings["reasoningEffort"]}
    )  # fmt: skip
    await registry.turn_start(on_behalf, turn)
    for launch in on_behalf.after_reply:
        launch()
    return child


def state(registry: ThreadRegistry, thread_id: str) -> tuple[str, str | None]:
    """A sub-agent's ``CollabAgentStatus`` and, once it ended, its final message or error."""
    loaded = registry.threads.get(thread_id)
    if loaded is None or loaded.thread.get("parentThreadId") is None:
        return "notFound", None
    if loaded.active is not None:
        return "running", None
    if not loaded.turns:
        return "pendingInit", None
    last = loaded.turns[-1]
    if last["status"] == "failed":
        return "errored", str((last.get("error") or {}).get("message") or "")
    if last["status"] == "interrupted":
        return "interrupted", None
    answer = next((i["text"] for i in reversed(last["items"]) if i["type"] == "agentMessage"), None)
    return "completed", answer


async def wait_any(registry: ThreadRegistry, thread_ids: list[str], timeout: float) -> bool:
    """Wait until one of the sub-agents is in a final state; ``False`` on timeout."""
    if any(state(registry, thread_id)[0] in FINAL for thread_id in thread_ids):
        return True
    with anyio.move_on_after(timeout):
        async with anyio.create_task_group() as tasks:

            async def finish(thread_id: str) -> None:
                turn = registry.threads[thread_id].active  # not final: a turn is running
                if turn is not None:
                    await turn.done.wait()
                tasks.cancel_scope.cancel()

            for thread_id in thread_ids:
                tasks.start_soon(finish, thread_id)
        return True
    return False
