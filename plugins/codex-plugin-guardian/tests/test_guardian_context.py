"""The guardian's read-only context tools: it reads what a command would run before deciding,
only under the thread's working directory, for a bounded number of rounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_guardian import is_review, reviews, start, verdict
from test_guardian_flows import exec_call, text

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call, message
from codex_core.testing.model_server import RecordedRequest

pytest.importorskip("codex_plugin_shell")


def outputs(request: RecordedRequest) -> dict[str, str]:
    """The tool outputs the guardian was given, by call id."""
    return {item["call_id"]: item["output"] for item in request.body["input"]
            if item.get("type") == "function_call_output"}  # fmt: skip


def test_the_guardian_reads_the_script_before_deciding(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "deploy.sh").write_text('#!/bin/sh\nrm -rf "$HOME"\n')
    (tmp_path / "secret.txt").write_text("top secret")
    model = codex_model_server

    def guardian(request: RecordedRequest) -> ModelResponse:
        if not outputs(request):
            return ModelResponse([
                function_call("read_file", {"path": "deploy.sh"}, call_id="g_script"),
                function_call("read_file", {"path": "../secret.txt"}, call_id="g_secret"),
                function_call("list_dir", {"path": "."}, call_id="g_list"),
            ])  # fmt: skip
        return ModelResponse([message(verdict("deny", "high", "deploy.sh deletes $HOME."))])

    model.answer_matching(is_review, guardian)
    model.add(ModelResponse([exec_call("sh deploy.sh", "call_deploy")]),
              ModelResponse([message("not deployed")]))  # fmt: skip
    server = start(codex_server_factory, model)
    thread = server.result("thread/start", {"cwd": str(work)})["thread"]["id"]
    server.result("turn/start", {"threadId": thread, "input": text("deploy")})
    assert server.wait_notification("turn/completed", 20)["params"]["turn"]["status"] == "completed"
    _, done = reviews(server)
    assert done["params"]["review"]["status"] == "denied"
    assert server.server_requests == []
    first, second = [r for r in model.requests if is_review(r)]
    assert [tool["name"] for tool in first.body["tools"]] == ["read_file", "list_dir"]
    given = outputs(second)
    assert given["g_script"] == '#!/bin/sh\nrm -rf "$HOME"\n'
    assert "outside the working directory" in given["g_secret"]
    assert "top secret" not in given["g_secret"]
    assert given["g_list"] == "deploy.sh"
    # The calls themselves are part of the context the second round reads.
    calls = [i["call_id"] for i in second.body["input"] if i.get("type") == "function_call"]
    assert calls == ["g_script", "g_secret", "g_list"]


def test_a_guardian_that_only_calls_tools_falls_back_to_the_user(
    codex_server_factory: Any, codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    model = codex_model_server
    model.answer_matching(is_review, ModelResponse([function_call("list_dir", {"path": "."})]))
    model.add(ModelResponse([exec_call("touch x.txt", "call_x")]),
              ModelResponse([message("ok")]))  # fmt: skip
    server = start(codex_server_factory, model, "-c", "guardian.context_rounds=1")
    thread = server.result("thread/start", {"cwd": str(tmp_path)})["thread"]["id"]
    server.result("turn/start", {"threadId": thread, "input": text("make x")})
    request = server.wait_server_request("item/commandExecution/requestApproval", 20)
    _, done = reviews(server)
    assert done["params"]["review"]["status"] == "aborted"
    assert "called tools when it had to answer" in done["params"]["review"]["rationale"]
    first, last = [r for r in model.requests if is_review(r)]
    assert first.body["tools"] and last.body["tools"] == []
    server.send({"id": request["id"], "result": {"decision": "decline"}})
    assert server.wait_notification("turn/completed", 20)["params"]["turn"]["status"] == "completed"
    assert not (tmp_path / "x.txt").exists()
