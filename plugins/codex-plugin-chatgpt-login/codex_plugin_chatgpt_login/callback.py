"""Where the browser comes back to: ``127.0.0.1:PORT``, bound as the official login server does.

Binding follows the official server: a busy port is asked to ``/cancel`` (an older login
server, perhaps another process's), retried for two seconds, and the default port 1455 falls
back to 1457, the other port the issuer accepts in redirect URIs. Serving is the kernel's
shared loopback callback server (``codex_core.loopback_callback``): one request per
connection, until the reply marked ``final``.
"""

from __future__ import annotations

import errno
import logging

import anyio
import anyio.abc

from codex_core.loopback_callback import Handler, Listener, Reply, serve

__all__ = ["DEFAULT_PORT", "Handler", "Listener", "Reply", "bind", "port_of", "serve"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 1455
FALLBACK_PORT = 1457
BIND_ATTEMPTS = 10
BIND_RETRY_SECONDS = 0.2


async def bind(port: int) -> Listener:
    """Listen on ``127.0.0.1:port`` (0: any free port); raises ``OSError`` when it cannot."""
    candidates = (port, FALLBACK_PORT) if port == DEFAULT_PORT else (port,)
    for candidate in candidates:
        for attempt in range(BIND_ATTEMPTS):
            try:
                return await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=candidate)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
            if attempt == 0 and candidate == port:
                await _ask_to_cancel(candidate)
            await anyio.sleep(BIND_RETRY_SECONDS)
        log.warning("login callback port %d is in use", candidate)
    raise OSError(errno.EADDRINUSE, f"Port 127.0.0.1:{candidates[-1]} is already in use")


async def _ask_to_cancel(port: int) -> None:
    import httpx

    try:
        async with httpx.AsyncClient(timeout=2.0) as http:
            await http.get(f"http://127.0.0.1:{port}/cancel")
    except httpx.HTTPError as exc:
        log.info("failed to cancel the previous login server: %s", exc)


def port_of(listener: Listener) -> int:
    return int(listener.extra(anyio.abc.SocketAttribute.local_port))
