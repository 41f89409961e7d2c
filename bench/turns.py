#!/usr/bin/env python3
"""Per-turn server overhead over a scripted 50-turn conversation, codex-core vs the reference.

    python bench/turns.py                    # 3 interleaved rounds, writes docs/performance.md
    python bench/turns.py --rounds 1 --no-write

Each round starts ``codex-app-server`` and (when installed: ``python3 dev.py setup``) the
pinned official ``codex app-server`` (``codex_core.testing.reference``) in turn,
each with a fresh ``CODEX_HOME`` and its own ``ScriptedModelServer``, and drives one thread
through the same 50 turns over stdio: short streamed answers, some with reasoning, some with an
``exec_command`` round trip (``true``, no approval). A turn's *server overhead* is the time from
sending ``turn/start`` to reading its ``turn/completed``, minus the time the model server spent
serving that turn's requests (request read to stream sent), so what is left is the server's own
work: building requests, parsing the stream, running the tool, writing the rollout and the
notifications. Only the ratios between the two columns mean anything on a shared machine.

After the conversation, two more operations are timed the same way (request sent to its
``turn/completed``, minus the model's time): ``thread/compact/start`` on the 50-turn thread (the
model answers the summary request), and ``review/start`` of the uncommitted changes of a small
git repository, on a thread of its own there (the model answers with findings as JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sections import write_section

from codex_core.cli import server_command
from codex_core.testing import ModelResponse, ScriptedModelServer, function_call, message, reasoning
from codex_core.testing.model_server import OutputItem
from codex_core.testing.pytest_plugin import StdioServer
from codex_core.testing.reference import missing_reason, reference_server_command

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "performance.md"
#: The command line of each server; the reference's is None where it is not installed.
SERVERS = {"codex-core": server_command(), "reference": reference_server_command()}
#: No approvals and no sandbox, so a tool call is a plain round trip on both servers.
POLICY = ["-c", 'approval_policy="never"', "-c", 'sandbox_mode="danger-full-access"']
#: The conversation's rhythm, repeated: 3 in 5 turns a plain answer, 1 with reasoning, 1 a tool.
RHYTHM = ("text", "text", "reasoning", "text", "tool")
#: Seconds between the events of a model stream, so the model takes time the server can overlap.
EVENT_DELAY = 0.002
TURN_TIMEOUT = 60.0
#: What the model answers a compaction's summary request and a review (its JSON findings).
SUMMARY = "Summary: fifty short questions, all answered."
FINDINGS = json.dumps({
    "findings": [{"title": "[P2] Magic number", "body": "Name the constant.",
                  "confidence_score": 0.6, "priority": 2,
                  "code_location": {"absolute_file_path": "app.py",
                                    "line_range": {"start": 1, "end": 1}}}],
    "overall_correctness": "patch is correct",
    "overall_explanation": "One nit.",
    "overall_confidence_score": 0.8,
})  # fmt: skip
CLOCK_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class BenchError(Exception):
    """A server did not do what the script expects; the message says which turn and why."""


def conversation(turns: int) -> list[str]:
    """The kind of each turn."""
    return [RHYTHM[n % len(RHYTHM)] for n in range(turns)]


def script(kind: str, number: int) -> list[ModelResponse]:
    """The model's answers for one turn: one response, two for a tool round trip."""
    chunks = ["Answer", f" {number}:", " all", " good."]
    answer = message("".join(chunks), chunks=chunks)
    items: list[list[OutputItem]] = [[answer]]
    if kind == "reasoning":
        items = [[reasoning("Thinking it over."), answer]]
    elif kind == "tool":
        items = [[function_call("exec_command", {"cmd": "true"})], [answer]]
    return [ModelResponse(response, delay=EVENT_DELAY) for response in items]


