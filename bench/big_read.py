#!/usr/bin/env python3
"""A big ``fs/readFile`` over stdio, codex-core and the reference side by side.

    python bench/big_read.py                 # a 500 MB file, 3 interleaved rounds
    python bench/big_read.py --mb 100 --rounds 5

For each server: seconds from request to the reply's last byte (read by a client that does
nothing but read), the server's RSS two seconds after the last reply, and its peak RSS. The
servers run alternately so both see the same machine state; on a shared machine only the
ratio of one run means anything. The results go to the ``big-read`` section of
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sections import write_section

PAGE = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
OURS = [sys.executable, "-m", "codex_core"]
REFERENCE = ["codex-peer", "app-server"]


class Server:
    def __init__(self, command: list[str]) -> None:
        home = tempfile.mkdtemp(prefix="big-read-home-")
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "CODEX_HOME": home},
            bufsize=0,
        )
        assert self.process.stdout is not None
        self.fd = self.process.stdout.fileno()
        params = {"clientInfo": {"name": "bench", "title": None, "version": "1"}}
        self.send({"id": 0, "method": "initialize", "params": params})
        self.send({"method": "initialized"})
        self.drain(1.5)

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            if not os.read(self.fd, 1 << 20):
                return

    def read_file(self, request_id: int, path: Path, size: int) -> float:
        started = time.perf_counter()
        self.send({"id": request_id, "method": "fs/readFile", "params": {"path": str(path)}})
        received = 0
        while True:
            chunk = os.read(self.fd, 1 << 22)
            if not chunk:
                raise SystemExit("the server exited")
            received += len(chunk)
            if received > size and chunk.endswith(b"\n"):
                return time.perf_counter() - started

    def memory_mb(self, key: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) // 1024
        raise KeyError(key)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=500, help="file size in MB (default 500)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    servers = {"codex-core": OURS}
    if shutil.which(REFERENCE[0]):
        servers["reference"] = REFERENCE
    with tempfile.TemporaryDirectory(prefix="big-read-") as folder:
        path = Path(folder) / "big.bin"
        size = args.mb * 1_000_000
        with path.open("wb") as file:
            for _ in range(args.mb):
                file.write(os.urandom(1_000_000))
        running = {name: Server(command) for name, command in servers.items()}
        times: dict[str, list[float]] = {name: [] for name in servers}
        for round_number in range(1, args.rounds + 1):
            for name, server in running.items():
                times[name].append(server.read_file(round_number, path, size))
        time.sleep(2)
        rows = []
        for name, server in running.items():
            rounds = ", ".join(f"{t:.2f}" for t in times[name])
            rows.append(
                f"| {name} | {statistics.median(times[name]):.2f} ({rounds}) | "
                f"{server.memory_mb('VmRSS')} | {server.memory_mb('VmHWM')} |"
            )
            server.stop()
    body = "\n".join(
        [
            "## A big `fs/readFile`",
            "",
            f"Measured with `python bench/big_read.py` on {datetime.now(UTC):%Y-%m-%d}, "
            f"{platform.machine()}, {os.cpu_count()} cores: one {args.mb} MB file read "
            f"{args.rounds} times over stdio, the servers alternating.",
            "",
            "| server | seconds, median (rounds) | RSS after (MB) | peak RSS (MB) |",
            "| --- | ---: | ---: | ---: |",
            *rows,
        ]
    )
    print(body)
    write_section(PAGE, "big-read", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
