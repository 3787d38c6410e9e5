#!/usr/bin/env python
"""Side-by-side throughput comparison for ringguard.

One run prints one table: every implementation is measured in the same
process, on the same inputs (fixed seeds), so the ratios in the table are
measured side by side rather than copied from different runs.

    python benchmarks/compare.py                 # full sizes (10M uint64, 2M strings)
    python benchmarks/compare.py --quick         # 1M uint64, 200k strings
    python benchmarks/compare.py --json out.json # also dump every number
    python benchmarks/compare.py --check         # exit 1 if a TARGET is missed

Timing: ``time.perf_counter``; each measurement is one warm-up call followed
by the best (minimum) of ``--repeats`` calls, with the garbage collector
disabled while timing (as ``timeit`` does).  Pure-Python implementations
(``ringguard.reference``, ``uhashring``) are measured on a prefix subset of the
same keys and reported as keys/s.

This module is also imported by ``benchmarks/conftest.py`` for the data
generators and the NumPy comparison path; it does nothing at import time.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

SEED = 20240601
N_NODES = 10
VNODES = 160

FULL_SIZES = dict(u64=10_000_000, strs=2_000_000, ref=20_000, peer=20_000)
QUICK_SIZES = dict(u64=1_000_000, strs=200_000, ref=5_000, peer=5_000)

# Targets (see README.md).  Checked against the table of one run.
TARGET_U64_MKPS = 150.0  # Ring.assign, uint64 keys, M keys/s
TARGET_U64_VS_NUMPY = 20.0  # ... and >= 20x the NumPy path
TARGET_STR_VECTOR_MKPS = 30.0  # strings from a NumPy S array / pyarrow array
TARGET_STR_LIST_MKPS = 10.0  # strings from a Python list
TARGET_STR_VS_REF = 300.0  # compiled vs ringguard.reference on strings
TARGET_THREADS2_SPEEDUP = 1.7  # threads=2 vs threads=1 (ideal ~2x on 2 cores)


def node_names(n: int = N_NODES) -> list[str]:
    return [f"node{i}" for i in range(n)]


# ---------------------------------------------------------------------------
# Data (fixed seeds)
# ---------------------------------------------------------------------------


def make_u64_keys(n: int, seed: int = SEED) -> np.ndarray:
    """n uniformly random uint64 keys (full 64-bit range)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(np.uint64).max, size=n, dtype=np.uint64, endpoint=True)


