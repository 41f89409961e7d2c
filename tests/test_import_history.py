"""``externalAgentConfig/import/recordHistory`` and ``.../readHistories``, compared with the
official server: what is recorded, newest first, kept across restarts, and imports done by
``externalAgentConfig/import`` recorded too (``providerId`` null)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_core.cli import server_command
from codex_core.testing.pytest_plugin import needs_reference
from codex_core.testing.reference import reference_server_command
from codex_core.testing.session import NO_PARAMS, run_session

RECORD = {
    "providerId": "claude-desktop",
    "itemTypeResults": [
        {
            "itemType": "CONFIG",
            "successes": [{"itemType": "CONFIG", "source": "/a/settings.json", "target": "/b"}],
            "failures": [
                {
                    "itemType": "SKILLS",
                    "failureStage": "copy",
                    "message": "disk full",
                    "errorType": "io",
                },
            ],
        },
        {
            "itemType": "SESSIONS",
            "successes": [{"itemType": "SESSIONS", "cwd": "/repo", "title": "Fix the build"}],
            "failures": [],
        },
    ],
}


OTHER = {"providerId": "other", "itemTypeResults": []}


def masked(result: Any) -> Any:
    """A ``readHistories`` result without the ids and times every run makes anew, its entries
    in ``providerId`` order (two recorded in the same millisecond may come either way; the
    order is checked by ``newest_first``)."""
    if "data" not in result:
        return result
    entries = [
        {k: v for k, v in entry.items() if k not in ("importId", "completedAtMs")}
        for entry in result["data"]
    ]
    return sorted(entries, key=lambda entry: str(entry["providerId"]))


def newest_first(result: Any) -> bool:
    times = [entry["completedAtMs"] for entry in result["data"]]
    return times == sorted(times, reverse=True)


def commands() -> list[tuple[str, list[str]]]:
    reference = reference_server_command()
    assert reference is not None
    return [("ours", server_command()), ("theirs", reference)]


@needs_reference
def test_histories_match_the_reference(tmp_path: Path, codex_env: dict[str, str]) -> None:
    first: list[tuple[str, Any]] = [
        ("externalAgentConfig/import/readHistories", NO_PARAMS),
        ("externalAgentConfig/import/recordHistory", RECORD),
        ("externalAgentConfig/import/recordHistory", OTHER),
        ("externalAgentConfig/import/readHistories", {}),
        # Errors: no results, an unknown item type.
        ("externalAgentConfig/import/recordHistory", {"providerId": "p"}),
        (
            "externalAgentConfig/import/recordHistory",
            {
                "providerId": "p",
                "itemTypeResults": [{"itemType": "NOPE", "successes": [], "failures": []}],
            },
        ),
    ]
    runs = {}
    for name, command in commands():
        home = tmp_path / name
        home.mkdir()
        env = codex_env if name == "ours" else None
        session = run_session(command, home, first, env=env)
        again = run_session(
            command, home, [("externalAgentConfig/import/readHistories", {})], env=env
        )
        runs[name] = (session.results, again.results)
    (ours, ours_again), (theirs, theirs_again) = runs["ours"], runs["theirs"]
    assert ours[0] == theirs[0] == {"data": [], "connectors": []}
    assert set(ours[1]) == set(theirs[1]) == {"importId"}
    assert masked(ours[3]) == masked(theirs[3])
    assert newest_first(ours[3]) and newest_first(theirs[3])
    assert [entry["providerId"] for entry in ours[3]["data"]] == ["other", "claude-desktop"]
    assert ours[3]["data"][1]["importId"] == ours[1]["importId"]
    # Errors: the same, but for the path of a nested field ours adds (serde names none).
    for mine, reference in zip(ours[4:], theirs[4:], strict=True):
        assert {**mine["error"], "message": mine["error"]["message"].split(" at `")[0]} == (
            reference["error"]
        )
    # Kept across a restart.
    assert ours_again == [ours[3]]
    assert masked(theirs_again[0]) == masked(ours_again[0])


@needs_reference
def test_an_import_is_recorded(tmp_path: Path, codex_env: dict[str, str]) -> None:
    fake_home = tmp_path / "user"
    (fake_home / ".claude").mkdir(parents=True)
    (fake_home / ".claude" / "CLAUDE.md").write_text("Be brief.\n")
    results = {}
    for name, command in commands():
        home = tmp_path / name
        home.mkdir()
        env = {**codex_env, "HOME": str(fake_home)} if name == "ours" else {"HOME": str(fake_home)}
        item = {"itemType": "AGENTS_MD", "description": "x", "cwd": None}
        session = run_session(
            command,
            home,
            [
                ("externalAgentConfig/import", {"migrationItems": [item]}),
            ],
            env=env,
            wait_for=["externalAgentConfig/import/completed"],
        )
        read = run_session(
            command, home, [("externalAgentConfig/import/readHistories", {})], env=env
        )
        [entry] = read.results[0]["data"]
        assert entry["importId"] == session.results[0]["importId"]
        target = str(home / "AGENTS.md")
        results[name] = {
            **masked(read.results[0])[0],
            "successes": [
                {**s, "target": "<home>/AGENTS.md" if s["target"] == target else s["target"]}
                for s in entry["successes"]
            ],
        }
    assert results["ours"] == results["theirs"]
    assert results["ours"]["providerId"] is None
