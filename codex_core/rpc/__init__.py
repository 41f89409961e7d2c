"""Connections, the method router and server->client requests."""

from codex_core.rpc.errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    SERVER_OVERLOADED,
    ClientErrorResponse,
    RequestCancelled,
    RequestTimeout,
    RpcError,
    ServerRequestError,
)
from codex_core.rpc.handlers import RequestContext, RpcMethod

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "SERVER_OVERLOADED",
    "ClientErrorResponse",
    "RequestCancelled",
    "RequestContext",
    "RequestTimeout",
    "RpcError",
    "RpcMethod",
    "ServerRequestError",
]
