"""Nothing a client sends ends the server or its connection (``codex_core.testing.hostile``).

Each test starts a real server (stdio, or a websocket on 127.0.0.1), sends a few thousand
hostile messages from a fixed seed, and checks what a client relies on: the process stays up,
the connection stays open, every well-formed request is answered exactly once, nothing else is
answered, and the probes keep succeeding. What "well-formed" means follows the official server
(the expectations are in the generator, checked against it). ``bench/fuzz.py`` is the long run.
"""

from __future__ import annotations

import asyncio
import os
import sys
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


# A server that answers whatever carries an id (Python's json, no serde rules), and dies at the
# first nested array: what this change fixed, as a stand-in the runner must see through.
_NAIVE_SERVER = """
import json, sys
for line in sys.stdin:
    if '[[[[' in line:
        sys.exit(1)
    try:
        message = json.loads(line)
    except ValueError:
        continue
    if isinstance(message, dict) and 'id' in message and 'method' in message:
        print(json.dumps({'id': message['id'], 'result': {}}), flush=True)
"""


def test_the_runner_sees_wrong_answers_and_a_crash(tmp_path: Path) -> None:
    cases = [c for c in hostile.generate(400, seed=5) if c.kind != "deep_nest"]
    cwd = hostile.serve_dir(tmp_path / "cwd")
    argv = [sys.executable, "-c", _NAIVE_SERVER]

    async def go(cases: list[hostile.Case]) -> hostile.Report:
        link = await hostile.StdioLink.start(argv, dict(os.environ), cwd)
        try:
            return await hostile.run(link, cases, cwd=cwd, timeout=10)
        finally:
            await link.aclose()

    wrong = asyncio.run(go(cases))
    assert not wrong.ok and not wrong.crashed
    kinds = {case.kind for case in cases if case.index in wrong.unexpected}
    assert {"nan", "duplicate_key", "trace"} <= kinds

    deep = hostile.generate(2000, seed=5)
    first = next(c.index for c in deep if c.kind == "deep_nest" and b"[[[[" in c.payloads[0])
    crashed = asyncio.run(go(deep[: first + 5]))
    assert crashed.crashed and not crashed.ok
