"""Optional properties whose schema type does not admit null (serde ``default`` fields).

The reference rejects an explicit ``null`` there ("invalid type: null, expected a boolean")
and leaves the key out when the value is unset; properties whose type admits null keep
accepting ``null`` and are dumped as ``null`` when unset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from codex_core.protocol.models import load
from codex_core.protocol.types import NotNull, null_error
from codex_core.rpc.validation import serde_message

SCHEMA = Path(__file__).resolve().parents[2] / "codex_core" / "protocol" / "schema"
SOURCE = "/tmp/src.txt"
DESTINATION = "/tmp/dst.txt"
PATHS = {"sourcePath": SOURCE, "destinationPath": DESTINATION}


def definitions() -> dict[str, Any]:
    bundle = json.loads(
        (SCHEMA / "experimental" / "codex_app_server_protocol.schemas.json").read_text()
    )
    found: dict[str, Any] = dict(bundle["definitions"]["v2"])
    found.update({k: v for k, v in bundle["definitions"].items() if k != "v2"})
    return found


def property_schema(definition: str, prop: str) -> tuple[dict[str, Any], bool]:
    """(schema, required) of one property of a top-level object definition."""
    schema = definitions()[definition]
    return schema["properties"][prop], prop in schema.get("required", [])


def dumps(model: BaseModel) -> dict[str, Any]:
    """Both wire forms, checked to agree."""
    dumped = model.model_dump(mode="json", by_alias=True)
    assert json.loads(model.model_dump_json(by_alias=True)) == dumped
    return dumped


def validation_error(model: type[BaseModel], data: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data, strict=True)
    return caught.value


def test_explicit_null_is_rejected_with_the_serde_message() -> None:
    schema, required = property_schema("FsCopyParams", "recursive")
    assert schema["type"] == "boolean"
    assert not required
    model = load("FsCopyParams")
    error = validation_error(model, {**PATHS, "recursive": None})
    (problem,) = error.errors()
    assert problem["type"] == "value_error"
    assert problem["loc"] == ("recursive",)
    assert isinstance(problem["ctx"]["error"], ValueError)
    assert str(problem["ctx"]["error"]) == "invalid type: null, expected a boolean"
    # what the router answers (after "Invalid request: ")
    assert serde_message(error) == "invalid type: null, expected a boolean"
    # non-strict validation too
    with pytest.raises(ValidationError, match="expected a boolean"):
        model.model_validate({**PATHS, "recursive": None})


@pytest.mark.parametrize(
    ("definition", "data", "expected"),
    [
        ("SkillsListParams", {"cwds": None}, "a sequence"),
        ("ThreadRealtimeAppendTextParams", {"threadId": "t", "text": "", "role": None},
         "string or map"),
        ("ConfigReadParams", {"includeLayers": None}, "a boolean"),
    ],
)  # fmt: skip
def test_serde_expectations(definition: str, data: dict[str, Any], expected: str) -> None:
    # messages as the reference (codex 0.169.0) words them
    error = validation_error(load(definition), data)
    assert serde_message(error) == null_error(expected)
    assert null_error(expected) == f"invalid type: null, expected {expected}"


def test_nested_null_names_the_field() -> None:
    error = validation_error(
        load("InitializeParams"),
        {"clientInfo": {"name": "c", "version": "1"}, "capabilities": {"experimentalApi": None}},
    )
    assert serde_message(error) == (
        "invalid type: null, expected a boolean at `capabilities.experimentalApi`"
    )


def test_wrong_types_keep_their_own_errors() -> None:
    error = validation_error(load("FsCopyParams"), {**PATHS, "recursive": "yes"})
    assert serde_message(error) == 'invalid type: string "yes", expected a boolean'


def test_absent_is_none_and_omitted_on_output() -> None:
    from codex_core.protocol.models import FsCopyParams

    params = FsCopyParams.model_validate(PATHS)
    assert params.recursive is None
    assert dumps(params) == PATHS
    # by Python name as well
    assert "recursive" not in params.model_dump()


@pytest.mark.parametrize("value", [True, False])
def test_set_values_are_emitted(value: bool) -> None:
    from codex_core.protocol.models import FsCopyParams

    params = FsCopyParams(source_path=SOURCE, destination_path=DESTINATION, recursive=value)
    assert dumps(params) == {**PATHS, "recursive": value}


def test_schema_defaults_are_emitted() -> None:
    # `kind` is optional, non-null, with a default: dumped with its default, never as null
    model = load("CommandExecutionRequestApprovalParams")
    base = {"itemId": "i", "startedAtMs": 1, "threadId": "t", "turnId": "u"}
    dumped = dumps(model.model_validate(base))
    assert dumped["kind"] == "command"
    error = validation_error(model, {**base, "kind": None})
    assert serde_message(error) == "invalid type: null, expected string or map"
    unset = model.model_validate(base).model_copy(update={"kind": None})
    assert "kind" not in dumps(unset)


def test_nullable_optional_fields_keep_null() -> None:
    schema, required = property_schema("CommandExecutionRequestApprovalParams", "approvalId")
    assert schema["type"] == ["string", "null"]
    assert not required
    schema, required = property_schema("CommandExecutionRequestApprovalParams", "cwd")
    assert {"type": "null"} in schema["anyOf"]
    assert not required
    model = load("CommandExecutionRequestApprovalParams")
    base = {"itemId": "i", "startedAtMs": 1, "threadId": "t", "turnId": "u"}
    params = model.model_validate({**base, "approvalId": None, "cwd": None}, strict=True)
    dumped = dumps(params)
    assert dumped["approvalId"] is None
    assert dumped["cwd"] is None
    assert dumps(model.model_validate(base))["reason"] is None  # absent -> null


def test_config_read_response_layers_follow_the_schema() -> None:
    schema, required = property_schema("ConfigReadResponse", "layers")
    assert not required
    nullable = "null" in schema["type"]
    assert nullable  # `["array", "null"]` (Option<Vec<ConfigLayer>> without skip)
    from codex_core.protocol.models import ConfigReadResponse

    response = ConfigReadResponse.model_validate({"config": {}, "origins": {}})
    assert response.layers is None
    assert dumps(response)["layers"] is None
    explicit = ConfigReadResponse.model_validate(
        {"config": {}, "origins": {}, "layers": None}, strict=True
    )
    assert dumps(explicit)["layers"] is None


def test_nested_and_union_members_omit_unset_fields() -> None:
    spec = load("DynamicToolSpec")
    tool = {"type": "function", "name": "n", "description": "d", "inputSchema": {}}
    assert dumps(spec.model_validate(tool)) == tool
    with_flag = {**tool, "deferLoading": True}
    assert dumps(spec.model_validate(with_flag)) == with_flag
    params = load("ThreadStartParams").model_validate({"dynamicTools": [tool]})
    assert dumps(params)["dynamicTools"] == [tool]
    # a variant class carrying its flattened parent's properties (ImageGenerationThreadItem)
    item = load("ThreadItem").model_validate(
        {"type": "imageGeneration", "id": "i", "status": "done", "result": "x"}
    )
    assert "inputImages" not in dumps(item)


def test_python_construction_with_explicit_none_is_rejected() -> None:
    from codex_core.protocol.models import FsCopyParams

    with pytest.raises(ValidationError, match="expected a boolean"):
        FsCopyParams(source_path=SOURCE, destination_path=DESTINATION, recursive=None)


def is_marked(field: Any) -> bool:
    return any(isinstance(m, NotNull) for m in field.metadata)


def admits_null(schema: Any, defs: dict[str, Any]) -> bool:
    if not isinstance(schema, dict):
        return True
    types = schema.get("type")
    if types == "null" or (isinstance(types, list) and "null" in types):
        return True
    if "$ref" in schema:
        return admits_null(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            return any(admits_null(v, defs) for v in schema[keyword])
    if "allOf" in schema:
        return all(admits_null(v, defs) for v in schema["allOf"])
    return types is None and "enum" not in schema


def test_every_top_level_object_is_marked_as_its_schema_says() -> None:
    defs = definitions()
    marked = 0
    for name, schema in sorted(defs.items()):
        if schema.get("type") != "object" or "properties" not in schema or "oneOf" in schema:
            continue
        model = load(name)
        by_wire = {(f.alias or attr): f for attr, f in model.model_fields.items()}
        for prop, sub in schema["properties"].items():
            field = by_wire[prop]
            expected = prop not in schema.get("required", []) and not admits_null(sub, defs)
            assert is_marked(field) == expected, f"{name}.{prop}"
            assert (field.exclude_if is not None) == expected, f"{name}.{prop}"
            marked += expected
    assert marked > 100
