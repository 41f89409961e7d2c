"""``codex_core.Codex`` / ``AsyncCodex``: the typed embedding API, on the loopback model server.

Every test runs real turns in an in-process kernel (the one a host gets) against the scripted
Responses API; the differential test puts the same API in front of the pinned official server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codex_core import AsyncCodex, Codex, CodexError
from codex_core.embed import RunResult, TurnFailedError
from codex_core.embed.config import to_overrides
from codex_core.protocol.models import (
    AgentMessageDeltaNotification,
    AgentMessageThreadItem,
    CommandExecutionRequestApprovalParams,
    TurnCompletedNotification,
    TurnStartedNotification,
)
from codex_core.testing import (
    ModelResponse,
    ScriptedModelServer,
    function_call,
    http_error,
    message,
)
from codex_core.testing.pytest_plugin import needs_reference
from codex_core.testing.reference import reference_server_command


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def model(
    codex_model_server: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch
) -> ScriptedModelServer:
    monkeypatch.setenv(codex_model_server.env_key, codex_model_server.api_key)
    return codex_model_server


def model_config(model: ScriptedModelServer, **extra: Any) -> dict[str, Any]:
    """``Codex(config=...)`` pointing at the scripted model server."""
    provider = {
        "name": "mock",
        "base_url": model.base_url,
        "wire_api": "responses",
        "env_key": model.env_key,
        "request_max_retries": 0,
        "stream_max_retries": 0,
    }
    return {
        "model_provider": "mock",
        "model": "mock-model",
        "model_providers": {"mock": provider},
        **extra,
    }


def escalated(command: str, call_id: str) -> ModelResponse:
    arguments = {"cmd": command, "sandbox_permissions": "require_escalated"}
    return ModelResponse([function_call("exec_command", arguments, call_id=call_id)])


def test_run_stream_list_and_resume_without_async(
    model: ScriptedModelServer, tmp_path: Path
) -> None:
    model.add("Hello there!", "Bonjour!", "Still here.")
    home = tmp_path / "home"
    with Codex(home=home, config=model_config(model)) as codex:
        assert codex.info.codex_home == str(home)
        thread = codex.start_thread(cwd=tmp_path)
        result = thread.run("Say hello.")
        assert isinstance(result, RunResult)
        assert result.text == "Hello there!"
        assert [item.type for item in result.items] == ["userMessage", "agentMessage"]
        assert isinstance(result.items[-1], AgentMessageThreadItem)
        assert result.usage is not None and result.usage.total.total_tokens == 15
        assert result.turn.status == "completed"

        events = list(thread.stream("In French?"))
        assert isinstance(events[-1], TurnCompletedNotification)
        deltas = [e.delta for e in events if isinstance(e, AgentMessageDeltaNotification)]
        assert "".join(deltas) == "Bonjour!"
        assert {e.thread_id for e in events if hasattr(e, "thread_id")} == {thread.id}

        assert [stored.id for stored in codex.list_threads().data] == [thread.id]
    assert model.requests[1].input_texts()[-1] == "In French?"

    with Codex(home=home, config=model_config(model)) as again:
        resumed = again.resume_thread(thread.id)
        assert resumed.run("Still there?").text == "Still here."
    # The resumed thread sent its history: both earlier prompts and answers.
    assert model.requests[2].input_texts() == ["Say hello.", "In French?", "Still there?"]


def test_server_errors_and_failed_turns_are_typed(
    model: ScriptedModelServer, tmp_path: Path
) -> None:
    model.add(http_error(400, "the model refused"))
    with Codex(home=tmp_path / "home", config=model_config(model)) as codex:
        with pytest.raises(CodexError) as caught:
            codex.resume_thread("not-a-thread")
        assert caught.value.code == -32600
        assert caught.value.method == "thread/resume"
        assert "not-a-thread" in caught.value.message
        assert str(caught.value).startswith("thread/resume failed: ")

        with pytest.raises(CodexError) as bad:
            codex.request("thread/read", {"threadId": 5})
        assert bad.value.code == -32600 and "invalid type" in bad.value.message

        thread = codex.start_thread(cwd=tmp_path)
        with pytest.raises(TurnFailedError) as failed:
            thread.run("hi")
        assert failed.value.turn.status == "failed"
        assert "the model refused" in str(failed.value)


def test_config_becomes_overrides() -> None:
    overrides = to_overrides({"model": "m", "features": {"x": True}, "a.b": [1, "z"]})
    assert overrides == ['model="m"', "features.x=true", '"a.b"=[1, "z"]']
    with pytest.raises(ValueError, match="'model' is None: TOML has no null"):
        to_overrides({"model": None})


@pytest.mark.anyio
async def test_async_approvals_go_to_the_callback(
    model: ScriptedModelServer, tmp_path: Path
) -> None:
    model.add(escalated("touch made.txt", "c1"), "made it", escalated("touch no.txt", "c2"), "ok")
    asked: list[Any] = []

    async def approve(request: Any) -> str:
        asked.append(request)
        return "accept"

    config = model_config(model, approval_policy="on-request", sandbox_mode="read-only")
    async with AsyncCodex(home=tmp_path / "home", config=config, on_approval=approve) as codex:
        thread = await codex.start_thread(cwd=tmp_path)
        result = await thread.run("make a file")
        assert result.text == "made it"
        (request,) = asked
        assert isinstance(request, CommandExecutionRequestApprovalParams)
        assert request.item_id == "c1" and request.thread_id == thread.id
        assert (tmp_path / "made.txt").exists()
        assert "commandExecution" in [item.type for item in result.items]

        # A thread's own callback wins; "decline" is sent as the decision.
        declined = await codex.start_thread(cwd=tmp_path, on_approval=lambda request: "decline")
        await declined.run("another")
        assert not (tmp_path / "no.txt").exists()
        assert len(asked) == 1


def test_without_a_callback_approvals_are_declined(
    model: ScriptedModelServer, tmp_path: Path
) -> None:
    model.add(escalated("touch made.txt", "c1"), "was refused")
    config = model_config(model, approval_policy="on-request", sandbox_mode="read-only")
    with Codex(home=tmp_path / "home", config=config) as codex:
        result = codex.start_thread(cwd=tmp_path).run("make a file")
    assert result.text == "was refused"
    assert not (tmp_path / "made.txt").exists()
    sent = model.requests[1].body["input"]
    (output,) = [o for o in sent if o.get("type") == "function_call_output"]
    assert "rejected" in str(output["output"])


def test_a_sync_callback_answers_and_a_bad_answer_approves_nothing(
    model: ScriptedModelServer, tmp_path: Path
) -> None:
    model.add(escalated("touch a.txt", "c1"), "done", escalated("touch b.txt", "c2"), "done")
    config = model_config(model, approval_policy="on-request", sandbox_mode="read-only")
    with Codex(
        home=tmp_path / "home", config=config, on_approval=lambda r: "acceptForSession"
    ) as codex:
        assert codex.start_thread(cwd=tmp_path).run("a").text == "done"
        assert (tmp_path / "a.txt").exists()
        odd = codex.start_thread(cwd=tmp_path, on_approval=lambda request: "maybe")
        odd.run("b")
    assert not (tmp_path / "b.txt").exists()


def test_importing_codex_core_does_not_import_the_embedding_api() -> None:
    code = "import sys, codex_core; print('codex_core.embed' in sys.modules, codex_core.Codex)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("False <class 'codex_core.embed.blocking.Codex'>")
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = __import__("codex_core").Nope


@needs_reference
def test_the_same_api_in_front_of_the_reference(model: ScriptedModelServer, tmp_path: Path) -> None:
    """Ours in-process and the official server over stdio give the same typed results."""
    command = reference_server_command()
    assert command is not None
    outcomes = []
    for name, server in (("ours", None), ("reference", command)):
        model.add(message("Hello!", chunks=["Hel", "lo!"]), "Again.")
        config = model_config(model, approval_policy="never")
        with Codex(home=tmp_path / name, config=config, server=server) as codex:
            thread = codex.start_thread(cwd=tmp_path)
            result = thread.run("hi")
            events = list(thread.stream("again"))
            listed = [stored.id for stored in codex.list_threads().data]
            with pytest.raises(CodexError) as caught:
                codex.resume_thread("not-a-thread")
        outcomes.append(
            {
                "text": result.text,
                "items": [item.type for item in result.items],
                "status": result.turn.status,
                "tokens": result.usage.total.total_tokens if result.usage else None,
                "deltas": [e.delta for e in events if isinstance(e, AgentMessageDeltaNotification)],
                # (the reference also warns that it will not put helpers under /tmp)
                "kinds": sorted({type(e).__name__ for e in events} - {"WarningNotification"}),
                "last": type(events[-1]).__name__,
                "listed": listed == [thread.id],
                "error": caught.value.code,
            }
        )
    assert outcomes[0] == outcomes[1], repr(outcomes)


def test_interrupting_a_streamed_turn(model: ScriptedModelServer, tmp_path: Path) -> None:
    """The stream hands the host the turn id it needs to interrupt; the turn then ends
    ``interrupted`` and the stream with it."""
    model.add(ModelResponse([message("slow")], stall=60))
    with Codex(home=tmp_path / "home", config=model_config(model)) as codex:
        thread = codex.start_thread(cwd=tmp_path)
        statuses = []
        for event in thread.stream("take your time"):
            if isinstance(event, TurnStartedNotification):
                thread.interrupt(event.turn.id)
            if isinstance(event, TurnCompletedNotification):
                statuses.append(event.turn.status)
        assert statuses == ["interrupted"]


def children() -> set[int]:
    """This process's child processes (Linux)."""
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        found |= {int(pid) for pid in (task / "children").read_text().split()}
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc")
def test_a_server_that_dies_mid_turn(model: ScriptedModelServer, tmp_path: Path) -> None:
    model.add(ModelResponse([message("slow")], stall=60))
    before = children()
    server = [sys.executable, "-m", "codex_core"]
    with Codex(home=tmp_path / "home", config=model_config(model), server=server) as codex:
        (process,) = children() - before
        thread = codex.start_thread(cwd=tmp_path)
        with pytest.raises(ConnectionError, match=r"the session ended before turn .* completed"):
            for event in thread.stream("take your time"):
                if isinstance(event, TurnStartedNotification):
                    os.kill(process, signal.SIGKILL)


def test_a_server_command_that_does_not_exist_or_in_process_options(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Codex(home=tmp_path, server=[str(tmp_path / "no-such-server")])
    with pytest.raises(ValueError, match=r"^profile, plugins: only for the in-process kernel"):
        AsyncCodex(server=["codex"], profile="work", plugins=[object()])
