"""Pure-Python twins of _core_algos.pxi (Maglev, Rendezvous, JumpHash kernels).

Same functions, same checks, same results: the floating-point steps (Rendezvous' ln(u),
Jump's step) are the same sequence of IEEE double operations as ``csrc/rg_algos.h``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .reference.ring import xxh64 as _xxh64

__all__ = [
    "JUMP_MAX_BUCKETS",
    "MAGLEV_MAX_TABLE",
    "CoreMaglev",
    "hrw_assign",
    "hrw_ln_u",
    "hrw_node_lanes",
    "hrw_replicas",
    "is_prime",
    "jump",
    "jump_assign_u64",
    "jump_batch",
    "jump_replicas",
    "maglev_populate",
    "xxh64_fixed",
    "xxh64_u64",
]

MAGLEV_MAX_TABLE = 16777259
JUMP_MAX_BUCKETS = 2**31 - 1

_M64 = 0xFFFFFFFFFFFFFFFF
_P1 = 0x9E3779B185EBCA87
_P2 = 0xC2B2AE3D27D4EB4F
_P4 = 0x85EBCA77C2B2AE63
_P5 = 0x27D4EB2F165667C5
_P3 = 0x165667B19E3779F9
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_SQRT2 = 1.41421356237309514547


def _check_out(n: int, nout: int) -> None:
    if nout != n:
        raise ValueError(f"out: has length {nout}, expected {n}")


def is_prime(m: int) -> bool:
    """True when ``m`` is prime."""
    if m < 2:
        return False
    if m % 2 == 0:
        return m == 2
    d = 3
    while d * d <= m:
        if m % d == 0:
            return False
        d += 2
    return True


def _h_u64(v: int, seed: int = 0) -> int:
    return _xxh64(int(v).to_bytes(8, "little"), seed)


def xxh64_u64(keys: Any, out: np.ndarray) -> None:
    """XXH64 (seed 0) of canonical integer keys into ``out``."""
    _check_out(len(keys), len(out))
    out[:] = [_h_u64(v) for v in np.asarray(keys, dtype=np.uint64).tolist()]


def _fixed_items(data: Any, width: int, n: int) -> list[bytes]:
    if width < 1:
        raise ValueError(f"width: must be >= 1, got {width}")
    if len(data) != n * width:
        raise ValueError(f"data: has {len(data)} bytes, expected {n} x {width}")
    d = bytes(np.asarray(data, dtype=np.uint8))
    return [d[i * width : (i + 1) * width].rstrip(b"\0") for i in range(n)]


def xxh64_fixed(data: Any, width: int, out: np.ndarray) -> None:
    """XXH64 (seed 0) of fixed-width items, trailing NULs dropped, into ``out``."""
    items = _fixed_items(data, width, len(out))
    out[:] = [_xxh64(b, 0) for b in items]


# ---- Maglev --------------------------------------------------------------------------------


def _check_size(m: int) -> None:
    if m < 2 or m > MAGLEV_MAX_TABLE or not is_prime(m):
        raise ValueError(f"table: size must be a prime in 2..{MAGLEV_MAX_TABLE}, got {m}")


def maglev_populate(offsets: Any, skips: Any, quotas: Any, table: np.ndarray) -> None:
    """Fill a Maglev lookup table (contract section 9); nodes in name order."""
    m = len(table)
    _check_size(m)
    off = np.asarray(offsets, dtype=np.uint64).tolist()
    sk = np.asarray(skips, dtype=np.uint64).tolist()
    qu = np.asarray(quotas, dtype=np.int64).tolist()
    n = len(off)
    if n < 1 or n > m:
        raise ValueError(f"offsets: need 1..{m} nodes, got {n}")
    if len(sk) != n or len(qu) != n:
        raise ValueError("skips/quotas: length differs from offsets")
    for i in range(n):
        if off[i] >= m:
            raise ValueError(f"offsets[{i}]: must be < {m}")
        if not 1 <= sk[i] < m:
            raise ValueError(f"skips[{i}]: must be in 1..{m - 1}")
        if not 1 <= qu[i] <= m:
            raise ValueError(f"quotas[{i}]: must be in 1..{m}")
    if sum(qu) < m:
        raise ValueError(f"quotas: sum {sum(qu)} is below the table size {m}")
    entry = [-1] * m
    nxt = list(off)
    count = [0] * n
    filled = 0
    while True:
        for i in range(n):
            if count[i] >= qu[i]:
                continue
            c = nxt[i]
            s = sk[i]
            while entry[c] >= 0:
                c += s
                if c >= m:
                    c -= m
            entry[c] = i
            c += s
            if c >= m:
                c -= m
            nxt[i] = c
            count[i] += 1
            filled += 1
            if filled == m:
                table[:] = entry
                return


class CoreMaglev:
    """Same contract as ``_core.CoreMaglev``."""

    def __init__(self, table: np.ndarray, nnodes: int) -> None:
        m = len(table)
        _check_size(m)
        if nnodes < 1:
            raise ValueError("nnodes: must be >= 1")
        t = np.asarray(table)
        bad = (t < 0) | (t >= nnodes)
        if bad.any():
            raise ValueError(f"table[{int(np.argmax(bad))}]: node index out of range")
        self.table = table
        self.nnodes = nnodes
        self.distinct_owners = int(np.unique(t).shape[0])
        self._m = m

    def _put(self, hashes: list[int], out: np.ndarray) -> None:
        slots = np.array([h % self._m for h in hashes], dtype=np.int64)
        out[:] = np.asarray(self.table)[slots]

    def assign_u64(self, keys: Any, out: np.ndarray) -> None:
        _check_out(len(keys), len(out))
        self._put([_h_u64(v) for v in np.asarray(keys, dtype=np.uint64).tolist()], out)

    def assign_var(self, data: Any, offsets: Any, out: np.ndarray) -> None:
        from ._pycore import _items, check_offsets

        check_offsets(offsets, len(data))
        _check_out(len(offsets) - 1, len(out))
        self._put([_xxh64(b, 0) for b in _items(data, offsets)], out)

    def assign_fixed(self, data: Any, width: int, out: np.ndarray) -> None:
        items = _fixed_items(data, width, len(out))
        self._put([_xxh64(b, 0) for b in items], out)

    def replicas(self, hashes: Any, nrep: int, out: np.ndarray) -> None:
        n = len(hashes)
        if out.shape != (n, nrep):
            raise ValueError(f"out: has shape {out.shape}, expected {(n, nrep)}")
        if not 1 <= nrep <= self.distinct_owners:
            raise ValueError(f"n: must be in 1..{self.distinct_owners}, got {nrep}")
        table = np.asarray(self.table).tolist()
        m = self._m
        for k, h in enumerate(np.asarray(hashes, dtype=np.uint64).tolist()):
            pos = h % m
            row: list[int] = []
            for _ in range(m):
                node = table[pos]
                pos = pos + 1 if pos + 1 < m else 0
                if node not in row:
                    row.append(node)
                    if len(row) == nrep:
                        break
            out[k, :] = row


# ---- Rendezvous ----------------------------------------------------------------------------


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _round0(v: int) -> int:
    return (_rotl((v * _P2) & _M64, 31) * _P1) & _M64


def _key_state(kh: int) -> int:
    h = (_P5 + 16) ^ _round0(kh)
    return (_rotl(h, 27) * _P1 + _P4) & _M64


def _mix(state: int, lane: int) -> int:
    h = state ^ lane
    h = (_rotl(h, 27) * _P1 + _P4) & _M64
    h ^= h >> 33
    h = (h * _P2) & _M64
    h ^= h >> 29
    h = (h * _P3) & _M64
    h ^= h >> 32
    return h


def hrw_ln_u(h: int) -> float:
    """The deterministic ln(u) of Rendezvous: the operation sequence of rg_hrw_ln_u."""
    x = ((h >> 12) << 1) | 1
    e = x.bit_length() - 1
    m = x / (1 << e)  # exact: x < 2**53
    if m > _SQRT2:
        m = m * 0.5
        e = e + 1
    s = (m - 1.0) / (m + 1.0)
    z = s * s
    p = 1.0 / 25.0
    p = p * z + 1.0 / 23.0
    p = p * z + 1.0 / 21.0
    p = p * z + 1.0 / 19.0
    p = p * z + 1.0 / 17.0
    p = p * z + 1.0 / 15.0
    p = p * z + 1.0 / 13.0
    p = p * z + 1.0 / 11.0
    p = p * z + 1.0 / 9.0
    p = p * z + 1.0 / 7.0
    p = p * z + 1.0 / 5.0
    p = p * z + 1.0 / 3.0
    lnm = 2.0 * s + (2.0 * s) * (z * p)
    big_e = float(e - 53)
    return (big_e * _LN2_LO + lnm) + big_e * _LN2_HI


def hrw_node_lanes(node_hashes: Any, out: np.ndarray) -> None:
    """Per-node precomputed XXH64 lane of each node hash, into ``out``."""
    _check_out(len(node_hashes), len(out))
    out[:] = [_round0(v) for v in np.asarray(node_hashes, dtype=np.uint64).tolist()]


def _check_hrw(lanes: Any, weights: Any, ids: Any) -> tuple[list[int], list[float] | None,
                                                            list[int]]:
    ln = np.asarray(lanes, dtype=np.uint64).tolist()
    n = len(ln)
    if n < 1:
        raise ValueError(f"lanes: need at least one node, got {n}")
    idl = np.asarray(ids, dtype=np.int32).tolist()
    if len(idl) != n:
        raise ValueError("ids: length differs from lanes")
    for i, v in enumerate(idl):
        if v < 0:
            raise ValueError(f"ids[{i}]: negative node index")
    wl = None
    if weights is not None:
        wl = np.asarray(weights, dtype=np.float64).tolist()
        if len(wl) != n:
            raise ValueError("weights: length differs from lanes")
        for i, w in enumerate(wl):
            if not (w > 0.0 and w <= 1.7976931348623157e308):
                raise ValueError(f"weights[{i}]: must be finite and > 0")
    return ln, wl, idl


def _ranked(state: int, ln: list[int], wl: list[float] | None) -> list[tuple[float, int]]:
    scores = []
    for i, lane in enumerate(ln):
        h = _mix(state, lane)
        sc = float(h >> 12) if wl is None else -wl[i] / hrw_ln_u(h)
        scores.append((sc, i))
    # best first; equal scores: lower name-order position first
    scores.sort(key=lambda t: (-t[0], t[1]))
    return scores


def hrw_assign(lanes: Any, weights: Any, ids: Any, hashes: Any, out: np.ndarray) -> None:
    """Highest-score node of each key hash (``weights`` None: all weights equal)."""
    ln, wl, idl = _check_hrw(lanes, weights, ids)
    _check_out(len(hashes), len(out))
    for k, kh in enumerate(np.asarray(hashes, dtype=np.uint64).tolist()):
        out[k] = idl[_ranked(_key_state(kh), ln, wl)[0][1]]


def hrw_replicas(lanes: Any, weights: Any, ids: Any, hashes: Any, nrep: int,
                 out: np.ndarray) -> None:
    """The ``nrep`` highest-score nodes of each key hash, best first."""
    ln, wl, idl = _check_hrw(lanes, weights, ids)
    if not 1 <= nrep <= len(ln):
        raise ValueError(f"n: must be in 1..{len(ln)}, got {nrep}")
    n = len(hashes)
    if out.shape != (n, nrep):
        raise ValueError(f"out: has shape {out.shape}, expected {(n, nrep)}")
    for k, kh in enumerate(np.asarray(hashes, dtype=np.uint64).tolist()):
        ranked = _ranked(_key_state(kh), ln, wl)
        out[k, :] = [idl[i] for _, i in ranked[:nrep]]


# ---- JumpHash ------------------------------------------------------------------------------


def _check_buckets(nb: int) -> None:
    if not 1 <= nb <= JUMP_MAX_BUCKETS:
        raise ValueError(f"num_buckets: must be in 1..{JUMP_MAX_BUCKETS}, got {nb}")


def _jump(key: int, nb: int) -> int:
    b, j = -1, 0
    while j < nb:
        b = j
        key = (key * 2862933555777941757 + 1) & _M64
        j = int(float(b + 1) * (2147483648.0 / float((key >> 33) + 1)))
    return b


def jump(key: int, num_buckets: int) -> int:
    """Jump consistent hash (Lamping & Veach) of one 64-bit key."""
    _check_buckets(num_buckets)
    if not 0 <= key <= _M64:
        raise OverflowError("key: must be a 64-bit unsigned integer")
    return _jump(key, num_buckets)


def jump_batch(keys: Any, num_buckets: int, out: np.ndarray) -> None:
    """Jump consistent hash of every raw 64-bit key into ``out``."""
    _check_buckets(num_buckets)
    _check_out(len(keys), len(out))
    out[:] = [_jump(k, num_buckets) for k in np.asarray(keys, dtype=np.uint64).tolist()]


def jump_assign_u64(keys: Any, num_buckets: int, out: np.ndarray) -> None:
    """Jump of XXH64 (seed 0) of canonical integer keys into ``out``."""
    _check_buckets(num_buckets)
    _check_out(len(keys), len(out))
    vals = np.asarray(keys, dtype=np.uint64).tolist()
    out[:] = [_jump(_h_u64(k), num_buckets) for k in vals]


def jump_replicas(hashes: Any, num_buckets: int, nrep: int, out: np.ndarray) -> None:
    """``nrep`` distinct buckets per key hash (contract section 11), primary first."""
    _check_buckets(num_buckets)
    if not 1 <= nrep <= num_buckets:
        raise ValueError(f"n: must be in 1..{num_buckets}, got {nrep}")
    n = len(hashes)
    if out.shape != (n, nrep):
        raise ValueError(f"out: has shape {out.shape}, expected {(n, nrep)}")
    for k, h0 in enumerate(np.asarray(hashes, dtype=np.uint64).tolist()):
        chosen: list[int] = []
        row = []
        for r in range(nrep):
            h = h0 if r == 0 else _h_u64(h0, r)
            b = _jump(h, num_buckets - r)
            for c in chosen:  # sorted ascending
                if c <= b:
                    b += 1
            row.append(b)
            chosen.append(b)
            chosen.sort()
        out[k, :] = row
