"""Maglev hashing (Eisenbud et al., NSDI 2016, section 3.4): a prime-sized lookup table.

Construction fills the table from each node's permutation (one GIL-free kernel call);
a lookup is then ``table[XXH64(key) % M]``, one fused C loop per key layout. The exact
rule, weights included, is section 9 of ``docs/placement-contract.md``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from .._backend import core
from .._keys import KeyPart
from ..errors import InvalidPlacementError
from ._common import (
    HashedPlacement,
    _float_weight,
    _parse_nodes,
    _readonly,
    check_no_zone,
    key_hashes,
    load_named_nodes,
)
from .base import expect_keys, register

__all__ = ["Maglev", "maglev_quotas"]

DEFAULT_TABLE_SIZE = 65537


def maglev_quotas(weights: Sequence[float], table_size: int) -> list[int]:
    """Entries each node may take (weights in node-name order; contract section 9).

    ``x_i = M * w_i / fsum(w)``, ``q_i = floor(x_i)``; the ``M - sum(q)`` remaining entries
    go one each to the nodes with the largest ``x_i - q_i`` (ties: name order); finally
    every quota is at least 1.
    """
    total = math.fsum(weights)
    xs = [table_size * w / total for w in weights]
    qs = [math.floor(x) for x in xs]
    rem = table_size - sum(qs)
    if rem > 0:
        by_frac = sorted(range(len(xs)), key=lambda i: (-(xs[i] - qs[i]), i))
        for i in by_frac[:rem]:
            qs[i] += 1
    return [max(1, q) for q in qs]


def _check_table_size(m: Any, nnodes: int) -> int:
    if isinstance(m, bool) or not isinstance(m, numbers.Integral):
        raise TypeError(f"table_size: expected an int, got {type(m).__name__}")
    m = int(m)
    if not 2 <= m <= core.MAGLEV_MAX_TABLE:
        raise ValueError(f"table_size: must be between 2 and {core.MAGLEV_MAX_TABLE}, got {m}")
    if not core.is_prime(m):
        raise ValueError(
            f"table_size: must be a prime number (Maglev's permutations need it), got {m}; "
            "e.g. 65537, 655373 or 5003"
        )
    if m < nnodes:
        raise ValueError(f"table_size: {m} is smaller than the number of nodes ({nnodes})")
    return m


class Maglev(HashedPlacement):
    """Maglev consistent hashing (``maglev-xxh64@1``).

    Node ``name`` has the permutation ``offset + j * skip (mod M)`` with
    ``offset = XXH64(name, 0) % M`` and ``skip = XXH64(name, 1) % (M - 1) + 1``; nodes take
    turns in name order, each claiming the next free entry of its permutation while it is
    below its weighted quota. A key goes to ``table[XXH64(key) % M]``. Lookups are O(1) and
    balance is near perfect, but adding or removing a node moves somewhat more keys than
    the minimum (a ring moves only the minimum).

    Parameters
    ----------
    nodes
        Node names (a sequence), or a mapping ``{name: weight}``.
    weights
        Optional mapping ``{name: weight}`` (finite, > 0; default 1.0).
    table_size
        Lookup table size M: a prime, at least the number of nodes (default 65537). Use
        M >= 100 x nodes for good balance.

    Examples
    --------
    >>> from ringguard import Maglev
    >>> m = Maglev(["a", "b", "c"], table_size=5003)
    >>> m.node_for("order:42") in m.nodes
    True
    >>> m.assign(["k1", "k2", "k3"]).dtype.name
    'int32'
    """

    algorithm: ClassVar[str] = "maglev-xxh64@1"
    __slots__ = ("_nodes", "_weights", "_m", "_index", "__weakref__")

    def __init__(
        self,
        nodes: Sequence[str] | Mapping[str, float],
        *,
        weights: Mapping[str, float] | None = None,
        table_size: int = DEFAULT_TABLE_SIZE,
    ) -> None:
        names, given = _parse_nodes(nodes, weights)
        m = _check_table_size(table_size, len(names))
        ws = [_float_weight(nm, given.get(nm, 1.0)) for nm in names]
        self._nodes = tuple(names)
        self._weights = tuple(ws)
        self._m = m
        order = sorted(range(len(names)), key=names.__getitem__)
        raw = [names[i].encode("utf-8") for i in order]
        offsets = np.array([core.xxh64(b, 0) % m for b in raw], dtype=np.uint64)
        skips = np.array([core.xxh64(b, 1) % (m - 1) + 1 for b in raw], dtype=np.uint64)
        quotas = np.array(maglev_quotas([ws[i] for i in order], m), dtype=np.int64)
        by_name = np.empty(m, dtype=np.int32)
        core.maglev_populate(offsets, skips, quotas, by_name)
        table = np.asarray(order, dtype=np.int32)[by_name]
        self._index = core.CoreMaglev(_readonly(table), len(names))

    @property
    def weights(self) -> dict[str, float]:
        """Weight of each node, by name."""
        return dict(zip(self._nodes, self._weights, strict=True))

    @property
    def table_size(self) -> int:
        """The lookup table size M (a prime)."""
        return self._m

    def table(self) -> np.ndarray:
        """The lookup table: node index of each of the M entries (read-only)."""
        return self._index.table

    def __repr__(self) -> str:
        return f"Maglev({len(self._nodes)} nodes, table_size={self._m})"

    def _assign_part(self, part: KeyPart, out: np.ndarray) -> None:
        idx = self._index
        if part.kind == "u64":
            idx.assign_u64(part.values, out)
        elif part.kind == "var":
            idx.assign_var(part.data, part.offsets, out)
        else:
            idx.assign_fixed(part.data, part.width, out)

    def _replicas_part(self, part: KeyPart, out: np.ndarray, n: int) -> None:
        self._index.replicas(key_hashes(part), n, out)

    def _max_replicas(self) -> int:
        return int(self._index.distinct_owners)

    def add(self, node: str, weight: float = 1.0, zone: str | None = None) -> Maglev:
        """A new Maglev with ``node`` added (same table size; this one is unchanged)."""
        check_no_zone(zone, "Maglev")
        if node in self._nodes:
            raise ValueError(f"node: {node!r} is already in the placement")
        return Maglev(list(self._nodes) + [node], weights={**self.weights, node: weight},
                      table_size=self._m)

    def remove(self, node: str) -> Maglev:
        """A new Maglev without ``node``."""
        if node not in self._nodes:
            raise ValueError(f"node: {node!r} is not in the placement")
        if len(self._nodes) == 1:
            raise ValueError("node: cannot remove the last node")
        return Maglev([n for n in self._nodes if n != node],
                      weights={n: w for n, w in self.weights.items() if n != node},
                      table_size=self._m)

    def _body(self) -> dict[str, Any]:
        return {
            "table_size": self._m,
            "nodes": [{"name": nm, "weight": w}
                      for nm, w in zip(self._nodes, self._weights, strict=True)],
        }



def _load(doc: dict[str, Any]) -> Maglev:
    where = Maglev.algorithm
    expect_keys(doc, {"format", "version", "algorithm", "table_size", "nodes"}, where)
    nodes = load_named_nodes(doc, {"name", "weight"}, where)
    if type(doc["table_size"]) is not int:
        raise InvalidPlacementError(f"{where}: table_size must be an integer")
    try:
        return Maglev([nd["name"] for nd in nodes],
                      weights={nd["name"]: nd["weight"] for nd in nodes},
                      table_size=doc["table_size"])
    except (TypeError, ValueError) as exc:
        raise InvalidPlacementError(f"{where}: {exc}") from None


register(Maglev.algorithm, _load)
