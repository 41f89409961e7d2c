"""Servers' ``elicitation/create`` requests, forwarded to the client as the reference's
``mcpServer/elicitation/request`` and answered with what the client says.

A connection is shared by every thread, so an elicitation goes to whoever is waiting on the
server: the most recent tool call still running (a turn's, whose thread's subscribers are
asked; or a client's ``mcpServer/tool/call``, whose connection is asked). With nobody waiting
it is cancelled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:
    from mcp.types import ElicitRequestParams, ElicitResult

ELICITATION_REQUEST = "mcpServer/elicitation/request"
ACTIONS = ("accept", "decline", "cancel")
#: The members the official ``McpElicitationSchema`` allows at the top of ``requestedSchema``
#: (servers' JSON schemas often carry a ``title`` too).
SCHEMA_MEMBERS = ("$schema", "type", "properties", "required")

#: Asks the client with ``mcpServer/elicitation/request`` params lacking only ``threadId`` and
#: ``turnId``; returns its answer.
Asker = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def request_params(server: str, params: ElicitRequestParams) -> dict[str, Any]:
    """The server's request as ``mcpServer/elicitation/request`` params (but the thread's)."""
    from mcp.types import ElicitRequestURLParams

    wire: dict[str, Any] = {"serverName": server, "message": params.message}
    if isinstance(params, ElicitRequestURLParams):
        wire.update(mode="url", url=params.url, elicitationId=params.elicitation_id or "")
    else:
        schema = params.requested_schema
        wire.update(
            mode="form", requestedSchema={k: schema[k] for k in SCHEMA_MEMBERS if k in schema}
        )
    if params.meta:
        wire["_meta"] = dict(params.meta)
    return wire


def result_from(answer: dict[str, Any]) -> ElicitResult:
    """The client's answer as the MCP result; anything unreadable declines."""
    from mcp.types import ElicitResult

    given = answer.get("action") or answer.get("decision")
    action = cast(Literal["accept", "decline", "cancel"], given if given in ACTIONS else "decline")
    content = answer.get("content") if action == "accept" else None
    return ElicitResult(action=action, content=content if isinstance(content, dict) else None)
