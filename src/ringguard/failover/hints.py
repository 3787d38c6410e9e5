"""A durable log of writes that a down replica missed (hinted handoff).

Hints live in SQLite (a file, fsynced on every append with ``synchronous=FULL``); every row
carries a CRC-32 of its content, checked on replay, so a damaged log fails loudly instead
of replaying wrong data. Replay is idempotent: records are versioned, and a hint is deleted
only after its node has stored it.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import threading
import zlib

import numpy as np

from ..backends.base import Backend, Records
from ..errors import RingGuardError

__all__ = ["HintCorrupted", "HintLog"]


class HintCorrupted(RingGuardError):
    """A hint row failed its CRC check: the log is damaged (nothing was replayed from it)."""


def _crc(node: str, key: bytes, value: bytes | None, epoch: int, seq: int) -> int:
    head = struct.pack("<qqB", epoch, seq, value is None)
    c = zlib.crc32(node.encode("utf-8") + b"\0")
    c = zlib.crc32(struct.pack("<I", len(key)) + key, c)
    c = zlib.crc32(head + (value or b""), c)
    return c


class HintLog:
    """Hints per node, in arrival order.

    Parameters
    ----------
    path
        SQLite file for the log; ``None`` keeps hints in memory (not durable: tests only).

    Examples
    --------
    >>> from ringguard.backends import MemoryBackend, Records
    >>> log = HintLog()
    >>> log.append("n1", Records.build([b"k"], [b"v"], 3, 7))
    >>> log.pending("n1")
    1
    >>> log.replay("n1", MemoryBackend())
    1
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        target = ":memory:" if path is None else os.fspath(path)
        if path is not None:
            os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        self.path = target
        self._lock = threading.Lock()
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS hints (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "node TEXT NOT NULL, key BLOB NOT NULL, value BLOB, epoch INTEGER NOT NULL, "
            "seq INTEGER NOT NULL, crc INTEGER NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS hints_node ON hints (node, id)")

    def append(self, node: str, records: Records) -> None:
        """Durably record that ``node`` missed ``records`` (one transaction)."""
        rows = [
            (node, k, v, e, s, _crc(node, k, v, e, s))
            for k, v, e, s in zip(
                records.keys,
                records.values,
                records.epochs.tolist(),
                records.seqs.tolist(),
                strict=True,
            )
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO hints (node, key, value, epoch, seq, crc) VALUES (?,?,?,?,?,?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def pending(self, node: str | None = None) -> int:
        """Hints waiting for ``node`` (or for every node)."""
        with self._lock:
            if node is None:
                return int(self._db.execute("SELECT COUNT(*) FROM hints").fetchone()[0])
            return int(
                self._db.execute("SELECT COUNT(*) FROM hints WHERE node = ?", (node,)).fetchone()[0]
            )

    def replay(self, node: str, backend: Backend, batch_size: int = 10_000) -> int:
        """Write every hint of ``node`` to ``backend`` in order; return how many were replayed.

        Each batch is deleted only after the backend stored it; a crash in between replays
        it again, which last-writer-wins makes harmless. Raises :class:`HintCorrupted` on a
        CRC mismatch (before writing anything of that batch).
        """
        done = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, key, value, epoch, seq, crc FROM hints WHERE node = ? "
                    "ORDER BY id LIMIT ?",
                    (node, batch_size),
                ).fetchall()
            if not rows:
                return done
            for rid, k, v, e, s, crc in rows:
                val = None if v is None else bytes(v)
                if _crc(node, bytes(k), val, e, s) != crc:
                    raise HintCorrupted(
                        f"hint log {self.path}: row {rid} for {node!r} fails its CRC check"
                    )
            recs = Records(
                [bytes(r[1]) for r in rows],
                [None if r[2] is None else bytes(r[2]) for r in rows],
                np.array([r[3] for r in rows], dtype=np.int64),
                np.array([r[4] for r in rows], dtype=np.int64),
            )
            backend.write(recs)
            with self._lock:
                self._db.execute(
                    "DELETE FROM hints WHERE node = ? AND id <= ?", (node, rows[-1][0])
                )
            done += len(rows)

    def close(self) -> None:
        """Close the log file."""
        with self._lock:
            self._db.close()
