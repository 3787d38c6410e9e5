"""pytest-benchmark cases for Maglev, Rendezvous and JumpHash (assign and replicas).

    pytest benchmarks/test_bench_algos.py --benchmark-only

Same data and conventions as test_bench.py: 1M uint64 keys / 200k strings for the compiled
placements, the first 2k keys for ringguard.reference. Targets (single thread, 10 nodes,
uint64 keys): Maglev >= 200 M keys/s, Rendezvous >= 10 M keys/s, JumpHash >= 20 M keys/s;
they are checked by compare.py --check, never here.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def placements(rg, nodes):
    weights = {nm: 1.0 + i for i, nm in enumerate(nodes)}
    return {
        "maglev": rg.Maglev(nodes),
        "rendezvous": rg.Rendezvous(nodes),
        "rendezvous_weighted": rg.Rendezvous(weights),
        "jump": rg.JumpHash(nodes),
    }


@pytest.fixture(scope="session")
def ref_placements(rg_reference, nodes):
    weights = {nm: 1.0 + i for i, nm in enumerate(nodes)}
    return {
        "maglev": rg_reference.Maglev(nodes),
        "rendezvous": rg_reference.Rendezvous(nodes),
        "rendezvous_weighted": rg_reference.Rendezvous(weights),
        "jump": rg_reference.JumpHash(nodes),
    }


ALGOS = ["maglev", "rendezvous", "rendezvous_weighted", "jump"]


@pytest.mark.parametrize("algo", ALGOS)
def test_assign_u64(benchmark, measure, placements, u64_keys, algo):
    benchmark.group = f"algos-assign-u64-{algo}"
    out = measure(lambda: placements[algo].assign(u64_keys), len(u64_keys))
    assert out.shape == u64_keys.shape and out.dtype == np.int32


@pytest.mark.parametrize("algo", ALGOS)
def test_assign_u64_reference(benchmark, measure, ref_placements, u64_keys, n_ref, algo):
    benchmark.group = f"algos-assign-u64-{algo}"
    keys = u64_keys[:n_ref]
    measure(lambda: ref_placements[algo].assign(keys), len(keys))


@pytest.mark.parametrize("algo", ALGOS)
def test_assign_str_S(benchmark, measure, placements, str_S, algo):
    benchmark.group = f"algos-assign-str-S-{algo}"
    measure(lambda: placements[algo].assign(str_S), len(str_S))


@pytest.mark.parametrize("algo", ALGOS)
def test_replicas3_u64(benchmark, measure, placements, u64_keys, algo):
    benchmark.group = f"algos-replicas3-u64-{algo}"
    keys = u64_keys[:200_000]
    out = measure(lambda: placements[algo].replicas(keys, 3), len(keys))
    assert out.shape == (len(keys), 3)


def test_maglev_build(benchmark, rg, nodes):
    benchmark.group = "algos-maglev-build"
    m = benchmark(lambda: rg.Maglev(nodes, table_size=65537))
    assert m.table_size == 65537


def test_jump_hash_raw(benchmark, measure, rg, u64_keys):
    benchmark.group = "algos-jump-hash-raw"
    measure(lambda: rg.jump_hash(u64_keys, 10), len(u64_keys))
