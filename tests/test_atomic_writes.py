"""``codex_core.fs.atomic``: the one way files are replaced (config, logins, catalogs, patches).

The callers' own tests cover what each relies on (``test_config_writes.py``: the folder lock
and a failed write changing nothing; ``test_accounts.py`` and the MCP plugin's OAuth tests:
secrets stay 0600); these cover the helper's rules once, on real files.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from codex_core.fs import atomic


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_private_and_a_replaced_one_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "folder" / "config.toml"
    atomic.write(target, "a = 1\n")
    assert (target.read_text(), mode(target)) == ("a = 1\n", 0o600)
    target.chmod(0o640)
    atomic.write(target, b"a = 2\n")
    assert (target.read_text(), mode(target)) == ("a = 2\n", 0o640)
    atomic.write(target, "secret", mode=0o600)
    assert mode(target) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["config.toml"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    target = tmp_path / "auth.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        atomic.write(target, 42)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["auth.json"]


def test_stage_is_beside_the_target_until_renamed(tmp_path: Path) -> None:
    target = tmp_path / "file.py"
    temp = atomic.stage(target, "print(1)\n", mode=0o755)
    assert temp.parent == tmp_path and temp.name.startswith(".file.py.")
    assert temp.name.endswith(".tmp") and not target.exists()
    assert (temp.read_text(), mode(temp)) == ("print(1)\n", 0o755)
    os.replace(temp, target)
    assert mode(target) == 0o755


def test_the_folder_lock_waits_for_another_process(tmp_path: Path) -> None:
    """A second process holding the lock keeps this one out until it lets go."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from pathlib import Path
                from codex_core.fs import atomic
                with atomic.folder_lock(Path({str(tmp_path)!r}), ".test.lock"):
                    print("locked", flush=True)
                    sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline() == "locked\n"
        from filelock import FileLock, Timeout

        with pytest.raises(Timeout):
            FileLock(tmp_path / ".test.lock").acquire(timeout=0)
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
        with atomic.folder_lock(tmp_path, ".test.lock"):
            pass
    finally:
        holder.kill()
        holder.wait()
