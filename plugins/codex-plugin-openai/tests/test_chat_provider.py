"""``wire_api = "chat"``: Chat Completions against the kit's scripted model server.

End to end over stdio (a real ``codex-app-server`` with ``model_providers.mock.wire_api =
"chat"``), and the provider alone for what a turn does not reach (namespaced and freeform
tools, history items of every kind, usage details).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from codex_plugin_openai.chat import ChatProvider

from codex_core.models.contract import (
    ModelEvent,
    ModelRequest,
    OutputItemAdded,
    OutputItemDone,
    OutputSchema,
    Reasoning,
    ResponseCompleted,
    ResponseFailed,
    ResponseStarted,
    TextDelta,
    TokenUsage,
)
from codex_core.testing import (
    ModelResponse,
    ScriptedModelServer,
    function_call,
    http_error,
    message,
    reasoning,
)
from codex_core.testing.pytest_plugin import (
    KernelFactory,
    ServerFactory,
    StdioServer,
    model_overrides,
)

CHAT = ("-c", 'model_providers.mock.wire_api="chat"')


def start(
    factory: ServerFactory, model: ScriptedModelServer, *extra: str
) -> tuple[StdioServer, str]:
    """A server speaking Chat Completions to ``model``, initialized, with a thread."""
    server = factory(*model.config_args(), *CHAT, *extra, env=model.env)
    server.initialize()
    thread = server.result("thread/start", {})["thread"]["id"]
    return server, thread


def turn(server: StdioServer, thread: str, text: str) -> dict[str, Any]:
    """Run one turn; returns its ``turn/completed`` turn."""
    server.result("turn/start", {"threadId": thread, "input": [{"type": "text", "text": text}]})
    return dict(server.wait_notification("turn/completed", timeout=20)["params"]["turn"])


def completed_items(server: StdioServer, kind: str) -> list[dict[str, Any]]:
    return [n["params"]["item"] for n in server.notifications
            if n["method"] == "item/completed" and n["params"]["item"]["type"] == kind]  # fmt: skip


def assert_chat_body(body: dict[str, Any]) -> None:
    """The shape of a Chat Completions streaming request, as the API validates it."""
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "input" not in body and "instructions" not in body
    roles = [m["role"] for m in body["messages"]]
    assert roles[0] == "system" and set(roles) <= {
        "system",
        "developer",
        "user",
        "assistant",
        "tool",
    }
    for tool in body.get("tools", []):
        assert set(tool) == {"type", "function"} and tool["type"] == "function"
        assert set(tool["function"]) == {"name", "description", "parameters"}
        assert tool["function"]["parameters"]["type"] == "object"


def test_a_streamed_answer(
    codex_server_factory: ServerFactory, codex_model_server: ScriptedModelServer
) -> None:
    usage = {"input_tokens": 42, "input_tokens_details": {"cached_tokens": 30}, "output_tokens": 7,
             "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 49}  # fmt: skip
    answer = message("Hello from chat.", chunks=["Hello ", "from chat."])
    codex_model_server.add(ModelResponse([reasoning(content="Greet."), answer], usage=usage))
    server, thread = start(codex_server_factory, codex_model_server)
    done = turn(server, thread, "say hello")
    assert done["status"] == "completed", done
    deltas = [
        n["params"]["delta"]
        for n in server.notifications
        if n["method"] == "item/agentMessage/delta"
    ]
    assert deltas == ["Hello ", "from chat."]
    (text,) = completed_items(server, "agentMessage")
    assert text["text"] == "Hello from chat."
    (thought,) = completed_items(server, "reasoning")  # streamed as `reasoning_content`
    assert thought["content"] == ["Greet."] and thought["summary"] == []
    last = server.wait_notification("thread/tokenUsage/updated")["params"]["tokenUsage"]["last"]
    assert last == {"totalTokens": 49, "inputTokens": 42, "cachedInputTokens": 30,
                    "cacheWriteInputTokens": 0, "outputTokens": 7,
                    "reasoningOutputTokens": 2}  # fmt: skip
    (sent,) = codex_model_server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {codex_model_server.api_key}"
    assert sent.headers["originator"] == "pytest"
    assert sent.body["model"] == "mock-model"
    assert_chat_body(sent.body)
    assert sent.body["messages"][-1] == {"role": "user", "content": "say hello"}
    assert sent.input_texts() == ["say hello"]
    assert sent.body["tool_choice"] == "auto"  # the plugins' tools are offered


def test_a_tool_call_round_trip(
    codex_server_factory: ServerFactory, codex_model_server: ScriptedModelServer
) -> None:
    """Two calls in one answer (one of a tool nobody has), their outputs, the final answer."""
    run = function_call("exec_command", {"cmd": "echo from-chat"}, call_id="call_a")
    unknown = function_call("no_such_tool", {"x": 1}, call_id="call_b")
    codex_model_server.add(ModelResponse([message("Running it."), run, unknown]), "All done.")
    server, thread = start(
        codex_server_factory, codex_model_server, "-c", 'sandbox_mode="danger-full-access"'
    )
    done = turn(server, thread, "run it")
    assert done["status"] == "completed", done
    (command,) = completed_items(server, "commandExecution")
    assert command["aggregatedOutput"] == "from-chat\n"
    first, second = codex_model_server.wait_for_requests(2)
    assert any(t["function"]["name"] == "exec_command" for t in first.body["tools"])
    assert_chat_body(second.body)
    assistant, output_a, output_b = second.body["messages"][-3:]
    assert assistant["role"] == "assistant" and assistant["content"] == "Running it."
    assert assistant["tool_calls"] == [
        {"id": "call_a", "type": "function",
         "function": {"name": "exec_command", "arguments": json.dumps({"cmd": "echo from-chat"})}},
        {"id": "call_b", "type": "function",
         "function": {"name": "no_such_tool", "arguments": json.dumps({"x": 1})}},
    ]  # fmt: skip
    assert output_a["role"] == "tool" and output_a["tool_call_id"] == "call_a"
    assert "from-chat" in output_a["content"]
    assert output_b == {
        "role": "tool",
        "tool_call_id": "call_b",
        "content": "unsupported call: no_such_tool",
    }


def test_a_server_error_is_retried(
    codex_server_factory: ServerFactory, codex_model_server: ScriptedModelServer
) -> None:
    codex_model_server.add(http_error(500, headers={"retry-after": "0"}), "after a retry")
    server, thread = start(
        codex_server_factory, codex_model_server, "-c", "model_providers.mock.request_max_retries=2"
    )
    done = turn(server, thread, "hi")
    assert done["status"] == "completed", done
    assert len(codex_model_server.requests) == 2
    assert all(r.path == "/v1/chat/completions" for r in codex_model_server.requests)
    assert [item["text"] for item in completed_items(server, "agentMessage")] == ["after a retry"]


def test_a_bad_request_fails_the_turn(
    codex_server_factory: ServerFactory, codex_model_server: ScriptedModelServer
) -> None:
    codex_model_server.add(
        http_error(400, "Unknown model: mock-model", type="invalid_request_error")
    )
    server, thread = start(
        codex_server_factory, codex_model_server, "-c", "model_providers.mock.request_max_retries=2"
    )
    done = turn(server, thread, "hi")
    error = {"message": "unexpected status 400: Unknown model: mock-model",
             "codexErrorInfo": "badRequest", "additionalDetails": None}  # fmt: skip
    assert done["status"] == "failed" and done["error"] == error
    assert server.wait_notification("error")["params"]["error"] == error
    assert len(codex_model_server.requests) == 1  # a 400 is not retried


# --------------------------------------------------------------------------- the provider alone


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def chat(
    codex_kernel_factory: KernelFactory, codex_model_server: ScriptedModelServer
) -> ChatProvider:
    kernel = codex_kernel_factory(
        config_overrides=model_overrides(codex_model_server), load_entry_points=False
    )
    return ChatProvider(kernel)


def request(**fields: Any) -> ModelRequest:
    return ModelRequest(**{"provider_id": "mock", "model": "m", "input": [], **fields})


async def collect(chat: ChatProvider, req: ModelRequest) -> list[ModelEvent]:
    try:
        return [e async for e in chat.stream(req)]
    finally:
        await chat.aclose()


TOOLS = [
    {"type": "function", "name": "shell", "description": "run", "strict": False,
     "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
    {"type": "custom", "name": "apply_patch", "description": "patch",
     "format": {"type": "grammar", "syntax": "lark", "definition": "start: PATCH"}},
    {"type": "namespace", "name": "mcp__docs", "description": "Tools in the mcp__docs namespace.",
     "tools": [{"type": "function", "name": "search", "description": "find", "strict": False,
                "parameters": {"type": "object"}}]},
    {"type": "web_search"},
]  # fmt: skip


@pytest.mark.anyio
async def test_tools_and_history_translate_both_ways(
    chat: ChatProvider, codex_model_server: ScriptedModelServer
) -> None:
    """Namespaced and freeform tools go out as functions and their calls come back as the
    items the turn engine resolves; every kind of history item becomes its message."""
    codex_model_server.add([
        function_call("search", {"q": "chat"}, call_id="c1", namespace="mcp__docs"),
        function_call("apply_patch", {"input": "*** Begin Patch"}, call_id="c2"),
    ])  # fmt: skip
    history = [
        {"type": "message", "role": "developer",
         "content": [{"type": "input_text", "text": "ctx"}]},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "high"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": None},
        {"type": "function_call", "call_id": "p1", "name": "search", "namespace": "mcp__docs",
         "arguments": '{"q": "a"}'},
        {"type": "custom_tool_call", "call_id": "p2", "name": "apply_patch", "input": "patch text"},
        {"type": "function_call_output", "call_id": "p1",
         "output": [{"type": "input_text", "text": "found"}]},
        {"type": "custom_tool_call_output", "call_id": "p2", "output": "applied"},
    ]  # fmt: skip
    req = request(instructions="be brief", input=history, tools=TOOLS,
                  reasoning=Reasoning("low"))  # fmt: skip
    events = await collect(chat, req)
    done = [e.item for e in events if isinstance(e, OutputItemDone)]
    assert done == [
        {"type": "function_call", "id": "fc_c1", "call_id": "c1", "name": "search",
         "arguments": '{"q": "chat"}', "status": "completed", "namespace": "mcp__docs"},
        {"type": "custom_tool_call", "id": "ctc_c2", "call_id": "c2", "name": "apply_patch",
         "input": "*** Begin Patch", "status": "completed"},
    ]  # fmt: skip
    sent = codex_model_server.requests[0].body
    assert_chat_body(sent)
    assert [t["function"]["name"] for t in sent["tools"]] == [
        "shell",
        "apply_patch",
        "mcp__docs__search",
    ]
    freeform = sent["tools"][1]["function"]["parameters"]
    assert (
        freeform["required"] == ["input"]
        and "start: PATCH" in freeform["properties"]["input"]["description"]
    )
    assert (sent["reasoning_effort"], sent["parallel_tool_calls"]) == ("low", False)
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": "ctx"},
        {"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url",
             "image_url": {"url": "data:image/png;base64,AA", "detail": "high"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "p1", "type": "function",
             "function": {"name": "mcp__docs__search", "arguments": '{"q": "a"}'}},
            {"id": "p2", "type": "function",
             "function": {"name": "apply_patch",
                          "arguments": json.dumps({"input": "patch text"})}}]},
        {"role": "tool", "tool_call_id": "p1", "content": "found"},
        {"role": "tool", "tool_call_id": "p2", "content": "applied"},
    ]  # fmt: skip


@pytest.mark.anyio
async def test_an_output_schema_becomes_the_response_format(
    chat: ChatProvider, codex_model_server: ScriptedModelServer
) -> None:
    """A turn's ``outputSchema`` is Chat Completions' ``response_format``, so a structured side
    thread works on this wire too."""
    codex_model_server.add(message('{"title": "Hi"}'))
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    await collect(chat, request(instructions="x", output_schema=OutputSchema(schema)))
    assert codex_model_server.requests[0].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "codex_output_schema", "strict": True, "schema": schema},
    }


@pytest.mark.anyio
async def test_events_and_usage(
    chat: ChatProvider, codex_model_server: ScriptedModelServer
) -> None:
    headers = {"OpenAI-Model": "served-model", "x-codex-primary-used-percent": "40"}
    codex_model_server.add(
        ModelResponse([message("ab", chunks=["a", "b"])], id="chatcmpl-7", headers=headers)
    )
    events = await collect(chat, request())
    assert [type(e) for e in events] == [
        ResponseStarted, OutputItemAdded, TextDelta, TextDelta, OutputItemDone, ResponseCompleted,
    ]  # fmt: skip
    started, added, first, second, done, completed = events
    assert isinstance(started, ResponseStarted) and started.response_id == "chatcmpl-7"
    assert started.served_model == "served-model"
    assert [limits["primary"]["usedPercent"] for limits in started.rate_limits] == [40]
    assert isinstance(added, OutputItemAdded) and isinstance(done, OutputItemDone)
    assert isinstance(first, TextDelta) and isinstance(second, TextDelta)
    assert {first.item_id, second.item_id} == {added.item_id} and done.text() == "ab"
    assert isinstance(completed, ResponseCompleted) and completed.response_id == "chatcmpl-7"
    assert completed.usage == TokenUsage(input_tokens=10, output_tokens=5, total_tokens=15)
    sent = codex_model_server.requests[0].body
    assert "tools" not in sent and "tool_choice" not in sent  # no tools, no tool fields


@pytest.mark.anyio
async def test_an_error_in_the_stream(
    chat: ChatProvider, codex_model_server: ScriptedModelServer
) -> None:
    codex_model_server.add(ModelResponse([message("partial")], failed={"message": "overloaded"}))
    events = await collect(chat, request())
    assert events[-1] == ResponseFailed("stream disconnected before completion: overloaded")
    assert len(codex_model_server.requests) == 1


@pytest.mark.anyio
async def test_a_silent_stream_times_out(
    codex_kernel_factory: KernelFactory, codex_model_server: ScriptedModelServer
) -> None:
    """The idle timeout is the shared one: a chat stream that goes quiet fails, not hangs."""
    codex_model_server.add(ModelResponse([message("partial")], stall=5, keepalive=False))
    overrides = [*model_overrides(codex_model_server),
                 "model_providers.mock.stream_idle_timeout_ms=300"]  # fmt: skip
    kernel = codex_kernel_factory(config_overrides=overrides, load_entry_points=False)
    failed = (await collect(ChatProvider(kernel), request()))[-1]
    assert isinstance(failed, ResponseFailed)
    assert failed.message == "stream disconnected before completion: idle timeout waiting for SSE"
    assert failed.codex_error_info == {"responseStreamDisconnected": {"httpStatusCode": None}}
