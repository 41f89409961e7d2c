"""Paging a thread's history (thread/turns/list, thread/items/list) and steering a turn."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_turns import assert_valid, model, run_turn, serve, start_thread, user_text

from codex_core.testing import ModelResponse, ScriptedModelServer, message
from codex_core.testing.pytest_plugin import StdioServer

__all__ = ["model"]


def three_turns(start_server: Any, model: ScriptedModelServer) -> tuple[StdioServer, str]:
    model.add(*(ModelResponse([message(text)]) for text in ("one", "two", "three")))
    server = serve(start_server, model)
    thread_id = start_thread(server)
    for text in ("a", "b", "c"):
        run_turn(server, thread_id, text)
    return server, thread_id


def texts(turns: list[dict[str, Any]]) -> list[str]:
    return [turn["items"][0]["content"][0]["text"] for turn in turns]


def test_turns_page_newest_first_with_cursors(start_server: Any, model: Any) -> None:
    server, thread_id = three_turns(start_server, model)
    everything = server.result("thread/turns/list", {"threadId": thread_id})
    assert texts(everything["data"]) == ["c", "b", "a"]
    assert everything["nextCursor"] is None
    assert [t["itemsView"] for t in everything["data"]] == ["summary"] * 3
    assert [i["type"] for i in everything["data"][0]["items"]] == ["userMessage", "agentMessage"]
    assert_valid([{"result": everything}], "ThreadTurnsListResponse")

    first = server.result("thread/turns/list", {"threadId": thread_id, "limit": 1})
    assert texts(first["data"]) == ["c"]
    second = server.result(
        "thread/turns/list", {"threadId": thread_id, "limit": 1, "cursor": first["nextCursor"]}
    )
    assert texts(second["data"]) == ["b"]
    # backwardsCursor rereads in the other direction, its anchor included
    back = server.result(
        "thread/turns/list",
        {"threadId": thread_id, "cursor": second["backwardsCursor"], "sortDirection": "asc"},
    )
    assert texts(back["data"]) == ["b", "c"]
    ascending = server.result("thread/turns/list", {"threadId": thread_id, "sortDirection": "asc"})
    assert texts(ascending["data"]) == ["a", "b", "c"]
    bare = server.result("thread/turns/list", {"threadId": thread_id, "itemsView": "notLoaded"})
    assert all(t["items"] == [] and t["itemsView"] == "notLoaded" for t in bare["data"])


def test_turn_and_item_pages_refuse_bad_cursors_and_unknown_threads(
    start_server: Any, model: Any
) -> None:
    server, thread_id = three_turns(start_server, model)
    error = server.error("thread/turns/list", {"threadId": thread_id, "cursor": "zzz"})
    assert error == {"code": -32600, "message": "invalid cursor: zzz"}
    items = server.result("thread/items/list", {"threadId": thread_id, "limit": 1})
    # a cursor of one list is not a cursor of the other
    cursor = items["nextCursor"]
    error = server.error("thread/turns/list", {"threadId": thread_id, "cursor": cursor})
    assert error["message"].startswith("invalid cursor: ")
    unknown = "019a0000-0000-7000-8000-000000000000"
    error = server.error("thread/turns/list", {"threadId": unknown})
    assert error == {"code": -32600, "message": f"thread not loaded: {unknown}"}
    ephemeral = start_thread(server, ephemeral=True)
    error = server.error("thread/turns/list", {"threadId": ephemeral})
    assert error["message"] == "ephemeral threads do not support thread/turns/list"


def test_items_page_across_turns_and_within_one(start_server: Any, model: Any) -> None:
    server, thread_id = three_turns(start_server, model)
    page = server.result("thread/items/list", {"threadId": thread_id, "limit": 4})
    assert [e["item"]["type"] for e in page["data"]] == ["userMessage", "agentMessage"] * 2
    assert page["data"][0]["startedAtMs"] == page["data"][0]["item"]["startedAtMs"]
    rest = server.result("thread/items/list", {"threadId": thread_id, "cursor": page["nextCursor"]})
    assert [e["item"].get("text") for e in rest["data"]] == [None, "three"]
    assert rest["nextCursor"] is None
    assert_valid([{"result": rest}], "ThreadItemsListResponse")

    newest = server.result("thread/turns/list", {"threadId": thread_id, "limit": 1})["data"][0]
    in_turn = server.result("thread/items/list", {"threadId": thread_id, "turnId": newest["id"]})
    assert {e["turnId"] for e in in_turn["data"]} == {newest["id"]}
    user_item = in_turn["data"][0]["item"]["id"]
    after = server.result(
        "thread/items/list",
        {"threadId": thread_id, "turnId": newest["id"],
         "cursor": {"type": "item", "itemId": user_item}},
    )  # fmt: skip
    assert [e["item"]["type"] for e in after["data"]] == ["agentMessage"]
    error = server.error(
        "thread/items/list", {"threadId": thread_id, "cursor": {"type": "item", "itemId": "x"}}
    )
    assert error == {"code": -32602, "message": "turnId is required when cursor is an item anchor"}
    error = server.error(
        "thread/items/list",
        {"threadId": thread_id, "turnId": newest["id"], "cursor": {"type": "item", "itemId": "x"}},
    )
    assert error["message"] == (
        "cursor.itemId does not identify an item in the requested history scope"
    )
    nothing = server.result("thread/items/list", {"threadId": thread_id, "turnId": "nope"})
    assert nothing == {"data": [], "nextCursor": None, "backwardsCursor": None}


def test_pages_read_a_thread_that_is_not_loaded(
    start_server: Any, model: Any, codex_home: Any
) -> None:
    server, thread_id = three_turns(start_server, model)
    server.close()
    again = serve(start_server, model)
    page = again.result("thread/turns/list", {"threadId": thread_id, "sortDirection": "asc"})
    assert texts(page["data"]) == ["a", "b", "c"]
    items = again.result("thread/items/list", {"threadId": thread_id})
    assert len(items["data"]) == 6


def test_steer_adds_input_to_the_running_turn(start_server: Any, model: Any) -> None:
    model.add(ModelResponse([message("slow")], stall=5), ModelResponse([message("steered")]))
    server = serve(start_server, model)
    thread_id = start_thread(server)
    turn_id = server.result("turn/start", {"threadId": thread_id, "input": user_text("a")})["turn"][
        "id"
    ]
    server.wait_notification("item/agentMessage/delta")  # the model started answering
    steer = {"threadId": thread_id, "expectedTurnId": "other", "input": user_text("also")}
    error = server.error("turn/steer", steer)
    assert error["message"] == f"expected active turn id `other` but found `{turn_id}`"
    assert server.error("turn/steer", {**steer, "expectedTurnId": turn_id, "input": []}) == {
        "code": -32600,
        "message": "input must not be empty",
    }
    result = server.result("turn/steer", {**steer, "expectedTurnId": turn_id})
    assert result == {"turnId": turn_id}
    completed = server.wait_notification("turn/completed", timeout=15)
    assert completed["params"]["turn"]["status"] == "completed"
    # the stalled answer was cut short; the model was asked again with the steered input
    second = model.requests[1].body["input"]
    assert [entry.get("role") for entry in second] == ["user", "assistant", "user"]
    assert second[-1]["content"] == [{"type": "input_text", "text": "also"}]
    turn = server.result("thread/turns/list", {"threadId": thread_id, "itemsView": "full"})["data"][
        0
    ]
    assert [i.get("text") or i["content"][0]["text"] for i in turn["items"]] == [
        "a",
        "slow",
        "also",
        "steered",
    ]
    error = server.error("turn/steer", {**steer, "expectedTurnId": turn_id})
    assert error == {"code": -32600, "message": "no active turn to steer"}


@pytest.mark.parametrize("limit", [0, 1])
def test_zero_limit_still_returns_one_turn(start_server: Any, model: Any, limit: int) -> None:
    server, thread_id = three_turns(start_server, model)
    page = server.result("thread/turns/list", {"threadId": thread_id, "limit": limit})
    assert len(page["data"]) == 1
    assert json.loads(page["nextCursor"])["requestedThreadId"] == thread_id


def test_fork_copies_history_and_the_new_thread_goes_on(
    start_server: Any, model: Any, codex_home: Any
) -> None:
    server, source = three_turns(start_server, model)
    fork = server.result("thread/fork", {"threadId": source})
    thread = fork["thread"]
    assert thread["forkedFromId"] == source and thread["id"] != source
    assert [t["items"][0]["content"][0]["text"] for t in thread["turns"]] == ["a", "b", "c"]
    assert_valid([{"result": fork}], "ThreadForkResponse")
    started = server.wait_notification("thread/started")["params"]["thread"]
    assert started["id"] == thread["id"] and started["turns"] == []

    def of_fork(params: dict[str, Any]) -> bool:
        return bool(params["threadId"] == thread["id"])

    usage = server.wait_notification("thread/tokenUsage/updated", where=of_fork)["params"]
    assert usage["tokenUsage"]["total"]["totalTokens"] > 0
    server.barrier()
    assert not [
        n for n in server.notifications
        if n["method"] == "thread/tokenUsage/updated" and of_fork(n["params"])
    ], "the fork's token usage was reported twice"  # fmt: skip
    # the fork answers on its own, with the copied history in the model's input
    model.add(ModelResponse([message("forked answer")]))
    run_turn(server, thread["id"], "d")
    sent = [entry["content"][0]["text"] for entry in model.requests[-1].body["input"]]
    assert sent == ["a", "one", "b", "two", "c", "three", "d"]
    source_turns = server.result("thread/turns/list", {"threadId": source})["data"]
    assert len(source_turns) == 3  # the source is untouched
    # and it is on disk: listed, and readable after a restart
    server.close()
    again = serve(start_server, model)
    listed = again.result("thread/list", {})["data"]
    assert {t["id"]: t["forkedFromId"] for t in listed}[thread["id"]] == source
    page = again.result("thread/turns/list", {"threadId": thread["id"], "sortDirection": "asc"})
    assert texts(page["data"]) == ["a", "b", "c", "d"]


def test_fork_through_a_turn_and_errors(start_server: Any, model: Any) -> None:
    server, source = three_turns(start_server, model)
    turns = server.result("thread/turns/list", {"threadId": source, "sortDirection": "asc"})
    first = turns["data"][0]["id"]
    fork = server.result(
        "thread/fork", {"threadId": source, "lastTurnId": first, "excludeTurns": True}
    )
    assert fork["thread"]["turns"] == []
    page = server.result("thread/turns/list", {"threadId": fork["thread"]["id"]})
    assert texts(page["data"]) == ["a"]
    unknown = "019a0000-0000-7000-8000-000000000000"
    assert server.error("thread/fork", {"threadId": unknown}) == {
        "code": -32600,
        "message": f"no rollout found for thread id {unknown}",
    }
    error = server.error("thread/fork", {"threadId": source, "lastTurnId": "nope"})
    assert error == {"code": -32600, "message": "turn not found: nope"}


def test_fork_of_a_running_turn_ends_it_as_interrupted(start_server: Any, model: Any) -> None:
    model.add(ModelResponse([message("first")]), ModelResponse([message("slow")], stall=3))
    server = serve(start_server, model)
    source = start_thread(server)
    run_turn(server, source, "a")
    running = server.result("turn/start", {"threadId": source, "input": user_text("b")})["turn"]
    server.wait_notification(  # the model started answering the running turn
        "item/agentMessage/delta", where=lambda params: params["turnId"] == running["id"]
    )
    fork = server.result("thread/fork", {"threadId": source})["thread"]
    assert [t["status"] for t in fork["turns"]] == ["completed", "interrupted"]
    server.wait_notification("turn/completed", timeout=15)  # the source's turn goes on
    source_turns = server.result("thread/turns/list", {"threadId": source})["data"]
    assert [t["status"] for t in source_turns] == ["completed", "completed"]
    model.add(ModelResponse([message("after")]))
    run_turn(server, fork["id"], "c")
    sent = model.requests[-1].body["input"]
    assert "<turn_aborted>" in sent[-2]["content"][0]["text"]


def test_fork_and_interrupt_refusals_around_a_running_turn(start_server: Any, model: Any) -> None:
    """The reference's answers, observed on ``codex-peer app-server``."""
    model.add(ModelResponse([message("first")]), ModelResponse([message("slow")], stall=30))
    server = serve(start_server, model)
    source = start_thread(server)
    run_turn(server, source, "a")
    running = server.result("turn/start", {"threadId": source, "input": user_text("b")})["turn"]
    server.wait_notification(
        "item/agentMessage/delta", where=lambda params: params["turnId"] == running["id"]
    )
    through_running = {"threadId": source, "lastTurnId": running["id"], "excludeTurns": True}
    assert server.error("thread/fork", through_running) == {
        "code": -32600,
        "message": f"lastTurnId '{running['id']}' identifies an in-progress turn",
    }
    # An ephemeral fork without excludeTurns is refused first, as the reference does.
    assert server.error("thread/fork", {**through_running, "ephemeral": True,
                                        "excludeTurns": False}) == {
        "code": -32600,
        "message": "ephemeral paginated thread/fork requires `excludeTurns: true`",
    }  # fmt: skip
    # turn/interrupt words it unlike turn/steer: no backticks
    assert server.error("turn/interrupt", {"threadId": source, "turnId": "other"}) == {
        "code": -32600,
        "message": f"expected active turn id other but found {running['id']}",
    }
    assert server.result("turn/interrupt", {"threadId": source, "turnId": running["id"]}) == {}
    ended = server.wait_notification("turn/completed", timeout=15)["params"]["turn"]
    assert ended["status"] == "interrupted"
    assert server.error("turn/interrupt", {"threadId": source, "turnId": running["id"]}) == {
        "code": -32600,
        "message": "no active turn to interrupt",
    }
    unknown = "019a0000-0000-7000-8000-000000000000"
    assert server.error("turn/interrupt", {"threadId": unknown, "turnId": "t"}) == {
        "code": -32600,
        "message": f"thread not found: {unknown}",
    }
    assert server.error("thread/name/set", {"threadId": unknown, "name": "x"}) == {
        "code": -32600,
        "message": f"no rollout found for thread id {unknown}",
    }


