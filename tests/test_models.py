"""model/list with model_catalog_json, and the deprecated OPENAI_BASE_URL variable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_turns import assert_valid, model, run_turn, start_thread

from codex_core.testing import ModelResponse, ScriptedModelServer, message
from codex_core.testing.pytest_plugin import StdioServer

REPO = Path(__file__).resolve().parents[1]

__all__ = ["model"]

CATALOG = REPO / "tests" / "fixtures" / "reference" / "apply_patch.catalog.json"


def test_model_catalog_json_overlays_the_built_in_catalog(
    start_server: Any, tmp_path: Path
) -> None:
    builtin: StdioServer = start_server()
    builtin.initialize()
    default = builtin.result("model/list", {"includeHidden": True})["data"]
    info = json.loads(CATALOG.read_text())["models"][0]
    replaced = {**info, "slug": default[1]["id"], "display_name": "Replaced"}
    overlay = tmp_path / "models.json"
    overlay.write_text(json.dumps({"models": [info, replaced]}))
    server: StdioServer = start_server("-c", f'model_catalog_json="{overlay}"')
    server.initialize()
    listed = server.result("model/list", {"includeHidden": True})
    assert_valid([{"result": listed}], "ModelListResponse")
    by_id = {entry["id"]: entry for entry in listed["data"]}
    assert len(listed["data"]) == len(default) + 1
    assert by_id["mock-model"] == {**by_id["mock-model"], "displayName": "Mock", "hidden": False,
                                   "description": "", "defaultReasoningEffort": "none",
                                   "isDefault": False}  # fmt: skip
    assert by_id[default[1]["id"]]["displayName"] == "Replaced"
    assert [e["id"] for e in listed["data"] if e["isDefault"]] == [default[0]["id"]]
    overlay.write_text("{not json")
    error = server.error("model/list", {})
    assert error["code"] == -32600 and error["message"].startswith(f"model_catalog_json {overlay}")


def test_the_legacy_base_url_variable_still_works_with_a_notice(
    start_server: Any, model: ScriptedModelServer
) -> None:
    model.add(ModelResponse([message("from the legacy URL")]))
    server: StdioServer = start_server(
        "-c", 'model="mock-model"',
        env={"OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": model.api_key},
    )  # fmt: skip
    server.initialize()
    notice = server.wait_notification("deprecationNotice")["params"]
    assert notice["summary"].startswith("`OPENAI_BASE_URL` is deprecated")
    thread_id = start_thread(server)
    messages = run_turn(server, thread_id, "hi")
    assert messages[-1]["params"]["turn"]["status"] == "completed"
    assert len(model.requests) == 1
