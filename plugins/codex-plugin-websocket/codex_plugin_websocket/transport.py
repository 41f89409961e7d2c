"""The ``ws://IP:PORT`` and ``unix://PATH`` transports: one JSON-RPC message per text frame.

Each websocket connection is its own kernel ``Connection`` (own ``initialize``, own ids).
Binary frames are ignored without a word, as the official server does; the server sends text
frames only, never offers permessage-deflate and never echoes
``x-codex-app-server-compression`` (an echo would switch official clients to zstd framing).

The ``websockets`` library is imported when a listener starts: a server on stdio, the usual
case, never loads it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import socket
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_plugin_websocket.auth import AuthPolicy

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection
    from websockets.http11 import Request, Response

    from codex_core.kernel import Kernel

log = logging.getLogger(__name__)

#: A message or a frame this large or larger ends the connection, as in the reference
#: (its websocket library's limits; it resets the connection, we close with 1009).
MAX_MESSAGE = 64 * 1024 * 1024
MAX_FRAME = 16 * 1024 * 1024
#: What the reference advertises on its control socket's 101 response.
UNIX_MAX_UNFRAGMENTED = 16 * 1024 * 1024
#: How long closing a connection may wait for the client's close frame.
CLOSE_TIMEOUT = 2.0

_WS_URL = re.compile(r"ws://(?:\[(?P<v6>[^\]]+)\]|(?P<v4>[^:/\[\]]+)):(?P<port>\d{1,5})")


def parse_ws_url(url: str) -> tuple[str, int]:
    """``ws://IP:PORT`` -> (ip, port); an IP is required, as the reference requires it."""
    match = _WS_URL.fullmatch(url)
    host = match and (match.group("v6") or match.group("v4"))
    try:
        if not match or not host or int(match.group("port")) > 65535:
            raise ValueError
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"invalid websocket --listen URL `{url}`; expected `ws://IP:PORT`"
        ) from None
    return host, int(match.group("port"))


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host``, by the reference's rule.

    IPv4 ``127.0.0.0/8`` and IPv6 ``::1`` only: an IPv4-mapped address (``::ffff:127.0.0.1``)
    counts as non-loopback there, whatever this Python's ``ipaddress`` says about it.
    """
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv6Address):
        return address == ipaddress.IPv6Address("::1")
    return address.is_loopback


def _display(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _serve_options(kernel: Kernel) -> dict[str, Any]:
    from codex_plugin_websocket.channel import metered

    return {
        "compression": None,  # the reference offers no permessage-deflate
        "server_header": None,
        # websockets refuses what is larger than these; the reference what is as large
        "max_size": (MAX_MESSAGE - 1, MAX_FRAME - 1),
        "create_connection": metered(kernel.inbound),
        "ping_interval": None,  # the reference sends no keepalive pings
        "close_timeout": CLOSE_TIMEOUT,
    }


async def _run_until_stopping(server: Any, kernel: Kernel) -> None:
    """Serve until the kernel begins shutting down, then stop accepting and wait for sessions."""
    await kernel.wait_stopping()
    server.close(close_connections=False)  # the kernel drains and closes each session
    await server.wait_closed()


class WebSocketTransport:
    scheme = "ws"

    async def serve(self, url: str, kernel: Kernel) -> None:
        from websockets.asyncio.server import serve

        from codex_plugin_websocket.channel import WebSocketChannel
        from codex_plugin_websocket.http import request_checker

        host, port = parse_ws_url(url)
        policy = AuthPolicy.from_options(kernel.cli_options)
        loopback = is_loopback(host)
        # Checked before binding, as the reference does: an unauthenticated listener other
        # machines can reach hands whoever finds the port control of the agent.
        if not loopback and policy.mode is None:
            raise ValueError(
                f"refusing to start non-loopback websocket listener {_display(host, port)} "
                "without auth; configure `--ws-auth capability-token` or "
                "`--ws-auth signed-bearer-token`"
            )

        async def handler(websocket: ServerConnection) -> None:
            address = websocket.remote_address
            peer = _display(str(address[0]), int(address[1])) if address else "websocket"
            await kernel.serve_channel(WebSocketChannel(websocket, peer, kernel))

        async with serve(
            handler, host, port, process_request=request_checker(policy), **_serve_options(kernel)
        ) as server:
            bound = server.sockets[0].getsockname()
            address = _display(host, int(bound[1]))
            if loopback:
                note = "binds localhost only (use SSH port-forwarding for remote access)"
            else:
                note = "websocket auth is required for non-localhost listeners"
            print(
                "codex app-server (WebSockets)\n"
                f"  listening on: ws://{address}\n"
                f"  readyz: http://{address}/readyz\n"
                f"  healthz: http://{address}/healthz\n"
                f"  note: {note}",
                file=sys.stderr,
                flush=True,
            )
            log.info("websocket listener on %s (auth: %s)", address, policy.mode or "none")
            await _run_until_stopping(server, kernel)


def unix_socket_path(url: str, kernel: Kernel) -> Path:
    """``unix://`` -> the default control socket under CODEX_HOME; ``unix://PATH`` -> PATH."""
    raw = url.removeprefix("unix://")
    if not raw:
        return kernel.codex_home / "app-server-control" / "app-server-control.sock"
    return Path(raw).expanduser().absolute()


def _prepare_socket_path(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ValueError(f"app-server control socket path exists and is not a socket: {path}")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except ConnectionRefusedError:
        path.unlink()  # a stale socket left by a server that died
        return
    except OSError:
        return
    finally:
        probe.close()
    raise ValueError(f"app-server control socket is already in use at {path}")


def _advertise_limit(_connection: object, _request: Request, response: Response) -> None:
    if response.status_code == 101:
        response.headers["x-codex-websocket-max-unfragmented-message-bytes"] = str(
            UNIX_MAX_UNFRAGMENTED
        )


class UnixTransport:
    """The control socket: a websocket over a Unix socket, private to the user (no HTTP probes,
    no auth: the socket's permissions are the access control, as in the reference)."""

    scheme = "unix"

    async def serve(self, url: str, kernel: Kernel) -> None:
        from websockets.asyncio.server import unix_serve

        from codex_plugin_websocket.channel import WebSocketChannel

        path = unix_socket_path(url, kernel)
        _prepare_socket_path(path)

        async def handler(websocket: ServerConnection) -> None:
            await kernel.serve_channel(WebSocketChannel(websocket, "unix", kernel))

        try:
            async with unix_serve(
                handler, str(path), process_response=_advertise_limit, **_serve_options(kernel)
            ) as server:
                os.chmod(path, 0o600)
                log.info("control socket listening at %s", path)
                await _run_until_stopping(server, kernel)
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
