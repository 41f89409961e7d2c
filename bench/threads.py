#!/usr/bin/env python3
"""Stored-thread history at scale: list, page, read, resume, search and startup, side by side.

    python bench/threads.py                    # 1,000 threads, one round, prints the table
    python bench/threads.py --threads 10000 --rounds 3 --write
    python bench/threads.py --threads 100000 --repeats 4 --pages 8 --write   # fewer calls

Generates ``--threads`` stored threads in the official on-disk layout
(``codex_core.testing.stored_threads``: one rollout the pinned reference wrote for a scripted
turn, repeated with fresh ids, times, cwds and messages over six months, one in 20 archived,
one in 100 mentioning the search term; recorded under the ``openai`` provider, which both
servers list by default). Trees are cached under the temp dir by size, so only the first run
of a size pays for it (100,000 threads are about 4 GB and a few minutes).

Each round runs codex-core and the reference one after the other, each on its own fresh
hard-linked copy of the tree (the threads it resumes copied for real, since resuming appends
to them), and times over stdio, with only the protocol (so it measures any thread storage):

- startup: spawn to the reply of ``thread/list {limit: 25}`` sent right after ``initialize``,
  on a copy the server never saw (an index it keeps has to be built), then again on the same
  copy in a second process (an index it keeps is already there);
- ``thread/list {limit: 25}``: the first call (in the startup above) and the p50 of later ones
  (``--repeats`` calls, 20 by default, as for the other p50 rows; the searches get a quarter);
- paging: ``thread/list {limit: 25}`` following ``nextCursor`` for ``--pages`` pages (40),
  p50 per page;
- ``thread/read {includeTurns: true}`` of the oldest thread, p50 (the reference answers it
  without turns: it reads a ``paginated`` thread's turns from its ``thread_history_1.sqlite``,
  which has none for a thread it never loaded; see ``stored_threads.generate``);
- ``thread/resume`` of 5 of the oldest threads (each loads one from disk), p50;
- ``thread/read {includeTurns: true}`` of the oldest thread again, now loaded, p50;
- ``thread/search`` and ``thread/list {searchTerm}`` for the search term, p50.

Every answer is checked against what was generated (the right threads, in order, the turn
read back), so a fast wrong answer shows as a failed check and not as a good number.
``--write`` puts the table into its own section of docs/performance.md (one per size).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
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
from codex_core.testing.pytest_plugin import StdioServer
from codex_core.testing.reference import VERSION, missing_reason, reference_server_command
from codex_core.testing.stored_threads import (
    SEARCH_TERM,
    GeneratedThread,
    Template,
    generate,
    load_manifest,
    record_template,
)

PAGE = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
#: Generated trees and the template, kept between runs; bump the suffix when the generator
#: changes what it writes.
CACHE = Path(tempfile.gettempdir()) / f"codex-core-bench-threads-{VERSION}-v4"
SERVERS = {"codex-core": server_command(), "reference": reference_server_command()}
#: A call on a big tree may take long (the reference indexes on its first start).
TIMEOUT = 900.0
LIMIT = 25
#: Calls per timed row by default (``--repeats``); searches, which read every thread, get a
#: quarter of them.
REPEATS = 20
PAGES = 40
RESUMES = 5


class BenchError(Exception):
    """A server answered something other than what was generated; the message says what."""


# --------------------------------------------------------------------------- the tree


def template() -> Template:
    """The template rollout, recorded once by the reference (codex-core without it)."""
    folder = CACHE / "template"
    if not (folder / "home").is_dir():
        shutil.rmtree(folder, ignore_errors=True)
        argv = SERVERS["reference"] or SERVERS["codex-core"]
        assert argv is not None
        print(f"recording the template rollout with {argv[0]}", file=sys.stderr)
        record_template(argv, folder)
    home = folder / "home"
    return Template.parse(next((home / "sessions").rglob("rollout-*.jsonl")), home)


def tree(count: int) -> Path:
    """The cached tree of ``count`` threads (``home/``, ``projects/``, the manifest)."""
    root = CACHE / f"threads-{count}"
    if (root / "manifest.json").is_file():  # written last: the tree is complete
        return root
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    print(f"generating {count:,} threads under {root}", file=sys.stderr)
    generate(template(), root / "home", root / "projects", count)
    print(f"generated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return root


def fresh_home(root: Path, label: str, resumed: list[GeneratedThread]) -> Path:
    """A hard-linked copy of the tree's home for one server (the threads it will resume
    copied for real: resuming may append to a rollout, which must not reach the cache)."""
    home = CACHE / "runs" / label / "home"
    shutil.rmtree(home.parent, ignore_errors=True)
    shutil.copytree(root / "home", home, copy_function=os.link)
    for thread in resumed:
        target = home / thread.path
        target.unlink()
        shutil.copy2(root / "home" / thread.path, target)
    return home


# --------------------------------------------------------------------------- measuring


@dataclass
class Run:
    """One server's measurements in one round (milliseconds) and its failed checks."""

    label: str
    values: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        if not ok and what not in self.problems:
            self.problems.append(what)


