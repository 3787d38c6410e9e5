"""Weighted rendezvous (highest random weight) hashing.

Every node scores every key; the key goes to the highest score and the preference list is
the nodes by falling score. Scores use a platform-independent ln written from + - * /
(no libm), so placement is bit-identical everywhere. Section 7 of
``docs/placement-contract.md`` is the exact rule.
"""

from __future__ import annotations

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

__all__ = ["Rendezvous"]


class Rendezvous(HashedPlacement):
    """Weighted rendezvous / highest-random-weight hashing (``rendezvous-xxh64@1``).

    For key hash ``k`` and node hash ``x = XXH64(name)``: ``h = XXH64(LE(k) || LE(x))``,
    ``u = ((h >> 12) + 0.5) / 2**52`` and score ``-w / ln(u)``; highest score wins, equal
    scores go to the smaller name. With equal weights nodes are ranked by ``h >> 12``.
    Adding a node moves only keys onto it; removing one moves only its keys. Cost is
    O(nodes) per key, so prefer it for up to a few hundred nodes.

    Parameters
    ----------
    nodes
        Node names (a sequence), or a mapping ``{name: weight}``.
    weights
        Optional mapping ``{name: weight}`` (finite, > 0; default 1.0).

    Examples
    --------
    >>> from ringguard import Rendezvous
    >>> r = Rendezvous({"a": 1.0, "b": 2.0, "c": 1.0})
    >>> r.node_for("order:42") in r.nodes
    True
    >>> r.replicas(["k1", "k2"], 3).shape
    (2, 3)
    """

    algorithm: ClassVar[str] = "rendezvous-xxh64@1"
    __slots__ = ("_nodes", "_weights", "_lanes", "_w", "_ids", "__weakref__")

    def __init__(
        self,
        nodes: Sequence[str] | Mapping[str, float],
        *,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        names, given = _parse_nodes(nodes, weights)
        ws = [_float_weight(nm, given.get(nm, 1.0)) for nm in names]
        self._nodes = tuple(names)
        self._weights = tuple(ws)
        order = sorted(range(len(names)), key=names.__getitem__)
        node_hashes = np.array([core.xxh64(names[i].encode("utf-8"), 0) for i in order],
                               dtype=np.uint64)
        lanes = np.empty(len(names), dtype=np.uint64)
        core.hrw_node_lanes(node_hashes, lanes)
        self._lanes = _readonly(lanes)
        self._ids = _readonly(np.asarray(order, dtype=np.int32))
        equal = all(w == ws[0] for w in ws)
        self._w = None if equal else _readonly(np.array([ws[i] for i in order]))

    @property
    def weights(self) -> dict[str, float]:
        """Weight of each node, by name."""
        return dict(zip(self._nodes, self._weights, strict=True))

    def __repr__(self) -> str:
        kind = "equal weights" if self._w is None else "weighted"
        return f"Rendezvous({len(self._nodes)} nodes, {kind})"

    def _assign_part(self, part: KeyPart, out: np.ndarray) -> None:
        core.hrw_assign(self._lanes, self._w, self._ids, key_hashes(part), out)

    def _replicas_part(self, part: KeyPart, out: np.ndarray, n: int) -> None:
        core.hrw_replicas(self._lanes, self._w, self._ids, key_hashes(part), n, out)

    def add(self, node: str, weight: float = 1.0, zone: str | None = None) -> Rendezvous:
        """A new placement with ``node`` added; only keys that move to it change owner."""
        check_no_zone(zone, "Rendezvous")
        if node in self._nodes:
            raise ValueError(f"node: {node!r} is already in the placement")
        return Rendezvous(list(self._nodes) + [node], weights={**self.weights, node: weight})

    def remove(self, node: str) -> Rendezvous:
        """A new placement without ``node``; only its keys move."""
        if node not in self._nodes:
            raise ValueError(f"node: {node!r} is not in the placement")
        if len(self._nodes) == 1:
            raise ValueError("node: cannot remove the last node")
        return Rendezvous([n for n in self._nodes if n != node],
                          weights={n: w for n, w in self.weights.items() if n != node})

    def _body(self) -> dict[str, Any]:
        pairs = zip(self._nodes, self._weights, strict=True)
        return {"nodes": [{"name": nm, "weight": w} for nm, w in pairs]}



def _load(doc: dict[str, Any]) -> Rendezvous:
    where = Rendezvous.algorithm
    expect_keys(doc, {"format", "version", "algorithm", "nodes"}, where)
    nodes = load_named_nodes(doc, {"name", "weight"}, where)
    try:
        return Rendezvous([nd["name"] for nd in nodes],
                          weights={nd["name"]: nd["weight"] for nd in nodes})
    except (TypeError, ValueError) as exc:
        raise InvalidPlacementError(f"{where}: {exc}") from None


register(Rendezvous.algorithm, _load)
