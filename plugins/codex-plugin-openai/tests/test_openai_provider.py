"""The Responses provider against the scripted model server: the body it builds from a
``ModelRequest``, the typed events it reads, headers, retries and errors.

The model server, kernels and client come from codex-core's test kit
(``codex_model_server``, ``codex_kernel_factory``, ``codex_client``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from codex_plugin_openai.provider import (
    SERVER_ERROR_MESSAGE,
    USAGE_LIMIT_MESSAGE,
    StreamingProvider,
)
from codex_plugin_openai.responses import ResponsesProvider, responses_body

import codex_core.accounts.methods as accounts_plugin
from codex_core.client import Client
from codex_core.models.contract import (
    ModelEvent,
    ModelRequest,
    OutputItemAdded,
    OutputItemDone,
    OutputSchema,
    Reasoning,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    ResponseCompleted,
    ResponseFailed,
    ResponseStarted,
    TextDelta,
    TokenUsage,
)
from codex_core.testing import ModelResponse, ScriptedModelServer, http_error, message, reasoning
from codex_core.testing.loopback import Reply
from codex_core.testing.pytest_plugin import KernelFactory, LoopbackFactory, model_overrides

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


Provider = Callable[..., ResponsesProvider]


@pytest.fixture
def model(codex_model_server: ScriptedModelServer) -> ScriptedModelServer:
    """The kit's scripted model server (its API key is in the environment)."""
    return codex_model_server


@pytest.fixture
def provider(
    codex_kernel_factory: KernelFactory, model: ScriptedModelServer
) -> Callable[..., ResponsesProvider]:
    """``provider(*overrides)``: a ``ResponsesProvider`` of a kernel pointed at ``model``."""

    def make(*extra: str) -> ResponsesProvider:
        overrides = [*model_overrides(model), *extra]
        kernel = codex_kernel_factory(config_overrides=overrides, load_entry_points=False)
        return ResponsesProvider(kernel)

    return make


def request(**fields: Any) -> ModelRequest:
    return ModelRequest(**{"provider_id": "mock", "model": "mock-model", "input": [], **fields})


async def collect(responses: StreamingProvider, req: ModelRequest) -> list[ModelEvent]:
    try:
        return [event async for event in responses.stream(req)]
    finally:
        await responses.aclose()


async def failure(responses: StreamingProvider, req: ModelRequest) -> ResponseFailed:
    """The ``ResponseFailed`` a failed stream ends with (and nothing but it)."""
    events = await collect(responses, req)
    assert len(events) == 1 and isinstance(events[0], ResponseFailed), events
    return events[0]


async def test_streams_typed_events_with_headers(
    provider: Provider, model: ScriptedModelServer
) -> None:
    answer = message("hi there", chunks=["hi ", "there"])
    model.add(ModelResponse([reasoning(summary=["Think"]), answer], id="resp_1"))
    events = await collect(provider(), request(originator="tests", thread_id="t-1"))
    assert [type(event) for event in events] == [
        ResponseStarted, OutputItemAdded, ReasoningSummaryPartAdded, ReasoningSummaryDelta,
        OutputItemDone, OutputItemAdded, TextDelta, TextDelta, OutputItemDone, ResponseCompleted,
    ]  # fmt: skip
    assert events[0] == ResponseStarted("resp_1", None, [])
    assert [e.delta for e in events if isinstance(e, TextDelta)] == ["hi ", "there"]
    assert [e.text() for e in events if isinstance(e, OutputItemDone)] == ["", "hi there"]
    assert events[-1] == ResponseCompleted(
        "resp_1", TokenUsage(input_tokens=10, output_tokens=5, total_tokens=15)
    )
    (sent,) = model.requests
    assert sent.path == "/v1/responses"
    assert sent.headers["authorization"] == f"Bearer {model.api_key}"
    assert sent.headers["accept"] == "text/event-stream"
    identity = {name: sent.headers[name] for name in
                ("originator", "session-id", "thread-id", "x-client-request-id")}  # fmt: skip
    assert identity == {"originator": "tests", "session-id": "t-1", "thread-id": "t-1",
                        "x-client-request-id": "t-1"}  # fmt: skip


