"""The scripted model server's request timestamps, which bench/turns.py subtracts from a turn."""

from __future__ import annotations

import time

import httpx

from codex_core.testing import ModelResponse, RecordedRequest, ScriptedModelServer, message


def finished(request: RecordedRequest) -> float:
    """``finished_at``, once the handler thread has stamped it (right after the last write)."""
    deadline = time.monotonic() + 5
    while request.finished_at is None:
        assert time.monotonic() < deadline, "finished_at was never set"
        time.sleep(0.001)
    return request.finished_at


def test_timestamps_bracket_the_streamed_answer() -> None:
    with ScriptedModelServer() as model:
        # created, item added, 2 deltas, item done, completed: 5 pauses of 10 ms
        model.add(ModelResponse([message("hi", chunks=["h", "i"])], delay=0.01))
        before = time.perf_counter()
        with httpx.stream("POST", f"{model.base_url}/responses", json={"model": "m"}) as response:
            body = response.read().decode()
        after = time.perf_counter()
        (request,) = model.requests
        assert "response.completed" in body
        assert before <= request.received_at <= after
        assert finished(request) - request.received_at >= 0.05


def test_unknown_paths_are_stamped_too() -> None:
    with ScriptedModelServer() as model:
        assert httpx.get(f"{model.base_url}/models").status_code == 404
        assert httpx.post(f"{model.base_url}/embeddings", json={}).status_code == 404
        assert [r.path for r in model.requests] == ["/v1/models", "/v1/embeddings"]
        for request in model.requests:
            assert finished(request) >= request.received_at
