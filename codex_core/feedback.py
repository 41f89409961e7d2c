"""The ``feedback`` kernel plugin: ``feedback/save`` writes a feedback report to a ZIP file,
``feedback/upload`` sends it to Sentry (or wherever ``[plugins.feedback] upload_url`` says).

The bundle is the official server's: ``report.json`` (the Sentry event it would upload: a
random ``event_id``, ``message`` ``[<Bug|Safety check|Other>]: Codex session <thread>``,
``timestamp``, ``level: info`` for anything but a bug or a safety check, an ``exception``
carrying the ``reason`` when one is given, and the ``tags``), the files the client selected
under ``attachments/NNNN/<name>``, and ``manifest.json`` listing them. Without a ``threadId``
the report names ``no-active-thread-<uuid7>``. See docs/feedback.md for what is not bundled
yet (the server's logs, a diagnostics report, the thread's rollout).
"""

from __future__ import annotations

import json
import mimetypes
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from codex_core import __version__
from codex_core.hookspecs import hookimpl
from codex_core.rpc import INTERNAL_ERROR, INVALID_REQUEST, RpcError, RpcMethod

if TYPE_CHECKING:
    from codex_core.rpc import RequestContext

#: The report title of each classification the official server names; others are "Other".
TITLES = {"bug": "Bug", "safety_check": "Safety check"}
#: The ``session_source`` tag: the official app server reports its sessions as the IDE's.
SESSION_SOURCE = "vscode"


class FeedbackError(Exception):
    """Saving failed; the message is the official server's text after ``failed to save
    feedback: ``."""


def report(
    classification: str, thread_id: str, reason: str | None, tags: dict[str, str]
) -> dict[str, Any]:
    """The Sentry event of one feedback report."""
    title = f"[{TITLES.get(classification, 'Other')}]: Codex session {thread_id}"
    event: dict[str, Any] = {"event_id": uuid.uuid4().hex}
    if classification not in TITLES:
        event["level"] = "info"
    event["message"] = title
    event["timestamp"] = time.time()
    if reason is not None:
        event["exception"] = {"values": [{"type": title, "value": reason}]}
    own = {
        "classification": classification,
        "cli_version": __version__,
        "session_source": SESSION_SOURCE,
        "thread_id": thread_id,
    }
    if reason is not None:
        own["reason"] = reason
    event["tags"] = dict(sorted({**tags, **own}.items()))
    return event


def _content_type(name: str) -> str:
    if name.endswith((".log", ".txt")):
        return "text/plain"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def write_bundle(target: Path, event: dict[str, Any], attachments: list[str]) -> None:
    """Write the ZIP at ``target``, which must not exist yet (the caller owns it after)."""
    import zipfile

    if target.exists():
        raise FeedbackError("feedback save path already exists")
    files = []
    for path in attachments:
        try:
            files.append((Path(path).name, Path(path).read_bytes()))
        except OSError as exc:
            raise FeedbackError(
                f"failed to read selected attachment {path}: {exc.strerror} (os error {exc.errno})"
            ) from None
    manifest = []
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with zipfile.ZipFile(temporary, "x", zipfile.ZIP_DEFLATED) as bundle:
            bundle.writestr("report.json", json.dumps(event, separators=(",", ":")))
            for index, (name, data) in enumerate(files):
                entry = f"attachments/{index:04d}/{name}"
                bundle.writestr(entry, data)
                manifest.append(
                    {"entry": entry, "filename": name, "contentType": _content_type(name)}
                )
            bundle.writestr("manifest.json", json.dumps(manifest, separators=(",", ":")))
        os.link(temporary, target)  # fails if the target appeared meanwhile
    except FileExistsError:
        raise FeedbackError("feedback save path already exists") from None
    except OSError as exc:
        raise FeedbackError(
            f'{exc.strerror} (os error {exc.errno}) at path "{exc.filename or temporary}"'
        ) from None
    finally:
        temporary.unlink(missing_ok=True)


