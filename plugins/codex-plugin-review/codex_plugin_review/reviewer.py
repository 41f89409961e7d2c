"""A review as a turn of the user's thread, with a reviewer turn inside it.

As in the official server, the reviewer is a sub-agent of its own (its own thread id, the
rubric as its only instructions, the target's prompt as its input, the thread's model, or the
config's ``review_model``, and tools, ``never`` asking for approval in a read-only sandbox)
whose events the user's thread shows as its own: items and deltas are forwarded to the
thread's subscribers under the review turn's id, except the reviewer's own answer (its agent
message's deltas and completion), which is replaced by the rendered review. The reviewer
thread is not loaded; it has a rollout of its own (``source: {subAgent: review}``, the user's
thread as its parent), so ``thread/list`` lists it for ``sourceKinds: [subAgentReview]``, as
the reference's. What the user's thread keeps is the ``enteredReviewMode`` /
``exitedReviewMode`` items, the review as an agent message, and, for its later turns, the
review as the reference records it (a ``<user_action>`` user message and the assistant
message).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from codex_core.threads import review_format
from codex_core.threads.ids import uuid7
from codex_core.threads.methods import LoadedThread, user_message_item
from codex_core.threads.rollout import agent_message, item_to_rollout, rollout_path
from codex_core.threads.turns import Turn, now_ms
from codex_plugin_review import output

if TYPE_CHECKING:
    from codex_core.models.contract import ModelRequest
    from codex_core.threads.methods import ThreadRegistry

#: The reviewer's notifications the user's thread does not show: its answer is raw JSON, and
#: its turn's end is the review turn's.
HIDDEN = {"item/agentMessage/delta", "turn/completed", "thread/status/changed"}
READ_ONLY = {"type": "readOnly", "networkAccess": False}
#: Tools the reference's reviewer is not offered: it neither edits files nor starts agents
#: (it reads with ``exec_command`` and ``write_stdin``).
WITHHELD = {"apply_patch", "multi_agent_v1"}


def reply_turn(turn_id: str, hint: str) -> dict[str, Any]:
    """The ``review/start`` result's turn: not started yet, its one item the target's hint (a
    user message with the turn's own id, as the reference's)."""
    item = {"type": "userMessage", "id": turn_id, "clientId": None,
            "content": [{"type": "text", "text": hint, "text_elements": []}],
            "startedAtMs": None, "completedAtMs": None}  # fmt: skip
    return {"id": turn_id, "rootTurnId": None, "items": [item], "itemsView": "notLoaded",
            "status": "inProgress", "error": None, "startedAt": None, "completedAt": None,
            "durationMs": None}  # fmt: skip


def rubric() -> str:
    """The reviewer's instructions: the reference's review rubric and output schema."""
    return resources.files(__package__).joinpath("rubric.md").read_text(encoding="utf-8")


@dataclass(slots=True, kw_only=True)
class ReviewerTurn(Turn):
    """The reviewer's turn: a normal turn whose notifications reach the user's thread."""

    #: The review turn of the user's thread this reviewer works for.
    review: Turn

    def emit(self, method: str, params: dict[str, Any]) -> None:
        if method in HIDDEN:
            return
        item = params.get("item")
        if method == "item/completed" and isinstance(item, dict) and item["type"] == "agentMessage":
            return
        if method == "item/completed" and isinstance(item, dict) and item["type"] == "userMessage":
            # The reviewer's prompt is in the reviewed thread's rollout too, as the reference
            # writes it: it is the thread's preview (``thread/list`` lists it by that). The
            # review's turn holds it, live as when read back.
            stored = item_to_rollout(item)
            assert stored is not None
            record_item(self.review, stored, item)
            self.review.items.append(item)
        if method == "error":  # the reviewer failed: the thread shows it as the reference does
            self.registry.set_status(self.review.loaded, {"type": "systemError"})
        forwarded = dict(params)
        if "threadId" in forwarded:
            forwarded["threadId"] = self.review.thread_id
        if "turnId" in forwarded:
            forwarded["turnId"] = self.review.id
        self.review.emit(method, forwarded)

    def tool_specs(self) -> list[dict[str, Any]]:
        return [spec for spec in Turn.tool_specs(self) if spec.get("name") not in WITHHELD]

    async def call_tool(self, call: Mapping[str, Any]) -> Any:
        """A withheld tool is unknown to the reviewer, in the reference's words."""
        name = str(call.get("name") or "")
        if name in WITHHELD or call.get("namespace") in WITHHELD:
            return f"unsupported call: {name}"
        return await Turn.call_tool(self, call)

    def model_request(
        self,
        provider_id: str,
        model_input: Sequence[Mapping[str, Any]] | None = None,
        *,
        tools: bool = True,
    ) -> ModelRequest:
        """As the reference's reviewer: the rubric is a developer message, not instructions,
        and the request shares the user's thread's prompt cache."""
        request = Turn.model_request(self, provider_id, model_input, tools=tools)
        return replace(request, instructions=None, prompt_cache_key=self.review.thread_id)


