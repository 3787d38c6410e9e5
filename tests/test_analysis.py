"""``ringguard.load`` and ``ringguard.movement`` against direct computations."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

import ringguard
from conftest import Data, ring_pair, scaled
from ringguard import Ring, load, movement

N = scaled(60_000, 3_000)


@pytest.mark.parametrize("config", ["1-node", "10-weighted", "1000-weighted", "libketama-2",
                                    "uhashring-10w"])
def test_load_counts(config: str, data: Data) -> None:
    ring, _ = ring_pair(config)
    keys = data.items("str")[:N]
    rep = load(ring, keys)
    idx = ring.assign(keys)
    assert rep.nodes == ring.nodes
    assert rep.counts.dtype == np.int64 and rep.counts.shape == (len(ring.nodes),)
    assert int(rep.counts.sum()) == len(keys)
    assert rep.counts.tolist() == np.bincount(idx, minlength=len(ring.nodes)).tolist()
    assert rep.as_dict() == {name: int((idx == i).sum()) for i, name in enumerate(ring.nodes)}
    assert rep.mean == pytest.approx(len(keys) / len(ring.nodes))
    assert rep.max == int(rep.counts.max())
    assert rep.max_over_mean == pytest.approx(rep.max / rep.mean)
    w = np.array([float(ring.weights[n]) for n in ring.nodes])
    assert np.allclose(rep.expected, len(keys) * w / w.sum())
    assert rep.max_over_expected == pytest.approx(float((rep.counts / rep.expected).max()))
    assert load(ring, keys, threads=2).counts.tolist() == rep.counts.tolist()


def test_load_balance_is_reasonable(data: Data) -> None:
    ring, _ = ring_pair("10-vnodes500")  # equal weights, 500 points each
    rep = load(ring, np.array(data.ints("uint64").values[:N], dtype=np.uint64))
    assert rep.max_over_expected == pytest.approx(rep.max_over_mean)
    assert rep.max_over_mean < 1.3


def test_load_empty_batch() -> None:
    rep = load(Ring(["a", "b"]), [])
    assert rep.counts.tolist() == [0, 0]
    assert rep.mean == 0.0 and rep.max == 0 and rep.max_over_mean == 0.0
    assert rep.max_over_expected == 0.0
    assert rep.as_dict() == {"a": 0, "b": 0}


def _direct_movement(old: Any, new: Any, keys: Any) -> tuple[list[bool], Counter[tuple[str, str]]]:
    before = [old.nodes[i] for i in old.assign(keys)]
    after = [new.nodes[i] for i in new.assign(keys)]
    moved = [a != b for a, b in zip(before, after, strict=True)]
    return moved, Counter(zip(before, after, strict=True))


def _check_movement(old: Any, new: Any, keys: Any) -> ringguard.Movement:
    mv = movement(old, new, keys)
    moved, flows = _direct_movement(old, new, keys)
    assert mv.moved.dtype == bool and mv.moved.tolist() == moved
    assert mv.count == sum(moved)
    assert mv.fraction == pytest.approx(sum(moved) / len(moved))
    assert mv.old_nodes == old.nodes and mv.new_nodes == new.nodes
    assert mv.matrix.dtype == np.int64
    assert mv.matrix.shape == (len(old.nodes), len(new.nodes))
    expected = np.zeros(mv.matrix.shape, dtype=np.int64)
    for (a, b), count in flows.items():
        expected[old.nodes.index(a), new.nodes.index(b)] = count
    assert mv.matrix.tolist() == expected.tolist()
    assert int(mv.matrix.sum()) == len(moved)
    listed = sorted(((a, b, c) for (a, b), c in flows.items() if a != b),
                    key=lambda t: (-t[2], t[0], t[1]))
    assert mv.flows() == listed
    return mv


def test_movement_matches_direct_computation(data: Data) -> None:
    keys = data.items("mixed")[:N]
    ring, _ = ring_pair("10-weighted")
    _check_movement(ring, ring_pair("10-weighted-remove")[0], keys)
    _check_movement(ring, ring_pair("10-weighted+add")[0], keys)
    _check_movement(ring, Ring(ring.weights, vnodes=150), keys)  # every node changes a bit
    k, _ = ring_pair("libketama-10w")
    _check_movement(k, ring_pair("libketama-10w+add")[0], keys)
    _check_movement(k, ring_pair("uhashring-10w")[0], keys)


def test_movement_same_ring_and_reordered_nodes(data: Data) -> None:
    keys = data.items("str")[:N]
    a = Ring(["x", "y", "z"], weights={"x": 2.0}, vnodes=50)
    b = Ring(["z", "x", "y"], weights={"x": 2.0}, vnodes=50)
    for other in (a, b):
        mv = _check_movement(a, other, keys)
        assert mv.count == 0 and mv.fraction == 0.0 and mv.flows() == []
    mv = movement(a, b, keys)
    assert mv.matrix.tolist() == [[0, mv.matrix[0, 1], 0], [0, 0, mv.matrix[1, 2]],
                                  [mv.matrix[2, 0], 0, 0]]


def test_adding_a_node_only_feeds_the_new_node(data: Data) -> None:
    keys = np.array(data.ints("int64").values[:N], dtype=np.int64)
    old = Ring([f"n{i}" for i in range(8)])
    new = old.add("n-new")
    mv = _check_movement(old, new, keys)
    flows = mv.flows()
    assert len(flows) == 8 and {to for _, to, _ in flows} == {"n-new"}
    assert 0.06 < mv.fraction < 0.18  # about 1/9
    assert mv.matrix[:, new.nodes.index("n-new")].sum() == mv.count
    back = _check_movement(new, old, keys)  # and removing it sends its keys back
    assert back.moved.tolist() == mv.moved.tolist()
    assert {src for src, _, _ in back.flows()} == {"n-new"}


def test_movement_empty_batch() -> None:
    mv = movement(Ring(["a"]), Ring(["a", "b"]), [])
    assert mv.moved.shape == (0,) and mv.count == 0 and mv.fraction == 0.0
    assert mv.matrix.tolist() == [[0, 0]]
    assert mv.flows() == []
