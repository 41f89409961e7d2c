#!/usr/bin/env python3
"""Fuzzy file search on a generated 100,000-file tree, codex-core and the reference side by side.

    python bench/file_search.py                # 100,000 files, each server once
    python bench/file_search.py --files 20000

For each server, over stdio: the seconds ``fuzzyFileSearch`` takes to answer a few queries
(full results), and a session while the query changes as someone types it (one keystroke
every ``--keystroke-ms``): from ``sessionStart`` to the walk's ``sessionCompleted``, then from
the last keystroke to the first ``sessionUpdated`` for it (first results) and to its
``sessionCompleted`` (full results). The servers run one after the other on the same tree; on
a shared machine only the ratio of one run means anything. The results go to the
``file-search`` section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sections import write_section

from codex_core.cli import server_command
from codex_core.testing.pytest_plugin import StdioServer
from codex_core.testing.reference import reference_server_command

PAGE = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
WORDS = [
    "src",
    "lib",
    "test",
    "util",
    "core",
    "api",
    "model",
    "view",
    "controller",
    "button",
    "index",
    "main",
    "app",
    "config",
    "readme",
    "docs",
    "build",
    "scripts",
    "server",
    "client",
    "handler",
    "parser",
    "http",
    "loader",
    "widget",
    "store",
    "router",
]
EXTENSIONS = [".py", ".rs", ".ts", ".tsx", ".md", ".json", ".go", ".c", ""]
QUERIES = ["main", "uticonf", "router.ts"]
TYPED = ["s", "sr", "src", "src/", "src/m", "src/ma", "src/main"]


def make_tree(root: Path, files: int) -> None:
    """``files`` files, 100 to a directory, in directories nested up to four deep."""
    rng = random.Random(1)
    made = 0
    directory_index = 0
    while made < files:
        depth = rng.randint(1, 4)
        parts = [f"{rng.choice(WORDS)}{rng.randint(0, 9)}" for _ in range(depth - 1)]
        folder = root.joinpath(*parts, f"{rng.choice(WORDS)}_{directory_index}")
        folder.mkdir(parents=True, exist_ok=True)
        directory_index += 1
        for _ in range(min(100, files - made)):
            name = f"{rng.choice(WORDS)}{rng.choice(WORDS).title()}{made}{rng.choice(EXTENSIONS)}"
            (folder / name).touch()
            made += 1


def start(argv: list[str], scratch: Path) -> StdioServer:
    home = Path(tempfile.mkdtemp(prefix="home-", dir=scratch))
    server = StdioServer(argv, {**os.environ, "CODEX_HOME": str(home)}, scratch)
    server.initialize(experimentalApi=True)
    return server


def measure(argv: list[str], tree: Path, scratch: Path, keystroke: float) -> dict[str, Any]:
    server = start(argv, scratch)
    try:
        searches = []
        for query in QUERIES:
            began = time.perf_counter()
            server.result("fuzzyFileSearch", {"query": query, "roots": [str(tree)]}, timeout=300)
            searches.append(time.perf_counter() - began)
        began = time.perf_counter()
        server.result("fuzzyFileSearch/sessionStart", {"sessionId": "b", "roots": [str(tree)]})
        server.wait_notification("fuzzyFileSearch/sessionCompleted", timeout=300)
        walked = time.perf_counter() - began
        server.notifications.clear()
        for query in TYPED[:-1]:
            server.result("fuzzyFileSearch/sessionUpdate", {"sessionId": "b", "query": query})
            time.sleep(keystroke)  # the typist's pace is the input of this benchmark
        final = TYPED[-1]
        server.result("fuzzyFileSearch/sessionUpdate", {"sessionId": "b", "query": final})
        last = time.perf_counter()
        seen: dict[str, float] = {}

        def arrived() -> bool:
            """Note when the final query's first update, then a completion after it, came."""
            for note in server.notifications:
                method, params = note["method"], note.get("params", {})
                if method.endswith("sessionUpdated") and params.get("query") == final:
                    seen.setdefault("first", time.perf_counter() - last)
                elif method.endswith("sessionCompleted") and "first" in seen:
                    seen.setdefault("full", time.perf_counter() - last)
            return "full" in seen

        server.wait_until(arrived, timeout=300, what="the last keystroke's full results")
        return {"search": searches, "walk": walked, "first": seen["first"], "full": seen["full"]}
    finally:
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--keystroke-ms", type=int, default=150)
    args = parser.parse_args()
    reference = reference_server_command()
    if reference is None:
        print("the official server is not installed (python3 dev.py setup)", file=sys.stderr)
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="file-search-bench-"))
    try:
        tree = scratch / "tree"
        make_tree(tree, args.files)
        keystroke = args.keystroke_ms / 1000
        rows = []
        for name, argv in (("codex-core", server_command()), ("reference", reference)):
            result = measure(argv, tree, scratch, keystroke)
            searches = ", ".join(f"{s:.2f}" for s in result["search"])
            rows.append(
                f"| {name} | {statistics.median(result['search']):.2f} ({searches}) "
                f"| {result['walk']:.2f} | {result['first'] * 1000:.0f} "
                f"| {result['full'] * 1000:.0f} |"
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    day = datetime.now(UTC).date().isoformat()
    body = "\n".join(
        [
            "## Fuzzy file search",
            "",
            f"Measured with `python bench/file_search.py` on {day}, {platform.machine()}, "
            f"{os.cpu_count()} cores (shared), Python {platform.python_version()}: a generated "
            f"tree of {args.files:,} files, 100 to a directory. `fuzzyFileSearch` answers "
            f"{', '.join(f'`{q}`' for q in QUERIES)} (full results, each a new walk); a session "
            f"walks once, then the query is typed ({' '.join(TYPED)}, one keystroke every "
            f"{args.keystroke_ms} ms); the last keystroke's first `sessionUpdated` and its "
            "`sessionCompleted` are timed from that keystroke.",
            "",
            "| server | `fuzzyFileSearch` s, median (each) | session walk s | "
            "last keystroke → first results ms | → full results ms |",
            "| --- | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            "codex-core walks and ranks in Python worker threads (a regular expression picks the "
            "paths worth scoring, and a query typed on re-ranks only the previous one's "
            "candidates); the reference walks and matches in native threads (ripgrep's walker, "
            "nucleo). See docs/plugins/file-search.md.",
        ]
    )
    print(body)
    write_section(PAGE, "file-search", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
