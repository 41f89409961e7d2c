"""Helpers for the websocket tests; the servers come from codex-core's test kit.

The kit (``codex_core.testing.pytest_plugin``) provides ``codex_ws_server_factory`` /
``codex_ws_server`` (``codex-app-server --listen ws://127.0.0.1:0`` subprocesses),
``codex_env``, ``codex_cli`` and ``codex_plugin_site``; what is here speaks the wire protocol
over a raw ``websockets`` connection, which these tests need to check framing byte by byte.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection

from codex_core.testing.pytest_plugin import WsServer, write_distribution

__all__ = ["WsServer", "initialize", "request", "response_to"]


def request(ws: ClientConnection, request_id: Any, method: str, params: Any = None) -> Any:
    """Send a request and return its response, skipping notifications."""
    message: dict[str, Any] = {"id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    ws.send(json.dumps(message))
    return response_to(ws, request_id)


def response_to(ws: ClientConnection, request_id: Any, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.0, deadline - time.monotonic())))
        if message.get("id") == request_id and "method" not in message:
            return dict(message)


def initialize(ws: ClientConnection, request_id: Any = 0, name: str = "pytest") -> Any:
    params = {"clientInfo": {"name": name, "title": None, "version": "1.0"}}
    reply = request(ws, request_id, "initialize", params)
    assert "result" in reply, reply
    ws.send(json.dumps({"method": "initialized"}))
    return reply["result"]


SLOW_PLUGIN = """
import anyio
from codex_core.hookspecs import hookimpl
from codex_core.rpc import RpcMethod


async def sleep(ctx, params):
    await anyio.sleep(params["seconds"])
    return {"slept": params["seconds"]}


async def echo(ctx, params):
    return params


@hookimpl
def codex_rpc_methods():
    return [RpcMethod("wsprobe/sleep", sleep), RpcMethod("wsprobe/echo", echo)]
"""


@pytest.fixture
def probe_plugin(codex_plugin_site: Path) -> None:
    """``wsprobe/sleep`` and ``wsprobe/echo``, installed as a real distribution."""
    write_distribution(codex_plugin_site, "codex-ws-probe", SLOW_PLUGIN, entry_point="wsprobe")