@dataclass
class Run:
    """One server's turns in one round."""

    label: str
    kinds: list[str] = field(default_factory=list)
    round_trips: list[float] = field(default_factory=list)
    overheads: list[float] = field(default_factory=list)
    model_time: float = 0.0
    wall: float = 0.0
    cpu: float | None = None
    children_cpu: float | None = None
    #: (round trip, server overhead) of ``thread/compact/start`` and of ``review/start``.
    compaction: tuple[float, float] | None = None
    review: tuple[float, float] | None = None
    #: The 1-minute load average when the run ended (the machine is shared).
    load: float | None = None


def cpu_times(pid: int) -> tuple[float, float] | None:
    """(process, reaped children) CPU seconds from ``/proc/PID/stat``; None without procfs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is fields[0]
    utime, stime, cutime, cstime = (int(v) / CLOCK_TICK for v in fields[11:15])
    return utime + stime, cutime + cstime


def model_seconds(model: ScriptedModelServer, first: int, start: float, end: float) -> float:
    """Time in [start, end] during which the model server was serving a request (from
    ``model.requests[first:]``; overlapping requests count once)."""
    deadline = time.monotonic() + 5
    spans: list[tuple[float, float]] = []
    for request in model.requests[first:]:
        while request.finished_at is None:  # the handler thread may not have stamped it yet
            if time.monotonic() > deadline:
                raise BenchError(f"model request {request.path} never finished")
            time.sleep(0.001)
        spans.append((max(start, request.received_at), min(end, request.finished_at)))
    total, reached = 0.0, start
    for begin, finish in sorted(spans):
        begin = max(begin, reached)
        if finish > begin:
            total += finish - begin
            reached = finish
    return total


def turn(server: StdioServer, thread_id: str, number: int) -> tuple[float, float]:
    """Run one turn; (turn/start sent, turn/completed read) as ``perf_counter`` readings."""
    request_id = 10_000 + number
    text = {"type": "text", "text": f"Question {number}?", "text_elements": []}
    params = {"threadId": thread_id, "input": [text]}
    sent = time.perf_counter()
    server.send({"id": request_id, "method": "turn/start", "params": params})
    response = server.wait_response(request_id, TURN_TIMEOUT)
    if "result" not in response:
        raise BenchError(f"turn/start failed: {response.get('error')}")
    turn_id = response["result"]["turn"]["id"]
    completed = server.wait_notification("turn/completed", TURN_TIMEOUT)
    done = time.perf_counter()
    finished = completed["params"]["turn"]
    if finished["id"] != turn_id:
        raise BenchError(f"turn/completed for turn {finished['id']}, expected {turn_id}")
    if finished["status"] != "completed":
        raise BenchError(f"turn ended {finished['status']}: {finished.get('error')}")
    if server.server_requests:
        raise BenchError(f"unexpected server request {server.server_requests[0]['method']}")
    return sent, done


def check_tool(notifications: list[dict[str, Any]]) -> None:
    """A tool turn must have run the command (exit code 0), or it measured something else."""
    for note in notifications:
        item = note["params"].get("item", {}) if note["method"] == "item/completed" else {}
        if item.get("type") == "commandExecution":
            if item.get("exitCode") != 0:
                raise BenchError(f"the command failed: {item}")
            return
    raise BenchError("no commandExecution item completed")


def git_repository(folder: Path) -> None:
    """A repository with one commit and an uncommitted change: what the review looks at."""

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)

    folder.mkdir()
    git("init", "-q", "-b", "main")
    (folder / "app.py").write_text("TIMEOUT = 30\n")
    git("add", ".")
    git("-c", "user.email=bench@example.com", "-c", "user.name=bench", "commit", "-qm", "init")
    (folder / "app.py").write_text("TIMEOUT = 45\nRETRIES = 3\n")


def timed(
    server: StdioServer,
    model: ScriptedModelServer,
    method: str,
    params: dict[str, Any],
    item: str,
    answer: str,
) -> tuple[float, float]:
    """(round trip, server overhead) of a request that runs a turn: from sending it to its
    ``turn/completed``, and that minus the model's time. The turn must have completed an
    ``item`` of that type and the model must have been asked once and given ``answer``
    (else something else was measured)."""
    server.notifications.clear()
    seen = len(model.requests)
    sent = time.perf_counter()
    server.result(method, params, timeout=TURN_TIMEOUT)
    completed = server.wait_notification("turn/completed", TURN_TIMEOUT)
    done = time.perf_counter()
    if completed["params"]["turn"]["status"] != "completed":
        raise BenchError(f"{method}: the turn ended {completed['params']['turn']['status']}")
    types = [n["params"]["item"]["type"] for n in server.notifications
             if n["method"] == "item/completed"]  # fmt: skip
    if item not in types:
        raise BenchError(f"{method}: no {item} item completed (only {types})")
    asked = len(model.requests) - seen
    if asked != 1:
        raise BenchError(f"{method}: {asked} model requests, expected 1")
    if answer not in json.dumps(server.notifications):
        raise BenchError(f"{method}: the model's answer never reached the client")
    return done - sent, done - sent - model_seconds(model, seen, sent, done)


def run_server(label: str, turns: int) -> Run:
    run = Run(label)
    with (
        ScriptedModelServer() as model,
        tempfile.TemporaryDirectory(prefix="turns-home-") as home,
        tempfile.TemporaryDirectory(prefix="turns-cwd-") as cwd,
    ):
        kinds = conversation(turns)
        for number, kind in enumerate(kinds, 1):
            model.add(*script(kind, number))
        model.answer_matching(
            lambda request: any("CONTEXT CHECKPOINT COMPACTION" in text
                                for text in request.input_texts()),
            ModelResponse([message(SUMMARY)], delay=EVENT_DELAY),
        )  # fmt: skip
        model.answer_matching(
            lambda request: any("# Review guidelines:" in text
                                for text in request.input_texts("developer")),
            ModelResponse([message(FINDINGS)], delay=EVENT_DELAY),
        )  # fmt: skip
        repository = Path(cwd) / "repository"
        git_repository(repository)
        env = {**os.environ, **model.env, "CODEX_HOME": home}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # run as installed programs run
        argv = SERVERS[label]
        assert argv is not None, f"{label} is not installed"
        server = StdioServer([*argv, *model.config_args(), *POLICY], env, Path(cwd))
        try:
            server.initialize()
            # initialize and thread/start time out as AssertionError, reported below
            thread_id = server.result("thread/start", {}, timeout=TURN_TIMEOUT)["thread"]["id"]
            before = cpu_times(server.process.pid)
            first_sent = time.perf_counter()
            for number, kind in enumerate(kinds, 1):
                server.notifications.clear()
                seen = len(model.requests)
                try:
                    sent, done = turn(server, thread_id, number)
                    if kind == "tool":
                        check_tool(server.notifications)
                except (AssertionError, BenchError) as error:
                    asked = [r["method"] for r in server.server_requests]
                    hint = f" (the server asked: {', '.join(asked)})" if asked else ""
                    raise BenchError(f"{label}, turn {number} ({kind}): {error}{hint}") from None
                expected = 2 if kind == "tool" else 1
                if len(model.requests) - seen != expected:
                    raise BenchError(
                        f"{label}, turn {number} ({kind}): {len(model.requests) - seen} model "
                        f"requests, expected {expected}"
                    )
                waited = model_seconds(model, seen, sent, done)
                run.kinds.append(kind)
                run.round_trips.append(done - sent)
                run.overheads.append(done - sent - waited)
                run.model_time += waited
            run.wall = done - first_sent
            after = cpu_times(server.process.pid)
            if before and after:
                run.cpu, run.children_cpu = after[0] - before[0], after[1] - before[1]
            try:
                run.compaction = timed(server, model, "thread/compact/start",
                                       {"threadId": thread_id}, "contextCompaction",
                                       "")  # fmt: skip
                reviewed = server.result("thread/start", {"cwd": str(repository)},
                                         timeout=TURN_TIMEOUT)["thread"]["id"]  # fmt: skip
                target = {"type": "uncommittedChanges"}
                run.review = timed(server, model, "review/start",
                                   {"threadId": reviewed, "target": target},
                                   "exitedReviewMode", "Name the constant.")  # fmt: skip
            except (AssertionError, BenchError) as error:
                raise BenchError(f"{label}, compaction or review: {error}") from None
            run.load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        except AssertionError as error:
            raise BenchError(f"{label}: {error}") from None
        finally:
            server.close()
    return run


# --------------------------------------------------------------------------- report


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def of_kind(kind: str) -> Callable[[Run], float | None]:
    def overhead(run: Run) -> float | None:
        values = [o for o, k in zip(run.overheads, run.kinds, strict=True) if k == kind]
        return statistics.median(values) if values else None

    return overhead


def overhead_p50(run: Run) -> float:
    return statistics.median(run.overheads)


def server_cpu(run: Run) -> float | None:
    return run.cpu


MS = 1000.0
#: (row, unit scale, per-run value): each cell is the median of the rounds and their range.
ROWS: list[tuple[str, float, Callable[[Run], float | None]]] = [
    ("turn round trip p50 (ms)", MS, lambda r: statistics.median(r.round_trips)),
    ("**server overhead p50 (ms)**", MS, overhead_p50),
    ("server overhead p90 (ms)", MS, lambda r: percentile(r.overheads, 0.9)),
    ("server overhead max (ms)", MS, lambda r: max(r.overheads)),
    ("overhead p50, plain answer turns (ms)", MS, of_kind("text")),
    ("overhead p50, reasoning turns (ms)", MS, of_kind("reasoning")),
    ("overhead p50, exec_command turns (ms)", MS, of_kind("tool")),
    ("wall time, all turns (s)", 1.0, lambda r: r.wall),
    ("model server busy, all turns (ms)", MS, lambda r: r.model_time),
    ("server CPU (s)", 1.0, server_cpu),
    ("commands' CPU, reaped children (s)", 1.0, lambda r: r.children_cpu),
    ("`thread/compact/start` round trip (ms)", MS, lambda r: r.compaction and r.compaction[0]),
    ("`thread/compact/start` server overhead (ms)", MS,
     lambda r: r.compaction and r.compaction[1]),
    ("`review/start` round trip (ms)", MS, lambda r: r.review and r.review[0]),
    ("`review/start` server overhead (ms)", MS, lambda r: r.review and r.review[1]),
]  # fmt: skip


def cell_values(runs: list[Run], label: str, value: Callable[[Run], float | None]) -> list[float]:
    """One value per round of ``label``'s runs (rounds without it left out)."""
    return [v for v in (value(run) for run in runs if run.label == label) if v is not None]