def test_fork_of_an_unloaded_archived_or_ephemeral_thread(start_server: Any, model: Any) -> None:
    server, source = three_turns(start_server, model)
    settings = server.result("thread/read", {"threadId": source})["thread"]
    server.close()
    server = serve(start_server, model)  # the source is on disk only
    assert server.result("thread/loaded/list", {})["data"] == []
    assert server.error("thread/fork", {"threadId": source, "lastTurnId": "nope"}) == {
        "code": -32600,
        "message": "turn not found: nope",
    }
    assert server.error("thread/fork", {"threadId": source, "ephemeral": True}) == {
        "code": -32600,
        "message": "ephemeral paginated thread/fork requires `excludeTurns: true`",
    }
    ephemeral = server.result(
        "thread/fork", {"threadId": source, "ephemeral": True, "excludeTurns": True}
    )
    assert ephemeral["thread"]["ephemeral"] is True and ephemeral["thread"]["path"] is None
    fork = server.result("thread/fork", {"threadId": source})
    assert texts(fork["thread"]["turns"]) == ["a", "b", "c"]
    assert fork["cwd"] == settings["cwd"]  # the settings come from the rollout
    # An archived source is refused, loaded or not, with the reference's words.
    server.result("thread/archive", {"threadId": source})
    archived = {
        "code": -32600,
        "message": f"session {source} is archived. "
        f"Run `codex unarchive {source}` to unarchive it first.",
    }
    assert server.error("thread/fork", {"threadId": source}) == archived
    server.close()
    assert serve(start_server, model).error("thread/fork", {"threadId": source}) == archived
    # An ephemeral thread has no rollout to fork, before its first turn and after it.
    server = serve(start_server, model)
    transient = start_thread(server, ephemeral=True)
    missing = {"code": -32600, "message": f"no rollout found for thread id {transient}"}
    assert server.error("thread/fork", {"threadId": transient}) == missing
    model.add(ModelResponse([message("gone soon")]))
    run_turn(server, transient, "e")
    assert server.error("thread/fork", {"threadId": transient, "excludeTurns": True}) == missing


