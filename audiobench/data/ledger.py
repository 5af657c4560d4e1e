"""The SQLite ledger: the one source of truth for what a dataset lists, what was had, and its labels.

One file per dataset (``<root>/<dataset>/ledger.sqlite``). Every write is its own transaction, so a
process killed at any moment leaves every finished clip recorded. Fetch workers are threads: one
connection guarded by a lock serves them all (SQLite serialises writers anyway).

A ledger written by an older release is upgraded in place when opened, in one transaction: release 0.1
named a clip's recording ``ytid`` (every clip came from YouTube); it is now ``source_id`` beside ``source``,
which older rows get as ``'youtube'``. Tables added since (``attempts``) are created in an older file on open.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from audiobench.core.records import DEFAULT_SOURCE, AudioRecord, ClassInfo, Clip, ClipStatus, Event
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import disk_full_error, is_disk_full
from audiobench.data.sources import validate_source_id

STATUSES = ("pending", "ok", "unavailable", "failed")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS classes (idx INTEGER PRIMARY KEY, mid TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS splits (name TEXT PRIMARY KEY, strong INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS clips (
    clip_id TEXT PRIMARY KEY,
    split TEXT NOT NULL REFERENCES splits(name),
    source_id TEXT NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ok', 'unavailable', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    bytes INTEGER,
    sha256 TEXT,
    duration REAL,
    path TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '{DEFAULT_SOURCE}',
    origin TEXT
);
CREATE INDEX IF NOT EXISTS clips_split_status ON clips (split, status);
CREATE TABLE IF NOT EXISTS weak (clip_id TEXT NOT NULL REFERENCES clips(clip_id), class_idx INTEGER NOT NULL,
                                 PRIMARY KEY (clip_id, class_idx));
CREATE TABLE IF NOT EXISTS events (clip_id TEXT NOT NULL REFERENCES clips(clip_id), class_idx INTEGER NOT NULL,
                                   onset REAL NOT NULL, offset REAL NOT NULL);
CREATE INDEX IF NOT EXISTS events_clip ON events (clip_id);
CREATE TABLE IF NOT EXISTS audio (
    clip_id TEXT PRIMARY KEY REFERENCES clips(clip_id),
    path TEXT NOT NULL,
    samples INTEGER NOT NULL,
    duration REAL NOT NULL,
    short INTEGER NOT NULL,
    source_mtime_ns INTEGER,
    updated TEXT NOT NULL,
    source_bytes INTEGER,
    source_sha256 TEXT,
    source_inode INTEGER,
    source_ctime_ns INTEGER
);
-- one row per download started (probes and retries included), for pacing across workers and restarts
CREATE TABLE IF NOT EXISTS attempts (started REAL NOT NULL, clip_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS attempts_started ON attempts (started);
"""
ATTEMPTS_KEPT = 2 * 86400.0  # seconds of attempt history kept (pacing looks back one hour)
# Columns renamed since the first ledgers were written: (table, old name, new name), renamed in an older file
# on open, before the added columns below.
_RENAMED_COLUMNS = (("clips", "ytid", "source_id"),)
# Columns added since the first ledgers were written: (table, column, type), added to an older file on open.
_ADDED_COLUMNS = (("audio", "source_bytes", "INTEGER"), ("audio", "source_sha256", "TEXT"),
                  ("audio", "source_inode", "INTEGER"), ("audio", "source_ctime_ns", "INTEGER"),
                  ("clips", "source", f"TEXT NOT NULL DEFAULT '{DEFAULT_SOURCE}'"), ("clips", "origin", "TEXT"))

_CLIP_COLUMNS = ("clip_id", "split", "source_id", "start", "end", "status", "attempts", "last_error", "bytes",
                 "sha256", "duration", "path", "updated", "source")