def _thread_id(params: Any) -> str:
    """The report's thread: the client's (a UUID, refused as the reference refuses it), else
    ``no-active-thread-<uuid7>``."""
    from codex_core.threads.ids import reference_uuid_error, uuid7

    thread_id = params.thread_id
    if thread_id is None:
        return f"no-active-thread-{uuid7()}"
    problem = reference_uuid_error(thread_id)
    if problem is not None:
        raise RpcError(INVALID_REQUEST, f"invalid thread id: {problem}")
    return str(thread_id)


async def feedback_save(ctx: RequestContext, params: Any) -> dict[str, Any]:
    from codex_core.protocol.wire import to_wire

    save_path = str(to_wire(params)["savePath"])
    if not os.path.isabs(save_path):
        raise RpcError(INVALID_REQUEST, "feedback savePath must be an absolute host path")
    thread_id = _thread_id(params)
    event = report(params.classification, thread_id, params.reason, dict(params.tags or {}))
    try:
        await anyio.to_thread.run_sync(
            write_bundle, Path(save_path), event, list(params.extra_log_files or [])
        )
    except FeedbackError as exc:
        raise RpcError(INTERNAL_ERROR, f"failed to save feedback: {exc}") from None
    return {"savedPath": save_path, "threadId": thread_id, "promptHash": None}


# --------------------------------------------------------------------------- upload

#: Where the official server sends feedback (its Sentry project's envelope endpoint).
DEFAULT_UPLOAD_URL = "https://o33249.ingest.us.sentry.io/api/4510195390611458/envelope/"
UPLOAD_TIMEOUT_SECONDS = 30.0


def envelope(event: dict[str, Any], attachments: list[str]) -> bytes:
    """A Sentry envelope: a header line, the event, then one item per readable attachment
    (one that cannot be read is left out: the official server still uploads)."""
    items = [({"type": "event"}, json.dumps(event, separators=(",", ":")).encode())]
    for path in attachments:
        try:
            data = Path(path).read_bytes()
        except OSError:
            continue
        name = Path(path).name
        items.append(
            ({"type": "attachment", "filename": name, "content_type": _content_type(name)}, data)
        )
    lines = [json.dumps({"event_id": event["event_id"]}).encode()]
    for header, payload in items:
        lines += [json.dumps({**header, "length": len(payload)}).encode(), payload]
    return b"\n".join(lines) + b"\n"


async def feedback_upload(ctx: RequestContext, params: Any) -> dict[str, Any]:
    import httpx  # loaded by the first upload, not at startup

    thread_id = _thread_id(params)
    event = report(params.classification, thread_id, params.reason, dict(params.tags or {}))
    body = await anyio.to_thread.run_sync(envelope, event, list(params.extra_log_files or []))
    config = ctx.kernel.config
    url = str(config.get("plugins.feedback.upload_url") or DEFAULT_UPLOAD_URL)
    headers = {"content-type": "application/x-sentry-envelope"}
    key = config.get("plugins.feedback.sentry_key")
    if isinstance(key, str) and key:
        headers["x-sentry-auth"] = f"Sentry sentry_version=7, sentry_key={key}"
    failed = "failed to upload feedback: failed to upload feedback to Sentry"
    try:
        async with httpx.AsyncClient(timeout=UPLOAD_TIMEOUT_SECONDS) as client:
            response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError:
        raise RpcError(INTERNAL_ERROR, f"{failed}: error sending request for url ({url})") from None
    if not response.is_success:
        raise RpcError(
            INTERNAL_ERROR,
            f"{failed}: POST {url} failed: {response.status_code}; body={response.text}",
        )
    return {"threadId": thread_id, "promptHash": None}


@hookimpl
def codex_rpc_methods() -> list[RpcMethod]:
    return [
        RpcMethod("feedback/save", feedback_save),
        RpcMethod("feedback/upload", feedback_upload),
    ]
