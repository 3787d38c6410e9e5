"""An in-process backend for tests and demos, stored column-wise.

Records live in NumPy columns sorted by ``(key hash, key)``: a *main* run and a small
*delta* run that new keys are inserted into, merged into the main run when it grows past
about ``sqrt(1024 * len(main))`` records (or before a scan). A write batch is applied with
a few array operations (sort, ``searchsorted``, fancy assignment, ``np.insert``), never a
Python loop per record; only batches in which a key repeats, or whose keys share a key
hash, take a slower path. A range scan is a slice of the main run. Large batches apply
fastest (restores write tens of thousands of records per call).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .base import (
    DIGEST_BITS,
    HASH_SPACE,
    Backend,
    BackendError,
    Records,
    StaleEpochError,
    bucket_of,
    check_batch_size,
    check_intervals,
    check_range,
    key_hashes,
)

__all__ = ["MemoryBackend"]

_MIN_DELTA = 4096


def _objects(items: Sequence[Any]) -> np.ndarray:
    """A 1-D object array holding ``items`` (never a 2-D array of their contents)."""
    out = np.empty(len(items), dtype=object)
    out[:] = items if isinstance(items, list) else list(items)
    return out


class _Run:
    """Columns of records sorted by ``(key hash, key)``; one entry per key."""

    __slots__ = ("digest", "epoch", "hash", "key", "seq", "value")

    def __init__(self) -> None:
        self.hash = np.empty(0, dtype=np.uint64)
        self.key = np.empty(0, dtype=object)
        self.value = np.empty(0, dtype=object)
        self.epoch = np.empty(0, dtype=np.int64)
        self.seq = np.empty(0, dtype=np.int64)
        self.digest = np.empty(0, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self.hash)

    def find(self, qh: np.ndarray, qk: np.ndarray) -> np.ndarray:
        """Position of each key (``qh`` its hash, ``qk`` the key) in the run, -1 if absent."""
        n = len(self.hash)
        out = np.full(len(qh), -1, dtype=np.int64)
        if n == 0 or len(qh) == 0:
            return out
        pos = np.searchsorted(self.hash, qh, "left")
        posc = np.minimum(pos, n - 1)
        hit = (pos < n) & (self.hash[posc] == qh)
        if not hit.any():
            return out
        hi = np.flatnonzero(hit)
        same = self.key[posc[hi]] == qk[hi]
        out[hi[same]] = posc[hi[same]]
        for i in hi[~same].tolist():  # another key with the same hash: walk its run
            j = int(pos[i]) + 1
            while j < n and self.hash[j] == qh[i]:
                if self.key[j] == qk[i]:
                    out[i] = j
                    break
                j += 1
        return out

    def insert_at(self, qh: np.ndarray, qk: np.ndarray) -> np.ndarray:
        """Where each absent key goes to keep ``(hash, key)`` order (``qh``/``qk`` sorted
        that way), as ``np.insert`` positions."""
        n = len(self.hash)
        pos = np.searchsorted(self.hash, qh, "left")
        if n == 0:
            return pos
        posc = np.minimum(pos, n - 1)
        for i in np.flatnonzero((pos < n) & (self.hash[posc] == qh)).tolist():
            j = int(pos[i])  # hash collision: order by key within the equal-hash run
            while j < n and self.hash[j] == qh[i] and self.key[j] < qk[i]:
                j += 1
            pos[i] = j
        return pos

    def insert(self, pos: np.ndarray, other: _Run, idx: np.ndarray | slice) -> None:
        """Insert ``other``'s records ``idx`` before positions ``pos`` (non-decreasing)."""
        n = len(self.hash)
        for name in _Run.__slots__:
            col = getattr(self, name)
            add = getattr(other, name)[idx]
            if n == 0:
                merged = add.copy() if isinstance(idx, slice) else add
            elif pos[0] >= n:  # all after the end (a restore writes in key-hash order)
                merged = np.concatenate((col, add))
            else:
                merged = np.insert(col, pos, add)
            setattr(self, name, merged)

    def update(self, at: np.ndarray, other: _Run, idx: np.ndarray) -> None:
        """Overwrite the version, value and digest at positions ``at`` with ``other``'s
        records ``idx`` (same keys)."""
        self.value[at] = other.value[idx]
        self.epoch[at] = other.epoch[idx]
        self.seq[at] = other.seq[idx]
        self.digest[at] = other.digest[idx]


