"""``collaborationMode/list``: the collaboration modes a client may offer (the TUI's ``/plan``).

The official server answers with its built-in presets whatever the configuration says: Plan
(reasoning effort ``medium``) then Default, neither pinning a model. A client reads this list
at startup and hides plan mode when the request fails, so the list alone is what makes
``/plan`` available; the mode a turn runs in is then chosen through ``turn/start``'s
``collaborationMode``.
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


async def collaboration_mode_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    return {"data": [dict(preset) for preset in PRESETS]}
