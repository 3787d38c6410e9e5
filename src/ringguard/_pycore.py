"""Pure-Python twin of the compiled ``_core`` module: the same functions, the same checks.

Used when the extension is unavailable or ``RINGGUARD_PUREPYTHON=1``. It is written
plainly over :mod:`ringguard.reference`'s hash functions and NumPy's ``searchsorted``; the
whole test suite runs against it as well as against the compiled core.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .reference.ring import xxh64 as _xxh64

MODE_XXH64 = 0
MODE_KETAMA_GE = 1
MODE_KETAMA_GT = 2
_MODES = (MODE_XXH64, MODE_KETAMA_GE, MODE_KETAMA_GT)


def xxh64(data: Any, seed: int = 0) -> int:
    """XXH64 of a bytes-like object."""
    return _xxh64(bytes(data), seed)


def record_digests(keys: list[Any], values: list[Any], epochs: Any, seqs: Any,
                   out: np.ndarray) -> None:
    """XXH64 (seed 0) of each record's canonical encoding (``backends.base``)."""
    n = len(keys)
    if len(values) != n or len(epochs) != n or len(seqs) != n:
        raise ValueError(f"record_digests: {n} keys but {len(values)} values, "
                         f"{len(epochs)} epochs, {len(seqs)} seqs")
    _check_out(n, len(out))
    for i, (k, v, e, q) in enumerate(zip(keys, values, np.asarray(epochs).tolist(),
                                          np.asarray(seqs).tolist(), strict=True)):
        if not isinstance(k, bytes):
            raise TypeError(f"keys[{i}]: expected bytes, got {type(k).__name__}")
        if v is not None and not isinstance(v, bytes):
            raise TypeError(f"values[{i}]: expected bytes or None, got {type(v).__name__}")
        if e < 0 or q < 0:
            raise ValueError(f"records[{i}]: versions must be >= 0, got ({e}, {q})")
        if len(k) > 0xFFFFFFFF:
            raise ValueError(f"keys[{i}]: longer than 2**32 - 1 bytes")
        head = e.to_bytes(8, "little") + q.to_bytes(8, "little") + (b"\x01" if v is None
                                                                    else b"\x00")
        out[i] = _xxh64(head + len(k).to_bytes(4, "little") + k + (v or b""), 0)


def record_digests_columns(data: Any, koff: Any, voff: Any, tomb: Any, epochs: Any,
                           seqs: Any, out: np.ndarray) -> None:
    """:func:`record_digests` of records stored column-wise (see the compiled core)."""
    n = len(koff) - 1
    if n < 0 or len(voff) != n + 1:
        raise ValueError(f"record_digests_columns: koff has {len(koff)} entries, voff "
                         f"{len(voff)}; both need n + 1 >= 1")
    if len(tomb) != n or len(epochs) != n or len(seqs) != n:
        raise ValueError(f"record_digests_columns: {n} records but {len(tomb)} tombstone "
                         f"flags, {len(epochs)} epochs, {len(seqs)} seqs")
    _check_out(n, len(out))
    if n == 0:
        return
    check_offsets(koff, len(data))
    try:
        check_offsets(voff, len(data))
    except ValueError as exc:
        raise ValueError(str(exc).replace("keys[", "values[", 1)) from None
    raw = bytes(np.asarray(data, dtype=np.uint8))
    ko, vo = np.asarray(koff).tolist(), np.asarray(voff).tolist()
    keys = [raw[ko[i] : ko[i + 1]] for i in range(n)]
    values: list[bytes | None] = []
    for i, t in enumerate(np.asarray(tomb).tolist()):
        if t and vo[i + 1] != vo[i]:
            raise ValueError(f"values[{i}]: a tombstone with a value")
        values.append(None if t else raw[vo[i] : vo[i + 1]])
    record_digests(keys, values, epochs, seqs, out)


def md5(data: Any) -> bytes:
    """MD5 digest of a bytes-like object."""
    return hashlib.md5(bytes(data)).digest()


