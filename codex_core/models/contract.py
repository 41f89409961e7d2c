"""The model contract: what the core asks a model provider (``ModelRequest``) and what a
provider answers (a stream of ``ModelEvent``).

A ``ModelProvider`` plugin (``codex_core.hookspecs``) turns a ``ModelRequest`` into its wire
API's request (the OpenAI Responses API, Chat Completions, ...) and the wire's streamed answer
into these events; the core never sees a wire format. Two things stay in the Responses API's
shape on purpose, because they are the official rollout format the history is stored in and
replayed from: the conversation items (``ModelRequest.input``, ``OutputItemAdded.item``,
``OutputItemDone.item``: ``{"type": "message", ...}``, ``function_call``, ``reasoning``, ...)
and the tool specs (``ModelRequest.tools``: ``function``, ``custom`` and ``namespace``
tools). A provider of another wire translates them, as the Chat Completions one does.

The types are frozen dataclasses, not pydantic models: both sides are Python in one process
and checked by mypy, so there is nothing to validate at run time, a stream carries thousands
of deltas per turn (a dataclass costs a fraction of a model's construction), and a plugin
that imports this module at load time pulls in nothing heavy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

#: The name the reference gives a response's JSON schema (``text.format.name``).
OUTPUT_SCHEMA_NAME = "codex_output_schema"


@dataclass(frozen=True, slots=True)
class Reasoning:
    """How much the model thinks (``effort``: ``low``, ``medium``, ``high``, ...) and whether it
    summarizes its thinking (``summary``: ``auto``, ``concise``, ``detailed``)."""

    effort: str
    summary: str | None = "auto"


@dataclass(frozen=True, slots=True)
class OutputSchema:
    """A JSON schema the model's answer must follow (a turn's ``outputSchema``, the guardian's
    verdict); ``strict`` asks the API to enforce it."""

    schema: Any
    strict: bool = True
    name: str = OUTPUT_SCHEMA_NAME


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One request to the model: everything turns, compaction, reviews and the guardian send.

    ``provider_id`` names the ``[model_providers.<id>]`` table (or the built-in ``openai``)
    whose endpoint, key and retries apply. The identity fields say who asks, for the wire's
    headers: ``originator`` and ``user_agent`` (the client), ``thread_id`` (the session the
    request belongs to), and for a request made on a thread's behalf by a helper (the
    guardian): ``subagent``, ``parent_thread_id`` and ``turn_metadata`` (compact JSON).
    """

    provider_id: str
    model: str
    #: The conversation so far, as Responses API input items (the rollout's format).
    input: Sequence[Mapping[str, Any]]
    #: The system prompt; ``None`` leaves it out (a review reads its rubric as a message).
    instructions: str | None = None
    #: Tool specs in the Responses API's shape; empty offers none.
    tools: Sequence[Mapping[str, Any]] = ()
    tool_choice: str = "auto"
    parallel_tool_calls: bool = False
    reasoning: Reasoning | None = None
    output_schema: OutputSchema | None = None
    #: Requests sharing a key share the provider's prompt cache.
    prompt_cache_key: str | None = None
    #: ``priority``, ``flex``, ...; ``None`` is the provider's default.
    service_tier: str | None = None
    #: Whether the provider streams (every bundled caller does).
    stream: bool = True
    #: Whether the provider keeps the response server side (never: the history is ours).
    store: bool = False
    #: Extra output the provider should include (``reasoning.encrypted_content``, ...).
    include: Sequence[str] = ()
    originator: str = "codex_core"
    user_agent: str | None = None
    thread_id: str | None = None
    subagent: str | None = None
    parent_thread_id: str | None = None
    turn_metadata: str | None = None


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    """The provider accepted the request: the model that serves it (when the wire says, and
    it may not be the one asked for) and the account's rate limits the answer reported (the
    protocol's ``RateLimitSnapshot`` dicts, reported with the response's usage)."""

    response_id: str | None = None
    served_model: str | None = None
    rate_limits: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True, slots=True)
