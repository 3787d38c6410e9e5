"""ringguard.availability: closed forms against hand-computed values, the simulator against
the closed forms (within its confidence intervals), the copyset effect, determinism, bad
input.

Reference configuration of the issue: MTTF 91 days, repair 24 h, one year. Its loss
probabilities ~0.084 (r=2) and ~0.0014 (r=3) are those of ONE replica set: a mirrored
pair, and a single set of three nodes (Patterson-Gibson-Katz MTTDL, ``1 - exp(-T/MTTDL)``).
A ring of exactly ``r`` nodes has exactly that one replica set, so that is what the
simulator is run on here.
"""

from __future__ import annotations

import doctest
import math
from typing import Any

import numpy as np
import pytest

import ringguard
from conftest import scaled
from ringguard import Ring
from ringguard import availability as av

MTTF = 91 * 24.0  # hours
MTTR = 24.0
YEAR = 8760.0
NODES10 = [f"node-{i}" for i in range(10)]
PAIRS10 = [(NODES10[i], NODES10[i + 1]) for i in range(0, 10, 2)]


@pytest.fixture(scope="module")
def ring10() -> Ring:
    return Ring(NODES10, vnodes=160)


def inside(value: float, ci: tuple[float, float]) -> bool:
    return ci[0] <= value <= ci[1]


def within_3_sigma(p_true: float, p_hat: float, trials: int) -> bool:
    """A fixed-seed check of a binomial estimate: a 95 % interval misses the truth for one
    seed in twenty by design, so single-seed tests use 3 sigma (99.7 %), and
    test_interval_coverage checks that the 95 % intervals cover as often as they claim."""
    return abs(p_hat - p_true) <= 3 * math.sqrt(p_true * (1 - p_true) / trials)


# ---- closed forms ------------------------------------------------------------------------


def test_the_module_examples_run() -> None:
    failed, tried = doctest.testmod(av, optionflags=doctest.ELLIPSIS)
    assert tried > 20 and failed == 0


@pytest.mark.parametrize(
    ("value", "hours"),
    [("30d", 720.0), ("4h", 4.0), ("90s", 0.025), ("1y", 8760.0), ("15min", 0.25),
     ("2w", 336.0), (" 1.5 h ", 1.5), ("12", 12.0), (2.5, 2.5), (3, 3.0), ("1e1m", 1 / 6),
     (np.float64(7.0), 7.0), ("0s", 0.0)],
)
def test_parse_duration(value: Any, hours: float) -> None:
    assert av.parse_duration(value) == pytest.approx(hours, rel=1e-12)


@pytest.mark.parametrize(
    ("value", "exc", "match"),
    [("-3d", ValueError, "non-negative"), (-1.0, ValueError, "non-negative"),
     ("3 fortnights", ValueError, "unknown unit 'fortnights'"), ("", ValueError, "parse"),
     ("d", ValueError, "parse"), (math.nan, ValueError, "finite"),
     (math.inf, ValueError, "finite"), (None, TypeError, "NoneType"),
     (True, TypeError, "bool"), ([1], TypeError, "list")],
)
def test_parse_duration_rejects(value: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match) as info:
        av.parse_duration(value, "mttr")
    assert str(info.value).startswith("mttr:")


def test_steady_state_availability() -> None:
    assert av.steady_state_availability(1000, 10) == pytest.approx(1000 / 1010)
    assert av.steady_state_availability("91d", "24h") == pytest.approx(2184 / 2208)
    assert av.steady_state_availability(5, 0) == 1.0
    with pytest.raises(ValueError, match="mtbf_hours"):
        av.steady_state_availability(0, 1)


