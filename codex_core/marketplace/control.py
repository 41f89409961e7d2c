"""How running servers hear of plugins installed or removed by another process.

A ``codex-app-server plugin install`` changes the Python environment, not the servers already
running from it. Rather than have every server watch its site-packages (a polling cost at idle,
or an OS watcher per server), the process that changed the environment tells them: each kernel
listens on a unix socket of its own in a private folder, and after an install, upgrade or
uninstall the CLI (or a server that installed over the protocol) connects to every socket of the
same environment and sends ``reload``. The server reloads its plugins
(``Kernel.reload_plugins``, which sends ``codexCore/plugins/changed`` to the clients that opted
in) and answers with that result as one JSON line.

- The folder is ``$XDG_RUNTIME_DIR/codex-core`` (else ``<tmp>/codex-core-<uid>``), mode 0700 and
  owned by the user, so only the user's own processes can reach a server through it.
- A socket is ``<environment>-<pid>-<n>.sock``; ``<environment>`` hashes ``sys.prefix``, since
  installs land in one environment and only the servers running from it can load them.
- A socket whose server is gone (killed before it could remove it) refuses the connection and
  is deleted by whoever finds it.
- An idle server only has a listening socket blocked in ``accept``: no polling. Startup pays
  one ``mkdir`` and one ``bind``. Where unix sockets do not exist (Windows), nothing listens,
  and a running server sees CLI installs at its next protocol install or restart.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import socket
import stat
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anyio.abc import SocketStream

    from codex_core.kernel import Kernel

log = logging.getLogger(__name__)

#: Where each kernel's socket path is published (``kernel.services``), so the kernel that
#: installed over the protocol skips itself when telling the others.
SERVICE = "marketplace.control"
_COUNTER = itertools.count()
_TIMEOUT = 60.0


def _supported() -> bool:
    """Unix sockets, and users to keep the folder private to (not Windows)."""
    return hasattr(socket, "AF_UNIX") and hasattr(os, "getuid")


def folder() -> Path:
    """The private folder of the user's sockets (created, and checked to be private)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(runtime) / "codex-core" if runtime else Path(tempfile.gettempdir())
    if not runtime:
        path = path / f"codex-core-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise PermissionError(f"{path} is not private to this user (owner or mode): remove it")
    return path


def environment() -> str:
    """This Python environment, as the prefix of its servers' socket names."""
    return hashlib.sha256(os.path.realpath(sys.prefix).encode()).hexdigest()[:16]


async def serve(kernel: Kernel) -> None:
    """Answer ``reload`` on this kernel's socket until the kernel stops."""
    import anyio

    if not _supported():
        return
    try:
        path = folder() / f"{environment()}-{os.getpid()}-{next(_COUNTER)}.sock"
        path.unlink(missing_ok=True)
        listener = await anyio.create_unix_listener(path, mode=0o600)
    except OSError as exc:
        log.warning("plugin installs by other processes will not reach this server: %s", exc)
        return
    kernel.services[SERVICE] = path

    async def answer(stream: SocketStream) -> None:
        async with stream:
            request = await stream.receive(64)
            if request.strip() != b"reload":
                return
            result = kernel.reload_plugins()
            await stream.send(json.dumps(result).encode() + b"\n")

    try:
        async with listener:
            await listener.serve(answer)
    finally:
        path.unlink(missing_ok=True)


def reload_servers(*, skip: Path | None = None) -> list[dict[str, Any]]:
    """Ask every running server of this environment to reload its plugins; their answers.

    Blocking (the CLI calls it directly, a server from a worker thread).
    """
    if not _supported():
        return []
    try:
        sockets = sorted(folder().glob(f"{environment()}-*.sock"))
    except OSError as exc:
        log.warning("cannot reach running servers: %s", exc)
        return []
    answers = []
    for path in sockets:
        if path == skip:
            continue
        try:
            answers.append(_reload(path))
        except (ConnectionRefusedError, FileNotFoundError):
            path.unlink(missing_ok=True)  # its server is gone
        except (OSError, ValueError) as exc:
            log.warning("server at %s did not reload: %s", path, exc)
    return answers


def _reload(path: Path) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(_TIMEOUT)
        connection.connect(str(path))
        connection.sendall(b"reload\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = connection.recv(65536)
            if not chunk:
                raise ValueError("the server closed the connection without an answer")
            reply += chunk
    answer: dict[str, Any] = json.loads(reply)
    return answer
