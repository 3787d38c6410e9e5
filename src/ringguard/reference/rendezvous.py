"""Reference weighted rendezvous hashing (contract section 10), plain Python floats."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._common import check_n, check_single_key, key_hashes, node_weights
from .ring import xxh64

__all__ = ["Rendezvous", "ln_u"]

LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
SQRT2 = 1.41421356237309514547
# 1/25, 1/23, ..., 1/3: the atanh series, highest term first (Horner order)
SERIES = [1.0 / k for k in range(25, 2, -2)]


def ln_u(h: int) -> float:
    """ln(u), u = ((h >> 12) + 0.5) / 2**52, by the contract's fixed operation sequence."""
    x = 2 * (h >> 12) + 1  # u = x / 2**53
    m, e = math.frexp(x)  # x = m * 2**e, m in [0.5, 1): exact
    m, e = m * 2.0, e - 1  # m in [1, 2)
    if m > SQRT2:
        m, e = m * 0.5, e + 1
    s = (m - 1.0) / (m + 1.0)
    z = s * s
    p = SERIES[0]
    for c in SERIES[1:]:
        p = p * z + c
    ln_m = 2.0 * s + (2.0 * s) * (z * p)
    big_e = float(e - 53)
    return (big_e * LN2_LO + ln_m) + big_e * LN2_HI


class Rendezvous:
    """``rendezvous-xxh64@1``, slowly and obviously."""

    algorithm = "rendezvous-xxh64@1"

    def __init__(self, nodes: Any, *, weights: Any = None) -> None:
        names, ws = node_weights(nodes, weights)
        self._nodes = tuple(names)
        self._weights = dict(zip(names, ws, strict=True))
        self._equal = len(set(ws)) == 1
        self._node_hash = [xxh64(n.encode("utf-8"), 0) for n in names]

    @property
    def nodes(self) -> tuple[str, ...]:
        return self._nodes

    @property
    def weights(self) -> dict[str, float]:
        return dict(self._weights)

    def _ranking(self, key_hash: int) -> list[int]:
        scored = []
        for i, name in enumerate(self._nodes):
            data = key_hash.to_bytes(8, "little") + self._node_hash[i].to_bytes(8, "little")
            h = xxh64(data, 0)
            if self._equal:
                score = float(h >> 12)
            else:
                score = -self._weights[name] / ln_u(h)
            scored.append((-score, name, i))
        return [i for _, _, i in sorted(scored)]

    def assign(self, keys: Any, *, threads: int | None = None) -> np.ndarray:
        return np.array([self._ranking(h)[0] for h in key_hashes(keys)], dtype=np.int32)

    def node_for(self, key: Any) -> str:
        return self._nodes[self._ranking(check_single_key(key))[0]]

    def replicas(self, keys: Any, n: int, *, threads: int | None = None) -> np.ndarray:
        n = check_n(n, len(self._nodes))
        rows = [self._ranking(h)[:n] for h in key_hashes(keys)]
        return np.array(rows, dtype=np.int32).reshape(len(rows), n)

    def add(self, node: str, weight: float = 1.0, zone: Any = None) -> Rendezvous:
        return Rendezvous(list(self._nodes) + [node], weights={**self._weights, node: weight})

    def remove(self, node: str) -> Rendezvous:
        names = [n for n in self._nodes if n != node]
        return Rendezvous(names, weights={n: self._weights[n] for n in names})
