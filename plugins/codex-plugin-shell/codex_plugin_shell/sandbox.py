"""The OS sandbox for the model's commands: bubblewrap (``bwrap``) on Linux, as the reference.

``read-only``: the whole filesystem is mounted read-only. ``workspace-write``: the same, except
the cwd, the sandbox's ``writableRoots``, ``/tmp`` and ``$TMPDIR`` (unless excluded). Both cut
the network unless the sandbox policy allows it. ``danger-full-access`` runs commands as they
are. When bubblewrap is missing or cannot create its namespaces here (some containers forbid
it), commands run unwrapped and the approval policy stands in for the sandbox: anything that may
write is asked about first under ``read-only``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any


@functools.cache
def bwrap() -> str | None:
    """The bubblewrap binary, if it works on this machine (checked once)."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = [path, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-net", "true"]
    try:
        works = subprocess.run(probe, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        works = False
    return path if works else None


def confines(policy: Mapping[str, Any]) -> bool:
    """Whether commands under ``policy`` (a ``SandboxPolicy``) run inside the OS sandbox."""
    return policy.get("type") in ("readOnly", "workspaceWrite") and bwrap() is not None


def wrap(
    argv: list[str], policy: Mapping[str, Any], cwd: str, *, workspace: str | None = None
) -> list[str]:
    """``argv`` inside the sandbox ``policy`` describes (unchanged when it does not confine).

    It runs in ``cwd``; ``workspace`` (default: ``cwd``) is the folder ``workspaceWrite``
    makes writable, which for ``command/exec`` is the server's cwd, not the command's.
    """
    binary = bwrap()
    if binary is None or not confines(policy):
        return argv
    command = [binary, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    if policy.get("type") == "workspaceWrite":
        for root in writable_roots(policy, workspace or cwd):
            command += ["--bind", root, root]
    if not policy.get("networkAccess"):
        command.append("--unshare-net")
    return [*command, "--die-with-parent", "--chdir", cwd, "--", *argv]


def writable_roots(policy: Mapping[str, Any], cwd: str) -> list[str]:
    roots = [cwd, *(str(root) for root in policy.get("writableRoots") or ())]
    if not policy.get("excludeSlashTmp"):
        roots.append("/tmp")
    tmpdir = os.environ.get("TMPDIR")
    if tmpdir and not policy.get("excludeTmpdirEnvVar"):
        roots.append(tmpdir)
    unique = dict.fromkeys(os.path.realpath(root) for root in roots)
    return [root for root in unique if os.path.isdir(root)]


#: The ``SandboxPolicy`` each ``sandbox_mode`` stands for (as ``thread/start`` reports it).
MODES: dict[str, dict[str, Any]] = {
    "read-only": {"type": "readOnly", "networkAccess": False},
    "workspace-write": {"type": "workspaceWrite", "writableRoots": [], "networkAccess": False,
                        "excludeTmpdirEnvVar": False, "excludeSlashTmp": False},
    "danger-full-access": {"type": "dangerFullAccess"},
}  # fmt: skip


def policy_for_mode(mode: str) -> dict[str, Any]:
    """The policy of a ``sandbox_mode`` (read-only for anything unknown, the safe side)."""
    return dict(MODES.get(mode, MODES["read-only"]))
