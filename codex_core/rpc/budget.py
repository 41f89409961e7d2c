"""The overall budget for inbound bytes: what the server holds of what clients sent, all together.

One message is bounded by the transport (as the reference bounds it: 64 MiB per websocket
message, 16 MiB per frame), but without an overall bound eight clients sending 60 MB at once
cost well over a gigabyte. Bytes are counted from the moment a transport reads them off the
socket (websocket) or hands the message over (stdio, in-memory) until the connection is done
with the message: at once for a notification, a response or garbage, when its handler's reply
is queued for a request. A transport that reads from a network asks ``fits`` before buffering
more and drops the connection that would go over, which is what the reference does with a
message over its limit.

The C allocator keeps the pages of a freed large message for reuse (in one arena per thread
that touched it); a moment after a large message is done with, the heap is trimmed (glibc's
``malloc_trim``) so a server that is idle again gives the memory back.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Inbound bytes held at once across all connections, unless CODEX_CORE_INBOUND_BUDGET says.
DEFAULT_LIMIT = 256 * 1024 * 1024
#: A release at least this large trims the C heap ``TRIM_DELAY`` seconds later.
TRIM_AFTER = 4 * 1024 * 1024
TRIM_DELAY = 1.0

_trim: Callable[[], None] | None = None


class InboundBudget:
    """A byte counter with a ceiling; single-threaded (the event loop's thread)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit if limit is not None else _configured_limit()
        self.held = 0
        self._trim_scheduled = False

    def fits(self, size: int) -> bool:
        """Whether ``size`` more bytes stay within the budget."""
        return self.held + size <= self.limit

    def hold(self, size: int) -> None:
        self.held += size

    def release(self, size: int) -> None:
        self.held -= size
        if size >= TRIM_AFTER and not self._trim_scheduled:
            # Give the pages back a moment later, once the reply (which may be as large) has
            # been written and whatever referenced the message is gone; at most once a second.
            self._trim_scheduled = True
            try:
                asyncio.get_running_loop().call_later(TRIM_DELAY, self._trim)
            except RuntimeError:  # no event loop (a direct call): now
                self._trim()

    def _trim(self) -> None:
        self._trim_scheduled = False
        # A message is often still referenced from a cycle (an exception's traceback holding
        # the frame that held it), which an idle server would never collect.
        gc.collect()
        trim_heap()


def _configured_limit() -> int:
    raw = os.environ.get("CODEX_CORE_INBOUND_BUDGET", "")
    try:
        value = int(raw)
    except ValueError:
        if raw:
            log.warning("CODEX_CORE_INBOUND_BUDGET=%r is not a byte count; ignored", raw)
        return DEFAULT_LIMIT
    return value if value > 0 else DEFAULT_LIMIT


def trim_heap() -> None:
    """Return free C-heap pages to the OS (glibc only; elsewhere nothing to do)."""
    global _trim
    if _trim is None:
        _trim = _load_trim()
    _trim()


def _load_trim() -> Callable[[], None]:
    if not sys.platform.startswith("linux"):
        return lambda: None
    import ctypes  # only once a large message was seen

    try:
        malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # musl and other libcs have no malloc_trim
        return lambda: None
    malloc_trim.argtypes = [ctypes.c_size_t]

    def trim() -> None:
        malloc_trim(0)

    return trim
