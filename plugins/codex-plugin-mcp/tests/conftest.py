"""Shared fixtures of the plugin's tests: loopback servers (the SDK-written MCP and OAuth
servers of this folder, each a subprocess on a free 127.0.0.1 port) and the official schema."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import codex_core.protocol

SCHEMA = Path(codex_core.protocol.__file__).with_name("schema") / "stable"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def start_loopback() -> Iterator[Callable[..., int]]:
    """``start(script, *args, env={...})`` runs ``python script *args PORT`` and returns the
    port once it accepts connections; the servers are stopped when the test ends."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(script: Path, *args: str, env: dict[str, str] | None = None) -> int:
        port = free_port()
        command = [sys.executable, str(script), *args, str(port)]
        processes.append(subprocess.Popen(command, env={**os.environ, **(env or {})}))
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return port
            except OSError:
                assert time.monotonic() < deadline, f"{script.name} did not start"
                time.sleep(0.1)

    yield start
    for process in processes:
        process.terminate()
        process.wait(10)


@pytest.fixture
def assert_schema() -> Callable[[str, Any], None]:
    """``assert_schema(name, instance)``: ``instance`` is valid for the official schema's
    ``name`` (``McpServerOauthLoginResponse``, ...)."""

    def check(name: str, instance: Any) -> None:
        (path,) = SCHEMA.rglob(f"{name}.json")
        schema = json.loads(path.read_text())
        jsonschema.Draft7Validator(schema).validate(instance)

    return check
