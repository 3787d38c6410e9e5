"""A replicated key-value store over a :class:`Cluster` and one backend per node.

Writes go to every acting replica of each key (grouped per node: one backend call per node
per batch); a replica that is down gets the records through the durable hint log instead,
replayed by :meth:`ReplicatedStore.recover`. A write is acknowledged only when at least
``write_quorum`` acting replicas stored it; otherwise :class:`QuorumError` names the keys
and the call is not reported as done. Every record carries a version ``(epoch, seq)``, so
replicas converge last-writer-wins whatever order replays arrive in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends.base import (
    DIGEST_BITS,
    Backend,
    BackendError,
    Records,
    StaleEpochError,
    bucket_of,
    fold_digests,
    key_hashes,
)
from ..errors import RingGuardError
from .cluster import Cluster, HealthView, NodeState
from .hints import HintLog
from .ranges import RangeOwners, range_owners

__all__ = ["NoHealthyReplica", "QuorumError", "RecoveryReport", "ReplicatedStore"]


class QuorumError(RingGuardError):
    """Some keys of a write reached fewer than ``write_quorum`` replicas.

    Those writes are not acknowledged. Replicas that were down received them as hints, so
    they may still become visible after a recovery; retry them to make the outcome
    definite (a retry carries a newer version and wins).

    Attributes
    ----------
    keys : list
        The keys (as given) whose write is not acknowledged.
    acked : int
        How many keys of the batch were acknowledged.
    """

    def __init__(self, message: str, keys: list[Any], acked: int) -> None:
        super().__init__(message)
        self.keys = keys
        self.acked = acked


class NoHealthyReplica(RingGuardError):
    """Every replica of some keys is down: they can be neither read nor written."""

    def __init__(self, message: str, keys: list[Any]) -> None:
        super().__init__(message)
        self.keys = keys


@dataclass(frozen=True)
class RecoveryReport:
    """What :meth:`ReplicatedStore.recover` did for one node.

    Attributes
    ----------
    node : str
    hints_replayed : int
        Hints stored by the node (replays of records it already had count too).
    records_copied : int
        Records anti-entropy copied to the node (newer on another replica).
    seconds : float
    records_pushed : int
        Records anti-entropy copied from the node to another replica (newer on the node).
    ranges_compared : int
        Range digests compared, summed over the levels of the descent and the replicas.
    ranges_scanned : int
        Finest ranges (``2**DIGEST_BITS`` of the hash space) whose records were read because their
        digests differed, summed over the replicas.
    ranges_copied : int
        Of those, ranges in which at least one record was copied (either direction).
    """

    node: str
    hints_replayed: int
    records_copied: int
    seconds: float
    records_pushed: int = 0
    ranges_compared: int = 0
    ranges_scanned: int = 0
    ranges_copied: int = 0


_LEVELS = (4, 8, 12, DIGEST_BITS)  # range resolutions of the anti-entropy descent
_GAP_RECORDS = 256  # anti-entropy reads across gaps of at most this many records
_RUN_BATCHES = 4  # anti-entropy reads at most about this many batches of records at once


@dataclass
class _AntiEntropy:
    copied: int = 0
    pushed: int = 0
    compared: int = 0
    scanned: int = 0
    ranges_copied: int = 0


def _concat(batches: list[Records]) -> Records:
    """One Records of several."""
    keys: list[bytes] = []
    values: list[bytes | None] = []
    epochs: list[np.ndarray] = []
    seqs: list[np.ndarray] = []
    for r in batches:
        keys += r.keys
        values += r.values
        epochs.append(r.epochs)
        seqs.append(r.seqs)
    if not keys:
        return Records([], [], np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    return Records(keys, values, np.concatenate(epochs), np.concatenate(seqs))


def _key_bytes(keys: Sequence[Any]) -> list[bytes]:
    # Fast paths: one C-level pass to learn the key types, one to encode.
    types = set(map(type, keys))
    if types == {str}:
        return list(map(str.encode, keys))  # UTF-8
    if types == {bytes}:
        return list(keys)
    out = []
    for i, k in enumerate(keys):
        if isinstance(k, str):
            out.append(k.encode("utf-8"))
        elif isinstance(k, bytes):
            out.append(k)
        else:
            raise TypeError(f"keys[{i}]: store keys must be str or bytes, got {type(k).__name__}")
    return out


class ReplicatedStore:
    """Replicated reads and writes with hinted handoff and recovery.

    Parameters
    ----------
    cluster
        The health-aware view (placement and replication).
    backends
        One :class:`~ringguard.backends.Backend` per node name.
    write_quorum
        Acting replicas that must store a record before the write is acknowledged
        (default 1: one live copy plus a durable hint for every down replica). Hints never
        count toward the quorum.
    hints
        The hint log (default: an in-memory log, which does not survive the process; pass
        ``HintLog(path)`` for durability).

    Examples
    --------
    >>> from ringguard import Ring
    >>> from ringguard.backends import MemoryBackend
    >>> from ringguard.failover import Cluster, ReplicatedStore
    >>> nodes = ["a", "b", "c"]
    >>> store = ReplicatedStore(Cluster(Ring(nodes), 2), {n: MemoryBackend(n) for n in nodes})
    >>> store.put_many(["order:1", "order:2"], [b"{}", b"[]"])
    2
    >>> store.get_many(["order:2"])
    [b'[]']
    """

    def __init__(
        self,
        cluster: Cluster,
        backends: Mapping[str, Backend],
        *,
        write_quorum: int = 1,
        hints: HintLog | None = None,
    ) -> None:
        if not isinstance(cluster, Cluster):
            raise TypeError("cluster: expected a ringguard.failover.Cluster")
        missing = [n for n in cluster.nodes if n not in backends]
        if missing:
            raise ValueError(f"backends: no backend for node {missing[0]!r}")
        if isinstance(write_quorum, bool) or not isinstance(write_quorum, int):
            raise TypeError("write_quorum: expected an int")
        if not 1 <= write_quorum <= cluster.replication:
            raise ValueError(
                f"write_quorum: must be between 1 and the replication ({cluster.replication})"
            )
        self.cluster = cluster
        self.backends = [backends[n] for n in cluster.nodes]
        self.write_quorum = write_quorum
        self.hints = hints if hints is not None else HintLog()
        self._seq_lock = threading.Lock()
        self._last_seq = 0
        self._owners: RangeOwners | None = None
        self._owners_for: object = None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def _seqs(self, n: int) -> np.ndarray:
        """Strictly increasing sequence numbers (wall-clock based, so they keep growing
        across restarts of the process)."""
        with self._seq_lock:
            start = max(self._last_seq + 1, time.time_ns())
            self._last_seq = start + n - 1
        return np.arange(start, start + n, dtype=np.int64)

    # ---- writes -------------------------------------------------------------------------

    def put_many(
        self, keys: Sequence[Any], values: Sequence[bytes | None], *, view: HealthView | None = None
    ) -> int:
        """Write ``values`` under ``keys`` (``None`` deletes); return how many were acked.

        ``view`` pins the health view the batch is routed under (default: the current one).
        A node that returned after that view refuses the batch (fencing); its records then
        go to the hint log like those of a down replica.

        Raises
        ------
        QuorumError
            Naming every key that reached fewer than ``write_quorum`` replicas (the others
            are stored; retrying the failed ones is safe).
        """
        kb = _key_bytes(keys)
        if len(values) != len(kb):
            raise ValueError(f"values: {len(values)} values for {len(kb)} keys")
        if not kb:
            return 0
        route = self.cluster.route(kb, view=view)
        view = route.view
        records = Records.build(kb, list(values), view.version, self._seqs(len(kb)))
        records.hashes()  # once for the batch: the per-node parts carry their slices
        records.digests()
        acks = np.zeros(len(kb), dtype=np.int64)
        hinted: set[str] = set()
        # One group per node over every replica column (a key appears at most once per
        # node): each node gets one backend call per batch, all nodes concurrently.
        prefs = route.replicas
        flat = prefs.ravel()
        order = np.argsort(flat, kind="stable")
        bounds = np.flatnonzero(np.diff(flat[order])) + 1
        writes: list[tuple[int, np.ndarray, Records]] = []
        for grp in np.split(order, bounds):
            node = int(flat[grp[0]])
            idx = grp // prefs.shape[1]  # key positions
            batch = records.take(idx)
            if view.states[node] in (NodeState.UP, NodeState.SUSPECT, NodeState.CATCHING_UP):
                writes.append((node, idx, batch))
            else:
                self.hints.append(view.nodes[node], batch)
                hinted.add(view.nodes[node])
        for (node, idx, batch), exc in zip(writes, self._write_all(writes), strict=True):
            name = view.nodes[node]
            if isinstance(exc, BackendError) and not isinstance(exc, StaleEpochError):
                self.cluster.mark_down(name, reason=f"write failed: {exc}")
            if exc is not None:  # refused (routed under an old view) or failed: hint it
                self.hints.append(name, batch)
                hinted.add(name)
            elif view.states[node] is not NodeState.CATCHING_UP:
                acks[idx] += 1
        # A node may have finished recovering while this batch (routed under an older view)
        # was hinting it: replay now, or those hints would wait for its next recovery.
        for name in hinted:
            if self.cluster.state(name) is NodeState.UP and self.hints.pending(name):
                try:
                    self.hints.replay(name, self.backends[self.cluster.nodes.index(name)])
                except BackendError:
                    pass  # it failed again; the hints stay for the next recovery
        failed = np.flatnonzero(acks < self.write_quorum)
        if len(failed):
            bad = [keys[i] for i in failed.tolist()]
            raise QuorumError(
                f"{len(bad)} of {len(kb)} keys reached fewer than {self.write_quorum} "
                f"replicas (first: {bad[0]!r}); they are not acknowledged",
                bad,
                len(kb) - len(bad),
            )
        return len(kb)

    def _write_all(
        self, writes: list[tuple[int, np.ndarray, Records]]
    ) -> list[BackendError | None]:
        """Fenced writes of each ``(node, _, records)``; per write ``None`` or the
        :class:`BackendError` it raised (other exceptions propagate).

        Writes to backends with :attr:`~ringguard.backends.Backend.parallel_writes` run on
        the thread pool, concurrently; the others run one after another in this thread
        meanwhile (for SQLite, whose ``executemany`` hands the GIL over on every row, this
        halves the CPU a batch costs compared with one thread per node).
        """

        def one(w: tuple[int, np.ndarray, Records]) -> BackendError | None:
            try:
                self.backends[w[0]].write(w[2], fenced=True)
            except BackendError as exc:
                return exc
            return None

        threaded = [i for i, w in enumerate(writes) if self.backends[w[0]].parallel_writes]
        if len(threaded) <= 1 and len(threaded) == len(writes):
            return [one(w) for w in writes]
        out: list[BackendError | None] = [None] * len(writes)
        futures = []
        if threaded:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        max_workers=min(len(self.backends), 16),
                        thread_name_prefix="ringguard-store",
                    )
                pool = self._pool
            futures = [(i, pool.submit(one, writes[i])) for i in threaded]
        inline = set(range(len(writes))) - set(threaded)
        try:
            for i in sorted(inline):
                out[i] = one(writes[i])
        finally:
            for i, f in futures:
                out[i] = f.result()
        return out

    def close(self) -> None:
        """Stop the store's writer threads (idempotent; backends and hints stay open)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def delete_many(self, keys: Sequence[Any]) -> int:
        """Delete ``keys`` (versioned tombstones, so replicas converge); return acked count."""
        return self.put_many(keys, [None] * len(keys))

    # ---- reads --------------------------------------------------------------------------

    def get_many(self, keys: Sequence[Any]) -> list[bytes | None]:
        """Latest value of each key (``None`` if absent or deleted).

        Reads every acting replica of each key and keeps the highest version, so a replica
        that missed writes can never hide them.

        Raises
        ------
        NoHealthyReplica
            Naming the keys none of whose replicas could be read.
        """
        kb = _key_bytes(keys)
        if not kb:
            return []
        route = self.cluster.route(kb)
        view = route.view
        best_e = np.full(len(kb), -1, dtype=np.int64)
        best_s = np.full(len(kb), -1, dtype=np.int64)
        answered = np.zeros(len(kb), dtype=bool)
        values: list[bytes | None] = [None] * len(kb)
        prefs = route.replicas
        for j in range(prefs.shape[1]):
            col = prefs[:, j]
            order = np.argsort(col, kind="stable")
            bounds = np.flatnonzero(np.diff(col[order])) + 1
            for idx in np.split(order, bounds):
                node = int(col[idx[0]])
                if not view.acting[node]:
                    continue
                try:
                    got = self.backends[node].read([kb[i] for i in idx.tolist()])
                except BackendError as exc:
                    self.cluster.mark_down(view.nodes[node], reason=f"read failed: {exc}")
                    continue
                answered[idx] = True
                newer = (got.epochs > best_e[idx]) | (
                    (got.epochs == best_e[idx]) & (got.seqs > best_s[idx])
                )
                for pos in np.flatnonzero(newer).tolist():
                    i = int(idx[pos])
                    values[i] = got.values[pos]
                    best_e[i], best_s[i] = got.epochs[pos], got.seqs[pos]
        if not answered.all():
            bad = [keys[i] for i in np.flatnonzero(~answered).tolist()]
            raise NoHealthyReplica(
                f"{len(bad)} keys have no readable replica (first: {bad[0]!r})", bad
            )
        return values

    # ---- recovery -----------------------------------------------------------------------

    def recover(self, node: str, *, batch_size: int = 10_000) -> RecoveryReport:
        """Bring ``node`` back: ``CATCHING_UP``, replay its hints, anti-entropy against the
        other replicas, then ``UP``.

        Anti-entropy compares range digests (:meth:`Backend.range_digests`) of the node
        with those of every other acting node, over the key-hash ranges whose keys both
        hold (see :mod:`ringguard.failover.ranges`): coarse ranges first (``2**4``), then
        only inside the ones that differ (``2**8``, ``2**12``, ``2**DIGEST_BITS``). Only the finest
        ranges whose digests differ are scanned, on both sides, and each record goes to
        the side that holds it older or lacks it (last-writer-wins, so concurrent writes
        are never undone). A node whose storage was wiped has empty digests: every range
        it shares with a replica differs, and it is rebuilt from them.
        """
        t0 = time.monotonic()
        i = self.cluster.nodes.index(node) if node in self.cluster.nodes else -1
        if i < 0:
            raise ValueError(f"node: {node!r} is not in the cluster")
        backend = self.backends[i]
        backend.ping()  # raises BackendError if it is still unreachable
        self.cluster.mark_catching_up(node, reason="recovery started")
        backend.set_fence(self.cluster.epoch)  # batches routed before now are refused
        replayed = self.hints.replay(node, backend, batch_size=batch_size)
        ae = self._anti_entropy(i, batch_size)
        replayed += self.hints.replay(node, backend, batch_size=batch_size)
        # Only if nothing marked it down meanwhile (a failed write during the recovery).
        self.cluster.mark_up(
            node,
            reason=(
                f"recovered: {replayed} hints, {ae.copied} records copied, {ae.pushed} "
                f"pushed, {ae.scanned} of {ae.compared} compared ranges scanned"
            ),
            expect=NodeState.CATCHING_UP,
        )
        return RecoveryReport(
            node,
            replayed,
            ae.copied,
            time.monotonic() - t0,
            records_pushed=ae.pushed,
            ranges_compared=ae.compared,
            ranges_scanned=ae.scanned,
            ranges_copied=ae.ranges_copied,
        )

    def _range_owners(self) -> RangeOwners | None:
        placement = self.cluster.placement
        if self._owners_for is not placement:
            self._owners = range_owners(placement, self.cluster.replication)
            self._owners_for = placement
        return self._owners

    def _anti_entropy(self, target: int, batch_size: int) -> _AntiEntropy:
        """Digest-driven anti-entropy between ``target`` and every other acting node."""
        out = _AntiEntropy()
        view = self.cluster.view
        owners = self._range_owners()
        mine = self.backends[target]
        nr = 2**DIGEST_BITS
        for j, other in enumerate(self.backends):
            if j == target or not view.acting[j]:
                continue
            try:
                dc_o, ds_o = other.range_digests(DIGEST_BITS)
            except BackendError:
                continue
            # Fetched again for each replica: syncing with the previous one changed them.
            dc_t, ds_t = mine.range_digests(DIGEST_BITS)
            if owners is not None:
                co = owners.co_owned(target, j)
                mixed = ~owners.pure
            else:
                co = np.zeros(nr, dtype=bool)
                mixed = np.ones(nr, dtype=bool)
            # Ranges both should hold in full: descend coarse to fine over digests masked
            # to those ranges (equal masks on both sides, so equal data = equal digests).
            mc_t, ms_t = np.where(co, dc_t, 0), np.where(co, ds_t, 0)
            mc_o, ms_o = np.where(co, dc_o, 0), np.where(co, ds_o, 0)
            live = np.ones(1, dtype=bool)  # ranges to compare at the current level
            prev = 0
            for bits in _LEVELS:
                live = np.repeat(live, 2 ** (bits - prev))
                prev = bits
                ct, st = fold_digests(mc_t, ms_t, bits)
                co_, so_ = fold_digests(mc_o, ms_o, bits)
                relevant = live & co.reshape(2**bits, -1).any(axis=1)
                out.compared += int(relevant.sum())
                live = relevant & ((ct != co_) | (st != so_))
            # Mixed ranges (keys with different preference lists): compared at the finest
            # level on raw digests; where they differ, the scan filters keys by placement.
            differ_mixed = mixed & ((dc_t != dc_o) | (ds_t != ds_o))
            out.compared += int(mixed.sum())
            scan = live | differ_mixed
            out.scanned += int(scan.sum())
            counts = dc_t.astype(np.int64) + dc_o.astype(np.int64)
            self._sync_ranges(target, j, np.flatnonzero(scan), counts, batch_size, out)
        return out

    def _sync_ranges(
        self,
        a: int,
        b: int,
        ranges: np.ndarray,
        counts: np.ndarray,
        batch_size: int,
        out: _AntiEntropy,
    ) -> None:
        """Exchange newer records between nodes ``a`` and ``b`` over the finest ``ranges``
        (sorted), for the keys whose preference list holds both.

        ``counts`` are the records per finest range on both sides together: ranges to scan
        separated by fewer than ``_GAP_RECORDS`` records are read in one scan (a call
        costs more than reading a few records the placement filter then drops), and a run
        is cut where it would hold more than ``_RUN_BATCHES * batch_size`` records (memory
        stays bounded when a whole node is rebuilt). Copies are written in batches of
        ``batch_size``.
        """
        if not len(ranges):
            return
        width = 1 << (64 - DIGEST_BITS)
        gap = np.asarray(counts, dtype=np.int64).copy()
        gap[ranges] = 0
        cum = np.cumsum(gap)
        breaks = np.flatnonzero(cum[ranges[1:]] - cum[ranges[:-1]] > _GAP_RECORDS) + 1
        pending: dict[int, list[Records]] = {a: [], b: []}
        touched: set[int] = set()

        def flush(dst: int, force: bool) -> None:
            recs = _concat(pending[dst])
            if not len(recs) or (not force and len(recs) < batch_size):
                return
            pending[dst] = []
            for k in range(0, len(recs), batch_size):
                part = recs.take(np.arange(k, min(k + batch_size, len(recs))))
                n = self.backends[dst].write(part)
                if dst == a:
                    out.copied += n
                else:
                    out.pushed += n

        runs: list[np.ndarray] = []
        cap = _RUN_BATCHES * batch_size
        total = np.cumsum(counts)  # records (both sides) up to each range, gaps included
        for run in np.split(ranges, breaks):
            # A run spanning more than `cap` records is read in pieces, so a rebuild of a
            # whole node never holds all its records in memory at once.
            held = total[run] // cap
            runs += np.split(run, np.flatnonzero(np.diff(held)) + 1)
        for run in runs:
            lo, hi = int(run[0]) * width, (int(run[-1]) + 1) * width
            side_a = _concat(list(self.backends[a].scan_range(lo, hi, batch_size)))
            side_b = _concat(list(self.backends[b].scan_range(lo, hi, batch_size)))
            to_a, to_b = self._newer_each_way(a, b, side_a, side_b)
            for dst, recs in ((a, to_a), (b, to_b)):
                if len(recs):
                    pending[dst].append(recs)
                    touched.update(bucket_of(key_hashes(recs.keys)).tolist())
                    flush(dst, False)
        flush(a, True)
        flush(b, True)
        out.ranges_copied += len(touched)

    def _newer_each_way(
        self, a: int, b: int, side_a: Records, side_b: Records
    ) -> tuple[Records, Records]:
        """(records of b newer than a's or missing on a, the same from a to b), limited to
        keys that have both a and b in their preference list."""
        res = []
        for src, dst_recs in ((side_b, side_a), (side_a, side_b)):
            if not len(src):
                res.append(src)
                continue
            prefs = np.asarray(self.cluster.placement.replicas(src.keys, self.cluster.replication))
            both = np.flatnonzero((prefs == a).any(axis=1) & (prefs == b).any(axis=1))
            have = {
                k: (e, s)
                for k, e, s in zip(
                    dst_recs.keys, dst_recs.epochs.tolist(), dst_recs.seqs.tolist(), strict=True
                )
            }
            ep, sq = src.epochs.tolist(), src.seqs.tolist()
            keep = [
                x for x in both.tolist()
                if (ep[x], sq[x]) > have.get(src.keys[x], (-1, -1))
            ]
            res.append(src.take(keep))
        return res[0], res[1]
