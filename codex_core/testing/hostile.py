"""Hostile input for a Codex app-server: a reproducible message stream and a runner that checks it.

``generate(count, seed)`` builds malformed and hostile messages (invalid and truncated JSON,
deep nesting, big strings, wrong types for id / method / params / fields, unknown methods,
relative fs paths, invalid UTF-8, lone surrogates, ``NaN``, ids outside int64, duplicate ids and
duplicate keys, malformed ``trace``, stray responses, notifications, a second ``initialize``)
mixed with probes (``fs/getMetadata`` of a file in the server's cwd, ``config/read``). Every case
says what the official server does with it: one reply per id, or none at all; the list depends
only on ``count``, ``seed`` and ``huge``, so two servers get the same messages.

``run(link, cases)`` sends them over one connection (stdio or websocket) with a bounded number
of requests awaiting an answer, and reports what a client must be able to rely on: the server
stays up, the connection stays open, each well-formed request is answered exactly once, nothing
else is answered, and the probes keep succeeding. The suite (``tests/test_hostile.py``) runs a
few thousand messages per transport; ``bench/fuzz.py`` runs 100,000.

Nothing here waits a fixed time: every wait is for a message, with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

Expect = Literal["reply", "none"]

#: The file probes ask ``fs/getMetadata`` about; ``serve_dir`` must hold it.
PROBE_FILE = "probe.txt"
#: Replaced by the server's cwd when a payload is sent.
CWD_TOKEN = b"@@CWD@@"
#: Nesting the official server still reads (serde_json stops at 128 levels).
MAX_DEPTH = 127
DEEP = 10_000
INIT_PARAMS = {
    "clientInfo": {"name": "hostile", "title": None, "version": "1"},
    "capabilities": {"experimentalApi": True},
}
#: Methods never sent with wrong params (a mis-parse there would change the session).
_NEVER = frozenset({"initialize"})
_INT64_MAX = 2**63 - 1

_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("invalid_json", 8),
    ("truncated", 8),
    ("deep_nest", 2),
    ("huge_string", 1),
    ("wrong_id_type", 8),
    ("wrong_method_type", 6),
    ("wrong_params_type", 8),
    ("unknown_method", 8),
    ("toplevel", 6),
    ("wrong_field_types", 14),
    ("relative_path", 8),
    ("non_utf8", 5),
    ("lone_surrogate", 3),
    ("nan", 3),
    ("duplicate_id", 4),
    ("duplicate_key", 3),
    ("trace", 3),
    ("escaped_key", 2),
    ("stray_response", 5),
    ("notification", 5),
    ("reinitialize", 1),
    ("extra_fields", 3),
)
KINDS = tuple(kind for kind, _ in _WEIGHTS)


@dataclass(frozen=True, slots=True)
class Case:
    """One step: raw payloads (no newline) and the ids whose replies are expected.

    ``expect == "reply"``: exactly one reply per entry of ``keys`` (an id sent twice is listed
    twice); ``"none"``: no reply to any of ``keys`` (nor to anything else).
    """

    index: int
    kind: str
    payloads: tuple[bytes, ...]
    keys: tuple[str, ...] = ()
    expect: Expect = "none"
    probe: bool = False
    note: str = ""


def key_of(value: Any) -> str:
    """The canonical text of a request id, as replies are matched on it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


# --------------------------------------------------------------------------- the schema


def _client_methods() -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """(method, params schema) of every client request in the vendored official schema."""
    path = resources.files("codex_core.protocol") / "schema" / "stable" / "ClientRequest.json"
    schema = json.loads(path.read_text())
    methods = []
    for variant in schema.get("oneOf", []):
        properties = variant.get("properties", {})
        method = properties.get("method", {}).get("enum", [None])[0]
        if method and method not in _NEVER:
            methods.append((method, properties.get("params")))
    return methods, schema.get("definitions", {})


