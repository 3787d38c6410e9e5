"""The embedded default backend: one SQLite file per node, WAL mode, durable commits.

Schema (version 3)
------------------
``records(hs, key, value, epoch, seq, dg)`` with primary key ``(hs, key)``, where ``hs`` is
the key hash with its top bit flipped, read as a signed 64-bit integer (so SQLite's signed
order is the hash order and a hash range is a primary-key range), and ``dg`` the record
digest (:func:`~ringguard.backends.base.record_digests`) as a signed 64-bit integer.
``records`` is an ordinary rowid table (the primary key is a separate index of small
entries): schema 2 made it ``WITHOUT ROWID``, which keeps the ~250-byte rows in the key's
B-tree, and measured 2-3x dearer per written row once a node holds 100k records or more
(upserts of 4,000-record batches: ~18 vs ~7 us per row at 100k rows, ~24 vs ~8 at 400k).
Schema 2 tables are copied into the new layout by the migration.

The per-range digests (``2**DIGEST_BITS`` ranges: a record count and a digest sum each) live
in two NumPy arrays in memory, updated in batch from every write. They are persisted in the
*same transaction* as the records, so a crash can never leave them out of step:

- ``digest_log(id, buckets, counts, sums)``: one row per write transaction with the ranges it
  changed and the changes (little-endian ``u4``/``i8``/``u8`` BLOBs of equal length);
- ``digest_pages(page, counts, sums)``: a checkpoint of the arrays in pages of
  ``2**_PAGE_BITS`` ranges (little-endian ``u8`` BLOBs). Once the log holds
  ``_LOG_CHECKPOINT`` rows, the next write rewrites the pages the log touched and empties it
  inside its own transaction (the pages plus the log always equal the arrays).

Opening a file loads the pages and applies the log in order. ``meta`` holds ``schema`` (3)
and ``digest_bits``, the resolution the digests were written at; a file written at another
resolution, or with an older schema (version 2 kept the digests in a ``digests`` table
through triggers, one UPDATE per record; version 1 had no hashes), is migrated on open by
recomputing the digests from the records. Another connection writing the same file is
noticed through ``PRAGMA data_version`` and the arrays are reloaded before they are used.

Writes apply last-writer-wins in one transaction per batch: one ``SELECT`` of the stored
versions and digests of the batch's keys, the decision in NumPy, one ``executemany`` upsert
of the winners (its ``WHERE`` on the version keeps the rule even if the decision were
wrong) and one ``digest_log`` row. Schema 2's per-record trigger cost about as much as the
upsert itself; this costs one indexed read per key.
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
)

__all__ = ["SQLiteBackend"]

SCHEMA_VERSION = 3
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
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS digest_pages (
        page INTEGER PRIMARY KEY, counts BLOB NOT NULL, sums BLOB NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS digest_log (
        id INTEGER PRIMARY KEY, buckets BLOB NOT NULL, counts BLOB NOT NULL,
        sums BLOB NOT NULL
    )
    """,
]
# Schema 2 objects dropped by the migration to 3.
_V2_OBJECTS = [
    "DROP TRIGGER IF EXISTS records_ins",
    "DROP TRIGGER IF EXISTS records_upd",
    "DROP TRIGGER IF EXISTS records_del",
    "DROP TABLE IF EXISTS digests",
]
# Last-writer-wins in one statement: the row is replaced only by a greater version.
_UPSERT = """
INSERT INTO records (hs, key, value, epoch, seq, dg) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT(hs, key) DO UPDATE SET value = excluded.value, epoch = excluded.epoch,
    seq = excluded.seq, dg = excluded.dg
WHERE (excluded.epoch, excluded.seq) > (records.epoch, records.seq)
"""
_CHUNK = 500  # keys per SELECT ... IN (...), below every SQLite's variable limit
_PAGE_BITS = min(DIGEST_BITS, 10)  # ranges per checkpoint page: 2**10 (16 KiB of BLOBs)
_LOG_CHECKPOINT = 256  # digest_log rows that trigger a checkpoint of the touched pages
_SHIFT = np.uint64(64 - DIGEST_BITS)