def test_delete_removes_the_rollout_and_tells_subscribers(
    start_server: Any, model: Any, codex_home: Any
) -> None:
    server, thread_id = three_turns(start_server, model)
    (path,) = (codex_home / "sessions").rglob(f"*{thread_id}.jsonl")
    server.barrier()
    server.notifications.clear()  # the turns' own notifications
    assert server.result("thread/delete", {"threadId": thread_id}) == {}
    status = server.wait_notification("thread/status/changed")["params"]
    assert status == {"threadId": thread_id, "status": {"type": "notLoaded"}}
    assert server.wait_notification("thread/deleted")["params"] == {"threadId": thread_id}
    assert not path.exists()
    assert server.result("thread/loaded/list", {})["data"] == []
    assert server.error("thread/delete", {"threadId": thread_id}) == {
        "code": -32600,
        "message": f"no rollout found for thread id {thread_id}",
    }


def test_an_unwatched_idle_thread_is_closed_and_can_be_resumed(
    start_server: Any, model: Any
) -> None:
    model.add(ModelResponse([message("one")]))
    server = serve(start_server, model, "-c", "threads.unload_idle_after_secs=0.3")
    thread_id = start_thread(server)
    run_turn(server, thread_id, "a")
    assert server.result("thread/unsubscribe", {"threadId": thread_id}) == {
        "status": "unsubscribed"
    }
    closed = server.wait_notification("thread/closed", timeout=10)
    assert closed["params"] == {"threadId": thread_id}
    assert server.result("thread/loaded/list", {})["data"] == []
    resumed = server.result("thread/resume", {"threadId": thread_id, "excludeTurns": True})
    assert resumed["thread"]["status"] == {"type": "idle"}
    assert server.result("thread/loaded/list", {})["data"] == [thread_id]


