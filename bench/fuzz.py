#!/usr/bin/env python3
"""The long hostile-input run: 100,000 messages per transport, and what the server did with them.

    python bench/fuzz.py                          # stdio and ws, 100,000 each; writes the page
    python bench/fuzz.py --count 5000 --no-write  # a quick look
    python bench/fuzz.py --reference              # the official server too, side by side

The messages come from ``codex_core.testing.hostile`` (the generator the test suite uses, with
its expectations taken from the official server); each transport gets the same stream from the
same seed, over one connection to a fresh server (temp ``CODEX_HOME``, temp cwd). Counted:
crashes, connections the server closed, well-formed requests not answered or answered twice,
replies to what must get none, failed probes, throughput, and the server's peak resident size.
The result goes into its own section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sections import write_section

from codex_core.testing import hostile
from codex_core.testing.reference import reference_server_command

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "performance.md"
OURS = [sys.executable, "-m", "codex_core"]


@dataclass
class Outcome:
    server: str
    transport: str
    report: hostile.Report
    peak_rss: int  # bytes, 0 when unknown


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _peak_rss(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return int(status.split("VmHWM:")[1].split()[0]) * 1024


async def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}) before listening")
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)  # polling for the listener, nothing is decided by it
        else:
            writer.close()
            return


async def run_one(
    label: str, argv: list[str], transport: str, cases: list[hostile.Case]
) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        cwd = hostile.serve_dir(Path(tmp) / "cwd")
        env = dict(os.environ, CODEX_HOME=str(home), RUST_LOG="error")
        if transport == "stdio":
            stdio = await hostile.StdioLink.start(argv, env, cwd)
            report = await hostile.run(stdio, cases, cwd=cwd)
            peak = _peak_rss(stdio.process.pid)
            await stdio.aclose()
            return Outcome(label, transport, report, peak)
        port = _free_port()
        process = subprocess.Popen(
            [*argv, "--listen", f"ws://127.0.0.1:{port}"],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            await _wait_listening(port, process, 30)
            link = await hostile.WebSocketLink.connect(
                f"ws://127.0.0.1:{port}", lambda: process.poll() is None
            )
            report = await hostile.run(link, cases, cwd=cwd)
            peak = _peak_rss(process.pid)
            await link.aclose()
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        return Outcome(label, transport, report, peak)


def row(outcome: Outcome) -> str:
    report = outcome.report
    probes = sorted(report.probe_ms)
    p50 = f"{statistics.median(probes):.1f}" if probes else "-"
    p99 = f"{probes[int(0.99 * (len(probes) - 1))]:.1f}" if probes else "-"
    rss = f"{outcome.peak_rss / 2**20:.0f}" if outcome.peak_rss else "-"
    cells = [
        outcome.server,
        outcome.transport,
        f"{report.messages:,}",
        "1" if report.crashed else "0",
        "1" if report.closed else "0",
        str(len(report.missing)),
        str(len(report.duplicated)),
        str(len(report.unexpected) + report.foreign),
        f"{report.probes - len(report.probe_failures)}/{report.probes}",
        f"{p50} / {p99}",
        f"{report.throughput:,.0f}",
        f"{report.seconds:.0f}",
        rss,
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| server | transport | messages | crashes | closed connections | missing replies "
    "| duplicate replies | replies to what gets none | probes ok | probe ms p50 / p99 "
    "| messages/s | seconds | peak RSS MiB |\n"
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)


def render(outcomes: list[Outcome], args: argparse.Namespace) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    rows = "\n".join(row(outcome) for outcome in outcomes)
    problems = [o for o in outcomes if not o.report.ok and o.server == "codex-core"]
    verdict = (
        "codex-core: no crash, no closed connection, every well-formed request answered exactly "
        "once, nothing else answered, every probe answered."
        if not problems
        else "codex-core FAILED: " + "; ".join(o.report.summary() for o in problems)
    )
    theirs = [o for o in outcomes if o.server == "reference"]
    if theirs:
        met = all(o.report.ok for o in theirs)
        verdict += (
            " The reference meets the same expectations"
            + (" (they are its behaviour)." if met else ": it does NOT, see its rows.")
            + " Over stdio it gets the stream without the invalid-UTF-8 cases, which end its"
            " stdio session by design (it stops reading at the first invalid line)."
        )
    verdict = textwrap.fill(verdict, width=96)
    return f"""## Hostile input

Measured with `python bench/fuzz.py` on {datetime.now(UTC):%Y-%m-%d}, {machine}:
{args.count:,} cases from seed {args.seed} (`codex_core.testing.hostile`, the generator of
`tests/test_hostile.py`; big strings of {args.huge / 2**20:g} MiB) sent over one connection
per transport to a fresh server, at most 16 requests awaiting an answer.

{HEADER}
{rows}

{verdict}

"Messages" counts every line or frame sent (a duplicate-id case sends two); probes
(`fs/getMetadata`, `config/read`, one every 40-60 cases) wait for their answer before the next
case goes out, so their latency is the server's response time under the stream. Peak RSS is
the server's `VmHWM` at the end of the run.
"""


async def amain(args: argparse.Namespace) -> int:
    transports = [t for t in args.transports.split(",") if t]
    servers = [("codex-core", OURS)]
    if args.reference:
        command = reference_server_command()
        if command is None:
            print("the reference is not installed (python -m codex_core.testing.reference)")
            return 1
        servers.append(("reference", command))
    outcomes: list[Outcome] = []
    for transport in transports:
        for label, argv in servers:
            exclude = ("non_utf8",) if label == "reference" and transport == "stdio" else ()
            cases = hostile.generate(args.count, args.seed, huge=args.huge, exclude=exclude)
            print(f"{label} over {transport}: {len(cases):,} cases", file=sys.stderr, flush=True)
            outcome = await run_one(label, argv, transport, cases)
            print(outcome.report.summary(), file=sys.stderr, flush=True)
            outcomes.append(outcome)
    print(HEADER)
    for outcome in outcomes:
        print(row(outcome))
    if not args.no_write:
        write_section(PAGE, "fuzz", render(outcomes, args))
        print(f"wrote {PAGE}", file=sys.stderr)
    return 0 if all(o.report.ok for o in outcomes if o.server == "codex-core") else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000, help="cases per transport")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--huge", type=int, default=1 << 20, help="big-string size, bytes")
    parser.add_argument("--transports", default="stdio,ws")
    parser.add_argument("--reference", action="store_true", help="run the official server too")
    parser.add_argument("--no-write", action="store_true", help="leave docs/performance.md alone")
    args = parser.parse_args()
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