def _resolve(schema: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    for _ in range(20):
        if not isinstance(schema, dict):
            return {}
        if "$ref" in schema:
            schema = definitions.get(schema["$ref"].rsplit("/", 1)[-1], {})
        elif len(schema.get("allOf", ())) == 1:
            schema = schema["allOf"][0]
        else:
            return schema
    return {}


def _types(schema: dict[str, Any], definitions: dict[str, Any]) -> set[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if declared:
        return set(declared)
    if "enum" in schema:
        return {"string"}
    if "properties" in schema:
        return {"object"}
    types: set[str] = set()
    for alternative in schema.get("anyOf", schema.get("oneOf", [])):
        types |= _types(_resolve(alternative, definitions), definitions)
    return types


_SAMPLES: tuple[tuple[str, Any], ...] = (
    ("string", 12345),
    ("integer", "not-a-number"),
    ("number", "NaN-ish"),
    ("boolean", "yes"),
    ("array", {"x": 1}),
    ("object", [1, "two"]),
)


def _wrong_value(schema: Any, definitions: dict[str, Any], rng: random.Random) -> Any:
    """A non-null value of a JSON type the schema does not allow."""
    types = _types(_resolve(schema, definitions), definitions)
    numeric = {"integer", "number"}
    pool = [
        value
        for kind, value in _SAMPLES
        if kind not in types and not (kind in numeric and types & numeric)
    ]
    return rng.choice(pool or [[[{"\u0000": -1}]], -9.5e300])


def _wrong_params(params: Any, definitions: dict[str, Any], rng: random.Random) -> Any:
    schema = _resolve(params, definitions) if params else {}
    properties = schema.get("properties")
    if not properties:
        return rng.choice([12345, "params", [1, 2], True])
    required = schema.get("required") or list(properties)
    return {name: _wrong_value(properties[name], definitions, rng) for name in required}


# --------------------------------------------------------------------------- the cases


def generate(
    count: int, seed: int, *, huge: int = 1 << 20, exclude: Sequence[str] = ()
) -> list[Case]:
    """``count`` cases from ``seed``; ``huge`` is the size of the big-string cases in bytes."""
    rng = random.Random(seed)
    methods, definitions = _client_methods()
    kinds, weights = zip(*[(k, w) for k, w in _WEIGHTS if k not in exclude], strict=True)
    cases: list[Case] = []
    next_probe = rng.randint(40, 60)
    while len(cases) < count:
        index = len(cases)
        if index == next_probe:
            next_probe = index + rng.randint(40, 60)
            cases.append(_probe(index, rng))
        else:
            kind = rng.choices(kinds, weights)[0]
            cases.append(_CASES[kind](index, rng, methods, definitions, huge))
    return cases


def _request(index: int, method: str, params: Any = ..., **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"id": 100_000 + index, "method": method}
    if params is not ...:
        message["params"] = params
    message.update(extra)
    return message


def _answered(index: int, kind: str, message: dict[str, Any], note: str = "") -> Case:
    return Case(index, kind, (_dumps(message),), (key_of(message["id"]),), "reply", note=note)


def _dropped(index: int, kind: str, payload: bytes, keys: Sequence[Any] = ()) -> Case:
    note = payload[:60].decode(errors="replace")
    return Case(index, kind, (payload,), tuple(key_of(k) for k in keys), "none", note=note)


def _probe(index: int, rng: random.Random) -> Case:
    if rng.random() < 0.5:
        payload = _dumps(_request(index, "fs/getMetadata", {"path": "@@CWD@@/" + PROBE_FILE}))
    else:
        payload = _dumps(_request(index, "config/read", {}))
    key = key_of(100_000 + index)
    return Case(index, "probe", (payload,), (key,), "reply", probe=True)


Methods = list[tuple[str, Any]]
Maker = Callable[[int, random.Random, Methods, dict[str, Any], int], Case]


def _invalid_json(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    raw = rng.choice(
        [
            b"{",
            b"}",
            b"not json",
            b"{'id':1}",
            b"[1,2",
            b'"unterminated',
            b'{"id":1,"method":"config/read",}',
            b"{}}",
            b'{"id":1 "method":"x"}',
            b"nul",
            b"01",
            b'{"a":1}{"b":2}',
            b'\xef\xbb\xbf{"id":1,"method":"config/read"}',  # a BOM is not JSON
            bytes(rng.randrange(0x20, 0x7F) for _ in range(rng.randint(1, 80))),
        ]
    )
    return _dropped(i, "invalid_json", raw)


def _truncated(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    method, params = rng.choice(m)
    full = _dumps(_request(i, method, _wrong_params(params, d, rng)))
    return _dropped(i, "truncated", full[: rng.randint(1, len(full) - 1)], [100_000 + i])


def _deep_nest(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    choice = rng.randrange(4)
    if choice == 0:
        return _dropped(i, "deep_nest", b"[" * DEEP + b"]" * DEEP)
    if choice == 1:  # the id is in front, but the reference never gets to read it
        head = f'{{"id":{100_000 + i},"method":"config/read","params":{{"cwd":'.encode()
        return _dropped(i, "deep_nest", head + b"[" * DEEP + b"]" * DEEP + b"}}", [100_000 + i])
    # params nested to the limit are read (and refused); one level more and nothing is
    depth = MAX_DEPTH - 1 if choice == 2 else MAX_DEPTH
    head = f'{{"id":{100_000 + i},"method":"config/read","params":'.encode()
    payload = head + b"[" * depth + b"]" * depth + b"}"
    if choice == 2:
        return Case(i, "deep_nest", (payload,), (key_of(100_000 + i),), "reply", note="at limit")
    return _dropped(i, "deep_nest", payload, [100_000 + i])


def _huge_string(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    big = "a" * huge
    message = rng.choice(
        [
            _request(i, "fs/getMetadata", {"path": "/" + big}),
            _request(i, "fuzz/" + big[:1000], {"x": big}),
            _request(i, "config/read", {"cwd": "/" + big}),
        ]
    )
    return _answered(i, "huge_string", message, f"{len(big)} bytes")


def _wrong_id_type(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    valid: list[Any] = [-i - 1, "", f"fz-{i}-\u00e9\u4e2d", _INT64_MAX - i, -_INT64_MAX - 1 + i]
    invalid: list[Any] = [1.5 + i, True, False, None, {"n": i}, [i], 2**63 + i, -(2**63) - 1 - i]
    id_value = rng.choice(valid + invalid)
    message = {"id": id_value, "method": "config/read", "params": {}}
    if id_value in valid and type(id_value) in (int, str):
        return _answered(i, "wrong_id_type", message, f"id={key_of(id_value)[:30]}")
    # a float id equal to an integer id would collide with another case's key: send no key
    keys = [id_value] if isinstance(id_value, str | int) and type(id_value) is not bool else []
    return _dropped(i, "wrong_id_type", _dumps(message), keys)


def _wrong_method_type(
    i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int
) -> Case:
    method: Any = rng.choice([5, None, [], {}, True, 1.5, ["config/read"]])
    message = {"id": 100_000 + i, "method": method, "params": {}}
    return _dropped(i, "wrong_method_type", _dumps(message), [100_000 + i])


def _wrong_params_type(
    i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int
) -> Case:
    method, _ = rng.choice(m)
    params = rng.choice([5, "params", [1, 2], True, -1.5, [{}]])
    return _answered(i, "wrong_params_type", _request(i, method, params), method)


def _unknown_method(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    name = rng.choice(
        ["fuzz/nope", "", "initialize ", "Config/Read", "fs/", "fs/getmetadata",
         "thread/start/extra", "../fs/readFile", "\u0000", "rpc.discover", "x" * 300]
    )  # fmt: skip
    message = _request(i, name, rng.choice([{}, ..., None]))
    return _answered(i, "unknown_method", message, name[:30])


def _toplevel(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    value: Any = rng.choice([None, True, False, [], [1, 2], 42, -0.5, "str", {}, [{"id": 1}]])
    return _dropped(i, "toplevel", _dumps(value))


def _wrong_field_types(
    i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int
) -> Case:
    method, params = rng.choice(m)
    return _answered(i, "wrong_field_types", _request(i, method, _wrong_params(params, d, rng)))


def _relative_path(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    # Only relative, non-existent names: a server that wrongly resolves them touches its cwd.
    choices: list[tuple[str, dict[str, Any]]] = [
        ("fs/readFile", {"path": rng.choice([".", "..", "rel/x", "", "~", "./probe.txt"])}),
        ("fs/getMetadata", {"path": rng.choice(["etc/passwd", "../../../../etc/passwd"])}),
        ("fs/readDirectory", {"path": rng.choice([".", "rel"])}),
        ("fs/writeFile", {"path": "fuzz-rel-write.txt", "dataBase64": "eA=="}),
        ("fs/remove", {"path": "fuzz-nonexistent/x", "recursive": False}),
        ("fs/copy", {"sourcePath": "fuzz-src", "destinationPath": "fuzz-dst"}),
        ("fs/createDirectory", {"path": "fuzz-rel-dir"}),
    ]
    method, params = rng.choice(choices)
    return _answered(i, "relative_path", _request(i, method, params), method)


def _non_utf8(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    bad = rng.choice([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\x80", b"\xf8\x88\x80\x80"])
    if rng.random() < 0.6:
        head = f'{{"id":{100_000 + i},"method":"config/read","params":{{"cwd":"/x'.encode()
        return _dropped(i, "non_utf8", head + bad + b'"}}', [100_000 + i])
    return _dropped(i, "non_utf8", bytes(rng.randrange(0x80, 0x100) for _ in range(20)))


def _lone_surrogate(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    escape = rng.choice(["\\ud800", "\\udfff", "\\udc00x", "\\ud83d"])
    template = rng.choice(
        [
            '{"id":"s-%d-' + escape + '","method":"config/read","params":{}}',
            '{"id":%d,"method":"config/read","params":{"cwd":"/x' + escape + '"}}',
            '{"id":%d,"method":"fuzz/' + escape + '"}',
        ]
    )
    id_value = 100_000 + i
    payload = (template % id_value).encode()
    return _dropped(i, "lone_surrogate", payload, [] if '"s-' in template else [id_value])


def _nan(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    constant = rng.choice(["NaN", "Infinity", "-Infinity"])
    params = rng.choice([constant, '{"cwd":' + constant + "}"])
    payload = f'{{"id":{100_000 + i},"method":"config/read","params":{params}}}'.encode()
    return _dropped(i, "nan", payload, [100_000 + i])


def _duplicate_id(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    id_value: Any = 100_000 + i if rng.random() < 0.5 else f"dup-{i}"
    first = {"id": id_value, "method": "config/read", "params": {}}
    second = {"id": id_value, "method": "fs/getMetadata", "params": {"path": "@@CWD@@/probe.txt"}}
    key = key_of(id_value)
    return Case(i, "duplicate_id", (_dumps(first), _dumps(second)), (key, key), "reply")


def _duplicate_key(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    n = 100_000 + i
    payload = rng.choice(
        [
            f'{{"id":{n},"id":{n},"method":"config/read","params":{{}}}}',
            f'{{"id":{n},"method":"config/read","method":"config/read","params":{{}}}}',
            f'{{"id":{n},"method":"config/read","params":{{}},"params":{{}}}}',
            f'{{"id":{n},"\\u0069d":{n},"method":"config/read","params":{{}}}}',
        ]
    )
    return _dropped(i, "duplicate_key", payload.encode(), [n])


def _trace(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    trace = rng.choice([None, {}, {"traceparent": None}, 5, "t", [1], {"traceparent": 5}])
    message = _request(i, "config/read", {}, trace=trace)
    if trace is None or (isinstance(trace, dict) and trace.get("traceparent") is None):
        return _answered(i, "trace", message, key_of(trace))
    return _dropped(i, "trace", _dumps(message), [message["id"]])


def _escaped_key(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    n = 100_000 + i
    payload = f'{{"\\u0069d":{n},"m\\u0065thod":"config/read","params":{{}}}}'.encode()
    return Case(i, "escaped_key", (payload,), (key_of(n),), "reply")


def _stray_response(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    id_value = rng.choice([700_000 + i, f"srv-{i}"])
    message = rng.choice(
        [
            {"id": id_value, "result": {}},
            {"id": id_value, "result": None},
            {"id": id_value, "error": {"code": -32000, "message": "nope"}},
            {"id": id_value, "result": {"decision": "accept"}},
        ]
    )
    return _dropped(i, "stray_response", _dumps(message), [id_value])


def _notification(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    message = rng.choice(
        [
            {"method": "fuzz/notify"},
            {"method": "initialized"},
            {"method": "initialized", "params": 5},
            {"method": "turn/steer", "params": {"x": 1}},
            {"method": "config/read", "params": {}},
            {"method": "fs/remove", "params": {"path": "fuzz-nonexistent/y"}},
            {"method": "$/cancelRequest", "params": {"id": 1}},
        ]
    )
    return _dropped(i, "notification", _dumps(message))


def _reinitialize(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    return _answered(i, "reinitialize", _request(i, "initialize", INIT_PARAMS))


def _extra_fields(i: int, rng: random.Random, m: Methods, d: dict[str, Any], huge: int) -> Case:
    extras: list[dict[str, Any]] = [{"jsonrpc": "2.0"}, {"extra": [1]}, {"result": 1}]
    extra = rng.choice(extras)
    return _answered(i, "extra_fields", _request(i, "config/read", {"bogus": 1}, **extra))


_CASES: dict[str, Maker] = {
    "invalid_json": _invalid_json,
    "truncated": _truncated,
    "deep_nest": _deep_nest,
    "huge_string": _huge_string,
    "wrong_id_type": _wrong_id_type,
    "wrong_method_type": _wrong_method_type,
    "wrong_params_type": _wrong_params_type,
    "unknown_method": _unknown_method,
    "toplevel": _toplevel,
    "wrong_field_types": _wrong_field_types,
    "relative_path": _relative_path,
    "non_utf8": _non_utf8,
    "lone_surrogate": _lone_surrogate,
    "nan": _nan,
    "duplicate_id": _duplicate_id,
    "duplicate_key": _duplicate_key,
    "trace": _trace,
    "escaped_key": _escaped_key,
    "stray_response": _stray_response,
    "notification": _notification,
    "reinitialize": _reinitialize,
    "extra_fields": _extra_fields,
}


# --------------------------------------------------------------------------- links


class Link:
    """One client connection to a server under test: raw payloads out, JSON objects in."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        #: Why the connection ended (None while it is open).
        self.closed: str | None = None

    async def send(self, payload: bytes) -> None:
        raise NotImplementedError

    def alive(self) -> bool:
        """Whether the server process is still running."""
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    def _deliver(self, raw: bytes | str) -> None:
        with contextlib.suppress(ValueError):
            message = json.loads(raw)
            if isinstance(message, dict):
                self.received.put_nowait(message)

    def _ended(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
        self.received.put_nowait(None)


class StdioLink(Link):
    """A server started over stdio (its own process group, stopped by its PID)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        super().__init__()
        self.process = process
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, argv: Sequence[str], env: dict[str, str], cwd: Path) -> StdioLink:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            limit=64 << 20,
            start_new_session=True,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            while line := await self.process.stdout.readline():
                self._deliver(line)
        finally:
            self._ended("the server closed stdout")

    async def send(self, payload: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(payload + b"\n")
        await self.process.stdin.drain()

    def alive(self) -> bool:
        # Over stdio the session is the process: stdout closing is the end of both.
        return self.process.returncode is None and self.closed is None

    async def aclose(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                await self.process.wait()
        self._reader.cancel()


class WebSocketLink(Link):
    """A websocket connection to ``url``; ``alive`` asks ``server_alive`` (the process)."""

    def __init__(self, connection: ClientConnection, server_alive: Callable[[], bool]) -> None:
        super().__init__()
        self.connection = connection
        self._server_alive = server_alive
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, url: str, server_alive: Callable[[], bool]) -> WebSocketLink:
        from websockets.asyncio.client import connect

        connection = await connect(
            url, max_size=None, compression=None, ping_interval=None, open_timeout=10
        )
        return cls(connection, server_alive)

    async def _read(self) -> None:
        try:
            async for message in self.connection:
                self._deliver(message)
        except Exception as exc:  # the reason is reported, whatever it was
            self.closed = f"websocket error: {exc!r}"
        finally:
            code = self.connection.close_code
            self._ended(f"websocket closed by the server (code {code})")

    async def send(self, payload: bytes) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            text = payload.decode()
        except UnicodeDecodeError:  # a text frame must be UTF-8: send it as a binary frame
            message: str | bytes = payload
        else:
            message = text
        try:
            await self.connection.send(message)
        except ConnectionClosed as exc:
            raise ConnectionError(f"the websocket is closed: {exc}") from None

    def alive(self) -> bool:
        return self._server_alive()

    async def aclose(self) -> None:
        await self.connection.close()
        self._reader.cancel()


# --------------------------------------------------------------------------- the run


@dataclass
class Report:
    """What one run found; ``ok`` when a client could rely on everything."""

    cases: int = 0
    messages: int = 0
    seconds: float = 0.0
    crashed: str | None = None
    closed: str | None = None
    missing: list[int] = field(default_factory=list)
    duplicated: list[int] = field(default_factory=list)
    unexpected: list[int] = field(default_factory=list)
    foreign: int = 0
    probe_failures: list[str] = field(default_factory=list)
    probes: int = 0
    probe_ms: list[float] = field(default_factory=list)
    replies: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.crashed
            or self.closed
            or self.missing
            or self.duplicated
            or self.unexpected
            or self.foreign
            or self.probe_failures
        )

    @property
    def throughput(self) -> float:
        """Messages sent per second, over the whole run."""
        return self.messages / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (
            f"{self.cases} cases, {self.messages} messages in {self.seconds:.1f} s; "
            f"crashed: {self.crashed}; closed: {self.closed}; "
            f"missing {self.missing[:10]} duplicated {self.duplicated[:10]} "
            f"unexpected {self.unexpected[:10]} foreign {self.foreign}; "
            f"probes {self.probes}, failed {self.probe_failures[:5]}"
        )


class _Session:
    """Bookkeeping of one run: replies by id, and who is waiting for which."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.replies: dict[str, list[dict[str, Any]]] = {}
        self.changed = asyncio.Event()
        self._pump = asyncio.ensure_future(self._take())

    async def _take(self) -> None:
        while (message := await self.link.received.get()) is not None:
            if "method" in message and "id" in message:  # a server request: decline it
                answer = {"id": message["id"], "error": {"code": -32601, "message": "no"}}
                with contextlib.suppress(Exception):
                    await self.link.send(_dumps(answer))
            elif "id" in message:
                self.replies.setdefault(key_of(message["id"]), []).append(message)
            self.changed.set()
        self.changed.set()

    def count(self, key: str) -> int:
        return len(self.replies.get(key, ()))

    def fewer_unanswered(self, keys: list[str], expected: dict[str, int], limit: int) -> bool:
        """Whether fewer than ``limit`` of ``keys`` still wait for a reply."""
        return sum(self.count(key) < expected[key] for key in keys) < limit

    async def until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``done()`` (re-checked on every message) or the link ends or time runs out."""
        deadline = time.monotonic() + timeout
        while not done():
            if self.link.closed is not None:
                return done()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True

    async def ask(self, payload: bytes, key: str, timeout: float) -> dict[str, Any] | None:
        """Send a request and wait for its (first) reply."""
        before = self.count(key)
        await self.link.send(payload)
        if await self.until(lambda: self.count(key) > before, timeout):
            return self.replies[key][before]
        return None

    def stop(self) -> None:
        self._pump.cancel()


async def run(
    link: Link,
    cases: Sequence[Case],
    *,
    cwd: Path,
    window: int = 16,
    timeout: float = 30.0,
) -> Report:
    """Initialize ``link``'s connection, send ``cases`` and check every reply (see the module)."""
    session = _Session(link)
    report = Report()
    started = time.perf_counter()
    cwd_bytes = str(cwd).encode()
    try:
        init = {"id": "hostile-init", "method": "initialize", "params": INIT_PARAMS}
        if await session.ask(_dumps(init), key_of("hostile-init"), timeout) is None:
            report.crashed = f"no initialize reply ({link.closed or 'timeout'})"
            return report
        await link.send(_dumps({"method": "initialized"}))
        expected: dict[str, int] = {}
        waiting: list[str] = []
        for case in cases:
            if link.closed is not None:
                break
            if case.probe:
                payload = case.payloads[0].replace(CWD_TOKEN, cwd_bytes)
                sent = time.perf_counter()
                reply = await session.ask(payload, case.keys[0], timeout)
                report.messages += 1
                report.probes += 1
                expected[case.keys[0]] = expected.get(case.keys[0], 0) + 1
                if reply is None or "result" not in reply:
                    report.probe_failures.append(f"case {case.index}: {reply}")
                else:
                    report.probe_ms.append((time.perf_counter() - sent) * 1e3)
            else:
                # a sane client bounds the requests awaiting an answer
                waiting = [key for key in waiting if session.count(key) < expected[key]]
                if len(waiting) >= window:
                    await session.until(
                        functools.partial(
                            session.fewer_unanswered, list(waiting), expected, window
                        ),
                        timeout,
                    )
                for payload in case.payloads:
                    await link.send(payload.replace(CWD_TOKEN, cwd_bytes))
                    report.messages += 1
                if case.expect == "reply":
                    for key in case.keys:
                        expected[key] = expected.get(key, 0) + 1
                        waiting.append(key)
            report.cases += 1
        # A last request: once it and everything expected are answered, anything the server
        # was going to send about earlier cases would have been sent before.
        final = {"id": "hostile-final", "method": "config/read", "params": {}}
        if link.closed is None:
            await session.until(
                lambda: all(session.count(k) >= n for k, n in expected.items()), timeout
            )
            if await session.ask(_dumps(final), key_of("hostile-final"), timeout) is None:
                report.probe_failures.append("final config/read")
    except (OSError, ConnectionError) as exc:
        report.closed = f"send failed: {exc!r}"
    finally:
        session.stop()
    report.seconds = time.perf_counter() - started
    if not link.alive():
        report.crashed = "the server process exited"
    if link.closed is not None and report.closed is None and not report.crashed:
        report.closed = link.closed
    _check(report, session, cases, expected)
    return report


def _check(
    report: Report, session: _Session, cases: Sequence[Case], expected: dict[str, int]
) -> None:
    sent = cases[: report.cases]
    for case in sent:
        if not case.keys:
            continue
        got = session.count(case.keys[0])
        if case.expect == "none":
            if got:
                report.unexpected.append(case.index)
        elif got < expected[case.keys[0]]:
            report.missing.append(case.index)
        elif got > expected[case.keys[0]]:
            report.duplicated.append(case.index)
    known = {key for case in sent for key in case.keys}
    known |= {key_of("hostile-init"), key_of("hostile-final")}
    report.foreign = sum(len(v) for k, v in session.replies.items() if k not in known)
    report.replies = sum(len(v) for v in session.replies.values())


def serve_dir(path: Path) -> Path:
    """Prepare ``path`` as the server's cwd: it holds the file the probes ask about."""
    path.mkdir(parents=True, exist_ok=True)
    (path / PROBE_FILE).write_text("probe\n")
    return path.resolve()
