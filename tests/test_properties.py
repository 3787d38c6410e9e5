"""Hypothesis properties of the placements, and a state machine of membership changes
checked against a model built from ``ringguard.reference``.

Profiles ``dev``/``ci`` are registered in ``conftest.py`` (``HYPOTHESIS_PROFILE=ci``:
derandomized, fewer examples).
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import ringguard
from ringguard import Ring, from_json
from ringguard import reference as ref

# ---- strategies --------------------------------------------------------------------------

names_st = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8
)
node_lists = st.lists(names_st, min_size=1, max_size=7, unique=True)
weights_st = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)
odd_weights_st = st.floats(min_value=5e-324, max_value=1e15, allow_nan=False,
                           allow_infinity=False) | weights_st
vnodes_st = st.integers(min_value=1, max_value=48)
zone_names = st.sampled_from(["z0", "z1", "z2", "z3", "zöne-4"])
str_keys = st.lists(st.text(max_size=12) | st.binary(max_size=12), min_size=1, max_size=60)
int_keys = st.lists(st.integers(min_value=-(2**63), max_value=2**64 - 1), min_size=1,
                    max_size=60)
keys_st = str_keys | int_keys


@st.composite
def rings(draw: st.DrawFn, zoned: bool | None = None, equal: bool = False) -> dict[str, Any]:
    """Keyword arguments of a Ring: nodes, weights, zones, vnodes."""
    nodes = draw(node_lists)
    weights = None if equal else draw(st.one_of(
        st.none(), st.fixed_dictionaries({n: weights_st for n in nodes})))
    if zoned is None:
        zoned = draw(st.booleans())
    zones = draw(st.fixed_dictionaries({n: zone_names for n in nodes})) if zoned else None
    return {"nodes": nodes, "weights": weights, "zones": zones, "vnodes": draw(vnodes_st)}


def _names(ring: Any, keys: list[Any]) -> list[str]:
    return [ring.nodes[i] for i in ring.assign(keys)]


# ---- membership changes ------------------------------------------------------------------


@given(args=rings(equal=True), new=names_st, keys=keys_st)
def test_adding_a_node_moves_keys_only_to_it(args: dict[str, Any], new: str,
                                             keys: list[Any]) -> None:
    assume(new not in args["nodes"])
    ring = Ring(**args)
    grown = ring.add(new, 1.0, zone=None if args["zones"] is None else "z0")
    for before, after in zip(_names(ring, keys), _names(grown, keys), strict=True):
        assert after == before or after == new


@given(args=rings(equal=True), keys=keys_st, data=st.data())
def test_removing_a_node_moves_only_its_keys(args: dict[str, Any], keys: list[Any],
                                             data: st.DataObject) -> None:
    assume(len(args["nodes"]) >= 2)
    ring = Ring(**args)
    gone = data.draw(st.sampled_from(args["nodes"]))
    shrunk = ring.remove(gone)
    for before, after in zip(_names(ring, keys), _names(shrunk, keys), strict=True):
        assert after != gone
        assert after == before or before == gone


# ---- replicas ----------------------------------------------------------------------------


@given(args=rings(), keys=keys_st, data=st.data())
def test_replicas_distinct_and_primary_first(args: dict[str, Any], keys: list[Any],
                                             data: st.DataObject) -> None:
    ring = Ring(**args)
    n = data.draw(st.integers(1, len(ring.nodes)))
    reps = ring.replicas(keys, n)
    assert reps.shape == (len(keys), n) and reps.dtype == np.int32
    assert reps[:, 0].tolist() == ring.assign(keys).tolist()
    assert all(len(set(row)) == n for row in reps.tolist())
    if args["zones"] is not None:
        zones = args["zones"]
        nzones = len(set(zones.values()))
        for row in reps.tolist():
            row_zones = [zones[ring.nodes[i]] for i in row]
            if n <= nzones:  # at least n zones: every copy in its own zone
                assert len(set(row_zones)) == n
            else:
                assert len(set(row_zones)) == nzones
    else:  # without zones, a prefix of the longer list
        longer = ring.replicas(keys, len(ring.nodes))
        assert longer[:, :n].tolist() == reps.tolist()


@given(weights=st.dictionaries(names_st, st.integers(1, 50), min_size=1, max_size=6),
       compat=st.sampled_from(["libketama", "uhashring"]), keys=keys_st, data=st.data())
def test_ketama_replicas_distinct(weights: dict[str, int], compat: str, keys: list[Any],
                                  data: st.DataObject) -> None:
    ring = Ring.ketama(weights, compat=compat)
    owners = len(set(ring.points()[1].tolist()))
    n = data.draw(st.integers(1, owners))
    reps = ring.replicas(keys, n)
    assert reps[:, 0].tolist() == ring.assign(keys).tolist()
    assert all(len(set(row)) == n for row in reps.tolist())


# ---- parity, serialization, order --------------------------------------------------------


@given(args=rings(), keys=keys_st)
def test_random_rings_match_reference(args: dict[str, Any], keys: list[Any]) -> None:
    fast, slow = Ring(**args), ref.Ring(**args)
    assert fast.points()[0].tolist() == slow.points()[0].tolist()
    assert fast.assign(keys).tolist() == slow.assign(keys).tolist()
    n = min(3, len(fast.nodes))
    assert fast.replicas(keys, n).tolist() == slow.replicas(keys, n).tolist()


@given(weights=st.dictionaries(names_st, st.integers(1, 10**6), min_size=1, max_size=6),
       compat=st.sampled_from(["libketama", "uhashring"]), keys=keys_st)
def test_random_ketama_rings_match_reference(weights: dict[str, int], compat: str,
                                             keys: list[Any]) -> None:
    fast, slow = Ring.ketama(weights, compat=compat), ref.Ring.ketama(weights, compat=compat)
    assert fast.points()[1].tolist() == slow.points()[1].tolist()
    assert fast.assign(keys).tolist() == slow.assign(keys).tolist()


@given(args=rings(), odd=st.lists(odd_weights_st, min_size=7, max_size=7), keys=keys_st)
def test_json_and_pickle_round_trips_are_exact(args: dict[str, Any], odd: list[float],
                                               keys: list[Any]) -> None:
    args["weights"] = dict(zip(args["nodes"], odd, strict=False))  # odd has 7
    ring = Ring(**args)
    text = ring.to_json()
    json.loads(text)  # valid JSON
    for back in (from_json(text), Ring.from_json(text), pickle.loads(pickle.dumps(ring))):
        assert back == ring and type(back) is Ring
        assert back.to_json() == text
        assert back.weights == ring.weights and back.zones == ring.zones
        assert back.assign(keys).tolist() == ring.assign(keys).tolist()


@given(weights=st.dictionaries(names_st, st.integers(1, 10**9), min_size=1, max_size=6),
       compat=st.sampled_from(["libketama", "uhashring"]), keys=keys_st)
def test_ketama_round_trips_are_exact(weights: dict[str, int], compat: str,
                                      keys: list[Any]) -> None:
    ring = Ring.ketama(weights, compat=compat)
    for back in (from_json(ring.to_json()), pickle.loads(pickle.dumps(ring))):
        assert back == ring and isinstance(back, ringguard.KetamaRing)
        assert back.compat == compat
        assert back.assign(keys).tolist() == ring.assign(keys).tolist()


@given(args=rings(), keys=keys_st, data=st.data())
def test_node_order_never_changes_placement(args: dict[str, Any], keys: list[Any],
                                            data: st.DataObject) -> None:
    ring = Ring(**args)
    permuted = data.draw(st.permutations(args["nodes"]))
    other = Ring(**{**args, "nodes": permuted})
    assert other.nodes == tuple(permuted)
    assert _names(other, keys) == _names(ring, keys)
    n = min(3, len(ring.nodes))
    names = [[ring.nodes[i] for i in row] for row in ring.replicas(keys, n).tolist()]
    assert [[other.nodes[i] for i in row] for row in other.replicas(keys, n).tolist()] == names


@given(weights=st.dictionaries(names_st, st.integers(1, 20), min_size=1, max_size=6),
       keys=keys_st, data=st.data())
def test_libketama_node_order_never_changes_placement(weights: dict[str, int],
                                                      keys: list[Any],
                                                      data: st.DataObject) -> None:
    permuted = data.draw(st.permutations(list(weights)))
    a = Ring.ketama(weights)
    b = Ring.ketama({n: weights[n] for n in permuted})
    assert _names(a, keys) == _names(b, keys)


# ---- a state machine of membership changes -----------------------------------------------

MACHINE_KEYS: list[Any] = [f"user:{i}" for i in range(120)] + ["", "é", "😀"]
MACHINE_INTS: list[Any] = list(range(-40, 40)) + [2**63, 2**64 - 1, -(2**63)]


class Membership(RuleBasedStateMachine):
    """Nodes come and go through ``add``/``remove``; after every step the ring must place
    every key where a ``reference.Ring`` built from scratch for the same membership does."""

    def __init__(self) -> None:
        super().__init__()
        self.ring: Ring | None = None
        self.model: dict[str, tuple[float, str | None]] = {}  # name -> (weight, zone)
        self.vnodes = 1
        self.zoned = False

    @initialize(first=names_st, weight=st.sampled_from([0.5, 1.0, 2.0]), vnodes=vnodes_st,
                zoned=st.booleans(), zone=zone_names)
    def start(self, first: str, weight: float, vnodes: int, zoned: bool, zone: str) -> None:
        self.vnodes, self.zoned = vnodes, zoned
        z = zone if zoned else None
        self.ring = Ring({first: weight}, zones=None if z is None else {first: z},
                         vnodes=vnodes)
        self.model[first] = (weight, z)

    @precondition(lambda self: len(self.model) < 9)
    @rule(name=names_st, weight=st.sampled_from([0.5, 1.0, 2.0, 3.25]), zone=zone_names)
    def add(self, name: str, weight: float, zone: str) -> None:
        assert self.ring is not None
        z = zone if self.zoned else None
        if name in self.model:
            try:
                self.ring.add(name, weight, zone=z)
            except ValueError:
                return
            raise AssertionError(f"adding {name!r} twice was accepted")
        before = self.ring
        self.ring = self.ring.add(name, weight, zone=z)
        self.model[name] = (weight, z)
        assert before.nodes == tuple(self.model)[:-1]  # the old ring is unchanged

    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        assert self.ring is not None
        name = data.draw(st.sampled_from(sorted(self.model)))
        if len(self.model) == 1:
            try:
                self.ring.remove(name)
            except ValueError:
                return
            raise AssertionError("removing the last node was accepted")
        self.ring = self.ring.remove(name)
        del self.model[name]

    @rule(name=names_st)
    def remove_unknown(self, name: str) -> None:
        assert self.ring is not None
        if name not in self.model:
            try:
                self.ring.remove(name)
            except ValueError:
                return
            raise AssertionError(f"removing unknown {name!r} was accepted")

    @invariant()
    def matches_reference(self) -> None:
        if self.ring is None:
            return
        ring = self.ring
        assert ring.nodes == tuple(self.model)
        # the model lists nodes in another order: placement must not depend on it
        names = sorted(self.model, reverse=True)
        zones = {n: self.model[n][1] for n in names} if self.zoned else None
        model = ref.Ring(names, weights={n: self.model[n][0] for n in names}, zones=zones,
                         vnodes=self.vnodes)
        for keys in (MACHINE_KEYS, MACHINE_INTS):
            assert _names(ring, keys) == _names(model, keys)
        n = min(3, len(names))
        got = [[ring.nodes[i] for i in row] for row in ring.replicas(MACHINE_KEYS, n).tolist()]
        want = [[model.nodes[i] for i in row]
                for row in model.replicas(MACHINE_KEYS, n).tolist()]
        assert got == want
        assert from_json(ring.to_json()) == ring


TestMembership = Membership.TestCase
_profile = settings()  # the loaded profile (conftest.py)
TestMembership.settings = settings(
    max_examples=max(10, _profile.max_examples // 2), stateful_step_count=12
)
