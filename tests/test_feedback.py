"""``feedback/save``: the ZIP bundle (report, attachments, manifest) compared with the one the
official server writes for the same request, and its refusals; ``feedback/upload`` to a
loopback stand-in of Sentry that records the envelope."""

from __future__ import annotations

import json
import socket
import zipfile
from pathlib import Path
from typing import Any

from codex_core.cli import server_command
from codex_core.testing import Reply
from codex_core.testing.pytest_plugin import LoopbackFactory, StdioServer, needs_reference
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


# --------------------------------------------------------------------------- upload


def envelope_items(body: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """A Sentry envelope's header and its (item header, payload) pairs."""
    header_line, rest = body.split(b"\n", 1)
    items = []
    while rest.strip():
        item_line, rest = rest.split(b"\n", 1)
        item = json.loads(item_line)
        items.append((item, rest[: item["length"]]))
        rest = rest[item["length"] + 1 :]
    return json.loads(header_line), items


def test_upload_to_a_configured_endpoint(
    start_server: Any, codex_loopback_factory: LoopbackFactory, tmp_path: Path
) -> None:
    sentry = codex_loopback_factory(lambda request: Reply(200, {"id": "x"}))
    server: StdioServer = start_server(
        "-c",
        f'plugins.feedback.upload_url="{sentry.url}/api/1/envelope/"',
        "-c",
        'plugins.feedback.sentry_key="public-key"',
    )
    server.initialize()
    extra = tmp_path / "extra.log"
    extra.write_text("a log line\n")
    result = server.result(
        "feedback/upload",
        {
            "classification": "bug",
            "reason": "it broke",
            "threadId": THREAD,
            "extraLogFiles": [str(extra), str(tmp_path / "missing.log")],
        },
    )
    assert result == {"threadId": THREAD, "promptHash": None}
    [request] = sentry.requests
    assert (request.method, request.path) == ("POST", "/api/1/envelope/")
    assert request.headers["content-type"] == "application/x-sentry-envelope"
    assert request.headers["x-sentry-auth"] == "Sentry sentry_version=7, sentry_key=public-key"
    header, items = envelope_items(request.body)
    (event_header, event), (attachment_header, attachment) = items
    report = json.loads(event)
    assert header == {"event_id": report["event_id"]}
    assert event_header == {"type": "event", "length": len(event)}
    assert report["message"] == f"[Bug]: Codex session {THREAD}"
    assert report["exception"]["values"][0]["value"] == "it broke"
    assert attachment_header == {
        "type": "attachment",
        "filename": "extra.log",
        "content_type": "text/plain",
        "length": len(attachment),
    }
    assert attachment == b"a log line\n"


def test_upload_failures(start_server: Any, codex_loopback_factory: LoopbackFactory) -> None:
    refusing = codex_loopback_factory(lambda request: Reply(403, {"detail": "no"}))
    server: StdioServer = start_server("-c", f'plugins.feedback.upload_url="{refusing.url}/e/"')
    server.initialize()
    prefix = "failed to upload feedback: failed to upload feedback to Sentry: "
    assert server.error("feedback/upload", {"classification": "bug"}) == {
        "code": -32603,
        "message": f'{prefix}POST {refusing.url}/e/ failed: 403; body={{"detail": "no"}}',
    }
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone: StdioServer = start_server(
        "-c", f'plugins.feedback.upload_url="http://127.0.0.1:{port}/e/"'
    )
    gone.initialize()
    assert gone.error("feedback/upload", {"classification": "bug"})["message"] == (
        f"{prefix}error sending request for url (http://127.0.0.1:{port}/e/)"
    )


@needs_reference
def test_upload_refusals_match_the_reference(tmp_path: Path, codex_env: dict[str, str]) -> None:
    """The refusals made before anything is sent (the reference cannot be pointed anywhere but
    its Sentry project, so an actual upload is not compared)."""
    requests: list[tuple[str, Any]] = [
        ("feedback/upload", {"classification": "bug", "threadId": "bad"}),
        ("feedback/upload", {"classification": "bug", "threadId": "y" * 36}),
        ("feedback/upload", {}),
    ]
    reference = reference_server_command()
    assert reference is not None
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    ours = run_session(server_command(), tmp_path / "ours", requests, env=codex_env)
    theirs = run_session(reference, tmp_path / "theirs", requests)
    assert ours.results == theirs.results
