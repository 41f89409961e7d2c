"""The HTTP side of the websocket port: health probes, Origin refusal, upgrade checks, auth.

Answers as the official server does (status, body and content type), in its order: any request
with an ``Origin`` header is refused (403, so no browser page can reach the server), health
probes are answered without authentication, then the request must be a websocket upgrade
(400/405 with the reason), then the bearer token is checked (401).
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from codex_plugin_websocket.auth import AuthPolicy

HEALTH_PATHS = ("/readyz", "/healthz")
TEXT = "text/plain; charset=utf-8"


def response(
    status: int,
    reason: str,
    body: str = "",
    *,
    method: str = "GET",
    extra: dict[str, str] | None = None,
) -> Response:
    headers = Headers()
    if body:
        headers["Content-Type"] = TEXT
    encoded = body.encode()
    headers["Content-Length"] = str(len(encoded))
    for name, value in (extra or {}).items():
        headers[name] = value
    headers["Date"] = email.utils.formatdate(usegmt=True)
    return Response(status, reason, headers, b"" if method == "HEAD" else encoded)


def _has_token(headers: Headers, name: str, token: str) -> bool:
    return any(
        part.strip().lower() == token
        for value in headers.get_all(name)
        for part in value.split(",")
    )


def upgrade_problem(request: Request) -> Response | None:
    """What is wrong with a websocket upgrade request, as the reference words it."""
    method = getattr(request, "method", "GET")  # websockets < 14 only parses GET
    headers = request.headers
    if method != "GET":
        return response(405, "Method Not Allowed", "Request method must be `GET`", method=method)
    if not _has_token(headers, "Connection", "upgrade"):
        return response(400, "Bad Request", "Connection header did not include 'upgrade'")
    if not _has_token(headers, "Upgrade", "websocket"):
        return response(400, "Bad Request", "`Upgrade` header did not include 'websocket'")
    if headers.get_all("Sec-WebSocket-Version") != ["13"]:
        return response(400, "Bad Request", "`Sec-WebSocket-Version` header did not include '13'")
    if not headers.get_all("Sec-WebSocket-Key"):
        return response(400, "Bad Request", "`Sec-WebSocket-Key` header missing")
    return None


def request_checker(policy: AuthPolicy) -> Callable[[object, Request], Response | None]:
    """A websockets ``process_request`` for a ``ws://`` listener with this auth policy."""

    def process_request(_connection: object, request: Request) -> Response | None:
        method = getattr(request, "method", "GET")
        headers = request.headers
        if "Origin" in headers:
            return response(403, "Forbidden", method=method)
        if urlsplit(request.path).path in HEALTH_PATHS:
            if method in ("GET", "HEAD"):
                return response(200, "OK", method=method)
            return response(405, "Method Not Allowed", extra={"Allow": "GET,HEAD"})
        problem = upgrade_problem(request)
        if problem is not None:
            return problem
        authorization = headers.get_all("Authorization")
        refusal = policy.authorize(authorization[0] if authorization else None)
        if refusal is not None:
            return response(401, "Unauthorized", refusal)
        return None

    return process_request
