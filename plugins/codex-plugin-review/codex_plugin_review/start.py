"""``review/start``: checks, then a review turn on the thread (``codex_plugin_review.reviewer``).

Checked in the reference's order: the thread id, that the thread is loaded (``thread not
found``), then the target (an empty branch, sha or instructions). A base-branch review outside
a git work tree is accepted and then fails as the reference's does: the thread goes to
``systemError`` and an ``error`` notification names the folder; no turn runs. A review of a
thread whose turn is running interrupts that turn and starts when it has ended, as the
reference does; meanwhile ``turn/start`` and ``turn/steer`` are refused in the reference's
words (a ``review`` turn, see ``codex_core.threads.compaction.refuse_input``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codex_core.protocol.wire import to_wire
from codex_core.rpc import INVALID_REQUEST, RequestContext, RpcError
from codex_core.threads import rollout
from codex_core.threads.ids import uuid7
from codex_core.threads.turns import Turn
from codex_plugin_review.reviewer import Review, reply_turn
from codex_plugin_review.targets import NotARepository, parse_target

if TYPE_CHECKING:
    from codex_core.threads.methods import LoadedThread, ThreadRegistry


async def start(ctx: RequestContext, params: Any) -> dict[str, Any]:
    registry: ThreadRegistry = ctx.kernel.services["threads"]
    thread_id = registry.thread_id(params.thread_id)
    loaded = registry.threads.get(thread_id)
    if loaded is None:
        raise RpcError(INVALID_REQUEST, f"thread not found: {thread_id}")
    target = parse_target(to_wire(getattr(params.target, "root", params.target)))
    turn_id = uuid7()
    try:
        prompt = await target.prompt(str(loaded.settings["cwd"]))
    except NotARepository as exc:
        message = str(exc)
        ctx.after_reply.append(lambda: _not_a_repository(registry, loaded, turn_id, message))
        return {"turn": reply_turn(turn_id, target.hint), "reviewThreadId": thread_id}
    review = Review(registry, target.hint, prompt, target.wire)
    turn = Turn(registry=registry, loaded=loaded, id=turn_id, user_item=None,
                client_name=ctx.connection.client_name,
                client_version=ctx.connection.client_version, body=review.run,
                kind="review")  # fmt: skip
    running, review.turn, loaded.active = loaded.active, turn, turn
    if not loaded.thread["preview"]:
        loaded.thread["preview"] = rollout.user_text(
            {"content": [{"type": "text", "text": prompt}]}
        )

    async def begin() -> None:
        if running is not None:  # as the reference: the review interrupts the running turn
            running.scope.cancel()
            running.interrupt_replied.set()
            await running.done.wait()
        registry.launch(loaded, turn, announce=review.enter, started=review.started)

    ctx.after_reply.append(lambda: ctx.kernel.start_soon(begin, name=f"review {turn_id}"))
    return {"turn": reply_turn(turn_id, target.hint), "reviewThreadId": thread_id}


def _not_a_repository(
    registry: ThreadRegistry, loaded: LoadedThread, turn_id: str, message: str
) -> None:
    registry.set_status(loaded, {"type": "systemError"})
    error = {"message": message, "codexErrorInfo": "other", "additionalDetails": None}
    registry.emit(loaded, "error", {"error": error, "willRetry": False, "threadId": loaded.id,
                                    "turnId": turn_id})  # fmt: skip
