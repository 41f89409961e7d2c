"""fuzzyFileSearch and its session API through a real server over stdio, on real trees.

The expected scores and indices are the official server's own answers for the same trees
(``tests/test_file_search_differential.py`` checks them against it directly where it is
installed); here they are pinned so the behaviour is covered everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing.pytest_plugin import ServerFactory, StdioServer

UPDATED = "fuzzyFileSearch/sessionUpdated"
COMPLETED = "fuzzyFileSearch/sessionCompleted"


def make_tree(root: Path, paths: list[str]) -> Path:
    for relative in paths:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    return root


@pytest.fixture
def server(codex_server_factory: ServerFactory) -> StdioServer:
    started = codex_server_factory()
    started.initialize(experimentalApi=True)
    return started


def search(server: StdioServer, query: str, *roots: Path) -> list[dict[str, Any]]:
    result = server.result("fuzzyFileSearch", {"query": query, "roots": [str(r) for r in roots]})
    return list(result["files"])


def brief(files: list[dict[str, Any]]) -> list[tuple[str, str, int, list[int]]]:
    return [(f["path"], f["match_type"], f["score"], f["indices"]) for f in files]


def test_ranks_names_first_with_the_official_scores(server: StdioServer, tmp_path: Path) -> None:
    tree = make_tree(
        tmp_path / "tree",
        ["main", "src/main.py", "src/sxrxc.txt", "x/main/y.txt", "lib/Main.java", "fooBar.ts"],
    )
    files = search(server, "main", tree)
    assert files[0] == {
        "root": str(tree),
        "path": "main",
        "match_type": "file",
        "file_name": "main",
        "score": 3 * 65536 + 109,
        "indices": [0, 1, 2, 3],
    }
    assert brief(files[1:]) == [
        ("x/main", "directory", 2 * 65536 + 109, [2, 3, 4, 5]),
        ("lib/Main.java", "file", 65536 + 109, [4, 5, 6, 7]),
        ("src/main.py", "file", 65536 + 109, [4, 5, 6, 7]),
        ("x/main/y.txt", "file", 109, [2, 3, 4, 5]),
    ]
    # A name that matches on its own beats the directories; camelCase and gaps score less.
    assert brief(search(server, "src", tree))[:3] == [
        ("src", "directory", 131156, [0, 1, 2]),
        ("src/sxrxc.txt", "file", 65596, [4, 6, 8]),
        ("src/main.py", "file", 84, [0, 1, 2]),
    ]
    assert brief(search(server, "fb", tree)) == [("fooBar.ts", "file", 65587, [0, 3])]
    # Case never matters; the atom syntax scores whole paths.
    assert search(server, "MAIN", tree) == files
    assert brief(search(server, "^src", tree))[0] == ("src", "directory", 84, [0, 1, 2])
    assert brief(search(server, "py$", tree)) == [("src/main.py", "file", 56, [9, 10])]
    assert [f["path"] for f in search(server, "!s !a !m !b", tree)] == ["", "x"]


def test_only_the_shortest_directory_named_as_the_query_is_lifted(
    server: StdioServer, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "tree", ["b/main/f.txt", "a/main/f.txt", "zz/main/f.txt"])
    assert brief(search(server, "main", tree)) == [
        ("a/main", "directory", 131181, [2, 3, 4, 5]),
        ("a/main/f.txt", "file", 109, [2, 3, 4, 5]),
        ("b/main", "directory", 109, [2, 3, 4, 5]),
        ("b/main/f.txt", "file", 109, [2, 3, 4, 5]),
        ("zz/main", "directory", 109, [3, 4, 5, 6]),
        ("zz/main/f.txt", "file", 109, [3, 4, 5, 6]),
    ]


def test_accents_fold_unless_typed(server: StdioServer, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", ["café.txt", "CamelCaseFile.rs"])
    assert [f["path"] for f in search(server, "cafe", tree)] == ["café.txt", "CamelCaseFile.rs"]
    assert [f["path"] for f in search(server, "café", tree)] == ["café.txt"]


def test_gitignore_applies_inside_a_repository_only(server: StdioServer, tmp_path: Path) -> None:
    paths = ["keep.txt", "ignored/a.txt", "x.log", "sub/b.log", "docs/c.txt", ".hidden/d.txt"]
    plain = make_tree(tmp_path / "plain", paths)
    repo = make_tree(tmp_path / "repo", [*paths, ".git/HEAD"])
    for tree in (plain, repo):
        (tree / ".gitignore").write_text("ignored/\n*.log\n")
        (tree / ".ignore").write_text("docs/\n")
    outside = {f["path"] for f in search(server, "!zzz", plain)}  # everything
    assert {"keep.txt", "ignored/a.txt", "x.log", ".hidden/d.txt"} <= outside
    assert "docs/c.txt" not in outside  # .ignore applies everywhere
    inside = {f["path"] for f in search(server, "!zzz", repo)}
    assert {"keep.txt", ".hidden/d.txt", ".git/HEAD"} <= inside
    assert not inside & {"ignored/a.txt", "x.log", "sub/b.log", "docs/c.txt"}
    # A .gitignore above the root, in the repository, applies too.
    assert "b.log" not in {f["path"] for f in search(server, "log", repo / "sub")}


def test_follows_links_and_survives_loops(server: StdioServer, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", ["src/main.py"])
    os.symlink(tree / "src", tree / "linked")
    os.symlink(tree, tree / "src" / "loop")
    os.symlink(tree / "missing", tree / "dangling")
    paths = [f["path"] for f in search(server, "main.py", tree)]
    assert paths[:2] == ["linked/main.py", "src/main.py"]
    assert "dangling" not in [f["path"] for f in search(server, "dangling", tree)]


def test_limits_to_fifty_best(server: StdioServer, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", [f"k{'a' * (i % 7)}{i:03d}" for i in range(70)])
    files = search(server, "k", tree)
    assert len(files) == 50
    # Equal scores: the shorter paths are kept, then sent in path order.
    assert max(len(f["path"]) for f in files) <= min(
        len(p.name) for p in tree.iterdir() if p.name not in {f["path"] for f in files}
    )
    assert [f["path"] for f in files] == sorted(f["path"] for f in files)


def test_roots(server: StdioServer, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", ["alpha.txt", "src/alpha.py"])
    assert search(server, "", tree) == []
    assert search(server, "alpha") == []
    assert search(server, "alpha", tmp_path / "missing") == []
    assert search(server, "alp", tree / "alpha.txt") == []  # a file root is its own ""
    # A root inside another: its entries belong to it, and come from both walks.
    nested = search(server, "alpha", tree, tree / "src")
    assert [(f["root"], f["path"]) for f in nested] == [
        (str(tree / "src"), "alpha.py"),
        (str(tree / "src"), "alpha.py"),
        (str(tree), "alpha.txt"),
    ]


def test_malformed_params(server: StdioServer) -> None:
    assert server.error("fuzzyFileSearch", {"roots": []})["code"] == -32600
    assert server.error("fuzzyFileSearch", {"query": 3, "roots": []})["code"] == -32600


def test_a_newer_search_with_the_same_token_cancels_the_older(
    server: StdioServer, tmp_path: Path
) -> None:
    big = tmp_path / "big"
    for d in range(100):
        folder = big / f"d{d}"
        folder.mkdir(parents=True)
        for f in range(200):
            (folder / f"file{f}.txt").touch()
    small = make_tree(tmp_path / "small", ["alpha.txt"])
    first_id, second_id = "first", "second"
    for request_id, root in ((first_id, big), (second_id, small)):
        params = {"query": "a", "roots": [str(root)], "cancellationToken": "typing"}
        server.send({"id": request_id, "method": "fuzzyFileSearch", "params": params})
    assert [f["path"] for f in server.wait_response(second_id)["result"]["files"]] == ["alpha.txt"]
    assert server.wait_response(first_id, timeout=60)["result"] == {"files": []}


# --------------------------------------------------------------------------- sessions


def session_events(server: StdioServer, session_id: str) -> list[tuple[str, Any]]:
    """The session's notifications so far, in order: (kind, query or None), files dropped."""
    events = [
        (n["method"].rsplit("/", 1)[1], n["params"].get("query"))
        for n in server.notifications
        if n["method"] in (UPDATED, COMPLETED) and n["params"]["sessionId"] == session_id
    ]
    server.notifications[:] = [
        n for n in server.notifications if n["method"] not in (UPDATED, COMPLETED)
    ]
    return events