def make_str_keys(n: int, seed: int = SEED + 1) -> list[str]:
    """n keys of the form "order:%d" with random 1..12-digit ids (Python list of str)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 10**12, size=n, dtype=np.int64)
    return [f"order:{i}" for i in ids.tolist()]


def to_S_array(strs: list[str]) -> np.ndarray:
    return np.array(strs, dtype="S")


def to_arrow(strs: list[str]):
    import pyarrow as pa

    return pa.array(strs, type=pa.string())


# ---------------------------------------------------------------------------
# The NumPy comparison path
# ---------------------------------------------------------------------------
#
# The best vectorised placement pure NumPy can do for integer keys:
#   1. hash: a 64-bit mixer in NumPy uint64 arithmetic (wrapping multiplies),
#   2. search: np.searchsorted(points, h, side="left") on the sorted ring,
#   3. gather: owners[idx], with the wrap-around (idx == len(points) -> 0)
#      folded into the table by appending owners[0] (no np.where pass).
# Work is done in cache-sized chunks with preallocated buffers and in-place
# ufuncs, which is markedly faster than whole-array temporaries at 10M keys.
#
# Two mixers are provided:
#   * splitmix64 (the cheapest good 64-bit mixer; the NumPy *baseline* used
#     for the "vs NumPy path" ratios and the 20x target);
#   * XXH64 of the key's 8 little-endian bytes, seed 0, unrolled for the
#     8-byte case -- exactly the key hash of the placement contract, so this
#     path must return the same owners as Ring.assign (checked by compare.py).

_U = np.uint64
SM_C0 = _U(0x9E3779B97F4A7C15)
SM_C1 = _U(0xBF58476D1CE4E5B9)
SM_C2 = _U(0x94D049BB133111EB)

P64_1 = _U(0x9E3779B185EBCA87)
P64_2 = _U(0xC2B2AE3D27D4EB4F)
P64_3 = _U(0x165667B19E3779F9)
P64_4 = _U(0x85EBCA77C2B2AE63)
P64_5 = _U(0x27D4EB2F165667C5)
XXH8_INIT = _U((0x27D4EB2F165667C5 + 8) & 0xFFFFFFFFFFFFFFFF)  # seed 0 + PRIME64_5 + len

DEFAULT_CHUNK = 1 << 16


def contract_ring_points(nodes: list[str], vnodes: int = VNODES):
    """Sorted ring points and owner indices per the placement contract (section 3).

    Equal weights: every node gets ``vnodes`` points ``XXH64(f"{name}#{j}")``,
    sorted by (value, name, j).  Needs the ``xxhash`` package; returns None
    if it is missing.
    """
    try:
        import xxhash
    except ImportError:
        return None
    entries = []
    for idx, name in enumerate(nodes):
        for j in range(vnodes):
            entries.append((xxhash.xxh64_intdigest(f"{name}#{j}".encode(), seed=0), name, j, idx))
    entries.sort()
    points = np.array([e[0] for e in entries], dtype=np.uint64)
    owners = np.array([e[3] for e in entries], dtype=np.int32)
    return points, owners


def synthetic_ring_points(n_nodes: int, vnodes: int = VNODES, seed: int = SEED + 2):
    """Same-sized random ring (used only if xxhash is unavailable; cost is identical)."""
    rng = np.random.default_rng(seed)
    points = rng.integers(
        0, np.iinfo(np.uint64).max, size=n_nodes * vnodes, dtype=np.uint64, endpoint=True
    )
    owners = np.repeat(np.arange(n_nodes, dtype=np.int32), vnodes)
    order = np.argsort(points, kind="stable")
    return points[order], owners[order]


class NumpyPath:
    """Vectorised NumPy placement: mixer + np.searchsorted + gather."""

    def __init__(self, points: np.ndarray, owners: np.ndarray, chunk: int = DEFAULT_CHUNK):
        self.points = np.ascontiguousarray(points, dtype=np.uint64)
        # owners[0] appended: idx == len(points) (past the last point) wraps to point 0.
        self.owners_ext = np.ascontiguousarray(np.append(owners, owners[:1]), dtype=np.int32)
        self.chunk = int(chunk)
        self._z = np.empty(self.chunk, dtype=np.uint64)
        self._t = np.empty(self.chunk, dtype=np.uint64)
        self._buckets: dict = {}

    # -- mixers, in place on z (t is scratch) ---------------------------------
    @staticmethod
    def _splitmix64(x, z, t):
        np.add(x, SM_C0, out=z)
        np.right_shift(z, _U(30), out=t)
        np.bitwise_xor(z, t, out=z)
        np.multiply(z, SM_C1, out=z)
        np.right_shift(z, _U(27), out=t)
        np.bitwise_xor(z, t, out=z)
        np.multiply(z, SM_C2, out=z)
        np.right_shift(z, _U(31), out=t)
        np.bitwise_xor(z, t, out=z)

    @staticmethod
    def _xxh64_u64(x, z, t):
        # k1 = rotl(x * P2, 31) * P1
        np.multiply(x, P64_2, out=z)
        np.right_shift(z, _U(33), out=t)
        np.left_shift(z, _U(31), out=z)
        np.bitwise_or(z, t, out=z)
        np.multiply(z, P64_1, out=z)
        # h = rotl(init ^ k1, 27) * P1 + P4
        np.bitwise_xor(z, XXH8_INIT, out=z)
        np.right_shift(z, _U(37), out=t)
        np.left_shift(z, _U(27), out=z)
        np.bitwise_or(z, t, out=z)
        np.multiply(z, P64_1, out=z)
        np.add(z, P64_4, out=z)
        # avalanche
        np.right_shift(z, _U(33), out=t)
        np.bitwise_xor(z, t, out=z)
        np.multiply(z, P64_2, out=z)
        np.right_shift(z, _U(29), out=t)
        np.bitwise_xor(z, t, out=z)
        np.multiply(z, P64_3, out=z)
        np.right_shift(z, _U(32), out=t)
        np.bitwise_xor(z, t, out=z)

    def _run(self, keys: np.ndarray, mixer) -> np.ndarray:
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        n = keys.shape[0]
        out = np.empty(n, dtype=np.int32)
        points, owners_ext, chunk = self.points, self.owners_ext, self.chunk
        for s in range(0, n, chunk):
            e = min(s + chunk, n)
            m = e - s
            z = self._z[:m]
            t = self._t[:m]
            mixer(keys[s:e], z, t)
            idx = np.searchsorted(points, z, side="left")
            # mode="clip" skips the bounds-check copy; idx is always in range.
            np.take(owners_ext, idx, out=out[s:e], mode="clip")
        return out

    def _bucket_tables(self, bits: int):
        tabs = self._buckets.get(bits)
        if tabs is None:
            shift = _U(64 - bits)
            starts = np.arange(1 << bits, dtype=np.uint64) << shift
            first = np.searchsorted(self.points, starts, side="left")  # first point >= bucket start
            nxt = np.append(first[1:], self.points.shape[0])
            owner = np.ascontiguousarray(self.owners_ext[first], dtype=np.int32)
            has_point = nxt > first  # bucket holds >= 1 point
            tabs = self._buckets[bits] = (shift, owner, has_point)
        return tabs

    def _run_bucketed(self, keys: np.ndarray, mixer, bits: int) -> np.ndarray:
        # A key whose bucket holds no ring point is owned by the first point at or after
        # the bucket start (one table gather); only keys in the ~2.4% of buckets that
        # hold a point (bits=16, 1600 points) need the np.searchsorted fix-up.
        shift, b_owner, b_mixed = self._bucket_tables(bits)
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        n = keys.shape[0]
        out = np.empty(n, dtype=np.int32)
        points, owners_ext, chunk = self.points, self.owners_ext, self.chunk
        for s in range(0, n, chunk):
            e = min(s + chunk, n)
            m = e - s
            z = self._z[:m]
            t = self._t[:m]
            mixer(keys[s:e], z, t)
            np.right_shift(z, shift, out=t)
            o = out[s:e]
            np.take(b_owner, t, out=o, mode="clip")
            sel = np.flatnonzero(np.take(b_mixed, t, mode="clip"))
            if sel.size:
                o[sel] = owners_ext[np.searchsorted(points, z[sel], side="left")]
        return out

    def assign_splitmix_bucketed(self, keys: np.ndarray, bits: int = 16) -> np.ndarray:
        """Tuned NumPy path: splitmix64 + 2**bits bucket table + searchsorted fix-up."""
        return self._run_bucketed(keys, self._splitmix64, bits)

    def assign_splitmix(self, keys: np.ndarray) -> np.ndarray:
        """Baseline NumPy path (splitmix64 mixer; not the contract's hash)."""
        return self._run(keys, self._splitmix64)

    def assign_xxh64(self, keys: np.ndarray) -> np.ndarray:
        """Contract-exact NumPy path (XXH64 of the 8 LE bytes, seed 0)."""
        return self._run(keys, self._xxh64_u64)

    def hash_xxh64(self, keys: np.ndarray) -> np.ndarray:
        """XXH64 of each key's 8 little-endian bytes (for self-tests)."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        z = np.empty_like(keys)
        t = np.empty_like(keys)
        self._xxh64_u64(keys, z, t)
        return z


def make_numpy_path(nodes: list[str], vnodes: int = VNODES, chunk: int = DEFAULT_CHUNK):
    """(NumpyPath, exact) -- exact is True when the ring points follow the contract."""
    pts = contract_ring_points(nodes, vnodes)
    exact = pts is not None
    if pts is None:
        pts = synthetic_ring_points(len(nodes), vnodes)
    return NumpyPath(pts[0], pts[1], chunk=chunk), exact


def roofline_copy(keys: np.ndarray, out32: np.ndarray) -> np.ndarray:
    """Memory-bandwidth roofline: read 8 bytes, write 4 bytes per key."""
    np.copyto(out32, keys, casting="unsafe")
    return out32


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------


def best_of(
    fn: Callable[[], Any],
    repeats: int,
    warmup: bool = True,
    min_time: float = 0.0,
    max_repeats: int = 200,
):
    """(best seconds, last result, timed calls).

    One warm-up call, then the minimum over at least `repeats` timed calls; fast calls
    are repeated further (up to `max_repeats`) until `min_time` seconds were spent timing,
    so that millisecond-scale measurements are not a best-of-5 lottery.
    """
    result = fn() if warmup else None
    best = math.inf
    spent = 0.0
    runs = 0
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        while runs < max(1, repeats) or (spent < min_time and runs < max_repeats):
            t0 = time.perf_counter()
            result = fn()
            dt = time.perf_counter() - t0
            runs += 1
            spent += dt
            if dt < best:
                best = dt
    finally:
        if gc_was_enabled:
            gc.enable()
    return best, result, runs


def best_of_interleaved(
    fns: list[Callable[[], Any]],
    repeats: int,
    min_time: float = 0.0,
    max_repeats: int = 200,
):
    """Like best_of for several functions, calling them round-robin (a, b, a, b, ...).

    Used where the *ratio* matters (threads=1 vs threads=2): a burst of load from
    other processes then hits both sides instead of one.  Returns a list of
    (best seconds, last result, timed calls).
    """
    results = [fn() for fn in fns]  # warm-up
    best = [math.inf] * len(fns)
    spent = 0.0
    runs = 0
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        while runs < max(1, repeats) or (spent < min_time and runs < max_repeats):
            for i, fn in enumerate(fns):
                t0 = time.perf_counter()
                results[i] = fn()
                dt = time.perf_counter() - t0
                spent += dt / len(fns)
                if dt < best[i]:
                    best[i] = dt
            runs += 1
    finally:
        if gc_was_enabled:
            gc.enable()
    return [(b, r, runs) for b, r in zip(best, results, strict=True)]


# ---------------------------------------------------------------------------
# Machine info
# ---------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine_info(ringguard_mod=None) -> dict:
    info = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_model": cpu_model(),
        "nproc": usable_cpus(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "ringguard": getattr(ringguard_mod, "__version__", "?")
        if ringguard_mod
        else "not importable",
        "ringguard_backend": getattr(ringguard_mod, "BACKEND", "?") if ringguard_mod else "n/a",
    }
    info["loadavg_start"] = loadavg()
    for mod in ("pyarrow", "uhashring", "xxhash"):
        try:
            m = __import__(mod)
            info[mod] = getattr(m, "__version__", getattr(m, "VERSION", "installed"))
        except ImportError:
            info[mod] = "not installed"
    return info


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@dataclass
class Row:
    workload: str
    impl: str
    role: str  # compiled | reference | peer | numpy | numpy-tuned | numpy-exact | roofline
    n_keys: int | None = None
    seconds: float | None = None
    note: str = ""
    base: str | None = None  # workload whose reference / NumPy rows the ratios use
    vs_reference: float | None = None
    vs_numpy: float | None = None
    runs: int | None = None  # timed calls (best of these)

    @property
    def mkps(self) -> float | None:
        if self.seconds is None or self.n_keys is None or self.seconds <= 0:
            return None
        return self.n_keys / self.seconds / 1e6


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    checks: list[tuple[str, str, str]] = field(
        default_factory=list
    )  # (name, PASS/FAIL/SKIP, detail)
    targets: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def find(self, workload: str, role: str | None = None, impl: str | None = None) -> Row | None:
        for r in self.rows:
            if (
                r.workload == workload
                and (role is None or r.role == role)
                and (impl is None or r.impl == impl)
            ):
                if r.mkps is not None:
                    return r
        return None

    def compute_ratios(self) -> None:
        for r in self.rows:
            if r.mkps is None:
                continue
            base = r.base or r.workload
            ref = self.find(base, role="reference")
            if ref is not None and r.role != "reference":
                r.vs_reference = r.mkps / ref.mkps
            npr = self.find(base, role="numpy")
            if npr is not None and r.role != "numpy":
                r.vs_numpy = r.mkps / npr.mkps


class Bench:
    """Runs one measurement, records a Row, never lets an exception escape."""

    def __init__(self, results: Results, repeats: int, min_time: float = 0.0, verbose: bool = True):
        self.results = results
        self.repeats = repeats
        self.min_time = min_time
        self.verbose = verbose

    def measure(
        self,
        workload: str,
        impl: str,
        role: str,
        n: int,
        fn: Callable[[], Any],
        note: str = "",
        base: str | None = None,
        repeats: int | None = None,
    ):
        row = Row(workload, impl, role, n_keys=n, note=note, base=base)
        result = None
        try:
            secs, result, runs = best_of(
                fn, self.repeats if repeats is None else repeats, min_time=self.min_time
            )
            row.seconds = secs
            row.runs = runs
        except Exception as exc:  # noqa: BLE001 - a benchmark must keep going
            row.note = f"error: {type(exc).__name__}: {exc}"[:160]
        self.results.add(row)
        if self.verbose:
            m = row.mkps
            status = f"{m:10.3f} M keys/s" if m is not None else row.note
            print(f"  .. {workload:<22} {impl:<34} {status}", file=sys.stderr, flush=True)
        return result

    def measure_interleaved(self, workload: str, specs: list[tuple], base: str | None = None):
        """specs: (impl, role, n, fn, note) measured round-robin; returns the results."""
        rows = [
            Row(workload, impl, role, n_keys=n, note=note, base=base)
            for impl, role, n, _, note in specs
        ]
        outs: list[Any] = [None] * len(specs)
        try:
            timed = best_of_interleaved(
                [sp[3] for sp in specs], self.repeats, min_time=self.min_time
            )
            for row, (secs, result, runs), i in zip(rows, timed, range(len(specs)), strict=True):
                row.seconds, row.runs, outs[i] = secs, runs, result
        except Exception as exc:  # noqa: BLE001
            for row in rows:
                row.note = f"error: {type(exc).__name__}: {exc}"[:160]
        for row in rows:
            self.results.add(row)
            if self.verbose:
                m = row.mkps
                status = f"{m:10.3f} M keys/s" if m is not None else row.note
                print(f"  .. {workload:<22} {row.impl:<34} {status}", file=sys.stderr, flush=True)
        return outs

    def na(self, workload: str, impl: str, role: str, note: str, base: str | None = None):
        self.results.add(Row(workload, impl, role, note=note, base=base))

    def check(self, name: str, fn: Callable[..., tuple[bool, str]], *args):
        try:
            ok, detail = fn(*args)
            status = "PASS" if ok else "FAIL"
        except Exception as exc:  # noqa: BLE001
            status, detail = "FAIL", f"{type(exc).__name__}: {exc}"[:160]
        self.results.checks.append((name, status, detail))


def _eq(a, b) -> tuple[bool, str]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return False, f"shape {a.shape} != {b.shape}"
    bad = (
        np.flatnonzero((a != b).reshape(a.shape[0], -1).any(axis=1))
        if a.size
        else np.array([], int)
    )
    if bad.size:
        return False, f"{bad.size} of {a.shape[0]} keys differ (first at index {int(bad[0])})"
    return True, f"{a.shape[0]} keys identical"


# ---------------------------------------------------------------------------
# The workloads
# ---------------------------------------------------------------------------

W_U64 = "assign u64"
W_THREADS = "assign u64 threads"
W_LIST = "assign str list"
W_S = "assign str NumPy S"
W_ARROW = "assign str pyarrow"
W_KETAMA = "ketama str list"
W_REPL = "replicas n=3 u64"


def run_all(args) -> tuple[Results, dict]:
    sizes = dict(QUICK_SIZES if args.quick else FULL_SIZES)
    for k, attr in (
        ("u64", "u64_keys"),
        ("strs", "str_keys"),
        ("ref", "ref_keys"),
        ("peer", "peer_keys"),
    ):
        v = getattr(args, attr)
        if v is not None:
            sizes[k] = v
    sizes["ref"] = min(sizes["ref"], sizes["u64"], sizes["strs"])
    sizes["peer"] = min(sizes["peer"], sizes["strs"])

    res = Results()
    bench = Bench(res, args.repeats, args.min_time, verbose=not args.no_progress)
    nodes = node_names(args.nodes)

    try:
        import ringguard
        from ringguard import Ring
    except Exception as exc:  # noqa: BLE001
        print(f"ringguard is not importable: {type(exc).__name__}: {exc}", file=sys.stderr)
        ringguard = Ring = None
    try:
        from ringguard import reference as rg_reference
    except Exception as exc:  # noqa: BLE001
        print(
            f"ringguard.reference is not importable: {type(exc).__name__}: {exc}", file=sys.stderr
        )
        rg_reference = None
    try:
        import pyarrow  # noqa: F401

        have_arrow = True
    except ImportError:
        have_arrow = False
    try:
        import uhashring
    except ImportError:
        uhashring = None

    info = machine_info(ringguard)
    info["sizes"] = sizes
    info["repeats"] = args.repeats
    info["min_time"] = args.min_time
    info["seed"] = args.seed
    info["nodes"] = args.nodes
    info["vnodes"] = args.vnodes
    info["quick"] = bool(args.quick)

    n_u64, n_str, n_ref, n_peer = sizes["u64"], sizes["strs"], sizes["ref"], sizes["peer"]

    # ---- inputs (fixed seeds) ----
    u64 = make_u64_keys(n_u64, args.seed)
    strs = make_str_keys(n_str, args.seed + 1)
    strs_S = to_S_array(strs)
    arrow = to_arrow(strs) if have_arrow else None
    u64_repl = u64[:n_str]  # replicas workload uses the string-sized count of uint64 keys

    # ---- rings ----
    ring = ring_k = ref_ring = ref_ring_k = None
    if Ring is not None:
        try:
            ring = Ring(nodes, vnodes=args.vnodes)
        except Exception as exc:  # noqa: BLE001
            print(f"Ring(...) failed: {exc!r}", file=sys.stderr)
        try:
            ring_k = Ring.ketama(nodes, compat="libketama")
        except Exception as exc:  # noqa: BLE001
            print(f"Ring.ketama(...) failed: {exc!r}", file=sys.stderr)
    if rg_reference is not None:
        try:
            ref_ring = rg_reference.Ring(nodes, vnodes=args.vnodes)
        except Exception as exc:  # noqa: BLE001
            print(f"reference.Ring(...) failed: {exc!r}", file=sys.stderr)
        try:
            ref_ring_k = rg_reference.Ring.ketama(nodes, compat="libketama")
        except Exception as exc:  # noqa: BLE001
            print(f"reference.Ring.ketama(...) failed: {exc!r}", file=sys.stderr)
    npath, npath_exact = make_numpy_path(nodes, args.vnodes, chunk=args.numpy_chunk)
    info["numpy_path_exact_ring"] = npath_exact

    uh = None
    uh_note = "uhashring not installed"
    if uhashring is not None:
        uh = uhashring.HashRing(nodes, hash_fn="ketama")
        uh_note = "peer; ketama/MD5, pure Python"

    missing_rg = "ringguard not importable"
    missing_ref = "ringguard.reference not importable"
    NO_STR_NUMPY = "NumPy cannot hash strings"

    # ================= assign u64 =================
    w = W_U64
    out_u64 = None
    if ring is not None:
        out_u64 = bench.measure(
            w,
            "ringguard Ring.assign",
            "compiled",
            n_u64,
            lambda: ring.assign(u64),
            note="threads=None (default: 1 thread)",
        )
    else:
        bench.na(w, "ringguard Ring.assign", "compiled", missing_rg)
    sub_u64 = u64[:n_ref]
    if ref_ring is not None:
        ref_u64 = bench.measure(
            w,
            "ringguard.reference",
            "reference",
            n_ref,
            lambda: ref_ring.assign(sub_u64),
            note=f"subset {n_ref:,}",
        )
    else:
        ref_u64 = None
        bench.na(w, "ringguard.reference", "reference", missing_ref)
    out_np_sm = bench.measure(
        w,
        "NumPy path (splitmix64)",
        "numpy",
        n_u64,
        lambda: npath.assign_splitmix(u64),
        note="mixer + searchsorted + gather",
    )
    out_np_bkt = bench.measure(
        w,
        "NumPy tuned (splitmix64+buckets)",
        "numpy-tuned",
        n_u64,
        lambda: npath.assign_splitmix_bucketed(u64),
        note="2^16-bucket table; searchsorted only for ~2% of keys",
    )
    out_np_xxh = bench.measure(
        w,
        "NumPy path (XXH64, exact)",
        "numpy-exact",
        n_u64,
        lambda: npath.assign_xxh64(u64),
        note="contract hash in NumPy" + ("" if npath_exact else "; synthetic ring"),
    )
    out32 = np.empty(n_u64, dtype=np.uint32)
    bench.measure(
        w,
        "roofline: u64->u32 copy",
        "roofline",
        n_u64,
        lambda: roofline_copy(u64, out32),
        note="np.copyto, memory bound",
    )
    if out_np_sm is not None and out_np_bkt is not None:
        bench.check("NumPy tuned path == NumPy path (all keys)", _eq, out_np_bkt, out_np_sm)
    del out_np_sm, out_np_bkt
    if out_u64 is not None and ref_u64 is not None:
        bench.check("assign u64: compiled == reference (subset)", _eq, out_u64[:n_ref], ref_u64)
    if out_u64 is not None and out_np_xxh is not None and npath_exact:
        bench.check("assign u64: compiled == NumPy XXH64 path (all keys)", _eq, out_u64, out_np_xxh)
    if npath_exact:
        try:
            import xxhash

            probe = u64[:1000]
            want = np.array(
                [xxhash.xxh64_intdigest(int(v).to_bytes(8, "little")) for v in probe.tolist()],
                dtype=np.uint64,
            )
            bench.check(
                "NumPy XXH64 mixer == xxhash (1000 keys)",
                _eq,
                npath.hash_xxh64(probe),
                want,
            )
        except ImportError:
            pass
    out32 = None  # free the 40 MB buffer

    # ================= assign u64, threads =================
    w = W_THREADS
    if ring is not None:
        out_t1, out_t2 = bench.measure_interleaved(
            w,
            [
                ("ringguard threads=1", "compiled", n_u64, lambda: ring.assign(u64, threads=1), ""),
                ("ringguard threads=2", "compiled", n_u64, lambda: ring.assign(u64, threads=2), ""),
            ],
            base=W_U64,
        )
        res.rows[-2].note = "timed interleaved with threads=2"
        res.rows[-1].note = "timed interleaved with threads=1"
        if out_t1 is not None and out_t2 is not None:
            bench.check("threads=2 == threads=1 (all keys)", _eq, out_t1, out_t2)
        del out_t1, out_t2
    else:
        bench.na(w, "ringguard threads=1/2", "compiled", missing_rg, base=W_U64)
    del out_u64, out_np_xxh

    # ================= string workloads (Ring) =================
    str_inputs = [
        (W_LIST, "list of str", strs, (lambda k: k[:n_ref])),
        (W_S, "NumPy S array", strs_S, (lambda k: k[:n_ref])),
    ]
    if arrow is not None:
        str_inputs.append((W_ARROW, "pyarrow string array", arrow, (lambda k: k.slice(0, n_ref))))

    for w, label, keys, subset in str_inputs:
        out_c = out_r = None
        if ring is not None:
            out_c = bench.measure(
                w,
                "ringguard Ring.assign",
                "compiled",
                n_str,
                lambda keys=keys: ring.assign(keys),
                note=label,
            )
        else:
            bench.na(w, "ringguard Ring.assign", "compiled", missing_rg)
        if ref_ring is not None:
            sub = subset(keys)
            out_r = bench.measure(
                w,
                "ringguard.reference",
                "reference",
                n_ref,
                lambda sub=sub: ref_ring.assign(sub),
                note=f"subset {n_ref:,}",
            )
        else:
            bench.na(w, "ringguard.reference", "reference", missing_ref)
        bench.na(w, "NumPy path", "numpy", "n/a: " + NO_STR_NUMPY)
        if out_c is not None and out_r is not None:
            bench.check(f"{w}: compiled == reference (subset)", _eq, out_c[:n_ref], out_r)
    if arrow is None:
        bench.na(W_ARROW, "ringguard Ring.assign", "compiled", "skipped: pyarrow not installed")

    # ================= ketama (strings from a list) =================
    w = W_KETAMA
    out_kc = out_kr = None
    if ring_k is not None:
        out_kc = bench.measure(
            w,
            "ringguard Ring.ketama",
            "compiled",
            n_str,
            lambda: ring_k.assign(strs),
            note='compat="libketama"',
        )
    else:
        bench.na(w, "ringguard Ring.ketama", "compiled", missing_rg)
    if ref_ring_k is not None:
        sub_strs = strs[:n_ref]
        out_kr = bench.measure(
            w,
            "ringguard.reference",
            "reference",
            n_ref,
            lambda: ref_ring_k.assign(sub_strs),
            note=f"subset {n_ref:,}",
        )
    else:
        bench.na(w, "ringguard.reference", "reference", missing_ref)
    uh_row = None
    if uh is not None:
        peer_keys = strs[:n_peer]
        get_node = uh.get_node
        out_uh = bench.measure(
            w,
            "uhashring get_node",
            "peer",
            n_peer,
            lambda: [get_node(k) for k in peer_keys],
            note=f"subset {n_peer:,}; {uh_note}",
        )
        uh_row = res.rows[-1]
        if out_uh is not None and Ring is not None:

            def _uh_check():
                rk = Ring.ketama(nodes, compat="uhashring")
                got = rk.assign(peer_keys)
                want = np.array([nodes.index(x) for x in out_uh], dtype=np.int32)
                return _eq(got, want)

            bench.check('Ring.ketama(compat="uhashring") == uhashring (subset)', _uh_check)
    else:
        bench.na(w, "uhashring get_node", "peer", "skipped: " + uh_note)
    bench.na(w, "NumPy path", "numpy", "n/a: " + NO_STR_NUMPY)
    if out_kc is not None and out_kr is not None:
        bench.check(f"{w}: compiled == reference (subset)", _eq, out_kc[:n_ref], out_kr)
    del out_kc, out_kr

    # The same uhashring measurement, listed under the list-of-str workload as a peer.
    if uh_row is not None and uh_row.seconds is not None:
        idx = max(i for i, r in enumerate(res.rows) if r.workload == W_LIST) + 1
        res.rows.insert(
            idx,
            Row(
                W_LIST,
                "uhashring get_node",
                "peer",
                n_keys=uh_row.n_keys,
                seconds=uh_row.seconds,
                note="same measurement as ketama row; ketama/MD5",
            ),
        )
    elif uh is None:
        idx = max(i for i, r in enumerate(res.rows) if r.workload == W_LIST) + 1
        res.rows.insert(idx, Row(W_LIST, "uhashring get_node", "peer", note="skipped: " + uh_note))

    # ================= replicas n=3 =================
    w = W_REPL
    n_rep = u64_repl.shape[0]
    out_pc = out_pr = None
    if ring is not None:
        out_pc = bench.measure(
            w, "ringguard Ring.replicas", "compiled", n_rep, lambda: ring.replicas(u64_repl, 3)
        )
    else:
        bench.na(w, "ringguard Ring.replicas", "compiled", missing_rg)
    if ref_ring is not None:
        sub_rep = u64_repl[:n_ref]
        out_pr = bench.measure(
            w,
            "ringguard.reference",
            "reference",
            n_ref,
            lambda: ref_ring.replicas(sub_rep, 3),
            note=f"subset {n_ref:,}",
        )
    else:
        bench.na(w, "ringguard.reference", "reference", missing_ref)
    bench.na(w, "NumPy path", "numpy", "n/a: no vectorised distinct-node walk")
    if out_pc is not None and out_pr is not None:
        bench.check(f"{w}: compiled == reference (subset)", _eq, out_pc[:n_ref], out_pr)

    run_algos(bench, u64, nodes, n_ref)

    info["loadavg_end"] = loadavg()
    res.compute_ratios()
    evaluate_targets(res, info)
    evaluate_algo_targets(res)
    return res, info


# ---------------------------------------------------------------------------
# Maglev, Rendezvous, JumpHash (self-contained: one call in run_all, one for targets)
# ---------------------------------------------------------------------------

TARGET_ALGOS_MKPS = {"Maglev": 200.0, "Rendezvous weighted": 10.0, "JumpHash": 20.0}


def run_algos(bench: Bench, u64: np.ndarray, nodes: list[str], n_ref: int) -> None:
    """assign() on uint64 keys for the three extra placements, vs their reference twins."""
    try:
        import ringguard
        from ringguard import reference as ref
    except Exception as exc:  # noqa: BLE001
        print(f"ringguard is not importable: {exc}", file=sys.stderr)
        return
    weights = {nm: 1.0 + i for i, nm in enumerate(nodes)}
    cases = [
        ("Maglev", ringguard.Maglev(nodes), ref.Maglev(nodes)),
        ("Rendezvous", ringguard.Rendezvous(nodes), ref.Rendezvous(nodes)),
        ("Rendezvous weighted", ringguard.Rendezvous(weights), ref.Rendezvous(weights)),
        ("JumpHash", ringguard.JumpHash(nodes), ref.JumpHash(nodes)),
    ]
    sub = u64[:n_ref]
    for name, fast, slow in cases:
        w = f"assign u64 {name}"
        out_c = bench.measure(w, f"ringguard {name}.assign", "compiled", len(u64),
                              lambda fast=fast: fast.assign(u64))
        out_r = bench.measure(w, "ringguard.reference", "reference", len(sub),
                              lambda slow=slow: slow.assign(sub), note=f"subset {len(sub):,}")
        bench.na(w, "NumPy path", "numpy", "n/a")
        if out_c is not None and out_r is not None:
            bench.check(f"{w}: compiled == reference (subset)", _eq, out_c[: len(sub)], out_r)


def evaluate_algo_targets(res: Results) -> None:
    for name, threshold in TARGET_ALGOS_MKPS.items():
        row = res.find(f"assign u64 {name}", role="compiled")
        value = row.mkps if row else None
        if value is None:
            res.targets.append((f"{name} uint64: M keys/s", "FAIL", "not measured"))
        else:
            status = "PASS" if value >= threshold else "FAIL"
            res.targets.append((f"{name} uint64: M keys/s", status,
                                f"{value:,.1f} M/s (target >= {threshold:,.0f} M/s)"))


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------


def evaluate_targets(res: Results, info: dict) -> None:
    T = res.targets

    def add(name: str, value: float | None, threshold: float, unit: str, skip_reason: str = ""):
        if skip_reason:
            T.append((name, "SKIP", skip_reason))
        elif value is None:
            T.append((name, "FAIL", "not measured"))
        else:
            ok = value >= threshold
            T.append(
                (
                    name,
                    "PASS" if ok else "FAIL",
                    f"{value:,.1f}{unit} (target >= {threshold:,.0f}{unit})",
                )
            )

    c_u64 = res.find(W_U64, role="compiled")
    add("uint64 keys: M keys/s", c_u64.mkps if c_u64 else None, TARGET_U64_MKPS, " M/s")
    add("uint64 keys: x NumPy path", c_u64.vs_numpy if c_u64 else None, TARGET_U64_VS_NUMPY, "x")

    tuned = res.find(W_U64, role="numpy-tuned")
    if c_u64 is not None and tuned is not None:
        T.append(
            (
                "uint64 keys: x tuned NumPy path (bucket table)",
                "INFO",
                f"{c_u64.mkps / tuned.mkps:,.2f}x (tuned NumPy {tuned.mkps:,.1f} M/s; no target)",
            )
        )
    c_t1 = res.find(W_THREADS, impl="ringguard threads=1")
    if c_t1 is not None and c_t1.vs_numpy is not None:
        T.append(
            (
                "uint64 keys, threads=1: x NumPy path",
                "INFO",
                f"{c_t1.vs_numpy:,.1f}x (single-threaded vs single-threaded; no target)",
            )
        )

    for w, label, thr in (
        (W_S, "strings, NumPy S: M keys/s", TARGET_STR_VECTOR_MKPS),
        (W_ARROW, "strings, pyarrow: M keys/s", TARGET_STR_VECTOR_MKPS),
        (W_LIST, "strings, Python list: M keys/s", TARGET_STR_LIST_MKPS),
    ):
        r = res.find(w, role="compiled")
        skip = (
            "pyarrow not installed"
            if (w == W_ARROW and info.get("pyarrow") == "not installed")
            else ""
        )
        add(label, r.mkps if r else None, thr, " M/s", skip)

    for w, label in (
        (W_LIST, "strings, Python list: x reference"),
        (W_S, "strings, NumPy S: x reference"),
        (W_ARROW, "strings, pyarrow: x reference"),
    ):
        r = res.find(w, role="compiled")
        skip = (
            "pyarrow not installed"
            if (w == W_ARROW and info.get("pyarrow") == "not installed")
            else ""
        )
        add(label, r.vs_reference if r else None, TARGET_STR_VS_REF, "x", skip)

    t1 = res.find(W_THREADS, impl="ringguard threads=1")
    t2 = res.find(W_THREADS, impl="ringguard threads=2")
    speedup = (t2.mkps / t1.mkps) if (t1 and t2) else None
    info["threads2_speedup"] = speedup
    skip = "" if info.get("nproc", 1) >= 2 else f"only {info.get('nproc')} usable CPU"
    add("threads=2 speedup on uint64 (~2x ideal)", speedup, TARGET_THREADS2_SPEEDUP, "x", skip)
    if speedup is not None:
        # show more precision than the generic formatter for this one
        name, status, _ = T[-1]
        T[-1] = (
            name,
            status,
            f"{speedup:.2f}x (threads=1 {t1.mkps:,.1f} -> threads=2 {t2.mkps:,.1f} M/s;"
            f" target >= {TARGET_THREADS2_SPEEDUP}x)",
        )


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------


def _fmt_ratio(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}x"
    if x >= 10:
        return f"{x:.1f}x"
    return f"{x:.2f}x"


def _fmt_mkps(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x >= 100:
        return f"{x:,.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.4f}"


def print_report(res: Results, info: dict, out=sys.stdout) -> None:
    def p(*a):
        print(*a, file=out)

    p("ringguard benchmark -- one run, all implementations measured side by side")
    p(f"  date       {info['date']}")
    p(f"  platform   {info['platform']}  (Python {info['python']})")
    p(f"  cpu        {info['cpu_model']}  nproc={info['nproc']} (os.cpu_count={info['cpu_count']})")
    p(
        f"  numpy      {info['numpy']}   pyarrow {info['pyarrow']}   uhashring {info['uhashring']}"
        f"   xxhash {info['xxhash']}"
    )
    p(f"  ringguard  {info['ringguard']}   BACKEND={info['ringguard_backend']}")
    s = info["sizes"]
    p(
        f"  sizes      uint64 {s['u64']:,}  strings {s['strs']:,}  reference subset {s['ref']:,}"
        f"  uhashring subset {s['peer']:,}  ({'--quick' if info['quick'] else 'full'})"
    )
    p(
        f"  load avg   {info['loadavg_start']} at start, {info['loadavg_end']} at end"
        f"  (1/5/15 min; other processes on the machine skew the figures)"
    )
    p(f"  ring       {info['nodes']} nodes x {info['vnodes']} vnodes;  seed {info['seed']}")
    p(
        f"  timing     time.perf_counter; 1 warm-up, then best of >= {info['repeats']} calls"
        f" (fast calls repeated until {info['min_time']:g} s were timed); GC off while timing"
    )
    p("")

    headers = (
        "workload",
        "implementation",
        "keys",
        "M keys/s",
        "vs reference",
        "vs NumPy path",
        "note",
    )
    table = []
    for r in res.rows:
        table.append(
            (
                r.workload,
                r.impl,
                f"{r.n_keys:,}" if (r.n_keys is not None and r.seconds is not None) else "",
                _fmt_mkps(r.mkps),
                _fmt_ratio(r.vs_reference) if r.mkps is not None else "",
                _fmt_ratio(r.vs_numpy)
                if r.mkps is not None
                else ("n/a" if r.role == "numpy" else ""),
                r.note,
            )
        )
    widths = [
        max(len(h), *(len(row[i]) for row in table)) if table else len(h)
        for i, h in enumerate(headers)
    ]
    right = {2, 3, 4, 5}

    def line(cells):
        parts = []
        for i, c in enumerate(cells):
            if i == len(cells) - 1:
                parts.append(c)
            else:
                parts.append(c.rjust(widths[i]) if i in right else c.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    p(line(headers))
    p(line(tuple("-" * w for w in widths[:-1]) + ("-" * 4,)))
    prev = None
    for r, cells in zip(res.rows, table, strict=True):
        if prev is not None and r.workload != prev:
            p("")
        prev = r.workload
        p(line(cells))
    p("")
    p("Ratios: keys/s over keys/s of the same workload's reference row (resp. NumPy path row,")
    p("splitmix64 + searchsorted), measured in this run; 'threads' rows use the 'assign u64' base.")

    p("")
    p("CHECKS (results agree; a benchmark of wrong answers is meaningless)")
    if not res.checks:
        p("  (none run)")
    for name, status, detail in res.checks:
        p(f"  [{status}] {name}: {detail}")

    p("")
    p("TARGETS")
    for name, status, detail in res.targets:
        p(f"  [{status}] {name}: {detail}")
    if info.get("quick"):
        p("  (--quick: smaller inputs, figures are indicative only)")


def to_json(res: Results, info: dict) -> dict:
    rows = []
    for r in res.rows:
        d = asdict(r)
        d["keys_per_s"] = (r.n_keys / r.seconds) if r.mkps is not None else None
        d["mkeys_per_s"] = r.mkps
        rows.append(d)
    return {
        "machine": info,
        "rows": rows,
        "checks": [dict(name=n, status=s, detail=d) for n, s, d in res.checks],
        "targets": [dict(name=n, status=s, detail=d) for n, s, d in res.targets],
    }


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="fewer keys (1M uint64, 200k strings, 5k reference/uhashring subset)",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed repeats per measurement, best kept (default 5)",
    )
    ap.add_argument(
        "--min-time",
        type=float,
        default=None,
        help="keep repeating fast calls until this many seconds were timed"
        " (default 1.0, 0.25 with --quick)",
    )
    ap.add_argument("--json", metavar="PATH", help="also write all results to PATH as JSON")
    ap.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if a TARGET or a CHECK fails (default: always exit 0)",
    )
    ap.add_argument("--seed", type=int, default=SEED, help=f"data seed (default {SEED})")
    ap.add_argument(
        "--nodes", type=int, default=N_NODES, help=f"number of nodes (default {N_NODES})"
    )
    ap.add_argument(
        "--vnodes", type=int, default=VNODES, help=f"vnodes per node (default {VNODES})"
    )
    ap.add_argument("--u64-keys", type=int, help="override the number of uint64 keys")
    ap.add_argument(
        "--str-keys", type=int, help="override the number of string keys (also replicas keys)"
    )
    ap.add_argument("--ref-keys", type=int, help="override the ringguard.reference subset size")
    ap.add_argument("--peer-keys", type=int, help="override the uhashring subset size")
    ap.add_argument(
        "--numpy-chunk",
        type=int,
        default=DEFAULT_CHUNK,
        help=f"chunk size of the NumPy path (default {DEFAULT_CHUNK})",
    )
    ap.add_argument(
        "--no-progress", action="store_true", help="do not print progress lines to stderr"
    )
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.min_time is None:
        args.min_time = 0.25 if args.quick else 1.0
    res, info = run_all(args)
    print_report(res, info)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(to_json(res, info), f, indent=2, default=str)
        print(f"\nwrote {args.json}")
    if args.check:
        failed = [t for t in res.targets if t[1] == "FAIL"] + [
            c for c in res.checks if c[1] == "FAIL"
        ]
        return 1 if failed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
