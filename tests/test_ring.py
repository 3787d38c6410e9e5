"""``ringguard.Ring`` (ring-xxh64@1): parity with ``ringguard.reference``, golden vectors,
threads.

Parity runs ``N_KEYS`` keys (100k on the compiled core) of every key set against every
configuration, and every accepted container against one configuration; the expected
answers come from the session oracle in ``conftest.py``, itself checked against
``reference.Ring.assign``/``replicas`` on the first ``N_CHECK`` keys of each case.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import pytest

import ringguard
from conftest import (
    CONTAINER_IDS,
    CONTAINERS,
    N_CHECK,
    N_KEYS,
    N_THREADS,
    RING_CONFIGS,
    VECTORS,
    ZONED_CONFIGS,
    Build,
    Data,
    assert_same,
    check_vector,
    load_vectors,
    model_assign,
    model_replicas,
    ring_pair,
)
from ringguard import reference as ref
from ringguard.placement.base import split_work

KEYSETS = ["str", "bytes", "mixed", "int"]


# ---- the oracle is the reference --------------------------------------------------------


@pytest.mark.parametrize("keyset", KEYSETS)
@pytest.mark.parametrize("config", RING_CONFIGS + ZONED_CONFIGS)
def test_oracle_is_reference_assign(config: str, keyset: str, data: Data) -> None:
    _, slow = ring_pair(config)
    ks = data.keyset(keyset)
    sample = ks.items[:N_CHECK]
    assert_same(slow.assign(sample), model_assign(slow, ks.xxh[:N_CHECK]), config)


# ---- parity ------------------------------------------------------------------------------


@pytest.mark.parametrize("config", RING_CONFIGS + ZONED_CONFIGS)
def test_points_parity(config: str) -> None:
    fast, slow = ring_pair(config)
    assert fast.nodes == slow.nodes
    assert fast.weights == slow.weights
    fv, fo = fast.points()
    sv, so = slow.points()
    assert fv.dtype == np.uint64 and fo.dtype == np.int32
    assert fv.tolist() == sv.tolist()
    assert fo.tolist() == so.tolist()
    assert fast.npoints == len(sv)


@pytest.mark.parametrize("keyset", KEYSETS)
@pytest.mark.parametrize("config", RING_CONFIGS + ZONED_CONFIGS)
def test_assign_parity(config: str, keyset: str, data: Data) -> None:
    fast, slow = ring_pair(config)
    ks = data.keyset(keyset)
    assert len(ks) == N_KEYS
    assert_same(fast.assign(ks.items), model_assign(slow, ks.xxh), f"{config}/{keyset}")


@pytest.mark.parametrize(("keyset", "name", "build"), CONTAINERS, ids=CONTAINER_IDS)
def test_container_parity(keyset: str, name: str, build: Build, data: Data) -> None:
    fast, slow = ring_pair("10-weighted")
    keys, sel = build(data)
    expected = model_assign(slow, data.keyset(keyset).xxh)[sel]
    assert_same(fast.assign(keys), expected, name)


@pytest.mark.parametrize(("keyset", "name", "build"), CONTAINERS[::9],
                         ids=CONTAINER_IDS[::9])
def test_container_parity_1000_nodes(keyset: str, name: str, build: Build, data: Data) -> None:
    fast, slow = ring_pair("1000-weighted-remove")
    keys, sel = build(data)
    assert_same(fast.assign(keys), model_assign(slow, data.keyset(keyset).xxh)[sel], name)


REPLICA_CASES = [
    ("1-node", 1), ("2-nodes", 2), ("2-nodes-vnodes1", 2), ("10-weighted", 1),
    ("10-weighted", 3), ("10-weighted", 10), ("10-weighted+add", 4), ("1000-weighted", 3),
    ("1000-weighted-remove", 5), ("10-zones", 1), ("10-zones", 3), ("10-zones", 4),
    ("10-zones", 6), ("10-zones", 10), ("10-zones+add", 5), ("10-zones-remove", 3),
    ("10-zones-remove", 4), ("1000-zones", 3), ("1000-zones", 7), ("1000-zones", 9),
]


@pytest.mark.parametrize("keyset", ["str", "int"])
@pytest.mark.parametrize(("config", "n"), REPLICA_CASES)
def test_replicas_parity(config: str, n: int, keyset: str, data: Data) -> None:
    fast, slow = ring_pair(config)
    ks = data.keyset(keyset)
    expected = model_replicas(slow, ks.xxh, n)
    # the oracle is the reference on a sample ...
    m = N_CHECK // 4
    assert_same(slow.replicas(ks.items[:m], n), expected[:m], f"reference {config} n={n}")
    # ... and the compiled ring agrees on every key
    got = fast.replicas(ks.items, n)
    assert_same(got, expected, f"{config} n={n}")
    assert_same(got[:, 0], fast.assign(ks.items), "column 0")


def test_replicas_zone_rules(data: Data) -> None:
    fast, _ = ring_pair("10-zones")
    zones = fast.zones
    assert zones is not None
    zone_of = np.array([sorted(set(zones.values())).index(zones[n]) for n in fast.nodes])
    keys = data.items("str")

    def distinct_per_row(a: np.ndarray) -> np.ndarray:
        s = np.sort(a, axis=1)
        return 1 + (s[:, 1:] != s[:, :-1]).sum(axis=1)

    for n in range(1, 11):
        rows = fast.replicas(keys, n)
        assert (distinct_per_row(rows) == n).all()
        if n <= 4:  # at least n zones: every copy in a distinct zone
            assert (distinct_per_row(zone_of[rows]) == n).all()
        else:  # every zone is used, then the deferred nodes in walk order
            assert (distinct_per_row(zone_of[rows]) == 4).all()


# ---- behaviour of the ring ---------------------------------------------------------------


def test_point_counts_follow_contract() -> None:
    for config in ("10-weighted", "1000-weighted", "10-vnodes7", "10-zones"):
        fast, slow = ring_pair(config)
        ws = [fast.weights[n] for n in fast.nodes]
        mean = math.fsum(ws) / len(ws)
        vnodes = fast.vnodes
        expected = [max(1, round(vnodes * w / mean)) for w in ws]
        got = np.bincount(fast.points()[1], minlength=len(ws)).tolist()
        assert got == expected, config


def test_exact_point_hit_takes_that_point() -> None:
    fast, slow = ring_pair("10-vnodes7")
    labels = [f"{name}#{j}" for name in fast.nodes for j in range(7)]
    owners = [fast.nodes[i] for i in fast.assign(labels)]
    assert owners == [label.split("#")[0] for label in labels]
    assert [fast.node_for(k) for k in labels[:20]] == [slow.node_for(k) for k in labels[:20]]


def test_wrap_around(data: Data) -> None:
    fast, slow = ring_pair("2-nodes-vnodes1")
    values, owners = slow.points()
    ks = data.keyset("str")
    h = ks.xxh
    past = np.flatnonzero(h > values[-1])
    before = np.flatnonzero(h <= values[0])
    assert past.size and before.size
    got = fast.assign(ks.items)
    assert (got[past] == owners[0]).all()
    assert (got[before] == owners[0]).all()
    middle = np.flatnonzero((h > values[0]) & (h <= values[-1]))
    assert (got[middle] == owners[-1]).all()


def test_single_node_ring_takes_everything(data: Data) -> None:
    fast, _ = ring_pair("1-node")
    assert (fast.assign(data.items("bytes")) == 0).all()
    assert fast.replicas(data.items("int")[:100], 1).tolist() == [[0]] * 100


def test_node_for_matches_assign(data: Data) -> None:
    fast, slow = ring_pair("10-weighted")
    for name in ("str", "bytes", "int"):
        keys = data.items(name)[:200]
        idx = fast.assign(keys)
        assert [fast.node_for(k) for k in keys] == [fast.nodes[i] for i in idx]
        assert [slow.node_for(k) for k in keys[:50]] == [fast.nodes[i] for i in idx[:50]]


def test_rings_are_immutable_snapshots() -> None:
    ring = ringguard.Ring(["a", "b", "c"], weights={"b": 2.0}, vnodes=20)
    before = ring.to_json()
    values, owners = ring.points()
    assert not values.flags.writeable and not owners.flags.writeable
    with pytest.raises(ValueError):
        values[0] = 0
    grown = ring.add("d")
    shrunk = ring.remove("a")
    assert grown is not ring and shrunk is not ring
    assert ring.to_json() == before and ring.nodes == ("a", "b", "c")
    assert grown.nodes == ("a", "b", "c", "d") and shrunk.nodes == ("b", "c")
    assert grown.weights == {"a": 1.0, "b": 2.0, "c": 1.0, "d": 1.0}
    assert grown.vnodes == shrunk.vnodes == 20
    weights = ring.weights
    weights["a"] = 99.0
    assert ring.weights["a"] == 1.0
    assert isinstance(ring, ringguard.Placement)
    assert len(ring) == 3


def test_add_remove_keep_zones() -> None:
    ring = ringguard.Ring(["a", "b"], zones={"a": "x", "b": "y"}, vnodes=5)
    grown = ring.add("c", 2.0, zone="x")
    assert grown.zones == {"a": "x", "b": "y", "c": "x"}
    assert grown.remove("a").zones == {"b": "y", "c": "x"}
    assert ring.zones == {"a": "x", "b": "y"}
    slow = ref.Ring(["a", "b"], zones={"a": "x", "b": "y"}, vnodes=5).add("c", 2.0, zone="x")
    assert grown.points()[0].tolist() == slow.points()[0].tolist()


# ---- golden vectors ----------------------------------------------------------------------


@pytest.mark.parametrize("module", [ringguard, ref], ids=["ringguard", "reference"])
def test_golden_vectors_ring(module: Any) -> None:
    vectors = load_vectors("ring-")
    assert len(vectors) >= 3
    for vec in vectors:
        check_vector(module, vec)


def test_golden_vectors_are_reproducible() -> None:
    """The files are exactly what the independent generator writes (no hand edits)."""
    pytest.importorskip("xxhash")
    pytest.importorskip("uhashring")
    import make_vectors

    built = make_vectors.build_all()
    on_disk = {p.name for p in VECTORS.glob("*.json")}
    assert set(built) <= on_disk  # other generators own the other files
    for name, doc in built.items():
        assert (VECTORS / name).read_text() == make_vectors.render(doc), name


# ---- threads -----------------------------------------------------------------------------


_THREAD_INPUTS: dict[str, Any] = {}


def _thread_inputs(data: Data) -> dict[str, Any]:
    if not _THREAD_INPUTS:
        _THREAD_INPUTS.update(_make_thread_inputs(data))
    return _THREAD_INPUTS


def _make_thread_inputs(data: Data) -> dict[str, Any]:
    pa = pytest.importorskip("pyarrow")
    ints = data.ints("int64").values[:N_THREADS]
    strs = data.items("str")[:N_THREADS]
    return {
        "int64": np.array(ints, dtype=np.int64),
        "list-str": strs,
        "numpy-S": np.array(data.items("bytes")[:N_THREADS]),
        "numpy-U": np.array(strs),
        "arrow-chunked": pa.chunked_array([strs[: N_THREADS // 2], strs[N_THREADS // 2 :]]),
    }


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_threads_give_single_threaded_answer(threads: int, data: Data) -> None:
    assert len(split_work(N_THREADS, 3)) == 3  # the batch really is cut in 3 chunks
    for config in ("10-weighted", "libketama-10w", "uhashring-10w"):
        fast, _ = ring_pair(config)
        for name, keys in _thread_inputs(data).items():
            one = fast.assign(keys)
            assert_same(fast.assign(keys, threads=threads), one, f"{config}/{name}")
            out = np.full(len(one), -7, dtype=np.int32)
            assert fast.assign(keys, threads=threads, out=out) is out
            assert_same(out, one, "out=")


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_replicas(threads: int, data: Data) -> None:
    keys = data.items("str")[:N_THREADS]
    for config, n in (("10-zones", 5), ("1000-weighted", 3)):
        fast, _ = ring_pair(config)
        one = fast.replicas(keys, n)
        assert_same(fast.replicas(keys, n, threads=threads), one, config)


def test_concurrent_python_threads(data: Data) -> None:
    """Four Python threads call assign/replicas on one ring at once."""
    fast, _ = ring_pair("10-zones")
    n = min(N_KEYS, 50_000)
    inputs = [
        data.items("str")[:n],
        np.array(data.ints("uint64").values[:n], dtype=np.uint64),
        np.array(data.items("bytes")[:n]),
        data.items("mixed")[:n],
    ]
    expected = [fast.assign(k) for k in inputs]
    expected_rep = fast.replicas(inputs[0], 3)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                assert_same(fast.assign(inputs[i], threads=2 if i % 2 else None), expected[i],
                            f"thread {i}")
                if i == 0:
                    assert_same(fast.replicas(inputs[0], 3), expected_rep, "replicas")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers)
    assert not errors, errors