def wait_completed(server: StdioServer, session_id: str, query: str) -> dict[str, Any]:
    """The last ``sessionUpdated`` for ``query``, once the session says it is complete."""
    last: dict[str, Any] = {}

    def done() -> bool:
        for note in server.notifications:
            params = note.get("params", {})
            if params.get("sessionId") != session_id:
                continue
            if note["method"] == UPDATED and params["query"] == query:
                last.update(params)
            elif note["method"] == COMPLETED and last:
                return True
        return False

    server.wait_until(done, timeout=30, what=f"session {session_id} completing {query!r}")
    return last


def test_session_reports_each_query_then_completes(server: StdioServer, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", ["alpha.txt", "beta.txt", "src/alpha.py"])
    assert (
        server.result("fuzzyFileSearch/sessionStart", {"sessionId": "s", "roots": [str(tree)]})
        == {}
    )
    server.wait_notification(COMPLETED, where=lambda p: p["sessionId"] == "s")
    server.barrier()
    assert session_events(server, "s") == [("sessionUpdated", "")]
    server.result("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "alp"})
    update = wait_completed(server, "s", "alp")
    assert update["files"] == search(server, "alp", tree)
    server.barrier()
    session_events(server, "s")
    # The same query again is reported again; an empty one reports no files.
    server.result("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "alp"})
    assert wait_completed(server, "s", "alp")["files"] == update["files"]
    server.result("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": ""})
    assert wait_completed(server, "s", "")["files"] == []


def test_a_newer_query_supersedes(server: StdioServer, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", [f"d{d}/file{f}.txt" for d in range(40) for f in range(50)])
    server.result("fuzzyFileSearch/sessionStart", {"sessionId": "s", "roots": [str(tree)]})
    for query in ("f", "fi", "fil", "file1"):
        server.result("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": query})
    final = wait_completed(server, "s", "file1")
    assert final["files"] == search(server, "file1", tree)
    server.barrier()
    events = session_events(server, "s")
    # Nothing about an older query comes after the newest one is first reported.
    newest = events.index(("sessionUpdated", "file1"))
    assert all(query in ("file1", None) for _, query in events[newest:])


def test_session_stop_and_restart(server: StdioServer, tmp_path: Path) -> None:
    one = make_tree(tmp_path / "one", ["alpha.txt"])
    two = make_tree(tmp_path / "two", ["alpine.txt"])
    server.result("fuzzyFileSearch/sessionStart", {"sessionId": "s", "roots": [str(one)]})
    # Starting an existing id again replaces it.
    server.result("fuzzyFileSearch/sessionStart", {"sessionId": "s", "roots": [str(two)]})
    server.result("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "alp"})
    assert [f["path"] for f in wait_completed(server, "s", "alp")["files"]] == ["alpine.txt"]
    assert server.result("fuzzyFileSearch/sessionStop", {"sessionId": "s"}) == {}
    server.barrier()
    session_events(server, "s")
    error = server.error("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "a"})
    assert error == {"code": -32600, "message": "fuzzy file search session not found: s"}
    server.barrier()
    assert session_events(server, "s") == []
    # Stopping an unknown session is not an error.
    assert server.result("fuzzyFileSearch/sessionStop", {"sessionId": "never"}) == {}


def test_session_errors(server: StdioServer, codex_server_factory: ServerFactory) -> None:
    start = "fuzzyFileSearch/sessionStart"
    assert server.error(start, {"sessionId": "", "roots": ["/"]}) == {
        "code": -32600,
        "message": "sessionId must not be empty",
    }
    assert server.error(start, {"sessionId": "s", "roots": []}) == {
        "code": -32603,
        "message": "failed to start fuzzy file search session: "
        "at least one search directory is required",
    }
    assert server.error(start, {"sessionId": "s", "roots": "x"})["code"] == -32600
    stable_only = codex_server_factory()
    stable_only.initialize()
    for method in (start, "fuzzyFileSearch/sessionUpdate", "fuzzyFileSearch/sessionStop"):
        params = {"sessionId": "s", "roots": ["/"], "query": "a"}
        assert stable_only.error(method, params) == {
            "code": -32600,
            "message": f"{method} requires experimentalApi capability",
        }


def test_a_newline_in_a_name_is_just_a_character(server: StdioServer, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", ["ma\nin.txt", "other.txt"])
    assert [f["path"] for f in search(server, "main", tree)] == ["ma\nin.txt"]


def test_escapes_match_literally_without_name_tiers(server: StdioServer, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", ["a b.txt", "x^y.txt"])
    assert brief(search(server, "a\\ b", tree)) == [("a b.txt", "file", 84, [0, 1, 2])]
    assert brief(search(server, "\\^y", tree)) == [("x^y.txt", "file", 56, [1, 2])]
    assert brief(search(server, "  x  ", tree)) == [
        ("x^y.txt", "file", 65570, [0]),
        ("a b.txt", "file", 65552, [5]),
    ]
