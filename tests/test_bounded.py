"""Consistent hashing with bounded loads: Ring.assign(keys, max_load=c)."""

from __future__ import annotations

import json
import math
import pathlib
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ringguard
from ringguard import Ring
from ringguard import reference as ref
from ringguard._backend import core

FAST = ringguard.BACKEND == "c"
N_KEYS = 200_000 if FAST else 4000
NODES = [f"node{i}" for i in range(10)]


def _keys(n: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**63, n).astype(np.uint64)


@pytest.mark.parametrize("c", [1.0, 1.05, 1.25, 2.0])
def test_counts_respect_capacities(c: float) -> None:
    ring = Ring(NODES, vnodes=100)
    keys = _keys(N_KEYS)
    got = ring.assign(keys, max_load=c)
    counts = np.bincount(got, minlength=len(NODES))
    cap = ring.capacities(len(keys), c)
    assert counts.sum() == len(keys)
    assert np.all(counts <= cap)
    assert counts.max() <= math.ceil(c * len(keys) / len(NODES))
    plain = np.bincount(ring.assign(keys), minlength=len(NODES))
    assert plain.max() / plain.mean() > 1.05  # the bound does something here


def test_weighted_capacities() -> None:
    weights = {"a": 1.0, "b": 2.0, "c": 3.5, "d": 0.5}
    ring = Ring(weights, vnodes=50)
    keys = _keys(N_KEYS // 4, seed=3)
    got = ring.assign(keys, max_load=1.1)
    counts = np.bincount(got, minlength=4)
    cap = ring.capacities(len(keys), 1.1)
    assert cap.tolist() == [math.ceil(1.1 * len(keys) * w / 7.0) for w in weights.values()]
    assert np.all(counts <= cap)


def test_matches_reference_twin() -> None:
    n = 3000 if FAST else 600
    keys = [f"user:{i}" for i in range(n)]
    for nodes, kw in [(NODES, {"vnodes": 20}), ({"a": 1.0, "b": 3.0, "c": 0.25}, {"vnodes": 8})]:
        ring, rref = Ring(nodes, **kw), ref.Ring(nodes, **kw)  # type: ignore[arg-type]
        for c in (1.0, 1.2, 3.0):
            assert np.array_equal(ring.assign(keys, max_load=c), rref.assign(keys, max_load=c)), c


def test_ketama_ring_matches_reference() -> None:
    keys = list(range(1500 if FAST else 400))
    nodes = {"s1": 1, "s2": 5, "s3": 2}
    ring = Ring.ketama(nodes)
    rref = ref.Ring.ketama(nodes)
    assert np.array_equal(ring.assign(keys, max_load=1.1), rref.assign(keys, max_load=1.1))


def test_order_and_batch_dependence_is_deterministic() -> None:
    ring = Ring(NODES, vnodes=30)
    keys = _keys(5000, seed=11)
    a = ring.assign(keys, max_load=1.1)
    assert np.array_equal(a, ring.assign(keys, max_load=1.1))
    assert np.array_equal(a, ring.assign(keys, max_load=1.1, threads=4))
    # The first key never walks: every node is empty when it is placed.
    assert a[0] == ring.assign(keys[:1])[0]
    # A bound that cannot bind gives plain consistent hashing.
    assert np.array_equal(ring.assign(keys, max_load=float(len(NODES))), ring.assign(keys))


def test_out_and_empty() -> None:
    ring = Ring(NODES, vnodes=10)
    out = np.full(100, -1, dtype=np.int32)
    assert ring.assign(_keys(100), max_load=1.0, out=out) is out
    assert out.min() >= 0
    assert ring.assign([], max_load=1.5).shape == (0,)
    assert ring.assign(np.array([], dtype=np.uint64), max_load=1.0).dtype == np.int32


def test_bad_max_load_raises_before_any_work() -> None:
    ring = Ring(NODES, vnodes=10)
    for bad in (0.99, 0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="max_load"):
            ring.assign(["a"], max_load=bad)
    for wrong in (True, "1.5", None.__class__):
        with pytest.raises(TypeError, match="max_load"):
            ring.assign(["a"], max_load=wrong)  # type: ignore[arg-type]
    # The bound is checked before the keys are even read.
    with pytest.raises(ValueError, match="max_load"):
        ring.assign([1.5], max_load=0.5)
    with pytest.raises(ValueError, match="max_load"):
        ref.Ring(NODES, vnodes=10).assign(["a"], max_load=0.5)
    with pytest.raises(TypeError, match=r"keys\[1\]"):
        ring.assign(["a", None], max_load=1.5)


def test_kernel_checks() -> None:
    owners = np.array([0, 1, 0, 1], dtype=np.int32)
    first = np.array([0, 3, 2], dtype=np.int32)
    out = np.empty(3, dtype=np.int32)
    core.assign_bounded(owners, first, np.array([2, 2], dtype=np.int64), out)
    assert out.tolist() == [0, 1, 0]
    core.assign_bounded(owners, first, np.array([1, 5], dtype=np.int64), out)
    assert out.tolist() == [0, 1, 1]  # node 0 is full for the third key: walks to point 3
    with pytest.raises(ValueError, match="max_load: capacities hold 2 keys"):
        core.assign_bounded(owners, first, np.array([1, 1], dtype=np.int64), out)
    with pytest.raises(ValueError, match=r"first\[1\]"):
        core.assign_bounded(owners, np.array([0, 4, 0], dtype=np.int32),
                            np.array([5, 5], dtype=np.int64), out)
    with pytest.raises(ValueError, match=r"owners\[1\]"):
        core.assign_bounded(np.array([0, 2], dtype=np.int32), first,
                            np.array([5, 5], dtype=np.int64), out)
    with pytest.raises(ValueError, match=r"cap\[1\]"):
        core.assign_bounded(owners, first, np.array([5, -1], dtype=np.int64), out)
    with pytest.raises(ValueError, match="out"):
        core.assign_bounded(owners, first, np.array([5, 5], dtype=np.int64),
                            np.empty(2, dtype=np.int32))
    # A node without points does not count towards the room.
    with pytest.raises(ValueError, match="capacities hold 1 keys"):
        core.assign_bounded(np.array([0], dtype=np.int32), np.zeros(2, dtype=np.int32),
                            np.array([1, 9], dtype=np.int64), out[:2])


def test_capacities_validation() -> None:
    ring = Ring(["a", "b"])
    assert ring.capacities(0, 1.0).tolist() == [0, 0]
    assert ring.capacities(3, 1.0).tolist() == [2, 2]
    with pytest.raises(ValueError, match="n_keys"):
        ring.capacities(-1, 1.0)
    with pytest.raises(TypeError, match="n_keys"):
        ring.capacities(2.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_load"):
        ring.capacities(10, 0.5)


@settings(max_examples=60 if FAST else 20, deadline=None)
@given(
    st.lists(st.text(max_size=6), max_size=60),
    st.floats(min_value=1.0, max_value=3.0),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=1, max_value=8),
)
def test_property_bounded_and_equal_to_reference(
    keys: list[str], c: float, nnodes: int, vnodes: int
) -> None:
    nodes = [f"n{i}" for i in range(nnodes)]
    ring = Ring(nodes, vnodes=vnodes)
    got = ring.assign(keys, max_load=c)
    counts = np.bincount(got, minlength=nnodes)
    assert np.all(counts <= ring.capacities(len(keys), c))
    assert np.array_equal(got, ref.Ring(nodes, vnodes=vnodes).assign(keys, max_load=c))


def test_random_weights_parity() -> None:
    rng = random.Random(5)
    for _ in range(5 if FAST else 2):
        nodes = {f"w{i}": rng.uniform(0.1, 4.0) for i in range(rng.randrange(1, 8))}
        keys = [rng.randbytes(rng.randrange(0, 10)) for _ in range(300)]
        c = rng.uniform(1.0, 1.5)
        ring, rref = Ring(nodes, vnodes=16), ref.Ring(nodes, vnodes=16)
        assert np.array_equal(ring.assign(keys, max_load=c), rref.assign(keys, max_load=c))


def test_golden_fixture() -> None:
    doc = json.loads((pathlib.Path(__file__).parent / "vectors" / "bounded_pairs.json")
                     .read_text())["bounded"]
    keys = [f"key:{i}" for i in range(doc["n_keys"])]
    ring = Ring(doc["nodes"], vnodes=doc["vnodes"])
    assert ring.assign(keys, max_load=doc["max_load"]).tolist() == doc["assign"]
    rref = ref.Ring(doc["nodes"], vnodes=doc["vnodes"])
    assert rref.assign(keys, max_load=doc["max_load"]).tolist() == doc["assign"]
