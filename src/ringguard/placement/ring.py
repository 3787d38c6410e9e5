"""Consistent-hash rings: :class:`Ring` (XXH64 points) and :class:`KetamaRing` (libketama).

Both are thin Python classes over the compiled core: construction hashes the points in
one batch call, sorts them with NumPy and builds a bucket index over the top bits of the
hash; every lookup after that is one GIL-free kernel call per chunk of keys. The exact
placement rules are in ``docs/placement-contract.md``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

import numpy as np

from .._backend import core
from .._keys import KeyBatch, KeyPart, normalize
from ..errors import InvalidPlacementError
from ._common import (
    _check_out,
    _float_weight,
    _parse_nodes,
    _readonly,
)
from .base import (
    MAX_NODES,
    JsonPlacement,
    check_replica_count,
    check_threads,
    expect_keys,
    expect_node_list,
    register,
    run_over_parts,
    run_tasks,
    split_work,
)

__all__ = ["Ring", "KetamaRing"]

# Bounds that keep every weight computation finite and every ring buildable from a small
# (possibly untrusted) document: 2**25 points is ~0.5 GB of labels while building.
_MAX_POINTS = 2**25
MAX_KETAMA_WEIGHT = 2**32 - 1


def _check_max_load(max_load: Any) -> float:
    if isinstance(max_load, (bool, np.bool_)) or not isinstance(max_load, numbers.Real):
        raise TypeError(f"max_load: expected a number >= 1, got {type(max_load).__name__}")
    c = float(max_load)
    if not math.isfinite(c) or c < 1:
        raise ValueError(f"max_load: must be finite and >= 1, got {max_load!r}")
    return c


def _int_weight(name: str, w: Any) -> int:
    if isinstance(w, bool) or not isinstance(w, numbers.Integral):
        raise TypeError(f"weights[{name!r}]: ketama weights must be int, got {type(w).__name__}")
    if not 1 <= int(w) <= MAX_KETAMA_WEIGHT:
        raise ValueError(f"weights[{name!r}]: must be between 1 and 2**32-1, got {w!r}")
    return int(w)


def _name_ranks(names: Sequence[str]) -> np.ndarray:
    order = sorted(range(len(names)), key=names.__getitem__)
    ranks = np.empty(len(names), dtype=np.int64)
    ranks[order] = np.arange(len(names))
    return ranks


def _hash_labels(labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    _, data, offsets = core.encode_sequence(labels)
    return data, offsets


def _build_index(points: np.ndarray, owners: np.ndarray) -> Any:
    """Bucket table over the top ``bits`` bits of the 64-bit hash (see csrc/rg_ring.h)."""
    npoints = len(points)
    # About 2^4 buckets per point (at least 2^17): under 1 bucket in 16 holds a point, so
    # nearly every key is answered by one byte-table load, and the AVX2 integer kernel
    # (which wants under 1 in 8) stays on. Measured on 10 x 160 points, 10M uint64 keys:
    # 2^16 buckets ~250 M keys/s, 2^17 ~270; on 100 x 160 points 2^16 ~85 (scalar
    # kernel), 2^18 ~135. The table is an index only: placement does not depend on it.
    bits = min(20, max(17, npoints.bit_length() + 4))
    # start[b] = number of points below bucket b's lower bound (points are sorted).
    per_bucket = np.bincount((points >> np.uint64(64 - bits)).astype(np.int64), minlength=1 << bits)
    start = np.zeros((1 << bits) + 1, dtype=np.uint32)
    np.cumsum(per_bucket, out=start[1:])
    empty = start[:-1] == start[1:]
    direct = np.where(empty, owners[start[:-1] % npoints], -1).astype(np.int32)
    return core.CoreRing(points, owners, _readonly(start), _readonly(direct), bits)


class _RingBase(JsonPlacement):
    """Lookups, replicas and serialization shared by the ring placements."""

    algorithm: ClassVar[str]
    _ketama: ClassVar[bool]
    _mode: int
    _nodes: tuple[str, ...]
    _weights: tuple[Any, ...]
    _zone_of: np.ndarray | None
    _nzones: int
    _pairs: tuple[tuple[str, str], ...] | None
    _partner: np.ndarray | None

    __slots__ = (
        "_nodes",
        "_weights",
        "_mode",
        "_index",
        "_zone_of",
        "_nzones",
        "_zones",
        "_pairs",
        "_partner",
        "_prefs",
        "__weakref__",
    )

    def _set_points(self, values: np.ndarray, owners: np.ndarray) -> None:
        if len(values) == 0:
            raise ValueError("nodes: the configuration gives the ring no points")
        if len(values) > _MAX_POINTS:
            raise ValueError(f"nodes: {len(values)} points exceed the limit of {_MAX_POINTS}")
        self._index = _build_index(_readonly(values), _readonly(owners))
        self._prefs: dict[int, np.ndarray] = {}

    def _pref_table(self, n: int) -> np.ndarray | None:
        """Preference list of ``n`` nodes of every ring point (the walk from point ``p`` is
        the same for every key that lands on ``p``), built once per ``n`` and kept: a batch
        of replicas is then a lookup plus a gather of rows, not a walk per key. ``None``
        when the table would be large (over 2^22 entries)."""
        table = self._prefs.get(n)
        if table is None:
            npoints = len(self._index.points)
            if npoints * n > 1 << 22:
                return None
            table = np.empty((npoints, n), dtype=np.int32)
            self._index.replicas(np.arange(npoints, dtype=np.int32), n, len(self._nodes),
                                 self._zone_of, self._nzones, table)
            table.flags.writeable = False
            self._prefs[n] = table
        return table

    # ---- public read-only state -------------------------------------------------------

    @property
    def nodes(self) -> tuple[str, ...]:
        """Node names; batch calls return indices into this tuple."""
        return self._nodes

    @property
    def weights(self) -> dict[str, Any]:
        """Weight of each node, by name."""
        return dict(zip(self._nodes, self._weights, strict=True))

    @property
    def npoints(self) -> int:
        """Number of points on the ring."""
        return len(self._index.points)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """The ring as ``(values, owners)``: sorted point values and owner node indices.

        Values are 64-bit XXH64 points, or the 32-bit libketama points for ketama rings.
        Both arrays are read-only views.
        """
        values = self._index.points
        if self._ketama:
            values = _readonly(values >> np.uint64(32))
        return values, self._index.owners

    # ---- lookups ----------------------------------------------------------------------

    def _kernel(self, part: KeyPart, out: np.ndarray, want_index: bool) -> None:
        idx = self._index
        if part.kind == "u64":
            idx.assign_u64(part.values, out, want_index)
        elif part.kind == "dec":
            idx.assign_decimal(self._mode, part.values, part.signed, out, want_index)
        elif part.kind == "var":
            idx.assign_var(self._mode, part.data, part.offsets, out, want_index)
        else:
            idx.assign_fixed(self._mode, part.data, part.width, out, want_index)

    def _lookup(self, keys: Any, want_index: bool, threads: Any, out: Any) -> np.ndarray:
        nthreads = check_threads(threads)
        if nthreads == 1 and type(keys) in (list, tuple) and keys:
            # One thread over a list of str/bytes: hash the keys where they lie (no packed
            # copy). Anything else in the list sends us down the general path below, which
            # raises the precise error.
            seq_out = _check_out(out, (len(keys),))
            fast = getattr(self._index, "assign_seq", None)
            if fast is not None and fast(self._mode, keys, seq_out, want_index):
                return seq_out
            out = seq_out
        batch = normalize(keys, ketama=self._ketama)
        out = _check_out(out, (batch.n,))
        return self._lookup_batch(batch, want_index, nthreads, out)

    def _lookup_batch(self, batch: KeyBatch, want_index: bool, nthreads: int,
                      out: np.ndarray) -> np.ndarray:
        return run_over_parts(
            batch, nthreads, out, lambda part, o: self._kernel(part, o, want_index)
        )

    def capacities(self, n_keys: int, max_load: float) -> np.ndarray:
        """Per-node capacities of bounded-load assignment for a batch of ``n_keys``.

        ``ceil(max_load * n_keys * w_i / sum(w))`` (contract section 7), as int64.

        Examples
        --------
        >>> from ringguard import Ring
        >>> Ring(["a", "b", "c"]).capacities(1000, 1.25).tolist()
        [417, 417, 417]
        """
        c = _check_max_load(max_load)
        if isinstance(n_keys, bool) or not isinstance(n_keys, (int, np.integer)):
            raise TypeError(f"n_keys: expected an int, got {type(n_keys).__name__}")
        if n_keys < 0:
            raise ValueError(f"n_keys: must be >= 0, got {n_keys!r}")
        total = math.fsum(self._weights)
        m = int(n_keys)
        return np.array([math.ceil(c * m * w / total) for w in self._weights], dtype=np.int64)

    def assign(self, keys: Any, *, threads: int | None = None, out: Any = None,
               max_load: float | None = None) -> np.ndarray:
        """Node index of every key (the first point at or after the key's hash).

        Parameters
        ----------
        keys
            One key or a batch: see "Keys" in the README (str, bytes, int, lists, NumPy,
            pandas, pyarrow).
        threads
            Split the batch over this many threads (GIL-free kernels); default 1.
        out
            Optional int32 array of ``len(keys)`` to write into.
        max_load
            Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam,
            arXiv:1608.01350): a float ``c >= 1``. Node ``i`` (weight ``w_i``) takes at most
            ``ceil(c * len(keys) * w_i / sum(w))`` keys of this batch (:meth:`capacities`),
            so ``max / mean <= c`` up to that rounding. Keys are placed in batch order, each
            at the first node with room walking clockwise from its point, so **a key's node
            depends on the whole batch and its order**: the same key may land elsewhere in
            another batch. The walk is sequential: ``threads`` only splits the hashing, not
            the walk. ``ValueError`` before any work for ``c < 1`` or capacities that
            cannot hold the batch.

        Returns
        -------
        numpy.ndarray
            int32 indices into :attr:`nodes`, one per key.

        Examples
        --------
        >>> import numpy as np
        >>> from ringguard import Ring
        >>> ring = Ring(["a", "b", "c"])
        >>> ring.assign(["order:1", "order:2"]).tolist()  # doctest: +SKIP
        [2, 0]
        >>> counts = np.bincount(ring.assign(np.arange(900), max_load=1.1), minlength=3)
        >>> int(counts.max()) <= 330
        True
        """
        if max_load is None:
            return self._lookup(keys, False, threads, out)
        c = _check_max_load(max_load)
        nthreads = check_threads(threads)
        batch = normalize(keys, ketama=self._ketama)
        cap = self.capacities(batch.n, c)
        owners = self._index.owners
        room = int(cap[np.unique(owners)].sum())
        if room < batch.n:
            raise ValueError(
                f"max_load: capacities hold {room} keys, fewer than the {batch.n} given"
            )
        out = _check_out(out, (batch.n,))
        first = self._lookup_batch(batch, True, nthreads, np.empty(batch.n, dtype=np.int32))
        core.assign_bounded(owners, first, cap, out)
        return out


    def replicas(
        self, keys: Any, n: int, *, threads: int | None = None, out: Any = None,
        strategy: str | None = None,
    ) -> np.ndarray:
        """Preference list of ``n`` distinct nodes per key, primary first.

        ``strategy="ring"`` (the default without pairs) walks clockwise from the key's
        point (Dynamo style); with zones, nodes in distinct zones come first (Cassandra
        NetworkTopologyStrategy style). ``strategy="pairs"`` (the default for a ring built
        with ``pairs=``) gives the primary and then its fixed partner, so ``n`` is 1 or 2.

        Returns
        -------
        numpy.ndarray
            int32 array of shape ``(len(keys), n)``; column 0 equals :meth:`assign`.

        Examples
        --------
        >>> from ringguard import Ring
        >>> Ring(["a", "b", "c"]).replicas(["k1", "k2"], 2).shape
        (2, 2)
        >>> paired = Ring(["a", "b", "c", "d"], pairs=[("a", "c"), ("b", "d")])
        >>> rows = paired.replicas(["k1", "k2"], 2)
        >>> all(paired.partner(paired.nodes[p]) == paired.nodes[s] for p, s in rows.tolist())
        True
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"n: expected an int, got {type(n).__name__}")
        if strategy is None:
            strategy = "ring" if self._pairs is None else "pairs"
        if strategy == "pairs":
            return self._pair_replicas(keys, n, threads, out)
        if strategy != "ring":
            raise ValueError(f"strategy: expected 'ring', 'pairs' or None, got {strategy!r}")
        n = check_replica_count(n, self._index.distinct_owners)
        nthreads = check_threads(threads)
        first = self._lookup(keys, True, nthreads, None)
        out = _check_out(out, (len(first), n))
        table = self._pref_table(int(n))
        if table is not None:
            run_tasks([partial(core.gather_rows, table, first[a:b], out[a:b])
                       for a, b in split_work(len(first), nthreads)])
            return out
        tasks = [
            partial(
                self._index.replicas,
                first[a:b],
                n,
                len(self._nodes),
                self._zone_of,
                self._nzones,
                out[a:b],
            )
            for a, b in split_work(len(first), nthreads)
        ]
        run_tasks(tasks)
        return out

    def _pair_replicas(self, keys: Any, n: int, threads: Any, out: Any) -> np.ndarray:
        if self._partner is None:
            raise ValueError("strategy: 'pairs' needs a ring built with pairs=[(a, b), ...]")
        if not 1 <= n <= 2:
            raise ValueError(
                f"n: with pairs a key has 2 copies (its primary and the primary's partner), "
                f"so n must be 1 or 2, got {n}"
            )
        n = int(n)
        nthreads = check_threads(threads)
        batch = normalize(keys, ketama=self._ketama)
        out = _check_out(out, (batch.n, n))
        primary = self._lookup_batch(batch, False, nthreads, np.empty(batch.n, dtype=np.int32))
        out[:, 0] = primary
        if n == 2:
            np.take(self._partner, primary, out=out[:, 1])
        return out

    # ---- identity and serialization -----------------------------------------------------

    def __len__(self) -> int:
        return len(self._nodes)