class MemoryBackend(Backend):
    """Records in NumPy columns behind a lock, with the same last-writer-wins rule as the
    real backends.

    A record replaces the stored one only if its version ``(epoch, seq)`` is greater;
    within a batch, records apply in order (a key repeated in a batch ends with its
    greatest version, the first of equal ones). Range digests are kept in two arrays at
    the finest resolution (``2**DIGEST_BITS`` ranges), updated on every applied write.

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
        self._main = _Run()
        self._delta = _Run()  # recently inserted keys, merged into _main now and then
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
            self._main = _Run()
            self._delta = _Run()
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

    # ---- writes -------------------------------------------------------------------------

    def write(self, records: Records, *, fenced: bool = False) -> int:
        self._check()
        n = len(records)
        if not n:
            return 0
        if not set(map(type, records.keys)) <= {bytes}:
            for i, k in enumerate(records.keys):
                if not isinstance(k, bytes):
                    raise TypeError(f"keys[{i}]: expected bytes, got {type(k).__name__}")
        batch = _Run()
        h = np.asarray(records.hashes(), dtype=np.uint64)
        d = np.asarray(records.digests(), dtype=np.uint64)
        e = np.asarray(records.epochs, dtype=np.int64)
        s = np.asarray(records.seqs, dtype=np.int64)
        keys = _objects(records.keys)
        # Sorted by (hash, key, position in the batch): a key's records are adjacent and
        # in batch order.
        order = np.argsort(h, kind="stable")
        hs = h[order]
        same = hs[1:] == hs[:-1]
        repeats = bool(same.any())
        if repeats:
            ks = keys[order]
            if bool((ks[1:][same] != ks[:-1][same]).any()):
                # Distinct keys sharing a hash: order those by key (rare, so in Python).
                hl = h.tolist()
                kl = records.keys
                order = np.array(sorted(range(n), key=lambda i: (hl[i], kl[i], i)),
                                 dtype=np.int64)
                hs = h[order]
        batch.hash = hs
        batch.key = keys[order]
        batch.value = _objects(records.values)[order]
        batch.epoch = e[order]
        batch.seq = s[order]
        batch.digest = d[order]
        if repeats:
            first = np.ones(n, dtype=bool)
            first[1:] = (hs[1:] != hs[:-1]) | (batch.key[1:] != batch.key[:-1])
        with self._lock:
            if fenced and int(e.min()) < self._fence:
                raise StaleEpochError(
                    f"{self.name}: write with epoch {int(e.min())} below the fence {self._fence}"
                )
            if not repeats:
                return self._apply(batch)
            return self._apply_repeats(batch, first)

    def _locate(self, run: _Run) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Where each of ``run``'s keys is stored: positions in the main and delta runs
        (-1 if not there) and the stored version (-1, -1 if absent)."""
        im = self._main.find(run.hash, run.key)
        idl = self._delta.find(run.hash, run.key)
        be = np.full(len(run), -1, dtype=np.int64)
        bs = np.full(len(run), -1, dtype=np.int64)
        m = im >= 0
        be[m] = self._main.epoch[im[m]]
        bs[m] = self._main.seq[im[m]]
        m = idl >= 0
        be[m] = self._delta.epoch[idl[m]]
        bs[m] = self._delta.seq[idl[m]]
        return im, idl, be, bs

    def _apply(self, batch: _Run) -> int:
        """Apply ``batch`` (distinct keys, sorted) where newer than the stored version."""
        im, idl, be, bs = self._locate(batch)
        win = np.flatnonzero((batch.epoch > be) | ((batch.epoch == be) & (batch.seq > bs)))
        self._commit(batch, win, im[win], idl[win])
        return len(win)

    def _apply_repeats(self, batch: _Run, first: np.ndarray) -> int:
        """Apply a sorted batch in which keys may repeat: record ``i`` applies if it is
        newer than the stored version and every earlier record of its key in the batch
        (so the count is what applying them one by one would give)."""
        n = len(batch)
        heads = np.flatnonzero(first)
        group = np.cumsum(first) - 1
        uniq = _Run()
        for name in _Run.__slots__:
            setattr(uniq, name, getattr(batch, name)[heads])
        im, idl, be, bs = self._locate(uniq)
        # Dense rank of every version (stored ones and the batch's), then a running
        # maximum over [stored, record 1, record 2, ...] of each key; offsetting each key's
        # ranks by key * (R + 1) keeps one accumulate from running across keys.
        ve = np.concatenate((be, batch.epoch))
        vs = np.concatenate((bs, batch.seq))
        o = np.lexsort((vs, ve))
        step = np.ones(len(o), dtype=np.int64)
        step[0] = 0
        step[1:] = (ve[o][1:] != ve[o][:-1]) | (vs[o][1:] != vs[o][:-1])
        rank = np.empty(len(o), dtype=np.int64)
        rank[o] = np.cumsum(step)
        width = int(rank.max()) + 1
        g = len(heads)
        seq = np.empty(g + n, dtype=np.int64)
        pos_rec = np.arange(n) + group + 1
        pos_base = heads + np.arange(g)
        seq[pos_base] = rank[:g] + np.arange(g) * width
        seq[pos_rec] = rank[g:] + group * width
        run_max = np.maximum.accumulate(seq)
        applied = seq[pos_rec] > run_max[pos_rec - 1]
        if not applied.any():
            return 0
        # The winner of each key is its last applied record (the greatest version).
        ap = np.flatnonzero(applied)
        last = np.ones(len(ap), dtype=bool)
        last[:-1] = group[ap[1:]] != group[ap[:-1]]
        win = ap[last]
        wg = group[win]
        self._commit(batch, win, im[wg], idl[wg])
        return len(ap)

    def _commit(
        self, batch: _Run, win: np.ndarray, im: np.ndarray, idl: np.ndarray
    ) -> None:
        """Store ``batch``'s records ``win`` (ascending, distinct keys); ``im``/``idl``
        are their keys' positions in the main and delta runs (-1: not there)."""
        if not len(win):
            return
        # Range digests: add the new records, take out the ones they replace.
        _add(self._counts, self._sums, bucket_of(batch.hash[win]), batch.digest[win], 1)
        in_m = im >= 0
        in_d = idl >= 0
        if in_m.any():
            at = im[in_m]
            _add(self._counts, self._sums, bucket_of(self._main.hash[at]),
                 self._main.digest[at], -1)
            self._main.update(at, batch, win[in_m])
        if in_d.any():
            at = idl[in_d]
            _add(self._counts, self._sums, bucket_of(self._delta.hash[at]),
                 self._delta.digest[at], -1)
            self._delta.update(at, batch, win[in_d])
        new = win[~(in_m | in_d)]
        if len(new):
            pos = self._delta.insert_at(batch.hash[new], batch.key[new])
            self._delta.insert(pos, batch, new)
            if len(self._delta) > max(_MIN_DELTA, math.isqrt(1024 * len(self._main))):
                self._merge()

    def _merge(self) -> None:
        """Move the delta run into the main run (caller holds the lock)."""
        if not len(self._delta):
            return
        d = self._delta
        pos = self._main.insert_at(d.hash, d.key)
        self._main.insert(pos, d, slice(None))
        self._delta = _Run()

    # ---- reads --------------------------------------------------------------------------

    def read(self, keys: Sequence[bytes]) -> Records:
        self._check()
        ks = list(keys)
        n = len(ks)
        vals: np.ndarray = np.full(n, None, dtype=object)
        eps = np.full(n, -1, dtype=np.int64)
        sqs = np.full(n, -1, dtype=np.int64)
        # Only bytes can be stored; anything else is absent.
        ok = (np.ones(n, dtype=bool) if set(map(type, ks)) <= {bytes}
              else np.array([type(k) is bytes for k in ks], dtype=bool))
        idx = np.flatnonzero(ok)
        if len(idx):
            qk = _objects(ks)[idx]
            qh = key_hashes(qk.tolist())
            with self._lock:
                for run in (self._main, self._delta):
                    at = run.find(qh, qk)
                    m = at >= 0
                    if m.any():
                        vals[idx[m]] = run.value[at[m]]
                        eps[idx[m]] = run.epoch[at[m]]
                        sqs[idx[m]] = run.seq[at[m]]
        return Records(ks, vals.tolist(), eps, sqs)

    def scan_range(self, lo: int, hi: int, batch_size: int = 10_000) -> Iterator[Records]:
        self._check()
        lo, hi = check_range(lo, hi)
        batch_size = check_batch_size(batch_size)
        if lo >= hi or lo >= HASH_SPACE:
            return iter(())
        bounds = np.array([lo, min(hi, HASH_SPACE - 1)], dtype=np.uint64)
        with self._lock:
            if len(self._delta):
                self._merge()
            run = self._main
            a, b = run.hash.searchsorted(bounds).tolist()
            if hi >= HASH_SPACE:
                b = len(run)
            # Copied under the lock: later writes update the columns in place.
            cols = (run.key[a:b].tolist(), run.value[a:b].tolist(), run.epoch[a:b].copy(),
                    run.seq[a:b].copy(), run.hash[a:b].copy(), run.digest[a:b].copy())
        return _batches(cols, batch_size)

    def scan_ranges(
        self, intervals: Sequence[tuple[int, int]], batch_size: int = 10_000
    ) -> Iterator[tuple[Records, np.ndarray]]:
        """:meth:`scan_range` of many intervals in one call (a backup reads thousands of
        small ones): the records of every ``lo <= h < hi``, ascending, in batches of at
        most ``batch_size``, each with the index of the interval of every record (int64).

        ``intervals`` must be ascending and disjoint (checked when the call is made).
        """
        self._check()
        batch_size = check_batch_size(batch_size)
        ivs = check_intervals(intervals)
        if not ivs:
            return iter(())
        los = np.array([min(lo, HASH_SPACE - 1) for lo, _ in ivs], dtype=np.uint64)
        his = np.array([min(hi, HASH_SPACE - 1) for _, hi in ivs], dtype=np.uint64)
        top = np.array([hi >= HASH_SPACE for _, hi in ivs], dtype=bool)
        empty = np.array([lo >= hi for lo, hi in ivs], dtype=bool)
        with self._lock:
            if len(self._delta):
                self._merge()
            run = self._main
            a = run.hash.searchsorted(los)
            b = run.hash.searchsorted(his)
            b[top] = len(run)
            b[empty] = a[empty]
            counts = (b - a).astype(np.int64)
            total = int(counts.sum())
            before = np.cumsum(counts) - counts
            idx = np.repeat(a.astype(np.int64) - before, counts) + np.arange(total)
            cols = (run.key[idx].tolist(), run.value[idx].tolist(), run.epoch[idx],
                    run.seq[idx], run.hash[idx], run.digest[idx])
        which = np.repeat(np.arange(len(ivs), dtype=np.int64), counts)
        return _tagged_batches(cols, which, batch_size)

    def _digests(self) -> tuple[np.ndarray, np.ndarray]:
        self._check()
        with self._lock:
            return self._counts.copy(), self._sums.copy()

    def ping(self) -> None:
        self._check()

    def count(self) -> int:
        self._check()
        with self._lock:
            return len(self._main) + len(self._delta)


