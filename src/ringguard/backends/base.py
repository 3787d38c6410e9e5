"""The storage interface every node backend implements, and its record batches.

A record is ``key -> value`` with a version ``(epoch, seq)``; a ``None`` value is a
tombstone (a delete). Backends apply batches last-writer-wins: a record replaces the stored
one only if its version is greater, so replaying the same writes (hints, anti-entropy) is
idempotent and replicas converge whatever order writes arrive in.

Key hash and ranges
-------------------
The *key hash* of a record is ``h = XXH64(key bytes, seed 0)``, the placement layer's key
hash (:func:`ringguard.placement.hashing.key_hashes`, computed in one batch call). The
64-bit hash space is cut into ``2**bits`` equal ranges: range ``r`` holds the records whose
``h >> (64 - bits)`` equals ``r`` (the top ``bits`` bits), i.e. ``r * 2**(64 - bits) <= h <
(r + 1) * 2**(64 - bits)``. :meth:`Backend.scan_range` reads one half-open interval
``lo <= h < hi`` of that space.

Record digest (canonical encoding)
----------------------------------
The digest of a stored record is ``XXH64(seed 0)`` of these bytes, integers little-endian::

    epoch      8 bytes, unsigned (versions are >= 0)
    seq        8 bytes, unsigned
    tombstone  1 byte: 1 for a tombstone (value None), 0 otherwise
    key_len    4 bytes, unsigned: length of the key
    key        key_len bytes
    value      the value bytes (nothing for a tombstone); its length is what remains

(:func:`record_digests` computes it for a batch in one call into the compiled core.) The
digest of a range is the pair ``(count, sum of the record digests mod 2**64)``: it does not
depend on the order records were written, so two replicas holding the same records — same
keys, versions and values — have equal range digests, and a range of ``bits`` is the sum of
its two halves at ``bits + 1``. Backends maintain the digests incrementally on every applied
write (at the finest resolution, :data:`DIGEST_BITS` bits), so :meth:`Backend.range_digests`
costs O(ranges), never a scan; a write that loses last-writer-wins changes nothing.
"""

from __future__ import annotations

import abc
import operator
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._backend import core
from ..placement.hashing import key_hashes as _key_hashes

__all__ = [
    "DIGEST_BITS",
    "HASH_SPACE",
    "Backend",
    "BackendError",
    "Records",
    "StaleEpochError",
    "check_bits",
    "check_range",
    "digests_of",
    "fold_digests",
    "record_digests",
]

MAX_KEY_BYTES = 64 * 1024
MAX_VALUE_BYTES = 512 * 1024 * 1024
#: Resolution at which backends keep range digests: ``2**DIGEST_BITS`` ranges.
DIGEST_BITS = 18
#: Size of the key-hash space: ranges are ``lo <= h < hi`` with ``0 <= lo < hi <= HASH_SPACE``.
HASH_SPACE = 2**64


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
    # Computed on first use and carried by take(): a batch split per node is hashed once.
    _hashes: np.ndarray | None = field(default=None, repr=False, compare=False)
    _digests: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.keys)
        if len(self.values) != n or len(self.epochs) != n or len(self.seqs) != n:
            raise ValueError("records: keys, values, epochs and seqs must have equal lengths")

    def __len__(self) -> int:
        return len(self.keys)

    def hashes(self) -> np.ndarray:
        """Key hash of each record (:func:`key_hashes`), computed once per batch."""
        if self._hashes is None:
            object.__setattr__(self, "_hashes", key_hashes(self.keys))
        assert self._hashes is not None
        return self._hashes

    def digests(self) -> np.ndarray:
        """Digest of each record (:func:`record_digests`), computed once per batch."""
        if self._digests is None:
            object.__setattr__(self, "_digests", record_digests(self))
        assert self._digests is not None
        return self._digests

    @classmethod
    def build(
        cls, keys: Sequence[bytes], values: Sequence[bytes | None], epochs: Any, seqs: Any
    ) -> Records:
        """Validate and build a batch (keys/values must be bytes; versions int64 >= 0)."""
        ks = list(keys)
        vs = list(values)
        # Fast path: C-level passes (types, then lengths); the slow loops run only to name
        # the culprit.
        if not (
            set(map(type, ks)) <= {bytes} and max(map(len, ks), default=0) <= MAX_KEY_BYTES
        ):
            for i, k in enumerate(ks):
                if not isinstance(k, bytes):
                    raise TypeError(f"keys[{i}]: expected bytes, got {type(k).__name__}")
                if len(k) > MAX_KEY_BYTES:
                    raise ValueError(f"keys[{i}]: longer than {MAX_KEY_BYTES} bytes")
        if not (
            set(map(type, vs)) <= {bytes, type(None)}
            and max(map(len, filter(None, vs)), default=0) <= MAX_VALUE_BYTES
        ):
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
        if len(il) > 1:  # itemgetter picks in C (with one index it returns the item itself)
            pick = operator.itemgetter(*il)
            keys, values = list(pick(self.keys)), list(pick(self.values))
        else:
            keys, values = [self.keys[i] for i in il], [self.values[i] for i in il]
        return Records(
            keys,
            values,
            self.epochs[ix],
            self.seqs[ix],
            None if self._hashes is None else self._hashes[ix],
            None if self._digests is None else self._digests[ix],
        )


