"""The JSON-RPC envelope as Codex speaks it: JSON-RPC 2.0 without the ``"jsonrpc"`` member.

Parsing is deliberately forgiving of what clients send and strict about what counts as a
request: anything that is not a request, notification or response (invalid JSON, non-objects,
ids that are neither string nor integer) is classified as garbage so the connection can log and
drop it without replying, as the official server does. Encoding writes keys in the official
server's order, which costs nothing and keeps captures diffable.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

RequestId = str | int

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(slots=True)
class Request:
    id: RequestId
    method: str
    params: Any  # ``MISSING`` when the member was absent
    has_params: bool


@dataclass(slots=True)
class Notification:
    method: str
    params: Any


@dataclass(slots=True)
class Response:
    id: RequestId
    result: Any = None
    error: dict[str, Any] | None = None


@dataclass(slots=True)
class Garbage:
    """Input that is not a protocol message; ``reason`` is what the log says."""

    reason: str


Message = Request | Notification | Response | Garbage


def _valid_id(value: Any) -> bool:
    # bool is an int subclass, and JSON ``true`` is no request id.
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)


def parse(frame: bytes | str) -> Message:
    """Classify one frame (a stdio line or a websocket text frame)."""
    try:
        data = json.loads(frame)
    except UnicodeDecodeError as exc:
        return Garbage(f"invalid UTF-8: {exc}")
    except ValueError as exc:
        return Garbage(f"Failed to deserialize JSONRPCMessage: {exc}")
    if not isinstance(data, dict):
        return Garbage(
            f"Failed to deserialize JSONRPCMessage: expected an object, got {_kind(data)}"
        )
    method = data.get("method")
    if "id" in data:
        request_id = data["id"]
        if not _valid_id(request_id):
            return Garbage(f"invalid request id {request_id!r}")
        if isinstance(method, str):
            has_params = "params" in data
            return Request(request_id, method, data.get("params"), has_params)
        if "result" in data:
            return Response(request_id, result=data["result"])
        error = data.get("error")
        if isinstance(error, dict):
            return Response(request_id, error=error)
        return Garbage("message with an id but neither method, result nor error")
    if isinstance(method, str):
        return Notification(method, data.get("params"))
    return Garbage("object is neither a request, a notification nor a response")


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def dumps(value: Any) -> str:
    """Compact JSON with non-ASCII kept as is, as serde_json writes it."""
    return _dumps(value)


def encode_result(request_id: RequestId, result_json: str) -> str:
    return f'{{"id":{dumps(request_id)},"result":{result_json}}}'


def encode_error(request_id: RequestId, error: dict[str, Any]) -> str:
    return f'{{"error":{dumps(error)},"id":{dumps(request_id)}}}'


def encode_notification(method: str, params_json: str | None) -> str:
    emitted = time.time_ns() // 1_000_000
    if params_json is None:
        return f'{{"method":{dumps(method)},"emittedAtMs":{emitted}}}'
    return f'{{"method":{dumps(method)},"params":{params_json},"emittedAtMs":{emitted}}}'


def encode_request(request_id: RequestId, method: str, params_json: str | None) -> str:
    if params_json is None:
        return f'{{"method":{dumps(method)},"id":{dumps(request_id)}}}'
    return f'{{"method":{dumps(method)},"id":{dumps(request_id)},"params":{params_json}}}'
