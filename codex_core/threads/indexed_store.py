"""The default ``ThreadStore``: rollouts in the official layout, and an SQLite index of them.

The rollouts (``sessions/YYYY/MM/DD/rollout-*.jsonl``, ``archived_sessions/``), the names in
``session_index.jsonl`` and the read states in ``read_state.jsonl`` stay the truth, in the
files the reference reads and writes too: either server resumes the other's threads. The
index, ``$CODEX_HOME/codex-core/threads.sqlite`` (the reference keeps its own
``state_<n>.sqlite``; the two never share a file), holds what ``thread/list`` shows of each
rollout, so listing and lookup by id read the index instead of walking and parsing the tree.

The index is only a cache, kept right three ways:

- **Our writes** update it as they happen: a rollout's row is (re)read from the file until its
  first user message is in (creation, preview, model), later appends only mark it dirty and
  the next query takes its new mtime (``updatedAt``); archive, unarchive and delete move rows.
- **Other processes' files** (the reference, another server, a copy) are found by the
  directories' mtimes: each query stats the directories of the tree (a few hundred, not the
  files), and rescans only those whose mtime changed since the index saw them. A directory
  changed in the last two seconds is rescanned again next time, as git treats racy entries,
  so a file created while we scanned is not missed. Rows of threads not listed yet (no user
  message) are reread when their file grows.
- **A crash** loses nothing: a rollout is marked in ``writers`` before its first line of a
  session is written, and unmarked once its writer is closed; a process that finds marks of
  dead processes (a SIGKILL) rereads those rollouts. A deleted, corrupt or older-schema index
  is rebuilt from the rollouts.

Every method holds one lock around the connection: the event loop writes while
``thread/search`` lists from a worker thread.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_core.threads import read_state, rollout
from codex_core.threads.listing import (
    ListingEntry,
    parse_cursor,
    thread_source_kinds,
    wire_source,
)
from codex_core.threads.rollout import RolloutWriter, StoredThread
from codex_core.threads.store import ListedThread, ThreadQuery

if TYPE_CHECKING:
    import sqlite3

log = logging.getLogger(__name__)

INDEX = Path("codex-core") / "threads.sqlite"
#: Bumped when the tables change: an index of another version is rebuilt from the rollouts.
SCHEMA_VERSION = 2
#: A directory changed this recently may change again within its mtime's resolution.
RACY_NS = 2_000_000_000
#: Rows fetched at a time while a listing is iterated.
BATCH = 64
#: What ``ThreadRegistry.stored_thread`` reads of a rollout's session meta.
META_KEYS = ("session_id", "forked_from_id", "parent_thread_id", "history_mode",
             "model_provider", "cwd", "cli_version", "originator", "source", "thread_source",
             "agent_nickname", "agent_role")  # fmt: skip

_SCHEMA = """
CREATE TABLE threads (
    path TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    dir TEXT NOT NULL,
    archived INTEGER NOT NULL,
    created_key INTEGER NOT NULL,
    updated_key REAL NOT NULL,
    size INTEGER NOT NULL,
    readable INTEGER NOT NULL,
    preview TEXT NOT NULL,
    provider TEXT NOT NULL,
    cwd TEXT NOT NULL,
    kinds TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX threads_by_id ON threads (id);
CREATE INDEX threads_by_dir ON threads (dir);
CREATE INDEX threads_by_created ON threads (archived, created_key, id);
CREATE INDEX threads_by_updated ON threads (archived, updated_key, id);
CREATE INDEX threads_unlisted ON threads (archived) WHERE preview = '';
CREATE TABLE dirs (path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL);
CREATE TABLE writers (path TEXT PRIMARY KEY, pid INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLUMNS = ("path, id, dir, archived, created_key, updated_key, size, readable, preview, "
            "provider, cwd, kinds, summary")  # fmt: skip


class IndexedThreadStore:
    """Threads in ``codex_home``'s rollouts, listed and found through the SQLite index."""

    def __init__(self, codex_home: Path, index: Path | None = None) -> None:
        self.home = codex_home
        self.index = index or codex_home / INDEX
        self._roots = (str(codex_home / rollout.SESSIONS), str(codex_home / rollout.ARCHIVED))
        self._lock = threading.RLock()
        self._sync_lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        #: Rollouts appended to since their row last took their mtime and size, and rollouts
        #: written before the index was opened (to reread).
        self._dirty: set[str] = set()
        self._pending: set[str] = set()
        self._names = _JournalCache(
            codex_home / rollout.SESSION_INDEX, lambda: rollout.read_names(codex_home)
        )
        self._states = _JournalCache(
            codex_home / read_state.FILE, lambda: read_state.load(codex_home)
        )

    # ------------------------------------------------------------------ the connection

    def _connect(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        import sqlite3

        self.index.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = self._open()
        except sqlite3.DatabaseError as exc:  # not a database any more: it is only an index
            log.warning("thread index %s is unreadable (%s): rebuilding it", self.index, exc)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.index}{suffix}").unlink(missing_ok=True)
            db = self._open()
        self._db = db
        self._recover_writers(db)
        return db

    def _open(self) -> sqlite3.Connection:
        import sqlite3

        db = sqlite3.connect(self.index, isolation_level=None, check_same_thread=False, timeout=30)
        db.create_function("lowered", 1, str.lower, deterministic=True)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            (version,) = db.execute("PRAGMA user_version").fetchone()
            home = None
            if version == SCHEMA_VERSION:
                row = db.execute("SELECT value FROM meta WHERE key = 'home'").fetchone()
                home = row[0] if row else None
            if version != SCHEMA_VERSION or home != str(self.home):
                self._create(db)
        except BaseException:
            db.close()
            raise
        return db

    def _create(self, db: sqlite3.Connection) -> None:
        """Empty tables of this schema version (the next query fills them)."""
        with _transaction(db):
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
                db.execute(f'DROP TABLE "{table}"')
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT INTO meta VALUES ('home', ?)", (str(self.home),))
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _recover_writers(self, db: sqlite3.Connection) -> None:
        """Reread the rollouts that processes gone without closing them (killed, crashed)
        were writing: their rows may be behind their files."""
        stale = [
            path
            for path, pid in db.execute("SELECT path, pid FROM writers").fetchall()
            if pid == os.getpid() or not _alive(pid)
        ]
        if not stale:
            return
        log.info("rereading %d rollout(s) left open by a process that is gone", len(stale))
        rows = {path: self._row(path) for path in stale}
        with _transaction(db):
            for path, row in rows.items():
                self._put(db, path, row)
                db.execute("DELETE FROM writers WHERE path = ?", (path,))

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._flush(self._db)
                self._db.close()
                self._db = None

    # ------------------------------------------------------------------ rows

    def _row(self, path: str) -> tuple[Any, ...] | None:
        """The index row of a rollout, read from its file (``None``: not a rollout, or gone)."""
        file = Path(path)
        thread_id = rollout.thread_id_of(file)
        if thread_id is None:
            return None
        try:
            info = os.stat(path)
        except OSError:
            return None
        folder = os.path.dirname(path)
        archived = int(folder == self._roots[1] or folder.startswith(self._roots[1] + os.sep))
        created = int(rollout.created_of(file).timestamp())
        head = (path, thread_id, folder, archived, created, info.st_mtime,
                info.st_size)  # fmt: skip
        stored = rollout.read_rollout(file, full=False)
        if stored is None:  # no session meta (yet): found by id, never listed
            return (*head, 0, "", "", "", "", "{}")
        meta = stored.meta
        summary = {
            "meta": {key: meta[key] for key in META_KEYS if key in meta},
            "created_at": stored.created_at,
            "written_at": stored.written_at,
            "model": stored.model,
            "context_cwd": stored.context.get("cwd"),
            "first_turn": stored.first_turn,
        }
        cwd = str(meta.get("cwd") or stored.context.get("cwd") or "")
        kinds = thread_source_kinds(wire_source(meta.get("source")))
        return (*head, 1, stored.preview, str(meta.get("model_provider") or "openai"), cwd,
                f" {' '.join(sorted(kinds))} ", json.dumps(summary))  # fmt: skip

    @staticmethod
    def _put(db: sqlite3.Connection, path: str, row: tuple[Any, ...] | None) -> None:
        if row is None:
            db.execute("DELETE FROM threads WHERE path = ?", (path,))
        else:
            db.execute(f"INSERT OR REPLACE INTO threads ({_COLUMNS}) VALUES "
                       f"({', '.join('?' * len(row))})", row)  # fmt: skip

    def _flush(self, db: sqlite3.Connection) -> None:
        """Take the mtimes and sizes of the rollouts we appended to."""
        if not self._dirty:
            return
        updates = []
        for path in self._dirty:
            try:
                info = os.stat(path)
            except OSError:
                continue
            updates.append((info.st_mtime, info.st_size, path))
        self._dirty.clear()
        with _transaction(db):
            db.executemany("UPDATE threads SET updated_key = ?, size = ? WHERE path = ?", updates)

    # ------------------------------------------------------------------ keeping current

    def _sync(self) -> None:
        """Bring the index up to the files: ours flushed, others' found (see the module).

        Rollouts are read without the lock (a first build reads every one of them), so that
        the event loop's writes go on meanwhile; a row a writer put in the meantime wins over
        the one read here. One sync runs at a time.
        """
        with self._sync_lock:
            with self._lock:
                db = self._connect()
                self._flush(db)
                scan = self._scan(db)
                scan.changed.extend(self._pending - set(scan.new))
                self._pending.clear()
            if not (scan.new or scan.changed or scan.dirs or scan.gone_dirs):
                return
            new = [row for row in map(self._row, scan.new) if row is not None]
            changed = [(path, self._row(path)) for path in scan.changed]
            with self._lock, _transaction(db):
                for values in new:
                    db.execute(f"INSERT OR IGNORE INTO threads ({_COLUMNS}) VALUES "
                               f"({', '.join('?' * len(values))})", values)  # fmt: skip
                for path, row in changed:
                    self._put(db, path, row)
                for path in scan.gone_dirs:
                    prefix = path + os.sep
                    db.execute("DELETE FROM threads WHERE dir = ? OR substr(dir, 1, ?) = ?",
                               (path, len(prefix), prefix))  # fmt: skip
                    db.execute("DELETE FROM dirs WHERE path = ? OR substr(path, 1, ?) = ?",
                               (path, len(prefix), prefix))  # fmt: skip
                db.executemany("INSERT OR REPLACE INTO dirs VALUES (?, ?)", scan.dirs)

    def _scan(self, db: sqlite3.Connection) -> _Scan:
        """Which rollouts to read: in directories that changed, and unlisted ones that grew."""
        known = dict(db.execute("SELECT path, mtime_ns FROM dirs").fetchall())
        children: dict[str, list[str]] = {}
        for path in known:
            children.setdefault(os.path.dirname(path), []).append(path)
        scan = _Scan(db, known, children)
        for root in self._roots:
            scan.visit(root)
        unlisted = db.execute(
            "SELECT path, size FROM threads WHERE archived = 0 AND preview = ''"
        ).fetchall()
        for path, size in unlisted:
            try:
                grown = os.stat(path).st_size != size
            except OSError:
                grown = True
            if grown:
                scan.changed.append(path)
        return scan

    def _opening(self, path: Path) -> bool:
        """Mark a rollout as being written (see the module). Not before a request opened the
        index (``False``): a new thread's first turn does not wait for SQLite, and the index
        finds a rollout created meanwhile by its directory's mtime anyway."""
        with self._lock:
            if self._db is None:
                return False
            self._db.execute(
                "INSERT OR REPLACE INTO writers VALUES (?, ?)", (str(path), os.getpid())
            )
            return True

    def _appended(self, writer: _IndexedWriter, kind: str, payload: dict[str, Any]) -> None:
        """Reread the row at the lines that change it (the session meta, the first user
        message, with the turn's model before it); any other line only changes the mtime."""
        path = str(writer.path)
        item = payload.get("item") if kind == "event_msg" else None
        preview = isinstance(item, dict) and item.get("type") == "UserMessage"
        with self._lock:
            if self._db is None:
                self._pending.add(path)  # reread by the query that opens the index
                return
            if writer.listed or not (kind == "session_meta" or preview):
                self._dirty.add(path)
                return
            db = self._db
            row = self._row(path)
            with _transaction(db):
                self._put(db, path, row)
            writer.listed = row is not None and bool(row[8])

    def _closed(self, path: Path) -> None:
        with self._lock:
            if self._db is not None:
                self._flush(self._db)
                self._db.execute("DELETE FROM writers WHERE path = ?", (str(path),))

    # ------------------------------------------------------------------ ThreadStore

    def writer(self, thread_id: str, path: Path, ordinal: int = 0) -> RolloutWriter:
        return _IndexedWriter(self, path, ordinal)

    def find(self, thread_id: str) -> Path | None:
        with self._lock:
            found = self._lookup(thread_id)
        if found is not None and os.path.exists(found):
            return Path(found)
        self._sync()
        with self._lock:
            found = self._lookup(thread_id)
        return Path(found) if found is not None else None

    def _lookup(self, thread_id: str) -> str | None:
        row = (
            self._connect()
            .execute(
                "SELECT path FROM threads WHERE id = ? ORDER BY archived, path DESC LIMIT 1",
                (thread_id.lower(),),
            )
            .fetchone()
        )
        return str(row[0]) if row else None

    def read(self, thread_id: str, *, full: bool = True) -> StoredThread | None:
        path = self.find(thread_id)
        return rollout.read_rollout(path, full=full) if path is not None else None

    def list(self, query: ThreadQuery) -> Iterator[ListedThread]:
        self._sync()
        key = "created_key" if query.sort_key == "created_at" else "updated_key"
        order = "ASC" if query.ascending else "DESC"
        after = ">" if query.ascending else "<"
        where = ["archived = ?"]
        args: list[Any] = [int(query.archived)]
        if not query.archived:
            where.append("preview != ''")  # as the reference: listed once a user spoke
        where.append("readable = 1")
        if query.model_providers:
            where.append(f"provider IN ({', '.join('?' * len(query.model_providers))})")
            args.extend(sorted(query.model_providers))
        if query.cwds is not None:
            where.append(f"cwd IN ({', '.join('?' * len(query.cwds))})")
            args.extend(sorted(query.cwds))
        kinds = " OR ".join("instr(kinds, ?)" for _ in query.source_kinds)
        where.append(f"({kinds or '0'})")
        args.extend(f" {kind} " for kind in sorted(query.source_kinds))
        if query.search_term:  # in the preview, or the name (Python's lower-casing, not ASCII's)
            with self._lock:
                named = [i for i, name in self._names.get().items()
                         if name and query.search_term in name.lower()]  # fmt: skip
            where.append(f"(instr(lowered(preview), ?) OR id IN ({', '.join('?' * len(named))}))")
            args.extend((query.search_term, *named))
        if query.cursor:
            cursor = parse_cursor(query.cursor)
            if cursor.thread_id is not None:
                where.append(f"({key}, id) {after} (?, ?)")
                args.extend((cursor.when, cursor.thread_id))
            else:
                where.append(f"{key} {after}= ?")
                args.append(cursor.when)
        sql = (f"SELECT path, id, {key}, preview, summary FROM threads WHERE "
               f"{' AND '.join(where)} ORDER BY {key} {order}, id {order} "
               f"LIMIT {BATCH}")  # fmt: skip
        keyset = f" AND ({key}, id) {after} (?, ?)"
        last: tuple[Any, ...] = ()
        while True:
            with self._lock:
                names = self._names.get()
                rows = (
                    self._connect()
                    .execute(
                        sql.replace(" ORDER BY", keyset + " ORDER BY") if last else sql,
                        (*args, *last),
                    )
                    .fetchall()
                )
            for path, thread_id, sort_value, preview, summary in rows:
                name = names.get(thread_id)
                stored = _summary_thread(path, thread_id, preview, summary)
                if stored is None:
                    continue  # gone since indexed: the next query's scan drops it
                when = datetime.fromtimestamp(sort_value, UTC)
                yield ListedThread(ListingEntry(when, thread_id, query.sort_key),
                                   stored, name)  # fmt: skip
            if len(rows) < BATCH:
                return
            last = (rows[-1][2], rows[-1][1])

    def archive(self, thread_id: str) -> Path:
        return self._move(thread_id, self.home / rollout.ARCHIVED)

    def unarchive(self, thread_id: str) -> Path:
        path = self.find(thread_id)
        if path is None:
            raise FileNotFoundError(thread_id)
        parts = path.name.split("-")  # rollout-YYYY-MM-DDThh-mm-ss-<id>.jsonl
        return self._move(thread_id, self.home / rollout.SESSIONS / parts[1] / parts[2] /
                          parts[3][:2])  # fmt: skip

    def _move(self, thread_id: str, folder: Path) -> Path:
        path = self.find(thread_id)  # (outside the lock: a miss syncs, which takes it)
        if path is None:
            raise FileNotFoundError(thread_id)
        with self._lock:
            target = folder / path.name
            folder.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), str(target))
            db = self._connect()
            with _transaction(db):
                self._put(db, str(path), None)
                self._put(db, str(target), self._row(str(target)))
            return target

    def delete(self, thread_id: str) -> None:
        path = self.find(thread_id)
        if path is None:
            return
        with self._lock:
            path.unlink(missing_ok=True)
            db = self._connect()
            with _transaction(db):
                self._put(db, str(path), None)

    def name(self, thread_id: str) -> str | None:
        with self._lock:
            return self._names.get().get(thread_id)

    def set_name(self, thread_id: str, name: str | None) -> None:
        with self._lock:
            self._names.write(thread_id, name,
                              lambda: rollout.write_name(self.home, thread_id, name))  # fmt: skip

    def read_state(self, thread_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._states.get().get(thread_id)

    def set_read_state(self, thread_id: str, state: dict[str, Any]) -> None:
        with self._lock:
            self._states.write(thread_id, state,
                               lambda: read_state.save(self.home, thread_id, state))  # fmt: skip


class _IndexedWriter(RolloutWriter):
    """A ``RolloutWriter`` that tells the store what it wrote (see the module)."""

    def __init__(self, store: IndexedThreadStore, path: Path, ordinal: int) -> None:
        super().__init__(path, ordinal)
        self.store = store
        #: The rollout's row has its user message: later lines only change its mtime.
        self.listed = False
        self._marked = False

    def append(self, kind: str, payload: dict[str, Any]) -> None:
        if not self._marked:
            self._marked = self.store._opening(self.path)
        super().append(kind, payload)
        self.store._appended(self, kind, payload)

    def close(self) -> None:
        super().close()
        if self._marked:
            self.store._closed(self.path)
            self._marked = False


class _Scan:
    """One pass over the directories: which changed, which rollouts to (re)read or drop."""

    def __init__(
        self, db: sqlite3.Connection, known: dict[str, int], children: dict[str, list[str]]
    ) -> None:
        self.db = db
        self.known = known
        self.children = children
        #: Rollouts not indexed yet, rollouts to reread (or drop, when gone), and the
        #: directories' new mtimes.
        self.new: list[str] = []
        self.changed: list[str] = []
        self.dirs: list[tuple[str, int]] = []
        self.gone_dirs: list[str] = []

    def visit(self, folder: str) -> None:
        try:
            info = os.stat(folder)
        except OSError:
            info = None
        if info is None or not stat.S_ISDIR(info.st_mode):
            if folder in self.known:
                self.gone_dirs.append(folder)
            return
        if self.known.get(folder) == info.st_mtime_ns:
            for child in self.children.get(folder, ()):
                self.visit(child)
            return
        indexed = {path for (path,) in self.db.execute(
            "SELECT path FROM threads WHERE dir = ?", (folder,))}  # fmt: skip
        seen: set[str] = set()
        folders: list[str] = []
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                elif entry.name.startswith("rollout-") and entry.name.endswith(".jsonl"):
                    seen.add(entry.path)
        self.new.extend(sorted(seen - indexed))
        self.changed.extend(sorted(indexed - seen))
        racy = time.time_ns() - info.st_mtime_ns < RACY_NS
        self.dirs.append((folder, -1 if racy else info.st_mtime_ns))
        self.gone_dirs.extend(set(self.children.get(folder, ())) - set(folders))
        for child in folders:
            self.visit(child)


class _JournalCache:
    """A JSON-lines file read into a dict, reread only when the file changed (its size and
    mtime say), and updated in place by our own writes."""

    def __init__(self, path: Path, load: Callable[[], dict[str, Any]]) -> None:
        self.path = path
        self.load = load
        self._value: dict[str, Any] = {}
        self._signature: tuple[int, int] | None = None

    def _stat(self) -> tuple[int, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_size, info.st_mtime_ns

    def get(self) -> dict[str, Any]:
        signature = self._stat()
        if signature != self._signature:
            self._value = self.load() if signature is not None else {}
            self._signature = signature
        return self._value

    def write(self, key: str, value: Any, append: Callable[[], None]) -> None:
        """Append with ``append``; what others appended before is reread first."""
        current = self.get()
        append()
        current[key] = value
        self._signature = self._stat()


def _summary_thread(path: str, thread_id: str, preview: str, summary: str) -> StoredThread | None:
    """The ``StoredThread`` (as read with ``full=False``) an index row describes, with the
    file's current mtime; ``None`` when the file is gone."""
    try:
        updated = int(os.stat(path).st_mtime)
    except OSError:
        return None
    values = json.loads(summary)
    context_cwd = values.get("context_cwd")
    return StoredThread(
        path=Path(path),
        id=thread_id,
        meta=values.get("meta") or {},
        created_at=int(values.get("created_at") or 0),
        written_at=values.get("written_at"),
        updated_at=updated,
        preview=preview,
        model=values.get("model"),
        context={"cwd": context_cwd} if context_cwd else {},
        first_turn=values.get("first_turn"),
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
