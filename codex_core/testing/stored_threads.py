"""Stored threads in bulk: N rollouts in the official on-disk layout, made from a real one.

Measuring how a server lists, reads and resumes its history needs thousands of stored
threads, and running that many turns through a server would take hours. So one rollout a
server wrote for a real scripted turn (``record_template``, by default on the pinned official
server, so whatever it stores is there) becomes a ``Template``: its text cut into literal
pieces and slots (the thread's and every other UUID, each timestamp, the cwd, the
``CODEX_HOME``, the user's question and the model's answer). ``generate`` fills the slots per
thread and writes the files directly, which takes about a millisecond a thread:

- ``sessions/YYYY/MM/DD/rollout-<created>-<id>.jsonl`` (``archived_sessions/`` flat for
  archived ones), the file's mtime at its last line, as the servers leave them;
- creation times spread over ``months`` months before now, oldest first, strictly increasing;
- ids are UUIDv7 stamped with their line's time, as the servers make them;
- the cwd cycles through ``projects`` folders (created), the question through a few phrasings;
  one thread in ``mention_every`` mentions ``SEARCH_TERM`` (from the ``mention_every // 2``-th
  on), one in ``archived_every`` is archived (from the ``archived_every - 1``-th on).

``bench/threads.py`` caches the trees it generates; ``tests/test_rollout_compat.py`` checks
the reference lists what this writes.
"""

from __future__ import annotations

import json
import os
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = [
    "SEARCH_TERM",
    "TEMPLATE_ANSWER",
    "TEMPLATE_QUESTION",
    "GeneratedThread",
    "Template",
    "generate",
    "load_manifest",
    "record_template",
]

#: What the template's turn says; unusual enough to appear nowhere else in its rollout.
TEMPLATE_QUESTION = "Template question about the quokka widget?"
TEMPLATE_ANSWER = "Template answer about the quokka widget."
#: The word one thread in ``mention_every`` mentions (and no other does).
SEARCH_TERM = "zeppelin"
MANIFEST = "manifest.json"

_PROJECTS = ("api-gateway", "billing", "checkout", "data-pipeline", "docs-site", "frontend",
             "infra", "ios-app", "ml-training", "search", "auth", "notifications")  # fmt: skip
_TOPICS = ("the flaky login test", "the retry logic", "a memory leak in the cache",
           "the CSV export", "slow startup", "the migration script", "type errors",
           "the rate limiter", "logging noise", "the release checklist")  # fmt: skip
_ASKS = ("Fix {topic} in {project}", "Why does {project} have {topic}?",
         "Explain {topic} in {project}", "Write tests for {topic} ({project})")  # fmt: skip

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ISO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
_DATE = r"\d{4}-\d{2}-\d{2}(?![\dT])"
_EPOCH = r"(?<![\w.])\d{10}(?:\d{3}|\.\d+)?(?![\w.])"
#: A day: how far from the template's start a number may be and still count as its time.
_WINDOW_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class GeneratedThread:
    """One generated thread, as a test or benchmark checks it (``path`` relative to the home)."""

    id: str
    created_ms: int
    cwd: str
    question: str
    answer: str
    archived: bool
    path: str


