"""What a review looks at: the target's one-line hint for people and the prompt for the model.

The wording is the official server's, so a reviewer model reads the same request from either
server. A base branch is resolved with git before the review starts: the prompt names the
merge base when git finds one, and tells the model how to find it otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from codex_core.rpc import INVALID_REQUEST, RpcError

UNCOMMITTED_PROMPT = (
    "Review the current code changes (staged, unstaged, and untracked files) and provide "
    "prioritized findings."
)
MERGE_BASE_PROMPT = (
    "Review the code changes against the base branch '{branch}'. The merge base commit for this "
    "comparison is {sha}. Run `git diff {sha}` to inspect the changes relative to {branch}. "
    "Provide prioritized, actionable findings."
)
UPSTREAM_PROMPT = (
    "Review the code changes against the base branch '{branch}'. Start by finding the merge "
    "diff between the current branch and {branch}'s upstream e.g. (`git merge-base HEAD "
    '"$(git rev-parse --abbrev-ref "{branch}@{{upstream}}")"`), then run `git diff` against '
    "that SHA to see what changes we would merge into the {branch} branch. Provide "
    "prioritized, actionable findings."
)
COMMIT_PROMPT = (
    "Review the code changes introduced by commit {sha}. Provide prioritized, actionable findings."
)
TITLED_COMMIT_PROMPT = (
    'Review the code changes introduced by commit {sha} ("{title}"). Provide prioritized, '
    "actionable findings."
)


class NotARepository(Exception):
    """A base-branch review outside a git work tree (the reference's words)."""

    def __init__(self, cwd: str) -> None:
        super().__init__(f'"{cwd}" is not a git repository')


@dataclass(frozen=True, slots=True)
class Target:
    """A ``ReviewTarget`` checked and trimmed: ``kind`` is its wire ``type``."""

    kind: str
    value: str = ""
    title: str | None = None

    @property
    def hint(self) -> str:
        """What the thread shows for the review (``enteredReviewMode``, the reply's item)."""
        if self.kind == "uncommittedChanges":
            return "current changes"
        if self.kind == "baseBranch":
            return f"changes against '{self.value}'"
        if self.kind == "commit":
            short = self.value[:7]
            return f"commit {short}: {self.title}" if self.title else f"commit {short}"
        return self.value

    @property
    def wire(self) -> dict[str, Any]:
        """The target as the rollout records it (trimmed)."""
        if self.kind == "commit":
            return {"type": "commit", "sha": self.value, "title": self.title}
        field = {"baseBranch": "branch", "custom": "instructions"}.get(self.kind)
        return {"type": self.kind, field: self.value} if field else {"type": self.kind}

    async def prompt(self, cwd: str) -> str:
        """The user message the reviewer model gets; raises ``NotARepository``."""
        if self.kind == "uncommittedChanges":
            return UNCOMMITTED_PROMPT
        if self.kind == "baseBranch":
            sha = await merge_base(cwd, self.value)
            if sha is None:
                return UPSTREAM_PROMPT.format(branch=self.value)
            return MERGE_BASE_PROMPT.format(branch=self.value, sha=sha)
        if self.kind == "commit":
            if self.title:
                return TITLED_COMMIT_PROMPT.format(sha=self.value, title=self.title)
            return COMMIT_PROMPT.format(sha=self.value)
        return self.value


def parse_target(wire: dict[str, Any]) -> Target:
    """The request's target, refused as the reference refuses an empty one."""
    kind = str(wire.get("type"))
    field = {"baseBranch": "branch", "commit": "sha", "custom": "instructions"}.get(kind)
    if field is None:
        return Target(kind)
    value = str(wire.get(field) or "").strip()
    if not value:
        raise RpcError(INVALID_REQUEST, f"{field} must not be empty")
    title = (str(wire.get("title") or "").strip() or None) if kind == "commit" else None
    return Target(kind, value, title)


async def merge_base(cwd: str, branch: str) -> str | None:
    """The commit ``HEAD`` and ``branch`` share, ``None`` when git cannot tell (an unknown
    branch, no commits yet); raises ``NotARepository`` outside a work tree."""
    inside = await _git(cwd, "rev-parse", "--is-inside-work-tree")
    if inside != "true":
        raise NotARepository(cwd)
    return await _git(cwd, "merge-base", "HEAD", branch)


async def _git(cwd: str, *args: str) -> str | None:
    """``git args`` in ``cwd``: its output, or ``None`` when it fails (or git is missing)."""
    if not Path(cwd).is_dir():
        return None
    try:
        done = await anyio.run_process(["git", *args], cwd=cwd, check=False)
    except OSError:
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode(errors="replace").strip()
