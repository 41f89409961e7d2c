"""The generated method table (codex_core.protocol.methods)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codex_core.protocol.methods import (
    CLIENT_NOTIFICATIONS,
    CLIENT_REQUESTS,
    SERVER_NOTIFICATIONS,
    SERVER_REQUESTS,
    MethodSpec,
)
from codex_core.protocol.models import DEFINITIONS, load

SCHEMA = Path(__file__).resolve().parents[2] / "codex_core" / "protocol" / "schema"
TABLES = {
    "ClientRequest": CLIENT_REQUESTS,
    "ServerRequest": SERVER_REQUESTS,
    "ServerNotification": SERVER_NOTIFICATIONS,
    "ClientNotification": CLIENT_NOTIFICATIONS,
}


def union_methods(kind: str, union: str) -> list[str]:
    schema: dict[str, Any] = json.loads((SCHEMA / kind / f"{union}.json").read_text())
    return [variant["properties"]["method"]["enum"][0] for variant in schema["oneOf"]]


def test_counts() -> None:
    assert len(CLIENT_REQUESTS) == 184
    assert len(SERVER_NOTIFICATIONS) >= 86
    assert len([s for s in SERVER_REQUESTS.values() if not s.experimental]) == 10
    assert list(CLIENT_NOTIFICATIONS) == ["initialized"]


@pytest.mark.parametrize("union", sorted(TABLES))
def test_tables_follow_the_schema(union: str) -> None:
    table = TABLES[union]
    assert list(table) == union_methods("experimental", union)
    stable = set(union_methods("stable", union))
    for method, spec in table.items():
        assert spec.method == method
        assert spec.experimental == (method not in stable), method


def test_experimental_flags() -> None:
    assert CLIENT_REQUESTS["thread/start"].experimental is False
    assert CLIENT_REQUESTS["initialize"].experimental is False
    assert CLIENT_REQUESTS["collaborationMode/list"].experimental is True
    assert CLIENT_REQUESTS["mock/experimentalMethod"].experimental is True
    assert SERVER_REQUESTS["currentTime/read"].experimental is True
    assert "dynamicTools" in CLIENT_REQUESTS["thread/start"].experimental_fields
    assert "model" not in CLIENT_REQUESTS["thread/start"].experimental_fields


def test_params_and_results() -> None:
    start = CLIENT_REQUESTS["thread/start"]
    assert (start.params, start.result) == ("ThreadStartParams", "ThreadStartResponse")
    logout = CLIENT_REQUESTS["account/logout"]
    assert (logout.params, logout.result) == (None, "LogoutAccountResponse")
    requirements = CLIENT_REQUESTS["configRequirements/read"]
    assert (requirements.params, requirements.result) == (None, "ConfigRequirementsReadResponse")
    # nullable params are unwrapped to the real model
    rate_limits = CLIENT_REQUESTS["account/rateLimits/read"]
    assert rate_limits.params == "GetAccountRateLimitsParams"
    assert rate_limits.params_optional is True
    assert CLIENT_REQUESTS["config/value/write"].result == "ConfigWriteResponse"
    assert all(spec.result is None for spec in SERVER_NOTIFICATIONS.values())
    assert all(spec.result is None for spec in CLIENT_NOTIFICATIONS.values())
    assert CLIENT_NOTIFICATIONS["initialized"].params is None


def test_every_referenced_definition_exists_and_loads() -> None:
    specs: list[MethodSpec] = [s for table in TABLES.values() for s in table.values()]
    for spec in specs:
        for name in (spec.params, spec.result):
            if name is not None:
                assert name in DEFINITIONS, (spec.method, name)
                assert not name.startswith("Nullable"), (spec.method, name)
                load(name)
    for table in (CLIENT_REQUESTS, SERVER_REQUESTS):
        assert all(spec.result is not None for spec in table.values())


def test_experimental_fields_exist_in_params() -> None:
    for spec in CLIENT_REQUESTS.values():
        if not spec.experimental_fields:
            continue
        assert spec.params is not None
        model = load(spec.params)
        aliases = {field.alias or name for name, field in model.model_fields.items()}
        for path in spec.experimental_fields:
            assert path.split(".")[0] in aliases, (spec.method, path)