@dataclass(slots=True)
class Review:
    """One ``review/start``: what it shows and the reviewer it runs."""

    registry: ThreadRegistry
    hint: str
    prompt: str
    #: The target as the rollout records it (``enteredReviewMode``'s ``target``).
    target: dict[str, Any] = field(default_factory=dict)
    #: The reviewer's turn id (``turn/started`` announces it, rooted at the review turn).
    reviewer_turn_id: str = field(default_factory=uuid7)
    turn: Turn | None = None

    def enter(self) -> None:
        """The ``enteredReviewMode`` item, before the thread goes active (as the reference)."""
        assert self.turn is not None
        started = now_ms()
        item = {"type": "enteredReviewMode", "id": uuid7(), "review": self.hint,
                "startedAtMs": started, "completedAtMs": None}  # fmt: skip
        self.turn.item_started(dict(item))
        completed = {**item, "completedAtMs": now_ms()}
        self.turn.item_completed(completed)
        stored = {"type": "EnteredReviewMode", "id": item["id"], "target": self.target,
                  "user_facing_hint": self.hint}  # fmt: skip
        record_item(self.turn, stored, completed)

    def started(self) -> dict[str, Any]:
        """The turn ``turn/started`` announces: the reviewer's, rooted at the review turn."""
        assert self.turn is not None
        return {"id": self.reviewer_turn_id, "rootTurnId": self.turn.id, "items": [],
                "itemsView": "notLoaded", "status": "inProgress", "error": None,
                "startedAt": self.turn.started_at, "completedAt": None,
                "durationMs": None}  # fmt: skip

    async def run(self, turn: Turn) -> None:
        """The review turn's body: run the reviewer, then show and record what it found.

        An interrupted review still ends with its ``exitedReviewMode`` item and the
        reference's "interrupted" message before the turn ends as interrupted; a reviewer that
        fails (a model error) shows its ``error`` and ends the review the same way.
        """
        reviewer = self._reviewer(turn)
        self.registry.record_start(reviewer.loaded, reviewer)
        try:
            await reviewer.run()
        except BaseException:
            self.exit(turn, None)
            raise
        finally:
            if reviewer.loaded.writer is not None:
                reviewer.loaded.writer.close()
        self.exit(turn, self._outcome(reviewer))

    def _reviewer(self, turn: Turn) -> ReviewerTurn:
        parent = turn.loaded
        thread_id, now = uuid7(), datetime.now(UTC)
        path = (
            None if parent.thread["ephemeral"] else rollout_path(self.registry.home, thread_id, now)
        )
        thread = {**parent.thread, "id": thread_id, "sessionId": thread_id,
                  "path": str(path) if path else None, "createdAt": int(now.timestamp()),
                  "parentThreadId": parent.id, "source": {"subAgent": "review"},
                  "preview": self.prompt}  # fmt: skip
        settings = {**parent.settings, "approvalPolicy": "never", "sandbox": READ_ONLY}
        review_model = self.registry.kernel.config.get("review_model")
        if review_model:  # the config's ``review_model``, as the reference; else the thread's
            settings["model"] = str(review_model)
        loaded = LoadedThread(thread, settings, session_start=None)
        loaded.history = [
            {"type": "message", "role": "developer",
             "content": [{"type": "input_text", "text": rubric()}]}
        ]  # fmt: skip
        content = [{"type": "text", "text": self.prompt, "text_elements": []}]
        return ReviewerTurn(registry=self.registry, loaded=loaded, id=self.reviewer_turn_id,
                            user_item=user_message_item(content, None),
                            client_name=turn.client_name, client_version=turn.client_version,
                            review=turn)  # fmt: skip

    @staticmethod
    def _outcome(reviewer: ReviewerTurn) -> dict[str, Any] | None:
        """The review the reviewer's last answer holds; ``None`` when it did not finish."""
        finished = reviewer.loaded.turns[-1] if reviewer.loaded.turns else None
        if finished is None or finished["status"] != "completed":
            return None
        answer = next(
            (item["text"] for item in reversed(reviewer.items) if item["type"] == "agentMessage"),
            "",
        )
        return output.parse(answer) if answer else None

    @staticmethod
    def exit(turn: Turn, review: dict[str, Any] | None) -> None:
        """Leave review mode: the ``exitedReviewMode`` item, the review as an agent message,
        and both in the thread's history, worded as the reference records them."""
        turn.remember(
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": output.exit_message(review)}]}
        )  # fmt: skip
        rendered = review_format.render(review)
        started = now_ms()
        item = {"type": "exitedReviewMode", "id": uuid7(), "review": rendered,
                "startedAtMs": started, "completedAtMs": None}  # fmt: skip
        turn.item_started(dict(item))
        completed = {**item, "completedAtMs": now_ms()}
        turn.item_completed(completed)
        stored = {"type": "ExitedReviewMode", "id": item["id"], "review_output": review}
        record_item(turn, stored, completed)
        text = rendered if review is not None else output.INTERRUPTED
        message_id = f"msg_{uuid7()}"
        started = now_ms()
        turn.item_started(agent_message(message_id, text, started_at_ms=started,
                                        completed_at_ms=None))  # fmt: skip
        turn.remember({"type": "message", "role": "assistant", "id": message_id,
                       "content": [{"type": "output_text", "text": text}]})  # fmt: skip
        turn.item_completed(
            agent_message(message_id, text, started_at_ms=started, completed_at_ms=now_ms())
        )


def record_item(turn: Turn, stored: dict[str, Any], item: dict[str, Any]) -> None:
    """Write a review item to the thread's rollout in the reference's shape, which keeps
    what the wire item does not show (the target, the whole ``ReviewOutputEvent``)."""
    turn.record(
        "event_msg",
        {"type": "item_completed", "thread_id": turn.thread_id, "turn_id": turn.id,
         "item": stored, "started_at_ms": item["startedAtMs"],
         "completed_at_ms": item["completedAtMs"]},
    )  # fmt: skip
