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
from .._keys import KeyPart, normalize
from ..errors import InvalidPlacementError
from ._common import (
    _SCALAR_KEY,
    _check_out,
    _float_weight,
    _parse_nodes,
    _readonly,
)
from .base import (
    check_threads,
    envelope,
    expect_keys,
    expect_node_list,
    from_json,
    register,
    run_tasks,
    split_work,
)

__all__ = ["Ring", "KetamaRing"]

_MAX_POINTS = 2**31 - 1
def _int_weight(name: str, w: Any) -> int:
    if isinstance(w, bool) or not isinstance(w, numbers.Integral):
        raise TypeError(f"weights[{name!r}]: ketama weights must be int, got {type(w).__name__}")
    if w < 1:
        raise ValueError(f"weights[{name!r}]: must be >= 1, got {w!r}")
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
    bits = min(20, max(16, npoints.bit_length() + 2))
    bounds = np.arange(1 << bits, dtype=np.uint64) << np.uint64(64 - bits)
    start = np.empty((1 << bits) + 1, dtype=np.uint32)
    start[:-1] = np.searchsorted(points, bounds, side="left")
    start[-1] = npoints
    empty = start[:-1] == start[1:]
    direct = np.where(empty, owners[start[:-1] % npoints], -1).astype(np.int32)
    return core.CoreRing(points, owners, _readonly(start), _readonly(direct), bits)


