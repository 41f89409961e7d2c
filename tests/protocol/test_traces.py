"""Every message of the captured official traces validates and survives a round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from codex_core.protocol.methods import (
    CLIENT_NOTIFICATIONS,
    CLIENT_REQUESTS,
    SERVER_NOTIFICATIONS,
    SERVER_REQUESTS,
    MethodSpec,
)
from codex_core.protocol.models import load

from ._trace_support import TRACES, Message, trace_messages, wire_differences

TRACE_FILES = sorted(TRACES.glob("*.ws.jsonl"))


def spec_and_payload(message: Message) -> tuple[MethodSpec | None, str | None, object]:
    """The method spec, the definition the payload must match, and the payload."""
    if message.kind == "response":
        # a response answers a request that went the other way
        requests = CLIENT_REQUESTS if message.direction == "s2c" else SERVER_REQUESTS
        spec = requests.get(message.method or "")
        return spec, spec.result if spec else None, message.msg["result"]
    if message.kind == "request":
        table = CLIENT_REQUESTS if message.direction == "c2s" else SERVER_REQUESTS
    else:
        table = CLIENT_NOTIFICATIONS if message.direction == "c2s" else SERVER_NOTIFICATIONS
    spec = table.get(message.method or "")
    return spec, spec.params if spec else None, message.msg.get("params")


@pytest.mark.parametrize("trace", TRACE_FILES, ids=lambda p: Path(p).name)
def test_trace_messages_validate_and_round_trip(trace: Path) -> None:
    problems: list[str] = []
    checked = 0
    for message in trace_messages(trace):
        if message.kind == "error":
            continue
        spec, definition, payload = spec_and_payload(message)
        if spec is None:
            problems.append(f"{message.where()}: method not in the schema")
            continue
        if definition is None:
            if payload not in (None, {}):
                problems.append(f"{message.where()}: params for a params-less method")
            continue
        try:
            model = load(definition).model_validate(payload)
        except ValidationError as error:
            problems.append(f"{message.where()}: {definition}: {error}")
            continue
        checked += 1
        dumped = model.model_dump(mode="json", by_alias=True)
        for difference in wire_differences(payload, dumped):
            problems.append(f"{message.where()}: {definition}{difference}")
    assert not problems, "\n".join(problems[:50])
    assert checked > 10
