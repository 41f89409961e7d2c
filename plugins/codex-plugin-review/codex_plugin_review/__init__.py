"""Code review: ``review/start`` runs a reviewer model on a thread's changes (the working tree,
a base branch, a commit, or free-form instructions) and renders its structured findings into
the thread, as the official server does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codex_core.hookspecs import hookimpl
from codex_core.rpc import RequestContext, RpcMethod

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

__all__ = ["codex_rpc_methods"]


async def review_start(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """``review/start``; the review machinery is imported on the first review, not at startup."""
    from codex_plugin_review.start import start

    return await start(ctx, params)


@hookimpl
def codex_rpc_methods(kernel: Kernel) -> list[RpcMethod]:
    return [RpcMethod("review/start", review_start)]
