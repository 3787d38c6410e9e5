"""Redis Cluster placement: :func:`redis_slot` (CRC16 key slots) and :class:`RedisSlots`.

A Redis Cluster key lives in slot ``CRC16(key) mod 16384`` (CRC16-XMODEM: polynomial
0x1021, initial value 0, no reflection), where only the ``{hash tag}`` is hashed when the
key has one: the bytes between the first ``{`` and the first ``}`` after it, if there is at
least one byte between them; otherwise the whole key. Each slot belongs to one primary;
``CLUSTER SLOTS`` lists the ranges. See ``docs/placement-contract.md`` section 6.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from .._backend import core
from .._keys import KeyPart, normalize
from ..errors import InvalidPlacementError
from .base import (
    JsonPlacement,
    check_replica_count,
    check_threads,
    expect_keys,
    register,
    run_over_parts,
)

__all__ = ["REDIS_SLOTS", "RedisSlots", "redis_slot"]

REDIS_SLOTS = 16384
_LAST = REDIS_SLOTS - 1


def _slot_kernel(part: KeyPart, out: np.ndarray) -> None:
    if part.kind == "var":
        core.slots_var(part.data, part.offsets, out)
    elif part.kind == "fixed":
        core.slots_fixed(part.data, part.width, out)
    else:  # "dec": normalize(..., ketama=True) gives integer keys as decimal text
        core.slots_decimal(part.values, part.signed, out)


def _check_out(out: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    dt = np.dtype(dtype)
    if out is None:
        return np.empty(shape, dtype=dt)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a NumPy {dt} array, got {type(out).__name__}")
    if out.dtype != dt or out.shape != shape:
        raise ValueError(f"out: expected {dt} of shape {shape}, got {out.dtype} {out.shape}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out: must be C-contiguous and writeable")
    return out


def redis_slot(keys: Any, *, threads: int | None = None, out: Any = None) -> np.ndarray:
    """Redis Cluster hash slot of every key (what ``CLUSTER KEYSLOT`` answers).

    ``CRC16-XMODEM(key) & 16383`` over the key's bytes, or over its ``{hash tag}``: the
    bytes between the first ``{`` and the first ``}`` after it, when at least one byte lies
    between them (``"{user1000}.following"`` and ``"{user1000}.followers"`` share a slot;
    ``"{}x"`` and ``"x{}{y}"`` hash whole).

    Parameters
    ----------
    keys
        One key or a batch, by the key rule (README "Keys"): ``str`` is hashed as UTF-8,
        ``bytes`` as is. Integer keys are hashed as their **decimal text**, because that is
        the key a Redis client sends for ``SET 42 ...``: ``7`` and ``b"7"`` share a slot, an
        int64 array prints signed and a uint64 array unsigned (unlike :class:`Ring`, which
        hashes integers as 8 little-endian bytes).
    threads
        Split the batch over this many threads (GIL-free kernels); default 1.
    out
        Optional uint16 array of ``len(keys)`` to write into.

    Returns
    -------
    numpy.ndarray
        uint16 slots in ``0..16383``, one per key.

    Examples
    --------
    >>> from ringguard import redis_slot
    >>> redis_slot(["foo", "{user1000}.following", "{user1000}.followers"]).tolist()
    [12182, 3443, 3443]
    """
    nthreads = check_threads(threads)
    batch = normalize(keys, ketama=True)
    return run_over_parts(batch, nthreads, _check_out(out, (batch.n,), np.uint16), _slot_kernel)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _check_node_name(name: Any, where: str) -> str:
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    if not isinstance(name, str):
        raise TypeError(f"{where}: node names must be str, got {type(name).__name__}")
    if not name:
        raise ValueError(f"{where}: node names must be non-empty")
    return str(name)


def _check_slot(v: Any, where: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{where}: slot numbers must be int, got {type(v).__name__}")
    if not 0 <= v <= _LAST:
        raise ValueError(f"{where}: slot {v} is outside 0..{_LAST}")
    return int(v)


def _parse_ranges(slot_ranges: Any, nodes: Any) -> tuple[tuple[str, ...], np.ndarray]:
    """Validate ``[(start, end, node), ...]`` -> (node names, slot -> node index table)."""
    if isinstance(slot_ranges, (str, bytes)) or not isinstance(slot_ranges, (Sequence, np.ndarray)):
        raise TypeError(
            "slot_ranges: expected a sequence of (start, end, node) with inclusive slot "
            f"numbers, got {type(slot_ranges).__name__}"
        )
    names: list[str] = []
    index: dict[str, int] = {}
    if nodes is not None:
        if isinstance(nodes, (str, bytes)) or not isinstance(nodes, Sequence):
            raise TypeError("nodes: expected a sequence of node names")
        for i, nm in enumerate(nodes):
            nm = _check_node_name(nm, f"nodes[{i}]")
            if nm in index:
                raise ValueError(f"nodes[{i}]: duplicate node name {nm!r}")
            index[nm] = len(names)
            names.append(nm)
    parsed: list[tuple[int, int, int, int]] = []  # (start, end, node index, given position)
    for i, item in enumerate(slot_ranges):
        where = f"slot_ranges[{i}]"
        if isinstance(item, (str, bytes)) or not isinstance(item, (Sequence, np.ndarray)) \
                or len(item) != 3:
            raise TypeError(f"{where}: expected a (start, end, node) triple, got {item!r}")
        start = _check_slot(item[0], f"{where} start")
        end = _check_slot(item[1], f"{where} end")
        if end < start:
            raise ValueError(f"{where}: end {end} is before start {start}")
        nm = _check_node_name(item[2], f"{where} node")
        if nm not in index:
            if nodes is not None:
                raise ValueError(f"{where}: node {nm!r} is not in nodes")
            index[nm] = len(names)
            names.append(nm)
        parsed.append((start, end, index[nm], i))
    if not names:
        raise ValueError("slot_ranges: a placement needs at least one node")
    parsed.sort()
    table = np.empty(REDIS_SLOTS, dtype=np.int32)
    expect = 0
    prev: tuple[int, int, int, int] | None = None
    for start, end, node, i in parsed:
        if start < expect:
            assert prev is not None
            raise ValueError(
                f"slot_ranges[{i}] ({start}..{end}, {names[node]!r}) overlaps "
                f"slot_ranges[{prev[3]}] ({prev[0]}..{prev[1]}, {names[prev[2]]!r}) at slot "
                f"{start}; each slot must belong to exactly one node"
            )
        if start > expect:
            raise ValueError(
                f"slot_ranges: slots {expect}..{start - 1} are not covered; the ranges must "
                f"cover 0..{_LAST}"
            )
        table[start : end + 1] = node
        expect = end + 1
        prev = (start, end, node, i)
    if expect <= _LAST:
        raise ValueError(
            f"slot_ranges: slots {expect}..{_LAST} are not covered; the ranges must cover "
            f"0..{_LAST}"
        )
    return tuple(names), table


def _runs(table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of equal owners in slot order: (starts, ends, owners)."""
    change = np.flatnonzero(table[1:] != table[:-1]) + 1
    starts = np.r_[0, change]
    ends = np.r_[change - 1, _LAST]
    return starts, ends, table[starts]


