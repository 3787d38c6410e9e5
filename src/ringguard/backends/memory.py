"""An in-process backend for tests and demos."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import numpy as np

from .base import (
    DIGEST_BITS,
    Backend,
    BackendError,
    Records,
    StaleEpochError,
    bucket_of,
    check_batch_size,
    check_range,
    key_hashes,
    record_digests,
)

__all__ = ["MemoryBackend"]


class MemoryBackend(Backend):
    """A dict behind a lock, with the same last-writer-wins rule as the real backends.

    Range digests are kept in two arrays at the finest resolution (``2**16`` ranges),
    updated on every applied write.

    ``fail()`` makes every call raise :class:`BackendError` until ``heal()``: tests use it to
    stand for a dead machine.

    Examples
    --------
    >>> from ringguard.backends import MemoryBackend, Records
    >>> b = MemoryBackend()
    >>> b.write(Records.build([b"k"], [b"v"], 1, 1))
    1
    >>> b.read([b"k"]).values
    [b'v']
    """

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        # key -> (value, epoch, seq, key hash, record digest)
        self._data: dict[bytes, tuple[bytes | None, int, int, int, int]] = {}
        self._counts = np.zeros(2**DIGEST_BITS, dtype=np.uint64)
        self._sums = np.zeros(2**DIGEST_BITS, dtype=np.uint64)
        self._lock = threading.Lock()
        self._failed = False
        self._fence = 0

    def fail(self) -> None:
        """Simulate a dead node: every call raises until :meth:`heal`."""
        self._failed = True

    def heal(self) -> None:
        """Undo :meth:`fail` (the data is still there)."""
        self._failed = False

    def wipe(self) -> None:
        """Lose every record (a disk loss)."""
        with self._lock:
            self._data.clear()
            self._counts[:] = 0
            self._sums[:] = 0

    def _check(self) -> None:
        if self._failed:
            raise BackendError(f"{self.name}: node is down")

    def set_fence(self, epoch: int) -> None:
        self._check()
        with self._lock:
            self._fence = max(self._fence, int(epoch))

    def fence(self) -> int:
        self._check()
        return self._fence

    def write(self, records: Records, *, fenced: bool = False) -> int:
        self._check()
        if not len(records):
            return 0
        hashes = key_hashes(records.keys).tolist()
        digests = record_digests(records).tolist()
        added_h: list[int] = []  # key hash of each applied record
        added_d: list[int] = []
        removed_h: list[int] = []  # key hash of each replaced record
        removed_d: list[int] = []
        data = self._data
        with self._lock:
            if fenced and int(records.epochs.min()) < self._fence:
                raise StaleEpochError(
                    f"{self.name}: write with epoch {int(records.epochs.min())} below the "
                    f"fence {self._fence}"
                )
            for k, v, e, s, h, d in zip(
                records.keys,
                records.values,
                records.epochs.tolist(),
                records.seqs.tolist(),
                hashes,
                digests,
                strict=True,
            ):
                old = data.get(k)
                if old is None or (e, s) > (old[1], old[2]):
                    data[k] = (v, e, s, h, d)
                    added_h.append(h)
                    added_d.append(d)
                    if old is not None:
                        removed_h.append(old[3])
                        removed_d.append(old[4])
            if added_h:
                b = bucket_of(np.array(added_h, dtype=np.uint64))
                np.add.at(self._counts, b, np.uint64(1))
                np.add.at(self._sums, b, np.array(added_d, dtype=np.uint64))
            if removed_h:
                b = bucket_of(np.array(removed_h, dtype=np.uint64))
                np.subtract.at(self._counts, b, np.uint64(1))
                np.subtract.at(self._sums, b, np.array(removed_d, dtype=np.uint64))
        return len(added_h)

    def read(self, keys: Sequence[bytes]) -> Records:
        self._check()
        with self._lock:
            got = [self._data.get(k) for k in keys]
        return Records(
            list(keys),
            [g[0] if g else None for g in got],
            np.array([g[1] if g else -1 for g in got], dtype=np.int64),
            np.array([g[2] if g else -1 for g in got], dtype=np.int64),
        )

    def scan_range(self, lo: int, hi: int, batch_size: int = 10_000) -> Iterator[Records]:
        self._check()
        lo, hi = check_range(lo, hi)
        batch_size = check_batch_size(batch_size)
        with self._lock:
            found = sorted((r[3], k) for k, r in self._data.items() if lo <= r[3] < hi)
        return self._batches([k for _, k in found], batch_size)

    def _batches(self, keys: list[bytes], batch_size: int) -> Iterator[Records]:
        for i in range(0, len(keys), batch_size):
            yield self.read(keys[i : i + batch_size])

    def _digests(self) -> tuple[np.ndarray, np.ndarray]:
        self._check()
        with self._lock:
            return self._counts.copy(), self._sums.copy()

    def ping(self) -> None:
        self._check()

    def count(self) -> int:
        self._check()
        return len(self._data)
