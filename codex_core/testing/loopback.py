"""A loopback HTTP server standing in for a remote service: an OAuth issuer, a usage API, a
catalog host.

The test keeps only its routes, as one function from request to reply; the server does the
rest (a free port on ``127.0.0.1``, a background thread, JSON encoding, content-length, the
record of every request)::

    from codex_core.testing import LoopbackRequest, LoopbackServer, Reply

    def token_endpoint(request: LoopbackRequest) -> Reply:
        if request.path != "/oauth/token":
            return Reply(404, {"error": "not_found"})
        return Reply(200, {"access_token": "at-1", "grant": request.form["grant_type"]})

    with LoopbackServer(token_endpoint) as issuer:
        ...  # point the code under test at issuer.url
        assert len(issuer.requests) == 1

``serve_files(root)`` is the handler of a static host (catalogs, wheels). The
``codex_loopback_factory`` fixture of the pytest plugin starts servers that stop with the test.

Only the standard library is used, like the scripted model server's, so it works the same
from synchronous tests, anyio tests and other processes.
"""

from __future__ import annotations

import json
import mimetypes
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from codex_core.testing.background_server import BackgroundServer, QuietHandler

__all__ = ["Handler", "LoopbackRequest", "LoopbackServer", "Reply", "serve_files"]


@dataclass(frozen=True, slots=True)
class LoopbackRequest:
    """A request the server received. ``path`` is the target without its query string (as
    sent, not unquoted); ``query`` and ``form`` keep the first value of each name; header
    names are lower-cased."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` when it is not: the client sent garbage,
        and the handler's failure is the test's 500)."""
        return json.loads(self.body)

    @property
    def form(self) -> dict[str, str]:
        """The body as ``application/x-www-form-urlencoded`` fields."""
        return _first_values(self.text)


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer. ``body`` is sent as is when it is ``bytes`` and as JSON (with
    ``content-type: application/json``) otherwise; ``headers`` add to or override that."""

    status: int = 200
    body: Any = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status, b"", {"location": location})

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        """The bytes to send and the headers that go with them."""
        headers = {name.lower(): value for name, value in self.headers.items()}
        if isinstance(self.body, bytes):
            return self.body, headers
        return json.dumps(self.body).encode(), {"content-type": "application/json", **headers}


Handler = Callable[[LoopbackRequest], Reply]


def serve_files(root: Path) -> Handler:
    """A handler answering ``GET /a/b`` with the file ``root/a/b`` (read when asked, so a test
    may publish files after the server started), and 404 for anything else."""
    base = root.resolve()

    def handle(request: LoopbackRequest) -> Reply:
        target = (base / unquote(request.path).lstrip("/")).resolve()
        if request.method != "GET" or not target.is_relative_to(base) or not target.is_file():
            return Reply(404, {"error": f"not found: {request.method} {request.path}"})
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return Reply(200, target.read_bytes(), {"content-type": kind})

    return handle


def _first_values(encoded: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in parse_qsl(encoded, keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


class _RequestHandler(QuietHandler):
    owner: LoopbackServer

    def _serve(self) -> None:
        target = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        request = LoopbackRequest(
            method=self.command,
            path=target.path,
            query=_first_values(target.query),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        self.owner._record(request)
        try:
            reply = self.owner.handler(request)
        except Exception as exc:
            traceback.print_exc()
            reply = Reply(500, {"error": f"loopback server: the handler raised {exc!r}"})
        data, headers = reply.encoded()
        self.send_response(reply.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class LoopbackServer(BackgroundServer):
    """An HTTP server on ``127.0.0.1`` (a free port) that answers with ``handler``.

    Every request is recorded in ``requests`` before the handler sees it, so a test can count
    calls ("the token endpoint was asked once"). A handler that raises answers 500 with the
    error in the body (and its traceback on stderr), so the client under test fails loudly.
    """

    def __init__(self, handler: Handler) -> None:
        super().__init__(_RequestHandler, "loopback server")
        self.handler = handler
        self._requests: list[LoopbackRequest] = []
        self._lock = threading.Lock()

    @property
    def requests(self) -> list[LoopbackRequest]:
        """The requests received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def _record(self, request: LoopbackRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, no trailing slash."""
        return f"http://127.0.0.1:{self.port}"
