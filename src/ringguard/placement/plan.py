"""Exact ownership of the hash space and migration plans between two placements.

For ring placements everything here is computed from the rings' points alone (no key
sampling): a point owns the arc of hashes whose successor it is, so two rings cut the
hash space into elementary intervals on which both owners are constant. Keys, when given,
add per-key detail (which keys move, which gain or lose a replica).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .analysis import movement
from .base import Placement

__all__ = ["MigrationPlan", "Ownership", "ownership", "plan"]

_SPACE = 1 << 64


def _ring_arrays(p: Any) -> tuple[np.ndarray, np.ndarray]:
    """(points in 64-bit ring space, owners) of a ring placement, or TypeError."""
    index = getattr(p, "_index", None)
    if index is None or not hasattr(index, "points"):
        raise TypeError(
            f"{type(p).__name__} is not a ring placement; ownership and key-free plans "
            "need Ring or Ring.ketama"
        )
    return np.asarray(index.points, dtype=np.uint64), np.asarray(index.owners, dtype=np.int64)


def _exact_sums(arcs: np.ndarray, owners: np.ndarray, nnodes: int) -> list[int]:
    """Per-owner sums of uint64 arc lengths as exact Python ints (no float rounding)."""
    hi = np.zeros(nnodes, dtype=np.uint64)
    lo = np.zeros(nnodes, dtype=np.uint64)
    np.add.at(hi, owners, arcs >> np.uint64(32))
    np.add.at(lo, owners, arcs & np.uint64(0xFFFFFFFF))
    return [(int(h) << 32) + int(lo_) for h, lo_ in zip(hi.tolist(), lo.tolist(), strict=True)]


def _arcs(points: np.ndarray) -> np.ndarray:
    """Length of the arc each point owns: (previous point, this point], wrapping.

    uint64 arithmetic wraps modulo 2**64, which is exactly the wrap-around arc of point 0;
    a ring whose points all share one value owns the whole space through its first point.
    """
    arcs = np.empty_like(points)
    arcs[1:] = points[1:] - points[:-1]
    arcs[:1] = points[:1] - points[-1:]  # modulo 2**64 (array arithmetic wraps silently)
    return arcs


@dataclass(frozen=True)
class Ownership:
    """Share of the hash space each node owns, exactly.

    Attributes
    ----------
    nodes : tuple of str
    hashes : list of int
        Units of the key space each node owns: 64-bit hash values for rings and Maglev
        (sums to ``2**64``), slots for Redis Cluster (sums to 16384).
    fraction : numpy.ndarray
        ``hashes / space`` as float64.
    space : int
        Size of the key space in those units.
    """

    nodes: tuple[str, ...]
    hashes: list[int]
    fraction: np.ndarray
    space: int = _SPACE

    def as_dict(self) -> dict[str, float]:
        """``{node: fraction}``."""
        return dict(zip(self.nodes, self.fraction.tolist(), strict=True))


def _table_of(p: Any) -> tuple[np.ndarray, str] | None:
    """(entry -> owner table, space name) of a table placement: Redis Cluster slots
    (``"slots"``) or a Maglev lookup table (``"table"``); None for other placements."""
    if hasattr(p, "slot_table"):
        return np.asarray(p.slot_table, dtype=np.int64), "slots"
    if hasattr(p, "table") and hasattr(p, "table_size"):
        return np.asarray(p.table(), dtype=np.int64), "table"
    return None


def _entry_sums(table: np.ndarray, space: str, nnodes: int) -> tuple[list[int], int]:
    """Exact units owned per node: slots, or 64-bit hashes (a key's Maglev entry is
    ``hash % M``: entry ``j`` receives ``2**64 // M`` hashes, one more when ``j < 2**64 % M``)."""
    counts = np.bincount(table, minlength=nnodes)
    if space == "slots":
        return [int(c) for c in counts.tolist()], len(table)
    q, r = divmod(_SPACE, len(table))
    low = np.bincount(table[:r], minlength=nnodes)
    return [int(c) * q + int(lo) for c, lo in zip(counts.tolist(), low.tolist(),
                                                  strict=True)], _SPACE


def ownership(placement: Placement) -> Ownership:
    """Exact share of the key space each node owns: from the ring's gaps (rings), from
    the table's entries (Maglev), or from slot counts (Redis Cluster). No sampling.

    Examples
    --------
    >>> from ringguard import Ring, ownership
    >>> own = ownership(Ring(["a", "b", "c"]))
    >>> sum(own.hashes) == 2**64
    True
    """
    tab = _table_of(placement)
    if tab is not None:
        sums, space = _entry_sums(tab[0], tab[1], len(placement.nodes))
        return Ownership(tuple(placement.nodes), sums,
                         np.array([x / space for x in sums], dtype=np.float64), space)
    points, owners = _ring_arrays(placement)
    arcs = _arcs(points)
    sums = _exact_sums(arcs, owners, len(placement.nodes))
    if points[0] == points[-1]:  # sorted and all equal: the arc "0" is the whole space
        sums = [0] * len(sums)
        sums[int(owners[0])] = _SPACE
    return Ownership(tuple(placement.nodes), sums,
                     np.array([s / _SPACE for s in sums], dtype=np.float64))


@dataclass(frozen=True)
class Transfer:
    """One contiguous run of hashes that changes owner: ``[start, end]`` inclusive."""

    start: int
    end: int
    source: str
    destination: str

    @property
    def size(self) -> int:
        """Number of hash values in the range (wrapping ranges have start > end)."""
        return (self.end - self.start) % _SPACE + 1


@dataclass(frozen=True)
class MigrationPlan:
    """What changes between two placements.

    Attributes
    ----------
    transfers : list of Transfer
        Exact moved ranges (source -> destination), in the units of ``space``: 64-bit
        hash ranges for rings, slot ranges for Redis Cluster, entry ranges of the lookup
        table for Maglev (a key's entry is ``XXH64(key) % M``); empty when ``space`` is
        ``"keys"`` (Rendezvous, JumpHash: flows are then fractions of the given keys).
    flows : dict
        ``{(source, destination): fraction of the hash space}`` from ``transfers``.
    moved_fraction : float
        Fraction of the hash space that changes owner.
    key_counts : dict or None
        With keys: ``{(source, destination): keys}``.
    moved_keys : numpy.ndarray or None
        With keys: indices of the keys that change primary.
    replica_changes : dict or None
        With keys and ``n``: ``gained`` and ``lost`` (int32 arrays, ``-1`` padded, shape
        ``(len(keys), n)``, node indices into ``new.nodes`` / ``old.nodes``) and
        ``copy_from`` (old node index holding the data for each key that gains a replica,
        the first surviving old replica, ``-1`` where none survives).
    """

    old_nodes: tuple[str, ...]
    new_nodes: tuple[str, ...]
    transfers: list[Transfer]
    flows: dict[tuple[str, str], float]
    moved_fraction: float
    key_counts: dict[tuple[str, str], int] | None = None
    moved_keys: np.ndarray | None = None
    replica_changes: dict[str, np.ndarray] | None = field(default=None, repr=False)
    space: str = "hash"  # "hash" (rings), "table" (Maglev), "slots" (Redis), "keys"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (ranges as ``[start, end, source, destination]``)."""
        out: dict[str, Any] = {
            "old_nodes": list(self.old_nodes),
            "new_nodes": list(self.new_nodes),
            "moved_fraction": self.moved_fraction,
            "space": self.space,
            "flows": [[s, d, f] for (s, d), f in sorted(self.flows.items())],
            "transfers": [[t.start, t.end, t.source, t.destination] for t in self.transfers],
        }
        if self.key_counts is not None:
            out["key_counts"] = [[s, d, c] for (s, d), c in sorted(self.key_counts.items())]
            assert self.moved_keys is not None
            out["moved_keys"] = int(len(self.moved_keys))
        return out

    def __repr__(self) -> str:
        rows = sorted(self.flows.items(), key=lambda kv: (-kv[1], kv[0]))
        ws = max([len(s) for (s, _), _ in rows] + [len("source")])
        wd = max([len(d) for (_, d), _ in rows] + [len("destination")])
        where = "slot space" if self.space == "slots" else "hash space"
        lines = [f"MigrationPlan: {self.moved_fraction:.2%} of the {where} moves "
                 f"in {len(self.transfers)} ranges"]
        lines.append(f"  {'source':<{ws}}  {'destination':<{wd}}  {'share':>8}"
                     + ("  keys" if self.key_counts is not None else ""))
        for (s, d), f in rows[:20]:
            keys = ""
            if self.key_counts is not None:
                keys = f"  {self.key_counts.get((s, d), 0):,}"
            lines.append(f"  {s:<{ws}}  {d:<{wd}}  {f:>8.2%}{keys}")
        if len(rows) > 20:
            lines.append(f"  ... {len(rows) - 20} more flows")
        return "\n".join(lines)


def _transfers(old: Any, new: Any) -> list[Transfer]:
    op, oo = _ring_arrays(old)
    np_, no = _ring_arrays(new)
    # Map owners to names shared by both, then to one integer space.
    names = sorted(set(old.nodes) | set(new.nodes))
    nid = {n: i for i, n in enumerate(names)}
    old_name = np.array([nid[n] for n in old.nodes], dtype=np.int64)[oo]
    new_name = np.array([nid[n] for n in new.nodes], dtype=np.int64)[no]
    merged = np.sort(np.concatenate([op, np_]), kind="stable")  # two sorted runs: ~linear
    cuts = merged[np.r_[True, merged[1:] != merged[:-1]]]
    # Hashes in (cuts[i-1], cuts[i]] share successors in both rings: those of cuts[i].
    so = np.searchsorted(op, cuts, side="left") % len(op)
    sn = np.searchsorted(np_, cuts, side="left") % len(np_)
    src, dst = old_name[so], new_name[sn]
    moved = np.flatnonzero(src != dst)
    if len(moved) == 0:
        return []
    # Consecutive elementary intervals are adjacent; merge runs with the same flow.
    ms, md = src[moved], dst[moved]
    brk = np.r_[True, (np.diff(moved) != 1) | (ms[1:] != ms[:-1]) | (md[1:] != md[:-1])]
    first = moved[brk]
    last = moved[np.r_[brk[1:], True]]
    starts = np.where(first > 0, cuts[np.maximum(first - 1, 0)] + np.uint64(1),
                      cuts[-1:] + np.uint64(1))  # interval 0 wraps: (last cut, first cut]
    out = [
        Transfer(int(a), int(b), names[int(s_)], names[int(d_)])
        for a, b, s_, d_ in zip(starts.tolist(), cuts[last].tolist(), ms[brk].tolist(),
                                md[brk].tolist(), strict=True)
    ]
    if len(out) > 1 and out[0].start == (out[-1].end + 1) % _SPACE and (
        out[0].source, out[0].destination) == (out[-1].source, out[-1].destination):
        tail = out.pop()
        out[0] = Transfer(tail.start, out[0].end, tail.source, tail.destination)
    return out


def plan(old: Placement, new: Placement, keys: Any = None, *, n: int | None = None,
         threads: int | None = None) -> MigrationPlan:
    """Plan the move from ``old`` to ``new``.

    Parameters
    ----------
    old, new
        Placements; for ring placements the moved hash ranges are exact, without keys.
    keys
        Optional keys: adds per-(source, destination) key counts and the moving keys.
    n
        With keys: also compare ``n``-replica preference lists (gained/lost replicas and
        where to copy from).

    Examples
    --------
    >>> from ringguard import Ring, plan
    >>> old = Ring(["a", "b", "c"])
    >>> p = plan(old, old.add("d"))
    >>> {dst for (_, dst) in p.flows}
    {'d'}
    """
    space_name, total = "hash", _SPACE
    exact: dict[tuple[str, str], int] = {}
    transfers: list[Transfer] = []
    kinds = [_kind(old), _kind(new)]
    if "table" in kinds:
        transfers, exact, space_name, total = _table_transfers(old, new)
    elif kinds == ["ring", "ring"]:
        transfers = _transfers(old, new)
        for t in transfers:
            exact[(t.source, t.destination)] = exact.get((t.source, t.destination), 0) + t.size
    elif keys is None:
        raise TypeError(
            f"plan: {type(old).__name__} -> {type(new).__name__} has no exact key-free "
            "plan (only rings, Maglev tables and Redis Cluster slots do); pass keys"
        )
    else:  # Rendezvous, JumpHash, mixed kinds: the plan is measured on the keys
        space_name = "keys"
    key_counts = moved_keys = changes = None
    if space_name == "keys":
        mv = movement(old, new, keys, threads=threads)
        total = max(1, len(mv.moved))
        for i, j in zip(*np.nonzero(mv.matrix), strict=True):
            a, b = mv.old_nodes[i], mv.new_nodes[j]
            if a != b:
                exact[(a, b)] = int(mv.matrix[i, j])
    flows = {k: v / total for k, v in exact.items()}
    moved_fraction = sum(exact.values()) / total
    if keys is not None:
        mv = movement(old, new, keys, threads=threads)
        key_counts = {}
        for i, j in zip(*np.nonzero(mv.matrix), strict=True):
            a, b = mv.old_nodes[i], mv.new_nodes[j]
            if a != b:
                key_counts[(a, b)] = int(mv.matrix[i, j])
        moved_keys = np.flatnonzero(mv.moved)
        if n is not None:
            changes = _replica_changes(old, new, keys, n, threads)
    elif n is not None:
        raise ValueError("n: replica changes are computed per key; pass keys as well")
    return MigrationPlan(tuple(old.nodes), tuple(new.nodes), transfers, flows,
                         moved_fraction, key_counts, moved_keys, changes, space_name)


def _kind(p: Any) -> str:
    if _table_of(p) is not None:
        return "table"
    return "ring" if hasattr(getattr(p, "_index", None), "points") else "other"


def _table_transfers(
    old: Any, new: Any
) -> tuple[list[Transfer], dict[tuple[str, str], int], str, int]:
    a, b = _table_of(old), _table_of(new)
    if a is None or b is None or a[1] != b[1] or len(a[0]) != len(b[0]):
        raise TypeError(
            "plan: both placements must be of the same kind (rings, Maglev tables of one "
            "size, or Redis Cluster slots)"
        )
    names = sorted(set(old.nodes) | set(new.nodes))
    nid = {n: i for i, n in enumerate(names)}
    src = np.array([nid[x] for x in old.nodes], dtype=np.int64)[a[0]]
    dst = np.array([nid[x] for x in new.nodes], dtype=np.int64)[b[0]]
    moved = np.flatnonzero(src != dst)
    space = a[1]
    m = len(a[0])
    q, r = divmod(_SPACE, m)
    exact: dict[tuple[str, str], int] = {}
    transfers: list[Transfer] = []
    if len(moved):
        ms, md = src[moved], dst[moved]
        brk = np.r_[True, (np.diff(moved) != 1) | (ms[1:] != ms[:-1]) | (md[1:] != md[:-1])]
        firsts, lasts = moved[brk], moved[np.r_[brk[1:], True]]
        for f, l_, s_, d_ in zip(firsts.tolist(), lasts.tolist(), ms[brk].tolist(),
                                 md[brk].tolist(), strict=True):
            t = Transfer(f, l_, names[s_], names[d_])
            transfers.append(t)
            units = t.size if space == "slots" else t.size * q + max(0, min(l_ + 1, r) - f)
            exact[(t.source, t.destination)] = exact.get((t.source, t.destination), 0) + units
    return transfers, exact, space, (m if space == "slots" else _SPACE)


def _replica_changes(old: Any, new: Any, keys: Any, n: int, threads: Any) -> dict[str, np.ndarray]:
    ro = np.asarray(old.replicas(keys, n, threads=threads), dtype=np.int64)
    rn = np.asarray(new.replicas(keys, n, threads=threads), dtype=np.int64)
    names = sorted(set(old.nodes) | set(new.nodes))
    nid = {nm: i for i, nm in enumerate(names)}
    o = np.array([nid[x] for x in old.nodes], dtype=np.int64)[ro]
    w = np.array([nid[x] for x in new.nodes], dtype=np.int64)[rn]
    in_old = (w[:, :, None] == o[:, None, :]).any(axis=2)  # new replica already held
    in_new = (o[:, :, None] == w[:, None, :]).any(axis=2)  # old replica kept
    gained = np.where(in_old, -1, rn).astype(np.int32)
    lost = np.where(in_new, -1, ro).astype(np.int32)
    # Copy source: the first old replica that survives in the new list (else -1).
    first_kept = np.where(in_new.any(axis=1), np.argmax(in_new, axis=1), -1)
    copy_from = np.where(first_kept >= 0, ro[np.arange(len(ro)), np.maximum(first_kept, 0)], -1)
    copy_from = np.where((gained >= 0).any(axis=1), copy_from, -1).astype(np.int32)
    return {"gained": gained, "lost": lost, "copy_from": copy_from}
