"""``skills/extraRoots/set``: more folders to find user skills in, for this process.

An IDE or desktop app that keeps skills of its own (a workspace's, an extension's) names their
folders here instead of copying them into ``CODEX_HOME``. As in the reference the list lives in
the server process, shared by its connections, is replaced whole by each call (``[]`` clears
it) and is never persisted; every client hears ``skills/changed`` so it lists again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.rpc import RequestContext

SERVICE = "skills_extra_roots"


def extra_roots(kernel: Kernel) -> tuple[Path, ...]:
    """The roots the last ``skills/extraRoots/set`` named (none before the first)."""
    found = kernel.services.get(SERVICE)
    return found if isinstance(found, tuple) else ()


async def skills_extra_roots_set(ctx: RequestContext, params: Any) -> dict[str, Any]:
    # The schema's AbsolutePathBuf: normalized (a trailing slash or ``..`` names one root once).
    roots = dict.fromkeys(Path(os.path.normpath(str(root))) for root in params.extra_roots)
    ctx.kernel.services[SERVICE] = tuple(roots)
    ctx.kernel.broadcast("skills/changed", {})
    return {}
