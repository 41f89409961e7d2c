"""fuzzyFileSearch and its session API, ours against the official server, value by value.

Both servers search the same temporary tree (names with camelCase, separators, accents,
spaces; directories named as the query; ``.gitignore`` inside a repository, ``.ignore``,
hidden files, symbolic links including a loop and a dangling one; nested roots), for queries
that exercise each scoring rule and nucleo's atom syntax. Results must be identical: roots,
paths, match types, names, scores, highlight indices and order.

The trees stay under 50 matches per query: beyond the limit, the official server keeps an
arbitrary subset of the results tied at the cut (it walks in parallel; two runs differ),
which no value comparison can follow.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing.pytest_plugin import StdioServer, WsServer, server_command
from codex_core.testing.reference import reference_server_command

REFERENCE = reference_server_command()

pytestmark = pytest.mark.skipif(
    REFERENCE is None,
    reason="the official server is not installed (python -m codex_core.testing.reference)",
)

PATHS = [
    "src/sxrxc.txt",
    "abc/abc.txt",
    "a/b.txt",
    "main",
    "x/main/y.txt",
    "src/main.py",
    "lib/Main.java",
    "docs/mainly.md",
    "fooBar.ts",
    "foo_bar.ts",
    "foo bar.ts",
    "café.txt",
    "deep/er/still/main_test.py",
    "ignored/keep.txt",
    "node_modules/pkg/index.js",
    "sub/.gitignore",
    "sub/a.log",
    "sub/b.txt",
    ".git/HEAD",
    ".hidden/secret_main.rs",
    "banana.txt",
    "aaa/aa/a.txt",
    "CamelCaseFile.rs",
    "test_utils/v2_api.py",
    "README.md",
    "src/components/Button.tsx",
    "src/components/button-group.tsx",
    "pkg/mod-1/x9.go",
    "README2/config2/fooBar/indexindex.rs",
    "zz/main/k.txt",
    "emptydir/main/z.txt",
    "x^y.txt",
    "dollar$.txt",
    "bang!.md",
    "q'uote.txt",
    "back\\slash.txt",
    "src/ma in.py",
]

QUERIES = [
    "main",
    "MaIn",
    "main.py",
    "mainpy",
    "src",
    "abc",
    "ab",
    "fb",
    "foo bar",
    "er st",
    "^src",
    "py$",
    "^main$",
    "'main",
    "!main !a !e",
    "cafe",
    "café",
    "log",
    "index",
    "keep",
    "HEAD",
    "gitignore",
    "sub",
    "linked",
    "a",
    "an",
    "aa",
    "btn",
    "button",
    "ccf",
    "v2",
    "x9",
    "rdm",
    "s/c/b",
    "main.rs",
    "secret",
    "loop",
    "dangling",
    "zzzz",
    "",
    "\\^y",
    "x\\^",
    "\\$",
    "dollar\\$",
    "r$",
    "a\\ b",
    "\\!",
    "bang!",
    "q'u",
    "back\\\\",
    "ma in",
    "ma\\ in",
    "^src$",
    "  main  ",
]


def make_tree(tree: Path) -> None:
    for relative in PATHS:
        path = tree / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (tree / "sub" / ".gitignore").write_text("*.log\n")
    (tree / ".gitignore").write_text("ignored/\nnode_modules\n")
    (tree / ".ignore").write_text("docs/\n")
    os.symlink(tree / "src", tree / "linked")
    os.symlink(tree, tree / "abc" / "loop")
    os.symlink(tree / "missing", tree / "dangling")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("file-search") / "tree"
    root.mkdir()
    make_tree(root)
    return root


def start(argv: list[str], tmp_path: Path, name: str, **capabilities: Any) -> StdioServer:
    home = tmp_path / name
    home.mkdir(exist_ok=True)
    server = StdioServer(argv, {**os.environ, "CODEX_HOME": str(home)}, tmp_path)
    server.initialize(**capabilities)
    return server


def both(tmp_path: Path, **capabilities: Any) -> list[StdioServer]:
    assert REFERENCE is not None
    return [
        start(server_command(), tmp_path, "ours", **capabilities),
        start(REFERENCE, tmp_path, "reference", **capabilities),
    ]


def test_searches_match_the_reference(tree: Path, tmp_path: Path) -> None:
    ours, reference = both(tmp_path)
    try:
        requests: list[tuple[str, list[str]]] = [(query, [str(tree)]) for query in QUERIES]
        requests += [
            ("main", [str(tree), str(tree / "src")]),
            ("main", [str(tree / "src"), str(tree)]),
            ("b", [str(tree / "sub")]),  # the repository's rules above the root
            ("abc", [str(tree / "abc" / "abc.txt")]),
            ("main", [str(tree / "missing")]),
            ("main", []),
        ]
        for query, roots in requests:
            params = {"query": query, "roots": roots}
            expected = reference.result("fuzzyFileSearch", params, timeout=30)
            assert ours.result("fuzzyFileSearch", params, timeout=30) == expected, params
    finally:
        ours.close()
        reference.close()


BAD_REQUESTS: list[tuple[str, Any]] = [
    ("fuzzyFileSearch", {"roots": []}),
    ("fuzzyFileSearch", {"query": 3, "roots": []}),
    ("fuzzyFileSearch", {"query": "a", "roots": "x"}),
    ("fuzzyFileSearch/sessionStart", {"sessionId": "", "roots": ["/"]}),
    ("fuzzyFileSearch/sessionStart", {"sessionId": "s", "roots": []}),
    ("fuzzyFileSearch/sessionStart", {"sessionId": "s", "roots": "x"}),
    ("fuzzyFileSearch/sessionStart", {"sessionId": "s"}),
    ("fuzzyFileSearch/sessionUpdate", {"sessionId": "unknown", "query": "a"}),
    ("fuzzyFileSearch/sessionUpdate", {"sessionId": "unknown"}),
    ("fuzzyFileSearch/sessionStop", {"sessionId": 5}),
    ("fuzzyFileSearch/sessionStop", {"sessionId": "unknown"}),
]


@pytest.mark.parametrize("experimental", [True, False])
def test_errors_match_the_reference(tmp_path: Path, experimental: bool) -> None:
    servers = both(tmp_path, experimentalApi=True) if experimental else both(tmp_path)
    try:
        answers = [
            [{k: v for k, v in server.request(m, p).items() if k != "id"} for m, p in BAD_REQUESTS]
            for server in servers
        ]
    finally:
        for server in servers:
            server.close()
    for request, ours, expected in zip(BAD_REQUESTS, *answers, strict=True):
        assert ours == expected, request


def session_step(server: StdioServer, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """A session request's answer and what it reports: the last ``sessionUpdated`` for the
    session's query, once that and a ``sessionCompleted`` have both arrived (the official
    server sends them from separate tasks, in either order)."""
    answer = server.result(method, params)
    query = params.get("query", "")

    def reported() -> bool:
        methods = {n["method"] for n in server.notifications}
        updated = any(
            n["method"].endswith("sessionUpdated") and n["params"]["query"] == query
            for n in server.notifications
        )
        return updated and "fuzzyFileSearch/sessionCompleted" in methods

    server.wait_until(reported, timeout=30, what=f"{method} reported")
    server.barrier()
    updates = [
        n["params"]
        for n in server.notifications
        if n["method"].endswith("sessionUpdated") and n["params"]["query"] == query
    ]
    server.notifications.clear()
    return {"answer": answer, "last update": updates[-1]}


def test_sessions_match_the_reference(tree: Path, tmp_path: Path) -> None:
    steps: list[tuple[str, dict[str, Any]]] = [
        ("fuzzyFileSearch/sessionStart", {"sessionId": "s", "roots": [str(tree)]}),
        ("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "main"}),
        ("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "main"}),
        ("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "s/c/b"}),
        ("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": ""}),
        ("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "zzzz"}),
        ("fuzzyFileSearch/sessionStart", {"sessionId": "s", "roots": [str(tree / "src")]}),
        ("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "main"}),
        ("fuzzyFileSearch/sessionStart", {"sessionId": "m", "roots": [str(tree / "missing")]}),
    ]
    servers = both(tmp_path, experimentalApi=True)
    try:
        seen = [[session_step(server, m, p) for m, p in steps] for server in servers]
        for server in servers:
            assert server.result("fuzzyFileSearch/sessionStop", {"sessionId": "s"}) == {}
            server.barrier()
        stopped = [
            [n for n in server.notifications if n["method"].startswith("fuzzyFileSearch/")]
            for server in servers
        ]
    finally:
        for server in servers:
            server.close()
    for step, ours, expected in zip(steps, *seen, strict=True):
        assert ours == expected, step
    assert stopped[0] == stopped[1] == []


IGNORE_TREE = [
    "build/a.txt",
    "src/build/b.txt",
    "keep.log",
    "x.log",
    "deep/x.log",
    "nested/.git/HEAD",
    "nested/n.log",
    "nested/sub/c.tmp",
    "d.tmp",
    "e.bak",
    "docs/f.md",
    "docs/g.md",
    "data/h.csv",
    "data/keep/i.csv",
    ".git/info/exclude",
    "excluded.txt",
    "z/y/w.txt",
]


def test_ignore_rules_match_the_reference(tmp_path: Path) -> None:
    """Anchored and negated patterns, per-directory files, a nested repository, the
    repository's exclude file, ``.ignore``, and a ``.gitignore`` above the repository (which
    does not apply): every entry either server finds, from several roots."""
    tree = tmp_path / "outer" / "project"
    for relative in IGNORE_TREE:
        path = tree / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (tree / ".git" / "info" / "exclude").write_text("excluded.txt\n")
    (tmp_path / "outer" / ".gitignore").write_text("*.bak\n")
    (tree / ".gitignore").write_text("/build\n*.log\n!keep.log\n*.tmp\ndata/*\n!data/keep/\n")
    (tree / "docs" / ".gitignore").write_text("g.md\n")
    (tree / "nested" / ".gitignore").write_text("!*.log\n")
    (tree / "z" / ".ignore").write_text("y/\n")
    servers = both(tmp_path)
    try:
        for root in (tree, tree / "nested", tree / "docs", tree / "data"):
            params = {"query": "!zzzqq", "roots": [str(root)]}  # matches every entry
            ours, expected = (server.result("fuzzyFileSearch", params) for server in servers)
            assert ours == expected, root
    finally:
        for server in servers:
            server.close()


def shared_session_traffic(server: WsServer, tree: Path) -> list[list[dict[str, Any]]]:
    """Two websocket clients: A starts a session, B (which did not) types in it; what each is
    sent about it, sorted (the official server sends a report's two notifications from
    separate tasks, in either order). Its sessions belong to the server, not a client."""
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(server.connect()) for _ in range(2)]
        return _shared_session_traffic(clients, tree)


def _shared_session_traffic(clients: list[Any], tree: Path) -> list[list[dict[str, Any]]]:
    seen: list[list[dict[str, Any]]] = [[], []]

    def collect(index: int, until: Callable[[list[dict[str, Any]]], bool]) -> None:
        while not until(seen[index]):
            message = json.loads(clients[index].recv(timeout=30))
            if "fuzzyFileSearch" in json.dumps(message) or "id" in message:
                message.pop("emittedAtMs", None)
                seen[index].append(message)

    def reported(messages: list[dict[str, Any]], query: str, completions: int) -> bool:
        """Both notifications of a report are in: either may come first."""
        done = sum(m.get("method") == "fuzzyFileSearch/sessionCompleted" for m in messages)
        updated = any(
            m.get("method") == "fuzzyFileSearch/sessionUpdated" and m["params"]["query"] == query
            for m in messages
        )
        return done >= completions and updated

    for client in clients:
        params = {
            "clientInfo": {"name": "pytest", "title": None, "version": "1"},
            "capabilities": {"experimentalApi": True},
        }
        client.send(json.dumps({"id": 0, "method": "initialize", "params": params}))
        while "id" not in json.loads(client.recv(timeout=30)):
            pass
        client.send(json.dumps({"method": "initialized"}))
    start = {"sessionId": "shared", "roots": [str(tree)]}
    clients[0].send(
        json.dumps({"id": 1, "method": "fuzzyFileSearch/sessionStart", "params": start})
    )
    for index in (0, 1):
        collect(index, lambda messages: reported(messages, "", 1))
    update = {"sessionId": "shared", "query": "alp"}
    clients[1].send(
        json.dumps({"id": 2, "method": "fuzzyFileSearch/sessionUpdate", "params": update})
    )
    for index in (0, 1):
        collect(index, lambda messages: reported(messages, "alp", 2))
    return [sorted(messages, key=json.dumps) for messages in seen]


def test_sessions_are_shared_between_clients_as_on_the_reference(tmp_path: Path) -> None:
    pytest.importorskip("codex_plugin_websocket", reason="codex-plugin-websocket provides ws://")
    assert REFERENCE is not None
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "alpha.txt").write_text("x")
    traffic = []
    for name, argv in (
        ("ours", server_command("--listen", "ws://127.0.0.1:0")),
        ("reference", [*REFERENCE, "--listen", "ws://127.0.0.1:0"]),
    ):
        home = tmp_path / name
        home.mkdir()
        server = WsServer(argv, {**os.environ, "CODEX_HOME": str(home)}, tmp_path)
        try:
            traffic.append(shared_session_traffic(server, tree))
        finally:
            server.stop()
    assert traffic[0] == traffic[1]
    # B, which never started it, got the answer to its update and both sessions' reports.
    assert {"id": 2, "result": {}} in traffic[0][1]
