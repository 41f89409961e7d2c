"""``thread/search`` (the TUI's ``@`` mentions), ours against the official server over the same
stored threads: the threads found, in order, with their snippets, and the refusals.

Both servers record the same conversations from a ``ScriptedModelServer`` (a long message for
the snippet's cuts, a name, an archived thread); the answers are compared after masking ids
(by order of appearance), times, paths under the test's folder and the server's version.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing import ScriptedModelServer, message, reasoning
from codex_core.testing.pytest_plugin import StdioServer, server_command
from codex_core.testing.reference import reference_server_command

REFERENCE = reference_server_command()
IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ROLLOUT_TIME = re.compile(r"rollout-[0-9T-]{19}-")
TIMES = {"createdAt", "updatedAt", "recencyAt"}
LONG = (
    " ".join(f"w{i}" * (1 + i % 4) for i in range(40))
    + " needle "
    + " ".join(f"t{i}" * (1 + i % 3) for i in range(50))
)
#: (user message, model answer) of each thread, oldest first.
CONVERSATIONS = [
    ("tell me about apples", [message("Apples are red\nand  tasty.")]),
    ("bananas please", [reasoning("a quokka thought"), message("Bananas answer.")]),
    (LONG, [message("cherry reply with apple pie")]),
    ("unrelated Apple thing", [message("archived answer")]),
]
SEARCHES: list[dict[str, Any]] = [
    {"searchTerm": "apple"},
    {"searchTerm": "APPLE", "sortDirection": "asc"},
    {"searchTerm": " apple "},
    {"searchTerm": "pples"},
    {"searchTerm": "and tasty"},
    {"searchTerm": "needle"},
    {"searchTerm": "w0"},
    {"searchTerm": "t49"},
    {"searchTerm": "quokka"},
    {"searchTerm": "Named"},
    {"searchTerm": "apple", "archived": True},
    {"searchTerm": "apple", "limit": 1},
    {"searchTerm": "apple", "sortKey": "updated_at"},
    {"searchTerm": "apple", "sourceKinds": ["exec"]},
    {"searchTerm": "zzz"},
    {"searchTerm": " "},
    {"searchTerm": "apple", "cursor": "garbage"},
    {},
]


def run(argv: list[str], root: Path) -> list[Any]:
    home, cwd = root / "home", root / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    with ScriptedModelServer() as model:
        for _text, answer in CONVERSATIONS:
            model.add(answer)
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer([*argv, *model.config_args()], env, cwd)
        try:
            server.initialize(experimentalApi=True)
            ids = []
            for text, _answer in CONVERSATIONS:
                thread_id = server.result("thread/start", {})["thread"]["id"]
                ids.append(thread_id)
                turn = {"threadId": thread_id, "input": [{"type": "text", "text": text}]}
                server.result("turn/start", turn)
                server.wait_notification(
                    "turn/completed", where=lambda p, t=thread_id: p["threadId"] == t, timeout=30
                )
            server.result("thread/name/set", {"threadId": ids[1], "name": "Named banana"})
            server.result("thread/archive", {"threadId": ids[3]})
            answers = []
            for params in SEARCHES:
                reply = server.request("thread/search", params)
                answers.append(reply.get("error") or reply["result"])
        finally:
            server.close()
        plain = StdioServer([*argv, *model.config_args()], env, cwd)
        try:
            plain.initialize()
            answers.append(plain.request("thread/search", {"searchTerm": "apple"})["error"])
        finally:
            plain.close()
    ids: dict[str, str] = {}
    return [masked(answer, str(root), ids) for answer in answers]


def masked(value: Any, root: str, ids: dict[str, str], key: str = "") -> Any:
    """Ids become ``<idN>`` in order of appearance; times, cursors, the version and the
    test's folder are masked."""
    if isinstance(value, dict):
        return {name: masked(inner, root, ids, name) for name, inner in value.items()}
    if isinstance(value, list):
        return [masked(inner, root, ids, key) for inner in value]
    if value is not None and (key in TIMES or key == "cliVersion" or key.endswith("Cursor")):
        return f"<{key}>"
    if isinstance(value, str):
        value = ROLLOUT_TIME.sub("rollout-<time>-", value.replace(root, "<root>"))
        return IDS.sub(lambda m: ids.setdefault(m.group(0), f"<id{len(ids) + 1}>"), value)
    return value


@pytest.mark.skipif(REFERENCE is None, reason="the official server is not installed")
def test_thread_search_matches_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = run(server_command(), tmp_path / "ours")
    theirs = run(REFERENCE, tmp_path / "reference")
    for request, mine, reference in zip(
        [*SEARCHES, "no experimentalApi"], ours, theirs, strict=True
    ):
        assert mine == reference, request
    snippets = [entry["snippet"] for entry in ours[0]["data"]]
    assert snippets == ["cherry reply with apple pie", "tell me about apples"]
    needle = ours[SEARCHES.index({"searchTerm": "needle"})]
    assert needle["data"][0]["snippet"].startswith("... ")
