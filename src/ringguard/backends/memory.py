"""An in-process backend for tests and demos."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import numpy as np

from .base import Backend, BackendError, Records, StaleEpochError

__all__ = ["MemoryBackend"]


class MemoryBackend(Backend):
    """A dict behind a lock, with the same last-writer-wins rule as the real backends.

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
        self._data: dict[bytes, tuple[bytes | None, int, int]] = {}
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
        applied = 0
        with self._lock:
            if fenced and len(records) and int(records.epochs.min()) < self._fence:
                raise StaleEpochError(
                    f"{self.name}: write with epoch {int(records.epochs.min())} below the "
                    f"fence {self._fence}"
                )
            for k, v, e, s in zip(
                records.keys,
                records.values,
                records.epochs.tolist(),
                records.seqs.tolist(),
                strict=True,
            ):
                old = self._data.get(k)
                if old is None or (e, s) > (old[1], old[2]):
                    self._data[k] = (v, e, s)
                    applied += 1
        return applied

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

    def scan(self, batch_size: int = 10_000) -> Iterator[Records]:
        self._check()
        with self._lock:
            keys = sorted(self._data)
        for i in range(0, len(keys), batch_size):
            yield self.read(keys[i : i + batch_size])

    def ping(self) -> None:
        self._check()

    def count(self) -> int:
        self._check()
        return len(self._data)
