"""The apply_patch tool end to end over stdio: the fileChange item, approvals, the turn's diff,
atomic writes, and the reference's message order for the same scripted model (the recordings
``tests/fixtures/reference/patch_*.messages.jsonl`` were made with ``codex-peer app-server``
and ``apply_patch.catalog.json`` as ``model_catalog_json``, which makes it offer the tool)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_tools_shell import ENVIRONMENTAL, Recorder, names, reference_messages, validate_request
from test_turns import assert_valid, serve, start_thread, user_text

from codex_core.testing import ModelResponse, ScriptedModelServer, message
from codex_core.testing.model_server import OutputItem
from codex_core.testing.pytest_plugin import StdioServer

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("codex_plugin_apply_patch")

REFERENCE = REPO / "tests" / "fixtures" / "reference"
FINAL = "MOCK-FINAL-ANSWER: patched."
PATCHES = {
    "add": "*** Begin Patch\n*** Add File: hello.txt\n+hello\n+world\n*** End Patch\n",
    "update": "*** Begin Patch\n*** Update File: a.txt\n@@\n one\n-two\n+TWO\n three\n"
    "*** Update File: b.txt\n*** Move to: c.txt\n@@\n-bee\n+sea\n*** Delete File: d.txt\n"
    "*** End Patch\n",
    "bad": "*** Begin Patch\n*** Update File: a.txt\n@@\n-nothere\n+x\n*** End Patch\n",
}
FILES = {"a.txt": "one\ntwo\nthree\n", "b.txt": "bee\n", "d.txt": "dee\n"}


def custom_call(name: str, text: str, call_id: str, item_id: str) -> OutputItem:
    """A freeform tool call (``custom_tool_call``), as the Responses API streams it."""
    base = {"type": "custom_tool_call", "id": item_id, "call_id": call_id, "name": name}
    return OutputItem(
        added={**base, "input": "", "status": "in_progress"},
        deltas=[{"type": "response.custom_tool_call_input.delta", "delta": text}],
        done={**base, "input": text, "status": "completed"},
    )


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    for name, text in FILES.items():
        (folder / name).write_text(text)
    return folder


def script(model: ScriptedModelServer, patch: str) -> None:
    model.add(
        ModelResponse([custom_call("apply_patch", PATCHES[patch], "call_resp_1", "ctc_resp_1")]),
        ModelResponse([message(FINAL, id="msg_resp_2")]),
    )


def patch_server(start_server: Any, model: ScriptedModelServer, sandbox: str) -> StdioServer:
    return serve(start_server, model, "-c", 'approval_policy="on-request"',
                 "-c", f'sandbox_mode="{sandbox}"')  # fmt: skip


def run(server: StdioServer, workdir: Path, answer: str | None = None) -> list[dict[str, Any]]:
    thread_id = start_thread(server, cwd=str(workdir))
    recorder = Recorder(server)
    server.send({"id": 2, "method": "turn/start",
                 "params": {"threadId": thread_id, "input": user_text("do it")}})  # fmt: skip
    server.wait_response(2)
    if answer is not None:
        request = server.wait_server_request("item/fileChange/requestApproval")
        validate_request(request)
        server.send({"id": request["id"], "result": {"decision": answer}})
    server.wait_notification("turn/completed")
    return recorder.messages


def file_change(messages: list[dict[str, Any]], method: str = "item/completed") -> dict[str, Any]:
    for msg in messages:
        if msg.get("method") == method and msg["params"]["item"]["type"] == "fileChange":
            return dict(msg["params"]["item"])
    raise AssertionError(f"no fileChange {method}")


def relative(item: dict[str, Any], root: str) -> list[dict[str, Any]]:
    return json.loads(json.dumps(item["changes"]).replace(root.rstrip("/") + "/", "<cwd>/"))


def diffs(messages: list[dict[str, Any]]) -> list[str]:
    return [m["params"]["diff"] for m in messages if m.get("method") == "turn/diff/updated"]


def test_accept_applies_the_patch_in_the_reference_order(
    start_server: Any, model: ScriptedModelServer, workdir: Path
) -> None:
    script(model, "update")
    server = patch_server(start_server, model, "read-only")
    messages = run(server, workdir, "accept")
    reference = reference_messages("patch_accept")
    assert names(messages) == names(reference)
    assert_valid([m for m in messages if "method" in m and "id" not in m])
    ref_item = file_change(reference)
    ref_root = ref_item["changes"][0]["path"].rsplit("/", 1)[0]
    assert relative(file_change(messages), str(workdir)) == relative(ref_item, ref_root)
    assert file_change(messages)["status"] == "completed"
    assert diffs(messages) == diffs(reference)
    assert sorted(p.name for p in workdir.iterdir()) == ["a.txt", "c.txt"]
    assert (workdir / "a.txt").read_text() == "one\nTWO\nthree\n"
    assert (workdir / "c.txt").read_text() == "sea\n"
    seen = model.requests[1].body["input"][-1]
    assert seen["type"] == "custom_tool_call_output"
    assert seen["output"].startswith("Exit code: 0\nWall time: ")
    assert seen["output"].endswith(
        "Output:\nSuccess. Updated the following files:\nM a.txt\nM c.txt\nD d.txt\n"
    )


def test_the_tool_is_offered_as_a_freeform_grammar_tool(
    start_server: Any, model: ScriptedModelServer, workdir: Path
) -> None:
    model.add(ModelResponse([message("ok")]))
    server = patch_server(start_server, model, "read-only")
    thread_id = start_thread(server, cwd=str(workdir))
    server.result("turn/start", {"threadId": thread_id, "input": user_text("hi")})
    server.wait_notification("turn/completed")
    tools = {tool["name"]: tool for tool in model.requests[0].body["tools"]}
    spec = tools["apply_patch"]
    assert spec["type"] == "custom"
    assert spec["format"]["type"] == "grammar" and spec["format"]["syntax"] == "lark"
    assert "*** Begin Patch" in spec["format"]["definition"]


def test_decline_leaves_the_files_and_tells_the_model(
    start_server: Any, model: ScriptedModelServer, workdir: Path
) -> None:
    script(model, "add")
    server = patch_server(start_server, model, "read-only")
    messages = run(server, workdir, "decline")
    assert names(messages) == names(reference_messages("patch_decline"))
    assert file_change(messages)["status"] == "declined"
    assert not (workdir / "hello.txt").exists()
    assert not diffs(messages)
    assert model.requests[1].body["input"][-1]["output"] == "patch rejected by user"


def test_cancel_ends_the_turn_as_interrupted(
    start_server: Any, model: ScriptedModelServer, workdir: Path
) -> None:
    model.add(ModelResponse([custom_call("apply_patch", PATCHES["add"], "c1", "ctc1")]))
    server = patch_server(start_server, model, "read-only")
    thread_id = start_thread(server, cwd=str(workdir))
    server.send({"id": 2, "method": "turn/start",
                 "params": {"threadId": thread_id, "input": user_text("do it")}})  # fmt: skip
    server.wait_response(2)
    request = server.wait_server_request("item/fileChange/requestApproval")
    server.send({"id": request["id"], "result": {"decision": "cancel"}})
    done = server.wait_notification("turn/completed")
    assert done["params"]["turn"]["status"] == "interrupted"
    assert not (workdir / "hello.txt").exists()
    assert len(model.requests) == 1


def test_workspace_write_applies_inside_the_cwd_without_asking(
    start_server: Any, model: ScriptedModelServer, workdir: Path
) -> None:
    script(model, "add")
    server = patch_server(start_server, model, "workspace-write")
    messages = run(server, workdir)
    reference = reference_messages("patch_workspace_add")
    assert names(messages) == names(reference)
    assert not server.server_requests
    assert (workdir / "hello.txt").read_text() == "hello\nworld\n"
    assert diffs(messages) == diffs(reference)
    assert file_change(messages)["changes"] == [
        {"path": str(workdir / "hello.txt"), "kind": {"type": "add"}, "diff": "hello\nworld\n"}
    ]


def test_a_patch_that_does_not_fit_changes_nothing_and_the_turn_goes_on(
    start_server: Any, model: ScriptedModelServer, workdir: Path
) -> None:
    script(model, "bad")
    server = patch_server(start_server, model, "workspace-write")
    messages = run(server, workdir)
    assert names(messages) == names(reference_messages("patch_malformed"))
    assert not [m for m in messages if m.get("method") == "item/started"
                and m["params"]["item"]["type"] == "fileChange"]  # fmt: skip
    output = model.requests[1].body["input"][-1]["output"]
    assert output == (
        f"apply_patch verification failed: Failed to find expected lines in "
        f"{workdir / 'a.txt'}:\nnothere"
    )
    assert {p.name: p.read_text() for p in workdir.iterdir()} == FILES


def test_a_malformed_patch_is_reported_to_the_model(
    start_server: Any, model: ScriptedModelServer, workdir: Path
) -> None:
    model.add(
        ModelResponse([custom_call("apply_patch", "*** Begin Patch\nnonsense\n", "c1", "t1")]),
        ModelResponse([message(FINAL)]),
    )
    server = patch_server(start_server, model, "workspace-write")
    messages = run(server, workdir)
    done = [m for m in messages if m.get("method") == "turn/completed"]
    assert not done or done[0]["params"]["turn"]["status"] == "completed"
    assert (
        model.requests[1]
        .body["input"][-1]["output"]
        .startswith("apply_patch verification failed: invalid patch")
    )


def test_write_outside_the_cwd_asks_under_workspace_write(
    start_server: Any, model: ScriptedModelServer, workdir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.txt"
    patch = f"*** Begin Patch\n*** Add File: {outside}\n+x\n*** End Patch\n"
    model.add(ModelResponse([custom_call("apply_patch", patch, "c1", "t1")]),
              ModelResponse([message(FINAL)]))  # fmt: skip
    server = patch_server(start_server, model, "workspace-write")
    run(server, workdir, "accept")
    assert outside.read_text() == "x\n"


def test_the_turn_diff_accumulates_over_patches(
    start_server: Any, model: ScriptedModelServer, workdir: Path
) -> None:
    first = "*** Begin Patch\n*** Update File: a.txt\n@@\n-two\n+2\n*** End Patch\n"
    second = "*** Begin Patch\n*** Update File: a.txt\n@@\n-three\n+3\n*** End Patch\n"
    model.add(ModelResponse([custom_call("apply_patch", first, "c1", "t1")]),
              ModelResponse([custom_call("apply_patch", second, "c2", "t2")]),
              ModelResponse([message(FINAL)]))  # fmt: skip
    server = patch_server(start_server, model, "workspace-write")
    messages = run(server, workdir)
    last = diffs(messages)[-1]
    assert "@@ -1,3 +1,3 @@\n one\n-two\n-three\n+2\n+3\n" in last
    assert last.startswith(
        "diff --git a/a.txt b/a.txt\nindex 4cb29ea38f70d7c61b2a3a25b02e3bdf44905402.."
    )
    assert (workdir / "a.txt").read_text() == "one\n2\n3\n"
    assert ENVIRONMENTAL  # the same filter as the command tests


def test_the_file_change_is_stored_and_read_back_like_the_reference(
    start_server: Any, model: ScriptedModelServer, workdir: Path
) -> None:
    script(model, "update")
    server = patch_server(start_server, model, "workspace-write")
    messages = run(server, workdir)
    item = file_change(messages)
    thread_id = next(m["params"]["threadId"] for m in messages if "params" in m)
    thread = server.result("thread/read", {"threadId": thread_id, "includeTurns": True})["thread"]
    stored = [i for i in thread["turns"][0]["items"] if i["type"] == "fileChange"]
    assert stored == [{**item, "startedAtMs": stored[0]["startedAtMs"],
                       "completedAtMs": stored[0]["completedAtMs"]}]  # fmt: skip
    line = next(
        json.loads(entry)
        for entry in Path(thread["path"]).read_text().splitlines()
        if '"FileChange"' in entry
    )
    changes = line["payload"]["item"]["changes"]
    assert changes[str(workdir / "b.txt")] == {
        "type": "update", "unified_diff": "@@ -1 +1 @@\n-bee\n+sea\n",
        "move_path": str(workdir / "c.txt"),
    }  # fmt: skip
    assert changes[str(workdir / "d.txt")] == {"type": "delete", "content": "dee\n"}
