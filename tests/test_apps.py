"""``app/list``, ``app/read``, ``app/installed``: the answers of the official server with the
``apps`` feature off (its default), signed out and signed in, and its checks of the params."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codex_core.cli import server_command
from codex_core.testing.pytest_plugin import StdioServer, needs_reference
from codex_core.testing.reference import reference_server_command
from codex_core.testing.session import NO_PARAMS, run_session

UNKNOWN_THREAD = "00000000-0000-7000-8000-000000000000"
REQUESTS: list[tuple[str, Any]] = [
    ("app/list", {}),
    ("app/list", {"cursor": "abc", "limit": 5, "forceRefetch": True}),
    ("app/read", {"appIds": ["b", "a", "b"], "includeTools": True}),
    ("app/read", {"appIds": []}),
    ("app/installed", {"forceRefresh": True}),
    # Errors: params missing or malformed, too many ids, a thread that is not loaded.
    ("app/list", NO_PARAMS),
    ("app/installed", NO_PARAMS),
    ("app/read", {}),
    ("app/read", {"appIds": [f"app-{i}" for i in range(101)]}),
    ("app/list", {"threadId": "bad"}),
    ("app/read", {"appIds": ["a"], "threadId": "x" * 36}),
    ("app/installed", {"threadId": UNKNOWN_THREAD}),
    ("app/list", {"threadId": UNKNOWN_THREAD.upper()}),
]


@needs_reference
@pytest.mark.parametrize("signed_in", [False, True], ids=["signed-out", "api-key"])
def test_apps_match_the_reference(
    tmp_path: Path, codex_env: dict[str, str], signed_in: bool
) -> None:
    homes = []
    for name in ("ours", "theirs"):
        home = tmp_path / name
        home.mkdir()
        if signed_in:
            (home / "auth.json").write_text(
                json.dumps({"auth_mode": "apikey", "OPENAI_API_KEY": "sk-test"})
            )
        homes.append(home)
    reference = reference_server_command()
    assert reference is not None
    ours = run_session(server_command(), homes[0], REQUESTS, env=codex_env)
    theirs = run_session(reference, homes[1], REQUESTS)
    assert ours.results == theirs.results
    assert ours.results[2] == {"apps": [], "missingAppIds": ["b", "a"]}
    assert ours.results[8] == {
        "error": {"code": -32602, "message": "app/read accepts at most 100 appIds"}
    }


def test_a_loaded_thread_is_accepted(server: StdioServer) -> None:
    thread_id = server.result("thread/start", {})["thread"]["id"]
    assert server.result("app/list", {"threadId": thread_id}) == {"data": [], "nextCursor": None}
    assert server.result("app/installed", {"threadId": thread_id}) == {"apps": []}
    assert server.result("app/read", {"appIds": ["a"], "threadId": thread_id}) == {
        "apps": [],
        "missingAppIds": ["a"],
    }
