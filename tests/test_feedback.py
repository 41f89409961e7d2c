"""``feedback/save``: the ZIP bundle (report, attachments, manifest) compared with the one the
official server writes for the same request, and its refusals."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from codex_core.cli import server_command
from codex_core.testing.pytest_plugin import StdioServer, needs_reference
from codex_core.testing.reference import reference_server_command
from codex_core.testing.session import run_session

THREAD = "00000000-0000-7000-8000-000000000000"
CASES: list[dict[str, Any]] = [
    {"classification": "bug"},
    {"classification": "bad", "reason": "slow", "tags": {"a": "1", "classification": "zzz"}},
    {"classification": "safety_check", "reason": "", "threadId": THREAD, "tags": {}},
    {"classification": "good", "extraLogFiles": ["EXTRA"], "includeLogs": False},
]


def bundle(path: Path) -> dict[str, Any]:
    """A bundle's contents, without what every save makes anew (event id, time, the thread id
    made up when none is given, the server's version)."""
    with zipfile.ZipFile(path) as archive:
        report = json.loads(archive.read("report.json"))
        files = {name: archive.read(name) for name in archive.namelist()}
    thread = report["tags"]["thread_id"]
    made_up = thread.startswith("no-active-thread-")
    for key in ("event_id", "timestamp"):
        assert report.pop(key)
    report["tags"].pop("cli_version")
    text = json.dumps(report)
    if made_up:
        text = text.replace(thread, "<thread>")
    return {
        "report": json.loads(text),
        "names": sorted(files),
        "manifest": json.loads(files["manifest.json"]),
        "attachments": {k: v for k, v in files.items() if k.startswith("attachments/")},
    }


@needs_reference
def test_bundles_match_the_reference(tmp_path: Path, codex_env: dict[str, str]) -> None:
    extra = tmp_path / "extra.log"
    extra.write_text("a log line\n")
    reference = reference_server_command()
    assert reference is not None
    found: dict[str, Any] = {}
    for name, command, env in (
        ("ours", server_command(), codex_env),
        ("theirs", reference, None),
    ):
        home, out = tmp_path / name, tmp_path / f"{name}-out"
        home.mkdir()
        out.mkdir()
        requests: list[tuple[str, Any]] = [
            (
                "feedback/save",
                {
                    **json.loads(json.dumps(case).replace("EXTRA", str(extra))),
                    "savePath": str(out / f"{i}.zip"),
                },
            )
            for i, case in enumerate(CASES)
        ]
        requests += [
            # Errors: the path taken, relative, in a missing folder; a missing attachment; a
            # thread id that is no UUID; no classification.
            ("feedback/save", {"classification": "bug", "savePath": str(out / "0.zip")}),
            ("feedback/save", {"classification": "bug", "savePath": "relative.zip"}),
            (
                "feedback/save",
                {
                    "classification": "bug",
                    "savePath": str(out / "x.zip"),
                    "extraLogFiles": [str(tmp_path / "missing.log")],
                },
            ),
            (
                "feedback/save",
                {"classification": "bug", "savePath": str(out / "y.zip"), "threadId": "bad"},
            ),
            ("feedback/save", {"savePath": str(out / "z.zip")}),
        ]
        session = run_session(command, home, requests, env=env)
        results = [json.loads(json.dumps(r).replace(str(out), "<out>")) for r in session.results]
        found[name] = {
            "results": results,
            "bundles": [bundle(out / f"{i}.zip") for i in range(len(CASES))],
            "left": sorted(p.name for p in out.iterdir()),
        }
    ours, theirs = found["ours"], found["theirs"]
    assert ours["bundles"] == theirs["bundles"]
    assert ours["left"] == theirs["left"] == [f"{i}.zip" for i in range(len(CASES))]
    for mine, reference in zip(ours["results"], theirs["results"], strict=True):
        if "error" in mine:
            assert mine == reference
        else:
            assert set(mine) == set(reference) == {"savedPath", "threadId", "promptHash"}
            assert mine["savedPath"] == reference["savedPath"]
            assert mine["promptHash"] is reference["promptHash"] is None
    assert ours["results"][2]["threadId"] == THREAD
    assert ours["bundles"][1]["report"]["tags"]["classification"] == "bad"
    assert ours["bundles"][3]["manifest"] == [
        {
            "entry": "attachments/0000/extra.log",
            "filename": "extra.log",
            "contentType": "text/plain",
        }
    ]


def test_a_folder_that_does_not_exist(server: StdioServer, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "f.zip"
    error = server.error("feedback/save", {"classification": "bug", "savePath": str(target)})
    assert error["code"] == -32603
    assert error["message"].startswith("failed to save feedback: No such file or directory")
    assert not target.parent.exists()
