"""Reference Maglev (contract section 9), written plainly from the NSDI 2016 paper."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._common import check_n, check_single_key, key_hashes, node_weights
from .ring import xxh64

__all__ = ["Maglev"]


def _is_prime(m: int) -> bool:
    return m >= 2 and all(m % d for d in range(2, math.isqrt(m) + 1))


class Maglev:
    """``maglev-xxh64@1``, slowly and obviously."""

    algorithm = "maglev-xxh64@1"

    def __init__(self, nodes: Any, *, weights: Any = None, table_size: int = 65537) -> None:
        names, ws = node_weights(nodes, weights)
        m = table_size
        if isinstance(m, bool) or not isinstance(m, int):
            raise TypeError("table_size: must be an int")
        if not (2 <= m <= 16777259 and _is_prime(m)):
            raise ValueError(f"table_size: must be a prime between 2 and 16777259, got {m}")
        if m < len(names):
            raise ValueError("table_size: smaller than the number of nodes")
        self._nodes = tuple(names)
        self._weights = dict(zip(names, ws, strict=True))
        self._m = m
        by_name = sorted(names)
        # Quotas: largest remainder of M * w / sum(w), ties by name, then at least 1.
        total = math.fsum(self._weights[n] for n in by_name)
        exact = {n: m * self._weights[n] / total for n in by_name}
        quota = {n: math.floor(exact[n]) for n in by_name}
        left = m - sum(quota.values())
        if left > 0:
            for n in sorted(by_name, key=lambda n: (-(exact[n] - quota[n]), n))[:left]:
                quota[n] += 1
        quota = {n: max(1, q) for n, q in quota.items()}
        # Permutations.
        offset = {n: xxh64(n.encode("utf-8"), 0) % m for n in by_name}
        skip = {n: xxh64(n.encode("utf-8"), 1) % (m - 1) + 1 for n in by_name}
        nxt = {n: 0 for n in by_name}
        count = {n: 0 for n in by_name}
        entry: list[str | None] = [None] * m
        filled = 0
        while filled < m:
            for n in by_name:
                if count[n] >= quota[n]:
                    continue
                c = (offset[n] + nxt[n] * skip[n]) % m
                while entry[c] is not None:
                    nxt[n] += 1
                    c = (offset[n] + nxt[n] * skip[n]) % m
                entry[c] = n
                nxt[n] += 1
                count[n] += 1
                filled += 1
                if filled == m:
                    break
        index = {n: i for i, n in enumerate(names)}
        self._table = [index[n] for n in entry if n is not None]

    @property
    def nodes(self) -> tuple[str, ...]:
        return self._nodes

    @property
    def weights(self) -> dict[str, float]:
        return dict(self._weights)

    @property
    def table_size(self) -> int:
        return self._m

    def table(self) -> np.ndarray:
        return np.array(self._table, dtype=np.int32)

    def assign(self, keys: Any, *, threads: int | None = None) -> np.ndarray:
        return np.array([self._table[h % self._m] for h in key_hashes(keys)], dtype=np.int32)

    def node_for(self, key: Any) -> str:
        return self._nodes[self._table[check_single_key(key) % self._m]]

    def replicas(self, keys: Any, n: int, *, threads: int | None = None) -> np.ndarray:
        n = check_n(n, len(set(self._table)))
        rows = []
        for h in key_hashes(keys):
            row: list[int] = []
            pos = h % self._m
            while len(row) < n:
                if self._table[pos] not in row:
                    row.append(self._table[pos])
                pos = (pos + 1) % self._m
            rows.append(row)
        return np.array(rows, dtype=np.int32).reshape(len(rows), n)

    def add(self, node: str, weight: float = 1.0, zone: Any = None) -> Maglev:
        return Maglev(list(self._nodes) + [node], weights={**self._weights, node: weight},
                      table_size=self._m)

    def remove(self, node: str) -> Maglev:
        names = [n for n in self._nodes if n != node]
        return Maglev(names, weights={n: self._weights[n] for n in names}, table_size=self._m)
