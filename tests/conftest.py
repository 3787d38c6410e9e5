"""Shared fixtures of the test suite: fixed-seed key sets, ring configurations, the oracle.

Sizes
-----
The suite runs twice (``python -m pytest`` and ``RINGGUARD_PUREPYTHON=1 python -m pytest``).
The pure-Python core costs ~5 us per key, so every key count goes through :func:`scaled`:
``N_KEYS`` is 100_000 on the compiled core and 3_000 on the pure-Python one.

The oracle
----------
``ringguard.reference`` is as slow as the pure-Python core, and the parity tests compare
~100k keys against many ring configurations. The reference answers are therefore computed
in two halves, each once per session:

* the reference *key hashes* of every key set (``reference.xxh64`` over
  ``reference.canonical_keys``, ``reference.ketama_hash`` over ``reference.ketama_keys``);
* the reference *points* of every ring configuration (``reference.Ring.points()``).

:func:`model_assign` composes them with the lookup rule of the contract (first point >= h,
or > h for uhashring, wrapping) and :func:`model_replicas` with the walk of section 5,
written here from the contract. ``test_ring.py``/``test_ketama.py`` check on a sample of
every key set and configuration that this composition equals ``reference.Ring.assign`` and
``reference.Ring.replicas`` themselves, so the 100k-key parity is parity with the reference.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import ringguard
from ringguard import reference as ref

# ---- sizes -------------------------------------------------------------------------------

PURE_PYTHON = ringguard.BACKEND == "python"


def scaled(n: int, pure_python: int | None = None) -> int:
    """``n`` on the compiled core; ``pure_python`` (default ``n // 33``, >= 200) otherwise."""
    if not PURE_PYTHON:
        return n
    return pure_python if pure_python is not None else max(200, n // 33)


N_KEYS = scaled(100_000, 3_000)  # keys per parity data set
N_CHECK = scaled(2_000, 300)  # keys on which the oracle is checked against reference.Ring
# threads=3 must really split into 3 chunks of >= 16384 keys (placement.base._MIN_CHUNK)
N_THREADS = scaled(100_000, 3 * 16384 + 100)

SEED = 20240917

# ---- hypothesis --------------------------------------------------------------------------

settings.register_profile(
    "dev",
    max_examples=scaled(60, 25),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ci",
    max_examples=scaled(30, 15),
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# ---- assertions --------------------------------------------------------------------------


def assert_same(got: np.ndarray, expected: np.ndarray, what: str = "") -> None:
    """``got`` is an int32 array equal to ``expected``; report the first differing row."""
    assert isinstance(got, np.ndarray), type(got)
    assert got.dtype == np.int32, (what, got.dtype)
    exp = np.asarray(expected)
    assert got.shape == exp.shape, (what, got.shape, exp.shape)
    diff = got != exp
    if diff.ndim > 1:
        diff = diff.any(axis=tuple(range(1, diff.ndim)))
    bad = np.flatnonzero(diff)
    assert bad.size == 0, (
        f"{what}: {bad.size} of {len(diff)} differ; first at {bad[0]}: "
        f"got {got[bad[0]].tolist()}, expected {exp[bad[0]].tolist()}"
    )


# ---- key sets ----------------------------------------------------------------------------


@dataclass
class KeySet:
    """A fixed list of keys and (lazily, once) their reference hashes."""

    name: str
    items: list[Any]
    _xxh: np.ndarray | None = field(default=None, repr=False)
    _ket: np.ndarray | None = field(default=None, repr=False)

    @property
    def xxh(self) -> np.ndarray:
        """``reference.xxh64`` of the canonical bytes of every key (uint64)."""
        if self._xxh is None:
            self._xxh = np.array(
                [ref.xxh64(b, 0) for b in ref.canonical_keys(self.items)], dtype=np.uint64
            )
        return self._xxh

    @property
    def ket(self) -> np.ndarray:
        """``reference.ketama_hash`` of the ketama bytes of every key (uint64)."""
        if self._ket is None:
            self._ket = np.array(
                [ref.ketama_hash(b) for b in ref.ketama_keys(self.items)], dtype=np.uint64
            )
        return self._ket

    def hashes(self, ring: ref.Ring) -> np.ndarray:
        return self.ket if ring.algorithm == "ketama-md5@1" else self.xxh

    def __len__(self) -> int:
        return len(self.items)


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_/#. "
# Latin-1, Greek, Cyrillic, CJK, Hangul, and astral characters (emoji, musical symbols,
# the last code point); U+0000 may occur inside a key but never at its end.
_WIDE = "éßøÆñüÿΩλжЯ中文字한국\u0300\u200d\uffff😀🎉𝄞\U0010ffff\U00020000\x00\x7f"


def make_str_keys(n: int, seed: int, max_len: int = 24) -> list[str]:
    """Random str keys: ASCII, non-ASCII and astral, lengths 0..max_len, no trailing NUL."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        size = rng.randint(0, max_len)
        if i % 4 == 3:
            s = "".join(rng.choices(_WIDE + _LETTERS, k=size))
        else:
            s = "".join(rng.choices(_LETTERS, k=size))
        out.append(s.rstrip("\x00"))
    return out


def make_bytes_keys(n: int, seed: int, max_len: int = 24) -> list[bytes]:
    """Random bytes keys: any byte values (NUL inside), lengths 0..max_len, no trailing NUL."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        b = rng.randbytes(rng.randint(0, max_len))
        out.append(b.rstrip(b"\x00"))
    return out


def _int_universe(seed: int) -> list[int]:
    """Distinct integers of every width, negatives and values >= 2**63 included."""
    rng = np.random.default_rng(seed)
    m = 1 if not PURE_PYTHON else 30
    edges = [0, 1, -1, 2, 7, 255, 256, -128, 127, 2**15 - 1, -(2**15), 2**16 - 1,
             2**31 - 1, -(2**31), 2**32 - 1, 2**32, 2**63 - 1, -(2**63), 2**63, 2**64 - 1,
             2**64 - 2, 10**18, -(10**18)]
    parts: list[Any] = [
        edges,
        range(-128, 128),
        range(0, 256),
        rng.integers(-(2**15), 2**15, 4000 // m),
        rng.integers(0, 2**16, 4000 // m),
        rng.integers(-(2**31), 2**31, 8000 // m),
        rng.integers(0, 2**32, 8000 // m),
        rng.integers(-(2**63), 2**63 - 1, 30000 // m, dtype=np.int64),
        rng.integers(2**63, 2**64 - 1, 15000 // m, dtype=np.uint64, endpoint=True),
        rng.integers(0, 2**63, 15000 // m, dtype=np.uint64),
    ]
    return sorted({int(v) for part in parts for v in part})


INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


@dataclass
class IntKeys:
    """An integer key set drawn from the universe: values, their universe rows, the set."""

    values: list[int]
    idx: np.ndarray
    keyset: KeySet


class Data:
    """Every key set of the session, built on first use (``keyset("str")`` etc.)."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def _get(self, name: str, make: Callable[[], Any]) -> Any:
        if name not in self._cache:
            self._cache[name] = make()
        return self._cache[name]

    def _mixed(self) -> KeySet:
        s = make_str_keys(N_KEYS, SEED + 3)
        b = make_bytes_keys(N_KEYS, SEED + 4)
        rng = random.Random(SEED + 5)
        return KeySet("mixed", [s[i] if rng.random() < 0.5 else b[i] for i in range(N_KEYS)])

    @property
    def universe(self) -> KeySet:
        return self._get("universe", lambda: KeySet("universe", _int_universe(SEED + 6)))

    def ints(self, dtype: str | None = None) -> IntKeys:
        """N_KEYS integers that fit ``dtype`` (None: any, as Python ints), with their hashes."""

        def make() -> IntKeys:
            uni = self.universe
            if dtype is None:
                fit = np.arange(len(uni))
                seed = SEED + 7
            else:
                info = np.iinfo(np.dtype(dtype))
                fit = np.array([i for i, v in enumerate(uni.items) if info.min <= v <= info.max])
                seed = SEED + 8 + INT_DTYPES.index(dtype)
            idx = np.random.default_rng(seed).choice(fit, size=N_KEYS)
            values = [uni.items[i] for i in idx.tolist()]
            ks = KeySet(f"int-{dtype}", values, uni.xxh[idx], uni.ket[idx])
            return IntKeys(values, idx, ks)

        return self._get(f"ints-{dtype}", make)

    def keyset(self, name: str) -> KeySet:
        """``"str"``, ``"bytes"``, ``"mixed"``, ``"int"`` or ``"int-<dtype>"``."""
        if name == "int":
            return self.ints(None).keyset
        if name.startswith("int-"):
            return self.ints(name[4:]).keyset
        makers: dict[str, Callable[[], KeySet]] = {
            "str": lambda: KeySet("str", make_str_keys(N_KEYS, SEED + 1)),
            "bytes": lambda: KeySet("bytes", make_bytes_keys(N_KEYS, SEED + 2)),
            "mixed": self._mixed,
        }
        ks = self._get(name, makers[name])
        assert isinstance(ks, KeySet)
        return ks

    def items(self, name: str) -> list[Any]:
        return self.keyset(name).items


@pytest.fixture(scope="session")
def data() -> Data:
    return Data()


# ---- containers: the same keys in every accepted form ------------------------------------
#
# A container entry is (key set name, container name, build); build(data) returns the
# container and the selector of the key set rows it holds (``ALL``, or a slice for
# strided/sliced containers).

Selector = slice
Build = Callable[[Data], tuple[Any, Selector]]
ALL = slice(None)
EVERY_2ND = slice(None, None, 2)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _pa() -> Any:
    return pytest.importorskip("pyarrow")


def _pd() -> Any:
    return pytest.importorskip("pandas")


def _chunks(items: Sequence[Any], pa_type: Any) -> Any:
    """A chunked array with an empty chunk and a one-key chunk among others."""
    pa = _pa()
    n = len(items)
    cuts = [0, n // 7, n // 7, n // 2, n - 1, n]
    return pa.chunked_array(
        [pa.array(list(items[a:b]), type=pa_type) for a, b in zip(cuts, cuts[1:], strict=False)],
        type=pa_type,
    )


def _sliced_chunks(items: Sequence[Any], pa_type: Any) -> Any:
    """A chunked array whose chunks are slices (offset != 0) of one array."""
    pa = _pa()
    arr = pa.array(list(items), type=pa_type)
    k = len(arr) // 3
    return pa.chunked_array([arr.slice(0, k), arr.slice(k, k), arr.slice(2 * k)])


def _stringdtype(items: list[str]) -> np.ndarray:
    dtypes = getattr(np, "dtypes", None)
    if dtypes is None or not hasattr(dtypes, "StringDType"):
        pytest.skip("NumPy without StringDType")
    return np.array(items, dtype=dtypes.StringDType())


def _big_endian(a: np.ndarray) -> np.ndarray:
    out = a.astype(a.dtype.newbyteorder(">"))
    assert out.dtype.byteorder == ">" or out.dtype.itemsize == 1
    return out


def _strided(a: np.ndarray) -> tuple[np.ndarray, Selector]:
    out = a[::2]
    assert not out.flags.c_contiguous
    return out, EVERY_2ND


def _pd_string(storage: str) -> Build:
    def build(d: Data) -> tuple[Any, Selector]:
        pd = _pd()
        if storage == "pyarrow":
            _pa()
        return pd.Series(d.items("str"), dtype=f"string[{storage}]"), ALL

    return build


def _text_containers() -> list[tuple[str, str, Build]]:
    S = "str"
    out: list[tuple[str, str, Build]] = [
        (S, "list", lambda d: (d.items(S), ALL)),
        (S, "tuple", lambda d: (tuple(d.items(S)), ALL)),
        (S, "numpy-U", lambda d: (np.array(d.items(S)), ALL)),
        (S, "numpy-U-big-endian", lambda d: (_big_endian(np.array(d.items(S))), ALL)),
        (S, "numpy-U-strided", lambda d: _strided(np.array(d.items(S)))),
        (S, "numpy-U-readonly", lambda d: (_readonly(np.array(d.items(S))), ALL)),
        (S, "numpy-object", lambda d: (np.array(d.items(S), dtype=object), ALL)),
        (S, "numpy-object-strided", lambda d: _strided(np.array(d.items(S), dtype=object))),
        (S, "numpy-StringDType", lambda d: (_stringdtype(d.items(S)), ALL)),
        (S, "numpy-StringDType-strided", lambda d: _strided(_stringdtype(d.items(S)))),
        (S, "pandas-object", lambda d: (_pd().Series(d.items(S), dtype=object), ALL)),
        (S, "pandas-string[python]", _pd_string("python")),
        (S, "pandas-string[pyarrow]", _pd_string("pyarrow")),
        (S, "pandas-default-str", lambda d: (_pd().Series(d.items(S)), ALL)),
        (S, "pandas-default-str-tail", lambda d: (_pd().Series(d.items(S))[5:], slice(5, None))),
        (S, "arrow-string", lambda d: (_pa().array(d.items(S), type=_pa().string()), ALL)),
        (S, "arrow-large_string",
         lambda d: (_pa().array(d.items(S), type=_pa().large_string()), ALL)),
        (S, "arrow-string-slice5", lambda d: (_pa().array(d.items(S)).slice(5), slice(5, None))),
        (S, "arrow-large_string-window", lambda d: (
            _pa().array(d.items(S), type=_pa().large_string()).slice(7, N_KEYS - 20),
            slice(7, N_KEYS - 13))),
        (S, "arrow-chunked-string", lambda d: (_chunks(d.items(S), _pa().string()), ALL)),
        (S, "arrow-chunked-large_string",
         lambda d: (_chunks(d.items(S), _pa().large_string()), ALL)),
        (S, "arrow-chunked-of-slices",
         lambda d: (_sliced_chunks(d.items(S), _pa().string()), ALL)),
    ]
    B = "bytes"
    out += [
        (B, "list", lambda d: (d.items(B), ALL)),
        (B, "numpy-S", lambda d: (np.array(d.items(B)), ALL)),
        (B, "numpy-S-strided", lambda d: _strided(np.array(d.items(B)))),
        (B, "numpy-S-readonly", lambda d: (_readonly(np.array(d.items(B))), ALL)),
        (B, "numpy-object", lambda d: (np.array(d.items(B), dtype=object), ALL)),
        (B, "pandas-object", lambda d: (_pd().Series(d.items(B), dtype=object), ALL)),
        (B, "arrow-binary", lambda d: (_pa().array(d.items(B), type=_pa().binary()), ALL)),
        (B, "arrow-large_binary",
         lambda d: (_pa().array(d.items(B), type=_pa().large_binary()), ALL)),
        (B, "arrow-binary-slice5",
         lambda d: (_pa().array(d.items(B), type=_pa().binary()).slice(5), slice(5, None))),
        (B, "arrow-chunked-binary", lambda d: (_chunks(d.items(B), _pa().binary()), ALL)),
        (B, "arrow-chunked-of-slices-large_binary",
         lambda d: (_sliced_chunks(d.items(B), _pa().large_binary()), ALL)),
    ]
    M = "mixed"
    out += [
        (M, "list", lambda d: (d.items(M), ALL)),
        (M, "tuple", lambda d: (tuple(d.items(M)), ALL)),
        (M, "numpy-object", lambda d: (np.array(d.items(M), dtype=object), ALL)),
        (M, "pandas-object", lambda d: (_pd().Series(d.items(M), dtype=object), ALL)),
    ]
    return out


def _np_ints(dtype: str, variant: str) -> Build:
    def build(d: Data) -> tuple[Any, Selector]:
        arr = np.array(d.ints(dtype).values, dtype=dtype)
        if variant == "big-endian":
            return _big_endian(arr), ALL
        if variant == "strided":
            return _strided(arr)
        if variant == "readonly":
            return _readonly(arr), ALL
        return arr, ALL

    return build


def _numpy_scalars(d: Data) -> tuple[Any, Selector]:
    vals = d.ints(None).values
    return [np.uint64(v) if v >= 2**63 else np.int64(v) for v in vals], ALL


def _pd_ints(base: str, dtype: str) -> Build:
    def build(d: Data) -> tuple[Any, Selector]:
        return _pd().Series(np.array(d.ints(base).values, dtype=base), dtype=dtype), ALL

    return build


def _pa_ints(dtype: str, variant: str = "") -> Build:
    def build(d: Data) -> tuple[Any, Selector]:
        pa = _pa()
        typ = pa.from_numpy_dtype(np.dtype(dtype))
        values = d.ints(dtype).values
        if variant == "slice":
            return pa.array(values, type=typ).slice(5), slice(5, None)
        if variant == "chunked":
            return _chunks(values, typ), ALL
        return pa.array(values, type=typ), ALL

    return build


def _int_containers() -> list[tuple[str, str, Build]]:
    out: list[tuple[str, str, Build]] = [
        ("int", "list", lambda d: (d.ints(None).values, ALL)),
        ("int", "tuple", lambda d: (tuple(d.ints(None).values), ALL)),
        ("int", "list-numpy-scalars", _numpy_scalars),
        ("int", "numpy-object", lambda d: (np.array(d.ints(None).values, dtype=object), ALL)),
    ]
    for dt in INT_DTYPES:
        for variant in ("plain", "big-endian", "strided", "readonly"):
            out.append((f"int-{dt}", f"numpy-{dt}-{variant}", _np_ints(dt, variant)))
    for base, pdt in (("int64", "int64"), ("uint64", "uint64"), ("int64", "Int64"),
                      ("uint64", "UInt64")):
        out.append((f"int-{base}", f"pandas-{pdt}", _pd_ints(base, pdt)))
    for dt in INT_DTYPES:
        out.append((f"int-{dt}", f"arrow-{dt}", _pa_ints(dt)))
    out.append(("int-int64", "arrow-int64-slice5", _pa_ints("int64", "slice")))
    out.append(("int-uint64", "arrow-uint64-chunked", _pa_ints("uint64", "chunked")))
    out.append(("int-int8", "arrow-int8-chunked", _pa_ints("int8", "chunked")))
    return out


# (key set name, container name, build) of every accepted container
CONTAINERS: list[tuple[str, str, Build]] = _text_containers() + _int_containers()
CONTAINER_IDS = [f"{ks}:{name}" for ks, name, _ in CONTAINERS]


# ---- ring configurations -----------------------------------------------------------------

NODES10 = [f"node-{i}" for i in range(10)]
W10 = dict(zip(NODES10, [1.0, 2.5, 0.5, 1.0, 3.0, 0.75, 1.25, 1.0, 4.0, 0.3], strict=True))
ZONES10 = dict(
    zip(NODES10, ["z0", "z0", "z0", "z0", "z1", "z1", "z1", "z2", "z2", "z3"], strict=True))
NODES1000 = [f"shard-{i:04d}.db.example" for i in range(1000)]
_w_rng = random.Random(SEED + 10)
W1000 = {name: round(_w_rng.uniform(0.5, 2.0), 3) for name in NODES1000}
ZONES1000 = {name: f"rack-{_w_rng.randrange(7)}" for name in NODES1000}
K10 = {f"10.0.0.{i}:11211": w for i, w in enumerate([1, 2, 3, 1, 5, 8, 1, 2, 4, 7])}
K100 = [f"cache-{i:03d}.example:11211" for i in range(100)]

Pair = tuple[ringguard.Ring, ref.Ring]


def _base_configs() -> dict[str, Callable[[Any], Any]]:
    """name -> build(module), module being ringguard or ringguard.reference."""
    return {
        # ring-xxh64@1
        "1-node": lambda m: m.Ring(["solo"]),
        "2-nodes": lambda m: m.Ring(["alpha", "beta"]),
        "2-nodes-vnodes1": lambda m: m.Ring(["alpha", "beta"], vnodes=1),
        "10-weighted": lambda m: m.Ring(NODES10, weights=W10),
        "10-vnodes7": lambda m: m.Ring(NODES10, vnodes=7),
        "10-vnodes500": lambda m: m.Ring(NODES10, vnodes=500),
        "1000-weighted": lambda m: m.Ring(W1000, vnodes=10),
        "10-zones": lambda m: m.Ring(NODES10, weights=W10, zones=ZONES10, vnodes=50),
        "1000-zones": lambda m: m.Ring(NODES1000, zones=ZONES1000, vnodes=8),
        # ketama-md5@1
        "libketama-1": lambda m: m.Ring.ketama(["only:11211"]),
        "libketama-2": lambda m: m.Ring.ketama({"127.0.0.1:11211": 600, "127.0.0.1:11212": 400}),
        "libketama-10w": lambda m: m.Ring.ketama(K10),
        "libketama-100": lambda m: m.Ring.ketama(K100),
        "uhashring-1": lambda m: m.Ring.ketama(["only:11211"], compat="uhashring"),
        "uhashring-2": lambda m: m.Ring.ketama(
            {"127.0.0.1:11211": 600, "127.0.0.1:11212": 400}, compat="uhashring"),
        "uhashring-10w": lambda m: m.Ring.ketama(K10, compat="uhashring"),
        "uhashring-100": lambda m: m.Ring.ketama(K100, compat="uhashring"),
    }


_DERIVED: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "10-weighted+add": ("10-weighted", lambda r: r.add("node-new", 1.5)),
    "10-weighted-remove": ("10-weighted", lambda r: r.remove("node-4")),
    "1000-weighted-remove": ("1000-weighted", lambda r: r.remove("shard-0500.db.example")),
    "10-zones+add": ("10-zones", lambda r: r.add("node-new", 2.0, zone="z3")),
    "10-zones-remove": ("10-zones", lambda r: r.remove("node-9")),  # z3 disappears
    "libketama-10w+add": ("libketama-10w", lambda r: r.add("10.0.0.99:11211", 3)),
    "libketama-10w-remove": ("libketama-10w", lambda r: r.remove("10.0.0.5:11211")),
    "uhashring-10w+add": ("uhashring-10w", lambda r: r.add("10.0.0.99:11211", 3)),
    "uhashring-10w-remove": ("uhashring-10w", lambda r: r.remove("10.0.0.5:11211")),
}

RING_CONFIGS = [
    "1-node", "2-nodes", "2-nodes-vnodes1", "10-weighted", "10-vnodes7", "10-vnodes500",
    "1000-weighted", "10-weighted+add", "10-weighted-remove", "1000-weighted-remove",
]
ZONED_CONFIGS = ["10-zones", "1000-zones", "10-zones+add", "10-zones-remove"]
KETAMA_CONFIGS = [
    "libketama-1", "libketama-2", "libketama-10w", "libketama-100", "libketama-10w+add",
    "libketama-10w-remove", "uhashring-1", "uhashring-2", "uhashring-10w", "uhashring-100",
    "uhashring-10w+add", "uhashring-10w-remove",
]


@functools.cache
def ring_pair(name: str) -> Pair:
    """(compiled ring, reference ring) of a named configuration, built once per session.

    Derived configurations are made with each twin's own ``add``/``remove``.
    """
    if name in _DERIVED:
        base, change = _DERIVED[name]
        fast, slow = ring_pair(base)
        return change(fast), change(slow)
    build = _base_configs()[name]
    return build(ringguard), build(ref)


# ---- the oracle --------------------------------------------------------------------------


def model_points(ring: ref.Ring, hashes: np.ndarray) -> np.ndarray:
    """Index of each key's point: first value >= h (> h for uhashring), wrapping to 0."""
    values, _ = ring.points()
    side: Any = "right" if ring.compat == "uhashring" else "left"
    pos = np.searchsorted(values, np.asarray(hashes, dtype=np.uint64), side=side)
    pos[pos == len(values)] = 0
    return pos


def model_assign(ring: ref.Ring, hashes: np.ndarray) -> np.ndarray:
    """What ``ring.assign`` returns for keys with these reference hashes."""
    _, owners = ring.points()
    return owners[model_points(ring, hashes)].astype(np.int32)


def walk_replicas(owners: Sequence[int], zone_of: Sequence[Any] | None, start: int,
                  n: int, every_zone: set[Any] | None = None) -> list[int]:
    """Contract section 5 for one key, from its point index ``start``.

    ``every_zone``: the zones of the nodes that own points (computed when not given).
    """
    count = len(owners)
    seen: set[int] = set()
    picked: list[int] = []
    deferred: list[int] = []
    used: set[Any] = set()
    if zone_of is not None and every_zone is None:
        every_zone = {zone_of[o] for o in set(owners)}
    for step in range(count):
        node = owners[(start + step) % count]
        if node in seen:
            continue
        seen.add(node)
        if zone_of is None or zone_of[node] not in used:
            picked.append(node)
            if zone_of is not None:
                used.add(zone_of[node])
        else:
            deferred.append(node)
        if len(picked) == n:
            break
        if used == every_zone and len(picked) + len(deferred) >= n:
            break
    return (picked + deferred)[:n]


def model_replicas(ring: ref.Ring, hashes: np.ndarray, n: int) -> np.ndarray:
    """What ``ring.replicas(keys, n)`` returns (one walk per distinct start point)."""
    pos = model_points(ring, hashes)
    _, owners_arr = ring.points()
    owners = owners_arr.tolist()
    zones = ring.zones
    zone_of = None if zones is None else [zones[name] for name in ring.nodes]
    every_zone = None if zone_of is None else {zone_of[o] for o in set(owners)}
    starts, inverse = np.unique(pos, return_inverse=True)
    table = np.array([walk_replicas(owners, zone_of, int(s), n, every_zone)
                      for s in starts.tolist()], dtype=np.int32).reshape(len(starts), n)
    return table[inverse.reshape(-1)]


# ---- golden vectors (tests/vectors/*.json, written by tests/make_vectors.py) -------------

VECTORS = Path(__file__).with_name("vectors")


def load_vectors(prefix: str) -> list[dict[str, Any]]:
    files = sorted(VECTORS.glob(f"{prefix}*.json"))
    assert files, f"no {prefix}*.json in {VECTORS}: run tests/make_vectors.py"
    return [json.loads(f.read_text()) | {"file": f.name} for f in files]


def decode_key(k: dict[str, Any]) -> str | bytes | int:
    if k["type"] == "str":
        return str(k["value"])
    if k["type"] == "bytes":
        return bytes.fromhex(k["value"])
    assert k["type"] == "int"
    return int(k["value"])


def build_from_vector(module: Any, config: dict[str, Any]) -> Any:
    if config["algorithm"] == "ring-xxh64@1":
        return module.Ring(config["nodes"], weights=config.get("weights"),
                           zones=config.get("zones"), vnodes=config["vnodes"])
    return module.Ring.ketama(config["nodes"], weights=config.get("weights"),
                              compat=config["compat"])


def points_sha256(ring: Any) -> str:
    values, owners = ring.points()
    text = "".join(f"{int(v)} {ring.nodes[o]}\n"
                   for v, o in zip(values.tolist(), owners.tolist(), strict=True))
    return hashlib.sha256(text.encode()).hexdigest()


def check_vector(module: Any, vec: dict[str, Any]) -> None:
    ring = build_from_vector(module, vec["config"])
    assert len(ring.points()[0]) == vec["npoints"], vec["file"]
    assert points_sha256(ring) == vec["points_sha256"], vec["file"]
    keys = [decode_key(k) for k in vec["keys"]]
    kinds = {type(k) for k in keys}
    assert kinds == {str, bytes, int} or len(keys) < 150, kinds
    by_type: dict[type, list[int]] = {}
    for i, k in enumerate(keys):
        by_type.setdefault(type(k), []).append(i)
    names: list[str | None] = [None] * len(keys)
    for rows in by_type.values():  # one batch per key type (a batch cannot mix int and str)
        idx = ring.assign([keys[i] for i in rows])
        for i, j in zip(rows, idx.tolist(), strict=True):
            names[i] = ring.nodes[j]
    assert names == vec["expected"], vec["file"]
    assert [ring.node_for(k) for k in keys[:10]] == vec["expected"][:10]
    if "replicas" in vec:
        n = vec["replicas_n"]
        got: list[list[str] | None] = [None] * len(keys)
        for rows in by_type.values():
            reps = ring.replicas([keys[i] for i in rows], n)
            for i, row in zip(rows, reps.tolist(), strict=True):
                got[i] = [ring.nodes[j] for j in row]
        assert got == vec["replicas"], vec["file"]


# ---- a real redis-server for the backend tests -------------------------------------------

REDIS_REQUIRED = os.environ.get("RINGGUARD_REQUIRE_REDIS", "") not in ("", "0")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server on a free loopback port for one test module; skipped (or failed
    under RINGGUARD_REQUIRE_REDIS) when redis-server is not installed."""
    if shutil.which("redis-server") is None:
        if REDIS_REQUIRED:
            pytest.fail("RINGGUARD_REQUIRE_REDIS is set but redis-server is not installed")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    d = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(d)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(timeout=10)

