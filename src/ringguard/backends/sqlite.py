"""The embedded default backend: one SQLite file per node, WAL mode, durable commits."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence

import numpy as np

from .base import Backend, BackendError, Records, StaleEpochError

__all__ = ["SQLiteBackend"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    key BLOB PRIMARY KEY,
    value BLOB,
    epoch INTEGER NOT NULL,
    seq INTEGER NOT NULL
) WITHOUT ROWID
"""
# Last-writer-wins in one statement: the row is replaced only by a greater version.
_UPSERT = """
INSERT INTO records (key, value, epoch, seq) VALUES (?, ?, ?, ?)
ON CONFLICT(key) DO UPDATE SET value = excluded.value, epoch = excluded.epoch,
    seq = excluded.seq
WHERE (excluded.epoch, excluded.seq) > (records.epoch, records.seq)
"""
_CHUNK = 500  # keys per SELECT ... IN (...), below every SQLite's variable limit


class SQLiteBackend(Backend):
    """A node's records in a SQLite file.

    Parameters
    ----------
    path
        Database file (created with its directory if missing).
    synchronous
        SQLite ``synchronous`` level: ``"FULL"`` (default) makes every committed batch
        durable across power loss in WAL mode; ``"NORMAL"`` is faster but may lose the last
        transactions on power loss (never on a process crash).
    timeout_s
        How long a call waits for a lock held by another connection.

    Examples
    --------
    >>> import tempfile, os
    >>> from ringguard.backends import SQLiteBackend, Records
    >>> d = tempfile.mkdtemp()
    >>> with SQLiteBackend(os.path.join(d, "n1.db")) as b:
    ...     b.write(Records.build([b"order:1"], [b"{}"], 0, 1))
    1
    """

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: str = "FULL", timeout_s: float = 5.0
    ) -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous: expected FULL, NORMAL or EXTRA, got {synchronous!r}")
        self.path = os.fspath(path)
        self.name = os.path.basename(self.path)
        self._lock = threading.Lock()
        self._timeout_s = timeout_s
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        try:
            self._db: sqlite3.Connection | None = sqlite3.connect(
                self.path, timeout=timeout_s, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute(_SCHEMA)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
            )
        except sqlite3.Error as exc:
            raise BackendError(f"{self.path}: cannot open ({exc})") from exc

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise BackendError(f"{self.path}: backend is closed")
        if not os.path.exists(self.path):
            raise BackendError(f"{self.path}: database file is gone (disk lost?)")
        return self._db

    def set_fence(self, epoch: int) -> None:
        with self._lock:
            db = self._conn()
            try:
                db.execute(
                    "INSERT INTO meta (name, value) VALUES ('fence', ?) ON CONFLICT(name) "
                    "DO UPDATE SET value = max(value, excluded.value)",
                    (int(epoch),),
                )
            except sqlite3.Error as exc:
                raise BackendError(f"{self.path}: set_fence failed ({exc})") from exc

    def fence(self) -> int:
        with self._lock:
            row = self._conn().execute("SELECT value FROM meta WHERE name = 'fence'").fetchone()
        return int(row[0]) if row else 0

    def write(self, records: Records, *, fenced: bool = False) -> int:
        rows = list(
            zip(
                records.keys,
                records.values,
                records.epochs.tolist(),
                records.seqs.tolist(),
                strict=True,
            )
        )
        with self._lock:
            db = self._conn()
            try:
                before = db.total_changes
                db.execute("BEGIN IMMEDIATE")
                if fenced and rows:
                    row = db.execute("SELECT value FROM meta WHERE name = 'fence'").fetchone()
                    low = int(records.epochs.min())
                    if row and low < row[0]:
                        db.execute("ROLLBACK")
                        raise StaleEpochError(
                            f"{self.path}: write with epoch {low} below the fence {row[0]}"
                        )
                db.executemany(_UPSERT, rows)
                db.execute("COMMIT")
                return db.total_changes - before
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise BackendError(f"{self.path}: write failed ({exc})") from exc

    def read(self, keys: Sequence[bytes]) -> Records:
        found: dict[bytes, tuple[bytes | None, int, int]] = {}
        ks = list(keys)
        with self._lock:
            db = self._conn()
            try:
                for i in range(0, len(ks), _CHUNK):
                    part = ks[i : i + _CHUNK]
                    q = (
                        "SELECT key, value, epoch, seq FROM records WHERE key IN "
                        f"({','.join('?' * len(part))})"
                    )
                    for k, v, e, s in db.execute(q, part):
                        found[bytes(k)] = (None if v is None else bytes(v), e, s)
            except sqlite3.Error as exc:
                raise BackendError(f"{self.path}: read failed ({exc})") from exc
        got = [found.get(k) for k in ks]
        return Records(
            ks,
            [g[0] if g else None for g in got],
            np.array([g[1] if g else -1 for g in got], dtype=np.int64),
            np.array([g[2] if g else -1 for g in got], dtype=np.int64),
        )

    def scan(self, batch_size: int = 10_000) -> Iterator[Records]:
        last = b""
        first = True
        while True:
            with self._lock:
                db = self._conn()
                try:
                    rows = db.execute(
                        "SELECT key, value, epoch, seq FROM records WHERE key > ? OR ? "
                        "ORDER BY key LIMIT ?",
                        (last, first, batch_size),
                    ).fetchall()
                except sqlite3.Error as exc:
                    raise BackendError(f"{self.path}: scan failed ({exc})") from exc
            if not rows:
                return
            first = False
            last = bytes(rows[-1][0])
            yield Records(
                [bytes(r[0]) for r in rows],
                [None if r[1] is None else bytes(r[1]) for r in rows],
                np.array([r[2] for r in rows], dtype=np.int64),
                np.array([r[3] for r in rows], dtype=np.int64),
            )

    def ping(self) -> None:
        with self._lock:
            try:
                self._conn().execute("SELECT 1").fetchone()
            except sqlite3.Error as exc:
                raise BackendError(f"{self.path}: ping failed ({exc})") from exc

    def count(self) -> int:
        with self._lock:
            return int(self._conn().execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __repr__(self) -> str:
        return f"SQLiteBackend({self.path!r})"