# A slot: (kind, argument). Kinds: "uuid" (index), "iso" / "ms" / "s" / "float" (offset in
# ms from the template's start), "date", and the text slots of ``Template.render``'s values.
_Slot = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Template:
    """A rollout cut into literal text and slots, ready to be filled once per thread."""

    pieces: tuple[str | _Slot, ...]
    #: For each UUID slot: its offset in ms from the start (UUIDv7 carry their time).
    uuid_offsets: tuple[int, ...]
    #: The offset of the last line's timestamp, where a generated file's mtime goes.
    last_offset_ms: int
    #: The UUID slot of the thread's id.
    id_slot: int

    @classmethod
    def parse(cls, rollout: Path, home: Path) -> Template:
        """Cut ``rollout`` (written under ``home`` for a turn of ``TEMPLATE_QUESTION``)."""
        text = rollout.read_text(encoding="utf-8")
        meta = json.loads(text.split("\n", 1)[0])
        if meta.get("type") != "session_meta":
            raise ValueError(f"{rollout}: the first line is not the session meta")
        start = _parse_iso(meta["payload"]["timestamp"])
        cwd = str(meta["payload"]["cwd"])
        provider = json.dumps(meta["payload"]["model_provider"])
        model = json.dumps(_model_of(text))
        if TEMPLATE_QUESTION not in text or TEMPLATE_ANSWER not in text:
            raise ValueError(f"{rollout}: not a turn of the template question and answer")
        literals = {str(home): ("home", 0), cwd: ("cwd", 0),
                    TEMPLATE_QUESTION: ("question", 0), TEMPLATE_ANSWER: ("answer", 0),
                    provider: ("provider", 0), model: ("model", 0)}  # fmt: skip
        alternatives = [re.escape(literal) for literal in sorted(literals, key=len, reverse=True)]
        pattern = re.compile("|".join([*alternatives, _UUID, _ISO, _DATE, _EPOCH]))
        pieces: list[str | _Slot] = []
        uuids: dict[str, int] = {}
        offsets: list[int] = []
        at = 0
        for match in pattern.finditer(text):
            found = match.group(0)
            slot = literals.get(found) or _time_slot(found, start)
            if slot is None and re.fullmatch(_UUID, found):
                if found not in uuids:
                    uuids[found] = len(uuids)
                    offsets.append(_uuid_offset(found, start))
                slot = ("uuid", uuids[found])
            if slot is None:
                continue
            pieces.extend([text[at : match.start()], slot])
            at = match.end()
        pieces.append(text[at:])
        last = json.loads(text.rstrip("\n").rsplit("\n", 1)[-1])
        last_offset = _parse_iso(last["timestamp"]) - start
        id_slot = uuids[str(meta["payload"]["id"])]
        return cls(tuple(p for p in pieces if p != ""), tuple(offsets), last_offset, id_slot)

    def render(self, start_ms: int, values: dict[str, str], rng: random.Random) -> tuple[str, str]:
        """(thread id, rollout text) of a thread that started at ``start_ms``; ``values``
        fill the text slots (``home``, ``cwd``, ``question``, ``answer``, and as JSON
        strings ``provider`` and ``model``)."""
        ids = [_uuid7(start_ms + offset, rng) for offset in self.uuid_offsets]
        text = "".join(
            piece if isinstance(piece, str) else _fill(piece, start_ms, ids, values)
            for piece in self.pieces
        )
        return ids[self.id_slot], text


def _model_of(text: str) -> str:
    """The model of the template's turn (its ``turn_context`` line)."""
    for line in text.splitlines():
        parsed = json.loads(line)
        if parsed.get("type") == "turn_context":
            return str(parsed["payload"]["model"])
    raise ValueError("the template has no turn_context line")


def _parse_iso(value: str) -> int:
    """Milliseconds since the epoch of ``2026-12-07T23:38:41.002Z``."""
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def _time_slot(found: str, start: int) -> _Slot | None:
    """The slot of a time in the template, if ``found`` is one near its start."""
    if re.fullmatch(_ISO, found):
        return ("iso", _parse_iso(found) - start)
    if re.fullmatch(_DATE, found):
        day = int(datetime.fromisoformat(found).replace(tzinfo=UTC).timestamp() * 1000)
        return ("date", 0) if abs(day - start) <= _WINDOW_MS else None
    if not re.fullmatch(r"[\d.]+", found):
        return None
    if "." in found:
        kind, ms = "float", int(float(found) * 1000)
    elif len(found) == 13:
        kind, ms = "ms", int(found)
    else:
        kind, ms = "s", int(found) * 1000
    return (kind, ms - start) if abs(ms - start) <= _WINDOW_MS else None


def _uuid_offset(value: str, start: int) -> int:
    """A UUIDv7's time relative to ``start`` (other UUIDs: 0)."""
    parsed = uuid.UUID(value)
    if parsed.version != 7:
        return 0
    offset = (parsed.int >> 80) - start
    return offset if abs(offset) <= _WINDOW_MS else 0


def _uuid7(ms: int, rng: random.Random) -> str:
    """A UUIDv7 for time ``ms``: 48 bits of time, version, variant, random bits."""
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62)
    return str(uuid.UUID(int=value | rng.getrandbits(62)))


