"""Sub-agents: the model starts agents of its own (``spawn_agent``) and collects their answers
(``wait_agent``); each is a child thread announced to the parent's clients."""

from __future__ import annotations

from codex_core.hookspecs import hookimpl
from codex_plugin_subagents.tools import SpawnAgent, WaitAgent

__all__ = ["SpawnAgent", "WaitAgent", "codex_tools"]


@hookimpl
def codex_tools() -> list[SpawnAgent | WaitAgent]:
    return [SpawnAgent(), WaitAgent()]
