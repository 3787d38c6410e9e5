"""The storage interface every node backend implements, and its record batches.

A record is ``key -> value`` with a version ``(epoch, seq)``; a ``None`` value is a
tombstone (a delete). Backends apply batches last-writer-wins: a record replaces the stored
one only if its version is greater, so replaying the same writes (hints, anti-entropy) is
idempotent and replicas converge whatever order writes arrive in.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Backend", "BackendError", "Records", "StaleEpochError"]

MAX_KEY_BYTES = 64 * 1024
MAX_VALUE_BYTES = 512 * 1024 * 1024


class BackendError(Exception):
    """A backend could not complete an operation (I/O error, timeout, dead server)."""


class StaleEpochError(BackendError):
    """A fenced write carried an epoch older than the node's fence: it was routed under a
    view from before the node's last return, and nothing of the batch was written."""


@dataclass(frozen=True)
class Records:
    """A columnar batch of versioned records.

    Attributes
    ----------
    keys : list of bytes
    values : list of bytes or None
        ``None`` marks a tombstone (deleted) or, in :meth:`Backend.read` results, a key that
        is absent.
    epochs, seqs : numpy.ndarray
        int64 version of each record; ``-1`` for absent keys in read results.
    """

    keys: list[bytes]
    values: list[bytes | None]
    epochs: np.ndarray
    seqs: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.keys)
        if len(self.values) != n or len(self.epochs) != n or len(self.seqs) != n:
            raise ValueError("records: keys, values, epochs and seqs must have equal lengths")

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def build(
        cls, keys: Sequence[bytes], values: Sequence[bytes | None], epochs: Any, seqs: Any
    ) -> Records:
        """Validate and build a batch (keys/values must be bytes; versions int64 >= 0)."""
        ks = list(keys)
        vs = list(values)
        # Fast path: one pass of C-level checks; the slow loop runs only to name the culprit.
        if not (
            all(type(k) is bytes for k in ks) and max(map(len, ks), default=0) <= MAX_KEY_BYTES
        ):
            for i, k in enumerate(ks):
                if not isinstance(k, bytes):
                    raise TypeError(f"keys[{i}]: expected bytes, got {type(k).__name__}")
                if len(k) > MAX_KEY_BYTES:
                    raise ValueError(f"keys[{i}]: longer than {MAX_KEY_BYTES} bytes")
        if not all(type(v) is bytes and len(v) <= MAX_VALUE_BYTES or v is None for v in vs):
            for i, v in enumerate(vs):
                if v is not None and not isinstance(v, bytes):
                    raise TypeError(f"values[{i}]: expected bytes or None, got {type(v).__name__}")
                if v is not None and len(v) > MAX_VALUE_BYTES:
                    raise ValueError(f"values[{i}]: larger than {MAX_VALUE_BYTES} bytes")
        e = np.ascontiguousarray(np.broadcast_to(np.asarray(epochs, dtype=np.int64), (len(ks),)))
        s = np.ascontiguousarray(np.broadcast_to(np.asarray(seqs, dtype=np.int64), (len(ks),)))
        if len(ks) and (e.min() < 0 or s.min() < 0):
            raise ValueError("epochs/seqs: versions must be >= 0")
        return cls(ks, vs, e, s)

    def take(self, idx: Sequence[int] | np.ndarray) -> Records:
        """The records at positions ``idx``."""
        ix = np.asarray(idx, dtype=np.int64)
        il = ix.tolist()
        return Records(
            [self.keys[i] for i in il], [self.values[i] for i in il], self.epochs[ix], self.seqs[ix]
        )


class Backend(abc.ABC):
    """One node's storage. Implementations must be safe to call from several threads."""

    name: str = "backend"

    @abc.abstractmethod
    def write(self, records: Records, *, fenced: bool = False) -> int:
        """Apply ``records`` last-writer-wins; return how many replaced the stored version.

        With ``fenced=True`` (client writes) the whole batch is refused with
        :class:`StaleEpochError` if any record's epoch is below the fence (see
        :meth:`set_fence`); replays of hints and copies between replicas are not fenced.
        """

    @abc.abstractmethod
    def set_fence(self, epoch: int) -> None:
        """Refuse fenced writes with an epoch below ``epoch`` from now on (never lowers)."""

    @abc.abstractmethod
    def fence(self) -> int:
        """The current fence epoch (0 when none was set)."""

    @abc.abstractmethod
    def read(self, keys: Sequence[bytes]) -> Records:
        """Stored records for ``keys`` (tombstones included; absent keys have version -1)."""

    @abc.abstractmethod
    def scan(self, batch_size: int = 10_000) -> Iterator[Records]:
        """Every stored record (tombstones included), in batches, in key order."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise :class:`BackendError` if the backend cannot serve requests."""

    def count(self) -> int:
        """Number of stored records, tombstones included."""
        return sum(len(b) for b in self.scan())

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (idempotent)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def newer(e1: int, s1: int, e2: int, s2: int) -> bool:
    """True if version ``(e1, s1)`` is greater than ``(e2, s2)``."""
    return (e1, s1) > (e2, s2)
