"""Thread attachments, ours against the official server, value by value.

Attachments need a stored thread, which needs a turn, which a case file cannot run: each
server gets a ``ScriptedModelServer``, one turn, then (in a new process, as a client after a
restart) the same attachment requests, refusals included. Results and the
``thread/attachment/updated`` notifications are compared after masking ids and times.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from test_threads_differential import Masker

from codex_core.testing import ScriptedModelServer, message
from codex_core.testing.pytest_plugin import StdioServer, server_command
from codex_core.testing.reference import reference_server_command

REFERENCE = reference_server_command()
MISSING = "00000000-0000-7000-8000-000000000002"
ADD = "thread/attachment/add"


def requests(thread_id: str) -> list[tuple[str, dict[str, Any]]]:
    pr = {"threadId": thread_id, "attachmentType": "pr", "identityKey": "github.com/o/r/1"}
    return [
        (ADD, {**pr, "payload": {"n": 1}}),
        (ADD, {**pr, "payload": {"n": 2}}),  # the same identity: the first one
        (
            ADD,
            {"threadId": thread_id, "attachmentType": "pr", "identityKey": "k2", "payload": None},
        ),
        (
            ADD,
            {
                "threadId": thread_id.upper(),
                "attachmentType": " pr ",
                "identityKey": "k3",
                "payload": [1],
            },
        ),
        (ADD, {"threadId": "bad", "attachmentType": "", "identityKey": "k", "payload": 1}),
        (ADD, {"threadId": "bad", "attachmentType": "t", "identityKey": "k", "payload": 1}),
        (ADD, {"threadId": thread_id, "attachmentType": "t", "identityKey": " ", "payload": 1}),
        (ADD, {"threadId": MISSING, "attachmentType": "t", "identityKey": "k", "payload": 1}),
        (ADD, {"threadId": thread_id, "attachmentType": "t", "identityKey": "k"}),
        ("thread/attachment/list", {"threadId": thread_id}),
        ("thread/attachment/list", {"threadId": thread_id, "limit": 1}),
        ("thread/attachment/list", {"threadId": thread_id, "limit": 0}),
        ("thread/attachment/list", {"threadId": thread_id, "cursor": "garbage"}),
        ("thread/attachment/list", {"threadId": MISSING}),
        ("thread/attachment/list", {"threadId": "bad"}),
        ("thread/attachmentOwner/list", {"attachmentType": "pr", "identityKey": "k2"}),
        ("thread/attachmentOwner/list", {"attachmentType": "pr", "identityKey": "nope"}),
        ("thread/attachmentOwner/list", {"attachmentType": "", "identityKey": "k2"}),
        (
            "thread/attachment/remove",
            {"threadId": thread_id, "attachmentType": "pr", "identityKey": "k2"},
        ),
        (
            "thread/attachment/remove",
            {"threadId": thread_id, "attachmentType": "pr", "identityKey": "k2"},
        ),
        (
            "thread/attachment/remove",
            {"threadId": MISSING, "attachmentType": "t", "identityKey": "k"},
        ),
        ("thread/archive", {"threadId": thread_id}),
        (
            "thread/attachmentOwner/list",
            {"attachmentType": "pr", "identityKey": "github.com/o/r/1", "archived": False},
        ),
        (
            "thread/attachmentOwner/list",
            {"attachmentType": "pr", "identityKey": "github.com/o/r/1", "archived": True},
        ),
        ("thread/attachment/list", {"threadId": thread_id}),
    ]


def attachment_session(argv: list[str], home: Path, cwd: Path) -> dict[str, Any]:
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    with ScriptedModelServer() as model:
        model.add(message("Hello."))
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer([*argv, *model.config_args()], env, cwd)
        try:
            server.initialize(experimentalApi=True)
            thread_id = server.result("thread/start", {})["thread"]["id"]
            # Before its first turn the thread is not stored: "not found", as the reference.
            early = server.request(ADD, {"threadId": thread_id, "attachmentType": "t",
                                         "identityKey": "k", "payload": 1})  # fmt: skip
            turn = {"threadId": thread_id, "input": [{"type": "text", "text": "hi"}]}
            server.result("turn/start", turn, timeout=30)
            server.wait_notification("turn/completed", timeout=30)
        finally:
            server.close()
        again = StdioServer([*argv, *model.config_args()], env, cwd)
        try:
            again.initialize(experimentalApi=True)
            answers = [again.request(method, params) for method, params in requests(thread_id)]
            again.barrier()
            updates = [n["params"] for n in again.notifications
                       if n["method"] == "thread/attachment/updated"]  # fmt: skip
        finally:
            again.close()
    mask = Masker()
    masked = [mask({k: v for k, v in answer.items() if k != "id"}) for answer in [early, *answers]]
    for answer in masked:
        attachment = (answer.get("result") or {}).get("attachment")
        for item in [attachment] if attachment else (answer.get("result") or {}).get("data", []):
            if "createdAt" in item:
                item["createdAt"] = "<time>"
        if str((answer.get("result") or {}).get("nextCursor", "")).count("|") == 2:
            answer["result"]["nextCursor"] = "<cursor>"
    return {"answers": masked, "updates": mask(updates)}


@pytest.mark.skipif(REFERENCE is None, reason="the official server is not installed")
def test_attachments_agree_with_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = attachment_session(server_command(), tmp_path / "ours", tmp_path / "ours-cwd")
    theirs = attachment_session(REFERENCE, tmp_path / "ref", tmp_path / "ref-cwd")
    assert ours == theirs
    answers = ours["answers"]
    assert answers[0]["error"] == {"code": -32602, "message": "thread not found: <id1>"}
    assert answers[2]["result"]["outcome"] == "existing"
    assert [update["operation"] for update in ours["updates"]] == [
        "created",
        "created",
        "created",
        "deleted",
    ]