class _RingBase:
    """Lookups, replicas and serialization shared by the ring placements."""

    algorithm: ClassVar[str]
    _ketama: ClassVar[bool]
    _mode: int
    _nodes: tuple[str, ...]
    _zone_of: np.ndarray | None
    _nzones: int

    __slots__ = ("_nodes", "_weights", "_mode", "_index", "_zone_of", "_nzones", "_zones",
                 "__weakref__")

    def _set_points(self, values: np.ndarray, owners: np.ndarray) -> None:
        if len(values) == 0:
            raise ValueError("nodes: the configuration gives the ring no points")
        if len(values) > _MAX_POINTS:
            raise ValueError(f"nodes: {len(values)} points exceed the limit of {_MAX_POINTS}")
        self._index = _build_index(_readonly(values), _readonly(owners))

    # ---- public read-only state -------------------------------------------------------

    @property
    def nodes(self) -> tuple[str, ...]:
        """Node names; batch calls return indices into this tuple."""
        return self._nodes

    @property
    def weights(self) -> dict[str, Any]:
        """Weight of each node, by name."""
        return dict(zip(self._nodes, self._weights))

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
        batch = normalize(keys, ketama=self._ketama)
        out = _check_out(out, (batch.n,))
        tasks = []
        pos = 0
        for part in batch.parts:
            for a, b in split_work(part.n, nthreads):
                tasks.append(partial(self._kernel, part.slice(a, b), out[pos + a : pos + b],
                                     want_index))
            pos += part.n
        run_tasks(tasks)
        return out

    def assign(self, keys: Any, *, threads: int | None = None, out: Any = None) -> np.ndarray:
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

        Returns
        -------
        numpy.ndarray
            int32 indices into :attr:`nodes`, one per key.

        Examples
        --------
        >>> from ringguard import Ring
        >>> ring = Ring(["a", "b", "c"])
        >>> ring.assign(["order:1", "order:2"]).tolist()  # doctest: +SKIP
        [2, 0]
        """
        return self._lookup(keys, False, threads, out)

    def node_for(self, key: str | bytes | int) -> str:
        """Name of the node that owns one key.

        Examples
        --------
        >>> from ringguard import Ring
        >>> Ring(["a", "b"]).node_for("order:1") in ("a", "b")
        True
        """
        if isinstance(key, bool) or not isinstance(key, _SCALAR_KEY):
            raise TypeError(
                f"key: expected one str, bytes or int, got {type(key).__name__}; "
                "use assign() for batches"
            )
        return self._nodes[int(self._lookup(key, False, None, None)[0])]

    def replicas(
        self, keys: Any, n: int, *, threads: int | None = None, out: Any = None
    ) -> np.ndarray:
        """Preference list of ``n`` distinct nodes per key, primary first.

        Walks clockwise from the key's point (Dynamo style); with zones, nodes in distinct
        zones come first (Cassandra NetworkTopologyStrategy style).

        Returns
        -------
        numpy.ndarray
            int32 array of shape ``(len(keys), n)``; column 0 equals :meth:`assign`.

        Examples
        --------
        >>> from ringguard import Ring
        >>> Ring(["a", "b", "c"]).replicas(["k1", "k2"], 2).shape
        (2, 2)
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"n: expected an int, got {type(n).__name__}")
        owners = self._index.distinct_owners
        if not 1 <= n <= owners:
            raise ValueError(
                f"n: must be between 1 and the number of nodes that own keys ({owners}), got {n}"
            )
        n = int(n)
        nthreads = check_threads(threads)
        first = self._lookup(keys, True, nthreads, None)
        out = _check_out(out, (len(first), n))
        tasks = [
            partial(self._index.replicas, first[a:b], n, len(self._nodes), self._zone_of,
                    self._nzones, out[a:b])
            for a, b in split_work(len(first), nthreads)
        ]
        run_tasks(tasks)
        return out

    # ---- identity and serialization -----------------------------------------------------

    def _body(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self) -> str:
        """Versioned JSON document that :func:`ringguard.from_json` turns back into an
        equal placement (exact: weights round-trip bit for bit).

        Examples
        --------
        >>> from ringguard import Ring, from_json
        >>> r = Ring({"a": 1.0, "b": 2.5}, vnodes=100)
        >>> from_json(r.to_json()) == r
        True
        """
        return envelope(self.algorithm, self._body())

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (from_json, (self.to_json(),))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _RingBase)
        return self._body() == other._body()

    def __hash__(self) -> int:
        return hash(self.to_json())

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
        mean = math.fsum(ws) / len(ws)
        counts = [max(1, round(self._vnodes * w / mean)) for w in ws]
        if sum(counts) > _MAX_POINTS:
            raise ValueError("vnodes/weights: too many points on the ring")
        labels = [f"{nm}#{j}" for nm, c in zip(names, counts) for j in range(c)]
        data, offsets = _hash_labels(labels)
        values = np.empty(len(labels), dtype=np.uint64)
        core.hash_var(core.MODE_XXH64, data, offsets, values)
        counts_arr = np.asarray(counts, dtype=np.int64)
        owners = np.repeat(np.arange(len(names), dtype=np.int32), counts_arr)
        j = np.arange(len(labels), dtype=np.int64) - np.repeat(np.cumsum(counts_arr) - counts_arr, counts_arr)
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
        self._zone_of = _readonly(np.array([zindex[zmap[nm]] for nm in self._nodes],
                                           dtype=np.int32))
        self._nzones = len(names)

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
        return f"Ring({len(self._nodes)} nodes, vnodes={self._vnodes}, points={self.npoints}{z})"

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
        names = [n for n in self._nodes if n != node]
        weights = {n: w for n, w in self.weights.items() if n != node}
        zones = self.zones
        if zones is not None:
            del zones[node]
        return Ring(names, weights=weights, zones=zones, vnodes=self._vnodes)

    def _body(self) -> dict[str, Any]:
        zones = self._zones
        return {
            "vnodes": self._vnodes,
            "nodes": [
                {"name": nm, "weight": w, "zone": None if zones is None else zones[nm]}
                for nm, w in zip(self._nodes, self._weights)
            ],
        }

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any]) -> Ring:
        """Rebuild a ring from :meth:`to_json` output (validated as untrusted input)."""
        obj = from_json(text)
        if not isinstance(obj, cls):
            raise InvalidPlacementError(f"document holds a {type(obj).__name__}, not a {cls.__name__}")
        return obj


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
        n, total = len(ws), sum(ws)
        if compat == "libketama":
            self._mode = core.MODE_KETAMA_GE
            ks = [self._libketama_ks(w, total, n) for w in ws]
        else:
            self._mode = core.MODE_KETAMA_GT
            ks = [(40 * n * w) // total for w in ws]
        labels = [f"{nm}-{k}" for nm, c in zip(names, ks) for k in range(c)]
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
        return f"KetamaRing({len(self._nodes)} nodes, compat={self._compat!r}, points={self.npoints})"

    def add(self, node: str, weight: float = 1, zone: str | None = None) -> KetamaRing:
        """A new ketama ring with ``node`` (weight: an int >= 1) added."""
        if node in self._nodes:
            raise ValueError(f"node: {node!r} is already on the ring")
        if zone is not None:
            raise ValueError("zone: ketama rings have no zones")
        return KetamaRing(list(self._nodes) + [node], weights={**self.weights, node: weight},
                          compat=self._compat)

    def remove(self, node: str) -> KetamaRing:
        """A new ketama ring without ``node``."""
        if node not in self._nodes:
            raise ValueError(f"node: {node!r} is not on the ring")
        if len(self._nodes) == 1:
            raise ValueError("node: cannot remove the last node")
        return KetamaRing([n for n in self._nodes if n != node],
                          weights={n: w for n, w in self.weights.items() if n != node},
                          compat=self._compat)

    def _body(self) -> dict[str, Any]:
        return {
            "compat": self._compat,
            "nodes": [{"name": nm, "weight": w} for nm, w in zip(self._nodes, self._weights)],
        }


def _load_ring(doc: dict[str, Any]) -> Ring:
    expect_keys(doc, {"format", "version", "algorithm", "vnodes", "nodes"}, "ring-xxh64@1")
    names, weights, zones = [], {}, {}
    for i, node in enumerate(expect_node_list(doc["nodes"])):
        if not isinstance(node, dict):
            raise InvalidPlacementError(f"nodes[{i}]: expected an object")
        expect_keys(node, {"name", "weight", "zone"}, f"nodes[{i}]")
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
        return Ring(names, weights=weights, zones=zmap, vnodes=vnodes)
    except (TypeError, ValueError) as exc:
        raise InvalidPlacementError(f"ring-xxh64@1: {exc}") from None


def _load_ketama(doc: dict[str, Any]) -> KetamaRing:
    expect_keys(doc, {"format", "version", "algorithm", "compat", "nodes"}, "ketama-md5@1")
    names, weights = [], {}
    for i, node in enumerate(expect_node_list(doc["nodes"])):
        if not isinstance(node, dict):
            raise InvalidPlacementError(f"nodes[{i}]: expected an object")
        expect_keys(node, {"name", "weight"}, f"nodes[{i}]")
        names.append(node["name"])
        weights[node["name"]] = node["weight"]
    try:
        return KetamaRing(names, weights=weights, compat=doc["compat"])
    except (TypeError, ValueError) as exc:
        raise InvalidPlacementError(f"ketama-md5@1: {exc}") from None


register(Ring.algorithm, _load_ring)
register(KetamaRing.algorithm, _load_ketama)