def ketama_hash(data: Any) -> int:
    """First 4 bytes of MD5, little-endian."""
    return int.from_bytes(md5(data)[:4], "little")


def _check_mode(mode: int) -> None:
    if mode not in _MODES:
        raise ValueError(f"mode: unknown hash mode {mode}")


def _check_out(n: int, nout: int) -> None:
    if nout != n:
        raise ValueError(f"out: has length {nout}, expected {n}")


def check_offsets(offsets: np.ndarray, datalen: int) -> None:
    """Raise ``ValueError`` naming the first item whose offsets leave ``data``."""
    n = len(offsets) - 1
    if n < 0:
        raise ValueError("offsets: must have at least one entry")
    o = np.asarray(offsets, dtype=np.int64)
    bad = (o[:-1] < 0) | (o[:-1] > o[1:]) | (o[1:] > datalen)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"keys[{i}]: offsets {o[i]}..{o[i + 1]} are outside the {datalen}-byte data "
            "buffer or decreasing"
        )


def _ring_hash(mode: int, b: bytes) -> int:
    if mode == MODE_XXH64:
        return _xxh64(b, 0)
    k = ketama_hash(b) << 32
    return k + 1 if mode == MODE_KETAMA_GT else k


def _items(data: Any, offsets: Any) -> list[bytes]:
    d = bytes(np.asarray(data, dtype=np.uint8))
    o = np.asarray(offsets, dtype=np.int64).tolist()
    return [d[o[i] : o[i + 1]] for i in range(len(o) - 1)]


def hash_var(mode: int, data: Any, offsets: Any, out: np.ndarray) -> None:
    """Hash every item of a (data, offsets) batch into ``out`` (ring space)."""
    _check_mode(mode)
    check_offsets(offsets, len(data))
    _check_out(len(offsets) - 1, len(out))
    for i, b in enumerate(_items(data, offsets)):
        out[i] = _ring_hash(mode, b)


def ketama_points(data: Any, offsets: Any, out: np.ndarray) -> None:
    """The four libketama points of each item's MD5 digest, into ``out``."""
    check_offsets(offsets, len(data))
    _check_out(4 * (len(offsets) - 1), len(out))
    for i, b in enumerate(_items(data, offsets)):
        d = md5(b)
        for h in range(4):
            out[4 * i + h] = int.from_bytes(d[4 * h : 4 * h + 4], "little")


