"""Compaction: the model summarizes the thread, and the summary replaces its history.

As the reference (0.169) compacts, verified against it with the scripted model server
(``tests/test_compaction.py``, ``tests/test_compaction_differential.py``):

- the model is sampled without tools on the thread's history plus ``SUMMARIZATION_PROMPT``
  as a user message; its answer is not shown as an agent message;
- the history becomes: the leading developer messages (the thread's instructions), the
  user's own messages (newest first until ``USER_MESSAGE_BUDGET`` tokens, oldest first in
  the result, only the ends of the one that crosses the budget), then
  ``SUMMARY_PREFIX`` + newline + the summary as one more user message;
- the rollout records a ``compacted`` line with that ``replacement_history`` (what the
  reference writes and reads back), so either server resumes the other's compacted thread;
- the client sees one ``contextCompaction`` item, and three ``thread/tokenUsage/updated``:
  the usage so far (re-sent once the model answers), the summarization request's, and the
  estimate of the new history (``last.totalTokens`` only).

The ``PreCompact`` hooks run before it (one may cancel it) and the ``PostCompact`` ones after
it, with ``trigger`` ``manual`` or ``auto``. ``thread/compact/start`` runs it as a turn of its
own (a running turn is interrupted first, as the reference replaces it); a turn runs it by
itself when the model's last reported usage reached ``model_auto_compact_token_limit``: before
the user's input is added (the input then follows the summary) or between two model requests of
a turn.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Literal

from codex_core.models.contract import (
    OutputItemDone,
    ResponseCompleted,
    ResponseStarted,
    TokenUsage,
)
from codex_core.models.sampling import sample
from codex_core.rpc import INTERNAL_ERROR, INVALID_REQUEST, RequestContext, RpcError
from codex_core.threads.ids import uuid7

if TYPE_CHECKING:
    from codex_core.threads.methods import LoadedThread, ThreadRegistry
    from codex_core.threads.turns import Turn

#: What the model is asked (the reference's ``templates/compact/prompt.md``, byte for byte:
#: the request body the model receives is compared with the reference's).
SUMMARIZATION_PROMPT = (
    "You are performing a CONTEXT CHECKPOINT COMPACTION. Create a handoff summary for another "
    "LLM that will resume the task.\n\nInclude:\n- Current progress and key decisions made\n"
    "- Important context, constraints, or user preferences\n- What remains to be done (clear "
    "next steps)\n- Any critical data, examples, or references needed to continue\n\nBe "
    "concise, structured, and focused on helping the next LLM seamlessly continue the work.\n"
)
#: What the summary is introduced with in the new history (the reference's
#: ``templates/compact/summary_prefix.md``); a user message starting with it and a newline is
#: a summary, not something the user said.
SUMMARY_PREFIX = (
    "Another language model started to solve this problem and produced a summary of its "
    "thinking process. You also have access to the state of the tools that were used by that "
    "language model. Use this to build on the work that has already been done and avoid "
    "duplicating work. Here is the summary produced by the other language model, use the "
    "information in this summary to assist with your own analysis:"
)
#: How many tokens of the user's own messages a compacted history keeps.
USER_MESSAGE_BUDGET = 20_000
#: The reference's token estimate: four bytes of UTF-8 a token, rounded up.
BYTES_PER_TOKEN = 4
#: What the reference keeps of each end of the message that crosses the budget, per token
#: left (measured: a 100,000-byte message alone keeps its first and last 40,000 bytes).
TRUNCATED_BYTES_PER_TOKEN = 2
#: User-role messages the harness wrote (context, markers), which are not the user's words.
CONTEXT_PREFIXES = (
    "<environment_context>",
    "<user_instructions>",
    "# AGENTS.md instructions",
    "<turn_aborted>",
    "<hook_prompt",
    "<skill>",
)


def approx_tokens(text: str) -> int:
    return (len(text.encode()) + BYTES_PER_TOKEN - 1) // BYTES_PER_TOKEN


def truncated(text: str, tokens: int) -> list[dict[str, Any]]:
    """The content a budget of ``tokens`` keeps of ``text``, the reference's way: its first
    and last ``tokens * 2`` bytes (cut at character boundaries) as two text parts, with
    ``…N tokens truncated…`` (N: the tokens left out) as a third part between them."""
    data = text.encode()
    keep = tokens * TRUNCATED_BYTES_PER_TOKEN
    head = data[:keep].decode(errors="ignore")
    tail = data[len(data) - keep :].decode(errors="ignore")
    marker = f"…{approx_tokens(text) - tokens} tokens truncated…"
    return [input_text(head), input_text(marker), input_text(tail)]


def message_text(item: dict[str, Any]) -> str | None:
    """The text of a message item (non-empty spans joined by newlines); ``None`` if none."""
    pieces = [
        str(part.get("text") or "")
        for part in item.get("content") or []
        if isinstance(part, dict) and part.get("type") in ("input_text", "output_text")
    ]
    pieces = [piece for piece in pieces if piece]
    return "\n".join(pieces) if pieces else None


def is_summary(text: str) -> bool:
    return text.startswith(SUMMARY_PREFIX + "\n")


def user_messages(history: list[dict[str, Any]]) -> list[str]:
    """What the user said, oldest first: no summaries, no harness context."""
    found = []
    for item in history:
        if item.get("type") != "message" or item.get("role") != "user":
            continue
        text = message_text(item)
        if text is None or is_summary(text) or text.lstrip().startswith(CONTEXT_PREFIXES):
            continue
        found.append(text)
    return found


def input_text(text: str) -> dict[str, Any]:
    return {"type": "input_text", "text": text}


def user_text_message(text: str) -> dict[str, Any]:
    return user_message([input_text(text)])


def user_message(content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": content}


def compacted_history(
    history: list[dict[str, Any]], summary_text: str, budget: int = USER_MESSAGE_BUDGET
) -> list[dict[str, Any]]:
    """The history that replaces ``history`` once the model summarized it."""
    context = []
    for item in history:
        if item.get("type") != "message" or item.get("role") != "developer":
            break
        context.append(item)
    kept: list[dict[str, Any]] = []
    remaining = budget
    for text in reversed(user_messages(history)):
        if remaining <= 0:
            break
        tokens = approx_tokens(text)
        if tokens <= remaining:
            kept.append(user_text_message(text))
            remaining -= tokens
        else:
            kept.append(user_message(truncated(text, remaining)))
            break
    kept.reverse()
    summary = summary_text or "(no summary available)"
    return [*context, *kept, user_text_message(summary)]


def estimate_tokens(instructions: str, history: list[dict[str, Any]]) -> int:
    """The context the next request starts with, estimated the reference's way (bytes / 4)."""
    serialized = "".join(json.dumps(item, ensure_ascii=False) for item in history)
    return approx_tokens(instructions) + approx_tokens(serialized)


