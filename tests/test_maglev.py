"""Maglev: golden tables, parity, balance, disruption (measured), inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ringguard
from algos_support import (
    COMPILED,
    N_BIG,
    N_SMALL,
    VECTORS,
    check_empty_and_out,
    check_replicas_shape,
    check_round_trips,
    containers,
    str_keys,
    u64_keys,
    vector_groups,
)
from ringguard import Maglev, Ring, movement, reference
from ringguard import _pycore as pycore
from ringguard._backend import core
from ringguard.errors import InvalidPlacementError

NAMES = [f"node{i}" for i in range(100)]
SMALL_M = 1009  # prime; keeps the pure-Python table builds of property tests fast


def _weights(n: int) -> dict[str, float]:
    return {nm: 0.5 + (i * 0.61) % 2 for i, nm in enumerate(NAMES[:n])}


def test_golden_vectors() -> None:
    for case in VECTORS["cases"]:
        if case["algorithm"] != "maglev":
            continue
        m = Maglev(dict(case["nodes"]), table_size=case["table_size"])
        assert m.table()[:64].tolist() == case["table_head"]
        rows = np.array(case["replicas"])
        for batch, pos in vector_groups():
            assert np.array_equal(m.replicas(batch, rows.shape[1]), rows[pos])


@pytest.mark.parametrize("nnodes", [1, 2, 10, 100])
@pytest.mark.parametrize("weighted", [False, True])
def test_parity_with_reference(nnodes: int, weighted: bool) -> None:
    nodes = _weights(nnodes) if weighted else NAMES[:nnodes]
    msize = 5003
    m = Maglev(nodes, table_size=msize)
    ref = reference.Maglev(nodes, table_size=msize)
    assert np.array_equal(m.table(), ref.table())
    keys = u64_keys(N_BIG if nnodes == 10 else N_SMALL)
    assert np.array_equal(m.assign(keys), ref.assign(keys))
    skeys = str_keys(N_SMALL // 3)
    n = min(3, nnodes)
    assert np.array_equal(check_replicas_shape(m, skeys, n), ref.replicas(skeys, n))


def test_kernel_twin_parity() -> None:
    m = Maglev(_weights(10), table_size=SMALL_M)
    names = sorted(m.nodes)
    off = np.array([core.xxh64(n.encode(), 0) % SMALL_M for n in names], dtype=np.uint64)
    skip = np.array([core.xxh64(n.encode(), 1) % (SMALL_M - 1) + 1 for n in names],
                    dtype=np.uint64)
    q = np.full(10, 120, dtype=np.int64)
    t1 = np.empty(SMALL_M, np.int32)
    t2 = np.empty(SMALL_M, np.int32)
    core.maglev_populate(off, skip, q, t1)
    pycore.maglev_populate(off, skip, q, t2)
    assert np.array_equal(t1, t2)
    c1, c2 = core.CoreMaglev(t1, 10), pycore.CoreMaglev(t2, 10)
    keys = u64_keys(N_BIG)
    o1 = np.empty(len(keys), np.int32)
    o2 = np.empty(len(keys), np.int32)
    c1.assign_u64(keys, o1)
    c2.assign_u64(keys, o2)
    assert np.array_equal(o1, o2)
    keys = keys[:N_SMALL]
    r1 = np.empty((len(keys), 5), np.int32)
    r2 = np.empty((len(keys), 5), np.int32)
    c1.replicas(keys, 5, r1)
    c2.replicas(keys, 5, r2)
    assert np.array_equal(r1, r2)


def test_default_table_and_balance() -> None:
    m = Maglev(NAMES[:10])
    assert m.table_size == 65537
    counts = np.bincount(m.table(), minlength=10)
    # equal weights: every node gets floor(M/N) or one more entry (the paper's result)
    assert set(counts.tolist()) <= {65537 // 10, 65537 // 10 + 1}
    w = Maglev(_weights(10))
    total = sum(_weights(10).values())
    want = np.array([65537 * x / total for x in _weights(10).values()])
    assert np.abs(np.bincount(w.table(), minlength=10) - want).max() <= 1


def test_containers_agree() -> None:
    m = Maglev(NAMES[:10], table_size=SMALL_M)
    keys = str_keys(2000)
    want = m.assign(keys)
    for c in containers(keys):
        assert np.array_equal(m.assign(c), want), type(c)
    assert np.array_equal(m.assign(np.arange(50, dtype=np.int32)), m.assign(list(range(50))))


def test_disruption_is_small_but_more_than_a_ring() -> None:
    """Maglev trades minimal disruption for O(1) lookups: measured, and bounded."""
    keys = u64_keys(N_BIG, seed=2)
    for nnodes, limit in ((10, 0.01), (100, 0.012)):
        old = Maglev(NAMES[:nnodes])
        mv = movement(old, old.add("fresh"), keys)
        excess = sum(c for a, b, c in mv.flows() if b != "fresh") / len(keys)
        ideal = 1 / (nnodes + 1)
        assert abs((mv.fraction - excess) - ideal) < 0.2 * ideal + 0.01
        assert 0 < excess < limit, excess  # keys moved between old nodes
        ring = Ring(NAMES[:nnodes])
        rmv = movement(ring, ring.add("fresh"), keys)
        assert all(b == "fresh" for _, b, _ in rmv.flows())  # a ring moves none of those
        rm = movement(old, old.remove("node0"), keys)
        assert sum(c for a, _, c in rm.flows() if a != "node0") / len(keys) < limit


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 20), st.booleans(), st.integers(0, 2**32))
def test_add_moves_mostly_to_the_new_node(nnodes: int, weighted: bool, seed: int) -> None:
    nodes = _weights(nnodes) if weighted else dict.fromkeys(NAMES[:nnodes], 1.0)
    old = Maglev(nodes, table_size=SMALL_M)
    new = old.add("fresh")
    keys = u64_keys(2000, seed)
    mv = movement(old, new, keys)
    excess = sum(c for _, b, c in mv.flows() if b != "fresh") / len(keys)
    assert excess < 0.08  # small table (1009 entries): a few % beyond the ideal
    assert new.remove("fresh") == old
    assert np.array_equal(new.remove("fresh").assign(keys), old.assign(keys))


@settings(max_examples=15, deadline=None)
@given(st.permutations(NAMES[:8]), st.integers(1, 8))
def test_node_order_never_matters(order: list[str], n: int) -> None:
    w = _weights(8)
    base = Maglev(w, table_size=SMALL_M)
    other = Maglev({nm: w[nm] for nm in order}, table_size=SMALL_M)
    pos = np.array([other.nodes.index(nm) for nm in base.nodes])
    assert np.array_equal(pos[base.table()], other.table())
    keys = str_keys(300)
    assert np.array_equal(pos[base.replicas(keys, n)], other.replicas(keys, n))


def test_round_trips_and_api() -> None:
    m = Maglev({"b": 1.0, "a": 0.1 + 0.2, "c": 2.0}, table_size=SMALL_M)
    check_round_trips(m)
    check_empty_and_out(m)
    assert m != Maglev({"b": 1.0, "a": 0.1 + 0.2, "c": 2.0}, table_size=1013)
    assert not m.table().flags.writeable
    assert isinstance(m, ringguard.Placement)
    assert repr(m) == "Maglev(3 nodes, table_size=1009)"
    assert Maglev(["only"], table_size=2).assign([1, 2, 3]).tolist() == [0, 0, 0]


def test_bad_inputs() -> None:
    for bad in (1, 0, 65536, 100, 2**24 + 1):
        with pytest.raises(ValueError, match="table_size"):
            Maglev(["a"], table_size=bad)
    with pytest.raises(ValueError, match="between 2 and"):
        Maglev(["a"], table_size=16777289)  # prime, but above the bound
    with pytest.raises(TypeError, match="table_size"):
        Maglev(["a"], table_size=65537.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="smaller than the number of nodes"):
        Maglev(NAMES[:5], table_size=3)
    with pytest.raises(ValueError, match="at least one node"):
        Maglev([])
    with pytest.raises(ValueError, match="duplicate"):
        Maglev(["a", "a"])
    with pytest.raises(ValueError, match="finite, > 0"):
        Maglev({"a": 0.0})
    m = Maglev(["a", "b"], table_size=11)
    with pytest.raises(ValueError, match="n: must be between 1"):
        m.replicas(["k"], 3)
    with pytest.raises(ValueError, match="no zones"):
        m.add("c", zone="z")
    with pytest.raises(ValueError, match="already"):
        m.add("a")
    with pytest.raises(ValueError, match="last node"):
        Maglev(["a"], table_size=11).remove("a")
    with pytest.raises(InvalidPlacementError):
        ringguard.from_json(m.to_json().replace("11", "12"))
    with pytest.raises(ValueError, match="prime"):
        core.maglev_populate(np.zeros(1, np.uint64), np.ones(1, np.uint64),
                             np.ones(1, np.int64), np.empty(12, np.int32))
    with pytest.raises(ValueError, match="below the table size"):
        core.maglev_populate(np.zeros(1, np.uint64), np.ones(1, np.uint64),
                             np.ones(1, np.int64), np.empty(11, np.int32))
    with pytest.raises(ValueError, match="node index"):
        core.CoreMaglev(np.full(11, 3, np.int32), 2)


@pytest.mark.skipif(not COMPILED, reason="big table build is slow in pure Python")
def test_large_table_builds() -> None:
    m = Maglev(NAMES, table_size=655373)
    counts = np.bincount(m.table(), minlength=100)
    assert counts.min() >= 6553 and counts.max() <= 6554
    assert core.MAGLEV_MAX_TABLE == 16777259 and core.is_prime(16777259)


def test_moves_more_keys_than_a_ring_as_nodes_grow() -> None:
    """Grow 10 -> 30 nodes one at a time: the summed movement fractions of Maglev exceed
    the ideal sum(1/(N+1)) and a Ring's (measured 1.14 vs 1.04, ideal 1.07, at M = 65537)."""
    keys = u64_keys(N_BIG, seed=2)
    m = Maglev(NAMES[:10], table_size=65537 if COMPILED else 5003)
    r = Ring(NAMES[:10])
    moved_m = moved_r = ideal = 0.0
    for k in range(10, 30):
        m2, r2 = m.add(NAMES[k]), r.add(NAMES[k])
        moved_m += movement(m, m2, keys).fraction
        moved_r += movement(r, r2, keys).fraction
        ideal += 1 / (k + 1)
        m, r = m2, r2
    assert moved_m > ideal + 0.03
    assert moved_m > moved_r + 0.03
    assert abs(moved_r - ideal) < 0.1
