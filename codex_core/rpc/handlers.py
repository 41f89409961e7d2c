"""What a plugin registers to answer a JSON-RPC method, and what its handler receives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codex_core.protocol.envelope import RequestId

if TYPE_CHECKING:
    from pydantic import BaseModel

    from codex_core.kernel import Kernel
    from codex_core.rpc.connection import Connection

Handler = Callable[["RequestContext", Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class RpcMethod:
    """A method a plugin answers.

    For a method of the official protocol the kernel validates params against the schema's
    model before calling ``handler``. A plugin's own method (outside the schema) may name its
    params model; without one the handler receives the raw JSON params (or ``None``).
    """

    name: str
    handler: Handler
    params_model: type[BaseModel] | None = None
    experimental: bool = False


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Where a request came from: the connection answers it, the kernel holds the services."""

    kernel: Kernel
    connection: Connection
    method: str
    request_id: RequestId
    after_reply: list[Callable[[], None]] = field(default_factory=list)

    def notify_after_reply(self, method: str, params: Any) -> None:
        """Send a notification to this client right after the response.

        The protocol orders some notifications after the reply that caused them (for example
        ``thread/started`` after the ``thread/start`` result), which a handler cannot do by
        notifying before it returns.
        """
        self.after_reply.append(lambda: self.connection.notify(method, params))
