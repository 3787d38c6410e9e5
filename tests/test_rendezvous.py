"""Rendezvous (weighted HRW): golden vectors, parity, the deterministic ln, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import ringguard
from algos_support import (
    N_BIG,
    N_SMALL,
    VECTORS,
    check_empty_and_out,
    check_replicas_shape,
    check_round_trips,
    containers,
    moved_by_name,
    str_keys,
    u64_keys,
    vector_groups,
)
from ringguard import Rendezvous, reference
from ringguard import _pycore as pycore
from ringguard._backend import core
from ringguard.errors import InvalidPlacementError

NAMES = [f"node{i}" for i in range(100)]


def _weights(n: int) -> dict[str, float]:
    return {nm: 0.25 + (i * 0.37) % 3 for i, nm in enumerate(NAMES[:n])}


def test_ln_u_vectors_and_accuracy() -> None:
    for h, want in VECTORS["ln_u"]:
        assert core.hrw_ln_u(h).hex() == want
        assert pycore.hrw_ln_u(h).hex() == want
        assert reference.rendezvous.ln_u(h).hex() == want
    rng = np.random.default_rng(5)
    for h in rng.integers(0, 2**64, 2000, dtype=np.uint64).tolist() + [0, 2**64 - 1]:
        got = core.hrw_ln_u(h)
        assert got == pycore.hrw_ln_u(h)
        u = ((h >> 12) + 0.5) / 2**52
        assert got < 0
        assert math.isclose(got, math.log(u), rel_tol=4e-16, abs_tol=1e-300)


def test_golden_vectors() -> None:
    for case in VECTORS["cases"]:
        if case["algorithm"] != "rendezvous":
            continue
        r = Rendezvous(dict(case["nodes"]))
        rows = np.array(case["replicas"])
        for batch, pos in vector_groups():
            assert np.array_equal(r.replicas(batch, rows.shape[1]), rows[pos])


@pytest.mark.parametrize("nnodes", [1, 2, 10, 100])
@pytest.mark.parametrize("weighted", [False, True])
def test_parity_with_reference(nnodes: int, weighted: bool) -> None:
    nodes = _weights(nnodes) if weighted else NAMES[:nnodes]
    r = Rendezvous(nodes)
    ref = reference.Rendezvous(nodes)
    # the pure-Python reference costs O(nodes) XXH64 per key: fewer keys for many nodes
    nkeys = N_BIG if nnodes == 2 else N_SMALL // (1 if nnodes <= 10 else 10)
    keys = u64_keys(nkeys)
    assert np.array_equal(r.assign(keys), ref.assign(keys))
    skeys = str_keys(min(nkeys, N_SMALL) // 3)
    n = min(3, nnodes)
    assert np.array_equal(check_replicas_shape(r, skeys, n), ref.replicas(skeys, n))


@pytest.mark.parametrize("weighted", [False, True])
def test_kernel_twin_parity(weighted: bool) -> None:
    nodes = _weights(10) if weighted else NAMES[:10]
    r = Rendezvous(nodes)
    hashes = u64_keys(N_BIG // 5, seed=9)  # x 10 nodes: 200k key-node scores
    w = r._w  # the kernel arguments the class built
    o1 = np.empty(len(hashes), np.int32)
    o2 = np.empty(len(hashes), np.int32)
    core.hrw_assign(r._lanes, w, r._ids, hashes, o1)
    pycore.hrw_assign(r._lanes, w, r._ids, hashes, o2)
    assert np.array_equal(o1, o2)
    h = hashes[:2000]
    r1 = np.empty((len(h), 10), np.int32)
    r2 = np.empty((len(h), 10), np.int32)
    core.hrw_replicas(r._lanes, w, r._ids, h, 10, r1)
    pycore.hrw_replicas(r._lanes, w, r._ids, h, 10, r2)
    assert np.array_equal(r1, r2)


def test_weights_are_respected() -> None:
    nodes = {"a": 1.0, "b": 2.0, "c": 4.0, "d": 1.0}
    counts = np.bincount(Rendezvous(nodes).assign(u64_keys(N_BIG)), minlength=4)
    share = counts / counts.sum()
    want = np.array([1, 2, 4, 1]) / 8
    assert np.abs(share - want).max() < (0.01 if N_BIG >= 100_000 else 0.05)


def test_equal_weights_rank_like_unweighted() -> None:
    keys = u64_keys(N_SMALL)
    a = Rendezvous(NAMES[:10]).replicas(keys, 4)
    b = Rendezvous(dict.fromkeys(NAMES[:10], 3.5)).replicas(keys, 4)
    assert np.array_equal(a, b)


def test_containers_agree() -> None:
    r = Rendezvous(_weights(10))
    keys = str_keys(2000)
    want = r.assign(keys)
    for c in containers(keys):
        assert np.array_equal(r.assign(c), want), type(c)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 30), st.booleans(), st.integers(0, 2**32))
def test_add_and_remove_move_only_what_they_must(nnodes: int, weighted: bool, seed: int) -> None:
    nodes = _weights(nnodes) if weighted else dict.fromkeys(NAMES[:nnodes], 1.0)
    old = Rendezvous(nodes)
    new = old.add("fresh", weight=1.7 if weighted else 1.0)
    keys = u64_keys(1000, seed)
    a, b = moved_by_name(old, new, keys)
    assert set(b[a != b]) <= {"fresh"}
    victim = NAMES[seed % nnodes]
    if nnodes > 1:
        c, d = moved_by_name(old, old.remove(victim), keys)
        assert set(c[c != d]) <= {victim}


@settings(max_examples=20, deadline=None)
@given(st.permutations(NAMES[:8]), st.integers(1, 8))
def test_node_order_never_matters(order: list[str], n: int) -> None:
    w = _weights(8)
    base = Rendezvous(w)
    other = Rendezvous({nm: w[nm] for nm in order})
    keys = str_keys(300)
    pos = np.array([other.nodes.index(nm) for nm in base.nodes])
    assert np.array_equal(pos[base.replicas(keys, n)], other.replicas(keys, n))


def test_round_trips_and_api() -> None:
    r = Rendezvous({"b": 1.0, "a": 0.1 + 0.2, "c": 1e-3})
    check_round_trips(r)
    check_empty_and_out(r)
    check_empty_and_out(Rendezvous(["x", "y"]))
    assert r.weights["a"] == 0.1 + 0.2
    again = r.remove("a").add("a", 0.1 + 0.2)
    assert again == Rendezvous({"b": 1.0, "c": 1e-3, "a": 0.30000000000000004})
    assert isinstance(r, ringguard.Placement)
    assert "weighted" in repr(r)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="at least one node"):
        Rendezvous([])
    with pytest.raises(ValueError, match="duplicate"):
        Rendezvous(["a", "a"])
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="finite, > 0"):
            Rendezvous({"a": bad})
    with pytest.raises(TypeError, match="weights"):
        Rendezvous({"a": "1"})  # type: ignore[dict-item]
    r = Rendezvous(["a", "b"])
    with pytest.raises(ValueError, match="n: must be between 1"):
        r.replicas(["k"], 3)
    with pytest.raises(ValueError, match="no zones"):
        r.add("c", zone="z")
    with pytest.raises(ValueError, match="not in"):
        r.remove("zz")
    with pytest.raises(ValueError, match="keys\\[0\\]"):
        r.assign([2**64])
    with pytest.raises(InvalidPlacementError):
        ringguard.from_json(r.to_json().replace("1.0", "-1.0"))
    with pytest.raises(ValueError, match="weights\\[1\\]"):
        core.hrw_assign(r._lanes, np.array([1.0, np.nan]), r._ids, np.zeros(1, np.uint64),
                        np.empty(1, np.int32))


@pytest.mark.parametrize("weights", [
    [1.0, 1.0 + 2**-52, 1.0 + 2**-51, 1.0 - 2**-53],  # near ties
    [1e-300, 1.0, 1e300, 5e-324],  # extreme ratios, a subnormal
    [1.7976931348623157e308, 1e308, 1.5e308, 1.0],  # scores overflow to inf
    [3.0, 3.0, 3.0, 2.9999999999999996],
])
def test_pruned_kernel_equals_full_scoring(weights: list[float]) -> None:
    """The C kernel skips ln for nodes that cannot win; the twin scores every node.

    The kernels are fed the weights directly: placements refuse weights above 1e15 (the
    contract's bound), but the kernel must stay exact for any positive finite weight.
    """
    r = Rendezvous(NAMES[: len(weights)])
    w = np.array(weights, dtype=np.float64)
    hashes = u64_keys(N_SMALL * 4, seed=13)
    o1 = np.empty(len(hashes), np.int32)
    o2 = np.empty(len(hashes), np.int32)
    core.hrw_assign(r._lanes, w, r._ids, hashes, o1)
    pycore.hrw_assign(r._lanes, w, r._ids, hashes, o2)
    assert np.array_equal(o1, o2)
    named = dict(zip(NAMES, weights, strict=False))
    if max(weights) <= 1e15:
        keys = str_keys(N_SMALL // 3)
        fast, ref = Rendezvous(named), reference.Rendezvous(named)
        assert np.array_equal(fast.replicas(keys, 4), ref.replicas(keys, 4))
    else:  # both twins refuse the document, with the same error
        with pytest.raises(ValueError, match="<= 1e\\+?15"):
            Rendezvous(named)
        with pytest.raises(ValueError, match="<= 1e\\+?15"):
            reference.Rendezvous(named)


class MembershipMachine(RuleBasedStateMachine):
    """Nodes join and leave in any order; the model is a dict name -> weight.

    After every step the placement equals one built from the model, keys move only to a
    joining node or away from a leaving one, and it survives JSON.
    """

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, float] = {"n0": 1.0}
        self.p = Rendezvous(self.model)
        self.owner = self._owners(self.p)

    @staticmethod
    def _owners(p: Rendezvous) -> np.ndarray:
        return np.array(p.nodes, dtype=object)[p.assign(MembershipMachine.keys_static)]

    keys_static = u64_keys(300, seed=17)

    @rule(name=st.sampled_from(NAMES[:12]), weight=st.sampled_from([0.5, 1.0, 2.0]))
    def join(self, name: str, weight: float) -> None:
        if name in self.model:
            return
        self.model[name] = weight
        self.p = self.p.add(name, weight)
        new = self._owners(self.p)
        assert set(new[new != self.owner]) <= {name}
        self.owner = new

    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        if len(self.model) == 1:
            return
        name = data.draw(st.sampled_from(sorted(self.model)))
        del self.model[name]
        self.p = self.p.remove(name)
        new = self._owners(self.p)
        assert set(self.owner[new != self.owner]) <= {name}
        self.owner = new

    @invariant()
    def matches_model(self) -> None:
        assert self.p.weights == self.model
        assert ringguard.from_json(self.p.to_json()) == self.p
        fresh = Rendezvous(dict(reversed(list(self.model.items()))))
        assert np.array_equal(self._owners(fresh), self.owner)


MembershipMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=10,
                                               deadline=None)
TestMembership = MembershipMachine.TestCase