def test_read_state_follows_answers_and_marks(
    start_server: Any, model: Any, codex_home: Any
) -> None:
    model.add(ModelResponse([message("one")]), ModelResponse([message("two")]))
    server: StdioServer = start_server(*model.config_args(), env=model.env)
    server.initialize(experimentalApi=True)
    thread_id = start_thread(server)
    update = {"threadId": thread_id, "expectedRevision": "x", "operation": {"type": "read"}}
    assert server.error("thread/readState/update", update)["message"] == (
        "thread read state unavailable"
    )
    first = run_turn(server, thread_id, "a")
    (changed,) = [m["params"] for m in first if m.get("method") == "thread/readState/changed"]
    assert_valid([{"method": "thread/readState/changed", "params": changed}])
    turn_id = first[0]["result"]["turn"]["id"]
    state = changed["readState"]
    assert state["firstUnread"] == {"type": "turn", "turnId": turn_id}
    conflict = server.error("thread/readState/update", update)
    assert conflict == {"code": -32600, "message": "read state changed",
                        "data": {"reason": "readStateConflict", "readState": state}}  # fmt: skip
    seen = {**update, "expectedRevision": state["revision"]}
    read = server.result("thread/readState/update", seen)
    assert read["readState"]["firstUnread"] is None
    second = run_turn(server, thread_id, "b")
    (changed,) = [m["params"] for m in second if m.get("method") == "thread/readState/changed"]
    assert changed["readState"]["firstUnread"]["turnId"] == second[0]["result"]["turn"]["id"]
    # it lasts: a new server reads the same state back
    server.close()
    again: StdioServer = start_server(*model.config_args(), env=model.env)
    again.initialize()
    assert again.result("thread/read", {"threadId": thread_id})["readState"] == changed["readState"]
    assert again.result("thread/list", {})["readStates"] == {thread_id: changed["readState"]}
