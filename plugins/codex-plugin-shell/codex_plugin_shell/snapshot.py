"""Shell snapshots: a login shell's environment, captured once and reused for every command.

``bash -lc CMD`` sources the login profile on every command, which costs tens to hundreds of
milliseconds (a profile that runs ``pyenv init``, say), each time. Like the reference, which
runs commands from a shell snapshot, the plugin starts the login shell once per shell binary,
keeps the environment it ends up with, and then runs each command with ``SHELL -c`` in that
environment; the item still shows the command as ``SHELL -lc CMD``. The profile's functions and
aliases are not carried over (scripts rarely rely on them), and a profile edited after the first
command is read at the next server start. When the capture fails, commands run with ``-lc``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

import anyio

#: How long the login shell may take to print its environment.
CAPTURE_TIMEOUT_SECONDS = 20.0
#: Variables that describe the capturing shell itself, not the environment to pass on.
SHELL_STATE = frozenset({"PWD", "OLDPWD", "SHLVL", "_"})

_captured: dict[str, dict[str, str] | None] = {}


async def login_environment(shell: str, base: Mapping[str, str]) -> dict[str, str] | None:
    """The environment ``shell -l`` sets up from ``base``, captured on first use (two first
    commands at once may both capture it; the result is the same)."""
    if shell not in _captured:
        _captured[shell] = await _capture(shell, base)
    return _captured[shell]


async def _capture(shell: str, base: Mapping[str, str]) -> dict[str, str] | None:
    try:
        with anyio.fail_after(CAPTURE_TIMEOUT_SECONDS):
            done = await anyio.run_process(
                [shell, "-lc", "env -0"],
                stdin=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=dict(base),
                check=False,
                start_new_session=True,
            )
    except (OSError, TimeoutError):
        return None
    if done.returncode != 0:
        return None
    pairs = (entry.partition("=") for entry in done.stdout.decode(errors="replace").split("\0"))
    return {name: value for name, sep, value in pairs if sep and name not in SHELL_STATE}
