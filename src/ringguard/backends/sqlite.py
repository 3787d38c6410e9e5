"""The embedded default backend: one SQLite file per node, WAL mode, durable commits.

Schema (version 2): ``records(hs, key, value, epoch, seq, dg)`` with primary key
``(hs, key)``, where ``hs`` is the key hash with its top bit flipped, read as a signed
64-bit integer (so SQLite's signed order is the hash order and a hash range is a primary-key
range), and ``dg`` the record digest (:func:`~ringguard.backends.base.record_digests`) as a
signed 64-bit integer. ``digests(bucket, cnt, hi, lo)`` holds, per range of the top 16 hash
bits that has held a record, the record count and the digest sum as two 32-bit halves
(each summed exactly in a 64-bit integer); triggers keep it up to date inside the
transaction that writes the records, so a committed batch and its digests are never out
of step.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence

import numpy as np

from .base import (
    DIGEST_BITS,
    Backend,
    BackendError,
    Records,
    StaleEpochError,
    check_batch_size,
    check_range,
    key_hashes,
    record_digests,
)

__all__ = ["SQLiteBackend"]

SCHEMA_VERSION = 2
_FLIP = np.uint64(1 << 63)
_SCHEMA = [
    """
    CREATE TABLE IF NOT EXISTS records (
        hs INTEGER NOT NULL,
        key BLOB NOT NULL,
        value BLOB,
        epoch INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        dg INTEGER NOT NULL,
        PRIMARY KEY (hs, key)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS digests (
        bucket INTEGER PRIMARY KEY, cnt INTEGER NOT NULL, hi INTEGER NOT NULL,
        lo INTEGER NOT NULL
    )
    """,
    # bucket = top 16 bits of the hash = (hs >> 48) + 32768 (SQLite's >> is arithmetic).
    """
    CREATE TRIGGER IF NOT EXISTS records_ins AFTER INSERT ON records BEGIN
        INSERT INTO digests (bucket, cnt, hi, lo)
        VALUES ((NEW.hs >> 48) + 32768, 1, (NEW.dg >> 32) & 4294967295, NEW.dg & 4294967295)
        ON CONFLICT(bucket) DO UPDATE SET cnt = cnt + 1, hi = hi + excluded.hi,
            lo = lo + excluded.lo;
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS records_upd AFTER UPDATE ON records BEGIN
        UPDATE digests SET
            hi = hi - ((OLD.dg >> 32) & 4294967295) + ((NEW.dg >> 32) & 4294967295),
            lo = lo - (OLD.dg & 4294967295) + (NEW.dg & 4294967295)
        WHERE bucket = (NEW.hs >> 48) + 32768;
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS records_del AFTER DELETE ON records BEGIN
        UPDATE digests SET cnt = cnt - 1, hi = hi - ((OLD.dg >> 32) & 4294967295),
            lo = lo - (OLD.dg & 4294967295)
        WHERE bucket = (OLD.hs >> 48) + 32768;
    END
    """,
]
# Last-writer-wins in one statement: the row is replaced only by a greater version.
_UPSERT = """
INSERT INTO records (hs, key, value, epoch, seq, dg) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT(hs, key) DO UPDATE SET value = excluded.value, epoch = excluded.epoch,
    seq = excluded.seq, dg = excluded.dg
WHERE (excluded.epoch, excluded.seq) > (records.epoch, records.seq)
"""
_CHUNK = 500  # keys per SELECT ... IN (...), below every SQLite's variable limit


def _signed_hashes(keys: Sequence[bytes]) -> np.ndarray:
    """Key hashes mapped order-preservingly onto int64 (top bit flipped)."""
    return (key_hashes(keys) ^ _FLIP).view(np.int64)


def _signed(h: int) -> int:
    """The stored ``hs`` of an unsigned hash bound ``h`` in ``[0, 2**64)``."""
    return h - 2**63


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
            self._init_schema(self._db)
        except sqlite3.Error as exc:
            raise BackendError(f"{self.path}: cannot open ({exc})") from exc

    def _init_schema(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
            )
            row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            cols = [r[1] for r in db.execute("PRAGMA table_info(records)")]
            if row is not None and row[0] > SCHEMA_VERSION:
                raise BackendError(
                    f"{self.path}: schema version {row[0]} is newer than this ringguard "
                    f"understands ({SCHEMA_VERSION})"
                )
            old = bool(cols) and "hs" not in cols  # version 1: key primary key, no hashes
            if old:
                db.execute("ALTER TABLE records RENAME TO records_v1")
            for stmt in _SCHEMA:
                db.execute(stmt)
            if old:
                self._migrate_v1(db)
            db.execute(
                "INSERT INTO meta (name, value) VALUES ('schema', ?) ON CONFLICT(name) "
                "DO UPDATE SET value = excluded.value",
                (SCHEMA_VERSION,),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _migrate_v1(self, db: sqlite3.Connection) -> None:
        cur = db.execute("SELECT key, value, epoch, seq FROM records_v1")
        while True:
            rows = cur.fetchmany(10_000)
            if not rows:
                break
            recs = Records(
                [bytes(r[0]) for r in rows],
                [None if r[1] is None else bytes(r[1]) for r in rows],
                np.array([r[2] for r in rows], dtype=np.int64),
                np.array([r[3] for r in rows], dtype=np.int64),
            )
            db.executemany(_UPSERT, self._rows(recs))
        db.execute("DROP TABLE records_v1")

    @staticmethod
    def _rows(records: Records) -> zip[tuple[int, bytes, bytes | None, int, int, int]]:
        return zip(
            _signed_hashes(records.keys).tolist(),
            records.keys,
            records.values,
            records.epochs.tolist(),
            records.seqs.tolist(),
            record_digests(records).view(np.int64).tolist(),
            strict=True,
        )

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
        if not len(records):
            return 0
        rows = self._rows(records)
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                if fenced:
                    row = db.execute("SELECT value FROM meta WHERE name = 'fence'").fetchone()
                    low = int(records.epochs.min())
                    if row and low < row[0]:
                        db.execute("ROLLBACK")
                        raise StaleEpochError(
                            f"{self.path}: write with epoch {low} below the fence {row[0]}"
                        )
                # rowcount: rows inserted or updated by the upsert itself (not the triggers).
                applied = db.executemany(_UPSERT, rows).rowcount
                db.execute("COMMIT")
                return applied
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise BackendError(f"{self.path}: write failed ({exc})") from exc

    def read(self, keys: Sequence[bytes]) -> Records:
        found: dict[bytes, tuple[bytes | None, int, int]] = {}
        ks = list(keys)
        hs = _signed_hashes(ks).tolist() if ks else []
        with self._lock:
            db = self._conn()
            try:
                for i in range(0, len(ks), _CHUNK):
                    part = hs[i : i + _CHUNK]
                    q = (
                        "SELECT key, value, epoch, seq FROM records WHERE hs IN "
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

    def scan_range(self, lo: int, hi: int, batch_size: int = 10_000) -> Iterator[Records]:
        lo, hi = check_range(lo, hi)
        batch_size = check_batch_size(batch_size)
        with self._lock:
            self._conn()
        return self._scan(lo, hi, batch_size)

    def _scan(self, lo: int, hi: int, batch_size: int) -> Iterator[Records]:
        if lo >= hi:
            return
        # Keyset pagination on the primary key (hs, key): each batch resumes after the last.
        last: tuple[int, bytes] | None = None
        top = _signed(hi - 1)  # inclusive upper bound on hs
        while True:
            with self._lock:
                db = self._conn()
                try:
                    if last is None:
                        rows = db.execute(
                            "SELECT key, value, epoch, seq, hs FROM records "
                            "WHERE hs >= ? AND hs <= ? ORDER BY hs, key LIMIT ?",
                            (_signed(lo), top, batch_size),
                        ).fetchall()
                    else:
                        rows = db.execute(
                            "SELECT key, value, epoch, seq, hs FROM records "
                            "WHERE (hs, key) > (?, ?) AND hs <= ? ORDER BY hs, key LIMIT ?",
                            (last[0], last[1], top, batch_size),
                        ).fetchall()
                except sqlite3.Error as exc:
                    raise BackendError(f"{self.path}: scan failed ({exc})") from exc
            if not rows:
                return
            last = (rows[-1][4], bytes(rows[-1][0]))
            yield Records(
                [bytes(r[0]) for r in rows],
                [None if r[1] is None else bytes(r[1]) for r in rows],
                np.array([r[2] for r in rows], dtype=np.int64),
                np.array([r[3] for r in rows], dtype=np.int64),
            )
            if len(rows) < batch_size:
                return

    def _digests(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            db = self._conn()
            try:
                rows = db.execute("SELECT bucket, cnt, hi, lo FROM digests").fetchall()
            except sqlite3.Error as exc:
                raise BackendError(f"{self.path}: digests failed ({exc})") from exc
        a = np.array(rows, dtype=np.int64).reshape(-1, 4)
        if len(a) and (a.min() < 0 or a[:, 0].max() >= 2**DIGEST_BITS):
            raise BackendError(f"{self.path}: the digests table is damaged")
        counts = np.zeros(2**DIGEST_BITS, dtype=np.uint64)
        sums = np.zeros(2**DIGEST_BITS, dtype=np.uint64)
        counts[a[:, 0]] = a[:, 1].astype(np.uint64)
        # sum = hi * 2**32 + lo (mod 2**64); both halves are exact non-negative int64 sums.
        sums[a[:, 0]] = (a[:, 2].astype(np.uint64) << np.uint64(32)) + a[:, 3].astype(np.uint64)
        return counts, sums

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