def timed(server: StdioServer, method: str, params: dict[str, Any]) -> tuple[float, Any]:
    """(milliseconds, result) of one request; an error answer is a ``BenchError``."""
    started = time.perf_counter()
    response = server.request(method, params, timeout=TIMEOUT)
    elapsed = (time.perf_counter() - started) * 1000
    if "result" not in response:
        raise BenchError(f"{method} {params}: {response.get('error')}")
    return elapsed, response["result"]


def start(argv: list[str], home: Path, cwd: Path) -> tuple[StdioServer, float, float, Any]:
    """Spawn, initialize and list: (server, spawn-to-list ms, the list call's ms, its page)."""
    env = {**os.environ, "CODEX_HOME": str(home)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # run as installed programs run
    started = time.perf_counter()
    server = StdioServer(argv, env, cwd)
    try:
        server.result("initialize", {"clientInfo": {"name": "bench", "title": None,
                      "version": "1"}, "capabilities": {"experimentalApi": True}},
                      timeout=TIMEOUT)  # fmt: skip
        server.send({"method": "initialized"})
        first, page = timed(server, "thread/list", {"limit": LIMIT})
    except BaseException:
        server.close()
        raise
    return server, (time.perf_counter() - started) * 1000, first, page


def ids(page: Any) -> list[str]:
    """The thread ids of a page (``thread/search`` wraps each thread with its snippet)."""
    return [entry.get("thread", entry)["id"] for entry in page["data"]]


def measure(
    label: str, root: Path, threads: list[GeneratedThread], repeats: int, pages: int
) -> Run:
    run = Run(label)
    argv = SERVERS[label]
    assert argv is not None, f"{label} is not installed"
    live = [thread for thread in reversed(threads) if not thread.archived]  # newest first
    oldest = live[-RESUMES:]
    mentions = [thread.id for thread in live if SEARCH_TERM in thread.question]
    if not mentions:
        raise BenchError(f"no listed thread mentions {SEARCH_TERM!r}: a search would find nothing")
    home = fresh_home(root, label, oldest)
    try:
        server, run.values["startup"], run.values["list first"], page = start(argv, home, root)
        run.check(ids(page) == [t.id for t in live[:LIMIT]], "first thread/list page")
        try:
            lists = [timed(server, "thread/list", {"limit": LIMIT}) for _ in range(repeats)]
            run.samples["list"] = [ms for ms, _ in lists]
            run.check(all(ids(p) == [t.id for t in live[:LIMIT]] for _, p in lists), "thread/list")
            page_times, seen, cursor = [], [], None
            for _ in range(pages):
                ms, page = timed(server, "thread/list", {"limit": LIMIT, "cursor": cursor})
                page_times.append(ms)
                seen += ids(page)
                cursor = page.get("nextCursor")
                if cursor is None:
                    break
            run.samples["page"] = page_times
            run.check(seen == [t.id for t in live[: len(seen)]], "paging order")
            run.check(len(seen) == min(len(live), pages * LIMIT), "paging reached every page")
            reads = [
                timed(server, "thread/read", {"threadId": live[-1].id, "includeTurns": True})
                for _ in range(repeats)
            ]
            run.samples["read"] = [ms for ms, _ in reads]
            run.check(
                all(_answer(r["thread"]) == live[-1].answer for _, r in reads),
                "thread/read of a thread never loaded has its turns",
            )
            resumes = [timed(server, "thread/resume", {"threadId": t.id}) for t in oldest]
            run.samples["resume"] = [ms for ms, _ in resumes]
            run.check(
                [_answer(r["thread"]) for _, r in resumes] == [t.answer for t in oldest], "resume"
            )
            reads = [
                timed(server, "thread/read", {"threadId": live[-1].id, "includeTurns": True})
                for _ in range(repeats)
            ]
            run.samples["read loaded"] = [ms for ms, _ in reads]
            run.check(all(_answer(r["thread"]) == live[-1].answer for _, r in reads), "thread/read")
            query = {"searchTerm": SEARCH_TERM, "limit": LIMIT}
            searches = [timed(server, "thread/search", query) for _ in range(max(1, repeats // 4))]
            run.samples["search"] = [ms for ms, _ in searches]
            run.check(ids(searches[0][1]) == mentions[:LIMIT], "thread/search")
            titled = [timed(server, "thread/list", query) for _ in range(max(1, repeats // 4))]
            run.samples["list searchTerm"] = [ms for ms, _ in titled]
            run.check(ids(titled[0][1]) == mentions[:LIMIT], "thread/list {searchTerm}")
        finally:
            server.close()
        again, run.values["startup again"], _, page = start(argv, home, root)
        again.close()
        run.check(ids(page) == [t.id for t in live[:LIMIT]], "thread/list after a restart")
    except AssertionError as error:  # the kit's timeouts and a server that exited
        raise BenchError(f"{label}: {error}") from None
    finally:
        shutil.rmtree(home.parent, ignore_errors=True)
    return run


def _answer(thread: dict[str, Any]) -> str | None:
    """The agent's answer in a thread's (only) turn, or None when the turns are missing."""
    for turn in thread.get("turns") or ():
        for item in turn.get("items") or ():
            if item.get("type") == "agentMessage":
                return str(item.get("text"))
    return None


# --------------------------------------------------------------------------- report

#: (row, the run's value in ms): each cell is the median of the rounds, with their range.
ROWS: list[tuple[str, Callable[[Run], float | None]]] = [
    ("startup: spawn to the first `thread/list` reply (ms)", lambda r: r.values.get("startup")),
    ("startup again, same home (ms)", lambda r: r.values.get("startup again")),
    ("`thread/list {limit: 25}` first call (ms)", lambda r: r.values.get("list first")),
    ("`thread/list {limit: 25}` later calls p50 (ms)", lambda r: _p50(r, "list")),
    ("paging by `nextCursor`, p50 per page of 25 (ms)", lambda r: _p50(r, "page")),
    ("`thread/read` of the oldest thread, never loaded, p50 (ms)", lambda r: _p50(r, "read")),
    (f"`thread/resume` of an old thread, p50 of {RESUMES} (ms)", lambda r: _p50(r, "resume")),
    ("`thread/read` of the oldest thread once resumed, p50 (ms)", lambda r: _p50(r, "read loaded")),
    ("`thread/search` p50 (ms)", lambda r: _p50(r, "search")),
    ("`thread/list {searchTerm}` p50 (ms)", lambda r: _p50(r, "list searchTerm")),
]  # fmt: skip


def _p50(run: Run, key: str) -> float | None:
    samples = run.samples.get(key)
    return statistics.median(samples) if samples else None


def cell(values: list[float]) -> str:
    if not values:
        return "n/a"
    digits = 2 if max(values) < 10 else 1 if max(values) < 100 else 0
    middle = statistics.median_low(values)
    if len(values) == 1:
        return f"{middle:,.{digits}f}"
    return f"{middle:,.{digits}f} ({min(values):,.{digits}f}\N{EN DASH}{max(values):,.{digits}f})"


def table(runs: list[Run], labels: list[str]) -> str:
    lines = ["| metric | " + " | ".join(labels) + " |",
             "| --- |" + " ---: |" * len(labels)]  # fmt: skip
    for name, value in ROWS:
        cells = []
        for label in labels:
            found = [value(run) for run in runs if run.label == label]
            cells.append(cell([v for v in found if v is not None]))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    checks = []
    for label in labels:
        problems = sorted({p for run in runs if run.label == label for p in run.problems})
        checks.append("all passed" if not problems else "failed: " + ", ".join(problems))
    lines.append("| answers checked against the generated threads | " + " | ".join(checks) + " |")
    return "\n".join(lines)


def load_line() -> str:
    one, five, _ = os.getloadavg()
    return f"1-minute load average {one:.1f} at the end, {five:.1f} over 5 minutes"


def render(
    runs: list[Run], labels: list[str], args: argparse.Namespace, threads: list[GeneratedThread]
) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    live = sum(not thread.archived for thread in threads)
    command = (
        f"python bench/threads.py --threads {args.threads} --rounds {args.rounds} "
        f"--repeats {args.repeats} --pages {args.pages}"
    )
    return f"""## Stored threads: {args.threads:,}

Measured with `{command}` on {datetime.now(UTC):%Y-%m-%d}, {machine},
**on a machine shared with other engineers' builds and tests** ({load_line()}), so absolute
numbers are noisy: codex-core (`codex-app-server`) and the reference (the official Codex
{VERSION}) one after the other in each round, each on its own fresh copy of the same
generated `CODEX_HOME`: {len(threads):,} threads ({live:,} listed, the rest archived), one turn
each, created over six months. Cells are the median of the rounds (and their range).

{table(runs, labels)}

The first startup is on a home the server has never seen, so a server that keeps an index of
its threads builds it there (the reference fills its `state_5.sqlite`); the second runs in a
new process on the same home. The reference's `thread/read` of a thread it never loaded
answers without turns (it reads a `paginated` thread's turns from its own
`thread_history_1.sqlite`, see [Threads](threads.md#sharing-a-codex_home-with-the-official-server)),
so its "never loaded" read row times a lookup, not a read of the rollout: that is the check it
fails. See the script's docstring for what each row does.
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1000, help="stored threads (default 1000)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--pages", type=int, default=PAGES, help=f"pages to follow (default {PAGES})"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=REPEATS,
        help=f"calls per timed row (default {REPEATS}; searches a quarter of them)",
    )
    parser.add_argument(
        "--write", action="store_true", help="write the table into docs/performance.md"
    )
    parser.add_argument(
        "--only", choices=sorted(SERVERS), help="measure one server (the tree is still shared)"
    )
    args = parser.parse_args()
    if min(args.rounds, args.repeats, args.pages) < 1 or args.threads < 100:
        parser.error("--threads must be at least 100 (one in 100 mentions the search term)")
    labels = [label for label, argv in SERVERS.items() if argv is not None]
    if "reference" not in labels:
        print(missing_reason(), file=sys.stderr)
    if args.only:
        labels = [args.only]
    root = tree(args.threads)
    threads = load_manifest(root)
    runs: list[Run] = []
    try:
        for number in range(1, args.rounds + 1):
            for label in labels:
                print(f"round {number}: {label}", file=sys.stderr)
                runs.append(measure(label, root, threads, args.repeats, args.pages))
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    print(table(runs, labels))
    if args.write:
        write_section(PAGE, f"threads-{args.threads}", render(runs, labels, args, threads))
        print(f"wrote {PAGE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
