"""Background terminals, ours against the official server, each pointed at a scripted model.

The same script runs against both (``danger-full-access``, approval ``never``: the pinned
reference cannot sandbox here): the model starts commands that outlive their ``exec_command``
call (one on a terminal), types into one with ``write_stdin``, types into one without a
terminal, polls another until it exits, names sessions that do not exist, and leaves one that
exits after the turn; then the client lists, pages, terminates and cleans. Compared, with ids,
times, session ids and wall times masked: what the model reads after each call, the
commandExecution items (each completes when its process ends, -1 when the client stopped it)
and terminal interactions the client sees, and every answer of
``thread/backgroundTerminals/*``.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from test_threads_differential import Masker

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call
from codex_core.testing.model_server import RecordedRequest
from codex_core.testing.pytest_plugin import StdioServer, server_command
from codex_core.testing.reference import reference_server_command

REFERENCE = reference_server_command()

pytestmark = pytest.mark.skipif(
    REFERENCE is None,
    reason="the official server is not installed (python -m codex_core.testing.reference)",
)

SESSION = re.compile(r"session ID (\d+)")
#: What changes from run to run in what the model reads.
VOLATILE = [(re.compile(r"Chunk ID: [0-9a-f]+"), "Chunk ID: <chunk>"),
            (re.compile(r"Wall time: [0-9.]+ seconds"), "Wall time: <wall>"),
            (SESSION, "session ID <session>"),
            (re.compile(r"process id [0-9]{4,}"), "process id <session>")]  # fmt: skip
ITEM_EVENTS = ("item/started", "item/completed", "item/commandExecution/terminalInteraction")


def sessions(request: RecordedRequest) -> list[int]:
    """The session ids the model was told so far, in order."""
    outputs = [item.get("output") for item in request.body["input"]]
    return [
        int(m.group(1)) for out in outputs if isinstance(out, str) for m in SESSION.finditer(out)
    ]


def call(name: str, call_id: str, **arguments: Any) -> ModelResponse:
    return ModelResponse([function_call(name, arguments, call_id=call_id)])


def script(model: ScriptedModelServer) -> None:
    model.add(
        call("exec_command", "c1", cmd="echo ready; cat", tty=True, login=False,
             yield_time_ms=1000),
        lambda r: call("write_stdin", "c2", session_id=sessions(r)[0], chars="hello\n",
                       yield_time_ms=1000),
        call("exec_command", "c3", cmd="sleep 60", login=False, yield_time_ms=250),
        call("exec_command", "c4", cmd="sleep 30", login=False, yield_time_ms=250),
        lambda r: call("write_stdin", "c5", session_id=sessions(r)[-1], chars="x"),
        call("exec_command", "c6", cmd="sleep 1; echo late; exit 3", login=False,
             yield_time_ms=250),
        lambda r: call("write_stdin", "c7", session_id=sessions(r)[-1], yield_time_ms=20000),
        lambda r: call("write_stdin", "c8", session_id=sessions(r)[-1], chars=""),
        call("write_stdin", "c9", session_id=1),
        call("write_stdin", "c9a"),
        lambda r: call("write_stdin", "c9b", session_id=sessions(r)[2], yield_time_ms=5000),
        call("exec_command", "c10", cmd="sleep 2; echo bye; exit 5", login=False,
             yield_time_ms=250),
        "started",
    )  # fmt: skip


def scenario(argv: list[str], home: Path) -> dict[str, Any]:
    home.mkdir(parents=True)
    cwd = home.parent / "cwd"
    cwd.mkdir()
    with ScriptedModelServer() as model:
        script(model)
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        args = ["-c", 'sandbox_mode="danger-full-access"', "-c", 'approval_policy="never"']
        server = StdioServer([*argv, *model.config_args(), *args], env, cwd)
        try:
            server.initialize(experimentalApi=True)
            thread = server.result("thread/start", {})["thread"]["id"]
            text = [{"type": "text", "text": "go"}]
            server.result("turn/start", {"threadId": thread, "input": text}, timeout=30)
            server.wait_notification("turn/completed", timeout=60)
            completed(server, "c10")
            outputs = [r.body["input"][-1]["output"] for r in model.requests[1:]]
            listed = server.result("thread/backgroundTerminals/list", {"threadId": thread})
            ids = [terminal["processId"] for terminal in listed["data"]]
            assert len(ids) == 3, listed
            page = {"threadId": thread, "limit": 1}
            first = server.result("thread/backgroundTerminals/list", page)
            second = server.result(
                "thread/backgroundTerminals/list", {**page, "cursor": first["nextCursor"]}
            )
            unknown = {"threadId": thread, "processId": "1"}
            known = {"threadId": thread, "processId": ids[0]}
            answers = {
                "list": sorted(listed["data"], key=lambda terminal: terminal["itemId"]),
                "listed by id": ids == sorted(ids, key=int),
                "first page": first["data"] == listed["data"][:1],
                "next cursor is its id": first["nextCursor"] == ids[0],
                "second page": second["data"] == listed["data"][1:2],
                "second next cursor": second["nextCursor"] == ids[1],
                "terminate unknown": server.result("thread/backgroundTerminals/terminate", unknown),
                "terminate": server.result("thread/backgroundTerminals/terminate", known),
                "terminated item": completed(server, listed["data"][0]["itemId"]),
                "terminate again": server.result("thread/backgroundTerminals/terminate", known),
                "after terminate": server.result(
                    "thread/backgroundTerminals/list", {"threadId": thread}
                )["data"]
                == listed["data"][1:],
                "clean": server.result("thread/backgroundTerminals/clean", {"threadId": thread}),
                "after clean": server.result(
                    "thread/backgroundTerminals/list", {"threadId": thread}
                ),
            }
            for terminal in listed["data"][1:]:
                completed(server, terminal["itemId"])
            server.barrier()
            events = [_item_event(n) for n in server.notifications if n["method"] in ITEM_EVENTS]
        finally:
            server.close()
    mask = Masker()
    for before, after in VOLATILE:
        outputs = [before.sub(after, output) for output in outputs]
    # Commands end in their own time: each item's events in order, the items by id.
    events.sort(key=lambda event: event.get("item", {}).get("id") or event.get("itemId", ""))
    # A stopped command's item reads -1, or (when the reference's exit watcher saw the process
    # go first) the code it died with: the reference races itself there.
    stopped = {terminal["itemId"] for terminal in listed["data"]}
    for event in events:
        item = event.get("item", {})
        if event["method"] == "item/completed" and item.get("id") in stopped:
            assert item["exitCode"] in (-1, 1, 137), item
            item["exitCode"] = "<stopped>"
    return _mask_sessions(mask({"outputs": outputs, "items": events, "answers": answers}))


def completed(server: StdioServer, item_id: str) -> dict[str, Any]:
    """The commandExecution item ``item_id`` once it completed (left in ``notifications``)."""

    def done() -> dict[str, Any] | None:
        for note in server.notifications:
            item = note["params"].get("item", {}) if note["method"] == "item/completed" else {}
            if item.get("id") == item_id:
                return dict(item)
        return None

    server.wait_until(lambda: done() is not None, timeout=30, what=f"{item_id} completed")
    item = done()
    assert item is not None
    return {"status": item["status"]}


def _item_event(note: dict[str, Any]) -> dict[str, Any]:
    params = dict(note["params"])
    item = params.get("item")
    if item is not None and item["type"] != "commandExecution":
        return {"method": note["method"], "type": item["type"]}
    return {"method": note["method"], **params}


def _mask_sessions(value: Any) -> Any:
    """Session ids (random in both servers) as ``<session>``; the cwd as ``<cwd>``."""
    if isinstance(value, dict):
        return {
            k: ("<session>" if k in ("processId", "nextCursor") and v else
                "<cwd>" if k == "cwd" else _mask_sessions(v))
            for k, v in value.items()
        }  # fmt: skip
    if isinstance(value, list):
        return [_mask_sessions(inner) for inner in value]
    return value


def test_background_terminals_agree_with_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = scenario(server_command(), tmp_path / "ours" / "home")
    reference = scenario(REFERENCE, tmp_path / "reference" / "home")
    for part in reference:
        assert ours[part] == reference[part], part


def interrupted(argv: list[str], home: Path) -> dict[str, Any]:
    """A turn interrupted while ``exec_command`` waits, then the thread archived: what the
    client sees of the command (its process is checked through the pid file it writes), and
    the archived thread read back."""
    home.mkdir(parents=True)
    cwd = home.parent / "cwd"
    cwd.mkdir()
    pid = cwd / "command.pid"
    with ScriptedModelServer() as model:
        model.add(call("exec_command", "c1", cmd="echo $$ > command.pid; exec sleep 60",
                       login=False, yield_time_ms=30000))  # fmt: skip
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        args = ["-c", 'sandbox_mode="danger-full-access"', "-c", 'approval_policy="never"']
        server = StdioServer([*argv, *model.config_args(), *args], env, cwd)
        try:
            server.initialize(experimentalApi=True)
            thread = server.result("thread/start", {})["thread"]["id"]
            text = [{"type": "text", "text": "go"}]
            turn = server.result("turn/start", {"threadId": thread, "input": text})["turn"]["id"]
            process = written(server, pid)
            # (Interrupted before its item started, the reference kills the command.)
            server.wait_until(
                lambda: any(n["method"] == "item/started" and n["params"]["item"]["id"] == "c1"
                            for n in server.notifications),
                what="the command's item started",
            )  # fmt: skip
            server.result("turn/interrupt", {"threadId": thread, "turnId": turn})
            status = server.wait_notification("turn/completed")["params"]["turn"]["status"]
            seen = {
                "turn": status,
                "running after the interrupt": running(process),
                "list": server.result("thread/backgroundTerminals/list", {"threadId": thread}),
                "archive": server.result("thread/archive", {"threadId": thread}),
            }
            server.wait_notification("thread/archived")
            seen["running after the archive"] = running(process)
            # The item completed after its turn: read back from the rollout, the turn lists it.
            read = {"threadId": thread, "includeTurns": True}
            turns = server.result("thread/read", read)["thread"]["turns"]
            seen["read back"] = [
                (turn["status"], [(item["type"], item.get("status")) for item in turn["items"]])
                for turn in turns
            ]
            seen["events"] = [
                _item_event(n) if n["method"] != "thread/status/changed" else n["params"]
                for n in server.notifications
                if n["method"] in (*ITEM_EVENTS, "thread/status/changed")
            ]
        finally:
            server.close()
    for event in seen["events"]:  # stopped by the archive: see ``scenario``
        if event.get("method") == "item/completed" and event.get("item", {}).get("id") == "c1":
            assert event["item"]["exitCode"] in (-1, 137), event
            event["item"]["exitCode"] = "<stopped>"
    return _mask_sessions(Masker()(seen))


def written(server: StdioServer, pid_file: Path, timeout: float = 10) -> int:
    """The pid the command wrote, once it did: polled, each look after a server round trip
    (the reference streams no output while ``exec_command`` waits, so nothing tells)."""
    deadline = time.monotonic() + timeout
    while not (pid_file.exists() and pid_file.read_text().endswith("\n")):
        assert time.monotonic() < deadline, f"{pid_file} not written within {timeout}s"
        server.barrier()
        time.sleep(0.05)
    return int(pid_file.read_text())


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_interrupt_and_archive_agree_with_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = interrupted(server_command(), tmp_path / "ours" / "home")
    reference = interrupted(REFERENCE, tmp_path / "reference" / "home")
    assert without_stopped_command(ours) == without_stopped_command(reference)
    assert reference["running after the interrupt"] and not reference["running after the archive"]
    # codex-core always completes the stopped command's item before the thread unloads, and
    # lists it in its turn when read back.
    completed = [e for e in ours["events"] if _completes_c1(e)]
    assert len(completed) == 1 and completed[0]["item"]["status"] == "failed"
    assert ("commandExecution", "failed") in ours["read back"][0][1]


def _completes_c1(event: dict[str, Any]) -> bool:
    return event.get("method") == "item/completed" and event.get("item", {}).get("id") == "c1"


def without_stopped_command(seen: dict[str, Any]) -> dict[str, Any]:
    """``seen`` without the completion of the command the archive stopped.

    The reference completes that item only when it sees the process end before the thread is
    unloaded, a race on its side (seen both ways), so the comparison leaves it out.
    """
    return {
        **seen,
        "events": [event for event in seen["events"] if not _completes_c1(event)],
        "read back": [
            (status, [item for item in items if item[0] != "commandExecution"])
            for status, items in seen["read back"]
        ],
    }
