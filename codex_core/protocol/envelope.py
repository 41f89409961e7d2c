"""The JSON-RPC envelope as Codex speaks it: JSON-RPC 2.0 without the ``"jsonrpc"`` member.

Parsing is deliberately forgiving of what clients send and strict about what counts as a
request: anything that is not a request, notification or response is classified as garbage so
the connection can log and drop it without replying, as the official server does. "Not a
request" follows the official server's JSON reader (serde_json) rather than Python's, which
accepts more: nesting deeper than 127 levels, ``NaN`` / ``Infinity``, lone UTF-16 surrogates in
``\\u`` escapes, integer ids outside int64 and duplicate envelope keys are all dropped there, so
they are dropped here too (a request whose ``trace`` is malformed is read as a notification,
again as there). None of it may raise: one hostile line must not end the session.
Encoding writes keys in the official server's order, which costs nothing and keeps captures
diffable.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

RequestId = str | int

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

#: Deepest nesting the official server reads (serde_json's recursion limit); deeper is dropped.
MAX_DEPTH = 127
_INT64 = range(-(2**63), 2**63)
#: Envelope members whose repetition makes serde reject the message kind that uses them.
_REQUEST_KEYS = frozenset(("id", "method", "params", "trace"))
_RESPONSE_KEYS = frozenset(("id", "result", "error"))
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: A member name spelled with an escaped ASCII character (``"\\u0069d":``), which could repeat
#: an envelope key without its plain text occurring twice.
_ESCAPED_KEY = re.compile(r'"[^"\\]*\\u00[0-9a-fA-F]{2}(?:[^"\\]|\\u00[0-9a-fA-F]{2})*"\s*:')


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)


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
    if isinstance(value, str):
        return True
    return isinstance(value, int) and not isinstance(value, bool) and value in _INT64


def _valid_trace(value: Any) -> bool:
    """W3C trace context as the reference reads it: null, or an object of optional strings."""
    if value is None:
        return True
    if not isinstance(value, dict):
        return False
    return all(isinstance(value.get(key), str | None) for key in ("traceparent", "tracestate"))


def parse(frame: bytes | str) -> Message:
    """Classify one frame (a stdio line or a websocket text frame); never raises."""
    try:
        text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
        data = _decoder.decode(text)
    except UnicodeDecodeError as exc:
        return Garbage(f"invalid UTF-8: {exc}")
    except RecursionError:
        return Garbage(f"Failed to deserialize JSONRPCMessage: nested deeper than {MAX_DEPTH}")
    except ValueError as exc:
        return Garbage(f"Failed to deserialize JSONRPCMessage: {exc}")
    if not isinstance(data, dict):
        return Garbage(
            f"Failed to deserialize JSONRPCMessage: expected an object, got {_kind(data)}"
        )
    if _too_deep(text, data):
        return Garbage(f"Failed to deserialize JSONRPCMessage: nested deeper than {MAX_DEPTH}")
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
        return Garbage("Failed to deserialize JSONRPCMessage: lone surrogate in a \\u escape")
    duplicates = _duplicate_keys(text, data)
    method = data.get("method")
    if (
        isinstance(method, str)
        and "id" in data
        and not duplicates & _REQUEST_KEYS
        and _valid_id(data["id"])
        and _valid_trace(data.get("trace"))
    ):
        return Request(data["id"], method, data.get("params"), "params" in data)
    if isinstance(method, str):
        # What the reference reads as a notification: any object with a string method that is
        # not a valid request (no id, an id of the wrong type, a malformed ``trace``, ...).
        if duplicates & {"method", "params"}:
            return Garbage(f"duplicate keys {sorted(duplicates)}")
        return Notification(method, data.get("params"))
    if "id" not in data:
        return Garbage("object is neither a request, a notification nor a response")
    request_id = data["id"]
    if not _valid_id(request_id):
        return Garbage(f"invalid request id {request_id!r:.80}")
    if duplicates & _RESPONSE_KEYS:
        return Garbage(f"duplicate keys {sorted(duplicates)}")
    if "result" in data:
        return Response(request_id, result=data["result"])
    error = data.get("error")
    if isinstance(error, dict):
        return Response(request_id, error=error)
    return Garbage("message with an id but neither method, result nor error")


def _too_deep(text: str, data: Any) -> bool:
    """Whether ``data`` nests more than ``MAX_DEPTH`` containers (itself included).

    Counting brackets in the text first keeps the usual message (few containers) at one C-speed
    scan; only a message with more brackets than the limit is walked, without recursion.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _has_lone_surrogate(data: Any) -> bool:
    """Whether a string anywhere in ``data`` (keys included) holds an unpaired surrogate.

    serde_json refuses those; Python decodes them into strings that cannot be encoded back to
    UTF-8, which would fail later, far from the cause.
    """
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _duplicate_keys(text: str, data: dict[str, Any]) -> set[str]:
    """Top-level envelope keys that occur more than once in the object.

    ``json`` keeps the last of duplicate keys silently; serde rejects a struct with a repeated
    field. Only a frame that could hold a repeat (an envelope key's text occurs twice, or a
    member name is spelled with escapes) is parsed a second time to find out.
    """
    plain = all(text.count(f'"{key}"') < 2 for key in data if key in _KEYS)
    if plain and not ("\\u00" in text and _ESCAPED_KEY.search(text)):
        return set()
    top: list[list[tuple[str, Any]]] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        top[:] = [pairs]  # the outermost object is decoded last
        return dict(pairs)

    json.JSONDecoder(object_pairs_hook=pairs_hook, parse_constant=_reject_constant).decode(text)
    seen: set[str] = set()
    repeated: set[str] = set()
    for key, _value in top[0]:
        (repeated if key in seen else seen).add(key)
    return repeated & _KEYS


_KEYS = _REQUEST_KEYS | _RESPONSE_KEYS


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