def test_series_parallel_k_of_n() -> None:
    assert av.series_availability([0.9, 0.99]) == pytest.approx(0.891)
    assert av.parallel_availability([0.9, 0.99]) == pytest.approx(1 - 0.1 * 0.01)
    assert av.series_availability([]) == 1.0
    assert av.availability_k_of_n(2, 3, 0.9) == pytest.approx(3 * 0.81 * 0.1 + 0.729)
    assert av.availability_k_of_n(1, 2, 0.9) == pytest.approx(
        av.parallel_availability([0.9, 0.9]))
    assert av.availability_k_of_n(3, 3, 0.9) == pytest.approx(
        av.series_availability([0.9] * 3))
    assert av.availability_k_of_n(0, 4, 0.2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"availabilities\[1\]"):
        av.series_availability([0.5, 1.5])
    with pytest.raises(ValueError, match="k: must be <= n"):
        av.availability_k_of_n(4, 3, 0.9)
    with pytest.raises(TypeError, match="availability"):
        av.availability_k_of_n(1, 3, "0.9")  # type: ignore[arg-type]


def test_pair_availability_by_hand() -> None:
    u = 24 / 2208
    assert av.pair_availability("91d", "24h") == pytest.approx(1 - u * u)
    assert av.pair_availability("91d", "24h") == pytest.approx(
        av.parallel_availability([2184 / 2208] * 2))
    # each of the 1/2208 failures per hour costs 20 s detection + 10 s promotion
    assert av.pair_availability("91d", "24h", "20s", "10s") == pytest.approx(
        1 - u * u - (30 / 3600) / 2208)


def test_nines_and_downtime() -> None:
    assert av.nines(0.999) == pytest.approx(3.0)
    assert av.nines(0.99999) == pytest.approx(5.0)
    assert av.nines(1.0) == math.inf
    assert av.downtime_hours_per_year(0.999) == pytest.approx(8.76)
    assert av.downtime_hours_per_month(0.999) == pytest.approx(0.73)
    assert av.downtime_hours_per_year(0.99999) * 60 == pytest.approx(5.256)  # minutes
    with pytest.raises(ValueError, match="availability"):
        av.nines(1.2)


def test_mttdl_patterson_gibson_katz() -> None:
    assert av.mttdl(MTTF, MTTR, 2) == pytest.approx(2184**2 / 48)  # 99 372 h, 11.3 y
    assert av.mttdl("91d", "1d", 3) == pytest.approx(2184**3 / (3 * 24**2))
    assert av.mttdl(MTTF, MTTR, 1) == pytest.approx(MTTF)
    assert av.mttdl(MTTF, MTTR, 2, copysets=45) == pytest.approx(2184**2 / 48 / 45)
    lam, mu = 1 / MTTF, 1 / MTTR
    assert av.mttdl(MTTF, MTTR, 2, exact=True) == pytest.approx((3 * lam + mu) / (2 * lam**2))
    assert av.mttdl(MTTF, MTTR, 1, exact=True) == pytest.approx(MTTF)


def test_loss_probability_reference_numbers() -> None:
    p2 = av.loss_probability("1y", av.mttdl("91d", "24h", 2))
    p3 = av.loss_probability("1y", av.mttdl("91d", "24h", 3))
    assert p2 == pytest.approx(1 - math.exp(-8760 / 99372.0), rel=1e-9)
    assert round(p2, 3) == 0.084
    assert round(p3, 4) == 0.0015  # the "~0.0014" (0.00145)
    # the exact chain keeps the MTTR/MTTF terms the closed form drops (~3 % here)
    m2 = av.markov_loss_probability("1y", "91d", "24h", 2)
    assert 0.078 < m2 < p2
    # one replica: loss at the first failure, exactly exponential
    assert av.markov_loss_probability(YEAR, MTTF, MTTR, 1) == pytest.approx(
        1 - math.exp(-YEAR / MTTF), rel=1e-9)
    assert av.markov_loss_probability(YEAR, MTTF, MTTR, 2, copysets=5) == pytest.approx(
        1 - (1 - m2) ** 5)
    # n = r nodes is the single set
    assert av.markov_loss_probability(YEAR, MTTF, MTTR, 2, nodes=2) == pytest.approx(m2)
    with pytest.raises(ValueError, match="either copysets or nodes"):
        av.markov_loss_probability(YEAR, MTTF, MTTR, 2, copysets=3, nodes=4)
    with pytest.raises(ValueError, match="nodes: must be >= 3"):
        av.markov_loss_probability(YEAR, MTTF, MTTR, 3, nodes=2)


