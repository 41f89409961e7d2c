"""The ``account/*`` methods the ChatGPT backend answers, end to end and against the reference.

Each case runs the same requests on our server and on the pinned official one, each in its
own CODEX_HOME (signed out, an API key, or a ChatGPT ``auth.json``) pointed by
``chatgpt_base_url`` at one loopback stand-in of the backend that records what it is asked.
The results (errors included) and the requests the backend saw must be the same.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codex_core.cli import server_command
from codex_core.testing import LoopbackRequest, Reply
from codex_core.testing.pytest_plugin import LoopbackFactory, needs_reference
from codex_core.testing.reference import reference_server_command
from codex_core.testing.session import NO_PARAMS, Session, run_session

ACCOUNT_METHODS = [
    ("account/usage/read", NO_PARAMS),
    ("account/workspaceMessages/read", NO_PARAMS),
    ("account/securitySetup/read", NO_PARAMS),
    ("account/rateLimitResetCredit/consume", {"idempotencyKey": "key-1"}),
    ("account/sendAddCreditsNudgeEmail", {"creditType": "credits"}),
]


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


TOKEN = jwt(
    {
        "email": "dev@example.com",
        "exp": 9_999_999_999,
        "https://api.openai.com/auth": {
            "chatgpt_plan_type": "pro",
            "chatgpt_account_id": "acct-1",
            "chatgpt_user_id": "user-1",
        },
    }
)
CHATGPT_AUTH = {
    "auth_mode": "chatgpt",
    "OPENAI_API_KEY": None,
    "tokens": {
        "id_token": TOKEN,
        "access_token": TOKEN,
        "refresh_token": "rt-1",
        "account_id": "acct-1",
    },
    "last_refresh": "2099-01-01T00:00:00Z",
}
API_KEY_AUTH = {"auth_mode": "apikey", "OPENAI_API_KEY": "sk-test"}


def make_home(root: Path, name: str, base_url: str, auth: dict[str, Any] | None) -> Path:
    home = root / name
    home.mkdir()
    (home / "config.toml").write_text(f'chatgpt_base_url = "{base_url}"\n')
    if auth is not None:
        (home / "auth.json").write_text(json.dumps(auth))
    return home


def method_requests(backend: Backend) -> list[tuple[str, str, Any]]:
    """What the methods asked the backend: the reference's background calls at startup (its
    plugin and account checks) are left out."""
    seen = []
    for request in backend.server.requests:
        if request.path.endswith("/wham/accounts/check") or "/ps/" in request.path:
            continue
        assert request.headers.get("authorization") == f"Bearer {TOKEN}"
        assert request.headers.get("chatgpt-account-id") == "acct-1"
        seen.append((request.method, request.path, request.json if request.body else None))
    return seen


Differ = Callable[..., tuple[Session, Session]]


@pytest.fixture
def both(tmp_path: Path, codex_env: dict[str, str], backend: Backend) -> Differ:
    """Run requests on our server and on the reference, each with its own home."""

    def run(
        requests: list[tuple[str, Any]],
        base_url: str,
        auth: dict[str, Any] | None,
        **options: Any,
    ) -> tuple[Session, Session]:
        reference = reference_server_command()
        assert reference is not None
        count = len(list(tmp_path.iterdir()))
        ours_home = make_home(tmp_path, f"ours-{count}", base_url, auth)
        theirs_home = make_home(tmp_path, f"theirs-{count}", base_url, auth)
        backend.rewind()
        ours = run_session(server_command(), ours_home, requests, env=codex_env, **options)
        backend.rewind()
        theirs = run_session(reference, theirs_home, requests, **options)
        return ours, theirs

    return run


# --------------------------------------------------------------------------- the stand-in

PROFILE = {
    "stats": {
        "lifetime_tokens": 123_456,
        "peak_daily_tokens": 9_000,
        "longest_running_turn_sec": 77,
        "current_streak_days": 2,
        "longest_streak_days": 5,
        "daily_usage_buckets": [
            {"start_date": "2026-11-30", "tokens": 1500},
            {"start_date": "2026-12-01", "tokens": 0},
        ],
    },
    "profile": {"display_name": "ignored"},
}
MESSAGES = {
    "messages": [
        {
            "message_id": "m-1",
            "message_type": "headline",
            "message_body": "Maintenance tonight",
            "created_at": "2026-12-01T10:00:00Z",
            "archived_at": None,
        },
        {"message_id": "m-2", "message_type": "banner", "message_body": "Hello"},
    ]
}
NOTICE = {
    "notice": {
        "title": "Turn on MFA",
        "description": "Protect your account",
        "action": {"label": "Set up", "url": "https://chatgpt.example/security"},
    }
}


class Backend:
    """A ChatGPT backend whose answer to each path a test can set (404 otherwise). Each server
    under test gets the same script: ``rewind()`` starts it again."""

    def __init__(self, start: LoopbackFactory) -> None:
        self.script: dict[str, list[Reply]] = {}
        self.replies: dict[str, list[Reply]] = {}
        self.server = start(self.handle)
        self.url = f"{self.server.url}/backend-api/"

    def rewind(self) -> None:
        self.replies = {path: list(replies) for path, replies in self.script.items()}

    def handle(self, request: LoopbackRequest) -> Reply:
        queued = self.replies.get(request.path.removeprefix("/backend-api"))
        if not queued:
            return Reply(404, {"detail": "Not Found"})
        return queued.pop(0) if len(queued) > 1 else queued[0]

    def answer(self, path: str, *replies: Reply) -> None:
        """Answer ``path`` with ``replies`` in turn, the last one from then on."""
        self.script[path] = list(replies)


@pytest.fixture
def backend(codex_loopback_factory: LoopbackFactory) -> Backend:
    return Backend(codex_loopback_factory)


# --------------------------------------------------------------------------- signed out


@needs_reference
@pytest.mark.parametrize("auth", [None, API_KEY_AUTH], ids=["signed-out", "api-key"])
def test_without_a_chatgpt_login(both: Differ, backend: Backend, auth: Any) -> None:
    """Signed out or with an API key: refusals, and no security notice; the backend is not
    asked."""
    ours, theirs = both(ACCOUNT_METHODS, backend.url, auth)
    assert ours.results == theirs.results
    assert ours.results[2] == {"notice": None}
    what = "codex account" if auth is None else "chatgpt"
    assert ours.results[0] == {
        "error": {"code": -32600, "message": f"{what} authentication required to read token usage"}
    }
    assert method_requests(backend) == []


# --------------------------------------------------------------------------- signed in


@needs_reference
def test_signed_in_answers(both: Differ, backend: Backend) -> None:
    backend.answer("/wham/profiles/me", Reply(200, PROFILE))
    backend.answer("/wham/workspace-messages", Reply(200, MESSAGES))
    backend.answer("/wham/security-setup", Reply(200, NOTICE))
    backend.answer(
        "/wham/rate-limit-reset-credits/consume",
        *(
            Reply(200, {"code": code})
            for code in ("reset", "nothing_to_reset", "no_credit", "already_redeemed")
        ),
    )
    backend.answer(
        "/wham/accounts/send_add_credits_nudge_email",
        Reply(204, b""),
        Reply(429, {"detail": "cooldown"}),
    )
    consume = [
        ("account/rateLimitResetCredit/consume", {"idempotencyKey": f"k{i}", "creditId": "c"})
        for i in range(3)
    ]
    requests = [
        *ACCOUNT_METHODS,
        *consume,
        ("account/sendAddCreditsNudgeEmail", {"creditType": "usage_limit"}),
    ]
    ours, theirs = both(requests, backend.url, CHATGPT_AUTH)
    assert ours.results == theirs.results
    usage, messages, notice, first, sent, *outcomes, cooldown = ours.results
    assert usage["summary"]["lifetimeTokens"] == 123_456
    assert usage["dailyUsageBuckets"][0] == {"startDate": "2026-11-30", "tokens": 1500}
    assert messages["messages"][0]["createdAt"] == 1_796_119_200
    assert messages["messages"][1]["messageType"] == "unknown"
    assert notice["notice"]["accountId"] == "acct-1"
    outcomes = [first, *outcomes]
    assert [o["outcome"] for o in outcomes] == [
        "reset",
        "nothingToReset",
        "noCredit",
        "alreadyRedeemed",
    ]
    assert (sent, cooldown) == ({"status": "sent"}, {"status": "cooldown_active"})
    # Both servers asked the same things, in the same order.
    seen = method_requests(backend)
    half = len(seen) // 2
    assert seen[:half] == seen[half:]
    assert seen[:half] == [
        ("GET", "/backend-api/wham/profiles/me", None),
        ("GET", "/backend-api/wham/workspace-messages", None),
        ("GET", "/backend-api/wham/security-setup", None),
        (
            "POST",
            "/backend-api/wham/rate-limit-reset-credits/consume",
            {"redeem_request_id": "key-1"},
        ),
        (
            "POST",
            "/backend-api/wham/accounts/send_add_credits_nudge_email",
            {"credit_type": "credits"},
        ),
        *(
            (
                "POST",
                "/backend-api/wham/rate-limit-reset-credits/consume",
                {"redeem_request_id": f"k{i}", "credit_id": "c"},
            )
            for i in range(3)
        ),
        (
            "POST",
            "/backend-api/wham/accounts/send_add_credits_nudge_email",
            {"credit_type": "usage_limit"},
        ),
    ]


@needs_reference
def test_backend_errors(both: Differ, backend: Backend) -> None:
    """A 404 everywhere: errors naming the call, workspace messages switched off, no notice."""
    ours, theirs = both(ACCOUNT_METHODS, backend.url, CHATGPT_AUTH)
    assert ours.results == theirs.results
    assert ours.results[1] == {"featureEnabled": False, "messages": []}
    assert ours.results[2] == {"notice": None}
    url = backend.url.rstrip("/")
    assert ours.results[0]["error"] == {
        "code": -32603,
        "message": f"failed to fetch token usage profile: GET {url}/wham/profiles/me failed: "
        '404 Not Found; content-type=application/json; body={"detail": "Not Found"}',
    }


@needs_reference
def test_backend_server_errors_and_bad_answers(both: Differ, backend: Backend) -> None:
    """A 500, a 409, and a reset code the protocol does not know."""
    backend.answer("/wham/workspace-messages", Reply(500, {"detail": "boom"}))
    backend.answer("/wham/security-setup", Reply(500, {"detail": "boom"}))
    backend.answer("/wham/rate-limit-reset-credits/consume", Reply(200, {"code": "later"}))
    backend.answer("/wham/accounts/send_add_credits_nudge_email", Reply(409, {}))
    ours, theirs = both(ACCOUNT_METHODS[1:], backend.url, CHATGPT_AUTH)
    assert ours.results == theirs.results
    assert ours.results[1] == {"notice": None}
    assert all("error" in result for i, result in enumerate(ours.results) if i != 1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@needs_reference
def test_unreachable_backend(both: Differ) -> None:
    """Nothing listens at ``chatgpt_base_url``."""
    requests = [*ACCOUNT_METHODS, ("account/rateLimits/read", NO_PARAMS)]
    ours, theirs = both(requests, f"http://127.0.0.1:{free_port()}/backend-api", CHATGPT_AUTH)
    assert ours.results == theirs.results
    assert ours.results[0]["error"]["message"].startswith(
        "failed to fetch token usage profile: error sending request for url (http://127.0.0.1:"
    )


@needs_reference
def test_usage_thread_id_checked(both: Differ, backend: Backend) -> None:
    """A malformed ``threadId`` is refused before anything is fetched."""
    requests = [
        ("account/usage/read", {"threadId": "bad"}),
        ("account/usage/read", {"threadId": "x" * 36}),
    ]
    ours, theirs = both(requests, backend.url, CHATGPT_AUTH)
    assert ours.results == theirs.results
    assert ours.results[0]["error"]["message"] == (
        "invalid thread id: invalid length: expected length 32 for simple format, found 3"
    )


@needs_reference
def test_malformed_params(both: Differ, backend: Backend) -> None:
    requests = [
        ("account/rateLimitResetCredit/consume", {}),
        ("account/sendAddCreditsNudgeEmail", {"creditType": "gold"}),
    ]
    ours, theirs = both(requests, backend.url, CHATGPT_AUTH)
    assert [r["error"]["code"] for r in ours.results] == [
        r["error"]["code"] for r in theirs.results
    ]
    assert ours.results[0] == theirs.results[0]


THREAD = "00000000-0000-7000-8000-000000000001"
GROUP = {
    "model": "gpt-5",
    "reasoning_effort": "high",
    "speed": None,
    "estimated_usage_credits_micros": 5,
    "net_new_input_tokens": 1,
    "cached_input_tokens": 2,
    "input_tokens": 3,
    "output_tokens": 4,
    "total_tokens": 7,
}


@needs_reference
def test_thread_usage(both: Differ, backend: Backend) -> None:
    """With a ``threadId`` only the thread's estimate is asked for: full and sparse rows, rows
    of other threads or none, a 403 (no estimate: null) and a 500."""
    full = {
        "thread_id": THREAD,
        "estimated_usage_credits_micros": 10,
        "estimated_usage_usd_micros": 20,
        "native_usage_usd_micros": 30,
        "groups": [GROUP],
    }
    backend.answer(
        "/wham/usage/thread_usage/query",
        Reply(200, {"threads": [full]}),
        Reply(200, {"threads": [{"thread_id": THREAD, "estimated_usage_credits_micros": 1}]}),
        Reply(200, {"threads": [{"thread_id": "other", "estimated_usage_credits_micros": 1}]}),
        Reply(200, {"threads": []}),
        Reply(403, {"detail": "no"}),
        Reply(500, {"detail": "boom"}),
    )
    requests = [("account/usage/read", {"threadId": THREAD})] * 6
    ours, theirs = both(requests, backend.url, CHATGPT_AUTH)
    assert ours.results == theirs.results
    assert ours.results[0]["threadUsage"]["groups"][0]["reasoningEffort"] == "high"
    assert ours.results[0]["summary"]["lifetimeTokens"] is None
    assert ours.results[4]["threadUsage"] is None
    assert [r["error"]["message"] for r in ours.results[2:4]] == [
        "failed to fetch thread usage: thread usage returned unexpected threads",
        "failed to fetch thread usage: thread usage response omitted requested thread",
    ]
    seen = method_requests(backend)
    assert (
        seen
        == [("POST", "/backend-api/wham/usage/thread_usage/query", {"thread_ids": [THREAD]})] * 12
    )


@needs_reference
def test_rate_limits_failures(both: Differ, backend: Backend) -> None:
    """``account/rateLimits/read`` words a failed usage call as the other methods do."""
    backend.answer("/wham/usage", Reply(404, {"detail": "nf"}), Reply(200, b"not json"))
    requests = [("account/rateLimits/read", NO_PARAMS)] * 2
    ours, theirs = both(requests, backend.url, CHATGPT_AUTH)
    assert ours.results[0] == theirs.results[0]
    assert ours.results[0]["error"]["message"].endswith(
        '/wham/usage failed: 404 Not Found; content-type=application/json; body={"detail": "nf"}'
    )
    # A body that is no JSON: the same error but for the decoder's wording of the problem.
    assert (
        ours.results[1]["error"]["message"].split(": ")[0:2]
        == (theirs.results[1]["error"]["message"].split(": ")[0:2])
    )
