#!/usr/bin/env python3
"""Differential conformance runner: our server and the official one, side by side.

Runs JSONL case files against a candidate server and a reference server (by default the
pinned official release that ``codex_core.testing.reference`` finds), compares the responses
structurally (and, with ``--values``, value by value with ids, times and temp paths masked)
and validates every message the candidate sends against the vendored official JSON schema.
``docs/development.md`` describes the case format and the masking.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SCHEMA_DIR = REPO / "codex_core" / "protocol" / "schema" / "stable"
DEFAULT_TIMEOUT_S = 5.0
TRAILING_DRAIN_S = 0.3
STDERR_TAIL_LINES = 20
STRUCTURE_DEPTH = 3
STEP_KINDS = {"send", "send_raw", "expect", "expect_notification", "sleep"}

# Methods whose response type name cannot be derived from their params type name.
RESPONSE_TYPE_OVERRIDES: dict[str, str] = {
    "account/gatewayOAuth/read": "GatewayOAuthReadResponse",
    "account/gatewayOAuth/login": "GatewayOAuthLoginResponse",
    "account/gatewayOAuth/cancel": "GatewayOAuthCancelResponse",
    "account/logout": "LogoutAccountResponse",
    "account/securitySetup/read": "GetAccountSecuritySetupResponse",
    "account/rateLimits/read": "GetAccountRateLimitsResponse",
    "account/usage/read": "GetAccountTokenUsageResponse",
    "account/workspaceMessages/read": "GetWorkspaceMessagesResponse",
    "config/mcpServer/reload": "McpServerRefreshResponse",
    "config/value/write": "ConfigWriteResponse",
    "config/batchWrite": "ConfigWriteResponse",
    "configRequirements/read": "ConfigRequirementsReadResponse",
    "externalAgentConfig/import/readHistories": "ExternalAgentConfigImportHistoriesReadResponse",
    "windowsSandbox/readiness": "WindowsSandboxReadinessResponse",
}

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


# --------------------------------------------------------------------------- --values masking
#
# With --values, leaf values are compared after masking what legitimately differs between two
# runs. Each server's values are masked on their own, in this order:
#
#   1. what the harness knows exactly about that server: its temp dirs become $CODEX_HOME, $CWD,
#      $TMP and (their parent) $WORKDIR, longest first; with --transport ws its port becomes
#      ":<port>";
#   2. VALUE_MASKS, row by row, applied to every string and number of a result, error.data or
#      notification params, and to object keys (with key ""):
#        key    regex that must fully match the name of the nearest object key (array items: the
#               key of the array; the top-level value: "");
#        value  a regex: each match inside a string is replaced by `mask` (a template, `\1`
#               allowed), or a predicate: a whole value for which it is true is replaced by `mask`;
#        mask   the replacement, or a function (match text, masker) -> replacement.
#
# Timestamps are masked only when they lie within RECENT_WINDOW_S of now, so a fixed date stays
# content, and seconds vs milliseconds still differ (<epoch-s> vs <epoch-ms>). UUIDs are masked
# unless the case file contains them literally; a UUID captured by `save` becomes its $NAME, so
# "forkedFromId": "$THREAD_ID" is still checked. Everything not matched here is compared as is.

RECENT_WINDOW_S = 2 * 24 * 3600
VALUE_SHOW_LIMIT = 80  # characters of each value shown in a --values failure
ISO_DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
)
EPOCH_RE = re.compile(r"(?<!\d)1\d{9}(?:\d{3})?(?!\d)")  # 10 (s) or 13 (ms) digits, 2001..2033
TIME_KEYS = r".*At|.*AtMs|.*AtSecs|.*_at|.*_at_ms|.*[tT]imestamp|.*Time|m?time"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_nonempty_string(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def is_recent_epoch_s(value: Any) -> bool:
    return is_number(value) and abs(value - time.time()) < RECENT_WINDOW_S


def is_recent_epoch_ms(value: Any) -> bool:
    return is_number(value) and abs(value / 1000 - time.time()) < RECENT_WINDOW_S


def is_recent_datetime(value: Any) -> bool:
    if not isinstance(value, str) or not ISO_DATETIME_RE.fullmatch(value):
        return False
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return abs(moment.timestamp() - time.time()) < RECENT_WINDOW_S


def embeds_id_or_time(value: Any) -> bool:
    """A cursor that contains (maybe base64-encoded) a UUID, a date-time or an epoch timestamp."""
    if not isinstance(value, str):
        return False
    texts = [value]
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        texts.append(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("utf-8"))
    return any(
        UUID_RE.search(text) or ISO_DATETIME_RE.search(text) or EPOCH_RE.search(text)
        for text in texts
    )


def generated_uuid(text: str, masker: ValueMasker) -> str:
    if text in masker.literal_uuids:
        return text
    return masker.saved_names.get(text, "<uuid>")


VALUE_MASKS: list[tuple[str, Any, Any]] = [
    # key                                 value                                             mask
    # -- the server's identity: product version, OS/arch it runs on, installation, processes
    (r"userAgent", r"^([^/\s]+)/\S+ \([^)]*\)", r"\1/<version> (<platform>)"),
    (r"cliVersion|serverVersion", r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$", "<version>"),
    (r"installationId", is_nonempty_string, "<installationId>"),
    (r"pid|.*Pid|processId|.*ProcessId", is_number, "<pid>"),
    (r"port|.*Port", is_number, "<port>"),
    # -- generated ids, and cursors that embed ids or times (plain offsets like "2" stay content)
    (r"loginId|.*LoginId", is_nonempty_string, "<loginId>"),
    (r"cursor|.*Cursor", embeds_id_or_time, "<cursor>"),
    # -- timestamps and durations
    (TIME_KEYS, is_recent_epoch_s, "<epoch-s>"),
    (TIME_KEYS, is_recent_epoch_ms, "<epoch-ms>"),
    (TIME_KEYS, is_recent_datetime, "<datetime>"),
    (r".*[dD]uration.*|.*[eE]lapsed.*", is_number, "<duration>"),
    # -- rollout files are named after their creation date and time
    (r".*", r"sessions/\d{4}/\d{2}/\d{2}/", "sessions/<date>/"),
    (r".*", r"rollout-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}", "rollout-<datetime>"),
    # -- any other generated id
    (r".*", UUID_RE, generated_uuid),
    (r"id|.*Id", r"^(?:[A-Za-z]+[_-])?[0-9a-fA-F]{16,}$", "<id>"),
]

# Arrays of objects compared as multisets in --values mode: (method, array path with `[]` for any
# index) -> element keys tried in order; the first key that every element on both sides has, with
# unique values, matches elements up. Every other array is compared element by element.
UNORDERED_ARRAYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("model/list", "data"): ("id",),
    ("model/list", "data[].serviceTiers"): ("id",),
    ("modelProvider/list", "data"): ("id",),
    ("experimentalFeature/list", "data"): ("name",),
    ("permissionProfile/list", "data"): ("id",),
    ("collaborationMode/list", "data"): ("name",),
    ("skills/list", "data"): ("cwd",),
    ("skills/list", "data[].skills"): ("name", "path"),
    ("hooks/list", "data"): ("cwd",),
    ("plugin/list", "marketplaces"): ("name", "path"),
    ("plugin/list", "marketplaces[].plugins"): ("id", "name"),
    ("plugin/installed", "marketplaces"): ("name", "path"),
    ("plugin/installed", "marketplaces[].plugins"): ("id", "name"),
    ("app/list", "data"): ("id",),
    ("app/installed", "apps"): ("id",),
    ("mcpServerStatus/list", "data"): ("name",),
}


# --------------------------------------------------------------------------- data


@dataclass
class Received:
    """One message received from a server, in arrival order."""

    kind: str  # "response", "notification", "server_request" or "invalid"
    message: Any
    raw: str
    consumed: bool = False


@dataclass
class ExpectOutcome:
    """What one `expect` / `expect_notification` step observed."""

    step_index: int
    label: str
    request_id: Any = None
    method: str | None = None
    message: dict | None = None  # None means timeout / crash
    spec: dict = field(default_factory=dict)


@dataclass
class RunResult:
    """Everything observed while running one case against one server."""

    outcomes: list[ExpectOutcome] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    request_methods: dict[str, str] = field(default_factory=dict)  # id key -> method
    crashed: bool = False
    exit_code: int | None = None
    stderr_tail: str = ""
    setup_error: str | None = None
    placeholders: dict[str, str] = field(default_factory=dict)
    saved: dict[str, str] = field(default_factory=dict)  # values captured by `save`: $NAME -> value
    literal_uuids: set[str] = field(default_factory=set)  # UUIDs written in the case file
    port: int | None = None


@dataclass
class CaseReport:
    name: str
    status: str = "PASS"
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    server_requests: list[dict] = field(default_factory=list)
    stderr_tail: str = ""


# --------------------------------------------------------------------------- transports


class Transport:
    """A connection to a running server: send text, receive decoded lines/frames."""

    def __init__(self) -> None:
        self.inbox: queue.Queue[str] = queue.Queue()

    def send_text(self, text: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class StdioTransport(Transport):
    def __init__(self, process: subprocess.Popen) -> None:
        super().__init__()
        self.process = process
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip():
                self.inbox.put(line.rstrip("\r\n"))

    def send_text(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()


class WebSocketTransport(Transport):
    def __init__(self, url: str) -> None:
        super().__init__()
        from websockets.sync.client import connect

        self.connection = connect(url, open_timeout=DEFAULT_TIMEOUT_S, max_size=None)
        threading.Thread(target=self._read_frames, daemon=True).start()

    def _read_frames(self) -> None:
        try:
            for frame in self.connection:
                self.inbox.put(
                    frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                )
        except Exception:  # connection closed or broken: the reader just stops
            pass

    def send_text(self, text: str) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            self.connection.send(text)
        except ConnectionClosed as err:
            raise ConnectionError(str(err)) from err

    def close(self) -> None:
        self.connection.close()


def find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def command_for_transport(command: str, transport: str) -> str:
    """For ws, make sure the command listens on a `{port}` placeholder."""
    if transport == "ws" and "{port}" not in command:
        return command + " --listen ws://127.0.0.1:{port}"
    return command


# --------------------------------------------------------------------------- server process


class ServerProcess:
    """A server started with a fresh CODEX_HOME and cwd, stopped by PID."""

    def __init__(self, command: str, transport: str, workdir: Path) -> None:
        self.workdir = workdir
        self.codex_home = workdir / "codex-home"
        self.cwd = workdir / "cwd"
        self.codex_home.mkdir()
        self.cwd.mkdir()
        self.stderr_path = workdir / "stderr.log"
        # Open for the process's lifetime: stop() closes it.
        self.stderr_file = open(self.stderr_path, "w")  # noqa: SIM115
        self.port = find_free_port() if transport == "ws" else None
        argv = shlex.split(command.replace("{port}", str(self.port)))
        env = {**os.environ, "CODEX_HOME": str(self.codex_home)}
        self.process = subprocess.Popen(
            argv,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if transport == "stdio" else subprocess.DEVNULL,
            stderr=self.stderr_file,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        self.transport: Transport
        if transport == "stdio":
            self.transport = StdioTransport(self.process)
        else:
            assert self.port is not None
            if not wait_for_port(self.port, self.process, timeout_s=15.0):
                raise RuntimeError(f"server did not accept connections on port {self.port}")
            self.transport = WebSocketTransport(f"ws://127.0.0.1:{self.port}")

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int | None:
        """Close the connection, then SIGTERM (and if needed SIGKILL) our own PID."""
        with contextlib.suppress(Exception):
            self.transport.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=3)
        self.stderr_file.close()
        return self.process.returncode

    def stderr_tail(self) -> str:
        try:
            lines = self.stderr_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-STDERR_TAIL_LINES:])


# --------------------------------------------------------------------------- cases


def load_cases(path: Path) -> list[tuple[str, list[dict]]]:
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    cases = []
    for case_file in files:
        steps = []
        for line_no, line in enumerate(case_file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                step = json.loads(line)
            except json.JSONDecodeError as err:
                raise SystemExit(f"{case_file.name}:{line_no}: invalid step JSON: {err}") from err
            if not isinstance(step, dict) or not STEP_KINDS & step.keys():
                raise SystemExit(
                    f"{case_file.name}:{line_no}: a step needs one of {sorted(STEP_KINDS)}"
                )
            steps.append(step)
        cases.append((case_file.stem, steps))
    return cases


def substitute_placeholders(value: Any, placeholders: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, replacement in placeholders.items():
            value = value.replace(name, replacement)
        return value
    if isinstance(value, list):
        return [substitute_placeholders(item, placeholders) for item in value]
    if isinstance(value, dict):
        return {key: substitute_placeholders(item, placeholders) for key, item in value.items()}
    return value


def id_key(request_id: Any) -> str:
    """A hashable key distinguishing 1 from "1"."""
    return json.dumps(request_id)


def classify(raw: str) -> Received:
    try:
        message = json.loads(raw)
    except json.JSONDecodeError:
        return Received("invalid", None, raw)
    if not isinstance(message, dict):
        return Received("invalid", message, raw)
    if "method" in message and "id" in message:
        return Received("server_request", message, raw)
    if "method" in message:
        return Received("notification", message, raw)
    if "id" in message and ("result" in message or "error" in message):
        return Received("response", message, raw)
    return Received("invalid", message, raw)


class CaseRunner:
    """Drives one server through the steps of one case."""

    def __init__(
        self,
        server: ServerProcess,
        result: RunResult,
        timeout_s: float,
        placeholders: dict[str, str],
    ) -> None:
        self.server = server
        self.result = result
        self.timeout_s = timeout_s
        self.placeholders = placeholders  # grows with values captured by `save`

    def save_values(self, spec: dict, response: dict | None) -> None:
        """Capture result fields named by `"save": {"$NAME": "dotted.path"}` for later steps."""
        for name, dotted_path in spec.get("save", {}).items():
            value: Any = (response or {}).get("result")
            for part in dotted_path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, (str, int, float)):
                self.placeholders[name] = str(value)
                self.result.saved[name] = str(value)

    def pump(self, wait_s: float) -> None:
        """Move messages from the transport into `result.received` for up to wait_s."""
        deadline = time.monotonic() + wait_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                raw = self.server.transport.inbox.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                return
            self.result.received.append(classify(raw))

    def wait_for(self, predicate: Callable[[Received], bool], timeout_s: float) -> Received | None:
        deadline = time.monotonic() + timeout_s
        scanned = 0
        while True:
            for item in self.result.received[scanned:]:
                if not item.consumed and predicate(item):
                    item.consumed = True
                    return item
            scanned = len(self.result.received)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not self.server.is_alive() and self.server.transport.inbox.empty():
                time.sleep(0.1)  # let the reader thread flush the last lines
                if self.server.transport.inbox.empty():
                    return None
            self.pump(min(remaining, 0.05))

    def run_step(self, index: int, step: dict) -> None:
        step = substitute_placeholders(step, self.placeholders)
        if "send" in step:
            message = step["send"]
            if isinstance(message, dict) and "id" in message and "method" in message:
                self.result.request_methods[id_key(message["id"])] = message["method"]
            self.server.transport.send_text(json.dumps(message, ensure_ascii=False))
        elif "send_raw" in step:
            self.server.transport.send_text(step["send_raw"])
        elif "expect" in step:
            spec = step["expect"]
            wanted = id_key(spec["id"])
            found = self.wait_for(
                lambda item: item.kind == "response" and id_key(item.message.get("id")) == wanted,
                float(spec.get("timeout", self.timeout_s)),
            )
            self.result.outcomes.append(
                ExpectOutcome(
                    step_index=index,
                    label=f"response id={wanted}",
                    request_id=spec["id"],
                    method=self.result.request_methods.get(wanted),
                    message=found.message if found else None,
                    spec=spec,
                )
            )
            self.save_values(spec, found.message if found else None)
        elif "expect_notification" in step:
            method = step["expect_notification"]
            found = self.wait_for(
                lambda item: item.kind == "notification" and item.message.get("method") == method,
                self.timeout_s,
            )
            self.result.outcomes.append(
                ExpectOutcome(
                    step_index=index,
                    label=f"notification {method}",
                    method=method,
                    message=found.message if found else None,
                )
            )
        elif "sleep" in step:
            self.pump(float(step["sleep"]))


def run_case(
    name: str, steps: list[dict], command: str, transport: str, timeout_s: float
) -> RunResult:
    """Start a fresh server, run all steps, stop the server and return what was seen."""
    workdir = Path(tempfile.mkdtemp(prefix=f"conformance-{name}-"))
    result = RunResult(literal_uuids=set(UUID_RE.findall(json.dumps(steps))))
    server: ServerProcess | None = None
    try:
        tmp_dir = workdir / "tmp"
        tmp_dir.mkdir()
        server = ServerProcess(command, transport, workdir)
        result.placeholders = {
            "$TMP": str(tmp_dir),
            "$CWD": str(server.cwd),
            "$CODEX_HOME": str(server.codex_home),
        }
        result.port = server.port
        runner = CaseRunner(
            server, result, timeout_s, {"$TMP": str(tmp_dir), "$CWD": str(server.cwd)}
        )
        for index, step in enumerate(steps):
            try:
                runner.run_step(index, step)
            except OSError:  # broken pipe / closed socket: the server went away
                result.crashed = True
                break
            if not server.is_alive():
                runner.pump(0.1)
                result.crashed = True
                break
        runner.pump(TRAILING_DRAIN_S)
        if not server.is_alive():
            result.crashed = True
    except Exception as err:  # server could not be started or connected to
        result.setup_error = f"{type(err).__name__}: {err}"
    finally:
        if server is not None:
            result.exit_code = server.stop()
            result.stderr_tail = server.stderr_tail()
        shutil.rmtree(workdir, ignore_errors=True)
    return result


# --------------------------------------------------------------------------- schema validation


class SchemaRegistry:
    """Validators for the per-type schema files of one protocol version."""

    def __init__(self, schema_dir: Path) -> None:
        self.files = {path.stem: path for path in schema_dir.rglob("*.json")}
        self.validators: dict[str, jsonschema.Draft7Validator] = {}
        self.response_types = self._response_types_by_method()

    def _response_types_by_method(self) -> dict[str, str]:
        client_request = json.loads(self.files["ClientRequest"].read_text())
        mapping = {}
        for variant in client_request["oneOf"]:
            method = variant["properties"]["method"]["enum"][0]
            params_ref = variant["properties"].get("params", {}).get("$ref", "")
            params_type = params_ref.rsplit("/", 1)[-1].removeprefix("Nullable")
            if params_type.endswith("Params"):
                mapping[method] = params_type.removesuffix("Params") + "Response"
        mapping.update(RESPONSE_TYPE_OVERRIDES)
        return mapping

    def validator(self, type_name: str) -> jsonschema.Draft7Validator | None:
        if type_name not in self.files:
            return None
        if type_name not in self.validators:
            schema = json.loads(self.files[type_name].read_text())
            self.validators[type_name] = jsonschema.Draft7Validator(schema)
        return self.validators[type_name]

    def violations(self, type_name: str, instance: Any) -> list[str]:
        validator = self.validator(type_name)
        if validator is None:
            return [f"no schema file for type {type_name}"]
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [
            f"{type_name} at /{'/'.join(map(str, e.absolute_path))}: {short(e.message)}"
            for e in errors[:3]
        ]

    def check_message(self, item: Received, request_methods: dict[str, str]) -> list[str]:
        """Schema violations of one message received from the candidate."""
        if item.kind == "invalid":
            return [f"not a valid protocol message: {short(item.raw)}"]
        message = item.message
        if item.kind == "notification":
            return self.violations("ServerNotification", pick(message, "method", "params"))
        if item.kind == "server_request":
            return self.violations("ServerRequest", pick(message, "id", "method", "params"))
        if "error" in message:
            return self.violations("JSONRPCError", message)
        method = request_methods.get(id_key(message.get("id")))
        if method is None:
            return self.violations("JSONRPCResponse", message)
        response_type = self.response_types.get(method)
        if response_type is None:
            return []  # a method the schema does not know: nothing to validate against
        return self.violations(response_type, message["result"])


def pick(message: dict, *keys: str) -> dict:
    return {key: message[key] for key in keys if key in message}


def short(text: str, limit: int = 200) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------- comparison


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def normalize_key(key: str, placeholders: dict[str, str]) -> str:
    """Map keys that are ids or run-specific paths onto stable names."""
    for name, path in placeholders.items():
        key = key.replace(path, name)
    if UUID_RE.fullmatch(key):
        return "<uuid>"
    if key.startswith("/"):
        return "<path>"
    return key


def structure(
    value: Any, placeholders: dict[str, str], depth: int = STRUCTURE_DEPTH, prefix: str = ""
) -> dict[str, str]:
    """Flatten a JSON value into {key path: JSON type}, descending objects up to `depth` levels."""
    shape = {prefix or "result": json_type(value)}
    if isinstance(value, dict) and depth > 0:
        for key, item in value.items():
            path = (
                f"{prefix}.{normalize_key(key, placeholders)}"
                if prefix
                else normalize_key(key, placeholders)
            )
            shape.update(structure(item, placeholders, depth - 1, path))
    return shape


def normalize_text(text: str, placeholders: dict[str, str]) -> str:
    for name, path in placeholders.items():
        text = text.replace(path, name)
    return UUID_RE.sub("<uuid>", text)


def compare_outcome(
    candidate: ExpectOutcome,
    reference: ExpectOutcome,
    cand_run: RunResult,
    ref_run: RunResult,
    values: bool = False,
) -> tuple[list[str], list[str]]:
    """Differences (failures, warnings) between what candidate and reference answered."""
    label = candidate.label
    cand, ref = candidate.message, reference.message
    if ref is None:
        return [f"{label}: reference did not send it (case or harness problem)"], []
    if cand is None:
        return [f"{label}: not received (timeout or crash)"], []
    if "method" in ref:  # notifications: compare the shape of params
        problems = compare_shapes(label, cand.get("params"), ref.get("params"), cand_run, ref_run)
        if values:
            problems += compare_values(
                label, ref.get("method"), cand.get("params"), ref.get("params"), cand_run, ref_run
            )
        return problems, []
    cand_kind = "error" if "error" in cand else "result"
    ref_kind = "error" if "error" in ref else "result"
    if cand_kind != ref_kind:
        detail = cand.get("error") if cand_kind == "error" else "a result"
        return [
            f"{label}: got {cand_kind} ({short(json.dumps(detail))}), reference returned {ref_kind}"
        ], []
    if cand_kind == "error":
        cand_error, ref_error = cand["error"] or {}, ref["error"] or {}
        if cand_error.get("code") != ref_error.get("code"):
            return [
                f"{label}: error code {cand_error.get('code')} != reference {ref_error.get('code')}"
            ], []
        failures = []
        if values:  # error.data is not compared structurally: here it is compared whole
            failures = compare_values(
                label,
                reference.method,
                cand_error.get("data"),
                ref_error.get("data"),
                cand_run,
                ref_run,
                prefix="error.data",
                structural=False,
            )
        cand_text = normalize_text(str(cand_error.get("message")), cand_run.placeholders)
        ref_text = normalize_text(str(ref_error.get("message")), ref_run.placeholders)
        if cand_text != ref_text:
            return failures, [
                f"{label}: error message differs: {short(cand_text)!r} "
                f"vs reference {short(ref_text)!r}"
            ]
        return failures, []
    problems = compare_shapes(label, cand["result"], ref["result"], cand_run, ref_run)
    if values:
        problems += compare_values(
            label, reference.method, cand["result"], ref["result"], cand_run, ref_run
        )
    return problems, []


def compare_shapes(
    label: str, cand_value: Any, ref_value: Any, cand_run: RunResult, ref_run: RunResult
) -> list[str]:
    cand_shape = structure(cand_value, cand_run.placeholders)
    ref_shape = structure(ref_value, ref_run.placeholders)
    problems = []
    missing = sorted(set(ref_shape) - set(cand_shape))
    extra = sorted(set(cand_shape) - set(ref_shape))
    if missing:
        problems.append(f"{label}: missing keys {missing}")
    if extra:
        problems.append(f"{label}: unexpected keys {extra}")
    for path in sorted(set(cand_shape) & set(ref_shape)):
        if cand_shape[path] != ref_shape[path]:
            problems.append(
                f"{label}: {path} is {cand_shape[path]}, reference has {ref_shape[path]}"
            )
    return problems


class ValueMasker:
    """Masks what one server sent before --values compares it.

    First its own paths and port, then VALUE_MASKS.
    """

    masks = [
        (re.compile(key), re.compile(value) if isinstance(value, str) else value, mask)
        for key, value, mask in VALUE_MASKS
    ]

    def __init__(self, run: RunResult) -> None:
        paths = dict(run.placeholders)
        if "$CWD" in paths:
            paths["$WORKDIR"] = str(Path(paths["$CWD"]).parent)
        pairs = set()
        for name, path in paths.items():
            pairs.add((path, name))
            pairs.add((os.path.realpath(path), name))
        self.paths = sorted(pairs, key=lambda pair: -len(pair[0]))  # longest first: $WORKDIR last
        self.port_re = re.compile(rf":{run.port}(?!\d)") if run.port else None
        self.saved_names: dict[str, str] = {}  # saved UUID -> the first $NAME that captured it
        for name, value in run.saved.items():
            if UUID_RE.fullmatch(value):
                self.saved_names.setdefault(value, name)
        self.literal_uuids = run.literal_uuids

    def mask(self, value: Any, key: str = "") -> Any:
        """Mask one leaf value (or an object key, with key "")."""
        if isinstance(value, str):
            for path, name in self.paths:
                value = value.replace(path, name)
            if self.port_re is not None:
                value = self.port_re.sub(":<port>", value)
        for key_re, matcher, mask in self.masks:
            if not key_re.fullmatch(key):
                continue
            if isinstance(matcher, re.Pattern):
                if isinstance(value, str):
                    value = matcher.sub(
                        lambda m, mask=mask: (
                            mask(m.group(0), self) if callable(mask) else m.expand(mask)
                        ),
                        value,
                    )
            elif matcher(value):
                value = mask
        return value

    def mask_all(self, value: Any, key: str = "") -> Any:
        """Mask a whole JSON value: leaves and object keys."""
        if isinstance(value, dict):
            return {self.mask(k): self.mask_all(item, k) for k, item in value.items()}
        if isinstance(value, list):
            return [self.mask_all(item, key) for item in value]
        return self.mask(value, key)


def show(value: Any) -> str:
    return short(json.dumps(value, ensure_ascii=False, sort_keys=True), VALUE_SHOW_LIMIT)


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class ValueComparer:
    """Walks candidate and reference values side by side; collects value differences (--values).

    Missing keys and type differences that the structural comparison already reports (object
    keys up to STRUCTURE_DEPTH, outside arrays) are left to it; everything deeper or inside
    arrays is reported here.
    """

    def __init__(
        self, label: str, method: str, cand_run: RunResult, ref_run: RunResult, structural: bool
    ) -> None:
        self.label = label
        self.method = method
        self.cand_run, self.ref_run = cand_run, ref_run
        self.cand_mask, self.ref_mask = ValueMasker(cand_run), ValueMasker(ref_run)
        self.structural = structural
        self.problems: list[str] = []

    def report(self, path: str, text: str) -> None:
        self.problems.append(f"{self.label}: {path or 'result'} {text}")

    def covered(self, level: int, in_array: bool) -> bool:
        """Whether compare_shapes looks at this path (object keys only, up to STRUCTURE_DEPTH)."""
        return self.structural and not in_array and level <= STRUCTURE_DEPTH

    def walk(
        self, cand: Any, ref: Any, key: str, path: str, generic: str, level: int, in_array: bool
    ) -> None:
        if json_type(cand) != json_type(ref):
            if not self.covered(level, in_array):
                cand_shown, ref_shown = (
                    show(self.cand_mask.mask_all(cand, key)),
                    show(self.ref_mask.mask_all(ref, key)),
                )
                self.report(
                    path,
                    f"is {json_type(cand)} {cand_shown}, "
                    f"reference has {json_type(ref)} {ref_shown}",
                )
        elif isinstance(ref, dict):
            self.walk_object(cand, ref, path, generic, level, in_array)
        elif isinstance(ref, list):
            self.walk_array(cand, ref, key, path, generic, level)
        else:
            cand_value, ref_value = self.cand_mask.mask(cand, key), self.ref_mask.mask(ref, key)
            if cand_value != ref_value:
                self.report(path, f"= {show(cand_value)}, reference has {show(ref_value)}")

    def masked_keys(self, value: dict, masker: ValueMasker) -> dict[str, str]:
        keys: dict[str, str] = {}
        for key in value:
            masked = masker.mask(key)
            while masked in keys:  # two ids masked alike: keep both, in order
                masked += "'"
            keys[masked] = key
        return keys

    def walk_object(
        self, cand: dict, ref: dict, path: str, generic: str, level: int, in_array: bool
    ) -> None:
        cand_keys, ref_keys = (
            self.masked_keys(cand, self.cand_mask),
            self.masked_keys(ref, self.ref_mask),
        )
        shown = self.covered(
            level + 1, in_array
        )  # compare_shapes already reports keys it tells apart
        cand_shape = {normalize_key(key, self.cand_run.placeholders) for key in cand}
        ref_shape = {normalize_key(key, self.ref_run.placeholders) for key in ref}
        missing = {
            masked: self.ref_mask.mask_all(ref[key], key)
            for masked, key in ref_keys.items()
            if masked not in cand_keys
            and not (shown and normalize_key(key, self.ref_run.placeholders) not in cand_shape)
        }
        unexpected = {
            masked: self.cand_mask.mask_all(cand[key], key)
            for masked, key in cand_keys.items()
            if masked not in ref_keys
            and not (shown and normalize_key(key, self.cand_run.placeholders) not in ref_shape)
        }
        if missing:
            self.report(path, f"lacks keys {list(missing)}, reference has {show(missing)}")
        if unexpected:
            self.report(path, f"has unexpected keys {list(unexpected)}: {show(unexpected)}")
        for masked, key in ref_keys.items():
            if masked in cand_keys:
                self.walk(
                    cand[cand_keys[masked]],
                    ref[key],
                    key,
                    join_path(path, masked),
                    join_path(generic, key),
                    level + 1,
                    in_array,
                )

    def identities(self, items: list, name: str, masker: ValueMasker) -> dict[str, Any] | None:
        """{masked element key: element} when each element has a unique scalar `name`, else None."""
        by_identity = {}
        for item in items:
            if not isinstance(item, dict) or json_type(item.get(name)) not in ("string", "number"):
                return None
            by_identity[json.dumps(masker.mask(item[name], name), ensure_ascii=False)] = item
        return by_identity if len(by_identity) == len(items) else None

    def walk_array(
        self, cand: list, ref: list, key: str, path: str, generic: str, level: int
    ) -> None:
        matched = None
        for name in UNORDERED_ARRAYS.get((self.method, generic), ()):
            cand_by, ref_by = (
                self.identities(cand, name, self.cand_mask),
                self.identities(ref, name, self.ref_mask),
            )
            if cand_by is not None and ref_by is not None:
                matched = (name, cand_by, ref_by)
                break
        if matched is not None:  # unordered: match elements up by their key
            name, cand_by, ref_by = matched
            missing = [ident for ident in ref_by if ident not in cand_by]
            unexpected = [ident for ident in cand_by if ident not in ref_by]
            if missing:
                self.report(path, f"lacks the reference's items with {name} {', '.join(missing)}")
            if unexpected:
                self.report(path, f"has unexpected items with {name} {', '.join(unexpected)}")
            for ident, item in ref_by.items():
                if ident in cand_by:
                    self.walk(
                        cand_by[ident],
                        item,
                        key,
                        f"{path}[{name}={ident}]",
                        f"{generic}[]",
                        level,
                        True,
                    )
        elif len(cand) != len(ref):
            cand_items = Counter(show(self.cand_mask.mask_all(item, key)) for item in cand)
            ref_items = Counter(show(self.ref_mask.mask_all(item, key)) for item in ref)
            details = []
            if ref_items - cand_items:
                details.append(f"missing {', '.join(list(ref_items - cand_items)[:2])}")
            if cand_items - ref_items:
                details.append(f"unexpected {', '.join(list(cand_items - ref_items)[:2])}")
            suffix = f" ({'; '.join(details)})" if details else ""
            self.report(path, f"has {len(cand)} items, reference has {len(ref)}{suffix}")
        else:
            for index, (cand_item, ref_item) in enumerate(zip(cand, ref, strict=True)):
                self.walk(cand_item, ref_item, key, f"{path}[{index}]", f"{generic}[]", level, True)


def compare_values(
    label: str,
    method: str | None,
    cand_value: Any,
    ref_value: Any,
    cand_run: RunResult,
    ref_run: RunResult,
    prefix: str = "",
    structural: bool = True,
) -> list[str]:
    """--values: differences of masked leaf values and array contents (failures)."""
    comparer = ValueComparer(label, method or "", cand_run, ref_run, structural)
    comparer.walk(cand_value, ref_value, "", prefix, "", 0, False)
    return comparer.problems


def check_assertions(outcome: ExpectOutcome) -> list[str]:
    """Explicit `error_code` / `result_keys` assertions written in the case file."""
    spec, message = outcome.spec, outcome.message
    if not spec or ("error_code" not in spec and "result_keys" not in spec):
        return []
    if message is None:
        return [f"{outcome.label}: not received (timeout or crash)"]
    problems = []
    if "error_code" in spec:
        code = (message.get("error") or {}).get("code") if "error" in message else None
        if code != spec["error_code"]:
            got = "result" if code is None else code
            problems.append(f"{outcome.label}: expected error code {spec['error_code']}, got {got}")
    if "result_keys" in spec:
        result = message.get("result")
        if not isinstance(result, dict):
            problems.append(
                f"{outcome.label}: expected a result object with keys {spec['result_keys']}"
            )
        else:
            missing = [key for key in spec["result_keys"] if key not in result]
            if missing:
                problems.append(f"{outcome.label}: result lacks keys {missing}")
    return problems


def unsolicited_responses(run: RunResult) -> list[Received]:
    return [item for item in run.received if item.kind == "response" and not item.consumed]


# --------------------------------------------------------------------------- reporting


def evaluate_case(
    name: str,
    candidate: RunResult,
    reference: RunResult | None,
    schemas: SchemaRegistry,
    values: bool = False,
) -> CaseReport:
    report = CaseReport(name=name)
    if candidate.setup_error:
        report.failures.append(f"candidate could not be started: {candidate.setup_error}")
    if candidate.crashed:
        report.failures.append(
            f"candidate exited during the case (exit code {candidate.exit_code})"
        )
        report.stderr_tail = candidate.stderr_tail
    if reference is not None and (reference.setup_error or reference.crashed):
        report.failures.append(
            f"reference failed: {reference.setup_error or f'exited with {reference.exit_code}'}"
        )

    for item in candidate.received:
        for violation in schemas.check_message(item, candidate.request_methods):
            report.failures.append(f"schema: {violation}")
        if item.kind == "server_request":
            report.server_requests.append(item.message)
            method, request_id = item.message.get("method"), item.message.get("id")
            report.warnings.append(f"unexpected server request {method!r} (id={request_id})")

    for outcome in candidate.outcomes:
        report.failures.extend(check_assertions(outcome))

    if reference is None:
        for outcome in candidate.outcomes:
            if (
                outcome.message is None
                and not outcome.spec.get("error_code")
                and not outcome.spec.get("result_keys")
            ):
                report.failures.append(f"{outcome.label}: not received (timeout or crash)")
        for item in unsolicited_responses(candidate):
            report.warnings.append(f"unsolicited response: {short(item.raw)}")
    else:
        ref_by_step = {outcome.step_index: outcome for outcome in reference.outcomes}
        for outcome in candidate.outcomes:
            ref_outcome = ref_by_step.get(outcome.step_index)
            if ref_outcome is None:
                report.failures.append(f"{outcome.label}: reference run stopped before this step")
                continue
            failures, warnings = compare_outcome(outcome, ref_outcome, candidate, reference, values)
            report.failures.extend(failures)
            report.warnings.extend(warnings)
        ref_unsolicited = {
            id_key(item.message.get("id")) for item in unsolicited_responses(reference)
        }
        for item in unsolicited_responses(candidate):
            if id_key(item.message.get("id")) not in ref_unsolicited:
                report.failures.append(
                    f"unsolicited response the reference does not send: {short(item.raw)}"
                )

    report.failures = list(dict.fromkeys(report.failures))
    report.status = "FAIL" if report.failures else "PASS"
    return report


def print_report(report: CaseReport) -> None:
    print(f"{report.status}  {report.name}")
    for failure in report.failures:
        print(f"    - {failure}")
    for warning in report.warnings:
        print(f"    ~ warning: {warning}")
    if report.stderr_tail:
        print("    stderr tail:")
        for line in report.stderr_tail.splitlines():
            print(f"      | {line}")


# --------------------------------------------------------------------------- CLI


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cases", required=True, type=Path, help="a .jsonl case file or a directory of them"
    )
    parser.add_argument(
        "--server",
        default=shlex.join([sys.executable, "-m", "codex_core"]),
        help="candidate server command (ws: may contain {port}); default: this Python's codex_core",
    )
    parser.add_argument("--transport", choices=["stdio", "ws"], default="stdio")
    parser.add_argument(
        "--reference",
        default=None,
        help="reference command, or 'none'; default: the pinned official server "
        "(codex_core.testing.reference)",
    )
    parser.add_argument(
        "--schema", type=Path, default=DEFAULT_SCHEMA_DIR, help="directory of JSON schema files"
    )
    parser.add_argument("--json", type=Path, help="write machine-readable results here")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per expect step"
    )
    parser.add_argument(
        "--values",
        action="store_true",
        help="also compare leaf values and array contents, after VALUE_MASKS "
        "(differences are failures)",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.reference is None:
        from codex_core.testing.reference import reference_server_command

        found = reference_server_command()
        if found is None:
            print("the official server is not installed: python -m codex_core.testing.reference")
            return 2
        args.reference = shlex.join(found)
    schemas = SchemaRegistry(args.schema)
    cases = load_cases(args.cases)
    candidate_command = command_for_transport(args.server, args.transport)
    reference_command = (
        None if args.reference == "none" else command_for_transport(args.reference, args.transport)
    )

    reports = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for name, steps in cases:
            candidate_future = pool.submit(
                run_case, name, steps, candidate_command, args.transport, args.timeout
            )
            reference_future = (
                pool.submit(run_case, name, steps, reference_command, args.transport, args.timeout)
                if reference_command
                else None
            )
            candidate = candidate_future.result()
            reference = reference_future.result() if reference_future else None
            report = evaluate_case(name, candidate, reference, schemas, args.values)
            print_report(report)
            reports.append(report)

    passed = sum(report.status == "PASS" for report in reports)
    print(f"\n{passed}/{len(reports)} cases passed")
    if args.json:
        summary = {"passed": passed, "failed": len(reports) - passed, "total": len(reports)}
        args.json.write_text(
            json.dumps({"summary": summary, "cases": [asdict(r) for r in reports]}, indent=2)
        )
    return 0 if passed == len(reports) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
