"""Pure-Python twins of _core_slots.pxi (Redis Cluster slots, bounded loads).

Same functions, same checks, same results as the compiled kernels, written plainly: a
bitwise CRC16 and a loop per key.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "REDIS_SLOTS",
    "assign_bounded",
    "crc16",
    "redis_slot_bytes",
    "slot_nodes",
    "slots_decimal",
    "slots_fixed",
    "slots_var",
]

REDIS_SLOTS = 16384


def _crc16_table() -> list[int]:
    table = []
    for b in range(256):
        crc = b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
        table.append(crc)
    return table


_TABLE = _crc16_table()


def crc16(data: Any) -> int:
    """CRC16-XMODEM (poly 0x1021, init 0, no reflection) of a bytes-like object."""
    crc = 0
    table = _TABLE
    for b in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ b]
    return crc


def redis_slot_bytes(data: Any) -> int:
    """Redis Cluster slot of one key given as bytes ({hash tag} rules included)."""
    key = bytes(data)
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc16(key) & 16383


def _check_out(n: int, nout: int) -> None:
    if nout != n:
        raise ValueError(f"out: has length {nout}, expected {n}")


def slots_var(data: Any, offsets: Any, out: np.ndarray) -> None:
    """Redis Cluster slot of each variable-length key."""
    from ._pycore import _items, check_offsets

    check_offsets(offsets, len(data))
    _check_out(len(offsets) - 1, len(out))
    for i, b in enumerate(_items(data, offsets)):
        out[i] = redis_slot_bytes(b)


def slots_fixed(data: Any, width: int, out: np.ndarray) -> None:
    """Redis Cluster slot of each fixed-width key (NumPy ``S``), trailing NULs dropped."""
    if width < 1:
        raise ValueError(f"width: must be >= 1, got {width}")
    n = len(out)
    if len(data) != n * width:
        raise ValueError(f"data: has {len(data)} bytes, expected {n} x {width}")
    d = bytes(np.asarray(data, dtype=np.uint8))
    for i in range(n):
        out[i] = redis_slot_bytes(d[i * width : (i + 1) * width].rstrip(b"\0"))


def slots_decimal(keys: Any, is_signed: bool, out: np.ndarray) -> None:
    """Redis Cluster slot of integer keys, hashed as their decimal text."""
    from ._pycore import _format_decimal

    _check_out(len(keys), len(out))
    for i, v in enumerate(np.asarray(keys, dtype=np.uint64).tolist()):
        out[i] = crc16(_format_decimal(v, is_signed)) & 16383


def slot_nodes(slots: Any, table: Any, out: np.ndarray) -> None:
    """``out[i] = table[slots[i]]``: the node of each slot through a 16384-entry table."""
    s = np.asarray(slots, dtype=np.uint16)
    _check_out(len(s), len(out))
    if len(table) != REDIS_SLOTS:
        raise ValueError(f"table: has {len(table)} entries, expected {REDIS_SLOTS}")
    if len(s) and int(s.max()) >= REDIS_SLOTS:
        raise ValueError(f"slots: value {int(s.max())} is outside 0..{REDIS_SLOTS - 1}")
    out[:] = np.asarray(table, dtype=np.int32)[s]


def assign_bounded(owners: Any, first: Any, cap: Any, out: np.ndarray) -> None:
    """Bounded-load assignment (same contract as ``_core.assign_bounded``)."""
    own = np.asarray(owners, dtype=np.int32).tolist()
    fst = np.asarray(first, dtype=np.int32).tolist()
    caps = np.asarray(cap, dtype=np.int64).tolist()
    n, npoints, nnodes = len(fst), len(own), len(caps)
    _check_out(n, len(out))
    if npoints < 1 or npoints >= 2**31:
        raise ValueError(f"owners: need 1 .. 2**31-1 points, got {npoints}")
    for i, o in enumerate(own):
        if not 0 <= o < nnodes:
            raise ValueError(f"owners[{i}]: node index out of range")
    for i, c in enumerate(caps):
        if c < 0:
            raise ValueError(f"cap[{i}]: capacity must be >= 0")
    for i, f in enumerate(fst):
        if not 0 <= f < npoints:
            raise ValueError(f"first[{i}]: point index out of range")
    room = sum(caps[o] for o in set(own))
    if room < n:
        raise ValueError(f"max_load: capacities hold {room} keys, fewer than the {n} given")
    count = [0] * nnodes
    for k, pos in enumerate(fst):
        node = own[pos]
        while count[node] >= caps[node]:
            pos = pos + 1 if pos + 1 < npoints else 0
            node = own[pos]
        count[node] += 1
        out[k] = node
