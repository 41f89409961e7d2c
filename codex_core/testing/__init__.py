"""Helpers for testing codex-core and its plugins.

- ``codex_core.testing.model_server``: the scripted Responses-API model server (re-exported
  here: ``ScriptedModelServer``, ``message``, ``function_call``, ...).
- ``codex_core.testing.loopback``: a loopback HTTP server standing in for a remote service
  (re-exported here: ``LoopbackServer``, ``LoopbackRequest``, ``Reply``, ``serve_files``).
- ``codex_core.testing.file_keyring``: a keyring backend in a JSON file, for server
  subprocesses that store secrets (not re-exported: it imports ``keyring``).
- ``codex_core.testing.stored_threads``: many stored threads in the official on-disk layout,
  generated from one real rollout (for ``bench/threads.py`` and history tests; not
  re-exported).
- ``codex_core.testing.pytest_plugin``: the plugin author's test kit, pytest fixtures
  (``codex_home``, ``codex_kernel``, ``codex_client``, ``codex_server``, ``codex_ws_server``,
  ``codex_model_server``, ``codex_loopback_factory``, ...) that pytest loads through
  codex-core's ``pytest11`` entry point. See ``docs/testing-plugins.md``.
"""

from codex_core.testing.loopback import LoopbackRequest, LoopbackServer, Reply, serve_files
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
    "LoopbackRequest",
    "LoopbackServer",
    "ModelResponse",
    "RecordedRequest",
    "Reply",
    "ScriptedModelServer",
    "function_call",
    "http_error",
    "message",
    "reasoning",
    "serve_files",
]
