"""The ``guardian_subagent`` approval reviewer: a model reviews an action before it runs.

Chosen by ``approvals_reviewer = "guardian_subagent"`` or its newer name ``"auto_review"``
(config, or ``approvalsReviewer`` on ``thread/start`` / ``thread/resume`` / ``turn/start``);
see ``reviewer`` for the review itself, ``overrides`` for
``thread/approveGuardianDeniedAction`` (the user overriding a denial) and ``breaker`` for the
turn interrupted after too many denials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codex_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from pydantic import BaseModel

    from codex_core.kernel import Kernel
    from codex_core.rpc import RpcMethod
    from codex_plugin_guardian.reviewer import GuardianReviewer, ReviewerAlias

# The hooks import the reviewer when the kernel collects them: loading the plugin (``--help``)
# imports nothing else.


@hookimpl
def codex_approval_reviewers(kernel: Kernel) -> list[GuardianReviewer | ReviewerAlias]:
    from codex_plugin_guardian.reviewer import ALIAS, GuardianReviewer, ReviewerAlias

    reviewer = GuardianReviewer(kernel)
    return [reviewer, ReviewerAlias(ALIAS, reviewer)]


@hookimpl
def codex_rpc_methods(kernel: Kernel) -> list[RpcMethod]:
    from codex_core.rpc import RpcMethod
    from codex_plugin_guardian.overrides import ApproveDeniedAction

    return [RpcMethod("thread/approveGuardianDeniedAction", ApproveDeniedAction(kernel))]


@hookimpl
def codex_config_sections() -> dict[str, type[BaseModel]]:
    from codex_plugin_guardian.reviewer import GuardianConfig

    return {"guardian": GuardianConfig}