def key_hashes(keys: Sequence[bytes]) -> np.ndarray:
    """The key hash (XXH64, seed 0) of each key, ``uint64``, in one batch call."""
    return _key_hashes(keys)


def record_digests(records: Records) -> np.ndarray:
    """The digest of each record (``uint64``): XXH64 of its canonical encoding (module
    docstring), computed in one batch call into the compiled core.

    Examples
    --------
    >>> r = Records.build([b"k", b"k"], [b"v", None], 1, [2, 3])
    >>> d = record_digests(r)
    >>> d.dtype, bool(d[0] != d[1])
    (dtype('uint64'), True)
    """
    n = len(records)
    out = np.empty(n, dtype=np.uint64)
    if n:
        keys, values = records.keys, records.values
        core.record_digests(
            keys if type(keys) is list else list(keys),
            values if type(values) is list else list(values),
            np.ascontiguousarray(records.epochs, dtype=np.int64),
            np.ascontiguousarray(records.seqs, dtype=np.int64),
            out,
        )
    return out


def check_bits(bits: int) -> int:
    """Validate a range resolution: an int in ``[0, DIGEST_BITS]``."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"bits: expected an int, got {type(bits).__name__}")
    if not 0 <= int(bits) <= DIGEST_BITS:
        raise ValueError(f"bits: must be between 0 and {DIGEST_BITS}, got {bits}")
    return int(bits)


def check_range(lo: int, hi: int) -> tuple[int, int]:
    """Validate a key-hash interval ``lo <= h < hi``: ints, ``0 <= lo <= hi <= 2**64``
    (``lo == hi`` is the empty range)."""
    for name, x in (("lo", lo), ("hi", hi)):
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
            raise TypeError(f"{name}: expected an int, got {type(x).__name__}")
    lo, hi = int(lo), int(hi)
    if not 0 <= lo <= HASH_SPACE:
        raise ValueError(f"lo: must be in [0, 2**64], got {lo}")
    if not 0 <= hi <= HASH_SPACE:
        raise ValueError(f"hi: must be in [0, 2**64], got {hi}")
    if lo > hi:
        raise ValueError(f"lo: {lo} is greater than hi {hi}")
    return lo, hi


def check_intervals(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Validate key-hash intervals for a many-interval scan: each as :func:`check_range`,
    ascending and disjoint."""
    ivs = list(intervals)
    # The common case, thousands of plain-int pairs from a backup, in one pass; anything
    # else (numpy ints, a bad pair) goes through check_range for its conversion or error.
    prev = 0
    for pair in ivs:
        if type(pair) is not tuple or len(pair) != 2:
            break
        lo, hi = pair
        if type(lo) is not int or type(hi) is not int or not prev <= lo <= hi <= HASH_SPACE:
            break
        prev = hi
    else:
        return ivs
    ivs = [check_range(lo, hi) for lo, hi in ivs]
    for i in range(1, len(ivs)):
        if ivs[i][0] < ivs[i - 1][1]:
            raise ValueError(
                f"intervals[{i}]: starts at {ivs[i][0]}, before the end of intervals"
                f"[{i - 1}] ({ivs[i - 1][1]}); intervals must be ascending and disjoint")
    return ivs