def test_usable_capacity() -> None:
    assert av.usable_capacity(20.0, nodes=2, failures=1) == 10.0  # the pair's N/2
    assert av.usable_capacity(20.0, nodes=2, replication=2) == 10.0
    assert av.usable_capacity(100.0, nodes=10, failures=1, replication=2) == 45.0
    assert av.usable_capacity(100.0, nodes=4) == 100.0
    with pytest.raises(ValueError, match="failures"):
        av.usable_capacity(10.0, nodes=2, failures=2)
    with pytest.raises(ValueError, match="replication"):
        av.usable_capacity(10.0, nodes=3, failures=1, replication=3)
    with pytest.raises(TypeError, match="nodes"):
        av.usable_capacity(10.0, nodes=2.0)  # type: ignore[arg-type]


def test_backup_storage() -> None:
    assert av.backup_storage(10.0, copies=3) == 30.0  # the design's B = k x N
    assert av.backup_storage(10.0, 2, compression_ratio=2.0) == 10.0
    assert av.backup_storage(12.0, 1, compression_ratio=2.0, dedup_ratio=3.0) == 2.0
    # 2 copies x 5 (compressed) x (1 full + 7 incrementals of 10 %)
    assert av.backup_storage(10.0, 2, compression_ratio=2.0, retained=8,
                             change_fraction=0.1) == pytest.approx(17.0)
    assert av.backup_storage(1.0, retained=7) == 7.0  # seven full backups
    with pytest.raises(ValueError, match="compression_ratio"):
        av.backup_storage(1.0, compression_ratio=0)
    with pytest.raises(ValueError, match="copies"):
        av.backup_storage(1.0, copies=0)


# ---- replica sets ------------------------------------------------------------------------


def test_replica_sets_match_ring_replicas(ring10: Ring) -> None:
    keys = np.arange(3000, dtype=np.uint64)
    for r in (1, 2, 3):
        rs = av.replica_sets(ring10, r)
        assert rs.share.sum() == pytest.approx(1.0, abs=1e-12)
        got = {tuple(row) for row in np.sort(ring10.replicas(keys, r), axis=1).tolist()}
        known = {tuple(row) for row in rs.members.tolist()}
        assert got <= known
        assert np.allclose(rs.primary_share, ringguard.ownership(ring10).fraction, atol=1e-12)
    one = av.replica_sets(ring10, 1)
    assert np.allclose(one.share[np.argsort(one.members[:, 0])],
                       ringguard.ownership(ring10).fraction, atol=1e-12)


def test_replica_sets_of_a_ketama_ring() -> None:
    ring = Ring.ketama({"10.0.0.1:11211": 1, "10.0.0.2:11211": 2, "10.0.0.3:11211": 1})
    rs = av.replica_sets(ring, 2)
    assert rs.share.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.allclose(rs.primary_share, ringguard.ownership(ring).fraction, atol=1e-12)
    got = {tuple(row) for row in np.sort(ring.replicas(np.arange(2000), 2), axis=1).tolist()}
    assert got <= {tuple(row) for row in rs.members.tolist()}
    res = av.simulate(ring, 2, trials=200)
    assert res.replica_sets == len(rs) == 3


def test_replica_sets_zone_aware() -> None:
    nodes = [f"n{i}" for i in range(6)]
    zones = {n: f"z{i % 3}" for i, n in enumerate(nodes)}
    ring = Ring(nodes, zones=zones, vnodes=20)
    rs = av.replica_sets(ring, 2)
    zone_of = np.array([i % 3 for i in range(6)])
    assert (zone_of[rs.members[:, 0]] != zone_of[rs.members[:, 1]]).all()
    got = {tuple(row) for row in np.sort(ring.replicas(np.arange(2000), 2), axis=1).tolist()}
    assert got <= {tuple(row) for row in rs.members.tolist()}


