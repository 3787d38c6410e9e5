"""Building a snapshot's chunks and range rows from records streamed in key-hash order.

A backup reads a node with :meth:`Backend.scan_range` (ascending key hash), so the records
of one digest range arrive together and a chunk can be written as soon as its ranges are
complete: memory holds one chunk's records (plus one scan batch), never the whole node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backends.base import Records, record_digests
from ._columnar import decode_columns
from .codec import encode_chunk
from .manifest import RANGE_COLUMNS, ChunkRef, empty_columns

__all__ = ["BlockStats", "ChunkPacker", "block_stats", "key_lengths", "record_sizes",
           "value_lengths"]

#: Payload bytes of one record besides its key and value (klen, vlen, epoch, seq).
RECORD_OVERHEAD = 28


def value_lengths(recs: Records) -> np.ndarray:
    """Length of each value, -1 for a tombstone (int64)."""
    vals: list[Any] = recs.values
    n = len(vals)
    try:  # the common case (no tombstone): one C-level pass, no Python loop
        return np.fromiter(map(len, vals), dtype=np.int64, count=n)
    except TypeError:  # len(None): there are tombstones
        pass
    out = np.fromiter(map(len, [b"" if v is None else v for v in vals]), dtype=np.int64,
                      count=n)
    out[[i for i, v in enumerate(vals) if v is None]] = -1
    return out


def key_lengths(recs: Records) -> np.ndarray:
    """Length of each key (int64)."""
    return np.fromiter(map(len, recs.keys), dtype=np.int64, count=len(recs))


def record_sizes(recs: Records, vlens: np.ndarray | None = None,
                 klens: np.ndarray | None = None) -> np.ndarray:
    """Payload bytes of each record (int64)."""
    if vlens is None:
        vlens = value_lengths(recs)
    k = key_lengths(recs) if klens is None else klens
    return k + np.maximum(vlens, 0) + RECORD_OVERHEAD


@dataclass
class BlockStats:
    """Per-range figures of consecutive blocks of records (one row per range)."""

    ranges: np.ndarray  # int64, ascending
    starts: np.ndarray  # int64 offset of each block in the records
    counts: np.ndarray  # int64
    digests: np.ndarray  # uint64: sum of record digests mod 2**64 (the backends' digest)
    epochs: np.ndarray  # int64: the greatest (epoch, seq) of each block
    seqs: np.ndarray


def block_stats(fine: np.ndarray, recs: Records, digests: np.ndarray | None = None
                ) -> BlockStats:
    """Figures of the blocks of ``recs``, whose range ids ``fine`` are non-decreasing.

    ``digests`` are the records' digests if already known; by default they come from
    :func:`ringguard.backends.base.record_digests`, the definition every backend's
    :meth:`~ringguard.backends.base.Backend.range_digests` uses, so they compare exactly
    with a backend's.
    """
    n = len(fine)
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return BlockStats(z, z, z, np.zeros(0, dtype=np.uint64), z, z)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(fine)) + 1)).astype(np.int64)
    counts = np.diff(np.append(starts, n))
    rd = record_digests(recs) if digests is None else digests
    digests = np.add.reduceat(rd, starts).astype(np.uint64)
    # The greatest (epoch, seq) of each block without sorting: the greatest epoch, then
    # the greatest seq among the block's records of that epoch (versions are >= 0).
    eps = np.asarray(recs.epochs, dtype=np.int64)
    sqs = np.asarray(recs.seqs, dtype=np.int64)
    top = np.maximum.reduceat(eps, starts)
    at_top = eps == np.repeat(top, counts)
    seq = np.maximum.reduceat(np.where(at_top, sqs, np.int64(-1)), starts)
    return BlockStats(fine[starts].astype(np.int64), starts, counts, digests, top, seq)


@dataclass
class ChunkPacker:
    """Accumulates records (ascending range ids) and writes them out as chunks.

    ``by_group``: start a new chunk at every change of the top ``group_bits`` bits (full
    backups: unchanged data then gives byte-identical chunks, which deduplicate);
    otherwise chunks are packed up to ``target_bytes`` (incremental backups: few objects).
    A range is never split between chunks.
    """

    fine_bits: int
    group_bits: int
    target_bytes: int
    by_group: bool
    write: Callable[[bytes, str], str]  # (payload, sha256) -> chunk id
    chunks: list[ChunkRef] = field(default_factory=list)
    rows: list[dict[str, np.ndarray]] = field(default_factory=list)
    _keys: list[bytes] = field(default_factory=list)
    _values: list[bytes | None] = field(default_factory=list)
    _eps: list[np.ndarray] = field(default_factory=list)
    _sqs: list[np.ndarray] = field(default_factory=list)
    _fine: list[np.ndarray] = field(default_factory=list)
    _sizes: list[np.ndarray] = field(default_factory=list)
    _vlens: list[np.ndarray] = field(default_factory=list)
    _klens: list[np.ndarray] = field(default_factory=list)
    _bytes: int = 0
    peak_records: int = 0

    def add(self, recs: Records, fine: np.ndarray) -> None:
        """Append a batch (its range ids ``fine`` not below any added before)."""
        if not len(recs):
            return
        self._keys += recs.keys
        self._values += recs.values
        self._eps.append(np.asarray(recs.epochs, dtype=np.int64))
        self._sqs.append(np.asarray(recs.seqs, dtype=np.int64))
        self._fine.append(np.asarray(fine, dtype=np.int64))
        vl = value_lengths(recs)
        kl = key_lengths(recs)
        self._vlens.append(vl)
        self._klens.append(kl)
        self._sizes.append(record_sizes(recs, vl, kl))
        self._bytes += int(self._sizes[-1].sum())
        self.peak_records = max(self.peak_records, len(self._keys))
        if self._due():
            self._pack(final=False)

    def end_run(self) -> None:
        """The ranges added so far are complete (a scanned interval ended)."""
        if self._due():
            self._pack(final=True, flush_all=False)

    def _due(self) -> bool:
        """Cheap test whether a chunk may be complete (the packing itself is O(held))."""
        if not self._keys:
            return False
        if self._bytes >= (4 * self.target_bytes if self.by_group else self.target_bytes):
            return True
        if self.by_group:
            shift = self.fine_bits - self.group_bits
            return int(self._fine[0][0]) >> shift != int(self._fine[-1][-1]) >> shift
        return False

    def finish(self) -> None:
        """Write out everything still held."""
        self._pack(final=True, flush_all=True)

    def _pack(self, final: bool, flush_all: bool = False) -> None:
        if not self._keys:
            return
        fine = np.concatenate(self._fine)
        sizes = np.concatenate(self._sizes)
        self._fine, self._sizes = [fine], [sizes]
        # Records of ranges below the last one are complete; so is everything at a run end.
        complete = len(fine) if final else int(np.searchsorted(fine, fine[-1], "left"))
        taken = 0
        while taken < complete:
            f = fine[taken:complete]
            if self.by_group:
                shift = np.int64(self.fine_bits - self.group_bits)
                g = f >> shift
                cut = int(np.searchsorted(g, g[0], "right"))
                if cut == len(f) and not flush_all:
                    # The group may go on in the next batch or run; write it early only
                    # when it is far over the target size (then at a range boundary).
                    csz = np.cumsum(sizes[taken:complete])
                    if csz[-1] < 4 * self.target_bytes:
                        break
                    cut = _range_cut(f, int(np.searchsorted(csz, self.target_bytes)))
                    if cut == 0:
                        break
            else:
                csz = np.cumsum(sizes[taken:complete])
                if csz[-1] < self.target_bytes and not flush_all:
                    break
                cut = len(f) if csz[-1] < self.target_bytes else _range_cut(
                    f, int(np.searchsorted(csz, self.target_bytes)) + 1)
                if cut == 0:
                    cut = len(f)
            self._flush(taken, taken + cut, fine)
            taken += cut
        if taken:
            self._keys = self._keys[taken:]
            self._values = self._values[taken:]
            eps = np.concatenate(self._eps)[taken:]
            sqs = np.concatenate(self._sqs)[taken:]
            self._eps, self._sqs = [eps], [sqs]
            self._vlens = [np.concatenate(self._vlens)[taken:]]
            self._klens = [np.concatenate(self._klens)[taken:]]
            self._fine, self._sizes = [fine[taken:]], [sizes[taken:]]
            self._bytes = int(sizes[taken:].sum())

    def _flush(self, a: int, b: int, fine: np.ndarray) -> None:
        eps = np.concatenate(self._eps) if len(self._eps) > 1 else self._eps[0]
        sqs = np.concatenate(self._sqs) if len(self._sqs) > 1 else self._sqs[0]
        self._eps, self._sqs = [eps], [sqs]
        recs = Records(self._keys[a:b], self._values[a:b], eps[a:b], sqs[a:b])
        f = fine[a:b]
        if len(self._vlens) > 1:
            self._vlens = [np.concatenate(self._vlens)]
        vlens = self._vlens[0][a:b]
        if len(self._klens) > 1:
            self._klens = [np.concatenate(self._klens)]
        klens = self._klens[0][a:b]
        starts = np.concatenate(([0], np.flatnonzero(np.diff(f)) + 1)).astype(np.int64)
        counts = np.diff(np.append(starts, len(f)))
        payload = encode_chunk(f[starts], counts, recs, vlens, klens)
        # The record digests straight from the payload's columns (no object per record).
        st = block_stats(f, recs, decode_columns(payload).record_digests())
        sha = hashlib.sha256(payload).hexdigest()
        cid = self.write(payload, sha)
        k = len(self.chunks)
        self.chunks.append(ChunkRef(cid, sha, len(payload)))
        sizes = np.concatenate(self._sizes)[a:b]
        row = empty_columns(len(st.ranges))
        row["range"][:] = st.ranges
        row["count"][:] = st.counts
        row["digest"][:] = st.digests
        row["chunk"][:] = k
        row["raw"][:] = np.add.reduceat(sizes, st.starts)
        row["epoch"][:] = st.epochs
        row["seq"][:] = st.seqs
        self.rows.append(row)


def _range_cut(f: np.ndarray, at: int) -> int:
    """The first range boundary at or after position ``at`` of ``f`` (``len(f)`` if none
    before the end, 0 if ``f`` is one range)."""
    at = min(max(at, 1), len(f))
    if at >= len(f):
        return len(f)
    return int(np.searchsorted(f, f[at - 1], "right"))


def concat_rows(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One range table from several, sorted by range id."""
    if not parts:
        return empty_columns()
    cols = {k: np.concatenate([p[k] for p in parts]).astype(t, copy=False)
            for k, t in RANGE_COLUMNS.items()}
    order = np.argsort(cols["range"], kind="stable")
    return {k: v[order] for k, v in cols.items()}
