"""Record digests and key hashes straight from a chunk payload's columns.

A chunk payload (:mod:`ringguard.backup.codec`) already holds its records column by column:
key lengths, value lengths, versions as arrays, keys and values back to back. The canonical
record digest (:mod:`ringguard.backends.base`: XXH64 of ``epoch u64 | seq u64 | tombstone u8
| key_len u32 | key | value``) is computed from those buffers by ONE batch call into the
compiled core (``record_digests_columns``, which checks every bound first), and the key
hashes by another (:func:`~ringguard.placement.hashing.key_hashes_buffer`), without a
Python object per record. The digests equal :func:`ringguard.backends.base.record_digests`
of the decoded records (tests check both).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._backend import core
from ..backends.base import MAX_KEY_BYTES, MAX_VALUE_BYTES, Records
from ..placement.hashing import key_hashes_buffer
from .codec import payload_table

__all__ = ["Columns", "decode_columns"]



@dataclass(frozen=True)
class Columns:
    """The decoded, validated columns of a chunk payload (views into it, no copies of the
    record data)."""

    ranges: np.ndarray  # int64: block range ids, ascending
    counts: np.ndarray  # int64: records per block
    data: np.ndarray  # uint8 view of the payload
    klens: np.ndarray  # int64
    vlens: np.ndarray  # int64, -1 for a tombstone
    epochs: np.ndarray  # int64
    seqs: np.ndarray  # int64
    koff: np.ndarray  # int64, n + 1 key bounds in ``data``
    voff: np.ndarray  # int64, n + 1 value bounds in ``data`` (tombstones are empty)
    payload: bytes

    def __len__(self) -> int:
        return len(self.klens)

    @property
    def starts(self) -> np.ndarray:
        """Offset of each block's first record (int64)."""
        return np.concatenate(([0], np.cumsum(self.counts)[:-1])).astype(np.int64)

    def key_hashes(self) -> np.ndarray:
        """Key hash (XXH64, seed 0) of every record, in one batch call."""
        return key_hashes_buffer(self.data, self.koff)

    def record_digests(self) -> np.ndarray:
        """The canonical digest of every record (uint64), as
        :func:`ringguard.backends.base.record_digests` defines it: one call into the
        compiled core over the key and value columns (any mix of lengths)."""
        n = len(self)
        out = np.empty(n, dtype=np.uint64)
        if n:
            core.record_digests_columns(
                self.data,
                np.ascontiguousarray(self.koff, dtype=np.int64),
                np.ascontiguousarray(self.voff, dtype=np.int64),
                (self.vlens < 0).view(np.uint8),
                np.ascontiguousarray(self.epochs, dtype=np.int64),
                np.ascontiguousarray(self.seqs, dtype=np.int64),
                out,
            )
        return out

    def records(self, idx: np.ndarray | None = None, hashes: np.ndarray | None = None,
                digests: np.ndarray | None = None) -> Records:
        """The records (all, or at positions ``idx``) as a :class:`Records` batch, carrying
        their key hashes and digests when given (so a backend does not compute them again).
        """
        cut = self.payload.__getitem__
        if idx is None:
            idx = np.arange(len(self), dtype=np.int64)
            ks, ke, vs, ve = self.koff[:-1], self.koff[1:], self.voff[:-1], self.voff[1:]
        else:
            ks, ke, vs, ve = self.koff[idx], self.koff[idx + 1], self.voff[idx], self.voff[idx + 1]
        # Slices made and cut in C (map), not a Python loop per record.
        keys = list(map(cut, map(slice, ks.tolist(), ke.tolist())))
        values: list[bytes | None] = list(map(cut, map(slice, vs.tolist(), ve.tolist())))
        for i in np.flatnonzero(self.vlens[idx] < 0).tolist():
            values[i] = None
        return Records(keys, values, self.epochs[idx], self.seqs[idx],
                       None if hashes is None else hashes[idx],
                       None if digests is None else digests[idx])


def decode_columns(payload: bytes) -> Columns:
    """The columns of a chunk payload; ``ValueError`` on any inconsistency (the same
    checks as :func:`ringguard.backup.codec.decode_chunk`)."""
    n, branges, bcounts, pos = payload_table(payload)
    klens = np.frombuffer(payload, dtype="<u4", count=n, offset=pos).astype(np.int64)
    pos += 4 * n
    vlens = np.frombuffer(payload, dtype="<i8", count=n, offset=pos).astype(np.int64)
    pos += 8 * n
    epochs = np.frombuffer(payload, dtype="<i8", count=n, offset=pos).astype(np.int64)
    pos += 8 * n
    seqs = np.frombuffer(payload, dtype="<i8", count=n, offset=pos).astype(np.int64)
    pos += 8 * n
    if n and (
        klens.max() > MAX_KEY_BYTES
        or vlens.min() < -1
        or vlens.max() > MAX_VALUE_BYTES
        or epochs.min() < 0
        or seqs.min() < 0
    ):
        raise ValueError("payload holds an out-of-range length or version")
    ksum = int(klens.sum())
    vsum = int(np.maximum(vlens, 0).sum())
    if pos + ksum + vsum != len(payload):
        raise ValueError(
            f"payload is {len(payload)} bytes, its lengths describe {pos + ksum + vsum}"
        )
    koff = np.empty(n + 1, dtype=np.int64)
    koff[0] = pos
    np.cumsum(klens, out=koff[1:])
    koff[1:] += pos
    voff = np.empty(n + 1, dtype=np.int64)
    voff[0] = pos + ksum
    np.cumsum(np.maximum(vlens, 0), out=voff[1:])
    voff[1:] += pos + ksum
    data = np.frombuffer(payload, dtype=np.uint8)
    return Columns(branges, bcounts, data, klens, vlens, epochs, seqs, koff, voff,
                   payload if isinstance(payload, bytes) else bytes(payload))
