"""pytest-benchmark cases of ringguard.availability.simulate (issue 6 target: 100 nodes,
1 year, 10,000 trials in under 30 s on one core).

    pytest benchmarks/test_bench_availability.py --benchmark-only

No timing assertions (as in test_bench.py): the figures are recorded in README.md.
"""

from __future__ import annotations

import pytest

from ringguard import Ring, simulate

G_SIM = "availability-simulate"


@pytest.fixture(scope="module")
def ring100() -> Ring:
    return Ring([f"node{i}" for i in range(100)], vnodes=160)


@pytest.mark.benchmark(group=G_SIM)
@pytest.mark.parametrize("replication", [2, 3])
def test_simulate_100_nodes_1y_10k_trials(benchmark, ring100, replication):
    def run():
        return simulate(ring100, replication, mtbf="91d", mttr="24h", detect="30s",
                        years=1, trials=10_000, seed=0)

    res = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
    benchmark.extra_info["replica_sets"] = res.replica_sets
    benchmark.extra_info["p_loss"] = res.p_loss
    assert res.trials == 10_000 and res.nodes == 100


@pytest.mark.benchmark(group=G_SIM)
def test_simulate_100_nodes_pairs(benchmark, ring100):
    pairs = [(f"node{i}", f"node{i + 1}") for i in range(0, 100, 2)]

    def run():
        return simulate(ring100, 2, "pairs", pairs=pairs, mtbf="91d", mttr="24h",
                        detect="30s", years=1, trials=10_000, seed=0)

    res = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
    assert res.replica_sets == 50
