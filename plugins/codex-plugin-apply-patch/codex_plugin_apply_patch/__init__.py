"""``apply_patch``: the model edits files with a patch, with the user's approval when needed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from codex_core.hookspecs import hookimpl
from codex_plugin_apply_patch.parser import Hunk, PatchError, apply, parse
from codex_plugin_apply_patch.tool import ApplyPatch

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

__all__ = ["ApplyPatch", "Hunk", "PatchError", "apply", "codex_tools", "parse"]


@hookimpl
def codex_tools(kernel: Kernel) -> list[ApplyPatch]:
    return [ApplyPatch()]