class OutputItemAdded:
    """An output item began (``message``, ``reasoning``, a tool call); its id keys the deltas."""

    item: Mapping[str, Any]

    @property
    def item_id(self) -> str | None:
        value = self.item.get("id")
        return str(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of an assistant message's text."""

    item_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class ReasoningSummaryPartAdded:
    """A new part of a reasoning item's summary begins at ``summary_index``."""

    item_id: str
    summary_index: int


@dataclass(frozen=True, slots=True)
class ReasoningSummaryDelta:
    """A piece of a reasoning item's summary part ``summary_index``."""

    item_id: str
    delta: str
    summary_index: int = 0


@dataclass(frozen=True, slots=True)
class ReasoningTextDelta:
    """A piece of a reasoning item's raw thinking, part ``content_index``."""

    item_id: str
    delta: str
    content_index: int = 0


@dataclass(frozen=True, slots=True)
class OutputItemDone:
    """An output item, complete: what the history records. Tool calls are ``function_call``
    (``call_id``, ``name``, JSON ``arguments``, optional ``namespace``) and
    ``custom_tool_call`` (``call_id``, ``name``, raw ``input``) items."""

    item: Mapping[str, Any]

    @property
    def kind(self) -> str | None:
        value = self.item.get("type")
        return str(value) if value is not None else None

    @property
    def is_tool_call(self) -> bool:
        return self.kind in ("function_call", "custom_tool_call")

    @property
    def is_assistant_message(self) -> bool:
        return self.kind == "message" and self.item.get("role", "assistant") == "assistant"

    def text(self) -> str:
        """An assistant message's text (its ``output_text`` parts), else ``""``."""
        return "".join(
            str(part.get("text", ""))
            for part in self.item.get("content") or []
            if isinstance(part, Mapping) and part.get("type") == "output_text"
        )


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """What one response cost, in tokens."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0
    #: As the provider counted it; ``input + output`` when it did not say.
    total_tokens: int | None = None

    @property
    def total(self) -> int:
        if self.total_tokens is not None:
            return self.total_tokens
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class ResponseCompleted:
    """The response is complete (the last event of a successful stream)."""

    response_id: str | None = None
    usage: TokenUsage | None = None


#: The protocol's ``CodexErrorInfo`` kinds a model failure can have. The ones named in
#: ``WITH_STATUS`` carry the HTTP status (``{"responseStreamDisconnected":
#: {"httpStatusCode": null}}``), the others are bare strings.
ModelErrorKind: TypeAlias = Literal[
    "contextWindowExceeded",
    "usageLimitExceeded",
    "rateLimitExceeded",
    "serverOverloaded",
    "modelNotFound",
    "cyberPolicy",
    "internalServerError",
    "unauthorized",
    "badRequest",
    "other",
    "httpConnectionFailed",
    "responseStreamConnectionFailed",
    "responseStreamDisconnected",
    "responseTooManyFailedAttempts",
]
WITH_STATUS = frozenset(
    {
        "httpConnectionFailed",
        "responseStreamConnectionFailed",
        "responseStreamDisconnected",
        "responseTooManyFailedAttempts",
    }
)


def codex_error_info(kind: ModelErrorKind, http_status_code: int | None) -> Any:
    """The protocol's ``CodexErrorInfo`` value of a failure of ``kind``."""
    if kind in WITH_STATUS:
        return {kind: {"httpStatusCode": http_status_code}}
    return kind


@dataclass(frozen=True, slots=True)
class ResponseFailed:
    """The request failed for good (the provider already retried what it retries): the last
    event of a failed stream. ``message`` is what the user reads."""

    message: str
    kind: ModelErrorKind = "other"
    http_status_code: int | None = None
    #: The account's rate limits, for a failure that is about them (the usage limit): the turn
    #: reports them (an all-null ``codex`` snapshot when empty) before it fails, as the
    #: reference does. ``None`` for every other failure.
    rate_limits: Sequence[Mapping[str, Any]] | None = None

    @property
    def codex_error_info(self) -> Any:
        return codex_error_info(self.kind, self.http_status_code)


#: Everything a provider's stream yields: it ends with ``ResponseCompleted`` or
#: ``ResponseFailed`` (a stream that stops before either is a disconnect).
ModelEvent: TypeAlias = (
    ResponseStarted
    | OutputItemAdded
    | TextDelta
    | ReasoningSummaryPartAdded
    | ReasoningSummaryDelta
    | ReasoningTextDelta
    | OutputItemDone
    | ResponseCompleted
    | ResponseFailed
)


class ModelFailed(Exception):
    """A sampled response that failed: ``ResponseFailed`` (or a disconnect) as an exception,
    carrying the protocol's ``TurnError`` fields (``message``, ``codex_error_info``)."""

    def __init__(self, failure: ResponseFailed) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.message = failure.message
        self.codex_error_info = failure.codex_error_info


@dataclass(slots=True)
class SampledResponse:
    """A response read to its end (``sampling.collect``): its complete output items in order,
    its usage and the rate limits it reported."""

    items: list[Mapping[str, Any]] = field(default_factory=list)
    usage: TokenUsage | None = None
    served_model: str | None = None
    rate_limits: Sequence[Mapping[str, Any]] = ()
    #: The text of the deltas, for a provider that streams an answer without a done item.
    streamed_text: str = ""

    def text(self) -> str:
        """The assistant's answer: its messages' text (else what was streamed)."""
        done = "".join(
            OutputItemDone(item).text()
            for item in self.items
            if OutputItemDone(item).is_assistant_message
        )
        return done or self.streamed_text

    def tool_calls(self) -> list[Mapping[str, Any]]:
        return [item for item in self.items if OutputItemDone(item).is_tool_call]
