"""One scripted JSON-RPC session over stdio with any app-server command: ours or the reference.

Differential tests run the same requests against both servers, each in its own CODEX_HOME, and
compare the answers::

    from codex_core.cli import server_command
    from codex_core.testing.reference import reference_server_command
    from codex_core.testing.session import run_session

    requests = [("account/usage/read", None), ("windowsSandbox/readiness", None)]
    ours = run_session(server_command(), home_a, requests, env=codex_env)
    theirs = run_session(reference_server_command(), home_b, requests)
    assert ours.results == theirs.results

Requests are sent one at a time, each after the previous one was answered, so the order in
which a stand-in service sees them is the order of the list. Only the standard library is used.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Session", "run_session"]

#: ``params`` that leaves the member out of the request, for methods without params.
NO_PARAMS: Any = ...


@dataclass
class Session:
    """What a session produced: each request's response (``result`` or ``error``, id removed),
    in request order, and every notification with ``emittedAtMs`` removed."""

    responses: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)

    @property
    def results(self) -> list[Any]:
        """Each response's ``result``, or ``{"error": ...}`` for an error reply."""
        return [
            response["result"] if "result" in response else {"error": response.get("error")}
            for response in self.responses
        ]


def run_session(
    command: Sequence[str],
    codex_home: Path,
    requests: Iterable[tuple[str, Any]],
    *,
    env: Mapping[str, str] | None = None,
    experimental_api: bool = True,
    wait_for: Sequence[str] = (),
    timeout: float = 20.0,
) -> Session:
    """Run ``command`` on ``codex_home``: ``initialize``, then ``requests`` (``(method,
    params)``, ``NO_PARAMS`` to send none), then wait until every notification method in
    ``wait_for`` has arrived. A missing answer fails with ``TimeoutError``."""
    process = subprocess.Popen(
        list(command),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {}), "CODEX_HOME": str(codex_home)},
    )
    assert process.stdin is not None and process.stdout is not None
    lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
    stdout = process.stdout

    def read() -> None:
        for raw in stdout:
            lines.put(json.loads(raw))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    session = Session()

    def send(message: dict[str, Any]) -> None:
        assert process.stdin is not None
        process.stdin.write((json.dumps(message) + "\n").encode())
        process.stdin.flush()

    def next_message() -> dict[str, Any]:
        try:
            message = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"no answer from {command[0]} within {timeout}s") from None
        if message is None:
            raise TimeoutError(f"{command[0]} exited")
        if "method" in message and "id" not in message:
            message.pop("emittedAtMs", None)
            session.notifications.append(message)
        return message

    def answer(request_id: int) -> dict[str, Any]:
        while True:
            message = next_message()
            if message.get("id") == request_id and "method" not in message:
                return message

    try:
        capabilities = {"experimentalApi": experimental_api}
        client = {"name": "codex-core-tests", "title": None, "version": "1"}
        params = {"clientInfo": client, "capabilities": capabilities}
        send({"id": 0, "method": "initialize", "params": params})
        answer(0)
        send({"method": "initialized"})
        for number, (method, params) in enumerate(requests, 1):
            request: dict[str, Any] = {"id": number, "method": method}
            if params is not NO_PARAMS:
                request["params"] = params
            send(request)
            response = answer(number)
            session.responses.append({k: v for k, v in response.items() if k != "id"})
        wanted = Counter(wait_for)
        while wanted - Counter(n["method"] for n in session.notifications):
            next_message()
    finally:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return session