async def test_the_body_holds_every_field_of_the_request(
    provider: Provider, model: ScriptedModelServer
) -> None:
    """What the reference sends, key for key and in its order; optional keys only when set."""
    model.add("a", "b")
    schema = {"type": "object"}
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "q"}]}
    tool = {"type": "function", "name": "f", "description": "", "strict": False,
            "parameters": schema}  # fmt: skip
    full = request(
        instructions="be brief", input=[item], tools=[tool], reasoning=Reasoning("high"),
        output_schema=OutputSchema(schema, strict=False), prompt_cache_key="guardian:t",
        service_tier="priority", subagent="guardian", parent_thread_id="t", turn_metadata="{}",
    )  # fmt: skip
    await collect(provider(), full)
    await collect(provider(), request())
    first, bare = (sent.body for sent in model.requests)
    assert first == {
        "model": "mock-model", "instructions": "be brief", "input": [item], "tools": [tool],
        "tool_choice": "auto", "parallel_tool_calls": False, "store": False, "stream": True,
        "include": [], "prompt_cache_key": "guardian:t",
        "reasoning": {"effort": "high", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "strict": False, "schema": schema,
                            "name": "codex_output_schema"}},
        "service_tier": "priority", "client_metadata": {"x-codex-turn-metadata": "{}"},
    }  # fmt: skip
    assert list(first) == list(responses_body(full))  # (the order json.dumps sent is the body's)
    assert bare == {"model": "mock-model", "input": [], "tools": [], "tool_choice": "auto",
                    "parallel_tool_calls": False, "store": False, "stream": True,
                    "include": []}  # fmt: skip
    headers = model.requests[0].headers
    assert (headers["x-openai-subagent"], headers["x-codex-parent-thread-id"],
            headers["x-codex-turn-metadata"]) == ("guardian", "t", "{}")  # fmt: skip
    assert "x-openai-subagent" not in model.requests[1].headers


async def test_served_model_and_rate_limit_headers(
    provider: Provider, model: ScriptedModelServer
) -> None:
    headers = {
        "OpenAI-Model": "mock-model-safe",
        "x-codex-primary-used-percent": "12.5",
        "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-at": "1900000000",
        "x-codex-credits-has-credits": "true",
        "x-codex-credits-unlimited": "false",
        "x-codex-credits-balance": "7",
    }
    model.add(ModelResponse([message("hi")], headers=headers))
    started = (await collect(provider(), request()))[0]
    assert isinstance(started, ResponseStarted) and started.served_model == "mock-model-safe"
    (limits,) = started.rate_limits
    assert limits["limitId"] == "codex"
    assert limits["primary"] == {"usedPercent": 13, "windowDurationMins": 300,
                                 "resetsAt": 1900000000}  # fmt: skip
    assert limits["credits"] == {"hasCredits": True, "unlimited": False, "balance": "7"}


async def test_a_500_is_retried_then_succeeds(
    provider: Provider, model: ScriptedModelServer
) -> None:
    model.add(http_error(500), "finally")
    events = await collect(provider("model_providers.mock.request_max_retries=1"), request())
    assert isinstance(events[-1], ResponseCompleted)
    assert [e.text() for e in events if isinstance(e, OutputItemDone)] == ["finally"]
    assert len(model.requests) == 2
    assert model.requests[0].body == model.requests[1].body


async def test_a_retry_waits_as_long_as_retry_after_says(
    provider: Provider, model: ScriptedModelServer
) -> None:
    model.add(http_error(503, headers={"retry-after": "1"}), "after the wait")
    events = await collect(provider("model_providers.mock.request_max_retries=1"), request())
    assert isinstance(events[-1], ResponseCompleted)
    first, second = model.requests
    assert second.received_at - first.received_at >= 0.95  # the answer's 1 s, not 0.2 s


async def test_retries_are_bounded(provider: Provider, model: ScriptedModelServer) -> None:
    model.add(*[http_error(500, headers={"retry-after": "0"}) for _ in range(5)])
    failed = await failure(provider("model_providers.mock.request_max_retries=2"), request())
    assert len(model.requests) == 3
    assert failed.message == SERVER_ERROR_MESSAGE  # (the reference's words, nothing added)
    assert (failed.kind, failed.http_status_code) == ("internalServerError", 500)
    assert failed.codex_error_info == "internalServerError"


async def test_a_429_is_not_retried(provider: Provider, model: ScriptedModelServer) -> None:
    """As the reference: a 429 ends the request at once, whatever ``Retry-After`` says."""
    model.add(http_error(429, "Rate limit reached", headers={"retry-after": "0"}))
    failed = await failure(provider("model_providers.mock.request_max_retries=3"), request())
    assert failed == ResponseFailed(
        "exceeded retry limit, last status: 429 Too Many Requests",
        "responseTooManyFailedAttempts",
        429,
    )
    assert failed.codex_error_info == {"responseTooManyFailedAttempts": {"httpStatusCode": 429}}
    assert len(model.requests) == 1


async def test_a_429_for_the_usage_limit(provider: Provider, model: ScriptedModelServer) -> None:
    model.add(http_error(429, "The usage limit has been reached", type="usage_limit_reached"))
    failed = await failure(provider("model_providers.mock.request_max_retries=3"), request())
    # The limits the answer's headers report (none here) go with it, for the turn to show.
    assert failed == ResponseFailed(USAGE_LIMIT_MESSAGE, "usageLimitExceeded", 429, [])
    assert failed.codex_error_info == "usageLimitExceeded"
    assert len(model.requests) == 1


async def test_client_errors_are_not_retried(
    provider: Provider, model: ScriptedModelServer
) -> None:
    model.add(http_error(401, "Incorrect API key provided", type="invalid_request_error"))
    failed = await failure(provider("model_providers.mock.request_max_retries=3"), request())
    assert failed.message == "unexpected status 401: Incorrect API key provided"
    assert failed.codex_error_info == "unauthorized"
    assert len(model.requests) == 1


