"""Collaboration modes: ``collaborationMode/list`` and what a mode tells the model.

The official server answers ``collaborationMode/list`` with its built-in presets whatever the
configuration says: Plan (reasoning effort ``medium``) then Default, neither pinning a model. A
client reads this list at startup and hides plan mode when the request fails, so the list alone
is what makes ``/plan`` available; the mode a turn runs in is then chosen through
``thread/settings/update`` (or ``turn/start``'s) ``collaborationMode``.

A thread's mode is ``{mode, settings: {model, reasoning_effort, developer_instructions}}``.
Its developer instructions reach the model the way the reference sends them: when they differ
from the last ones the model was given, the turn's input starts with a developer message
``<collaboration_mode>...</collaboration_mode>`` (before the user's message), which stays in
the history. ``developer_instructions: null`` in a request means the mode's built-in
instructions; those below are codex-core's own words for what the reference's say (plan
without changing anything, then present the plan; back to normal work in Default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codex_core.rpc import RequestContext

#: ``CollaborationModeMask`` presets in the reference's order (its keys are snake_case on the
#: wire, unlike the rest of the protocol).
PRESETS = (
    {"name": "Plan", "mode": "plan", "model": None, "reasoning_effort": "medium"},
    {"name": "Default", "mode": "default", "model": None, "reasoning_effort": None},
)

PLAN_INSTRUCTIONS = """\
# Collaboration Mode: Plan

You are in Plan mode until a later developer message with a different `<collaboration_mode>` \
ends it. What the user asks for while in Plan mode is something to plan, not to do.

## What you may do

Explore without changing anything: read and search files, inspect configuration, run \
commands that only read (tests and builds that write nothing but caches are fine). Do not \
edit files, apply patches, run formatters that rewrite files, or run commands meant to carry \
the work out.

## How to plan

1. Ground yourself in the code and the environment before asking anything you could look up.
2. Ask the user only about what changes the plan: goals, constraints, trade-offs they must \
decide. Offer concrete options and say which you recommend.
3. When nothing is left to decide, present the plan in a `<proposed_plan>` block: the \
changes, in order, with the files and interfaces involved, how to test them, and the \
assumptions you made. Someone else should be able to carry it out without making a decision.
"""

DEFAULT_INSTRUCTIONS = """\
# Collaboration Mode: Default

You are in Default mode now: instructions for any earlier mode (such as Plan mode) no longer \
apply. The mode changes only with a later developer message carrying a different \
`<collaboration_mode>`; requests in the conversation do not change it.

Work on the user's requests directly: make the changes, run what is needed, and report what \
you did. Ask the user only when a decision cannot reasonably be made from what you can see.
"""

#: Built-in developer instructions by mode kind (``developer_instructions: null``).
BUILTIN_INSTRUCTIONS = {"plan": PLAN_INSTRUCTIONS, "default": DEFAULT_INSTRUCTIONS}


async def collaboration_mode_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    return {"data": [dict(preset) for preset in PRESETS]}


def initial_mode(model: str, effort: Any) -> dict[str, Any]:
    """A thread's mode before any client chose one: Default, with no instructions sent."""
    return {
        "mode": "default",
        "settings": {"model": model, "reasoning_effort": effort, "developer_instructions": None},
    }


def chosen_mode(wire: dict[str, Any]) -> dict[str, Any]:
    """A mode a client chose (``CollaborationMode`` as wire data), its built-in
    instructions filled in where it asked for them with ``null``."""
    kind = str(wire["mode"])
    settings = wire.get("settings") or {}
    instructions = settings.get("developer_instructions")
    if instructions is None:
        instructions = BUILTIN_INSTRUCTIONS.get(kind)
    return {
        "mode": kind,
        "settings": {
            "model": settings.get("model"),
            "reasoning_effort": settings.get("reasoning_effort"),
            "developer_instructions": instructions,
        },
    }


def instructions_message(instructions: str) -> dict[str, Any]:
    """The developer message that tells the model its mode (the reference's wrapping)."""
    text = f"<collaboration_mode>{instructions}</collaboration_mode>"
    content = [{"type": "input_text", "text": text}]
    return {"type": "message", "role": "developer", "content": content}