def ucs4_to_utf8(cps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Encode a 2-D array of UCS-4 code points as UTF-8 ``(data, offsets)``."""
    chunks: list[bytes] = []
    offsets = np.zeros(cps.shape[0] + 1, dtype=np.int64)
    for i, row in enumerate(np.asarray(cps, dtype=np.uint32).tolist()):
        while row and row[-1] == 0:
            row.pop()
        if any(0xD800 <= c <= 0xDFFF or c > 0x10FFFF for c in row):
            raise ValueError(f"keys[{i}]: not encodable as UTF-8 (surrogate or invalid code point)")
        b = "".join(map(chr, row)).encode("utf-8")
        chunks.append(b)
        offsets[i + 1] = offsets[i] + len(b)
    return np.frombuffer(b"".join(chunks), dtype=np.uint8), offsets


def _is_int(x: Any) -> bool:
    return (isinstance(x, int) and not isinstance(x, bool)) or isinstance(x, np.integer)


def encode_sequence(seq: Any) -> tuple[Any, ...]:
    """Same contract as ``_core.encode_sequence``."""
    items = tuple(seq)
    if not items:
        return "bytes", np.empty(0, dtype=np.uint8), np.zeros(1, dtype=np.int64)
    first = items[0]
    if isinstance(first, (str, bytes)):
        parts: list[bytes] = []
        for i, x in enumerate(items):
            if isinstance(x, str):
                try:
                    parts.append(x.encode("utf-8"))
                except UnicodeEncodeError as exc:
                    raise ValueError(
                        f"keys[{i}]: str is not encodable as UTF-8 ({exc.reason})"
                    ) from None
            elif isinstance(x, bytes):
                parts.append(bytes(x))
            elif _is_int(x):
                raise TypeError(f"keys[{i}]: mixed key types: int in a batch of str/bytes keys")
            else:
                raise TypeError(f"keys[{i}]: expected str, bytes or int, got {type(x).__name__}")
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in parts], out=offsets[1:])
        return "bytes", np.frombuffer(b"".join(parts), dtype=np.uint8), offsets
    if not _is_int(first):
        raise TypeError(f"keys[0]: expected str, bytes or int, got {type(first).__name__}")
    values = np.empty(len(items), dtype=np.uint64)
    has_negative = has_big = False
    for i, x in enumerate(items):
        if not _is_int(x):
            if isinstance(x, (str, bytes)):
                raise TypeError(
                    f"keys[{i}]: mixed key types: {type(x).__name__} in a batch of int keys"
                )
            raise TypeError(f"keys[{i}]: expected str, bytes or int, got {type(x).__name__}")
        v = int(x)
        if not -(2**63) <= v < 2**64:
            raise ValueError(f"keys[{i}]: integer {v} is outside [-2**63, 2**64)")
        has_negative |= v < 0
        has_big |= v >= 2**63
        values[i] = v % 2**64
    return "int", values, has_negative, has_big


def _format_decimal(v: int, is_signed: bool) -> bytes:
    if is_signed and v >= 2**63:
        v -= 2**64
    return str(v).encode("ascii")


class CoreRing:
    """Same contract as ``_core.CoreRing``: lookups with ``np.searchsorted``."""

    def __init__(
        self,
        points: np.ndarray,
        owners: np.ndarray,
        start: np.ndarray,
        direct: np.ndarray,
        bits: int,
    ) -> None:
        npoints = len(points)
        if npoints < 1 or npoints >= 2**31:
            raise ValueError(f"points: need 1 .. 2**31-1 points, got {npoints}")
        if len(owners) != npoints:
            raise ValueError("owners: length differs from points")
        if np.any(np.asarray(points)[1:] < np.asarray(points)[:-1]):
            raise ValueError("points: points are not sorted")
        self.points, self.owners, self.start, self.direct, self.bits = (
            points,
            owners,
            start,
            direct,
            bits,
        )
        self.distinct_owners = int(np.count_nonzero(np.bincount(np.asarray(owners))))

    def _result(self, hashes: list[int], out: np.ndarray, want_index: bool) -> None:
        h = np.array(hashes, dtype=np.uint64)
        idx = np.searchsorted(self.points, h, side="left")
        idx[idx == len(self.points)] = 0
        out[:] = idx if want_index else np.asarray(self.owners)[idx]

    def assign_u64(self, keys: np.ndarray, out: np.ndarray, want_index: bool = False) -> None:
        _check_out(len(keys), len(out))
        vals = np.asarray(keys, dtype=np.uint64).tolist()
        self._result([_xxh64(v.to_bytes(8, "little"), 0) for v in vals], out, want_index)

    def assign_decimal(
        self,
        mode: int,
        keys: np.ndarray,
        is_signed: bool,
        out: np.ndarray,
        want_index: bool = False,
    ) -> None:
        _check_mode(mode)
        _check_out(len(keys), len(out))
        vals = np.asarray(keys, dtype=np.uint64).tolist()
        hashes = [_ring_hash(mode, _format_decimal(v, is_signed)) for v in vals]
        self._result(hashes, out, want_index)

    def assign_var(
        self, mode: int, data: Any, offsets: Any, out: np.ndarray, want_index: bool = False
    ) -> None:
        _check_mode(mode)
        check_offsets(offsets, len(data))
        _check_out(len(offsets) - 1, len(out))
        self._result([_ring_hash(mode, b) for b in _items(data, offsets)], out, want_index)

    def assign_seq(self, mode: int, seq: Any, out: np.ndarray, want_index: bool = False) -> bool:
        _check_mode(mode)
        if type(seq) not in (list, tuple):
            return False
        _check_out(len(seq), len(out))
        items = []
        for k in seq:
            if isinstance(k, str):
                try:
                    items.append(k.encode("utf-8"))
                except UnicodeEncodeError:
                    return False
            elif isinstance(k, bytes):
                items.append(k)
            else:
                return False
        self._result([_ring_hash(mode, b) for b in items], out, want_index)
        return True

    def assign_fixed(
        self, mode: int, data: Any, width: int, out: np.ndarray, want_index: bool = False
    ) -> None:
        _check_mode(mode)
        if width < 1:
            raise ValueError(f"width: must be >= 1, got {width}")
        n = len(out)
        if len(data) != n * width:
            raise ValueError(f"data: has {len(data)} bytes, expected {n} x {width}")
        d = bytes(np.asarray(data, dtype=np.uint8))
        items = [d[i * width : (i + 1) * width].rstrip(b"\0") for i in range(n)]
        self._result([_ring_hash(mode, b) for b in items], out, want_index)

    def replicas(
        self,
        first: np.ndarray,
        nrep: int,
        nnodes: int,
        zone_of: np.ndarray | None,
        nzones: int,
        out: np.ndarray,
    ) -> None:
        n = len(first)
        if out.shape != (n, nrep):
            raise ValueError(f"out: has shape {out.shape}, expected {(n, nrep)}")
        if not 1 <= nrep <= self.distinct_owners:
            raise ValueError(f"n: must be in 1..{self.distinct_owners}, got {nrep}")
        owners = np.asarray(self.owners).tolist()
        zones = None if zone_of is None else np.asarray(zone_of).tolist()
        npoints = len(owners)
        for k, start in enumerate(np.asarray(first).tolist()):
            picked: list[int] = []
            deferred: list[int] = []
            seen: set[int] = set()
            used: set[int] = set()
            for step in range(npoints):
                node = owners[(start + step) % npoints]
                if node in seen:
                    continue
                seen.add(node)
                if zones is None or zones[node] not in used:
                    picked.append(node)
                    if zones is not None:
                        used.add(zones[node])
                else:
                    deferred.append(node)
                if len(picked) == nrep:
                    break
                if (
                    zones is not None
                    and len(used) == nzones
                    and len(picked) + len(deferred) >= nrep
                ):
                    break
            out[k, :] = (picked + deferred)[:nrep]


def gather_rows(table: np.ndarray, first: np.ndarray, out: np.ndarray) -> None:
    """Same contract as ``_core.gather_rows``."""
    n = len(first)
    nrows, width = table.shape
    if out.shape != (n, width):
        raise ValueError(f"out: has shape {out.shape}, expected {(n, width)}")
    bad = (first < 0) | (first >= nrows)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"first[{i}]: {first[i]} is not a row index in 0..{nrows - 1}")
    out[...] = table[first]


def route(prefs: np.ndarray, up: np.ndarray, out_node: np.ndarray, out_pos: np.ndarray) -> None:
    """Same contract as ``_core.route``."""
    n, r = prefs.shape
    if not 1 <= r <= 127:
        raise ValueError(f"prefs: need 1..127 replicas per key, got {r}")
    _check_out(n, len(out_node))
    _check_out(n, len(out_pos))
    flat = np.asarray(prefs).reshape(-1)
    bad = (flat < 0) | (flat >= len(up))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"prefs[{i // r}, {i % r}]: {flat[i]} is not a node index in "
                         f"0..{len(up) - 1}")
    for k, row in enumerate(np.asarray(prefs).tolist()):
        out_node[k], out_pos[k] = -1, -1
        for j, node in enumerate(row):
            if up[node]:
                out_node[k], out_pos[k] = node, j
                break


from ._pycore_algos import *  # noqa: E402,F403
from ._pycore_slots import *  # noqa: E402,F403
