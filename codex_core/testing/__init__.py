"""Helpers for testing codex-core and its plugins.

- ``codex_core.testing.model_server``: the scripted Responses-API model server (re-exported
  here: ``ScriptedModelServer``, ``message``, ``function_call``, ...).
- ``codex_core.testing.pytest_plugin``: the plugin author's test kit, pytest fixtures
  (``codex_home``, ``codex_kernel``, ``codex_client``, ``codex_server``, ``codex_ws_server``,
  ``codex_model_server``, ...) that pytest loads through codex-core's ``pytest11`` entry point.
  See ``docs/testing-plugins.md``.
"""

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
