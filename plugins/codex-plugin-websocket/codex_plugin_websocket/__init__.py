"""codex-plugin-websocket: ``--listen ws://IP:PORT`` and ``--listen unix://[PATH]``.

Adds the two transports and the official server's ``--ws-*`` authentication flags to
``codex-app-server``. See the README for usage.
"""

from __future__ import annotations

import argparse

from codex_core.hookspecs import hookimpl
from codex_plugin_websocket.auth import MODES
from codex_plugin_websocket.transport import UnixTransport, WebSocketTransport

__all__ = ["UnixTransport", "WebSocketTransport"]


@hookimpl
def codex_transports() -> list[object]:
    return [WebSocketTransport(), UnixTransport()]


def _seconds(value: str) -> int:
    try:
        seconds = int(value)
    except ValueError:
        seconds = -1
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"invalid value {value!r}: expected whole seconds >= 0")
    return seconds


@hookimpl
def codex_cli_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "websocket authentication (codex-plugin-websocket; accepted and unused with stdio)"
    )
    group.add_argument(
        "--ws-auth",
        choices=MODES,
        metavar="MODE",
        help="authentication for websocket clients: capability-token or signed-bearer-token",
    )
    group.add_argument("--ws-token-file", metavar="PATH", help="file holding the capability token")
    group.add_argument(
        "--ws-token-sha256", metavar="HEX", help="hex SHA-256 digest of the capability token"
    )
    group.add_argument(
        "--ws-shared-secret-file",
        metavar="PATH",
        help="file holding the HS256 secret of signed bearer tokens (at least 32 bytes)",
    )
    group.add_argument("--ws-issuer", metavar="ISSUER", help="expected `iss` of signed tokens")
    group.add_argument("--ws-audience", metavar="AUDIENCE", help="expected `aud` of signed tokens")
    group.add_argument(
        "--ws-max-clock-skew-seconds",
        type=_seconds,
        metavar="SECONDS",
        help="clock skew tolerated on `exp` and `nbf` of signed tokens (default 30)",
    )
