"""The embedded default backend: one SQLite file per node, WAL mode, durable commits.

Schema (version 3)
------------------
``records(hs, key, value, epoch, seq, dg)`` with primary key ``(hs, key)``, where ``hs`` is
the key hash with its top bit flipped, read as a signed 64-bit integer (so SQLite's signed
order is the hash order and a hash range is a primary-key range), and ``dg`` the record
digest (:func:`~ringguard.backends.base.record_digests`) as a signed 64-bit integer.
``records`` is an ordinary rowid table, rows in insertion order, with the primary key a
separate index of small entries. Layouts clustered by key hash were measured and dropped:

- schema 2's ``WITHOUT ROWID`` table keeps the ~250-byte rows in the key's B-tree: 2-3x
  dearer per written row once a node holds 100k records (upserts of 4,000-record batches:
  ~18 vs ~7 us per row at 100k rows, ~24 vs ~8 at 400k);
- the key hash as the rowid (one B-tree in hash order, no index) made overwrites about
  1.3x cheaper and scans in hash order about 1.8x faster, but every *new* key dirties a
  random table page, which the WAL then writes whole: an order stream of 1M new keys
  (``put_many`` of 20,000 over 10 nodes, replication 2) ran at 17k records/s against 31k.

In this layout a new row is appended to the table and only the small index entry lands
at a random place. Schema 2 and 1 files are copied into it by the migration.

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

Drivers: the file is reached through Python's ``sqlite3`` module (the default) or, with
``driver="apsw"``, through the apsw package, whose lower per-statement cost shows on the
write path (row by row in ``executemany``): about 10 against 12-17 us of CPU per
replicated record in ``benchmarks/test_bench_failover.py``. Both see the same schema.

Writes apply last-writer-wins in one transaction per batch (``BEGIN IMMEDIATE``: no other
connection writes between the read and the write): one ``SELECT`` through the primary key
of the stored rowids, versions and digests of the batch's keys, the decision in NumPy, one
``executemany`` ``UPDATE`` by rowid of the winners already stored (the index does not
change: its columns do not) and one ``INSERT`` of the new ones, and one ``digest_log`` row.
An upsert through the index cost about 1.5x the ``UPDATE``.
"""

from __future__ import annotations

import itertools
import operator
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .base import (
    DIGEST_BITS,
    Backend,
    BackendError,
    Records,
    StaleEpochError,
    check_batch_size,
    check_intervals,
    check_range,
    key_hashes,
)

__all__ = ["SQLiteBackend"]

SCHEMA_VERSION = 3
_FLIP = np.uint64(1 << 63)
_COLS = "hs, key, value, epoch, seq, dg"
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
# Schema 2 objects dropped by the migration.
_V2_OBJECTS = [
    "DROP TRIGGER IF EXISTS records_ins",
    "DROP TRIGGER IF EXISTS records_upd",
    "DROP TRIGGER IF EXISTS records_del",
    "DROP TABLE IF EXISTS digests",
]
# The decision is made from a read in the same write transaction, so these need no
# version guard: an UPDATE by rowid of a winner already stored, an INSERT of a new key.
_UPDATE = "UPDATE records SET value = ?, epoch = ?, seq = ?, dg = ? WHERE rowid = ?"
_INSERT = f"INSERT INTO records ({_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
# A connection of either driver (sqlite3.Connection or apsw.Connection): both offer
# execute() -> cursor (fetchall, fetchone, iteration), executemany() and in_transaction.
DB = Any
# A stored row as the write path reads it: (hs, key, epoch, seq, dg, rowid).
Row = tuple[Any, ...]
# What _plan decides: (win, applied, old_dg, new, upd, rowids, ins).
Plan = tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
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


_COL0, _COL1, _COL2, _COL3 = (operator.itemgetter(i) for i in range(4))


