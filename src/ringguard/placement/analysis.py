"""Balance and movement of a placement over a batch of keys (batch calls, no loops)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import Placement

__all__ = ["LoadReport", "Movement", "load", "movement"]


@dataclass(frozen=True)
class LoadReport:
    """Keys per node for one batch.

    Attributes
    ----------
    nodes : tuple of str
        Node names, in the placement's order.
    counts : numpy.ndarray
        int64 keys per node.
    mean, max : float, int
        Mean and maximum of ``counts``.
    max_over_mean : float
        ``max / mean`` (1.0 is perfect balance for equal weights; 0.0 for an empty batch).
    expected : numpy.ndarray
        float64 fair share of each node: ``len(keys) * w_i / sum(w)`` (equal shares when the
        placement has no weights).
    max_over_expected : float
        ``max(counts / expected)``: the balance measure that accounts for weights.
    """

    nodes: tuple[str, ...]
    counts: np.ndarray
    mean: float
    max: int
    max_over_mean: float
    expected: np.ndarray
    max_over_expected: float

    def as_dict(self) -> dict[str, int]:
        """``{node: count}``."""
        return dict(zip(self.nodes, self.counts.tolist(), strict=True))


def load(placement: Placement, keys: Any, *, threads: int | None = None) -> LoadReport:
    """Count keys per node.

    Examples
    --------
    >>> import numpy as np
    >>> from ringguard import Ring, load
    >>> rep = load(Ring(["a", "b", "c", "d"]), np.arange(100_000, dtype=np.uint64))
    >>> int(rep.counts.sum()), rep.max_over_mean < 1.3
    (100000, True)
    """
    idx = placement.assign(keys, threads=threads)
    counts = np.bincount(idx, minlength=len(placement.nodes)).astype(np.int64)
    mean = float(counts.mean())
    mx = int(counts.max())
    weights = getattr(placement, "weights", None)
    if isinstance(weights, dict) and len(weights) == len(placement.nodes):
        w = np.array([float(weights[name]) for name in placement.nodes])
    else:
        w = np.ones(len(placement.nodes))
    expected = len(idx) * w / w.sum()
    ratio = float((counts / expected).max()) if len(idx) else 0.0
    return LoadReport(tuple(placement.nodes), counts, mean, mx, mx / mean if mean else 0.0,
                      expected, ratio)


@dataclass(frozen=True)
class Movement:
    """Which keys change owner between two placements.

    Attributes
    ----------
    moved : numpy.ndarray
        bool per key: True where the owning node (by name) differs.
    count, fraction : int, float
        Number and fraction of keys that move.
    matrix : numpy.ndarray
        int64 ``(len(old_nodes), len(new_nodes))``: keys from old node i to new node j
        (the diagonal by name holds the keys that stay).
    old_nodes, new_nodes : tuple of str
        Row and column labels of ``matrix``.
    """

    moved: np.ndarray
    count: int
    fraction: float
    matrix: np.ndarray
    old_nodes: tuple[str, ...]
    new_nodes: tuple[str, ...]

    def flows(self) -> list[tuple[str, str, int]]:
        """Non-empty ``(from, to, keys)`` flows between different nodes, largest first."""
        out = []
        for i, j in zip(*np.nonzero(self.matrix), strict=True):
            a, b = self.old_nodes[i], self.new_nodes[j]
            if a != b:
                out.append((a, b, int(self.matrix[i, j])))
        return sorted(out, key=lambda t: (-t[2], t[0], t[1]))


def movement(old: Placement, new: Placement, keys: Any, *, threads: int | None = None) -> Movement:
    """Compare where ``keys`` live under ``old`` and ``new`` placements.

    Nodes are matched by name, so the two placements may list nodes in any order.

    Examples
    --------
    >>> import numpy as np
    >>> from ringguard import Ring, movement
    >>> old = Ring(["a", "b", "c"])
    >>> mv = movement(old, old.add("d"), np.arange(100_000, dtype=np.uint64))
    >>> [to for _, to, _ in mv.flows()] == ["d", "d", "d"]
    True
    """
    a = np.asarray(old.assign(keys, threads=threads), dtype=np.int64)
    b = np.asarray(new.assign(keys, threads=threads), dtype=np.int64)
    old_nodes, new_nodes = tuple(old.nodes), tuple(new.nodes)
    pos = {name: j for j, name in enumerate(new_nodes)}
    same = np.array([pos.get(name, -1) for name in old_nodes], dtype=np.int64)
    moved = same[a] != b if len(a) else np.zeros(0, dtype=bool)
    nn = len(new_nodes)
    matrix = np.bincount(a * nn + b, minlength=len(old_nodes) * nn).reshape(len(old_nodes), nn)
    count = int(moved.sum())
    return Movement(moved, count, count / len(a) if len(a) else 0.0, matrix.astype(np.int64),
                    old_nodes, new_nodes)
