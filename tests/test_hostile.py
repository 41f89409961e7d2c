"""Nothing a client sends ends the server or its connection (``codex_core.testing.hostile``).

Each test starts a real server (stdio, or a websocket on 127.0.0.1), sends a few thousand
hostile messages from a fixed seed, and checks what a client relies on: the process stays up,
the connection stays open, every well-formed request is answered exactly once, nothing else is
answered, and the probes keep succeeding. What "well-formed" means follows the official server
(the expectations are in the generator, checked against it). ``bench/fuzz.py`` is the long run.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from codex_core.testing import hostile
from codex_core.testing.pytest_plugin import WsServerFactory, server_command

SEEDS = (7, 1312)
COUNT = 1500


def test_the_stream_depends_only_on_its_seed() -> None:
    first = hostile.generate(400, seed=3)
    assert first == hostile.generate(400, seed=3)
    assert first != hostile.generate(400, seed=4)
    assert {case.kind for case in hostile.generate(3000, seed=3)} == {*hostile.KINDS, "probe"}


def _check(report: hostile.Report, cases: list[hostile.Case]) -> None:
    assert report.ok, report.summary()
    assert report.cases == len(cases)
    assert report.probes == Counter(case.kind for case in cases)["probe"] > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_stdio_survives_hostile_input(seed: int, codex_env: dict[str, str], tmp_path: Path) -> None:
    cases = hostile.generate(COUNT, seed)
    cwd = hostile.serve_dir(tmp_path / "cwd")

    async def go() -> hostile.Report:
        link = await hostile.StdioLink.start(server_command(), codex_env, cwd)
        try:
            return await hostile.run(link, cases, cwd=cwd)
        finally:
            await link.aclose()

    _check(asyncio.run(go()), cases)


@pytest.mark.parametrize("seed", SEEDS)
def test_websocket_survives_hostile_input(
    seed: int, codex_ws_server_factory: WsServerFactory, tmp_path: Path
) -> None:
    cases = hostile.generate(COUNT, seed)
    cwd = hostile.serve_dir(tmp_path / "cwd")
    server = codex_ws_server_factory()

    async def go() -> hostile.Report:
        link = await hostile.WebSocketLink.connect(
            server.url, lambda: server.process.poll() is None
        )
        try:
            return await hostile.run(link, cases, cwd=cwd)
        finally:
            await link.aclose()

    _check(asyncio.run(go()), cases)