async def test_response_failed_event(provider: Provider, model: ScriptedModelServer) -> None:
    model.add(
        ModelResponse([message("x")], failed={"code": "server_error", "message": "it failed"})
    )
    events = await collect(provider(), request())
    assert events[-1] == ResponseFailed("stream disconnected before completion: it failed")


async def test_connection_refused_is_clear(
    codex_kernel_factory: KernelFactory, model: ScriptedModelServer
) -> None:
    port = model.port
    model.close()
    overrides = [f'model_providers.mock={{base_url="http://127.0.0.1:{port}/v1",'
                 f'env_key="{model.env_key}",request_max_retries=0}}']  # fmt: skip
    kernel = codex_kernel_factory(config_overrides=overrides, load_entry_points=False)
    failed = await failure(ResponsesProvider(kernel), request())
    assert failed.message.startswith("error sending request to model provider `mock`")
    assert failed.codex_error_info == {"httpConnectionFailed": {"httpStatusCode": None}}


async def test_missing_key_and_unknown_provider(
    provider: Provider, model: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(model.env_key)
    missing = await failure(provider(), request())
    assert missing.message.startswith("Missing environment variable: `MOCK_API_KEY`")
    assert missing.kind == "unauthorized"
    unknown = await failure(provider(), request(provider_id="nope"))
    assert unknown.message.startswith("model provider `nope` is not configured")
    assert unknown.kind == "badRequest"
    assert model.requests == []


async def test_openai_base_url_and_stored_key(
    codex_home: Path,
    codex_kernel_factory: KernelFactory,
    model: ScriptedModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    (codex_home / "auth.json").write_text('{"OPENAI_API_KEY": "sk-stored"}')
    model.add("from openai")
    # The stored login reaches the provider through the accounts service.
    kernel = codex_kernel_factory(config_overrides=[f'openai_base_url="{model.base_url}"'],
                                  load_entry_points=False,
                                  plugins=[accounts_plugin])  # fmt: skip
    events = await collect(ResponsesProvider(kernel), request(provider_id="openai"))
    assert isinstance(events[-1], ResponseCompleted)
    assert model.requests[0].headers["authorization"] == "Bearer sk-stored"


def sse_server(factory: LoopbackFactory, stream: bytes, content_type: str) -> str:
    """A ``[model_providers.raw]`` override for a server answering every request with
    ``stream``."""
    server = factory(lambda _request: Reply(200, stream, {"content-type": content_type}))
    return f'model_providers.raw={{base_url="{server.url}/v1",request_max_retries=0}}'


async def test_server_sent_events_as_the_standard_says(
    codex_kernel_factory: KernelFactory, codex_loopback_factory: LoopbackFactory
) -> None:
    """Comments, data split over lines, an event's name standing for a missing ``type``, data
    that is not JSON (skipped), and ``[DONE]`` (the end, whatever follows)."""
    stream = (
        b": keep-alive\n\n"
        b'event: response.created\ndata: {"response":\ndata: {"id": "r"}}\n\n'
        b"data: not json\n\n"
        b'data: {"type": "response.completed", "response": {"id": "r"}}\n\n'
        b"data: [DONE]\n\n"
        b'data: {"type": "after the end"}\n\n'
    )
    override = sse_server(codex_loopback_factory, stream, "text/event-stream")
    kernel = codex_kernel_factory(config_overrides=[override], load_entry_points=False)
    events = await collect(ResponsesProvider(kernel), request(provider_id="raw"))
    assert events == [ResponseStarted("r", None, []), ResponseCompleted("r", None)]


async def test_an_answer_that_is_not_a_stream(
    codex_kernel_factory: KernelFactory, codex_loopback_factory: LoopbackFactory
) -> None:
    override = sse_server(codex_loopback_factory, b'{"id": "r"}', "application/json")
    kernel = codex_kernel_factory(config_overrides=[override], load_entry_points=False)
    failed = await failure(ResponsesProvider(kernel), request(provider_id="raw"))
    assert failed.message.startswith("stream disconnected before completion: Expected response")
    assert failed.kind == "responseStreamDisconnected"


@pytest.mark.codex_kernel(model_server=True)
async def test_a_turn_in_an_in_process_kernel(
    codex_client: Client, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    """The whole path: thread/start, turn/start, this provider streaming from the model."""
    codex_model_server.add(message("Hello from the mock.", chunks=["Hello ", "from the mock."]))
    thread = (await codex_client.request("thread/start", {"cwd": str(tmp_path)}))["thread"]
    text = [{"type": "text", "text": "hi", "text_elements": []}]
    await codex_client.request("turn/start", {"threadId": thread["id"], "input": text})
    deltas = []
    with anyio.fail_after(15):
        async for method, params in codex_client.notifications():
            if method == "item/agentMessage/delta":
                deltas.append(params["delta"])
            if method == "turn/completed":
                assert params["turn"]["status"] == "completed"
                break
    assert deltas == ["Hello ", "from the mock."]
    (sent,) = codex_model_server.requests
    assert sent.body["model"] == "mock-model"
    assert sent.input_texts() == ["hi"]
