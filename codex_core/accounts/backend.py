"""Calls to the ChatGPT backend (``chatgpt_base_url``) on behalf of the signed-in account.

The ``account/*`` methods that read or change something of the account's (token usage,
workspace messages, reset credits, the add-credits nudge) share one shape: they need a ChatGPT
login, send its bearer token and ``chatgpt-account-id`` to ``{chatgpt_base_url}/wham/...``, and
turn a failed call into an internal error worded as the official server words it (method, URL,
status, content type and body), so a client shows the same text whichever server it talks to.
"""

from __future__ import annotations

import http
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codex_core.accounts.service import Credentials, accounts_service
from codex_core.rpc import INTERNAL_ERROR, INVALID_REQUEST, RpcError

if TYPE_CHECKING:
    from codex_core.rpc import RequestContext

HTTP_TIMEOUT_SECONDS = 30.0


async def chatgpt_credentials(ctx: RequestContext, needed_for: str) -> Credentials:
    """The ChatGPT login, or the reference's refusal naming what it was ``needed_for``
    (``"to read token usage"``, ``"for rate limit reset credits"``)."""
    credentials = await accounts_service(ctx.kernel).credentials()
    if credentials is None:
        raise RpcError(INVALID_REQUEST, f"codex account authentication required {needed_for}")
    if credentials.auth_mode == "apikey":
        raise RpcError(INVALID_REQUEST, f"chatgpt authentication required {needed_for}")
    return credentials


@dataclass(frozen=True, slots=True)
class BackendReply:
    """A backend answer: status, body text and content type, with the URL it came from."""

    method: str
    url: str
    status: int
    content_type: str
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def failure(self) -> str:
        """The reference's description of a non-success answer."""
        try:
            reason = http.HTTPStatus(self.status).phrase
        except ValueError:
            reason = ""
        status = f"{self.status} {reason}".rstrip()
        return (
            f"{self.method} {self.url} failed: {status}; "
            f"content-type={self.content_type}; body={self.text}"
        )

    def decode_error(self, problem: str) -> str:
        """The reference's description of a success answer it could not read."""
        return (
            f"Decode error for {self.url}: {problem}; "
            f"content-type={self.content_type}; body={self.text}"
        )

    def at(self, end: int) -> str:
        """``at line L column C`` for the body offset ``end`` (just past the token a JSON
        decoder stopped at), as the reference's decoder places its complaints."""
        line_start = self.text.rfind("\n", 0, end) + 1
        return f"at line {self.text.count(chr(10), 0, end) + 1} column {end - line_start}"

    def value_end(self, key: str) -> int:
        """The body offset just past the value of the top-level ``key`` (else the body's end)."""
        found = re.search(rf'"{re.escape(key)}"\s*:\s*', self.text)
        if found is None:
            return self.object_end()
        try:
            return json.JSONDecoder().raw_decode(self.text, found.end())[1]
        except ValueError:
            return self.object_end()

    def object_end(self) -> int:
        """The body offset just past its closing brace."""
        return self.text.rfind("}") + 1 or len(self.text)

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not."""
        return json.loads(self.text)


async def call(
    ctx: RequestContext,
    credentials: Credentials,
    method: str,
    path: str,
    *,
    failed: str,
    body: dict[str, Any] | None = None,
) -> BackendReply:
    """``method`` ``{chatgpt_base_url}{path}`` as ``credentials``; an unreachable backend is
    the internal error ``"{failed}: error sending request for url (URL)"``."""
    import httpx  # loaded by the first backend call, not at startup

    url = f"{accounts_service(ctx.kernel).chatgpt_base_url()}{path}"
    headers = {"user-agent": _user_agent(ctx), **credentials.headers()}
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as client:
            response = await client.request(method, url, headers=headers, json=body)
    except httpx.HTTPError:
        raise RpcError(INTERNAL_ERROR, f"{failed}: error sending request for url ({url})") from None
    return BackendReply(
        method, url, response.status_code, response.headers.get("content-type", ""), response.text
    )


def _user_agent(ctx: RequestContext) -> str:
    """The user agent of ``initialize``'s result: the reference names its backend calls
    after the client too."""
    from codex_core.server_info import user_agent

    connection = ctx.connection
    return user_agent(connection.client_name or "codex_core", connection.client_version or "")


def json_object(reply: BackendReply, failed: str) -> dict[str, Any]:
    """A success answer's JSON object, or the internal error the reference gives for a body it
    cannot read (its decoder's wording of the problem differs; the rest is the same)."""
    try:
        body = reply.json()
    except ValueError as exc:
        raise RpcError(INTERNAL_ERROR, f"{failed}: {reply.decode_error(str(exc))}") from None
    if not isinstance(body, dict):
        problem = f"invalid type: {type(body).__name__}, expected a JSON object"
        raise RpcError(INTERNAL_ERROR, f"{failed}: {reply.decode_error(problem)}")
    return body


def checked(reply: BackendReply, failed: str) -> BackendReply:
    """``reply`` if it is a success, else the internal error ``"{failed}: <failure>"``."""
    if not reply.ok:
        raise RpcError(INTERNAL_ERROR, f"{failed}: {reply.failure()}")
    return reply