def limit_reached(loaded: LoadedThread, config_limit: Any) -> bool:
    """Whether the model's last reported context reached ``model_auto_compact_token_limit``."""
    if not isinstance(config_limit, int) or isinstance(config_limit, bool) or config_limit <= 0:
        return False
    last = loaded.last_usage
    return last is not None and last["totalTokens"] >= config_limit


async def compact(turn: Turn, trigger: Literal["manual", "auto"] = "manual") -> None:
    """Summarize the thread and replace its history, as one ``contextCompaction`` item, between
    the ``PreCompact`` hooks (one answering ``continue: false`` cancels it: the turn ends
    interrupted) and the ``PostCompact`` ones."""
    from codex_core.threads.tools import TurnAborted
    from codex_core.threads.turns import now_ms

    if (await turn.compact_hooks("PreCompact", trigger)).stop:
        raise TurnAborted()
    loaded = turn.loaded
    item = {"type": "contextCompaction", "id": uuid7(), "startedAtMs": now_ms(),
            "completedAtMs": None}  # fmt: skip
    turn.item_started(item)
    provider_id = str(loaded.settings["modelProvider"])
    prompt = user_text_message(SUMMARIZATION_PROMPT)
    request = turn.model_request(provider_id, [*loaded.history, prompt], tools=False)
    summary = ""
    usage: TokenUsage | None = None
    async with aclosing(sample(turn.registry.kernel, request)) as events:
        async for event in events:
            if isinstance(event, ResponseStarted) and loaded.last_usage is not None:
                # As the reference: the usage so far again once the model answers.
                turn.report_usage(loaded.last_usage)
            elif isinstance(event, OutputItemDone) and event.is_assistant_message:
                turn.record("response_item", dict(event.item))
                summary = message_text(dict(event.item)) or ""
            elif isinstance(event, ResponseCompleted):
                usage = event.usage
    turn.pending_usage = usage
    turn.flush_usage()
    summary_text = f"{SUMMARY_PREFIX}\n{summary}"
    loaded.history = compacted_history(loaded.history, summary_text)
    loaded.mode_instructions_sent = None  # gone with the old history: the next turn resends
    turn.record("compacted", {"message": summary_text, "replacement_history": loaded.history})
    instructions = request.instructions or ""
    estimate = {**dict.fromkeys(loaded.token_total, 0),
                "totalTokens": estimate_tokens(instructions, loaded.history)}  # fmt: skip
    turn.report_usage(estimate, includes_reasoning=True)
    turn.item_completed({**item, "completedAtMs": now_ms()})
    await turn.compact_hooks("PostCompact", trigger)


#: The reference's turn kinds that take no input while they run (a plugin's review turn is
#: ``review``).
NOT_STEERABLE = {"compact", "review"}


def refuse_input(turn: Turn | None, *, steer: bool) -> None:
    """A compaction or review turn takes no input: ``turn/steer`` and ``turn/start`` are
    refused with the reference's errors while it runs."""
    if turn is None or turn.kind not in NOT_STEERABLE:
        return
    if steer:
        message = f"cannot steer a {turn.kind} turn"
        data = {"message": message,
                "codexErrorInfo": {"activeTurnNotSteerable": {"turnKind": turn.kind}},
                "additionalDetails": None, "misalignment": None}  # fmt: skip
        raise RpcError(INVALID_REQUEST, message, data)
    raise RpcError(
        INTERNAL_ERROR,
        "failed to submit turn input: ActiveTurnNotSteerable { turn_kind: "
        f"{turn.kind.capitalize()} }}",
    )


async def compact_start(
    registry: ThreadRegistry, ctx: RequestContext, params: Any
) -> dict[str, Any]:
    """``thread/compact/start``: compaction as a turn of its own, reported by notifications.

    As the reference, a turn already running is interrupted first (the compaction replaces
    it), and a thread that is not loaded is ``thread not found``.
    """
    from codex_core.threads.turns import Turn

    thread_id = registry.thread_id(params.thread_id)
    loaded = registry.threads.get(thread_id)
    if loaded is None:
        raise RpcError(INVALID_REQUEST, f"thread not found: {thread_id}")
    await registry.interrupt_and_wait(loaded)
    turn = Turn(registry=registry, loaded=loaded, id=uuid7(), user_item=None,
                client_name=ctx.connection.client_name,
                client_version=ctx.connection.client_version,
                body=compact, kind="compact")  # fmt: skip
    loaded.active = turn
    ctx.after_reply.append(lambda: registry.launch(loaded, turn))
    return {}