class Ring(_RingBase):
    """The default placement: a consistent-hash ring of XXH64 points (``ring-xxh64@1``).

    Node ``name`` with weight ``w`` gets ``max(1, round(vnodes * w / mean_weight))`` points,
    point ``j`` being ``XXH64(f"{name}#{j}")``; a key goes to the first point at or after
    ``XXH64(key)``, wrapping. Equal points are ordered by node name, so the order nodes are
    given in never changes placement.

    Parameters
    ----------
    nodes
        Node names (a sequence), or a mapping ``{name: weight}``.
    weights
        Optional mapping ``{name: weight}`` (finite, > 0; default 1.0).
    zones
        Optional mapping ``{name: zone}`` covering every node; :meth:`replicas` then puts
        replicas in distinct zones first.
    vnodes
        Points per node of average weight (default 160).
    pairs
        Optional dual-machine pairs ``[(a, b), ...]`` (copysets): every node in exactly one
        pair, so the node count must be even. Primaries still come from the ring (pairs
        never move a key's primary); :meth:`replicas` then gives the primary's partner as
        the standby (``strategy="pairs"``, the default when pairs are set; ``n`` is 1 or
        2), and zones, if any, only apply to ``strategy="ring"``. The trade-off: with ring
        successors each node's keys have standbys on many nodes, so *every* double node
        failure loses some keys but each loses few, and a failed node's load spreads; with
        fixed pairs only the failure of both nodes of a pair loses data (for 10 nodes, 5 of
        the 45 double failures), but that failure loses the pair's whole share, and a
        failed node's load all falls on its partner. :meth:`add`/:meth:`remove` are
        refused on a paired ring: use :meth:`add_pair`/:meth:`remove_pair`.

    Examples
    --------
    >>> import numpy as np
    >>> from ringguard import Ring
    >>> ring = Ring(["db1", "db2", "db3"], vnodes=160)
    >>> idx = ring.assign(np.arange(1000, dtype=np.uint64))
    >>> idx.shape, idx.dtype.name
    ((1000,), 'int32')
    >>> ring.node_for("order:42") in ring.nodes
    True
    """

    algorithm: ClassVar[str] = "ring-xxh64@1"
    _ketama: ClassVar[bool] = False
    __slots__ = ("_vnodes",)

    def __init__(
        self,
        nodes: Sequence[str] | Mapping[str, float],
        *,
        weights: Mapping[str, float] | None = None,
        zones: Mapping[str, str] | None = None,
        vnodes: int = 160,
        pairs: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        names, given = _parse_nodes(nodes, weights)
        if isinstance(vnodes, bool) or not isinstance(vnodes, (int, np.integer)):
            raise TypeError(f"vnodes: expected an int, got {type(vnodes).__name__}")
        if not 1 <= vnodes <= 1_000_000:
            raise ValueError(f"vnodes: must be between 1 and 1000000, got {vnodes}")
        ws = [_float_weight(nm, given.get(nm, 1.0)) for nm in names]
        self._nodes = tuple(names)
        self._weights = tuple(ws)
        self._vnodes = int(vnodes)
        self._mode = core.MODE_XXH64
        self._set_zones(zones)
        self._set_pairs(pairs)
        mean = math.fsum(ws) / len(ws)
        counts = [max(1, round(self._vnodes * w / mean)) for w in ws]
        if sum(counts) > _MAX_POINTS:
            raise ValueError("vnodes/weights: too many points on the ring")
        labels = [f"{nm}#{j}" for nm, c in zip(names, counts, strict=True) for j in range(c)]
        data, offsets = _hash_labels(labels)
        values = np.empty(len(labels), dtype=np.uint64)
        core.hash_var(core.MODE_XXH64, data, offsets, values)
        counts_arr = np.asarray(counts, dtype=np.int64)
        owners = np.repeat(np.arange(len(names), dtype=np.int32), counts_arr)
        j = np.arange(len(labels), dtype=np.int64) - np.repeat(
            np.cumsum(counts_arr) - counts_arr, counts_arr
        )
        order = np.lexsort((j, _name_ranks(names)[owners], values))
        self._set_points(values[order], owners[order])

    def _set_zones(self, zones: Any) -> None:
        self._zones: dict[str, str] | None
        if zones is None:
            self._zones, self._zone_of, self._nzones = None, None, 0
            return
        if not isinstance(zones, Mapping):
            raise TypeError("zones: expected a mapping of node name -> zone")
        unknown = [k for k in zones if k not in set(self._nodes)]
        if unknown:
            raise ValueError(f"zones: unknown node {unknown[0]!r}")
        zmap: dict[str, str] = {}
        for nm in self._nodes:
            if nm not in zones:
                raise ValueError(f"zones: node {nm!r} has no zone")
            z = zones[nm]
            if not isinstance(z, str) or not z:
                raise TypeError(f"zones[{nm!r}]: zone must be a non-empty str")
            zmap[nm] = z
        names = sorted(set(zmap.values()))
        zindex = {z: i for i, z in enumerate(names)}
        self._zones = zmap
        self._zone_of = _readonly(
            np.array([zindex[zmap[nm]] for nm in self._nodes], dtype=np.int32)
        )
        self._nzones = len(names)

    def _set_pairs(self, pairs: Any) -> None:
        """Validate ``pairs``: every node in exactly one pair of two distinct nodes."""
        if pairs is None:
            self._pairs, self._partner = None, None
            return
        if isinstance(pairs, (str, bytes, Mapping)) or \
                not isinstance(pairs, (Sequence, np.ndarray)):
            raise TypeError("pairs: expected a sequence of (a, b) node-name pairs")
        index = {nm: i for i, nm in enumerate(self._nodes)}
        if len(self._nodes) % 2:
            raise ValueError(
                f"pairs: {len(self._nodes)} nodes cannot all be paired (an odd count); every "
                "node must be in exactly one pair, so add or remove a node"
            )
        partner = np.full(len(self._nodes), -1, dtype=np.int32)
        where: dict[str, int] = {}
        out: list[tuple[str, str]] = []
        for i, pair in enumerate(pairs):
            if isinstance(pair, (str, bytes)) or not isinstance(pair, (Sequence, np.ndarray)) \
                    or len(pair) != 2:
                raise TypeError(f"pairs[{i}]: expected a pair (a, b) of node names, got {pair!r}")
            a, b = pair
            for x in (a, b):
                if not isinstance(x, str):
                    raise TypeError(f"pairs[{i}]: node names must be str, got {type(x).__name__}")
                if x not in index:
                    raise ValueError(f"pairs[{i}]: unknown node {x!r}")
                if x in where:
                    raise ValueError(f"pairs[{i}]: node {x!r} is already in pairs[{where[x]}]")
            if a == b:
                raise ValueError(f"pairs[{i}]: a node cannot be its own partner ({a!r})")
            where[a] = where[b] = i
            partner[index[a]], partner[index[b]] = index[b], index[a]
            out.append((str(a), str(b)))
        missing = [nm for nm in self._nodes if nm not in where]
        if missing:
            raise ValueError(
                f"pairs: node {missing[0]!r} has no partner; every node must be in exactly one "
                "pair"
            )
        self._pairs = tuple(out)
        self._partner = _readonly(partner)

    @property
    def pairs(self) -> tuple[tuple[str, str], ...] | None:
        """The dual-machine pairs as given, or None."""
        return self._pairs

    def partner(self, node: str) -> str:
        """The fixed partner of ``node`` (rings built with ``pairs=``)."""
        if self._partner is None:
            raise ValueError("partner: this ring has no pairs")
        if node not in self._nodes:
            raise ValueError(f"node: {node!r} is not on the ring")
        return self._nodes[int(self._partner[self._nodes.index(node)])]

    def add_pair(self, a: str, b: str, *, weights: Mapping[str, float] | None = None,
                 zones: Mapping[str, str] | None = None) -> Ring:
        """A new ring with the pair ``(a, b)`` added (rings built with ``pairs=``).

        ``weights`` (default 1.0) and ``zones`` (required when the ring has zones) are
        mappings for the two new nodes.
        """
        if self._pairs is None:
            raise ValueError("add_pair: this ring has no pairs; use add(node)")
        new_weights = {**self.weights, **{nm: 1.0 for nm in (a, b)}, **(weights or {})}
        new_zones = self.zones
        if new_zones is not None:
            if zones is None or a not in zones or b not in zones:
                raise ValueError(f"zones: this ring has zones; give the zones of {a!r} and {b!r}")
            new_zones.update({a: zones[a], b: zones[b]})
        elif zones is not None:
            raise ValueError("zones: this ring has no zones")
        for nm in (a, b):
            if nm in self._nodes:
                raise ValueError(f"node: {nm!r} is already on the ring")
        return Ring(list(self._nodes) + [a, b], weights=new_weights, zones=new_zones,
                    vnodes=self._vnodes, pairs=list(self._pairs) + [(a, b)])

    def remove_pair(self, node: str) -> Ring:
        """A new ring without ``node`` and its partner."""
        other = self.partner(node)
        if len(self._nodes) == 2:
            raise ValueError("node: cannot remove the last pair")
        gone = {node, other}
        names = [nm for nm in self._nodes if nm not in gone]
        weights = {nm: w for nm, w in self.weights.items() if nm not in gone}
        zones = self.zones
        if zones is not None:
            zones = {nm: z for nm, z in zones.items() if nm not in gone}
        assert self._pairs is not None
        pairs = [p for p in self._pairs if p[0] not in gone]
        return Ring(names, weights=weights, zones=zones, vnodes=self._vnodes, pairs=pairs)

    @property
    def vnodes(self) -> int:
        """Points per node of average weight."""
        return self._vnodes

    @property
    def zones(self) -> dict[str, str] | None:
        """Zone of each node, or None."""
        return None if self._zones is None else dict(self._zones)

    def __repr__(self) -> str:
        z = f", zones={self._nzones}" if self._zones else ""
        p = f", pairs={len(self._pairs)}" if self._pairs else ""
        return (f"Ring({len(self._nodes)} nodes, vnodes={self._vnodes}, points={self.npoints}"
                f"{z}{p})")

    @classmethod
    def ketama(
        cls,
        nodes: Sequence[str] | Mapping[str, int],
        *,
        weights: Mapping[str, int] | None = None,
        compat: str = "libketama",
    ) -> KetamaRing:
        """A libketama-compatible ring: see :class:`KetamaRing`.

        Examples
        --------
        >>> from ringguard import Ring
        >>> r = Ring.ketama({"127.0.0.1:11211": 600, "127.0.0.1:11212": 400})
        >>> [r.node_for(k) for k in ("foo", "bar")]
        ['127.0.0.1:11211', '127.0.0.1:11212']
        """
        return KetamaRing(nodes, weights=weights, compat=compat)

    def add(self, node: str, weight: float = 1.0, zone: str | None = None) -> Ring:
        """A new ring with ``node`` added (this one is unchanged).

        With equal weights only keys that move to the new node change owner.
        """
        if node in self._nodes:
            raise ValueError(f"node: {node!r} is already on the ring")
        if self._pairs is not None:
            raise ValueError(
                "node: this ring has pairs, so nodes join two at a time: use add_pair(a, b)"
            )
        zones = self.zones
        if zones is None:
            if zone is not None:
                raise ValueError("zone: this ring has no zones")
        else:
            if zone is None:
                raise ValueError(f"zone: this ring has zones; give the zone of {node!r}")
            zones[node] = zone
        weights = {**self.weights, node: weight}
        return Ring(list(self._nodes) + [node], weights=weights, zones=zones, vnodes=self._vnodes)

    def remove(self, node: str) -> Ring:
        """A new ring without ``node``; only the keys it owned move."""
        if node not in self._nodes:
            raise ValueError(f"node: {node!r} is not on the ring")
        if len(self._nodes) == 1:
            raise ValueError("node: cannot remove the last node")
        if self._pairs is not None:
            raise ValueError(
                f"node: this ring has pairs, so {node!r} cannot leave its partner alone: use "
                "remove_pair(node) (both leave) or build a new Ring with the pairs you want"
            )
        names = [n for n in self._nodes if n != node]
        weights = {n: w for n, w in self.weights.items() if n != node}
        zones = self.zones
        if zones is not None:
            del zones[node]
        return Ring(names, weights=weights, zones=zones, vnodes=self._vnodes)

    def _body(self) -> dict[str, Any]:
        zones = self._zones
        body: dict[str, Any] = {
            "vnodes": self._vnodes,
            "nodes": [
                {"name": nm, "weight": w, "zone": None if zones is None else zones[nm]}
                for nm, w in zip(self._nodes, self._weights, strict=True)
            ],
        }
        if self._pairs is not None:  # only then: documents of rings without pairs unchanged
            body["pairs"] = [list(p) for p in self._pairs]
        return body



class KetamaRing(Ring):
    """libketama-compatible ring (``ketama-md5@1``), byte for byte.

    ``compat="libketama"``: float32 weight maths (``floorf(pct * 40.0 * n)`` digests per
    node), 4 little-endian points per MD5 digest of ``f"{name}-{k}"``, a key goes to the
    first point >= its hash. ``compat="uhashring"``: integer weight maths
    ``(40 * n * w) // sum(w)`` and the first point > the hash, as the ``uhashring`` package
    does. Integer keys hash as ``str(key)``, as libketama clients do.

    Use :meth:`Ring.ketama` to build one.
    """

    algorithm: ClassVar[str] = "ketama-md5@1"
    _ketama: ClassVar[bool] = True
    __slots__ = ("_compat",)

    def __init__(
        self,
        nodes: Sequence[str] | Mapping[str, int],
        *,
        weights: Mapping[str, int] | None = None,
        compat: str = "libketama",
    ) -> None:
        if compat not in ("libketama", "uhashring"):
            raise ValueError(f"compat: expected 'libketama' or 'uhashring', got {compat!r}")
        names, given = _parse_nodes(nodes, weights)
        ws = [_int_weight(nm, given.get(nm, 1)) for nm in names]
        self._nodes = tuple(names)
        self._weights = tuple(ws)
        self._compat = compat
        self._vnodes = 160
        self._zones, self._zone_of, self._nzones = None, None, 0
        self._pairs, self._partner = None, None
        n, total = len(ws), sum(ws)
        if compat == "libketama":
            self._mode = core.MODE_KETAMA_GE
            ks = [self._libketama_ks(w, total, n) for w in ws]
        else:
            self._mode = core.MODE_KETAMA_GT
            ks = [(40 * n * w) // total for w in ws]
        labels = [f"{nm}-{k}" for nm, c in zip(names, ks, strict=True) for k in range(c)]
        data, offsets = _hash_labels(labels)
        raw = np.empty(4 * len(labels), dtype=np.uint32)
        core.ketama_points(data, offsets, raw)
        owners = np.repeat(np.arange(n, dtype=np.int32), 4 * np.asarray(ks, dtype=np.int64))
        if compat == "libketama":
            order = np.lexsort((_name_ranks(names)[owners], raw))
            values, owners = raw[order], owners[order]
        else:
            order = np.argsort(raw, kind="stable")
            values, owners = raw[order], owners[order]
            if len(values):
                # uhashring keeps one owner per point value: the node inserted last.
                starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
                run_owner = np.maximum.reduceat(owners, starts)
                owners = np.repeat(run_owner, np.diff(np.r_[starts, len(values)])).astype(np.int32)
        self._set_points(values.astype(np.uint64) << np.uint64(32), owners)

    @staticmethod
    def _libketama_ks(w: int, total: int, n: int) -> int:
        pct = np.float32(np.float32(w) / np.float32(total))
        return int(math.floor(np.float32(float(pct) * 40.0 * float(n))))

    @property
    def compat(self) -> str:
        """``"libketama"`` or ``"uhashring"``."""
        return self._compat

    def __repr__(self) -> str:
        return (
            f"KetamaRing({len(self._nodes)} nodes, compat={self._compat!r}, points={self.npoints})"
        )

    def add(self, node: str, weight: float = 1, zone: str | None = None) -> KetamaRing:
        """A new ketama ring with ``node`` (weight: an int >= 1) added."""
        if node in self._nodes:
            raise ValueError(f"node: {node!r} is already on the ring")
        if zone is not None:
            raise ValueError("zone: ketama rings have no zones")
        weights: dict[str, Any] = {**self.weights, node: weight}
        return KetamaRing(list(self._nodes) + [node], weights=weights, compat=self._compat)

    def remove(self, node: str) -> KetamaRing:
        """A new ketama ring without ``node``."""
        if node not in self._nodes:
            raise ValueError(f"node: {node!r} is not on the ring")
        if len(self._nodes) == 1:
            raise ValueError("node: cannot remove the last node")
        return KetamaRing(
            [n for n in self._nodes if n != node],
            weights={n: w for n, w in self.weights.items() if n != node},
            compat=self._compat,
        )

    def _body(self) -> dict[str, Any]:
        return {
            "compat": self._compat,
            "nodes": [
                {"name": nm, "weight": w} for nm, w in zip(self._nodes, self._weights, strict=True)
            ],
        }


def _expect_name_and_weight(node: dict[str, Any], i: int) -> None:
    if not isinstance(node["name"], str):
        raise InvalidPlacementError(f"nodes[{i}].name: expected a string")
    w = node["weight"]
    if isinstance(w, bool) or not isinstance(w, (int, float)):
        raise InvalidPlacementError(f"nodes[{i}].weight: expected a number")
    if "zone" in node and node["zone"] is not None and not isinstance(node["zone"], str):
        raise InvalidPlacementError(f"nodes[{i}].zone: expected a string or null")


def _load_ring(doc: dict[str, Any]) -> Ring:
    fields = {"format", "version", "algorithm", "vnodes", "nodes"}
    expect_keys(doc, fields | ({"pairs"} & set(doc)), "ring-xxh64@1")
    pairs = None
    if "pairs" in doc:
        raw = doc["pairs"]
        if not isinstance(raw, list) or not raw or len(raw) > MAX_NODES:
            raise InvalidPlacementError("pairs: expected a non-empty list of [a, b] name pairs")
        for i, p in enumerate(raw):
            if not isinstance(p, list) or len(p) != 2 or not all(isinstance(x, str) for x in p):
                raise InvalidPlacementError(f"pairs[{i}]: expected [a, b] with two node names")
        pairs = [(p[0], p[1]) for p in raw]
    names, weights, zones = [], {}, {}
    for i, node in enumerate(expect_node_list(doc["nodes"])):
        if not isinstance(node, dict):
            raise InvalidPlacementError(f"nodes[{i}]: expected an object")
        expect_keys(node, {"name", "weight", "zone"}, f"nodes[{i}]")
        _expect_name_and_weight(node, i)
        names.append(node["name"])
        weights[node["name"]] = node["weight"]
        zones[node["name"]] = node["zone"]
    zone_values = list(zones.values())
    if all(z is None for z in zone_values):
        zmap = None
    elif any(z is None for z in zone_values):
        raise InvalidPlacementError("nodes: either every node has a zone or none has")
    else:
        zmap = zones
    vnodes = doc["vnodes"]
    if type(vnodes) is not int:
        raise InvalidPlacementError("vnodes: expected an integer")
    try:
        return Ring(names, weights=weights, zones=zmap, vnodes=vnodes, pairs=pairs)
    except (TypeError, ValueError) as exc:
        raise InvalidPlacementError(f"ring-xxh64@1: {exc}") from None


def _load_ketama(doc: dict[str, Any]) -> KetamaRing:
    expect_keys(doc, {"format", "version", "algorithm", "compat", "nodes"}, "ketama-md5@1")
    names, weights = [], {}
    for i, node in enumerate(expect_node_list(doc["nodes"])):
        if not isinstance(node, dict):
            raise InvalidPlacementError(f"nodes[{i}]: expected an object")
        expect_keys(node, {"name", "weight"}, f"nodes[{i}]")
        _expect_name_and_weight(node, i)
        names.append(node["name"])
        weights[node["name"]] = node["weight"]
    try:
        return KetamaRing(names, weights=weights, compat=doc["compat"])
    except (TypeError, ValueError) as exc:
        raise InvalidPlacementError(f"ketama-md5@1: {exc}") from None


register(Ring.algorithm, _load_ring)
register(KetamaRing.algorithm, _load_ketama)
