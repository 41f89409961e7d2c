"""``thread/inject_items`` (what the TUI's ``/side`` sends after ``thread/fork``), ours against
the official server: the refusals word for word, and what the model reads afterwards."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing import ModelResponse, ScriptedModelServer, message
from codex_core.testing.pytest_plugin import StdioServer, server_command
from codex_core.testing.reference import reference_server_command

REFERENCE = reference_server_command()
UNKNOWN = "00000000-0000-7000-8000-000000000000"
SIDE_NOTE = {"type": "message", "role": "assistant",
             "content": [{"type": "output_text", "text": "side note"}]}  # fmt: skip

#: Requests the reference refuses (or takes), by what is wrong with them.
CASES: dict[str, dict[str, Any]] = {
    "unknown thread": {"threadId": UNKNOWN, "items": []},
    "no items": {"items": []},
    "a string": {"items": ["x"]},
    "null": {"items": [None]},
    "a list": {"items": [[]]},
    "no type": {"items": [{"role": "user"}]},
    "a numeric type": {"items": [{"type": 3}]},
    "a message without role": {"items": [{"type": "message", "content": []}]},
    "a message without content": {"items": [{"type": "message", "role": "user"}]},
    "text content": {"items": [{"type": "message", "role": "user", "content": "hi"}]},
    "the second item": {"items": [SIDE_NOTE, 5]},
    "a call without arguments": {"items": [{"type": "function_call", "name": "x"}]},
    "an unknown type": {"items": [{"type": "bogus"}]},
}


def strip_ids(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key != "id"}


def run(argv: list[str], tmp: Path) -> tuple[dict[str, Any], list[dict[str, Any]], bool]:
    """Every case's answer; the model input of a turn in an ephemeral fork after ``/side``'s
    injection (without the servers' own context messages); whether a fresh thread that got
    items has a rollout (``thread/turns/list`` works on it)."""
    home, cwd = tmp / "home", tmp / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    with ScriptedModelServer() as model:
        model.add(message("main answer"), message("side answer"))
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer([*argv, *model.config_args()], env, cwd)
        try:
            server.initialize()
            fresh = server.result("thread/start", {})["thread"]["id"]
            answers = {}
            for name, params in CASES.items():
                reply = server.request("thread/inject_items", {"threadId": fresh, **params})
                answers[name] = reply.get("error") or reply["result"]
            materialized = "result" in server.request("thread/turns/list", {"threadId": fresh})
            main = server.result("thread/start", {})["thread"]["id"]
            turn = {"threadId": main, "input": [{"type": "text", "text": "main question"}]}
            server.result("turn/start", turn)
            server.wait_notification("turn/completed", timeout=30)
            fork = {"threadId": main, "ephemeral": True, "excludeTurns": True}
            side = server.result("thread/fork", fork)["thread"]["id"]
            assert (
                server.result("thread/inject_items", {"threadId": side, "items": [SIDE_NOTE]}) == {}
            )
            turn = {"threadId": side, "input": [{"type": "text", "text": "side question"}]}
            server.result("turn/start", turn)
            server.wait_notification("turn/completed", where=lambda p: p["threadId"] == side,
                                     timeout=30)  # fmt: skip
        finally:
            server.close()
        model_input = model.requests[-1].body["input"]
    return answers, [strip_ids(item) for item in model_input if is_conversation(item)], materialized


def is_conversation(item: dict[str, Any]) -> bool:
    """Not one of the context messages the reference adds (developer instructions, the
    environment context, the note after an interrupt, which codex-core does not send)."""
    if item.get("role") == "developer":
        return False
    texts = [part.get("text", "") for part in item.get("content") or []]
    return not any(text.startswith(("<environment_context>", "<turn_aborted>")) for text in texts)


@pytest.mark.skipif(REFERENCE is None, reason="the official server is not installed")
def test_inject_items_matches_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = run(server_command(), tmp_path / "ours")
    theirs = run(REFERENCE, tmp_path / "reference")
    assert ours[0] == theirs[0]
    assert ours[0]["an unknown type"] == {}
    assert ours[1] == theirs[1]
    assert ours[1][-2:] == [
        SIDE_NOTE,
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "side question"}],
        },
    ]
    assert ours[2] is theirs[2] is True


def injected_mid_turn(
    argv: list[str], tmp: Path, *, interrupt: bool = False
) -> tuple[list[tuple[Any, Any]], int]:
    """Items injected while the model is answering (then, with ``interrupt``, the turn
    interrupted): what the next turn's model reads (role and text of the conversation) and
    how many requests the first turn made."""
    home, cwd = tmp / "home", tmp / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    with ScriptedModelServer() as model:
        first = ModelResponse([message("slow")], stall=2)
        model.add(first, *([] if interrupt else [message("after")]), message("next"))
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer([*argv, *model.config_args()], env, cwd)
        try:
            server.initialize()
            thread_id = server.result("thread/start", {})["thread"]["id"]
            turn = {"threadId": thread_id, "input": [{"type": "text", "text": "first"}]}
            server.result("turn/start", turn)
            model.wait_for_requests(1)
            injected = {"threadId": thread_id, "items": [SIDE_NOTE]}
            assert server.result("thread/inject_items", injected) == {}
            if interrupt:
                started = server.wait_notification("turn/started")["params"]["turn"]["id"]
                server.result("turn/interrupt", {"threadId": thread_id, "turnId": started})
            server.wait_notification("turn/completed", timeout=30)
            first_turn = len(model.requests)
            turn = {"threadId": thread_id, "input": [{"type": "text", "text": "second"}]}
            server.result("turn/start", turn)
            server.wait_notification("turn/completed", timeout=30)
        finally:
            server.close()
        read = [
            (item.get("role"), item["content"][0].get("text"))
            for item in model.requests[-1].body["input"]
            if is_conversation(item)
        ]
    return read, first_turn


@pytest.mark.skipif(REFERENCE is None, reason="the official server is not installed")
def test_items_injected_mid_turn_are_read_after_the_response_as_in_the_reference(
    tmp_path: Path,
) -> None:
    """The model reads them after the response it was giving, and is asked again in the
    same turn (no item notifications for them)."""
    assert REFERENCE is not None
    ours = injected_mid_turn(server_command(), tmp_path / "ours")
    theirs = injected_mid_turn(REFERENCE, tmp_path / "reference")
    assert ours == theirs == (
        [("user", "first"), ("assistant", "slow"), ("assistant", "side note"),
         ("assistant", "after"), ("user", "second")],
        2,
    )  # fmt: skip


@pytest.mark.skipif(REFERENCE is None, reason="the official server is not installed")
def test_an_interrupt_drops_items_injected_mid_turn_as_in_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = injected_mid_turn(server_command(), tmp_path / "ours", interrupt=True)
    theirs = injected_mid_turn(REFERENCE, tmp_path / "reference", interrupt=True)
    assert ours == theirs == ([("user", "first"), ("assistant", "slow"), ("user", "second")], 1)
