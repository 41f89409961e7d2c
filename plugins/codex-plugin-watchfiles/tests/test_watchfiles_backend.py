"""The watchfiles backend on its own: one hub for every watch, and what it reports.

The protocol-level behaviour (fs/watch through a real server, both backends) is tested in
codex-core's ``tests/test_fs_watch.py``; here the kit's in-process kernel and client
(``codex_kernel_factory``, ``codex_client``) check that the plugin is the one serving it.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import anyio
import pytest
from codex_plugin_watchfiles import WatchfilesWatcher

from codex_core.client import Client
from codex_core.kernel import Kernel
from codex_core.testing.pytest_plugin import KernelFactory

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform != "linux", reason="inotify semantics"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def hub_threads() -> int:
    return sum(thread.name == "codex-watchfiles" for thread in threading.enumerate())


async def test_is_the_preferred_backend(codex_kernel_factory: KernelFactory) -> None:
    kernel = codex_kernel_factory()
    assert [watcher.name for watcher in kernel.fs_watchers][:2] == ["watchfiles", "polling"]
    fallback = codex_kernel_factory(disabled_plugins=["watchfiles"])
    assert [watcher.name for watcher in fallback.fs_watchers] == ["polling"]


async def test_many_watches_share_one_thread_that_stops_when_idle(tmp_path: Path) -> None:
    watcher = WatchfilesWatcher()
    seen: dict[int, list[str]] = {}
    paths = [tmp_path / f"file{index}" for index in range(40)]  # > 128 would exhaust inotify

    async def watch(index: int, armed: anyio.Event) -> None:
        async for _ in watcher.watch(paths[index], lambda p: seen.setdefault(index, []).extend(p)):
            armed.set()

    before = hub_threads()
    async with anyio.create_task_group() as tasks:
        for index in range(len(paths)):
            armed = anyio.Event()
            tasks.start_soon(watch, index, armed)
            with anyio.fail_after(5):
                await armed.wait()
        assert hub_threads() == before + 1
        paths[7].write_text("x")
        paths[31].write_text("y")
        with anyio.fail_after(5):
            while len(seen) < 2:
                await anyio.sleep(0.02)
        assert seen == {7: [str(paths[7])], 31: [str(paths[31])]}
        tasks.cancel_scope.cancel()
    with anyio.fail_after(5):
        while hub_threads() > before:
            await anyio.sleep(0.05)


async def test_path_under_missing_directories(tmp_path: Path) -> None:
    watcher = WatchfilesWatcher()
    target = tmp_path / "a" / "b" / "c.txt"
    seen: list[str] = []
    async with anyio.create_task_group() as tasks:
        armed = anyio.Event()

        async def run() -> None:
            async for _ in watcher.watch(target, seen.extend):
                armed.set()

        tasks.start_soon(run)
        with anyio.fail_after(5):
            await armed.wait()
        # Created in one go, faster than the hub can re-arm one level at a time.
        target.parent.mkdir(parents=True)
        target.write_text("x")
        with anyio.fail_after(5):
            while not seen:
                await anyio.sleep(0.02)
        assert set(seen) == {str(target)}
        tasks.cancel_scope.cancel()


async def test_serves_fs_watch_in_a_kernel(
    codex_kernel: Kernel, codex_client: Client, tmp_path: Path
) -> None:
    assert codex_kernel.fs_watchers[0].name == "watchfiles"
    before = hub_threads()
    watched = tmp_path / "watched"
    watched.mkdir()
    reply = await codex_client.request("fs/watch", {"watchId": "w1", "path": str(watched)})
    assert reply == {"path": str(watched)}
    (watched / "new.txt").write_text("x")
    changed = await codex_client.wait_for("fs/changed", timeout=5)
    assert changed == {"watchId": "w1", "changedPaths": [str(watched / "new.txt")]}
    assert await codex_client.request("fs/unwatch", {"watchId": "w1"}) == {}
    with anyio.fail_after(5):  # the hub stops when idle (other tests count its threads)
        while hub_threads() > before:
            await anyio.sleep(0.05)
