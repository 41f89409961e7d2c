"""The Responses provider against the scripted model server: streaming, retries, errors.

The model server, kernels and client come from codex-core's test kit
(``codex_model_server``, ``codex_kernel_factory``, ``codex_client``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from codex_plugin_openai import ModelError, ResponsesProvider, parse_sse
from codex_plugin_openai.provider import backoff_seconds

import codex_core.accounts.methods as accounts_plugin
from codex_core.client import Client
from codex_core.testing import ModelResponse, ScriptedModelServer, http_error, message
from codex_core.testing.pytest_plugin import KernelFactory, model_overrides

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


def request(**headers: str) -> dict[str, Any]:
    body = {"model": "mock-model", "input": [], "stream": True}
    return {"model_provider": "mock", "body": body, "headers": headers}


async def collect(responses: ResponsesProvider, req: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return [event async for event in responses.stream(req)]
    finally:
        await responses.aclose()


async def test_streams_events_with_headers(provider: Provider, model: ScriptedModelServer) -> None:
    model.add(ModelResponse([message("hi there", chunks=["hi ", "there"])]))
    events = await collect(provider(), request(originator="tests"))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.output_item.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_item.done",
        "response.completed",
    ]
    (sent,) = model.requests
    assert sent.path == "/v1/responses"
    assert sent.headers["originator"] == "tests"
    assert sent.headers["authorization"] == f"Bearer {model.api_key}"
    assert sent.headers["accept"] == "text/event-stream"


async def test_retries_5xx_then_succeeds(provider: Provider, model: ScriptedModelServer) -> None:
    model.add(http_error(503, headers={"retry-after": "0"}), http_error(429, headers={
        "retry-after": "0"}), "finally")  # fmt: skip
    responses = provider("model_providers.mock.request_max_retries=3")
    events = await collect(responses, request())
    assert events[-1]["type"] == "response.completed"
    assert len(model.requests) == 3


async def test_retries_are_bounded(provider: Provider, model: ScriptedModelServer) -> None:
    model.add(*[http_error(500, headers={"retry-after": "0"}) for _ in range(5)])
    responses = provider("model_providers.mock.request_max_retries=2")
    with pytest.raises(ModelError) as failed:
        await collect(responses, request())
    assert len(model.requests) == 3
    assert failed.value.codex_error_info == "internalServerError"
    assert failed.value.http_status_code == 500


async def test_client_errors_are_not_retried(
    provider: Provider, model: ScriptedModelServer
) -> None:
    model.add(http_error(401, "Incorrect API key provided", type="invalid_request_error"))
    responses = provider("model_providers.mock.request_max_retries=3")
    with pytest.raises(ModelError) as failed:
        await collect(responses, request())
    assert str(failed.value) == "unexpected status 401: Incorrect API key provided"
    assert failed.value.codex_error_info == "unauthorized"
    assert len(model.requests) == 1


async def test_response_failed_event(provider: Provider, model: ScriptedModelServer) -> None:
    model.add(
        ModelResponse([message("x")], failed={"code": "server_error", "message": "it failed"})
    )
    with pytest.raises(ModelError, match="stream disconnected before completion: it failed"):
        await collect(provider(), request())


async def test_connection_refused_is_clear(
    codex_kernel_factory: KernelFactory, model: ScriptedModelServer
) -> None:
    port = model.port
    model.close()
    overrides = [f'model_providers.mock={{base_url="http://127.0.0.1:{port}/v1",'
                 f'env_key="{model.env_key}",request_max_retries=0}}']  # fmt: skip
    kernel = codex_kernel_factory(config_overrides=overrides, load_entry_points=False)
    with pytest.raises(ModelError, match="error sending request to model provider `mock`") as e:
        await collect(ResponsesProvider(kernel), request())
    assert e.value.codex_error_info == {"httpConnectionFailed": {"httpStatusCode": None}}


async def test_missing_key_and_unknown_provider(
    provider: Provider, model: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(model.env_key)
    with pytest.raises(ModelError, match="Missing environment variable: `MOCK_API_KEY`"):
        await collect(provider(), request())
    with pytest.raises(ModelError, match="model provider `nope` is not configured"):
        await collect(provider(), {**request(), "model_provider": "nope"})
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
    events = await collect(ResponsesProvider(kernel), {**request(), "model_provider": "openai"})
    assert events[-1]["type"] == "response.completed"
    assert model.requests[0].headers["authorization"] == "Bearer sk-stored"


async def test_parse_sse_handles_comments_multiline_event_names_and_done() -> None:
    async def lines() -> Any:
        for line in [": comment", "event: response.created", 'data: {"response":', 'data: {}}',
                     "", "data: not json", "", 'data: {"type": "x"}', "", "data: [DONE]", "",
                     'data: {"type": "after the end"}', ""]:  # fmt: skip
            yield line

    events = [event async for event in parse_sse(lines())]
    assert events == [{"response": {}, "type": "response.created"}, {"type": "x"}]


def test_backoff_grows_and_is_capped() -> None:
    assert backoff_seconds(0) < backoff_seconds(3) <= 10.0
    assert backoff_seconds(50) <= 10.0
    assert backoff_seconds(0, "2") == 2.0


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
