"""Dual-machine pairs (copysets): Ring(..., pairs=[(a, b), ...])."""

from __future__ import annotations

import itertools
import json
import pathlib
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ringguard
from ringguard import InvalidPlacementError, Ring, from_json
from ringguard import reference as ref

FAST = ringguard.BACKEND == "c"
NODES = [f"node{i}" for i in range(10)]
PAIRS = [(NODES[2 * i], NODES[2 * i + 1]) for i in range(5)]


def _keys(n: int) -> list[str]:
    return [f"user:{i}" for i in range(n)]


def test_primary_from_ring_standby_is_partner() -> None:
    ring = Ring(NODES, vnodes=50, pairs=PAIRS)
    plain = Ring(NODES, vnodes=50)
    keys = _keys(5000 if FAST else 1000)
    rows = ring.replicas(keys, 2)
    assert rows.shape == (len(keys), 2) and rows.dtype == np.int32
    assert np.array_equal(rows[:, 0], ring.assign(keys))
    assert np.array_equal(rows[:, 0], plain.assign(keys))  # pairs never move primaries
    partner = {a: b for a, b in PAIRS} | {b: a for a, b in PAIRS}
    assert all(ring.nodes[s] == partner[ring.nodes[p]] for p, s in rows.tolist())
    assert np.array_equal(ring.replicas(keys, 1), rows[:, :1])
    assert np.array_equal(ring.replicas(keys, 2, threads=3), rows)
    # The ring walk is still there on request, and it is what a ring without pairs gives.
    assert np.array_equal(ring.replicas(keys, 3, strategy="ring"), plain.replicas(keys, 3))
    assert ring.partner("node3") == "node2" and ring.pairs == tuple(PAIRS)


def test_matches_reference() -> None:
    pairs = [("a", "d"), ("c", "b"), ("f", "e")]
    nodes = {"a": 1.0, "b": 2.0, "c": 0.5, "d": 1.0, "e": 3.0, "f": 1.0}
    ring = Ring(nodes, vnodes=20, pairs=pairs)
    rref = ref.Ring(nodes, vnodes=20, pairs=pairs)
    keys = _keys(2000 if FAST else 400) + ["", "é"]
    for n in (1, 2):
        assert np.array_equal(ring.replicas(keys, n), rref.replicas(keys, n))
    assert np.array_equal(ring.replicas(keys, 3, strategy="ring"),
                          rref.replicas(keys, 3, strategy="ring"))


def test_copysets_trade_off() -> None:
    """Ring successors spread each node's keys over many partners, so every double failure
    loses some key; with 5 fixed pairs only the 5 pair failures do (5 of 45, 1 in 9)."""
    keys = np.arange(20_000 if FAST else 5000, dtype=np.uint64)
    ring_sets = {frozenset(r) for r in Ring(NODES, vnodes=100).replicas(keys, 2).tolist()}
    pair_sets = {frozenset(r) for r in
                 Ring(NODES, vnodes=100, pairs=PAIRS).replicas(keys, 2).tolist()}
    failures = [frozenset(f) for f in itertools.combinations(range(10), 2)]
    assert len(failures) == 45
    lost_ring = [f for f in failures if f in ring_sets]
    lost_pairs = [f for f in failures if f in pair_sets]
    assert len(lost_ring) == 45
    assert len(lost_pairs) == 5
    assert {frozenset(NODES.index(x) for x in p) for p in PAIRS} == set(lost_pairs)
    # ... but when a pair fails, it loses a fifth of the keys, not a sliver.
    idx = Ring(NODES, vnodes=100, pairs=PAIRS).replicas(keys, 2)
    lost = np.isin(idx[:, 0], [0, 1]) & np.isin(idx[:, 1], [0, 1])
    assert 0.1 < lost.mean() < 0.3