class RedisSlots(JsonPlacement):
    """Redis Cluster placement (``redis-slots@1``): slot ranges owned by nodes.

    A key goes to the owner of its slot (:func:`redis_slot`), through a 16384-entry
    slot -> node table.

    Parameters
    ----------
    slot_ranges
        ``[(start, end, node), ...]`` with inclusive slot numbers, the shape of
        ``CLUSTER SLOTS``. Together the ranges must cover ``0..16383`` exactly once; gaps
        and overlaps raise ``ValueError`` naming them.
    nodes
        Optional node order (and nodes that own no slot yet). By default, nodes in order of
        first appearance in ``slot_ranges``.

    Notes
    -----
    :meth:`replicas` walks forward over the slots from the key's slot (16383 wraps to 0)
    and returns the first ``n`` distinct nodes met: the owner, then the owners of the next
    distinct slot ranges. Redis itself replicates each primary to its own replicas; this
    preference list is for placing extra copies across primaries (ringguard's failover and
    backup layers).

    :meth:`add` gives a new node ``16384 // (k + 1)`` slots (k nodes before), taking one
    slot at a time, the highest, from whichever node holds the most (ties: first in
    :attr:`nodes`): the fewest moved slots that give it a fair share, and the flattest
    result. :meth:`remove` hands each of the node's slots, in ascending order, to the node
    holding the fewest (ties: first in :attr:`nodes`); no other slot moves.

    Examples
    --------
    >>> from ringguard import RedisSlots
    >>> rs = RedisSlots([(0, 5460, "a:7000"), (5461, 10922, "b:7001"), (10923, 16383, "c:7002")])
    >>> rs.node_for("foo")  # slot 12182
    'c:7002'
    >>> RedisSlots.even(["a", "b", "c"]).slot_ranges[0]
    (0, 5460, 'a')
    """

    algorithm: ClassVar[str] = "redis-slots@1"
    __slots__ = ("_nodes", "_table", "_rep_cache", "_lock", "_owning", "__weakref__")

    def __init__(self, slot_ranges: Sequence[tuple[int, int, str]], *,
                 nodes: Sequence[str] | None = None) -> None:
        names, table = _parse_ranges(slot_ranges, nodes)
        self._init(names, table)

    def _init(self, names: tuple[str, ...], table: np.ndarray) -> None:
        self._nodes = names
        self._table = _readonly(table)
        self._owning = int(np.unique(table).shape[0])
        self._rep_cache: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    @classmethod
    def _from_table(cls, names: Sequence[str], table: np.ndarray) -> RedisSlots:
        self = cls.__new__(cls)
        self._init(tuple(names), table)
        return self

    # ---- constructors -------------------------------------------------------------------

    @classmethod
    def even(cls, nodes: Sequence[str]) -> RedisSlots:
        """Split the 16384 slots into contiguous, nearly equal ranges, in node order.

        Node ``i`` of ``k`` gets slots ``i*16384//k .. (i+1)*16384//k - 1``.

        Examples
        --------
        >>> from ringguard import RedisSlots
        >>> RedisSlots.even(["a", "b"]).slot_ranges
        ((0, 8191, 'a'), (8192, 16383, 'b'))
        """
        if isinstance(nodes, (str, bytes)) or not isinstance(nodes, Sequence):
            raise TypeError("nodes: expected a sequence of node names")
        k = len(nodes)
        if k == 0:
            raise ValueError("nodes: a placement needs at least one node")
        if k > REDIS_SLOTS:
            raise ValueError(f"nodes: at most {REDIS_SLOTS} nodes can own slots, got {k}")
        ranges = [(i * REDIS_SLOTS // k, (i + 1) * REDIS_SLOTS // k - 1, nodes[i])
                  for i in range(k)]
        return cls(ranges, nodes=list(nodes))

    @classmethod
    def from_cluster_slots(cls, reply: Any) -> RedisSlots:
        """Build from a ``CLUSTER SLOTS`` reply: primaries own the ranges.

        Accepts redis-py's parsed form (``{(start, end): {"primary": (host, port), ...}}``,
        from ``Redis.cluster("SLOTS")`` or ``RedisCluster.cluster_slots()``) and the raw
        RESP form (``[[start, end, [host, port, id, ...], [replica...], ...], ...]``). Node
        names are ``"host:port"`` of each primary.

        Examples
        --------
        >>> from ringguard import RedisSlots
        >>> raw = [[0, 16383, [b"127.0.0.1", 7000, b"id0"]]]
        >>> RedisSlots.from_cluster_slots(raw).nodes
        ('127.0.0.1:7000',)
        """
        def name(endpoint: Any) -> str:
            if isinstance(endpoint, Mapping):
                endpoint = (endpoint.get("host"), endpoint.get("port"))
            if not isinstance(endpoint, (Sequence, np.ndarray)) or len(endpoint) < 2:
                raise TypeError(f"reply: expected a (host, port, ...) endpoint, got {endpoint!r}")
            host, port = endpoint[0], endpoint[1]
            if isinstance(host, bytes):
                host = host.decode("utf-8")
            return f"{host}:{int(port)}"

        ranges: list[tuple[int, int, str]] = []
        if isinstance(reply, Mapping):
            for key, info in reply.items():
                if not isinstance(key, (tuple, list)) or len(key) != 2:
                    raise TypeError(f"reply: expected (start, end) keys, got {key!r}")
                primary = info.get("primary", info.get("master")) if isinstance(info, Mapping) \
                    else None
                if primary is None:
                    raise ValueError(f"reply: slots {key[0]}..{key[1]} have no primary")
                ranges.append((int(key[0]), int(key[1]), name(primary)))
        elif isinstance(reply, (list, tuple)):
            for i, entry in enumerate(reply):
                if not isinstance(entry, (list, tuple)) or len(entry) < 3:
                    raise TypeError(f"reply[{i}]: expected [start, end, primary, ...]")
                ranges.append((int(entry[0]), int(entry[1]), name(entry[2])))
        else:
            raise TypeError(f"reply: expected a CLUSTER SLOTS reply, got {type(reply).__name__}")
        return cls(ranges)

    # ---- read-only state ----------------------------------------------------------------

    @property
    def nodes(self) -> tuple[str, ...]:
        """Node names; batch calls return indices into this tuple."""
        return self._nodes

    @property
    def slot_table(self) -> np.ndarray:
        """Read-only int32 array of 16384 entries: the node index owning each slot."""
        return self._table

    @property
    def slot_ranges(self) -> tuple[tuple[int, int, str], ...]:
        """Maximal ``(start, end, node)`` ranges in slot order (adjacent ranges of one node
        merged)."""
        starts, ends, owners = _runs(self._table)
        triples = zip(starts.tolist(), ends.tolist(), owners.tolist(), strict=True)
        return tuple((int(s), int(e), self._nodes[o]) for s, e, o in triples)

    def slot_counts(self) -> dict[str, int]:
        """Number of slots of each node."""
        counts = np.bincount(self._table, minlength=len(self._nodes))
        return dict(zip(self._nodes, counts.tolist(), strict=True))

    def __len__(self) -> int:
        return len(self._nodes)

    def __repr__(self) -> str:
        return f"RedisSlots({len(self._nodes)} nodes, {len(_runs(self._table)[0])} ranges)"

    # ---- lookups ------------------------------------------------------------------------

    def slots(self, keys: Any, *, threads: int | None = None) -> np.ndarray:
        """Slot of every key: the same as :func:`redis_slot`."""
        return redis_slot(keys, threads=threads)

    def assign(self, keys: Any, *, threads: int | None = None, out: Any = None) -> np.ndarray:
        """Node index of every key: the owner of its slot.

        Examples
        --------
        >>> from ringguard import RedisSlots
        >>> RedisSlots.even(["a", "b"]).assign(["foo", "bar"]).tolist()  # slots 12182, 5061
        [1, 0]
        """
        slots = redis_slot(keys, threads=threads)
        out = _check_out(out, slots.shape, np.int32)
        core.slot_nodes(slots, self._table, out)
        return out


    def _replica_table(self, n: int) -> np.ndarray:
        """(16384, n) table: the first n distinct owners walking forward from each slot."""
        cached = self._rep_cache.get(n)
        if cached is not None:
            return cached
        starts, ends, owners = _runs(self._table)
        own = owners.tolist()
        r = len(own)
        # Backwards over two turns of the runs: the walk from run i is own[i] followed by
        # the walk from run i + 1, so its first n distinct nodes are own[i] and the first
        # n - 1 of those of run i + 1 that differ from it. Rows of the first turn see a
        # whole turn ahead of them, so they are exact.
        rows: list[list[int]] = [[]] * r
        nxt: list[int] = []
        for i in range(2 * r - 1, -1, -1):
            o = own[i % r]
            row = [o]
            for x in nxt:
                if len(row) == n:
                    break
                if x != o:
                    row.append(x)
            nxt = row
            if i < r:
                rows[i] = row
        per_run = np.array(rows, dtype=np.int32).reshape(r, n)
        run_of_slot = np.repeat(np.arange(r), ends - starts + 1)
        table = _readonly(np.ascontiguousarray(per_run[run_of_slot]))
        with self._lock:
            self._rep_cache[n] = table
        return table

    def replicas(
        self, keys: Any, n: int, *, threads: int | None = None, out: Any = None
    ) -> np.ndarray:
        """Preference list of ``n`` distinct nodes per key, primary first.

        Walks forward over the slots from the key's slot (16383 wraps to 0): the slot's
        owner, then the owners of the next distinct slot ranges.

        Returns
        -------
        numpy.ndarray
            int32 array of shape ``(len(keys), n)``; column 0 equals :meth:`assign`.

        Examples
        --------
        >>> from ringguard import RedisSlots
        >>> RedisSlots.even(["a", "b", "c"]).replicas(["foo"], 2).tolist()  # slot 12182
        [[2, 0]]
        """
        n = check_replica_count(n, self._owning)
        slots = redis_slot(keys, threads=threads)
        out = _check_out(out, (len(slots), n), np.int32)
        np.take(self._replica_table(n), slots, axis=0, out=out)
        return out

    # ---- membership changes -------------------------------------------------------------

    def add(self, node: str, weight: float = 1.0, zone: str | None = None) -> RedisSlots:
        """A new placement with ``node`` added; it takes ``16384 // (k + 1)`` slots.

        Slots move one at a time, each the highest slot of the node that holds the most
        (ties: first in :attr:`nodes`), so no other slot moves and the result is as flat as
        possible. Weights and zones are not part of Redis Cluster slots: ``weight`` must be
        1 and ``zone`` None. To choose the ranges yourself, build a new
        ``RedisSlots(slot_ranges)``.

        Examples
        --------
        >>> from ringguard import RedisSlots
        >>> RedisSlots.even(["a", "b"]).add("c").slot_counts()
        {'a': 5461, 'b': 5462, 'c': 5461}
        """
        name = _check_node_name(node, "node")
        if name in self._nodes:
            raise ValueError(f"node: {name!r} is already a node")
        if weight != 1 or isinstance(weight, bool):
            raise ValueError(
                "weight: RedisSlots has no weights (a node's share is its slot count); "
                "build RedisSlots(slot_ranges) with the ranges you want"
            )
        if zone is not None:
            raise ValueError("zone: RedisSlots has no zones")
        k = len(self._nodes)
        if k >= REDIS_SLOTS:
            raise ValueError(f"node: at most {REDIS_SLOTS} nodes can own slots")
        table = self._table.copy()
        new = k
        slots_of = [np.flatnonzero(table == i).tolist() for i in range(k)]
        heap = [(-len(s), i) for i, s in enumerate(slots_of)]
        heapq.heapify(heap)
        for _ in range(REDIS_SLOTS // (k + 1)):
            neg, i = heapq.heappop(heap)
            table[slots_of[i].pop()] = new
            heapq.heappush(heap, (neg + 1, i))
        return RedisSlots._from_table(self._nodes + (name,), table)

    def remove(self, node: str) -> RedisSlots:
        """A new placement without ``node``; only its slots move.

        Each of its slots, in ascending order, goes to the node holding the fewest slots
        (ties: first in :attr:`nodes`).

        Examples
        --------
        >>> from ringguard import RedisSlots
        >>> RedisSlots.even(["a", "b", "c"]).remove("b").slot_counts()
        {'a': 8192, 'c': 8192}
        """
        if not isinstance(node, str) or node not in self._nodes:
            raise ValueError(f"node: {node!r} is not a node")
        if len(self._nodes) == 1:
            raise ValueError(f"node: cannot remove {node!r}, the last node")
        gone = self._nodes.index(node)
        keep = [i for i in range(len(self._nodes)) if i != gone]
        remap = np.full(len(self._nodes), -1, dtype=np.int32)
        remap[keep] = np.arange(len(keep), dtype=np.int32)
        table = self._table.copy()
        counts = np.bincount(table, minlength=len(self._nodes))
        heap = [(int(counts[i]), int(remap[i])) for i in keep]
        heapq.heapify(heap)
        moved = np.flatnonzero(table == gone)
        table = remap[table]
        for s in moved.tolist():
            c, j = heapq.heappop(heap)
            table[s] = j
            heapq.heappush(heap, (c + 1, j))
        return RedisSlots._from_table(tuple(self._nodes[i] for i in keep), table)

    # ---- serialization ------------------------------------------------------------------

    def _body(self) -> dict[str, Any]:
        return {"nodes": list(self._nodes),
                "ranges": [list(r) for r in self.slot_ranges]}


def _load_redis_slots(doc: dict[str, Any]) -> RedisSlots:
    expect_keys(doc, {"format", "version", "algorithm", "nodes", "ranges"}, "redis-slots@1")
    nodes, ranges = doc["nodes"], doc["ranges"]
    if not isinstance(nodes, list) or not nodes or len(nodes) > REDIS_SLOTS:
        raise InvalidPlacementError(
            f"redis-slots@1: 'nodes' must be a non-empty list of at most {REDIS_SLOTS}")
    if not isinstance(ranges, list) or len(ranges) > REDIS_SLOTS:
        raise InvalidPlacementError(
            f"redis-slots@1: 'ranges' must be a list of at most {REDIS_SLOTS} ranges")
    for i, r in enumerate(ranges):
        if not isinstance(r, list) or len(r) != 3 or type(r[0]) is not int \
                or type(r[1]) is not int or not isinstance(r[2], str):
            raise InvalidPlacementError(f"ranges[{i}]: expected [start, end, node name]")
    try:
        return RedisSlots([tuple(r) for r in ranges], nodes=nodes)
    except (TypeError, ValueError) as exc:
        raise InvalidPlacementError(f"redis-slots@1: {exc}") from None


register(RedisSlots.algorithm, _load_redis_slots)