def cell_median(runs: list[Run], label: str, value: Callable[[Run], float | None]) -> float | None:
    values = cell_values(runs, label, value)
    return statistics.median_low(values) if values else None


def cell(values: list[float]) -> str:
    if not values:
        return "n/a"
    digits = 2 if max(values) < 10 else 1 if max(values) < 100 else 0
    middle = statistics.median_low(values)
    return f"{middle:,.{digits}f} ({min(values):,.{digits}f}\N{EN DASH}{max(values):,.{digits}f})"


def table(runs: list[Run], labels: list[str]) -> str:
    lines = ["| metric | " + " | ".join(labels) + " |",
             "| --- |" + " ---: |" * len(labels)]  # fmt: skip
    for name, scale, value in ROWS:
        cells = [cell([v * scale for v in cell_values(runs, label, value)]) for label in labels]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratios(runs: list[Run]) -> str:
    """codex-core over the reference, as ratios of the medians over the rounds."""
    lines = []
    for what, value in (
        ("per-turn server overhead (p50)", overhead_p50),
        ("server CPU over the turns", server_cpu),
        ("`thread/compact/start` server overhead", lambda r: r.compaction and r.compaction[1]),
        ("`review/start` server overhead", lambda r: r.review and r.review[1]),
    ):
        ours, theirs = (cell_median(runs, label, value) for label in ("codex-core", "reference"))
        if ours is not None and theirs:
            lines.append(f"- {what}: codex-core is **{ours / theirs:.2f}x** the reference's")
    return "\n".join(lines) or "- (the reference was not measured)"