def test_copyset_effect_combinatorics(ring10: Ring) -> None:
    """Cidon et al. 2013: with many vnodes every node pair is some range's replica set."""
    ring_sets = av.replica_sets(ring10, 2)
    pair_sets = av.replica_sets(ring10, 2, "pairs", pairs=PAIRS10)
    assert len(ring_sets) == 45 and len(pair_sets) == 5
    assert ring_sets.loss_given_failures(2) == 1.0
    assert pair_sets.loss_given_failures(2) == pytest.approx(1 / 9)
    assert pair_sets.loss_given_failures(1) == 0.0
    # with r=3 on the ring nearly every triple is a set; 3 failures almost surely lose data
    assert av.replica_sets(ring10, 3).loss_given_failures(3) > 0.5


# ---- the simulator against the closed forms ---------------------------------------------


@pytest.mark.parametrize(("r", "trials"), [(2, 40_000), (3, 200_000)])
def test_simulated_loss_matches_closed_forms(r: int, trials: int) -> None:
    """One replica set of r nodes (a ring of r nodes), MTTF 91 d, MTTR 24 h, one year."""
    res = av.simulate(Ring([f"n{i}" for i in range(r)]), r, mtbf="91d", mttr="24h",
                      years=1, trials=trials, seed=0)
    assert res.replica_sets == 1
    exact = av.markov_loss_probability("1y", "91d", "24h", r)
    assert within_3_sigma(exact, res.p_loss, trials), (res, exact)
    closed = av.loss_probability("1y", av.mttdl("91d", "24h", r))
    assert abs(res.p_loss - closed) / closed < 0.2  # closed form is ~4 % high, see mttdl
    # one set holds the whole key space: a loss loses all of it
    assert res.expected_keys_lost == pytest.approx(res.p_loss)
    # time fully down: U**r of the horizon (U = MTTR / (MTTF + MTTR)); for r=3 that is
    # ~1e-6 and its 95 % interval is +-15 %, so the check is on the relative error
    u_r = (24 / 2208) ** r
    assert abs((1 - res.availability) - u_r) < 0.25 * u_r, res


def test_interval_coverage() -> None:
    """Over 60 seeds the 95 % intervals of p_loss and availability cover the exact values
    (Markov chain; 1 - U**2 - detection) in about 95 % of runs (binomial 60, 0.95: >= 52
    with probability 0.99)."""
    ring = Ring(["a", "b"])
    p_exact = av.markov_loss_probability("1y", "91d", "24h", 2)
    a_exact = av.pair_availability("91d", "24h", "30s")
    hits_p = hits_a = 0
    for seed in range(60):
        res = av.simulate(ring, 2, mtbf="91d", mttr="24h", detect="30s", trials=3000,
                          seed=1000 + seed)
        hits_p += inside(p_exact, res.p_loss_ci)
        hits_a += inside(a_exact, res.availability_ci)
    assert hits_p >= 52 and hits_a >= 52, (hits_p, hits_a)


def test_simulated_pair_availability_with_detection() -> None:
    res = av.simulate(Ring(["a", "b"]), 2, mtbf="91d", mttr="24h", detect="10min",
                      trials=40_000, seed=11)
    assert inside(av.pair_availability("91d", "24h", "10min"), res.availability_ci), res
    assert res.availability < av.pair_availability("91d", "24h")


def test_simulated_copyset_effect(ring10: Ring) -> None:
    """Same expected loss, ~G_ring/G_pairs = 9x the probability of some loss."""
    kw: dict[str, Any] = {"mtbf": "2y", "mttr": "24h", "trials": 20_000}
    ring = av.simulate(ring10, 2, "ring", seed=5, **kw)
    pairs = av.simulate(ring10, 2, "pairs", pairs=PAIRS10, seed=6, **kw)
    assert (ring.replica_sets, pairs.replica_sets) == (45, 5)
    for res, g in ((ring, 45), (pairs, 5)):
        assert inside(av.markov_loss_probability("1y", "2y", "24h", 2, copysets=g),
                      res.p_loss_ci), res
    assert 6 < ring.p_loss / pairs.p_loss < 12
    a, b = ring.expected_keys_lost_ci, pairs.expected_keys_lost_ci
    assert a[0] <= b[1] and b[0] <= a[1]  # the expected fraction lost is the same


