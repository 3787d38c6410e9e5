"""Pure-Python reference twin of Redis Cluster slots (contract section 6).

Written as literally as possible: a bitwise CRC16-XMODEM, ``bytes.find`` for hash tags,
a 16384-entry list for the slot table and a plain walk over the slots for replicas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .ring import ketama_keys

__all__ = ["RedisSlots", "crc16", "key_slot", "redis_slot"]

SLOTS = 16384


def crc16(data: bytes) -> int:
    """CRC16-XMODEM: polynomial 0x1021, initial value 0, no reflection, no final xor."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def key_slot(key: bytes) -> int:
    """Slot of one key's bytes, with the ``{hash tag}`` rule of the Redis Cluster spec."""
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        if end != -1 and end != start + 1:
            key = key[start + 1 : end]
    return crc16(key) % SLOTS


def redis_slot(keys: Any, *, threads: int | None = None) -> np.ndarray:
    """Slot of every key; integers as their decimal text (the ketama bytes of the key rule)."""
    return np.array([key_slot(b) for b in ketama_keys(keys)], dtype=np.uint16)


class RedisSlots:
    """Slot ranges owned by nodes; same contract as :class:`ringguard.RedisSlots`."""

    def __init__(self, slot_ranges: Sequence[tuple[int, int, str]], *,
                 nodes: Sequence[str] | None = None) -> None:
        names = list(nodes) if nodes is not None else []
        owner: list[int | None] = [None] * SLOTS
        for start, end, node in slot_ranges:
            if node not in names:
                if nodes is not None:
                    raise ValueError(f"node {node!r} is not in nodes")
                names.append(node)
            for s in range(start, end + 1):
                if owner[s] is not None:
                    raise ValueError(f"slot {s} is covered twice")
                owner[s] = names.index(node)
        if None in owner:
            raise ValueError(f"slot {owner.index(None)} is not covered")
        self._nodes = tuple(names)
        self._owner: list[int] = [o for o in owner if o is not None]

    @property
    def nodes(self) -> tuple[str, ...]:
        return self._nodes

    def assign(self, keys: Any, *, threads: int | None = None) -> np.ndarray:
        return np.array([self._owner[s] for s in redis_slot(keys).tolist()], dtype=np.int32)

    def node_for(self, key: str | bytes | int) -> str:
        return self._nodes[int(self.assign([key])[0])]

    def replicas(self, keys: Any, n: int, *, threads: int | None = None) -> np.ndarray:
        owning = len(set(self._owner))
        if not 1 <= n <= owning:
            raise ValueError(f"n: must be between 1 and {owning}, got {n}")
        rows = []
        for s in redis_slot(keys).tolist():
            row: list[int] = []
            for step in range(SLOTS):
                node = self._owner[(s + step) % SLOTS]
                if node not in row:
                    row.append(node)
                    if len(row) == n:
                        break
            rows.append(row)
        return np.array(rows, dtype=np.int32).reshape(len(rows), n)