def _records(rows: list[Row]) -> Records:
    """Records from fetched ``(key, value, epoch, seq, ...)`` rows, a column at a time in
    C (BLOBs come back as bytes already)."""
    n = len(rows)
    return Records(
        list(map(_COL0, rows)),
        list(map(_COL1, rows)),
        np.fromiter(map(_COL2, rows), dtype=np.int64, count=n),
        np.fromiter(map(_COL3, rows), dtype=np.int64, count=n),
    )


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
    wal_autocheckpoint
        WAL pages (4 KiB) after which a commit copies the log back into the database
        (SQLite's default is 1,000). The default, 10,000 (~40 MiB of log), checkpoints a
        tenth as often: a node overwriting the same pages copies each back once per
        checkpoint, not once per four 1 MiB batches (median replicated ``put_many`` with
        ``driver="apsw"``: ~85k -> ~105k records/s). 0 turns automatic checkpoints off.
    driver
        ``"sqlite3"`` (default): Python's standard module. ``"apsw"``: the `apsw
        <https://rogerbinns.github.io/apsw/>`_ package (``pip install
        'ringguard[apsw]'``), whose per-statement overhead is lower: replicated writes
        cost about two thirds of the CPU. The file format is the same, so a file
        written through one driver opens through the other. apsw carries its own copy of
        the SQLite library: while a backend has a file open through apsw, do not open
        that file with the ``sqlite3`` module *in the same process* (two copies of SQLite
        in one process do not see each other's POSIX locks; other processes are safe).

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
        driver: str = "sqlite3",
        wal_autocheckpoint: int = 10_000,
    ) -> None:
        if driver not in ("sqlite3", "apsw"):
            raise ValueError(f"driver: expected 'sqlite3' or 'apsw', got {driver!r}")
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous: expected FULL, NORMAL or EXTRA, got {synchronous!r}")
        if isinstance(cache_mib, bool) or not isinstance(cache_mib, int) or cache_mib < 1:
            raise ValueError(f"cache_mib: expected an int >= 1, got {cache_mib!r}")
        if (isinstance(wal_autocheckpoint, bool) or not isinstance(wal_autocheckpoint, int)
                or wal_autocheckpoint < 0):
            raise ValueError(
                f"wal_autocheckpoint: expected an int >= 0, got {wal_autocheckpoint!r}")
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
        self.driver = driver
        self._errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
        try:
            self._db: DB | None
            if driver == "apsw":
                try:
                    import apsw
                except ImportError as exc:
                    raise ImportError(
                        "SQLiteBackend(driver='apsw') needs the apsw package: "
                        "pip install 'ringguard[apsw]'") from exc
                self._errors = (sqlite3.Error, apsw.Error)
                self._db = apsw.Connection(self.path)
                self._db.set_busy_timeout(int(timeout_s * 1000))
            else:
                self._db = sqlite3.connect(
                    self.path, timeout=timeout_s, check_same_thread=False,
                    isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL").fetchall()
            self._db.execute(f"PRAGMA wal_autocheckpoint={wal_autocheckpoint}").fetchall()
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
            self._init_schema(self._db)
        except self._errors as exc:
            raise BackendError(f"{self.path}: cannot open ({exc})") from exc

    def _init_schema(self, db: DB) -> None:
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
                    f"INSERT INTO records ({_COLS}) "
                    f"SELECT {_COLS} FROM records_v2 ORDER BY hs, key"
                )
                db.execute("DROP TABLE records_v2")
            if (old or relayout or version != SCHEMA_VERSION
                    or meta.get("digest_bits") != DIGEST_BITS):
                # Older schema or layout, new file or another resolution: digests from
                # the records.
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
    def _without_rowid(db: DB) -> bool:
        row = db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'records'"
        ).fetchone()
        return row is not None and "WITHOUT ROWID" in " ".join(str(row[0]).upper().split())

    def _migrate_v1(self, db: DB) -> None:
        cur = db.execute("SELECT key, value, epoch, seq FROM records_v1")
        while True:
            rows = list(itertools.islice(cur, 10_000))
            if not rows:
                break
            recs = Records(
                [bytes(r[0]) for r in rows],
                [None if r[1] is None else bytes(r[1]) for r in rows],
                np.array([r[2] for r in rows], dtype=np.int64),
                np.array([r[3] for r in rows], dtype=np.int64),
            )
            db.executemany(_INSERT, self._rows(recs))  # version 1 had one row per key
        db.execute("DROP TABLE records_v1")

    # ---- digests ------------------------------------------------------------------------

    def _rebuild_digests(self, db: DB) -> None:
        """Recompute the digests from the records' ``hs``/``dg`` columns and persist them
        as pages (the log emptied). Inside the caller's transaction."""
        counts = np.zeros(2**DIGEST_BITS, dtype=np.uint64)
        sums = np.zeros(2**DIGEST_BITS, dtype=np.uint64)
        cur = db.execute("SELECT hs, dg FROM records")
        while True:
            rows = list(itertools.islice(cur, 100_000))
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

    def _load_digests(self, db: DB) -> None:
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

    def _refresh(self, db: DB) -> None:
        """Reload the digests if another connection committed since they were loaded.
        Inside a transaction (so the pages and the log are read consistently)."""
        v = int(db.execute("PRAGMA data_version").fetchone()[0])
        if v != self._data_version:
            self._load_digests(db)
            self._data_version = v

    def _checkpoint(self, db: DB) -> None:
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

    def _conn(self) -> DB:
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
            except self._errors as exc:
                raise BackendError(f"{self.path}: set_fence failed ({exc})") from exc

    def fence(self) -> int:
        with self._lock:
            row = self._conn().execute("SELECT value FROM meta WHERE name = 'fence'").fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _fetch(db: DB, table: str, cols: str, hs: list[int]) -> list[Row]:
        """Rows (``cols``) of ``table`` whose ``hs`` is in ``hs``: one ``SELECT ... IN``
        per :data:`_CHUNK` hashes, the last chunk padded so every call uses the same cached
        statement."""
        rows: list[Row] = []
        q = f"SELECT {cols} FROM {table} WHERE hs IN ({','.join('?' * _CHUNK)})"
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
        hs = (records.hashes() ^ _FLIP).view(np.int64)
        dg = records.digests()
        epochs = records.epochs
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
                look = hsl if maybe.all() else [hsl[i] for i in np.flatnonzero(maybe).tolist()]
                stored = self._fetch(db, "records", "hs, key, epoch, seq, dg, rowid", look)
                plan = self._plan(records, hs, stored)
                self._apply(db, records, hs, hsl, plan)
                win, applied, old_dg, new = plan[:4]
                delta = None
                if len(win):
                    delta = self._delta(_buckets(hs[win]), new, dg[win] - old_dg)
                    db.execute(
                        "INSERT INTO digest_log (buckets, counts, sums) VALUES (?, ?, ?)",
                        (delta[0].astype("<u4").tobytes(), delta[1].astype("<i8").tobytes(),
                         delta[2].astype("<u8").tobytes()),
                    )
                db.execute("COMMIT")
            except self._errors as exc:
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
    def _apply(
        db: DB, records: Records, hs: np.ndarray, hsl: list[int], plan: Plan
    ) -> None:
        """Run the statements of a :meth:`_plan`: UPDATE by rowid the winners already
        stored, INSERT the new keys (in hash order: the index entries land in sequence)."""
        n = len(records)
        keys, values = records.keys, records.values
        ep, sq = records.epochs.tolist(), records.seqs.tolist()
        dgl = records.digests().view(np.int64).tolist()
        upd, rowids, ins = plan[4:]

        def cols(idx: np.ndarray) -> tuple[list[Any], ...]:
            if len(idx) == n and bool((idx == np.arange(n)).all()):  # every record, in order
                return hsl, keys, values, ep, sq, dgl
            pick = idx.tolist()
            return tuple([c[i] for i in pick] for c in (hsl, keys, values, ep, sq, dgl))

        if len(upd):
            _, _, v, e, s, d = cols(upd)
            db.executemany(_UPDATE, zip(v, e, s, d, rowids.tolist(), strict=True))
        if len(ins):
            order = np.argsort(hs[ins], kind="stable")
            db.executemany(_INSERT, zip(*cols(ins[order]), strict=True))

    @staticmethod
    def _plan(records: Records, hs: np.ndarray, stored: list[Row]) -> Plan:
        """Last-writer-wins of ``records`` against the ``stored`` rows of their hashes
        (``(hs, key, epoch, seq, dg, rowid)``; rows of other keys with the same hash may be
        among them).

        Returns ``(win, applied, old_dg, new, upd, rowids, ins)``: the positions of the
        records that end up stored (one per key, ascending), how many records a
        sequential application would have applied (what :meth:`write` returns), the
        digest each winner replaces (0 where none), whether its key was absent, the
        winners already stored with their rowids, and the new ones (see :meth:`_apply`).
        """
        n = len(records)
        keys = records.keys
        e, s = records.epochs, records.seqs
        order = np.argsort(hs, kind="stable")
        sh = hs[order]
        if not (n > 1 and bool((sh[1:] == sh[:-1]).any())):
            # Every hash once in the batch: decide in NumPy, provided every stored row is
            # the batch's key of its hash (else a collision: the general way below).
            have = np.zeros(n, dtype=bool)
            oe = np.full(n, -1, dtype=np.int64)
            os_ = np.full(n, -1, dtype=np.int64)
            od = np.zeros(n, dtype=np.int64)
            rid = np.zeros(n, dtype=np.int64)
            ok = True
            if stored:
                rh, rk, re, rs, rd, rr = zip(*stored, strict=True)
                ix = order[np.searchsorted(sh, np.array(rh, dtype=np.int64))]
                ok = all(map(operator.eq, map(keys.__getitem__, ix.tolist()), rk))
                if ok:
                    have[ix] = True
                    oe[ix], os_[ix], od[ix], rid[ix] = re, rs, rd, rr
            if ok:
                win = np.flatnonzero(~have | (e > oe) | ((e == oe) & (s > os_)))
                fresh = ~have[win]
                upd = win[~fresh]
                return (win, len(win), od[win].view(np.uint64), fresh, upd, rid[upd],
                        win[fresh])
        # A hash more than once or a collision: apply in order, as a sequential writer
        # would.
        old = {r[1]: (r[2], r[3], r[4], r[5]) for r in stored}
        cur = {k: (v[0], v[1]) for k, v in old.items()}
        last: dict[bytes, int] = {}
        applied = 0
        for i, (k, ei, si) in enumerate(zip(keys, e.tolist(), s.tolist(), strict=True)):
            c = cur.get(k)
            if c is None or (ei, si) > c:
                cur[k] = (ei, si)
                last[k] = i
                applied += 1
        win = np.array(sorted(last.values()), dtype=np.intp)
        wk = [keys[i] for i in win.tolist()]
        old_dg = np.array([old[k][2] if k in old else 0 for k in wk], dtype=np.int64)
        fresh = np.array([k not in old for k in wk], dtype=bool)
        rowids = np.array([old[k][3] for k in wk if k in old], dtype=np.int64)
        return (win, applied, old_dg.view(np.uint64), fresh, win[~fresh], rowids, win[fresh])

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
        cols = "key, value, epoch, seq"
        with self._lock:
            db = self._conn()
            try:
                # Rows of other keys with a searched hash may come back: they are real
                # records of their own keys, and only the searched keys are looked up.
                for k, v, e, s in self._fetch(db, "records", cols, hs):
                    found[bytes(k)] = (None if v is None else bytes(v), e, s)
            except self._errors as exc:
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
        return (_records(rows) for rows, _ in self._scan([(lo, hi)], batch_size))

    def scan_ranges(
        self, intervals: Sequence[tuple[int, int]], batch_size: int = 10_000
    ) -> Iterator[tuple[Records, np.ndarray]]:
        """:meth:`scan_range` of many intervals in one call (an incremental backup reads
        thousands of small ones): the records of every ``lo <= h < hi``, ascending, in
        batches of at most ``batch_size``, each with the index of the interval of every
        record (int64). ``intervals`` must be ascending and disjoint (checked when the
        call is made)."""
        ivs = check_intervals(intervals)
        batch_size = check_batch_size(batch_size)
        with self._lock:
            self._conn()
        return (
            (_records(rows), np.array(which, dtype=np.int64))
            for rows, which in self._scan(ivs, batch_size)
        )

    def _scan(
        self, ivs: list[tuple[int, int]], batch_size: int
    ) -> Iterator[tuple[list[Row], list[int]]]:
        """Rows ``(key, value, epoch, seq)`` of the intervals ``ivs`` (ascending,
        disjoint), in (hs, key) order, in lists of at most ``batch_size``, each with the
        index in ``ivs`` of every row. The lock is never held across a ``yield``."""
        cols = "key, value, epoch, seq"
        q_first = (f"SELECT {cols} FROM records WHERE hs >= ? AND hs <= ? "
                   "ORDER BY hs, key LIMIT ?")
        q_next = (f"SELECT {cols} FROM records WHERE (hs, key) > (?, ?) AND hs <= ? "
                  "ORDER BY hs, key LIMIT ?")
        out: list[Row] = []
        which: list[int] = []
        j = 0  # the interval being read
        last: tuple[int, bytes] | None = None  # where its last page ended, None: at lo
        while j < len(ivs):
            # One lock hold reads intervals until a batch is full (an incremental backup's
            # thousands of small intervals cost a query each, not a lock and a file check
            # each).
            with self._lock:
                db = self._conn()
                try:
                    while j < len(ivs) and len(out) < batch_size:
                        lo, hi = ivs[j]
                        if lo >= hi:
                            j, last = j + 1, None
                            continue
                        top = _signed(hi - 1)  # inclusive upper bound on hs
                        # Keyset pagination on the primary key (hs, key).
                        if last is None:
                            rows = db.execute(q_first, (_signed(lo), top, batch_size)).fetchall()
                        else:
                            rows = db.execute(
                                q_next, (last[0], last[1], top, batch_size)).fetchall()
                        out += rows
                        which += [j] * len(rows)
                        if len(rows) < batch_size:
                            j, last = j + 1, None
                        else:
                            # The last row's hash, recomputed (one key) rather than
                            # fetched with every row.
                            lk = rows[-1][0]
                            last = (int(_signed_hashes([lk])[0]), lk)
                except self._errors as exc:
                    raise BackendError(f"{self.path}: scan failed ({exc})") from exc
            while len(out) >= batch_size:
                yield out[:batch_size], which[:batch_size]
                del out[:batch_size], which[:batch_size]
        if out:
            yield out, which

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
            except self._errors as exc:
                raise BackendError(f"{self.path}: digests failed ({exc})") from exc
            return self._counts.copy(), self._sums.copy()

    def ping(self) -> None:
        with self._lock:
            try:
                self._conn().execute("SELECT 1").fetchone()
            except self._errors as exc:
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
