"""Reference jump consistent hash (contract section 11; Lamping & Veach 2014)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import check_n, check_single_key, key_hashes
from .ring import _parse_nodes, xxh64

__all__ = ["JumpHash", "jump_hash"]


def jump_hash(key: int, num_buckets: int) -> int:
    """The paper's function, on a 64-bit key, with Python ints and floats."""
    b, j = -1, 0
    while j < num_buckets:
        b = j
        key = (key * 2862933555777941757 + 1) % 2**64
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


class JumpHash:
    """``jump-xxh64@1``, slowly and obviously."""

    algorithm = "jump-xxh64@1"

    def __init__(self, nodes: Any) -> None:
        names, raw = _parse_nodes(nodes, None)
        if raw:
            raise TypeError("nodes: JumpHash has no weights")
        self._nodes = tuple(names)

    @property
    def nodes(self) -> tuple[str, ...]:
        return self._nodes

    def assign(self, keys: Any, *, threads: int | None = None) -> np.ndarray:
        nb = len(self._nodes)
        return np.array([jump_hash(h, nb) for h in key_hashes(keys)], dtype=np.int32)

    def node_for(self, key: Any) -> str:
        return self._nodes[jump_hash(check_single_key(key), len(self._nodes))]

    def _preference(self, h: int, n: int) -> list[int]:
        free = list(range(len(self._nodes)))
        row = []
        for r in range(n):
            hr = h if r == 0 else xxh64(h.to_bytes(8, "little"), r)
            row.append(free.pop(jump_hash(hr, len(free))))
        return row

    def replicas(self, keys: Any, n: int, *, threads: int | None = None) -> np.ndarray:
        n = check_n(n, len(self._nodes))
        rows = [self._preference(h, n) for h in key_hashes(keys)]
        return np.array(rows, dtype=np.int32).reshape(len(rows), n)

    def add(self, node: str, weight: float = 1.0, zone: Any = None) -> JumpHash:
        return JumpHash(list(self._nodes) + [node])

    def remove(self, node: str) -> JumpHash:
        if node != self._nodes[-1]:
            raise ValueError("node: JumpHash can only remove its last node")
        return JumpHash(list(self._nodes[:-1]))
