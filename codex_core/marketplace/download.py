"""Downloading catalogs and wheels over HTTP(S) with httpx, and saying why one failed.

A failed download is a ``DownloadError`` whose message is one sentence a user can act on:
what could not be reached and why, in words (``host not found``, ``the server answered 404
Not Found``) rather than a socket error's repr. ``file://`` URLs are read from disk. httpx
is imported by the first download, not when the server starts.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

#: Called with (bytes so far, total bytes or None) as a download proceeds.
ChunkFn = Callable[[int, int | None], None]


class DownloadError(OSError):
    """A download that failed; the message names the URL, why, and what to check."""


def read_bytes(url: str, *, timeout: float = 30) -> bytes:
    """The body of ``url`` (http, https or file); ``DownloadError`` when it cannot be had."""
    local = _local_path(url)
    if local is not None:
        try:
            return local.read_bytes()
        except OSError as exc:
            raise DownloadError(f"cannot read {local}: {exc.strerror}") from None
    import httpx

    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise DownloadError(describe(exc)) from None
    return response.content


def save(url: str, target: Path, report: ChunkFn, *, timeout: float = 60) -> None:
    """Stream ``url`` into ``target``, calling ``report`` as bytes arrive."""
    local = _local_path(url)
    if local is not None:
        data = read_bytes(url)
        target.write_bytes(data)
        report(len(data), len(data))
        return
    import httpx

    try:
        with (
            httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response,
            target.open("wb") as out,
        ):
            response.raise_for_status()
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            report(done, total)
            for chunk in response.iter_bytes(64 * 1024):
                out.write(chunk)
                done += len(chunk)
                report(done, total)
    except httpx.HTTPError as exc:
        raise DownloadError(describe(exc)) from None


def describe(exc: httpx.HTTPError) -> str:
    """Why a request failed, in words, and what to check."""
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response
        return (
            f"the server answered {status.status_code} {status.reason_phrase}; "
            "check that the URL is right"
        )
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time; check that the host is up, or try again"
    if isinstance(exc, httpx.ConnectError):
        cause = str(exc) or type(exc).__name__
        if "Name or service not known" in cause or "nodename nor servname" in cause:
            return "host not found; check the URL's host name and your network"
        if "Connection refused" in cause:
            return "connection refused; check the URL's port and that the server is running"
        return f"cannot connect ({cause}); check the URL and your network"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "not a valid http(s) URL; check the URL"
    return f"{type(exc).__name__}: {exc}; check the URL and your network"


def _local_path(url: str) -> Path | None:
    if not url.startswith("file://"):
        return None
    return Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