@pytest.mark.parametrize(("r", "mtbf"), [(2, "2y"), (3, "91d")])
def test_ring_successors_match_the_any_r_of_n_chain(ring10: Ring, r: int, mtbf: str) -> None:
    """With many vnodes every r of the 10 nodes hold some range together, so data is lost
    exactly when any r nodes are down at once: the 10-node chain of
    markov_loss_probability(nodes=10). The independent-copysets form is only its rare-event
    approximation and is visibly high at P ~ 0.14 (r=3, MTTF 91 d)."""
    trials = 20_000
    res = av.simulate(ring10, r, mtbf=mtbf, mttr="24h", trials=trials, seed=0)
    assert res.replica_sets == math.comb(10, r)
    chain = av.markov_loss_probability("1y", mtbf, "24h", r, nodes=10)
    assert within_3_sigma(chain, res.p_loss, trials), (res, chain)
    independent = av.markov_loss_probability("1y", mtbf, "24h", r, copysets=math.comb(10, r))
    assert independent > chain
    if r == 3:
        assert not within_3_sigma(independent, res.p_loss, trials)


def test_zone_outages_match_the_pair_chain() -> None:
    """Two zones of two nodes, zone-aware r=2: every set spans both zones. With nodes that
    never fail, data is lost exactly when both zones are out at once: the pair chain with
    the zones' MTBF (8760/12 h) and MTTR."""
    nodes = ["a1", "a2", "b1", "b2"]
    ring = Ring(nodes, zones={"a1": "A", "a2": "A", "b1": "B", "b2": "B"}, vnodes=20)
    res = av.simulate(ring, 2, mtbf="1000000y", mttr="24h", trials=20_000, seed=3,
                      zone_failures_per_year=12, zone_mttr="24h")
    exact = av.markov_loss_probability("1y", 730, "24h", 2)
    assert inside(exact, res.p_loss_ci), (res, exact)
    quiet = av.simulate(ring, 2, mtbf="1000000y", mttr="24h", trials=2_000, seed=3)
    assert quiet.p_loss == 0.0 and quiet.availability == 1.0


def test_mask_and_code_matching_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = [f"n{i}" for i in range(9)]
    ring = Ring(nodes, zones={n: f"z{i % 3}" for i, n in enumerate(nodes)}, vnodes=30)
    kw: dict[str, Any] = {"mtbf": "60d", "mttr": "48h", "trials": 3000, "seed": 9,
                          "zone_failures_per_year": 4}
    by_code = av.simulate(ring, 3, **kw)
    monkeypatch.setattr(av, "_COMBO_LIMIT", 0)
    by_mask = av.simulate(ring, 3, **kw)
    assert by_code == by_mask
    assert by_code.p_loss > 0


def test_weibull_shape_one_is_exponential() -> None:
    ring = Ring(["a", "b", "c"])
    kw: dict[str, Any] = {"mtbf": "91d", "mttr": "24h", "trials": 20_000}
    exp = av.simulate(ring, 2, seed=1, **kw)
    wei = av.simulate(ring, 2, seed=2, distribution="weibull", weibull_shape=1.0, **kw)
    assert wei.p_loss_ci[0] <= exp.p_loss_ci[1] and exp.p_loss_ci[0] <= wei.p_loss_ci[1]
    # infant mortality (shape < 1, same mean) clusters failures: more losses
    early = av.simulate(ring, 2, seed=3, distribution="weibull", weibull_shape=0.5, **kw)
    assert early.p_loss_ci[0] > exp.p_loss_ci[1]