def _fill(slot: _Slot, start: int, ids: list[str], values: dict[str, str]) -> str:
    kind, argument = slot
    if kind == "uuid":
        return ids[argument]
    when = start + argument
    if kind == "iso":
        moment = datetime.fromtimestamp(when / 1000, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when % 1000:03d}Z"
    if kind == "ms":
        return str(when)
    if kind == "s":
        return str(when // 1000)
    if kind == "float":
        return f"{when / 1000:.7f}"
    if kind == "date":
        return datetime.fromtimestamp(when / 1000, UTC).strftime("%Y-%m-%d")
    return values[kind]


def record_template(argv: list[str], workdir: Path, timeout: float = 60) -> tuple[Path, Path]:
    """Run one scripted turn of ``TEMPLATE_QUESTION`` on the server ``argv`` (a fresh home
    and cwd under ``workdir``, the loopback model answering ``TEMPLATE_ANSWER``);
    returns (its rollout, its ``CODEX_HOME``)."""
    from codex_core.testing.model_server import ScriptedModelServer, message
    from codex_core.testing.pytest_plugin import StdioServer

    home, cwd = workdir / "home", workdir / "cwd"
    home.mkdir(parents=True)
    cwd.mkdir(parents=True)
    with ScriptedModelServer() as model:
        model.add(message(TEMPLATE_ANSWER))
        env = {**os.environ, "CODEX_HOME": str(home), **model.env}
        server = StdioServer([*argv, *model.config_args()], env, cwd)
        try:
            server.initialize()
            thread = server.result("thread/start", {}, timeout=timeout)["thread"]
            question = {"type": "text", "text": TEMPLATE_QUESTION, "text_elements": []}
            server.result("turn/start", {"threadId": thread["id"], "input": [question]}, timeout)
            done = server.wait_notification("turn/completed", timeout)["params"]["turn"]
            if done["status"] != "completed":
                raise RuntimeError(f"the template turn ended {done['status']}: {done['error']}")
        finally:
            server.close()
    found = sorted((home / "sessions").rglob(f"rollout-*-{thread['id']}.jsonl"))
    if len(found) != 1:
        raise RuntimeError(f"expected one rollout of {thread['id']} under {home}, found {found}")
    return found[0], home


def _plan(count: int, months: int, now: datetime, rng: random.Random) -> Iterator[tuple[int, int]]:
    """(index, creation ms) for ``count`` threads over ``months`` months, oldest first."""
    end = int((now - timedelta(days=1)).timestamp() * 1000)
    span = months * 30 * 86_400_000
    step = span // max(count, 1)
    first = end - span
    for index in range(count):
        yield index, first + index * step + rng.randrange(max(step // 2, 1))


def generate(
    template: Template,
    home: Path,
    projects: Path,
    count: int,
    *,
    months: int = 6,
    archived_every: int = 20,
    mention_every: int = 100,
    seed: int = 1,
    now: datetime | None = None,
    provider: str = "openai",
    model: str = "gpt-5.1-codex",
) -> list[GeneratedThread]:
    """Write ``count`` threads under ``home`` (cwds in folders under ``projects``), oldest
    first; also writes the list as ``home/../manifest.json`` for ``load_manifest``.

    The threads are recorded under ``provider`` and ``model`` (the template's are the
    loopback model's): the reference's ``thread/list`` shows only threads of the provider it
    is configured with, by default ``openai``, as a user's history is.

    The threads keep the template's ``history_mode``, ``paginated`` as the reference writes
    it: the reference reads such a thread's turns (``thread/read``, ``thread/turns/list``)
    from its own ``thread_history_1.sqlite``, where a generated thread has none until the
    reference resumes it once; resuming reads the rollout."""
    rng = random.Random(seed)
    folders = [projects / name for name in _PROJECTS]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    made_dirs: set[Path] = set()
    threads: list[GeneratedThread] = []
    for index, created in _plan(count, months, now or datetime.now(UTC), rng):
        cwd = folders[index % len(folders)]
        ask = _ASKS[index % len(_ASKS)]
        question = ask.format(topic=_TOPICS[(index // 3) % len(_TOPICS)], project=cwd.name)
        if index % mention_every == mention_every // 2:
            question += f" It came up during the {SEARCH_TERM} rollout."
        answer = f"Looked into it (thread {index}): the fix is in {cwd.name}/src."
        values = {"home": str(home), "cwd": str(cwd), "question": question, "answer": answer,
                  "provider": json.dumps(provider), "model": json.dumps(model)}  # fmt: skip
        thread_id, text = template.render(created, values, rng)
        moment = datetime.fromtimestamp(created / 1000, UTC)
        name = f"rollout-{moment:%Y-%m-%dT%H-%M-%S}-{thread_id}.jsonl"
        archived = index % archived_every == archived_every - 1
        folder = (
            home / "archived_sessions" if archived else home / "sessions" / f"{moment:%Y/%m/%d}"
        )
        if folder not in made_dirs:
            folder.mkdir(parents=True, exist_ok=True)
            made_dirs.add(folder)
        path = folder / name
        path.write_text(text, encoding="utf-8")
        mtime = (created + template.last_offset_ms) / 1000
        os.utime(path, (mtime, mtime))
        threads.append(GeneratedThread(thread_id, created, str(cwd), question, answer, archived,
                                       str(path.relative_to(home))))  # fmt: skip
    manifest = [asdict(thread) for thread in threads]
    (home.parent / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return threads


def load_manifest(root: Path) -> list[GeneratedThread]:
    """The threads ``generate`` wrote into ``root/home``, oldest first."""
    entries = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    return [GeneratedThread(**entry) for entry in entries]
