"""``fs/watch`` / ``fs/unwatch`` with real files, for both backends.

Every scenario runs against a real server over stdio twice: with ``codex-plugin-watchfiles``
(native notifications, the default when installed) and with ``--disable-plugin watchfiles``
(the built-in polling). The expected notifications were observed on the reference server
(``codex-peer app-server``, Codex 0.169.0) for the same file operations; see
``docs/fs-watch.md``. Two connections need one server process, so that test runs the kernel
in-process.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from codex_core.client import Client
from codex_core.fs import watch as watching
from codex_core.kernel import Kernel
from codex_core.rpc import RpcError
from codex_core.testing.pytest_plugin import StdioServer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="timings tuned on Linux")

BACKENDS = ["watchfiles", "polling"]
#: A deadline, not a pause: passing runs take well under a second per change, but a loaded CI box
#: has been seen to need more than 5 s (polling: 250 ms + the 200 ms batch window).
WAIT = 20.0
#: How long "nothing more arrives" is checked for.
QUIET = 0.9


def _installed(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "watchfiles" and not _installed("codex_plugin_watchfiles"):
        pytest.skip("codex-plugin-watchfiles is not installed")
    return str(request.param)


@pytest.fixture
def watch_server(start_server: Any, backend: str) -> StdioServer:
    args = ("--disable-plugin", "watchfiles") if backend == "polling" else ()
    server: StdioServer = start_server(*args)
    server.initialize()
    return server


def changes(
    server: StdioServer, watch_id: str, until: Callable[[set[str]], bool]
) -> list[list[str]]:
    """The ``changedPaths`` of each ``fs/changed`` for ``watch_id`` until ``until`` holds."""
    batches: list[list[str]] = []
    seen: set[str] = set()
    deadline = time.monotonic() + WAIT
    while not until(seen):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{watch_id}: only {batches} within {WAIT}s"
        params = server.wait_notification("fs/changed", timeout=remaining)["params"]
        if params["watchId"] == watch_id:
            batches.append(params["changedPaths"])
            seen.update(params["changedPaths"])
    return batches


def expect(server: StdioServer, watch_id: str, *paths: Path) -> list[list[str]]:
    wanted = {str(path) for path in paths}
    return changes(server, watch_id, lambda seen: wanted <= seen)


def quiet(server: StdioServer) -> None:
    """No ``fs/changed`` arrives for ``QUIET`` seconds.

    Only for a removed watch, which has nothing left to order a later event against; where a
    watch remains, a later change it reports is the barrier (one watch reports in order).
    """
    server.drain(QUIET)
    stray = [n for n in server.notifications if n["method"] == "fs/changed"]
    assert not stray, stray
    server.notifications.clear()


def settle(server: StdioServer) -> None:
    """Let setup writes be reported and forgotten."""
    server.drain(0.6)
    server.notifications.clear()


# --------------------------------------------------------------------------- one server


def test_directory_create_modify_delete_then_unwatch(watch_server: StdioServer, tmp_path: Path):
    server, root = watch_server, tmp_path / "dir"
    root.mkdir()
    (root / "nested").mkdir()
    assert server.result("fs/watch", {"watchId": "w1", "path": f"{root}/./"}) == {"path": str(root)}

    new = root / "new.txt"
    new.write_text("hello")
    assert expect(server, "w1", new) == [[str(new)]]
    new.write_text("changed")
    assert expect(server, "w1", new) == [[str(new)]]
    (root / "nested" / "deep.txt").write_text("not a direct child")
    new.unlink()
    assert expect(server, "w1", new) == [[str(new)]]

    old, renamed = root / "old", root / "renamed"
    old.write_text("x")
    # The nested file was never reported (watches are not recursive): one watch reports in
    # order, so it would have come before `old`.
    assert expect(server, "w1", old) == [[str(old)]]
    old.rename(renamed)
    assert expect(server, "w1", old, renamed)[-1] == [str(old), str(renamed)]

    assert server.result("fs/unwatch", {"watchId": "w1"}) == {}
    (root / "after.txt").write_text("unwatched")
    quiet(server)


def test_file_watch_survives_atomic_replace(watch_server: StdioServer, tmp_path: Path) -> None:
    server, target = watch_server, tmp_path / "config.toml"
    target.write_text("a = 1\n")
    settle(server)
    assert server.result("fs/watch", {"watchId": "f", "path": str(target)}) == {"path": str(target)}
    for round_ in range(2):  # the second replace proves the watch followed the new file
        temp = tmp_path / f".config.toml.{round_}.tmp"
        temp.write_text(f"a = {round_ + 2}\n")
        os.replace(temp, target)
        assert expect(server, "f", target) == [[str(target)]]
    (tmp_path / "sibling.txt").write_text("not watched")
    target.write_text("a = 9\n")
    # The sibling was not reported: it would have come first, or with the target.
    assert expect(server, "f", target) == [[str(target)]]


def test_missing_path_is_reported_when_it_appears(watch_server: StdioServer, tmp_path: Path):
    server = watch_server
    target = tmp_path / "later" / "deeper" / "HEAD"
    assert server.result("fs/watch", {"watchId": "m", "path": str(target)}) == {"path": str(target)}
    target.parent.mkdir(parents=True)
    target.write_text("ref: refs/heads/main\n")
    # The directories on the way are not the watched path: nothing came before the file.
    assert expect(server, "m", target) == [[str(target)]]
    target.unlink()
    assert expect(server, "m", target) == [[str(target)]]


def test_quick_writes_are_batched(watch_server: StdioServer, tmp_path: Path) -> None:
    server, root = watch_server, tmp_path / "burst"
    root.mkdir()
    server.result("fs/watch", {"watchId": "b", "path": str(root)})
    files = [root / f"f{i}" for i in range(30)]
    for path in files:
        path.write_text("x")
        time.sleep(0.003)
    batches = expect(server, "b", *files)
    assert len(batches) <= 3, batches
    for batch in batches:
        assert batch == sorted(batch, key=lambda p: p.split("/"))  # sorted, each path once
        assert len(batch) == len(set(batch))
    # Nothing more for the burst: the next change is reported alone.
    last = root / "after-the-burst"
    last.write_text("x")
    assert expect(server, "b", last) == [[str(last)]]


def test_closing_the_connection_drops_watches(watch_server: StdioServer, tmp_path: Path) -> None:
    server = watch_server
    for index in range(3):
        server.result("fs/watch", {"watchId": f"w{index}", "path": str(tmp_path)})
    (tmp_path / "x").write_text("x")
    assert server.close() == 0
    log = "".join(server.stderr_lines)
    assert "Traceback" not in log and "ERROR" not in log, log


def test_watch_errors_match_the_reference(server: StdioServer, tmp_path: Path) -> None:
    assert server.result("fs/watch", {"watchId": "w1", "path": str(tmp_path)}) == {
        "path": str(tmp_path)
    }
    assert server.error("fs/watch", {"watchId": "w1", "path": str(tmp_path)}) == {
        "code": -32600,
        "message": "watchId already exists: w1",
    }
    assert server.error("fs/watch", {"watchId": "w2", "path": "rel/x"}) == {
        "code": -32600,
        "message": "Invalid request: AbsolutePathBuf deserialized without a base path",
    }
    assert server.error("fs/watch", {"path": str(tmp_path)})["message"] == (
        "Invalid request: missing field `watchId`"
    )
    assert server.result("fs/unwatch", {"watchId": "never-watched"}) == {}
    assert server.result("fs/unwatch", {"watchId": "w1"}) == {}
    # Once unwatched, the id is free again.
    assert server.result("fs/watch", {"watchId": "w1", "path": str(tmp_path)}) == {
        "path": str(tmp_path)
    }


# --------------------------------------------------------------------------- two connections


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_watch_ids_belong_to_their_connection(
    codex_home: Path, tmp_path: Path, backend: str
) -> None:
    disabled = ["watchfiles"] if backend == "polling" else []
    kernel = Kernel(codex_home=codex_home, disabled_plugins=disabled)
    assert kernel.fs_watchers[0].name == backend
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()

    async def next_change(client: Client) -> dict[str, Any]:
        params: dict[str, Any] = await client.wait_for("fs/changed", timeout=WAIT)
        return params

    async with kernel, kernel.connect() as first:
        await first.initialize()
        await first.request("fs/watch", {"watchId": "same", "path": str(a_dir)})
        async with kernel.connect() as second:
            await second.initialize()
            await second.request("fs/watch", {"watchId": "same", "path": str(b_dir)})
            assert sorted(len(watching.active_watches(c)) for c in kernel.connections) == [1, 1]

            (b_dir / "only-b").write_text("x")
            assert await next_change(second) == {
                "watchId": "same",
                "changedPaths": [str(b_dir / "only-b")],
            }
            (a_dir / "only-a").write_text("x")
            assert await next_change(first) == {
                "watchId": "same",
                "changedPaths": [str(a_dir / "only-a")],
            }
        # The second client left: its watch went with it, the first one's keeps working.
        with anyio.fail_after(WAIT):
            while len(kernel.connections) > 1:
                await anyio.sleep(0.01)
        assert [watching.active_watches(c) for c in kernel.connections] == [["same"]]
        assert len(watching._watches) == 1
        with pytest.raises(RpcError, match="watchId already exists: same"):
            await first.request("fs/watch", {"watchId": "same", "path": str(b_dir)})
        (a_dir / "again").write_text("x")
        assert (await next_change(first))["changedPaths"] == [str(a_dir / "again")]
