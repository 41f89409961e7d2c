"""Calls to ChatGPT's remote plugin catalog (``{chatgpt_base_url}/ps/plugins/...`` and
``/public/plugins/workspace/...``), worded as the reference words their failures.

Every remote plugin method needs a ChatGPT login; without one (or with an API key) it is
refused with ``"<what>: chatgpt authentication required for remote plugin catalog"``. A call
the backend cannot be reached for, answers with an error status, or answers with something
unreadable becomes the reference's error naming the URL, so a client shows the same text
whichever server it talks to.
"""

from __future__ import annotations

import http
from typing import TYPE_CHECKING, Any

from codex_core.accounts.backend import BackendReply
from codex_core.accounts.service import Credentials, accounts_service
from codex_core.rpc import INTERNAL_ERROR, INVALID_REQUEST, RpcError

if TYPE_CHECKING:
    from codex_core.rpc import RequestContext

HTTP_TIMEOUT_SECONDS = 30.0


async def chatgpt_login(ctx: RequestContext, what: str) -> Credentials:
    """The ChatGPT login, or the reference's refusal of ``what`` without one."""
    credentials = await accounts_service(ctx.kernel).credentials()
    refusal = f"{what}: chatgpt authentication required for remote plugin catalog"
    if credentials is None:
        raise RpcError(INVALID_REQUEST, refusal)
    if credentials.auth_mode == "apikey":
        raise RpcError(INVALID_REQUEST, f"{refusal}; api key auth is not supported")
    return credentials


async def catalog_call(
    ctx: RequestContext,
    credentials: Credentials,
    method: str,
    path: str,
    what: str,
    *,
    body: dict[str, Any] | None = None,
    success: int | None = None,
    client_errors: int = INVALID_REQUEST,
) -> BackendReply:
    """``method`` ``{chatgpt_base_url}{path}``; the reply when its status is ``success`` (any
    2xx when None), else the reference's error: a 4xx is ``client_errors`` (the share methods
    blame the request, reconciliation calls it internal), anything else internal."""
    import httpx  # loaded by the first catalog call, not at startup

    from codex_core.server_info import user_agent

    url = f"{accounts_service(ctx.kernel).chatgpt_base_url()}{path}"
    client = ctx.connection  # the reference names catalog calls after the client too
    agent = user_agent(client.client_name or "codex_core", client.client_version or "")
    headers = {"user-agent": agent, **credentials.headers()}
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http_client:
            response = await http_client.request(method, url, headers=headers, json=body)
    except httpx.HTTPError:
        raise RpcError(
            INTERNAL_ERROR,
            f"{what}: failed to send remote plugin catalog request to {url}: "
            f"error sending request for url ({url})",
        ) from None
    reply = BackendReply(
        method, url, response.status_code, response.headers.get("content-type", ""), response.text
    )
    good = reply.ok if success is None else reply.status == success
    if not good:
        try:
            reason = http.HTTPStatus(reply.status).phrase
        except ValueError:
            reason = ""
        code = client_errors if 400 <= reply.status < 500 else INTERNAL_ERROR
        raise RpcError(
            code,
            f"{what}: remote plugin catalog request to {url} failed with status "
            f"{f'{reply.status} {reason}'.rstrip()}: {reply.text}",
        )
    return reply


def unreadable(reply: BackendReply, what: str, problem: str) -> RpcError:
    """The reference's error for a success answer it cannot read."""
    return RpcError(
        INTERNAL_ERROR,
        f"{what}: failed to parse remote plugin catalog response from {reply.url}: {problem}",
    )


def missing(reply: BackendReply, what: str, key: str) -> RpcError:
    """A required field is absent: the reference's decoder places that at the end of the
    top-level object."""
    return unreadable(reply, what, f"missing field `{key}` {reply.at(reply.object_end())}")


def catalog_object(reply: BackendReply, what: str, *required: str) -> dict[str, Any]:
    """A success answer's JSON object holding ``required`` keys, else the reference's parse
    error."""
    try:
        found = reply.json()
    except ValueError as exc:
        raise unreadable(reply, what, str(exc)) from None
    if not isinstance(found, dict):
        problem = f"invalid type: {type(found).__name__}, expected a JSON object"
        raise unreadable(reply, what, problem)
    for key in required:
        if key not in found:
            raise missing(reply, what, key)
    return found


def not_yet(what: str, missing: str) -> RpcError:
    """What codex-core answers where the reference would go on with a catalog answer that
    codex-core cannot use yet (see docs/marketplace.md)."""
    return RpcError(INTERNAL_ERROR, f"{what}: codex-core does not {missing} yet")
