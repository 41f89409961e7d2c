"""The life cycle the kit's HTTP servers share: ``http.server`` on a free ``127.0.0.1`` port,
served from a daemon thread, started and stopped as a context manager.

A subclass passes its request handler class; each started server gets a subclass of it whose
``owner`` attribute is the server, so handlers reach the server's script or record.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

__all__ = ["BackgroundServer", "QuietHandler"]


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler without the access log on the test's stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class BackgroundServer:
    """The base of the kit's servers: ``port``, ``start()``/``close()``, ``with``."""

    def __init__(self, handler_class: type[BaseHTTPRequestHandler], description: str) -> None:
        self._handler_class = handler_class
        #: What the server is, for its thread's name and errors ("scripted model server").
        self._description = description
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"the {self._description} is not running")
        return int(self._httpd.server_address[1])

    def start(self) -> Self:
        handler = type("Handler", (self._handler_class,), {"owner": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            name=self._description.replace(" ", "-"),
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