def test_validation() -> None:
    with pytest.raises(ValueError, match="odd count"):
        Ring(["a", "b", "c"], pairs=[("a", "b")])
    with pytest.raises(ValueError, match=r"pairs\[1\]: unknown node 'x'"):
        Ring(["a", "b", "c", "d"], pairs=[("a", "b"), ("c", "x")])
    with pytest.raises(ValueError, match=r"pairs\[1\]: node 'a' is already in pairs\[0\]"):
        Ring(["a", "b", "c", "d"], pairs=[("a", "b"), ("a", "c")])
    with pytest.raises(ValueError, match=r"pairs\[0\]: a node cannot be its own partner"):
        Ring(["a", "b"], pairs=[("a", "a")])
    with pytest.raises(ValueError, match="node 'c' has no partner"):
        Ring(["a", "b", "c", "d"], pairs=[("a", "b")])
    with pytest.raises(TypeError, match=r"pairs\[0\]: expected a pair"):
        Ring(["a", "b"], pairs=[("a", "b", "c")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"pairs\[0\]: node names must be str"):
        Ring(["a", "b"], pairs=[("a", 1)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="pairs"):
        Ring(["a", "b"], pairs="ab")  # type: ignore[arg-type]
    ring = Ring(["a", "b", "c", "d"], pairs=[("a", "b"), ("c", "d")])
    with pytest.raises(ValueError, match="n: with pairs"):
        ring.replicas(["k"], 3)
    with pytest.raises(ValueError, match="n: with pairs"):
        ring.replicas(["k"], 0)
    with pytest.raises(ValueError, match="strategy"):
        ring.replicas(["k"], 2, strategy="copyset")
    with pytest.raises(ValueError, match="strategy: 'pairs' needs"):
        Ring(["a", "b"]).replicas(["k"], 2, strategy="pairs")
    with pytest.raises(ValueError, match="no pairs"):
        Ring(["a", "b"]).partner("a")
    assert ring.replicas([], 2).shape == (0, 2)


def test_membership_changes_keep_pairs() -> None:
    ring = Ring(["a", "b", "c", "d"], pairs=[("a", "b"), ("c", "d")], vnodes=20)
    with pytest.raises(ValueError, match="add_pair"):
        ring.add("e")
    with pytest.raises(ValueError, match="remove_pair"):
        ring.remove("a")
    grown = ring.add_pair("e", "f", weights={"e": 2.0})
    assert grown.pairs == (("a", "b"), ("c", "d"), ("e", "f"))
    assert grown.weights["e"] == 2.0 and grown.weights["f"] == 1.0
    shrunk = grown.remove_pair("d")
    assert shrunk.nodes == ("a", "b", "e", "f") and shrunk.pairs == (("a", "b"), ("e", "f"))
    with pytest.raises(ValueError, match="already on the ring"):
        ring.add_pair("a", "z")
    with pytest.raises(ValueError, match="last pair"):
        Ring(["a", "b"], pairs=[("a", "b")]).remove_pair("a")
    with pytest.raises(ValueError, match="use add"):
        Ring(["a", "b"]).add_pair("c", "d")
    rref = ref.Ring(["a", "b"], pairs=[("a", "b")])
    with pytest.raises(ValueError, match="pairs"):
        rref.add("c")
    with pytest.raises(ValueError, match="pairs"):
        rref.remove("a")


def test_json_pairs_field_only_when_set() -> None:
    plain = Ring(["a", "b", "c", "d"], vnodes=8)
    doc = json.loads(plain.to_json())
    assert "pairs" not in doc  # ring-xxh64@1 documents without pairs are unchanged
    assert doc == {
        "format": "ringguard.placement", "version": 1, "algorithm": "ring-xxh64@1",
        "vnodes": 8, "nodes": [{"name": n, "weight": 1.0, "zone": None} for n in "abcd"],
    }
    paired = Ring(["a", "b", "c", "d"], vnodes=8, pairs=[("d", "a"), ("b", "c")])
    pdoc = json.loads(paired.to_json())
    assert pdoc["pairs"] == [["d", "a"], ["b", "c"]]
    back = from_json(paired.to_json())
    assert back == paired and back.pairs == paired.pairs and back != plain
    assert pickle.loads(pickle.dumps(paired)) == paired
    assert from_json(plain.to_json()) == plain
    for bad, msg in [
        ([["a", "b"]], "has no partner"),
        ([["a", "b"], ["c"]], r"pairs\[1\]"),
        ([["a", "b"], ["c", 4]], r"pairs\[1\]"),
        ("ab", "pairs"),
        ([], "pairs"),
    ]:
        with pytest.raises(InvalidPlacementError, match=msg):
            from_json(dict(pdoc, pairs=bad))


@settings(max_examples=40 if FAST else 15, deadline=None)
@given(st.integers(min_value=1, max_value=5), st.randoms(use_true_random=False),
       st.lists(st.text(max_size=5), max_size=30))
def test_property_partner_is_fixed(npairs: int, rnd: object, keys: list[str]) -> None:
    import random

    assert isinstance(rnd, random.Random)
    nodes = [f"n{i}" for i in range(2 * npairs)]
    order = nodes[:]
    rnd.shuffle(order)
    pairs = [(order[2 * i], order[2 * i + 1]) for i in range(npairs)]
    ring = Ring(nodes, vnodes=6, pairs=pairs)
    rows = ring.replicas(keys, 2)
    assert np.array_equal(rows, ref.Ring(nodes, vnodes=6, pairs=pairs).replicas(keys, 2))
    for p, s in rows.tolist():
        assert p != s and ring.partner(ring.nodes[p]) == ring.nodes[s]


def test_golden_fixture() -> None:
    doc = json.loads((pathlib.Path(__file__).parent / "vectors" / "bounded_pairs.json")
                     .read_text())["pairs"]
    keys = [f"key:{i}" for i in range(doc["n_keys"])]
    pairs = [tuple(p) for p in doc["pairs"]]
    ring = Ring(doc["nodes"], vnodes=doc["vnodes"], pairs=pairs)
    assert ring.replicas(keys, 2).tolist() == doc["replicas"]
