"""Fixtures for the pytest-benchmark cases in benchmarks/test_bench.py.

Not part of the test suite (``testpaths = ["tests"]``); run explicitly with

    pytest benchmarks/ --benchmark-only

Data generators and the NumPy comparison path are shared with compare.py, which is
loaded here under a private module name (benchmarks/ is not a package).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "_ringguard_bench_compare", Path(__file__).with_name("compare.py")
)
assert _spec is not None and _spec.loader is not None
bc = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bc
_spec.loader.exec_module(bc)

# Sizes for the pytest-benchmark cases (smaller than compare.py's).
N_U64 = 1_000_000
N_STR = 200_000
N_REF = 2_000  # ringguard.reference and uhashring (pure Python)

# (group, name, n_keys, best seconds) of every case that ran, for the summary below.
_KPS: list[tuple[str, str, int, float]] = []


def _run_keys(benchmark, fn, n_keys: int):
    """benchmark(fn) and record keys/s (best round) in extra_info and in the summary."""
    benchmark.extra_info["n_keys"] = n_keys
    result = benchmark(fn)
    stats = getattr(benchmark, "stats", None)
    best = getattr(getattr(stats, "stats", None), "min", None) if stats else None
    if best:
        benchmark.extra_info["mkeys_per_s_best"] = n_keys / best / 1e6
        _KPS.append((benchmark.group or "", benchmark.name, n_keys, best))
    return result


@pytest.fixture
def measure(benchmark):
    """measure(fn, n_keys) -> fn's result; times fn with pytest-benchmark, records keys/s."""

    def run(fn, n_keys: int):
        return _run_keys(benchmark, fn, n_keys)

    return run


@pytest.fixture(scope="session")
def n_ref():
    """Key count for the pure-Python implementations (a prefix of the same data)."""
    return N_REF


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _KPS:
        return
    tr = terminalreporter
    tr.section("keys/s (best round; groups mix key counts, so compare this, not times)")
    w = max(len(name) for _, name, _, _ in _KPS)
    for group in sorted({g for g, _, _, _ in _KPS}):
        rows = [r for r in _KPS if r[0] == group]
        tr.write_line(f"[{group}]")
        for _, name, n, best in sorted(rows, key=lambda r: r[2] / r[3], reverse=True):
            tr.write_line(f"  {name:<{w}}  {n:>10,} keys  {n / best / 1e6:12.3f} M keys/s")


# --------------------------------------------------------------------------- modules


@pytest.fixture(scope="session")
def rg():
    return pytest.importorskip("ringguard")


@pytest.fixture(scope="session")
def rg_reference():
    pytest.importorskip("ringguard")
    return pytest.importorskip("ringguard.reference")


@pytest.fixture(scope="session")
def pa():
    return pytest.importorskip("pyarrow")


@pytest.fixture(scope="session")
def uhashring():
    return pytest.importorskip("uhashring")


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="session")
def nodes():
    return bc.node_names()


@pytest.fixture(scope="session")
def u64_keys():
    return bc.make_u64_keys(N_U64)


@pytest.fixture(scope="session")
def str_list():
    return bc.make_str_keys(N_STR)


@pytest.fixture(scope="session")
def str_S(str_list):
    return bc.to_S_array(str_list)


@pytest.fixture(scope="session")
def str_arrow(pa, str_list):
    return bc.to_arrow(str_list)


# --------------------------------------------------------------------------- rings


@pytest.fixture(scope="session")
def ring(rg, nodes):
    return rg.Ring(nodes, vnodes=bc.VNODES)


@pytest.fixture(scope="session")
def ketama_ring(rg, nodes):
    return rg.Ring.ketama(nodes, compat="libketama")


@pytest.fixture(scope="session")
def ref_ring(rg_reference, nodes):
    return rg_reference.Ring(nodes, vnodes=bc.VNODES)


@pytest.fixture(scope="session")
def ref_ketama_ring(rg_reference, nodes):
    return rg_reference.Ring.ketama(nodes, compat="libketama")


@pytest.fixture(scope="session")
def uh_ring(uhashring, nodes):
    return uhashring.HashRing(nodes, hash_fn="ketama")


@pytest.fixture(scope="session")
def numpy_path(nodes):
    path, _exact = bc.make_numpy_path(nodes, bc.VNODES)
    return path


@pytest.fixture(scope="session")
def roofline_copy():
    return bc.roofline_copy
