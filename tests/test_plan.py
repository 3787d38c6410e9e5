"""ownership() and plan(): exact hash-space accounting checked against brute force."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

import ringguard
from ringguard import Ring, movement, ownership, plan
from ringguard.reference import canonical_keys, ketama_hash, ketama_keys

SPACE = 2**64
SMALL = ringguard.BACKEND == "python"


def brute_ownership(ring: Ring) -> list[int]:
    """Arc of every point from the reference ring's points, with Python ints."""
    values, owners = ring.points()
    vals = [int(v) for v in values.tolist()]
    if isinstance(ring, ringguard.KetamaRing):
        vals = [v << 32 for v in vals]
    sums = [0] * len(ring.nodes)
    for i, (v, o) in enumerate(zip(vals, owners.tolist(), strict=True)):
        sums[o] += (v - vals[i - 1]) % SPACE if len(set(vals)) > 1 else 0
    if len(set(vals)) == 1:
        sums[int(owners[0])] = SPACE
    return sums


def key_hash64(ring: Ring, keys: list) -> list[int]:
    """The key's position in 64-bit ring space, computed independently of ringguard."""
    if isinstance(ring, ringguard.KetamaRing):
        bump = 1 if ring.compat == "uhashring" else 0
        return [(ketama_hash(b) << 32) + bump for b in ketama_keys(keys)]
    return [xxhash.xxh64_intdigest(b, 0) for b in canonical_keys(keys)]


def in_range(h: int, start: int, end: int) -> bool:
    return start <= h <= end if start <= end else (h >= start or h <= end)


RINGS = [
    Ring(["a", "b", "c"]),
    Ring({"a": 1.0, "b": 2.0, "c": 0.5}, vnodes=20),
    Ring(["solo"], vnodes=3),
    Ring.ketama({"x": 3, "y": 1, "z": 2}),
    Ring.ketama({"x": 3, "y": 1, "z": 2}, compat="uhashring"),
]


@pytest.mark.parametrize("ring", RINGS, ids=repr)
def test_ownership_is_exact(ring: Ring) -> None:
    own = ownership(ring)
    assert sum(own.hashes) == SPACE
    assert own.hashes == brute_ownership(ring)
    assert np.isclose(own.fraction.sum(), 1.0)


def test_ownership_matches_key_shares() -> None:
    ring = Ring([f"n{i}" for i in range(8)], vnodes=40)
    keys = np.random.default_rng(3).integers(
        0, 2**63, 400_000 if not SMALL else 20_000, dtype=np.int64
    )
    share = np.bincount(ring.assign(keys), minlength=8) / len(keys)
    assert np.allclose(share, ownership(ring).fraction, atol=0.01 if not SMALL else 0.03)


def test_ownership_rejects_non_rings() -> None:
    with pytest.raises(TypeError, match="not a ring placement"):
        ownership(object())  # type: ignore[arg-type]


def check_plan_against_brute_force(old: Ring, new: Ring, keys: list) -> None:
    p = plan(old, new, keys)
    a = [old.nodes[i] for i in old.assign(keys).tolist()]
    b = [new.nodes[i] for i in new.assign(keys).tolist()]
    for h, src, dst in zip(key_hash64(old, keys), a, b, strict=True):
        hits = [t for t in p.transfers if in_range(h, t.start, t.end)]
        if src == dst:
            assert hits == []
        else:
            assert [(t.source, t.destination) for t in hits] == [(src, dst)]
    counts: dict[tuple[str, str], int] = {}
    for src, dst in zip(a, b, strict=True):
        if src != dst:
            counts[(src, dst)] = counts.get((src, dst), 0) + 1
    assert p.key_counts == counts
    assert p.moved_keys is not None
    assert p.moved_keys.tolist() == [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    # Transfers never overlap, and they add up to the reported flows exactly.
    spans = sorted((t.start, t.start + t.size - 1) for t in p.transfers)
    assert all(a_end < b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
    assert sum(t.size for t in p.transfers) / SPACE == p.moved_fraction


KEYS = [f"order:{i}" for i in range(3000)] + list(range(-50, 50))


@pytest.mark.parametrize("change", ["add", "remove", "reweight"])
def test_plan_matches_brute_force_on_ring(change: str) -> None:
    old = Ring({"a": 1.0, "b": 1.0, "c": 2.0, "d": 1.0}, vnodes=30)
    if change == "add":
        new = old.add("e")
    elif change == "remove":
        new = old.remove("b")
    else:
        new = Ring({"a": 1.0, "b": 3.0, "c": 2.0, "d": 1.0}, vnodes=30)
    strs = [k for k in KEYS if isinstance(k, str)]
    ints = [k for k in KEYS if isinstance(k, int)]
    check_plan_against_brute_force(old, new, strs)
    check_plan_against_brute_force(old, new, ints)


@pytest.mark.parametrize("compat", ["libketama", "uhashring"])
def test_plan_matches_brute_force_on_ketama(compat: str) -> None:
    old = Ring.ketama({"a": 2, "b": 1, "c": 1}, compat=compat)
    check_plan_against_brute_force(old, old.add("d"), [f"k{i}" for i in range(3000)])
    check_plan_against_brute_force(old, old.remove("a"), [f"k{i}" for i in range(3000)])


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 6), st.integers(1, 12), st.integers(0, 2**32))
def test_adding_a_node_moves_space_only_to_it(n: int, vnodes: int, seed: int) -> None:
    old = Ring([f"n{i}-{seed}" for i in range(n)], vnodes=vnodes)
    new = old.add("new")
    p = plan(old, new)
    assert {d for (_, d) in p.flows} <= {"new"}
    assert abs(p.moved_fraction - ownership(new).as_dict()["new"]) < 1e-12


