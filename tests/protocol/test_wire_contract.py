"""Serialisation contract of the generated models: what goes on the wire."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from codex_core.protocol.models import load
from codex_core.protocol.types import ABSOLUTE_PATH_ERROR, absolute_path


def wire(model_name: str, data: Any) -> Any:
    return load(model_name).model_validate(data).model_dump(mode="json", by_alias=True)


def test_camel_case_aliases_and_snake_case_attributes() -> None:
    params = load("ThreadStartParams").model_validate({"approvalPolicy": "never", "model": "m"})
    assert params.approval_policy == "never"  # type: ignore[attr-defined]
    dumped = params.model_dump(mode="json", by_alias=True)
    assert dumped["approvalPolicy"] == "never"
    assert "approval_policy" not in dumped


def test_population_by_python_name() -> None:
    from codex_core.protocol.models import ThreadStartParams

    params = ThreadStartParams(approval_policy="never", base_instructions="be brief")
    dumped = params.model_dump(mode="json", by_alias=True)
    assert dumped["approvalPolicy"] == "never"
    assert dumped["baseInstructions"] == "be brief"


def test_optional_fields_are_emitted_as_null() -> None:
    dumped = wire("GetAccountResponse", {"account": None, "requiresOpenaiAuth": False})
    assert dumped["account"] is None
    assert "userId" in dumped
    assert dumped["userId"] is None


def test_snake_case_wire_keys_stay_snake_case() -> None:
    text = wire("UserInputRootModel", {"type": "text", "text": "hi", "text_elements": []})
    assert text == {"text": "hi", "text_elements": [], "type": "text"}
    decision = {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["ls"]}}
    assert wire("CommandExecutionApprovalDecision", decision) == decision
    update = wire("PatchChangeKind", {"type": "update", "move_path": "/tmp/new"})
    assert update == {"type": "update", "move_path": "/tmp/new"}


def test_decisions_accept_strings_and_single_key_objects() -> None:
    model = load("CommandExecutionRequestApprovalResponse")
    assert model.model_validate({"decision": "accept"}).decision == "accept"  # type: ignore[attr-defined]
    amended = model.model_validate(
        {"decision": {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["ls", "-l"]}}}
    )
    assert amended.model_dump(mode="json", by_alias=True) == {
        "decision": {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["ls", "-l"]}}
    }
    with pytest.raises(ValidationError):
        model.model_validate({"decision": "maybe"})
    with pytest.raises(ValidationError):  # single-key variants forbid extra keys
        model.model_validate({"decision": {"acceptWithExecpolicyAmendment": {}, "x": 1}})
    review = load("ReviewDecision")
    assert review.model_validate("approved").root == "approved"
    assert review.model_validate("timed_out").model_dump(mode="json") == "timed_out"


def test_tagged_unions_are_discriminated() -> None:
    sandbox = load("SandboxPolicy")
    with pytest.raises(ValidationError) as error:
        sandbox.model_validate({"type": "noSuchPolicy"})
    assert [e["type"] for e in error.value.errors()] == ["union_tag_invalid"]
    with pytest.raises(ValidationError) as error:
        sandbox.model_validate({})
    assert [e["type"] for e in error.value.errors()] == ["union_tag_not_found"]
    # ThreadItem: one variant (imageGeneration) is itself an untagged union
    item = load("ThreadItem")
    agent = item.model_validate({"type": "agentMessage", "id": "i1", "text": "hello"})
    assert type(agent.root).__name__ == "AgentMessageThreadItem"
    image = item.model_validate(
        {"type": "imageGeneration", "id": "i2", "status": "done", "result": "x"}
    )
    assert type(image.root).__name__ == "ResultThreadItem"
    with pytest.raises(ValidationError) as error:
        item.model_validate({"type": "noSuchItem", "id": "i3"})
    assert [e["type"] for e in error.value.errors()] == ["union_tag_invalid"]


def test_union_fields_accept_built_variants() -> None:
    from codex_core.protocol.models import AgentMessageThreadItem, ItemStartedNotification

    note = ItemStartedNotification(
        item=AgentMessageThreadItem(id="i1", text="hi"),
        started_at_ms=1,
        thread_id="t",
        turn_id="u",
    )
    dumped = note.model_dump(mode="json", by_alias=True)
    assert dumped["item"]["type"] == "agentMessage"
    assert dumped["item"]["text"] == "hi"
    assert dumped["startedAtMs"] == 1
    again = ItemStartedNotification.model_validate(dumped)
    assert again == note


def test_absolute_path_buf() -> None:
    model = load("FsReadFileParams")
    with pytest.raises(ValidationError) as error:
        model.model_validate({"path": "rel/x"})
    (problem,) = error.value.errors()
    assert problem["type"] == "value_error"
    assert str(problem["ctx"]["error"]) == ABSOLUTE_PATH_ERROR
    assert ABSOLUTE_PATH_ERROR == "AbsolutePathBuf deserialized without a base path"
    assert model.model_validate({"path": "/a/./b/../c/"}).path == "/a/c"  # type: ignore[attr-defined]
    assert absolute_path("/") == "/"
    for relative in ("", ".", "~/x", "x/../y"):
        with pytest.raises(ValueError, match=ABSOLUTE_PATH_ERROR):
            absolute_path(relative)


def test_plain_string_paths_stay_plain() -> None:
    # config/read's cwd is a plain string in the schema: the TUI sends "."
    assert load("ConfigReadParams").model_validate({"cwd": "."}).cwd == "."  # type: ignore[attr-defined]


def test_unsigned_integers_are_non_negative() -> None:
    model = load("ThreadListParams")
    assert model.model_validate({"limit": 5}).limit == 5  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        model.model_validate({"limit": -1})


def test_unknown_keys_are_ignored() -> None:
    dumped = wire("GetAccountParams", {"foo": 1})
    assert "foo" not in dumped
    assert dumped == wire("GetAccountParams", {})
