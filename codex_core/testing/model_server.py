"""A scripted model server: the OpenAI Responses API on loopback, replaying canned turns.

Tests (and plugin authors) point a server at it instead of a real model::

    from codex_core.testing import ScriptedModelServer, message

    with ScriptedModelServer() as model:
        model.add(message("Hello!", chunks=["Hel", "lo!"]))
        server = start_server(*model.config_args(), env=model.env)
        ...
        assert model.requests[0].headers["originator"] == "pytest"

Each ``POST .../responses`` takes the next scripted ``ModelResponse`` and streams it as
server-sent events, in the shapes and order the real API uses (``response.created``,
``response.output_item.added``, the deltas, ``response.output_item.done``,
``response.completed`` with usage). Every request is recorded (method, path, lower-cased
headers, JSON body) in ``requests``. When the script runs out, requests get a 500 error naming
the request number, so a test that makes one call too many fails loudly.

``POST .../chat/completions`` takes the same script and streams it as Chat Completions chunks
(``ModelResponse.chat_chunks``), for providers with ``wire_api = "chat"``: point the server at
it with ``model.config_args()`` plus ``-c model_providers.mock.wire_api="chat"``.

Only the standard library is used: an ``http.server`` in a background thread, so the helper
works the same from synchronous tests, anyio tests and other processes.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from codex_core.testing.background_server import BackgroundServer, QuietHandler

__all__ = [
    "ModelResponse",
    "OutputItem",
    "RecordedRequest",
    "ScriptedModelServer",
    "function_call",
    "http_error",
    "message",
    "reasoning",
]

_ids = itertools.count(1)


@dataclass(slots=True)
class OutputItem:
    """One item of a model response: what ``output_item.added`` announces, the deltas
    streamed for it (events without ``item_id``/``output_index``, filled in when sent), and
    the finished item of ``output_item.done``."""

    added: dict[str, Any]
    deltas: list[dict[str, Any]]
    done: dict[str, Any]


def message(text: str, *, chunks: Iterable[str] | None = None, id: str | None = None) -> OutputItem:
    """An assistant message, streamed as ``chunks`` (default: the whole text in one delta)."""
    item_id = id or f"msg_{next(_ids)}"
    parts = list(chunks) if chunks is not None else [text]
    if "".join(parts) != text:
        raise ValueError(f"chunks {parts!r} do not add up to {text!r}")
    deltas = [{"type": "response.output_text.delta", "content_index": 0, "delta": p} for p in parts]
    return OutputItem(
        added={"type": "message", "id": item_id, "status": "in_progress", "role": "assistant",
               "content": []},
        deltas=deltas,
        done={"type": "message", "id": item_id, "status": "completed", "role": "assistant",
              "content": [{"type": "output_text", "text": text, "annotations": []}]},
    )  # fmt: skip


def reasoning(
    summary: str | Iterable[str] = (),
    *,
    content: str | Iterable[str] = (),
    id: str | None = None,
) -> OutputItem:
    """A reasoning item: summary parts (streamed as summary deltas) and raw reasoning text."""
    item_id = id or f"rs_{next(_ids)}"
    summaries = [summary] if isinstance(summary, str) else list(summary)
    contents = [content] if isinstance(content, str) else list(content)
    deltas: list[dict[str, Any]] = []
    for index, text in enumerate(summaries):
        deltas.append(
            {
                "type": "response.reasoning_summary_part.added",
                "summary_index": index,
                "part": {"type": "summary_text", "text": ""},
            }
        )
        deltas.append(
            {"type": "response.reasoning_summary_text.delta", "summary_index": index, "delta": text}
        )
    for index, text in enumerate(contents):
        deltas.append(
            {"type": "response.reasoning_text.delta", "content_index": index, "delta": text}
        )
    done: dict[str, Any] = {
        "type": "reasoning",
        "id": item_id,
        "summary": [{"type": "summary_text", "text": text} for text in summaries],
        "encrypted_content": None,
    }
    if contents:
        done["content"] = [{"type": "reasoning_text", "text": text} for text in contents]
    return OutputItem(
        added={"type": "reasoning", "id": item_id, "summary": []}, deltas=deltas, done=done
    )


def function_call(
    name: str,
    arguments: dict[str, Any] | str,
    *,
    call_id: str | None = None,
    id: str | None = None,
    namespace: str | None = None,
) -> OutputItem:
    """A function (tool) call; ``arguments`` is sent as the JSON string the API uses.

    ``namespace`` calls ``name`` inside a namespace the request offered (MCP servers' tools).
    """
    number = next(_ids)
    item_id = id or f"fc_{number}"
    call = call_id or f"call_{number}"
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    base = {"type": "function_call", "id": item_id, "call_id": call, "name": name}
    if namespace is not None:
        base["namespace"] = namespace
    return OutputItem(
        added={**base, "arguments": "", "status": "in_progress"},
        deltas=[{"type": "response.function_call_arguments.delta", "delta": args}],
        done={**base, "arguments": args, "status": "completed"},
    )


@dataclass(slots=True)
class ModelResponse:
    """One scripted answer to one request.

    ``items`` are streamed in order; ``delay`` seconds pass before each event after
    ``response.created``; ``stall`` seconds pass (the stream open, nothing sent) before
    ``response.completed``, to test interrupts and timeouts. ``status`` other than 200 answers
    with that HTTP status and ``error_body`` instead of a stream; ``failed`` ends the stream
    with ``response.failed`` carrying that error object.
    """

    items: list[OutputItem] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    delay: float = 0.0
    stall: float = 0.0
    status: int = 200
    error_body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    failed: dict[str, Any] | None = None
    id: str | None = None
    #: Send SSE comments while stalling (so a client notices at once when the server is gone);
    #: ``False`` stalls in silence, to trip a client's idle timeout.
    keepalive: bool = True

    def events(self, model: str) -> Iterator[dict[str, Any]]:
        """The SSE events of this response, in the order the real API sends them."""
        response_id = self.id or f"resp_{next(_ids)}"
        created = int(time.time())
        shell = {"id": response_id, "object": "response", "created_at": created, "model": model}
        yield {"type": "response.created", "response": {**shell, "status": "in_progress",
                                                        "output": []}}  # fmt: skip
        for index, item in enumerate(self.items):
            yield {"type": "response.output_item.added", "output_index": index, "item": item.added}
            for delta in item.deltas:
                yield {**delta, "item_id": item.added["id"], "output_index": index}
            yield {"type": "response.output_item.done", "output_index": index, "item": item.done}
        if self.failed is not None:
            yield {"type": "response.failed", "response": {**shell, "status": "failed",
                                                          "error": self.failed}}  # fmt: skip
            return
        yield {
            "type": "response.completed",
            "response": {
                **shell,
                "status": "completed",
                "output": [item.done for item in self.items],
                "usage": self.usage or default_usage(),
            },
        }

    def chat_chunks(self, model: str) -> Iterator[dict[str, Any]]:
        """The same answer as Chat Completions stream chunks (before ``data: [DONE]``).

        Message text comes as ``content`` deltas, function calls as ``tool_calls`` deltas (a
        call in a namespace named ``<namespace>__<name>``, as chat providers flatten them)
        and the raw text of reasoning items as ``reasoning_content`` deltas, as local servers
        stream it (summaries have no chat form). ``failed`` becomes an ``{"error": ...}``
        chunk; else the ``finish_reason`` chunk and the usage chunk end it.
        """
        shell = {"id": self.id or f"chatcmpl-{next(_ids)}", "object": "chat.completion.chunk",
                 "created": int(time.time()), "model": model}  # fmt: skip

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {**shell, "choices": [{"index": 0, "delta": delta,
                                          "finish_reason": finish_reason}]}  # fmt: skip

        yield chunk({"role": "assistant", "content": ""})
        calls = 0
        for item in self.items:
            done = item.done
            if done["type"] in ("message", "reasoning"):
                for delta in item.deltas:
                    if delta["type"] == "response.output_text.delta":
                        yield chunk({"content": delta["delta"]})
                    elif delta["type"] == "response.reasoning_text.delta":
                        yield chunk({"reasoning_content": delta["delta"]})
            elif done["type"] == "function_call":
                name = done["name"]
                if done.get("namespace"):
                    name = f"{done['namespace']}__{name}"
                call = {"index": calls, "id": done["call_id"], "type": "function",
                        "function": {"name": name, "arguments": ""}}  # fmt: skip
                yield chunk({"tool_calls": [call]})
                for delta in item.deltas:
                    piece = {"index": calls, "function": {"arguments": delta["delta"]}}
                    yield chunk({"tool_calls": [piece]})
                calls += 1
        if self.failed is not None:
            yield {"error": self.failed}
            return
        yield chunk({}, "tool_calls" if calls else "stop")
        usage = self.usage or default_usage()
        yield {**shell, "choices": [], "usage": {
            "prompt_tokens": usage.get("input_tokens", 0),
            "prompt_tokens_details": usage.get("input_tokens_details") or {},
            "completion_tokens": usage.get("output_tokens", 0),
            "completion_tokens_details": usage.get("output_tokens_details") or {},
            "total_tokens": usage.get("total_tokens", 0),
        }}  # fmt: skip


def default_usage(input_tokens: int = 10, output_tokens: int = 5) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def http_error(
    status: int,
    message: str = "scripted error",
    *,
    type: str = "server_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> ModelResponse:
    """An HTTP error answer in the API's error envelope (429 rate limit, 500, 401, ...)."""
    body = {"error": {"message": message, "type": type, "code": code, "param": None}}
    return ModelResponse(status=status, error_body=body, headers=dict(headers or {}))


@dataclass(slots=True)
class RecordedRequest:
    """A request the server received: header names are lower-cased; ``body`` is parsed JSON
    (or the raw text when it is not JSON).

    ``received_at`` (the request read) and ``finished_at`` (the answer sent; ``None`` until
    then) are ``time.perf_counter()`` readings, so a benchmark can tell the time the model
    took from the time the server under test took (``bench/turns.py``).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    finished_at: float | None = None

    def input_texts(self, role: str = "user") -> list[str]:
        """The ``input_text`` spans of the ``message`` inputs of ``role`` (Responses API), or
        the contents of the ``messages`` of ``role`` (Chat Completions)."""
        texts: list[str] = []
        for chat in (self.body or {}).get("messages", []):
            if chat.get("role") == role:
                content = chat.get("content")
                spans = [{"text": content}] if isinstance(content, str) else content or []
                texts.extend(span.get("text", "") for span in spans if "text" in span)
        for item in (self.body or {}).get("input", []):
            if item.get("type") == "message" and item.get("role") == role:
                for span in item.get("content", []):
                    if span.get("type") in ("input_text", "output_text"):
                        texts.append(span.get("text", ""))
        return texts


Script = ModelResponse | Callable[[RecordedRequest], ModelResponse]


class ScriptedModelServer(BackgroundServer):
    """A Responses API (and Chat Completions) server on ``127.0.0.1`` (a free port) that
    replays scripted answers."""

    def __init__(
        self,
        responses: Iterable[Script | OutputItem | str] = (),
        *,
        api_key: str = "scripted-model-key",
        env_key: str = "MOCK_API_KEY",
    ) -> None:
        super().__init__(_Handler, "scripted model server")
        self.api_key = api_key
        self.env_key = env_key
        self.requests: list[RecordedRequest] = []
        self._script: list[Script] = []
        self._standing: list[tuple[Callable[[RecordedRequest], bool], Script]] = []
        self._lock = threading.Condition()
        self._closing = threading.Event()
        self.add(*responses)

    # ------------------------------------------------------------------ script

    def add(self, *responses: Script | OutputItem | str | list[OutputItem]) -> None:
        """Queue answers: a ``ModelResponse``, a callable making one from the request, an
        item or a list of items (one response), or a string (one message)."""
        with self._lock:
            for response in responses:
                self._script.append(_as_response(response))

    def answer_matching(
        self, predicate: Callable[[RecordedRequest], bool], response: Script | OutputItem | str
    ) -> None:
        """Answer every request ``predicate`` accepts with ``response``, outside the script.

        For requests a client makes on the side, whose timing the test does not control (the
        official TUI asks the model for a thread title while the turn runs, for example).
        """
        with self._lock:
            self._standing.append((predicate, _as_response(response)))

    @property
    def pending(self) -> int:
        """Scripted answers not used yet."""
        with self._lock:
            return len(self._script)

    def _next(self, request: RecordedRequest) -> ModelResponse | None:
        with self._lock:
            self.requests.append(request)
            self._lock.notify_all()
            standing = [answer for accepts, answer in self._standing if accepts(request)]
            if standing:
                script = standing[0]
            elif not self._script:
                return None
            else:
                script = self._script.pop(0)
        return script if isinstance(script, ModelResponse) else script(request)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until ``count`` requests arrived; returns them all."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} model request(s), got {len(self.requests)}"
                    )
                self._lock.wait(left)
            return list(self.requests)

    # ------------------------------------------------------------------ addresses

    @property
    def base_url(self) -> str:
        """The provider ``base_url`` (``http://127.0.0.1:PORT/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def config_args(self, provider: str = "mock", model: str = "mock-model") -> list[str]:
        """``-c`` arguments that point a server (ours or the reference) at this one."""
        table = (
            f'{{name="{provider}",base_url="{self.base_url}",wire_api="responses",'
            f'env_key="{self.env_key}",request_max_retries=0,stream_max_retries=0}}'
        )
        return [
            "-c",
            f'model_provider="{provider}"',
            "-c",
            f"model_providers.{provider}={table}",
            "-c",
            f'model="{model}"',
        ]

    @property
    def env(self) -> dict[str, str]:
        """The environment the server needs (the provider's API key)."""
        return {self.env_key: self.api_key}

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._closing.set()  # ends stalls and delays at once
        super().close()


def _as_response(response: Script | OutputItem | str | list[OutputItem]) -> Script:
    if isinstance(response, str):
        return ModelResponse([message(response)])
    if isinstance(response, OutputItem):
        return ModelResponse([response])
    if isinstance(response, list):
        return ModelResponse(response)
    return response


def _frames(response: ModelResponse, model: str) -> Iterator[tuple[bytes, bool]]:
    for event in response.events(model):
        payload = json.dumps(event, separators=(",", ":"))
        last = event["type"] in ("response.completed", "response.failed")
        yield f"event: {event['type']}\ndata: {payload}\n\n".encode(), last


def _chat_frames(response: ModelResponse, model: str) -> Iterator[tuple[bytes, bool]]:
    for chunk in response.chat_chunks(model):
        last = "error" in chunk or any(c["finish_reason"] for c in chunk.get("choices", []))
        yield f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n".encode(), last
    yield b"data: [DONE]\n\n", False


class _Handler(QuietHandler):
    owner: ScriptedModelServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self._serve(self.rfile.read(length) if length else b"")

    def _serve(self, raw: bytes) -> None:
        request = self._request(raw)
        try:
            self._answer(request)
        finally:
            request.finished_at = time.perf_counter()

    def _answer(self, request: RecordedRequest) -> None:
        path = self.path.split("?")[0].rstrip("/")
        chat = path.endswith("/chat/completions")
        if self.command != "POST" or not (chat or path.endswith("/responses")):
            self._record(request)
            self._json(404, {"error": {"message": f"not found: {self.path}", "type": "not_found"}})
            return
        response = self.owner._next(request)
        if response is None:
            number = len(self.owner.requests)
            message = f"scripted model server: no response left for request {number}"
            self._json(500, {"error": {"message": message, "type": "server_error"}})
            return
        if response.status != 200:
            self._json(response.status, response.error_body, response.headers)
            return
        model = request.body.get("model", "mock-model") if isinstance(request.body, dict) else ""
        self._stream(response, (_chat_frames if chat else _frames)(response, str(model)))

    def _request(self, raw: bytes) -> RecordedRequest:
        text = raw.decode("utf-8", errors="replace")
        try:
            body: Any = json.loads(text) if text else None
        except ValueError:
            body = text
        headers = {name.lower(): value for name, value in self.headers.items()}
        return RecordedRequest(self.command, self.path, headers, body, time.perf_counter())

    def _record(self, request: RecordedRequest) -> None:
        with self.owner._lock:
            self.owner.requests.append(request)
            self.owner._lock.notify_all()

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream(self, response: ModelResponse, frames: Iterator[tuple[bytes, bool]]) -> None:
        """Send ``frames`` (an SSE event each, and whether it is the one that ends the
        answer, before which ``stall`` waits) with the pacing ``response`` asks for."""
        closing = self.owner._closing
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            for number, (frame, last) in enumerate(frames):
                if last and response.stall and not self._stall(response.stall, response.keepalive):
                    return
                if number and response.delay and closing.wait(response.delay):
                    return
                self._chunk(frame)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _stall(self, seconds: float, keepalive: bool) -> bool:
        """Keep the stream open for ``seconds``; False when the client or server went away."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.owner._closing.wait(min(left, 0.2)):
                return False
            if keepalive:  # an SSE comment: ignored by clients, fails once they hung up
                self._chunk(b": waiting\n\n")
        return True