def test_replica_changes_match_set_differences() -> None:
    old = Ring([f"n{i}" for i in range(6)], vnodes=20)
    new = old.remove("n2").add("n9")
    keys = [f"cart:{i}" for i in range(2000)]
    p = plan(old, new, keys, n=3)
    ch = p.replica_changes
    assert ch is not None
    ro, rn = old.replicas(keys, 3), new.replicas(keys, 3)
    for k in range(len(keys)):
        o = [old.nodes[i] for i in ro[k]]
        w = [new.nodes[i] for i in rn[k]]
        gained = sorted(new.nodes[i] for i in ch["gained"][k] if i >= 0)
        lost = sorted(old.nodes[i] for i in ch["lost"][k] if i >= 0)
        assert gained == sorted(set(w) - set(o))
        assert lost == sorted(set(o) - set(w))
        src = ch["copy_from"][k]
        if gained:
            survivors = [x for x in o if x in w]
            assert (old.nodes[src] if src >= 0 else None) == (survivors[0] if survivors else None)
        else:
            assert src == -1


def test_plan_report_and_dict() -> None:
    old = Ring(["alpha", "beta", "gamma"])
    p = plan(old, old.add("delta"), [f"k{i}" for i in range(1000)])
    text = repr(p)
    assert "delta" in text and "source" in text and "%" in text
    doc = json.loads(json.dumps(p.to_dict()))
    assert doc["new_nodes"] == ["alpha", "beta", "gamma", "delta"]
    assert sum(c for _, _, c in doc["key_counts"]) == doc["moved_keys"]
    assert (
        movement(old, old.add("delta"), [f"k{i}" for i in range(1000)]).count == doc["moved_keys"]
    )


def test_identical_placements_plan_nothing() -> None:
    r = Ring(["a", "b"])
    p = plan(r, Ring(["b", "a"]))
    assert p.transfers == [] and p.moved_fraction == 0.0


def test_n_without_keys_is_rejected() -> None:
    r = Ring(["a", "b"])
    with pytest.raises(ValueError, match="pass keys"):
        plan(r, r.add("c"), n=2)


def test_maglev_ownership_counts_every_hash_of_every_entry() -> None:
    m = ringguard.Maglev(["a", "b", "c"], table_size=13)
    table = m.table().tolist()
    # Entry j receives the hashes h with h % 13 == j: floor((2**64 - 1 - j) / 13) + 1.
    expected = [0, 0, 0]
    for j, node in enumerate(table):
        expected[node] += (SPACE - 1 - j) // 13 + 1
    own = ownership(m)
    assert own.hashes == expected and sum(own.hashes) == SPACE


def test_maglev_plan_matches_brute_force() -> None:
    old = ringguard.Maglev([f"n{i}" for i in range(5)], table_size=251)
    new = old.add("n5")
    keys = [f"order:{i}" for i in range(4000)]
    p = plan(old, new, keys)
    assert p.space == "table"
    a = [old.nodes[i] for i in old.assign(keys).tolist()]
    b = [new.nodes[i] for i in new.assign(keys).tolist()]
    for h, src, dst in zip(key_hash64(Ring(["x"]), keys), a, b, strict=True):
        entry = h % 251
        hits = [t for t in p.transfers if t.start <= entry <= t.end]
        assert [(t.source, t.destination) for t in hits] == ([] if src == dst else [(src, dst)])
    assert abs(p.moved_fraction - sum(x != y for x, y in zip(a, b, strict=True)) / len(a)) < 0.05


def test_redis_slots_ownership_and_plan_are_in_slots() -> None:
    rs = ringguard.RedisSlots.even(["a", "b", "c"])
    own = ownership(rs)
    assert own.space == 16384 and sum(own.hashes) == 16384
    grown = rs.add("d")
    p = plan(rs, grown)
    assert p.space == "slots" and {d for _, d in p.flows} == {"d"}
    assert sum(t.size for t in p.transfers) == grown.slot_counts()["d"]
    keys = [f"user:{i}" for i in range(3000)]
    slots = ringguard.redis_slot(keys).tolist()
    moved = {
        i
        for i, (x, y) in enumerate(
            zip(rs.assign(keys).tolist(), grown.assign(keys).tolist(), strict=True)
        )
        if rs.nodes[x] != grown.nodes[y]
    }
    in_transfer = {
        i for i, s in enumerate(slots) if any(t.start <= s <= t.end for t in p.transfers)
    }
    assert moved == in_transfer


def test_plan_refuses_mixed_kinds() -> None:
    with pytest.raises(TypeError, match="same kind"):
        plan(ringguard.Maglev(["a", "b"]), Ring(["a", "b"]))


@pytest.mark.parametrize(
    "make",
    [lambda n: ringguard.Rendezvous(n), lambda n: ringguard.JumpHash(n)],
    ids=["rendezvous", "jump"],
)
def test_plans_of_hash_placements_are_measured_on_keys(make: Any) -> None:
    old = make(["a", "b", "c"])
    new = old.add("d")
    keys = [f"k{i}" for i in range(5000)]
    with pytest.raises(TypeError, match="pass keys"):
        plan(old, new)
    p = plan(old, new, keys)
    mv = movement(old, new, keys)
    assert p.space == "keys" and p.transfers == []
    assert {d for _, d in p.flows} == {"d"}  # both move keys only onto the newcomer
    assert p.moved_fraction == mv.fraction
    assert p.moved_keys is not None and p.moved_keys.tolist() == np.flatnonzero(mv.moved).tolist()