def _batches(cols: tuple[Any, ...], batch_size: int) -> Iterator[Records]:
    keys, values, eps, sqs, hs, ds = cols
    for i in range(0, len(keys), batch_size):
        j = i + batch_size
        yield Records(keys[i:j], values[i:j], eps[i:j], sqs[i:j], hs[i:j], ds[i:j])


def _tagged_batches(cols: tuple[Any, ...], which: np.ndarray, batch_size: int
                    ) -> Iterator[tuple[Records, np.ndarray]]:
    for i, r in enumerate(_batches(cols, batch_size)):
        yield r, which[i * batch_size : (i + 1) * batch_size]


def _add(counts: np.ndarray, sums: np.ndarray, buckets: np.ndarray, digests: np.ndarray,
         sign: int) -> None:
    """Add (``sign`` 1) or take out (-1) records from the range digests (sums wrap mod
    2**64)."""
    order = np.argsort(buckets, kind="stable")
    b = buckets[order]
    starts = np.flatnonzero(np.concatenate(([True], b[1:] != b[:-1])))
    ub = b[starts]
    c = np.diff(np.append(starts, len(b))).astype(np.uint64)
    s = np.add.reduceat(digests[order], starts).astype(np.uint64)
    if sign > 0:
        counts[ub] += c
        sums[ub] += s
    else:
        counts[ub] -= c
        sums[ub] -= s
