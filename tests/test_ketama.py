"""``Ring.ketama`` (ketama-md5@1) in both compat modes: parity with the reference, with the
``uhashring`` package, golden vectors, ties between equal points, decimal integer keys."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest

import ringguard
from conftest import (
    CONTAINER_IDS,
    CONTAINERS,
    KETAMA_CONFIGS,
    N_CHECK,
    N_KEYS,
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

KEYSETS = ["str", "bytes", "mixed", "int"]
TWO = {"127.0.0.1:11211": 600, "127.0.0.1:11212": 400}


# ---- parity ------------------------------------------------------------------------------


@pytest.mark.parametrize("keyset", ["str", "bytes", "int"])
@pytest.mark.parametrize("config", KETAMA_CONFIGS)
def test_oracle_is_reference_assign(config: str, keyset: str, data: Data) -> None:
    _, slow = ring_pair(config)
    ks = data.keyset(keyset)
    assert_same(slow.assign(ks.items[:N_CHECK]), model_assign(slow, ks.ket[:N_CHECK]), config)


@pytest.mark.parametrize("config", KETAMA_CONFIGS)
def test_points_parity(config: str) -> None:
    fast, slow = ring_pair(config)
    assert isinstance(fast, ringguard.KetamaRing)
    assert fast.nodes == slow.nodes and fast.weights == slow.weights
    assert fast.compat == slow.compat
    fv, fo = fast.points()
    sv, so = slow.points()
    assert fv.tolist() == sv.tolist()
    assert fo.tolist() == so.tolist()
    assert int(fv.max()) < 2**32


@pytest.mark.parametrize("keyset", KEYSETS)
@pytest.mark.parametrize("config", KETAMA_CONFIGS)
def test_assign_parity(config: str, keyset: str, data: Data) -> None:
    fast, slow = ring_pair(config)
    ks = data.keyset(keyset)
    assert len(ks) == N_KEYS
    assert_same(fast.assign(ks.items), model_assign(slow, ks.ket), f"{config}/{keyset}")


@pytest.mark.parametrize("config", ["libketama-10w", "uhashring-10w"])
@pytest.mark.parametrize(("keyset", "name", "build"), CONTAINERS, ids=CONTAINER_IDS)
def test_container_parity(keyset: str, name: str, build: Build, config: str,
                          data: Data) -> None:
    """Integer containers hash the decimal text of the value as given (signed or not)."""
    fast, slow = ring_pair(config)
    keys, sel = build(data)
    expected = model_assign(slow, data.keyset(keyset).ket)[sel]
    assert_same(fast.assign(keys), expected, name)


@pytest.mark.parametrize("keyset", ["str", "int"])
@pytest.mark.parametrize(("config", "n"), [
    ("libketama-1", 1), ("libketama-2", 2), ("libketama-10w", 3), ("libketama-100", 5),
    ("libketama-10w-remove", 9), ("uhashring-2", 2), ("uhashring-10w", 3),
    ("uhashring-100", 4), ("uhashring-10w+add", 11),
])
def test_replicas_parity(config: str, n: int, keyset: str, data: Data) -> None:
    fast, slow = ring_pair(config)
    ks = data.keyset(keyset)
    expected = model_replicas(slow, ks.ket, n)
    m = N_CHECK // 4
    assert_same(slow.replicas(ks.items[:m], n), expected[:m], f"reference {config}")
    got = fast.replicas(ks.items, n)
    assert_same(got, expected, config)
    assert_same(got[:, 0], fast.assign(ks.items), "column 0")


def _named_points(ring: Any) -> list[tuple[int, str]]:
    values, owners = ring.points()
    return [(int(v), ring.nodes[o]) for v, o in zip(values.tolist(), owners.tolist(), strict=True)]


# ---- the originals -----------------------------------------------------------------------


def test_libketama_two_server_example() -> None:
    for ring in (ringguard.Ring.ketama(TWO), ref.Ring.ketama(TWO)):
        assert ring.compat == "libketama"
        assert [ring.node_for(k) for k in ("foo", "bar", "baz", "test")] == [
            "127.0.0.1:11211", "127.0.0.1:11212", "127.0.0.1:11211", "127.0.0.1:11211"]
        # pct 0.6 / 0.4 of 40 * 2 digests, 4 points each
        assert np.bincount(ring.points()[1]).tolist() == [48 * 4, 32 * 4]


def test_libketama_float32_point_counts() -> None:
    cases = [
        (["a", "b", "c"], [160, 160, 160]),  # floorf(float32(1/3) * 40.0 * 3) == 40
        ({"a": 1, "b": 1000}, [0, 79 * 4]),  # a: floor(0.0799) == 0 digests
        ({"a": 1, "b": 2, "c": 4}, [17 * 4, 34 * 4, 68 * 4]),
    ]
    for nodes, counts in cases:
        for module in (ringguard, ref):
            ring = module.Ring.ketama(nodes)
            assert np.bincount(ring.points()[1], minlength=len(counts)).tolist() == counts


def test_node_without_points_gets_no_keys(data: Data) -> None:
    fast = ringguard.Ring.ketama({"a": 1, "b": 1000})
    slow = ref.Ring.ketama({"a": 1, "b": 1000})
    keys = data.items("str")
    assert (fast.assign(keys) == 1).all()
    assert fast.replicas(keys[:100], 1).tolist() == [[1]] * 100
    for ring in (fast, slow):
        with pytest.raises(ValueError, match="^n: "):
            ring.replicas(["k"], 2)


@pytest.mark.parametrize("n_nodes", [3, 40])
def test_uhashring_package_parity(n_nodes: int, data: Data) -> None:
    uhashring = pytest.importorskip("uhashring")
    weights = {f"cache-{i}.example:11211": 1 + (i * 7) % 9 for i in range(n_nodes)}
    theirs = uhashring.HashRing(
        nodes={name: {"weight": w} for name, w in weights.items()}, hash_fn="ketama")
    ours = ringguard.Ring.ketama(weights, compat="uhashring")
    assert _named_points(ours) == theirs.get_points()
    m = min(N_CHECK, 2000)
    for name in ("str", "int"):
        keys = data.items(name)[:m]
        got = [ours.nodes[i] for i in ours.assign(keys)]
        assert got == [theirs.get_node(k) for k in keys], name
    # a key whose hash equals a point goes to the next point (bisect_right)
    first = ours.nodes[0]
    assert ours.node_for(f"{first}-0") == theirs.get_node(f"{first}-0")


def test_exact_point_hit() -> None:
    """The label of a node's digest 0 hashes to its point 0: libketama takes it (>=),
    uhashring goes past it (>)."""
    names = [f"server-{i}" for i in range(6)]
    lib = ringguard.Ring.ketama(names)
    uh = ringguard.Ring.ketama(names, compat="uhashring")
    labels = [f"{name}-{k}" for name in names for k in range(40)]
    assert [lib.nodes[i] for i in lib.assign(labels)] == [lb.rsplit("-", 1)[0] for lb in labels]
    slow = ref.Ring.ketama(names, compat="uhashring")
    assert uh.assign(labels).tolist() == slow.assign(labels).tolist()
    assert (uh.assign(labels) != lib.assign(labels)).any()


# ---- equal point values (real MD5 collisions of 32-bit points) ---------------------------

# Pairs of node names whose ketama points share a value (found by searching "mc-NNNN" names,
# 40 digests each): ((name, digest k, word h) of both sides, value).
COLLISIONS = [
    (("mc-0843", 25, 0), ("mc-1002", 15, 0), 1590032769),
    (("mc-1453", 12, 0), ("mc-1695", 23, 1), 1012893275),
    (("mc-0513", 37, 1), ("mc-1523", 0, 0), 1990379036),
    (("mc-1523", 9, 0), ("mc-1666", 22, 2), 4004641341),
]


def _point(name: str, k: int, h: int) -> int:
    d = hashlib.md5(f"{name}-{k}".encode()).digest()
    return int.from_bytes(d[4 * h : 4 * h + 4], "little")


@pytest.mark.parametrize("compat", ["libketama", "uhashring"])
def test_equal_points_tie_rules(compat: str) -> None:
    for (a, ka, ha), (b, kb, hb), value in COLLISIONS:
        assert _point(a, ka, ha) == _point(b, kb, hb) == value
        for order in ([a, b], [b, a], [b, "mc-x", a]):
            fast = ringguard.Ring.ketama(order, compat=compat)
            slow = ref.Ring.ketama(order, compat=compat)
            fv, fo = fast.points()
            assert fv.tolist() == slow.points()[0].tolist()
            assert fo.tolist() == slow.points()[1].tolist()
            run = [name for v, name in _named_points(fast) if v == value]
            assert len(run) == 2
            if compat == "libketama":  # equal values ordered by node name
                assert run == sorted([a, b])
            else:  # every equal point belongs to the node last in .nodes
                last = max((a, b), key=order.index)
                assert run == [last, last]
            # keys that hash exactly to the shared value (labels of word 0)
            hits = [f"{nm}-{k}" for nm, k, h in ((a, ka, ha), (b, kb, hb)) if h == 0]
            for key in hits:
                assert fast.node_for(key) == slow.node_for(key)
                if compat == "libketama":
                    assert fast.node_for(key) == min(a, b)


def test_uhashring_package_agrees_on_ties() -> None:
    uhashring = pytest.importorskip("uhashring")
    a, b = "mc-0843", "mc-1002"
    for order in ([a, b], [b, a]):
        theirs = uhashring.HashRing(nodes=order, hash_fn="ketama")
        ours = ringguard.Ring.ketama(order, compat="uhashring")
        assert _named_points(ours) == theirs.get_points()
        for key in ("mc-0843-25", "mc-1002-15", "x", "y", "z"):
            assert ours.node_for(key) == theirs.get_node(key)


# ---- integer keys are decimal text --------------------------------------------------------


@pytest.mark.parametrize("compat", ["libketama", "uhashring"])
def test_integer_keys_hash_as_decimal(compat: str, data: Data) -> None:
    ring = ringguard.Ring.ketama({"a": 1, "b": 2, "c": 3, "d": 1}, compat=compat)
    values = data.ints(None).values[:N_CHECK]
    as_text = ring.assign([str(v) for v in values])
    assert_same(ring.assign(values), as_text, "list of int")  # negatives with >= 2**63
    i64 = data.ints("int64").values[:N_CHECK]
    assert_same(ring.assign(np.array(i64, dtype=np.int64)),
                ring.assign([str(v) for v in i64]), "int64 prints signed")
    u64 = data.ints("uint64").values[:N_CHECK]
    assert_same(ring.assign(np.array(u64, dtype=np.uint64)),
                ring.assign([str(v) for v in u64]), "uint64 prints unsigned")
    assert ring.node_for(-1) == ring.node_for("-1")
    assert ring.node_for(np.uint64(2**64 - 1)) == ring.node_for("18446744073709551615")
    assert ring.node_for(np.int64(-(2**63))) == ring.node_for(str(-(2**63)))
    assert ring.node_for(np.int8(-5)) == ring.node_for("-5")
    assert ring.node_for(np.uint8(200)) == ring.node_for("200")
    # unlike ring-xxh64@1, -1 and 2**64-1 are different ketama keys
    minus_one = np.array([-1] * 50, dtype=np.int64)
    assert ring.assign(minus_one).tolist() == ring.assign(["-1"] * 50).tolist()
    assert ring.assign(minus_one.view(np.uint64)).tolist() == \
        ring.assign(["18446744073709551615"] * 50).tolist()


def test_add_remove_keep_settings() -> None:
    ring = ringguard.Ring.ketama({"a": 3, "b": 1}, compat="uhashring")
    grown = ring.add("c")
    assert isinstance(grown, ringguard.KetamaRing)
    assert grown.weights == {"a": 3, "b": 1, "c": 1}
    assert grown.compat == "uhashring" and ring.nodes == ("a", "b")
    assert grown.add("d", 5).weights["d"] == 5
    assert grown.remove("b").nodes == ("a", "c")
    slow = ref.Ring.ketama({"a": 3, "b": 1}, compat="uhashring").add("c")
    assert grown.points()[0].tolist() == slow.points()[0].tolist()


# ---- golden vectors ----------------------------------------------------------------------


@pytest.mark.parametrize("module", [ringguard, ref], ids=["ringguard", "reference"])
def test_golden_vectors_ketama(module: Any) -> None:
    vectors = load_vectors("ketama-")
    assert {v["config"]["compat"] for v in vectors} == {"libketama", "uhashring"}
    for vec in vectors:
        check_vector(module, vec)
