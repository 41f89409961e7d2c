#!/usr/bin/env python3
"""Benchmark codex-core and the reference server side by side, and write docs/performance.md.

    python bench/run.py                      # startup, rtt, pipelined; 3 interleaved rounds
    python bench/run.py --scenario startup --rounds 5

Runs ``bench/appserver_bench.py`` alternately against codex-core (``python -m codex_core`` with
this Python) and, when it is installed, the pinned reference (``codex_core.testing.reference``),
so both see the same machine state; only ratios from one run mean anything on a noisy machine.
The server runs as an installed Python program normally does, with bytecode caching on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sections import write_section

from codex_core.cli import server_command
from codex_core.testing.reference import missing_reason, reference_server_command

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "bench" / "appserver_bench.py"
DOCS = {"stdio": ROOT / "docs" / "performance.md", "ws": ROOT / "docs" / "performance-websocket.md"}
#: The harness and the servers it starts, with bytecode caching on (as an installed program).
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def measure(server: list[str], label: str, scenario: str, transport: str, out: Path) -> None:
    if transport == "ws":
        server = [*server, "--listen", "ws://127.0.0.1:{port}"]
    command = [sys.executable, str(HARNESS), "--server", shlex.join(server), "--label", label]
    command += ["--scenario", scenario, "--transport", transport, "--json", str(out)]
    subprocess.run(command, check=True, env=ENV)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", default="startup,rtt,pipelined")
    parser.add_argument(
        "--transport",
        choices=["stdio", "ws"],
        default="stdio",
        help="ws needs codex-plugin-websocket (e.g. --transport ws --scenario rtt,ws-fanout)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-write", action="store_true", help="print the table, leave the docs alone"
    )
    args = parser.parse_args()
    servers = [(server_command(), "codex-core")]
    reference = reference_server_command()
    if reference is not None:
        servers.append((reference, "reference"))
    else:
        print(f"{missing_reason()}: measuring codex-core only", file=sys.stderr)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "results.jsonl"
        for _ in range(args.rounds):
            for server, label in servers:
                measure(server, label, args.scenario, args.transport, out)
        table = subprocess.run(
            [sys.executable, str(HARNESS), "--report", str(out)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    help_ms = help_time(args.rounds) if "startup" in args.scenario.split(",") else None
    print(table)
    if help_ms is not None:
        print(f"codex-app-server --help: {help_ms:.0f} ms")
    if not args.no_write:
        write_section(DOCS[args.transport], "protocol", render(table, results, args, help_ms))
        print(f"wrote {DOCS[args.transport]}", file=sys.stderr)
    return 0


def help_time(rounds: int) -> float:
    """Median wall time, in ms, of ``codex-app-server --help`` (it loads every plugin, which
    may add options), over at least five runs after one warm-up."""
    times = []
    with tempfile.TemporaryDirectory() as home:
        env = {**ENV, "CODEX_HOME": home}
        for run in range(max(rounds, 5) + 1):
            start = time.perf_counter()
            subprocess.run(
                [*server_command(), "--help"], env=env, stdout=subprocess.DEVNULL, check=True
            )
            if run:
                times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def load_line(results: list[dict[str, Any]]) -> str:
    """The machine's 1-minute load average while the scenarios ran, from the harness's records."""
    loads = sorted(float(r["loadavg_1m"]) for r in results if r.get("loadavg_1m") is not None)
    if not loads:
        return ""
    return (
        f"Machine load during the run (1-minute load average): {loads[0]:.1f} to {loads[-1]:.1f} "
        f"on {os.cpu_count()} cores."
    )


def median_of(results: list[dict[str, Any]], label: str, scenario: str, key: str) -> float | None:
    values = sorted(
        float(r[key])
        for r in results
        if r.get("label") == label and r.get("scenario") == scenario and r.get(key)
    )
    return values[len(values) // 2] if values else None


def ratios(results: list[dict[str, Any]], help_ms: float | None) -> str:
    """The targets (issue 15), as ratios of medians over the rounds, and ``--help``'s time."""
    lines = []
    for scenario, key, what, target in (
        ("startup", "init_ms_p50", "spawn to initialize reply", "at most 1.0x the reference"),
        ("startup", "ready_ms_p50", "spawn to the reply after initialize", "no target yet"),
        ("pipelined", "ok_rps", "pipelined successful req/s", "at least 0.9x the reference"),
    ):
        ours = median_of(results, "codex-core", scenario, key)
        theirs = median_of(results, "reference", scenario, key)
        if ours and theirs:
            lines.append(
                f"- {what}: codex-core {ours:,.0f}, reference {theirs:,.0f}: "
                f"**{ours / theirs:.2f}x** (target: {target})"
            )
    if help_ms is not None:
        lines.append(f"- `codex-app-server --help`: {help_ms:,.0f} ms (target: under 300 ms)")
    return "\n".join(lines) or "- (no startup or pipelined runs of both servers here)"


def render(
    table: str, results: list[dict[str, Any]], args: argparse.Namespace, help_ms: float | None
) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    return f"""## Protocol round trips

Measured with `python bench/run.py` ({args.rounds} interleaved rounds of `{args.scenario}` over
{args.transport}) on {datetime.now(UTC):%Y-%m-%d}, {machine}: codex-core
(`python -m codex_core`) and the reference (the official Codex 0.169.0, `codex app-server`) in
the same run, alternating.
Only the ratios between the two columns are meaningful; absolute numbers move with the machine.
{load_line(results)}

{table}

What the scenarios measure (see `bench/appserver_bench.py`): `startup` is process spawn to the
`initialize` reply, then to the reply of the request right after it (`thread/loaded/list`: a
server may answer `initialize` before it can serve anything else), and idle memory; `rtt` is
sequential `fs/getMetadata` round trips; `pipelined` keeps a window of 256 `fs/getMetadata`
requests outstanding and counts `-32001` answers separately; `ws-fanout` opens 100 and 1,000
websocket connections at once, each initializing and then doing 20 round trips.

Against the targets (medians of the rounds):

{ratios(results, help_ms)}

<!-- raw results: {len(results)} scenario runs -->
"""


if __name__ == "__main__":
    sys.exit(main())
