"""JSON-RPC error codes and the exceptions that carry them to the wire.

The official server answers almost every client mistake with -32600 (Invalid Request), even
unknown methods and bad params; we use the same codes so generated clients behave identically.
"""

from __future__ import annotations

from typing import Any

INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_OVERLOADED = -32001

OVERLOADED_MESSAGE = "Server overloaded; retry later."


class RpcError(Exception):
    """Raised by a handler to answer its request with a JSON-RPC error instead of a result."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_wire(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_request(message: str) -> RpcError:
    return RpcError(INVALID_REQUEST, message)


class ServerRequestError(Exception):
    """A server->client request did not produce a result."""


class ClientErrorResponse(ServerRequestError):
    """The client answered a server->client request with a JSON-RPC error.

    Callers report it as ``code=<code> message=<message>``, so both are kept verbatim.
    """

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method} request failed: code={code} message={message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


class RequestCancelled(ServerRequestError):
    """The connection closed (or the server gave up) before the client answered."""


class RequestTimeout(ServerRequestError, TimeoutError):
    """The client did not answer within the caller's deadline."""
