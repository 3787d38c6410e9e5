"""JumpHash and the raw jump_hash: published vectors, the jump package, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    vector_keys,
)
from ringguard import JumpHash, jump_hash, reference
from ringguard import _pycore as pycore
from ringguard.errors import InvalidPlacementError

NAMES = [f"node{i}" for i in range(100)]


def test_published_vectors() -> None:
    assert [jump_hash(1, b) for b in range(1, 20)] == [0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6,
                                                       6, 6, 6, 17, 17]
    assert [jump_hash(0xDEADBEEF, b) for b in range(1, 20)] == [0, 1, 2, 3, 3, 5, 5, 5, 5, 5, 5,
                                                                5, 5, 5, 5, 5, 16, 16, 16]
    for key, want in VECTORS["jump_published"].items():
        got = jump_hash(np.full(19, int(key), dtype=np.uint64), 1)
        assert got.tolist() == [0] * 19
        assert [pycore.jump(int(key), b) for b in range(1, 20)] == want
        assert [reference.jump_hash(int(key), b) for b in range(1, 20)] == want


def test_matches_the_jump_package() -> None:
    jump = pytest.importorskip("jump")
    keys = u64_keys(100_000 if ringguard.BACKEND == "c" else 20_000, seed=3)
    for nb in (1, 2, 10, 1000, 2**31 - 1):
        ours = jump_hash(keys, nb)
        theirs = np.array([jump.hash(int(k), nb) for k in keys.tolist()])
        assert np.array_equal(ours, theirs), nb


def test_jump_hash_inputs() -> None:
    assert jump_hash(-1, 10) == jump_hash(2**64 - 1, 10)
    assert np.array_equal(jump_hash(np.array([-1], dtype=np.int64), 10),
                          jump_hash(np.array([2**64 - 1], dtype=np.uint64), 10))
    assert jump_hash([], 5).shape == (0,)
    with pytest.raises(ValueError, match="num_buckets"):
        jump_hash(1, 0)
    with pytest.raises(TypeError, match="num_buckets"):
        jump_hash(1, 2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="integer keys"):
        jump_hash(np.array([1.5]), 3)
    with pytest.raises(ValueError, match="outside"):
        jump_hash(2**64, 3)


@pytest.mark.parametrize("nnodes", [1, 2, 10, 100])
def test_parity_with_reference_and_twin(nnodes: int) -> None:
    j = JumpHash(NAMES[:nnodes])
    ref = reference.JumpHash(NAMES[:nnodes])
    keys = u64_keys(N_BIG if nnodes == 10 else N_SMALL)
    a = j.assign(keys)
    assert np.array_equal(a, ref.assign(keys))
    skeys = str_keys(N_SMALL)
    n = min(3, nnodes)
    assert np.array_equal(check_replicas_shape(j, skeys, n), ref.replicas(skeys, n))
    # the pure-Python twin of the kernels, on key hashes
    hashes = u64_keys(N_BIG if nnodes == 10 else N_SMALL, seed=11)
    o1 = np.empty(len(hashes), np.int32)
    o2 = np.empty(len(hashes), np.int32)
    ringguard._backend.core.jump_batch(hashes, nnodes, o1)
    pycore.jump_batch(hashes, nnodes, o2)
    assert np.array_equal(o1, o2)
    hashes = hashes[:N_SMALL]
    r1 = np.empty((len(hashes), n), np.int32)
    r2 = np.empty((len(hashes), n), np.int32)
    ringguard._backend.core.jump_replicas(hashes, nnodes, n, r1)
    pycore.jump_replicas(hashes, nnodes, n, r2)
    assert np.array_equal(r1, r2)


def test_golden_vectors() -> None:
    keys = vector_keys()
    for case in VECTORS["cases"]:
        if case["algorithm"] != "jump":
            continue
        j = JumpHash(case["nodes"])
        rows = np.array(case["replicas"])
        for batch, pos in vector_groups():
            assert np.array_equal(j.replicas(batch, rows.shape[1]), rows[pos])
        assert [j.node_for(k) for k in keys] == [case["nodes"][r[0]] for r in case["replicas"]]


def test_containers_agree() -> None:
    j = JumpHash(NAMES[:10])
    keys = str_keys(2000)
    want = j.assign(keys)
    for c in containers(keys):
        assert np.array_equal(j.assign(c), want), type(c)
    assert np.array_equal(j.assign(np.arange(50, dtype=np.int64)), j.assign(list(range(50))))


def test_balance() -> None:
    counts = np.bincount(JumpHash(NAMES[:10]).assign(u64_keys(N_BIG)), minlength=10)
    assert counts.max() / counts.mean() < 1.05 if N_BIG >= 100_000 else 1.3


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**32))
def test_add_moves_keys_only_to_the_new_node(nnodes: int, seed: int) -> None:
    old = JumpHash(NAMES[:nnodes])
    new = old.add("fresh")
    keys = u64_keys(2000, seed)
    a, b = moved_by_name(old, new, keys)
    assert set(b[a != b]) <= {"fresh"}
    c, d = moved_by_name(new, new.remove("fresh"), keys)
    assert set(c[c != d]) <= {"fresh"}
    assert new.remove("fresh") == old


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 30), st.integers(1, 5), st.integers(0, 2**32))
def test_replicas_distinct_and_stable(nnodes: int, n: int, seed: int) -> None:
    n = min(n, nnodes)
    j = JumpHash(NAMES[:nnodes])
    keys = u64_keys(300, seed)
    rep = check_replicas_shape(j, keys, n)
    # the first n-1 columns are the same for n-1 replicas (a prefix)
    assert np.array_equal(j.replicas(keys, n)[:, : n - 1], rep[:, : n - 1]) if n > 1 else True


def test_round_trips_and_api() -> None:
    j = JumpHash(["b", "a", "c"])
    check_round_trips(j)
    check_empty_and_out(j)
    assert j.nodes == ("b", "a", "c")
    assert j.add("d").nodes == ("b", "a", "c", "d")
    assert j.remove("c").nodes == ("b", "a")
    assert repr(j) == "JumpHash(3 nodes)" and len(j) == 3
    assert isinstance(j, ringguard.Placement)
    assert j != JumpHash(["a", "b", "c"])  # bucket order matters for Jump


def test_bad_inputs() -> None:
    j = JumpHash(["a", "b", "c"])
    with pytest.raises(ValueError, match="Rendezvous or Ring"):
        j.remove("a")
    with pytest.raises(ValueError, match="not in"):
        j.remove("zz")
    with pytest.raises(ValueError, match="last node"):
        JumpHash(["a"]).remove("a")
    with pytest.raises(ValueError, match="already"):
        j.add("a")
    with pytest.raises(ValueError, match="no weights"):
        j.add("d", weight=2.0)
    with pytest.raises(ValueError, match="no zones"):
        j.add("d", zone="z1")
    with pytest.raises(ValueError, match="at least one node"):
        JumpHash([])
    with pytest.raises(ValueError, match="duplicate"):
        JumpHash(["a", "a"])
    with pytest.raises(TypeError, match="no weights"):
        JumpHash({"a": 1.0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n: must be between 1"):
        j.replicas(["k"], 4)
    with pytest.raises(ValueError, match="n: must be between 1"):
        j.replicas(["k"], 0)
    with pytest.raises(TypeError, match="keys\\[1\\]"):
        j.assign(["a", 1.5])
    with pytest.raises(TypeError, match="key:"):
        j.node_for([1, 2])  # type: ignore[arg-type]
    with pytest.raises(InvalidPlacementError):
        ringguard.from_json(j.to_json().replace('"c"', '"a"'))
