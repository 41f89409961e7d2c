"""Helpers for testing codex-core and its plugins (a scripted model server, ...)."""

from codex_core.testing.model_server import (
    ModelResponse,
    RecordedRequest,
    ScriptedModelServer,
    function_call,
    http_error,
    message,
    reasoning,
)

__all__ = [
    "ModelResponse",
    "RecordedRequest",
    "ScriptedModelServer",
    "function_call",
    "http_error",
    "message",
    "reasoning",
]