def now() -> str:
    """UTC timestamp, ISO 8601, second resolution."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


class Ledger:
    """Per-clip status, labels and audio records of one dataset.

    >>> ledger = Ledger(tmp_path / "ledger.sqlite")          # doctest: +SKIP
    >>> ledger.counts()                                       # doctest: +SKIP
    {'train': {'ok': 600}, ...}
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._upgrade()
        except sqlite3.DatabaseError as exc:
            if is_disk_full(exc):
                raise disk_full_error(self.path.parent) from None
            raise AudiobenchError(f"{self.path}: not a usable ledger ({exc})") from None
        self._lock = threading.RLock()

    def _upgrade(self) -> None:
        """Bring an older ledger's tables to this schema, in one transaction; a current file takes no lock
        (and of two processes opening the same old file at once, the second finds the work done)."""
        def changes() -> list[str]:
            columns = {t: {row[1] for row in self._db.execute(f"PRAGMA table_info({t})")} for t in ("clips", "audio")}
            out = [f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}" for table, old, new in _RENAMED_COLUMNS
                   if old in columns[table] and new not in columns[table]]
            return out + [f"ALTER TABLE {table} ADD COLUMN {column} {kind}" for table, column, kind in _ADDED_COLUMNS
                          if column not in columns[table]]

        if not changes():
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for statement in changes():
                self._db.execute(statement)
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a full disk is one error naming the ledger's folder (earlier writes stay)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                if is_disk_full(exc):
                    raise disk_full_error(self.path.parent) from None
                raise

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- dataset description -------------------------------------------------------------------------
    def set_meta(self, **values: object) -> None:
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [(k, json.dumps(v)) for k, v in values.items()])

    def meta(self) -> dict[str, object]:
        return {k: json.loads(v) for k, v in self._query("SELECT key, value FROM meta")}

    def set_classes(self, classes: Sequence[ClassInfo]) -> None:
        """Record the class list once; a different list later is an error, not a silent relabelling."""
        existing = self.classes()
        if existing and existing != list(classes):
            raise AudiobenchError(f"{self.path}: holds a different class list; use a new --root or dataset name")
        if not existing:
            with self._transaction() as db:
                db.executemany("INSERT INTO classes VALUES (?, ?, ?)",
                               [(i, c.mid, c.name) for i, c in enumerate(classes)])

    def classes(self) -> list[ClassInfo]:
        return [ClassInfo(mid, name) for mid, name in self._query("SELECT mid, name FROM classes ORDER BY idx")]

    def splits(self) -> dict[str, bool]:
        """Split name -> whether it carries strong labels, in the order splits were added."""
        return {name: bool(strong) for name, strong in self._query("SELECT name, strong FROM splits ORDER BY rowid")}

    # -- clips -----------------------------------------------------------------------------------------
    def add_clips(self, clips: Iterable[Clip]) -> int:
        """Register listed clips as ``pending`` with their labels; clips already present are left as they are.

        Each clip's recording ID is checked by its source first: one that is not valid registers nothing.
        Returns the number of new clips.
        """
        added = 0
        stamp = now()
        with self._transaction() as db:
            known_splits = {name for (name,) in db.execute("SELECT name FROM splits")}
            for clip in clips:
                validate_source_id(clip.source, clip.source_id, where=f"clip {clip.clip_id}")
                if clip.split not in known_splits:
                    db.execute("INSERT INTO splits VALUES (?, ?)", (clip.split, int(clip.events is not None)))
                    known_splits.add(clip.split)
                cur = db.execute(
                    'INSERT OR IGNORE INTO clips (clip_id, split, source, source_id, start, "end", created, updated) '
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (clip.clip_id, clip.split, clip.source, clip.source_id, clip.start, clip.end, stamp, stamp),
                )
                if cur.rowcount == 0:
                    continue
                added += 1
                db.executemany("INSERT OR IGNORE INTO weak VALUES (?, ?)", [(clip.clip_id, c) for c in clip.weak])
                if clip.events:
                    db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)",
                                   [(clip.clip_id, e.class_index, e.onset, e.offset) for e in clip.events])
        return added

    def mark(self, clip_id: str, status: str, *, error: str | None = None, attempts: int = 1,
             origin: dict[str, object] | None = None, **fields: object) -> None:
        """Set a clip's status (and any of bytes, sha256, duration, path), adding ``attempts`` tries.

        ``origin`` records, in the same transaction, where an ``ok`` clip's audio came from (a JSON object:
        ``{"via": "yt-dlp", "codec": ...}`` for a download, ``{"via": "import", "format": ...}`` for a copy);
        it replaces the clip's earlier origin and is read back by :meth:`origins`.
        """
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        allowed = {"bytes", "sha256", "duration", "path"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown ledger fields {sorted(unknown)}")
        sets = ["status = ?", "last_error = ?", "updated = ?", "attempts = attempts + ?"]
        sets += [f"{k} = ?" for k in fields]
        params: list[object] = [status, error, now(), attempts, *fields.values()]
        if origin is not None:
            sets.append("origin = ?")
            params.append(json.dumps(origin, sort_keys=True))
        with self._transaction() as db:
            cur = db.execute(f"UPDATE clips SET {', '.join(sets)} WHERE clip_id = ?", (*params, clip_id))
            if cur.rowcount == 0:
                raise AudiobenchError(f"{self.path}: no clip {clip_id!r} in the ledger")

    def origins(self, *, split: str | None = None) -> dict[str, dict[str, object]]:
        """clip id -> the origin recorded when it became ``ok`` (clips without one are left out)."""
        where, params = self._filter(split=split, status=None)
        where = (where + " AND" if where else " WHERE") + " origin IS NOT NULL"
        return {cid: json.loads(text)
                for cid, text in self._query(f"SELECT clip_id, origin FROM clips{where} ORDER BY clip_id", params)}

    def statuses(self, *, split: str | None = None, status: str | Sequence[str] | None = None) -> list[ClipStatus]:
        """Ledger rows, ordered by split then clip id."""
        where, params = self._filter(split=split, status=status)
        cols = ", ".join(f'"{c}"' for c in _CLIP_COLUMNS)
        rows = self._query(f"SELECT {cols} FROM clips{where} ORDER BY split, clip_id", params)
        return [ClipStatus(*row) for row in rows]

    def clips(self, *, split: str | None = None, status: str | Sequence[str] | None = None) -> list[Clip]:
        """Clips with their weak labels and (for strongly labelled splits) events, ordered by clip id."""
        where, params = self._filter(split=split, status=status)
        rows = self._query(f'SELECT clip_id, split, source_id, start, "end", source FROM clips{where} '
                           "ORDER BY split, clip_id", params)
        strong = self.splits()
        weak: dict[str, list[int]] = defaultdict(list)
        for clip_id, c in self._query("SELECT clip_id, class_idx FROM weak ORDER BY clip_id, class_idx"):
            weak[clip_id].append(c)
        events: dict[str, list[Event]] = defaultdict(list)
        for clip_id, c, on, off in self._query("SELECT clip_id, class_idx, onset, offset FROM events "
                                               "ORDER BY clip_id, onset, offset, class_idx"):
            events[clip_id].append(Event(c, on, off))
        return [
            Clip(cid, sp, sid, st, en, tuple(weak.get(cid, ())),
                 tuple(events.get(cid, ())) if strong.get(sp) else None, source)
            for cid, sp, sid, st, en, source in rows
        ]

    @staticmethod
    def _filter(*, split: str | None, status: str | Sequence[str] | None) -> tuple[str, list[object]]:
        clauses, params = [], []
        if split is not None:
            clauses.append("split = ?")
            params.append(split)
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            clauses.append(f"status IN ({', '.join('?' * len(wanted))})")
            params.extend(wanted)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def counts(self) -> dict[str, dict[str, int]]:
        """Split -> status -> number of clips."""
        out: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUSES, 0))
        for split, status, n in self._query("SELECT split, status, count(*) FROM clips GROUP BY split, status"):
            out[split][status] = n
        return {s: out[s] for s in self.splits() if s in out}

    def class_counts(self) -> dict[tuple[str, int], dict[str, int]]:
        """(split, class index) -> status -> number of clips labelled with that class."""
        out: dict[tuple[str, int], dict[str, int]] = {}
        for split, idx, status, n in self._query(
            "SELECT c.split, w.class_idx, c.status, count(*) FROM clips c JOIN weak w USING (clip_id) "
            "GROUP BY c.split, w.class_idx, c.status"
        ):
            out.setdefault((split, idx), dict.fromkeys(STATUSES, 0))[status] = n
        return out

    def reopen_unavailable(self, *, note: str, since: str | None = None, clip_ids: Iterable[str] | None = None,
                           matching: Sequence[str] = ()) -> list[str]:
        """Put clips marked ``unavailable`` back to ``pending``: those among ``clip_ids``, or those marked at or
        after ``since`` (a :func:`now` stamp); with ``matching``, only those whose error contains one of these
        phrases (case-insensitive).

        Their attempt counts stay; ``note`` replaces the error, saying why. Returns the clip ids, in order.
        """
        sql, params = "SELECT clip_id FROM clips WHERE status = 'unavailable'", []
        if since is not None:
            sql += " AND updated >= ?"
            params.append(since)
        if matching:
            sql += " AND (" + " OR ".join("lower(last_error) LIKE ?" for _ in matching) + ")"
            params += [f"%{phrase.lower()}%" for phrase in matching]
        wanted = None if clip_ids is None else set(clip_ids)
        with self._transaction() as db:
            ids = [cid for (cid,) in db.execute(sql + " ORDER BY clip_id", params) if wanted is None or cid in wanted]
            db.executemany("UPDATE clips SET status = 'pending', last_error = ?, updated = ? WHERE clip_id = ?",
                           [(note, now(), cid) for cid in ids])
        return ids

    # -- download starts (pacing) ------------------------------------------------------------------------
    def reserve_start(self, clip_id: str, at: float, *, cap: int | None, window: float = 3600.0) -> float | None:
        """Record a download of ``clip_id`` starting at ``at`` (epoch seconds) unless ``cap`` downloads already
        started in the ``window`` seconds before; then return, without recording, when the oldest of those
        leaves the window. Count and record are one transaction, so processes sharing the ledger share the cap.
        ``cap=None`` records the start unconditionally (a later run with a cap counts it).
        """
        with self._transaction() as db:
            db.execute("DELETE FROM attempts WHERE started < ?", (at - ATTEMPTS_KEPT,))
            recent = [t for (t,) in db.execute("SELECT started FROM attempts WHERE started > ? ORDER BY started",
                                               (at - window,))]
            if cap is not None and len(recent) >= cap:
                return recent[len(recent) - cap] + window
            db.execute("INSERT INTO attempts VALUES (?, ?)", (at, clip_id))
        return None

    def starts(self, *, since: float = 0.0) -> list[tuple[float, str]]:
        """(start time, clip id) of the downloads started after ``since``, oldest first."""
        return [(t, c) for t, c in self._query("SELECT started, clip_id FROM attempts WHERE started > ? "
                                               "ORDER BY started", (since,))]

    # -- audio (resample / synth) ---------------------------------------------------------------------
    def record_audio(self, record: AudioRecord) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO audio (clip_id, path, samples, duration, short, source_mtime_ns, "
                       "updated, source_bytes, source_sha256, source_inode, source_ctime_ns) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (record.clip_id, record.path, record.samples, record.duration, int(record.short),
                        record.source_mtime_ns, now(), record.source_bytes, record.source_sha256,
                        record.source_inode, record.source_ctime_ns))

    def audio(self, *, split: str | None = None) -> dict[str, AudioRecord]:
        """clip id -> its resampled audio, for clips that have one."""
        sql = ("SELECT a.clip_id, a.path, a.samples, a.duration, a.short, a.source_mtime_ns, a.source_bytes, "
               "a.source_sha256, a.source_inode, a.source_ctime_ns FROM audio a JOIN clips c ON c.clip_id = a.clip_id")
        params: list[object] = []
        if split is not None:
            sql += " WHERE c.split = ?"
            params.append(split)
        return {row[0]: AudioRecord(row[0], row[1], row[2], row[3], bool(row[4]), *row[5:])
                for row in self._query(sql + " ORDER BY a.clip_id", params)}