def test_deterministic_for_a_seed(ring10: Ring) -> None:
    kw: dict[str, Any] = {"mtbf": "91d", "mttr": "24h", "detect": "30s", "trials": 2000}
    a = av.simulate(ring10, 2, seed=42, **kw)
    b = av.simulate(ring10, 2, seed=42, **kw)
    c = av.simulate(ring10, 2, seed=43, **kw)
    assert a == b and repr(a) == repr(b)
    assert a != c
    assert a.availability_ci[0] <= a.availability <= a.availability_ci[1]
    assert a.p_loss_ci[0] <= a.p_loss <= a.p_loss_ci[1]
    assert "availability" in repr(a) and "p_loss" in repr(a) and "45 replica sets" in repr(a)
    assert a.nines == pytest.approx(-math.log10(1 - a.availability))
    with pytest.raises(AttributeError):
        a.p_loss = 0.0  # type: ignore[misc]


def test_single_replica_loses_at_every_failure() -> None:
    res = av.simulate(Ring(["a", "b"]), 1, mtbf="91d", mttr="24h", trials=20_000, seed=4)
    assert inside(1 - math.exp(-YEAR / MTTF * 2), res.p_loss_ci)  # either node failing
    assert inside(av.steady_state_availability("91d", "24h"), res.availability_ci)


# ---- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [({"replication": 11}, ValueError, "replication: 11 exceeds"),
     ({"replication": 0}, ValueError, "replication"),
     ({"replication": 2.0}, TypeError, "replication"),
     ({"mtbf": "-3d"}, ValueError, "mtbf"),
     ({"mtbf": 0}, ValueError, "mtbf: must be > 0"),
     ({"mttr": "3 fortnights"}, ValueError, "mttr: unknown unit"),
     ({"detect": -1}, ValueError, "detect"),
     ({"years": 0}, ValueError, "years"),
     ({"trials": 1}, ValueError, "trials"),
     ({"seed": "x"}, TypeError, "seed"),
     ({"strategy": "random"}, ValueError, "strategy"),
     ({"distribution": "gamma"}, ValueError, "distribution"),
     ({"distribution": "weibull", "weibull_shape": 0}, ValueError, "weibull_shape"),
     ({"zone_failures_per_year": 1}, ValueError, "no zones"),
     ({"pairs": PAIRS10}, ValueError, "only used with strategy='pairs'"),
     ({"strategy": "pairs"}, ValueError, "pairs: strategy='pairs' needs"),
     ({"strategy": "pairs", "replication": 3, "pairs": PAIRS10}, ValueError, "means 2"),
     ({"strategy": "pairs", "pairs": PAIRS10[:4]}, ValueError, "'node-8' owns hash space"),
     ({"strategy": "pairs", "pairs": [*PAIRS10, ("node-0", "node-9")]}, ValueError,
      "already in another pair"),
     ({"strategy": "pairs", "pairs": [("node-0", "node-0")]}, ValueError, "its own partner"),
     ({"strategy": "pairs", "pairs": [("node-0", "nope")]}, ValueError, "'nope' is not"),
     ({"strategy": "pairs", "pairs": [("node-0",)]}, ValueError, r"pairs\[0\]"),
     ({"strategy": "pairs", "pairs": "node-0"}, TypeError, "pairs"),
     ],
)
def test_simulate_rejects(ring10: Ring, kwargs: dict[str, Any], exc: type[Exception],
                          match: str) -> None:
    kw: dict[str, Any] = {"replication": 2, "trials": 10} | kwargs
    with pytest.raises(exc, match=match):
        av.simulate(ring10, **kw)


def test_simulate_needs_a_ring() -> None:
    with pytest.raises(TypeError, match="placement"):
        av.simulate("node-1,node-2", 2)


def test_inputs_are_not_modified(ring10: Ring) -> None:
    pairs = [list(p) for p in PAIRS10]
    before = ring10.points()[0].copy()
    av.simulate(ring10, 2, "pairs", pairs=pairs, trials=10)  # type: ignore[arg-type]
    assert pairs == [list(p) for p in PAIRS10]
    assert (ring10.points()[0] == before).all()


def test_hundred_nodes_smoke() -> None:
    ring = Ring([f"n{i}" for i in range(100)], vnodes=scaled(50, 20))
    res = av.simulate(ring, 3, mtbf="2y", mttr="24h", trials=500, seed=1)
    assert 0 < res.p_loss < 1 and res.nodes == 100 and res.replica_sets > 100