def _signed_hashes(keys: Sequence[bytes]) -> np.ndarray:
    """Key hashes mapped order-preservingly onto int64 (top bit flipped)."""
    return (key_hashes(keys) ^ _FLIP).view(np.int64)


def _signed(h: int) -> int:
    """The stored ``hs`` of an unsigned hash bound ``h`` in ``[0, 2**64)``."""
    return h - 2**63


def _buckets(hs: np.ndarray) -> np.ndarray:
    """Finest range of each stored ``hs`` (int64), as intp."""
    return ((hs.view(np.uint64) ^ _FLIP) >> _SHIFT).astype(np.intp)


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
    cache_mib
        SQLite page cache of the connection, in MiB (default 64: a node's working set
        stays in memory; SQLite's own default is 2).

    Examples
    --------
    >>> import tempfile, os
    >>> from ringguard.backends import SQLiteBackend, Records
    >>> d = tempfile.mkdtemp()
    >>> with SQLiteBackend(os.path.join(d, "n1.db")) as b:
    ...     b.write(Records.build([b"order:1"], [b"{}"], 0, 1))
    1
    """

    # Writes are CPU work under the GIL (one hand-off per row in executemany): the store
    # runs them in its calling thread rather than one thread per node.
    parallel_writes = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        timeout_s: float = 5.0,
        cache_mib: int = 64,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous: expected FULL, NORMAL or EXTRA, got {synchronous!r}")
        if isinstance(cache_mib, bool) or not isinstance(cache_mib, int) or cache_mib < 1:
            raise ValueError(f"cache_mib: expected an int >= 1, got {cache_mib!r}")
        self.path = os.fspath(path)
        self.name = os.path.basename(self.path)
        self._lock = threading.Lock()
        self._timeout_s = timeout_s
        # The digests at the finest resolution, as committed (see the module docstring).
        self._counts = np.zeros(2**DIGEST_BITS, dtype=np.uint64)
        self._sums = np.zeros(2**DIGEST_BITS, dtype=np.uint64)
        self._log_rows = 0  # rows in digest_log
        self._log_pages = np.zeros(2 ** (DIGEST_BITS - _PAGE_BITS), dtype=bool)  # they touch
        self._data_version = -1
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        try:
            self._db: sqlite3.Connection | None = sqlite3.connect(
                self.path, timeout=timeout_s, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
            self._init_schema(self._db)
        except sqlite3.Error as exc:
            raise BackendError(f"{self.path}: cannot open ({exc})") from exc

    def _init_schema(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
            )
            meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
            version = meta.get("schema")
            cols = [r[1] for r in db.execute("PRAGMA table_info(records)")]
            if version is not None and (not isinstance(version, int) or version > SCHEMA_VERSION):
                raise BackendError(
                    f"{self.path}: schema version {version!r} is newer than this ringguard "
                    f"understands ({SCHEMA_VERSION})"
                )
            old = bool(cols) and "hs" not in cols  # version 1: key primary key, no hashes
            if old:
                db.execute("ALTER TABLE records RENAME TO records_v1")
            # A WITHOUT ROWID records table (schema 2, early schema 3 files): copied into
            # the rowid layout.
            relayout = bool(cols) and not old and self._without_rowid(db)
            if relayout:
                db.execute("ALTER TABLE records RENAME TO records_v2")
            if version is None or version < SCHEMA_VERSION:
                for stmt in _V2_OBJECTS:
                    db.execute(stmt)
            for stmt in _SCHEMA:
                db.execute(stmt)
            if old:
                self._migrate_v1(db)
            if relayout:
                db.execute(
                    "INSERT INTO records (hs, key, value, epoch, seq, dg) "
                    "SELECT hs, key, value, epoch, seq, dg FROM records_v2 ORDER BY hs, key"
                )
                db.execute("DROP TABLE records_v2")
            if old or version != SCHEMA_VERSION or meta.get("digest_bits") != DIGEST_BITS:
                # Older schema, new file or another resolution: digests from the records.
                self._rebuild_digests(db)
            else:
                self._load_digests(db)
            db.executemany(
                "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) "
                "DO UPDATE SET value = excluded.value",
                [("schema", SCHEMA_VERSION), ("digest_bits", DIGEST_BITS)],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._data_version = int(db.execute("PRAGMA data_version").fetchone()[0])

    @staticmethod
    def _without_rowid(db: sqlite3.Connection) -> bool:
        row = db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'records'"
        ).fetchone()
        return row is not None and "WITHOUT ROWID" in " ".join(str(row[0]).upper().split())

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

    # ---- digests ------------------------------------------------------------------------

    def _rebuild_digests(self, db: sqlite3.Connection) -> None:
        """Recompute the digests from the records' ``hs``/``dg`` columns and persist them
        as pages (the log emptied). Inside the caller's transaction."""
        counts = np.zeros(2**DIGEST_BITS, dtype=np.uint64)
        sums = np.zeros(2**DIGEST_BITS, dtype=np.uint64)
        cur = db.execute("SELECT hs, dg FROM records")
        while True:
            rows = cur.fetchmany(100_000)
            if not rows:
                break
            a = np.array(rows, dtype=np.int64).reshape(-1, 2)
            b = _buckets(a[:, 0])
            np.add.at(counts, b, np.uint64(1))
            np.add.at(sums, b, a[:, 1].view(np.uint64))
        db.execute("DELETE FROM digest_pages")
        db.execute("DELETE FROM digest_log")
        p = 2**_PAGE_BITS
        pages = np.flatnonzero(counts.reshape(-1, p).any(axis=1)).tolist()
        db.executemany(
            "INSERT INTO digest_pages (page, counts, sums) VALUES (?, ?, ?)",
            [
                (pg, counts[pg * p : (pg + 1) * p].astype("<u8").tobytes(),
                 sums[pg * p : (pg + 1) * p].astype("<u8").tobytes())
                for pg in pages
            ],
        )
        self._counts, self._sums = counts, sums
        self._log_rows = 0
        self._log_pages[:] = False

    def _load_digests(self, db: sqlite3.Connection) -> None:
        """Load the checkpoint pages and apply the log (inside a transaction)."""
        p = 2**_PAGE_BITS
        npages = 2 ** (DIGEST_BITS - _PAGE_BITS)
        counts = np.zeros(2**DIGEST_BITS, dtype=np.uint64)
        sums = np.zeros(2**DIGEST_BITS, dtype=np.uint64)
        for page, c, s in db.execute("SELECT page, counts, sums FROM digest_pages"):
            if not (
                isinstance(page, int) and 0 <= page < npages
                and isinstance(c, bytes) and isinstance(s, bytes)
                and len(c) == len(s) == 8 * p
            ):
                raise BackendError(f"{self.path}: digest page {page!r} is damaged")
            counts[page * p : (page + 1) * p] = np.frombuffer(c, dtype="<u8")
            sums[page * p : (page + 1) * p] = np.frombuffer(s, dtype="<u8")
        touched = np.zeros(npages, dtype=bool)
        rows = 0
        for rid, b, c, s in db.execute(
            "SELECT id, buckets, counts, sums FROM digest_log ORDER BY id"
        ):
            n = len(b) // 4 if isinstance(b, bytes) else -1
            if not (
                n >= 0 and len(b) == 4 * n
                and isinstance(c, bytes) and isinstance(s, bytes)
                and len(c) == len(s) == 8 * n
            ):
                raise BackendError(f"{self.path}: digest log row {rid!r} is damaged")
            bk = np.frombuffer(b, dtype="<u4").astype(np.intp)
            if n and int(bk.max()) >= 2**DIGEST_BITS:
                raise BackendError(f"{self.path}: digest log row {rid!r} is damaged")
            np.add.at(counts, bk, np.frombuffer(c, dtype="<i8").view(np.uint64))
            np.add.at(sums, bk, np.frombuffer(s, dtype="<u8"))
            touched[bk >> _PAGE_BITS] = True
            rows += 1
        self._counts, self._sums = counts, sums
        self._log_rows = rows
        self._log_pages = touched

    def _refresh(self, db: sqlite3.Connection) -> None:
        """Reload the digests if another connection committed since they were loaded.
        Inside a transaction (so the pages and the log are read consistently)."""
        v = int(db.execute("PRAGMA data_version").fetchone()[0])
        if v != self._data_version:
            self._load_digests(db)
            self._data_version = v

    def _checkpoint(self, db: sqlite3.Connection) -> None:
        """Rewrite the pages the log touched from the arrays and empty the log (inside the
        caller's write transaction; the caller resets the log state after COMMIT)."""
        p = 2**_PAGE_BITS
        db.executemany(
            "INSERT OR REPLACE INTO digest_pages (page, counts, sums) VALUES (?, ?, ?)",
            [
                (pg, self._counts[pg * p : (pg + 1) * p].astype("<u8").tobytes(),
                 self._sums[pg * p : (pg + 1) * p].astype("<u8").tobytes())
                for pg in np.flatnonzero(self._log_pages).tolist()
            ],
        )
        db.execute("DELETE FROM digest_log")

    @staticmethod
    def _rows(records: Records) -> zip[tuple[int, bytes, bytes | None, int, int, int]]:
        return zip(
            (records.hashes() ^ _FLIP).view(np.int64).tolist(),
            records.keys,
            records.values,
            records.epochs.tolist(),
            records.seqs.tolist(),
            records.digests().view(np.int64).tolist(),
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

    @staticmethod
    def _stored(db: sqlite3.Connection, hs: list[int]) -> list[tuple[bytes, int, int, int]]:
        """Stored ``(key, epoch, seq, dg)`` of the records whose signed hash is in ``hs``
        (a colliding other key may be among them; callers match their own keys): one
        ``SELECT ... IN`` per ``_CHUNK`` hashes, the last chunk padded so every call uses the
        same cached statement."""
        rows: list[tuple[bytes, int, int, int]] = []
        q = (
            "SELECT key, epoch, seq, dg FROM records WHERE hs IN "
            f"({','.join('?' * _CHUNK)})"
        )
        for i in range(0, len(hs), _CHUNK):
            part = hs[i : i + _CHUNK]
            if len(part) < _CHUNK:
                part = part + [part[0]] * (_CHUNK - len(part))
            rows += db.execute(q, part).fetchall()
        return rows

    def write(self, records: Records, *, fenced: bool = False) -> int:
        n = len(records)
        if not n:
            return 0
        keys = records.keys
        hs = (records.hashes() ^ _FLIP).view(np.int64)
        dg = records.digests()
        epochs, seqs = records.epochs, records.seqs
        hsl = hs.tolist()
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                if fenced:
                    row = db.execute("SELECT value FROM meta WHERE name = 'fence'").fetchone()
                    low = int(epochs.min())
                    if row and low < row[0]:
                        raise StaleEpochError(
                            f"{self.path}: write with epoch {low} below the fence {row[0]}"
                        )
                self._refresh(db)
                checkpoint = self._log_rows >= _LOG_CHECKPOINT
                if checkpoint:
                    self._checkpoint(db)
                # Only keys whose range holds records can be stored (the arrays are current
                # here): a node being rebuilt or filled skips the read.
                maybe = self._counts[_buckets(hs)] > 0
                if maybe.all():
                    stored = self._stored(db, hsl)
                else:
                    pick = np.flatnonzero(maybe).tolist()
                    stored = self._stored(db, [hsl[i] for i in pick])
                win, applied, old_dg, new = self._decide(records, hs, stored)
                if len(win) == n:
                    rows = zip(
                        hsl, keys, records.values, epochs.tolist(), seqs.tolist(),
                        dg.view(np.int64).tolist(), strict=True,
                    )
                    db.executemany(_UPSERT, rows)
                elif len(win):
                    db.executemany(_UPSERT, self._rows(records.take(win)))
                delta = None
                if len(win):
                    delta = self._delta(_buckets(hs[win]), new, dg[win] - old_dg)
                    db.execute(
                        "INSERT INTO digest_log (buckets, counts, sums) VALUES (?, ?, ?)",
                        (delta[0].astype("<u4").tobytes(), delta[1].astype("<i8").tobytes(),
                         delta[2].astype("<u8").tobytes()),
                    )
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise BackendError(f"{self.path}: write failed ({exc})") from exc
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            # Committed: the arrays follow.
            if checkpoint:
                self._log_rows = 0
                self._log_pages[:] = False
            if delta is not None:
                bk, dc, ds = delta
                self._counts[bk] += dc.astype(np.uint64)
                self._sums[bk] += ds
                self._log_rows += 1
                self._log_pages[bk >> _PAGE_BITS] = True
            return applied

    @staticmethod
    def _decide(
        records: Records, hs: np.ndarray, stored: list[tuple[bytes, int, int, int]]
    ) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
        """Last-writer-wins against the ``stored`` rows (:meth:`_stored`).

        Returns ``(win, applied, old_dg, new)``: the positions of the records that end up
        stored (one per key, ascending), how many records a sequential application would
        have applied (what :meth:`write` returns), the digest each winner replaces (0 where
        none) and whether its key was absent.
        """
        n = len(records)
        keys = records.keys
        if len(np.unique(hs)) == n:  # no key twice in the batch: decide in NumPy
            have = np.zeros(n, dtype=bool)
            oe = np.full(n, -1, dtype=np.int64)
            os_ = np.full(n, -1, dtype=np.int64)
            od = np.zeros(n, dtype=np.int64)
            if stored:
                rk, re, rs, rd = (list(c) for c in zip(*stored, strict=True))
                idx = list(map(dict(zip(keys, range(n), strict=True)).get, rk))
                if None in idx:  # rows of other keys with a colliding hash
                    mine = [j for j, i in enumerate(idx) if i is not None]
                    idx = [idx[j] for j in mine]
                    re, rs, rd = ([c[j] for j in mine] for c in (re, rs, rd))
                ix = np.array(idx, dtype=np.intp)
                have[ix] = True
                oe[ix], os_[ix], od[ix] = re, rs, rd
            e, s = records.epochs, records.seqs
            win = np.flatnonzero(~have | (e > oe) | ((e == oe) & (s > os_)))
            return win, len(win), od[win].view(np.uint64), ~have[win]
        # A key more than once (or a hash collision): apply in order, as the upsert would.
        old = {r[0]: (r[1], r[2], r[3]) for r in stored}
        cur: dict[bytes, tuple[int, int]] = {k: (v[0], v[1]) for k, v in old.items()}
        last: dict[bytes, int] = {}
        applied = 0
        for i, (k, e, s) in enumerate(
            zip(keys, records.epochs.tolist(), records.seqs.tolist(), strict=True)
        ):
            c = cur.get(k)
            if c is None or (e, s) > c:
                cur[k] = (e, s)
                last[k] = i
                applied += 1
        win = np.array(sorted(last.values()), dtype=np.intp)
        wk = [keys[i] for i in win.tolist()]
        old_dg = np.array([old[k][2] if k in old else 0 for k in wk], dtype=np.int64)
        new = np.array([k not in old for k in wk], dtype=bool)
        return win, applied, old_dg.view(np.uint64), new

    @staticmethod
    def _delta(
        buckets: np.ndarray, fresh: np.ndarray, dsum: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per changed range: ``(ranges, count changes int64, sum changes uint64)`` of the
        applied rows (their range, 1 if the key was absent, new minus old digest)."""
        bk, inv = np.unique(buckets, return_inverse=True)
        dc = np.zeros(len(bk), dtype=np.int64)
        ds = np.zeros(len(bk), dtype=np.uint64)
        np.add.at(dc, inv, fresh.astype(np.int64))
        np.add.at(ds, inv, dsum.astype(np.uint64))
        return bk, dc, ds

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
                v = int(db.execute("PRAGMA data_version").fetchone()[0])
                if v != self._data_version:  # another connection wrote: reload
                    db.execute("BEGIN")
                    try:
                        self._refresh(db)
                    finally:
                        db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise BackendError(f"{self.path}: digests failed ({exc})") from exc
            return self._counts.copy(), self._sums.copy()

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