def check_batch_size(batch_size: int) -> int:
    """Validate a scan batch size (a positive int)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size: expected an int, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    return int(batch_size)


def fold_digests(counts: np.ndarray, sums: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Fold finest-resolution digests (``2**DIGEST_BITS`` ranges) into ``2**bits`` ranges
    (sums wrap mod 2**64). Returns fresh ``uint64`` arrays."""
    bits = check_bits(bits)
    c = np.asarray(counts, dtype=np.uint64).reshape(2**bits, -1).sum(axis=1, dtype=np.uint64)
    s = np.asarray(sums, dtype=np.uint64).reshape(2**bits, -1).sum(axis=1, dtype=np.uint64)
    return c, s


def digests_of(batches: Iterable[Records], bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Range digests of the records in ``batches``, from scratch (what a backend's
    incrementally maintained :meth:`Backend.range_digests` must equal)."""
    bits = check_bits(bits)
    counts = np.zeros(2**bits, dtype=np.uint64)
    sums = np.zeros(2**bits, dtype=np.uint64)
    for recs in batches:
        if not len(recs):
            continue
        r = (key_hashes(recs.keys) >> np.uint64(64 - bits)) if bits else np.zeros(
            len(recs), dtype=np.uint64
        )
        r = r.astype(np.intp)
        np.add.at(counts, r, np.uint64(1))
        np.add.at(sums, r, record_digests(recs))
    return counts, sums


def bucket_of(hashes: np.ndarray) -> np.ndarray:
    """Finest-resolution range (top :data:`DIGEST_BITS` bits) of each key hash, as intp."""
    return (np.asarray(hashes, dtype=np.uint64) >> np.uint64(64 - DIGEST_BITS)).astype(np.intp)


class Backend(abc.ABC):
    """One node's storage. Implementations must be safe to call from several threads."""

    name: str = "backend"
    #: Whether :class:`~ringguard.failover.ReplicatedStore` should run writes to this
    #: backend on its thread pool, concurrently with the other nodes'. True for backends
    #: that wait on a network or a disk with the GIL released; False for those whose write
    #: is CPU work in this process holding the GIL for most of it (threads then only add
    #: GIL hand-offs): the store runs those in the calling thread, while the threaded ones
    #: proceed.
    parallel_writes: bool = True

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
    def scan_range(self, lo: int, hi: int, batch_size: int = 10_000) -> Iterator[Records]:
        """The stored records (tombstones included) whose key hash ``h`` (module docstring)
        satisfies ``lo <= h < hi``, in batches of at most ``batch_size``, in ascending key
        hash order. ``hi`` may be ``2**64``; ``lo == hi`` yields nothing.

        Arguments are checked when the call is made (``TypeError``/``ValueError``), not at
        the first ``next``. Not a snapshot: records written during the scan may or may
        not be seen.
        """

    def scan(self, batch_size: int = 10_000) -> Iterator[Records]:
        """Every stored record (tombstones included), in batches, in key-hash order."""
        return self.scan_range(0, HASH_SPACE, batch_size)

    @abc.abstractmethod
    def _digests(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-range ``(counts, sums)`` at :data:`DIGEST_BITS` bits, ``uint64``, as
        maintained incrementally (no scan)."""

    def range_digests(self, bits: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-range record count and digest over ``2**bits`` equal key-hash ranges.

        Range ``r`` is ``h >> (64 - bits) == r``. The digest is the sum mod ``2**64`` of the
        record digests (module docstring), tombstones included; both arrays are ``uint64``
        of length ``2**bits``. Costs O(ranges): backends maintain the digests on write.

        Parameters
        ----------
        bits
            Resolution, ``0 <= bits <= DIGEST_BITS`` (18).

        Examples
        --------
        >>> from ringguard.backends import MemoryBackend
        >>> b = MemoryBackend()
        >>> _ = b.write(Records.build([b"a", b"b"], [b"1", b"2"], 0, 1))
        >>> counts, digests = b.range_digests(1)
        >>> int(counts.sum())
        2
        """
        bits = check_bits(bits)
        counts, sums = self._digests()
        return fold_digests(counts, sums, bits)

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