def load_note(runs: list[Run]) -> str:
    """The machine's load over the runs: it is shared, and the numbers move with it."""
    loads = sorted(run.load for run in runs if run.load is not None)
    if not loads:
        return ""
    return (f"The machine was shared and loaded: 1-minute load average {loads[0]:.1f} to "
            f"{loads[-1]:.1f} on {os.cpu_count()} cores at the ends of the runs.")  # fmt: skip


def render(runs: list[Run], labels: list[str], args: argparse.Namespace) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    counts = {kind: conversation(args.turns).count(kind) for kind in RHYTHM}
    return f"""## Turns

Measured with `python bench/turns.py` ({args.rounds} interleaved rounds of a {args.turns}-turn
conversation over stdio) on {datetime.now(UTC):%Y-%m-%d}, {machine}: codex-core
(`codex-app-server`) and the reference (`codex app-server`, the official Codex 0.169.0)
in the same run, alternating. Only the ratios between the two columns are meaningful; absolute
numbers move with the machine. {load_note(runs)}

{table(runs, labels)}

One thread, {args.turns} turns, the same script for both servers (a `ScriptedModelServer` on
loopback, {EVENT_DELAY * MS:g} ms between stream events; `approval_policy="never"`,
`sandbox_mode="danger-full-access"`): {counts["text"]} turns are a short answer streamed in
four chunks, {counts["reasoning"]} a reasoning summary and then the answer, {counts["tool"]} an
`exec_command` call of `true` and then the answer (two model requests).

A turn's **server overhead** is the time from sending `turn/start` to reading its
`turn/completed`, minus the time the model server was busy with that turn's requests (request
read to stream sent): the server's own work of building each request (the history grows every
turn), parsing the stream where it does not overlap the model's pauses, running the command,
writing the rollout and the notifications. Each cell is the median of the rounds (and their
range); p50, p90 and max are over one run's turns, the first (cold) turn included. CPU is the
server process's user+system time over the turns (`/proc/PID/stat`); the commands it ran are
its reaped children, counted apart.

Reading the rows: one turn in five runs a command, so p90 (and mostly max) falls on those
turns; plain and reasoning turns are the server alone. `exec_command` turns are dominated by
starting the command: both servers report `/bin/bash -lc true` and both run it from a shell
snapshot, the login environment captured once (the reference under
`$CODEX_HOME/shell_snapshots/`, codex-core's shell plugin in memory), so neither sources the
login profile per command; the children's CPU row is what remains. The reference also warns on
every turn that
`mock-model` has no model metadata; that is its normal path for a model it does not know.

The last four rows are two operations timed once per round after the conversation, the same
way (request sent to its `turn/completed`, minus the model's time): `thread/compact/start` on
the 50-turn thread (one model request, the summary, which replaces the history; the turn must
complete a `contextCompaction` item), and `review/start` of the uncommitted changes of a small
git repository (one commit, one changed file), on a new thread there (the server reads the
diff with git, the model answers with one finding as JSON; the turn must complete an
`exitedReviewMode` item with it). Each is one sample per round, so their ranges are wider.

{ratios(runs)}
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument(
        "--no-write", action="store_true", help="print the table, leave the docs alone"
    )
    args = parser.parse_args()
    if args.rounds < 1 or args.turns < 1:
        parser.error("--rounds and --turns must be at least 1")
    labels = [label for label, argv in SERVERS.items() if argv is not None]
    if "reference" not in labels:
        print(missing_reason(), file=sys.stderr)
    runs: list[Run] = []
    try:
        for number in range(1, args.rounds + 1):
            for label in labels:
                print(f"round {number}: {label}", file=sys.stderr)
                runs.append(run_server(label, args.turns))
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    print(table(runs, labels))
    print(ratios(runs))
    if not args.no_write:
        write_section(PAGE, "turns", render(runs, labels, args))
        print(f"wrote {PAGE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
