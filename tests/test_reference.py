"""Tests of the pure-Python reference twin ``ringguard.reference``."""

from __future__ import annotations

import math
import random
import re
import string

import numpy as np
import pytest

from ringguard import reference as ref
from ringguard.reference import ring as ref_ring

PRIME32 = 2654435761
PRIME64 = 11400714785074694797
MASK64 = 2**64 - 1


# ---------------------------------------------------------------------------
# XXH64
# ---------------------------------------------------------------------------


def _sanity_buffer(length: int) -> bytes:
    """The test buffer of xxHash's own sanity check (xxhsum ``fillTestBuffer``)."""
    out = bytearray()
    gen = PRIME32
    for _ in range(length):
        out.append(gen >> 56)
        gen = (gen * PRIME64) & MASK64
    return bytes(out)


# (length, seed, XXH64) from xxHash's xxhsum sanity check (BMK_testXXH64).
XXH64_SANITY = [
    (0, 0, 0xEF46DB3751D8E999),
    (0, PRIME32, 0xAC75FDA2929B17EF),
    (1, 0, 0xE934A84ADB052768),
    (1, PRIME32, 0x5014607643A9B4C3),
    (4, 0, 0x9136A0DCA57457EE),
    (14, 0, 0x8282DCC4994E35C8),
    (14, PRIME32, 0xC3BD6BF63DEB6DF0),
    (222, 0, 0xB641AE8CB691C174),
    (222, PRIME32, 0x20CB8AB7AE10C14A),
]


def test_xxh64_published_vectors():
    buf = _sanity_buffer(222)
    for length, seed, expected in XXH64_SANITY:
        assert ref.xxh64(buf[:length], seed) == expected, (length, seed)
    assert ref.xxh64(b"") == 0xEF46DB3751D8E999
    assert ref.xxh64(b"", 0) == 0xEF46DB3751D8E999


def test_xxh64_matches_xxhash_package_all_lengths():
    xxhash = pytest.importorskip("xxhash")
    rng = random.Random(20240601)
    data = bytes(rng.getrandbits(8) for _ in range(300))
    for seed in (0, 1, PRIME32, 0x9E3779B185EBCA87, MASK64):
        for length in range(301):
            chunk = data[:length]
            assert ref.xxh64(chunk, seed) == xxhash.xxh64_intdigest(chunk, seed), (length, seed)


def test_xxh64_seed_and_input_types():
    assert ref.xxh64(bytearray(b"abc")) == ref.xxh64(b"abc")
    assert ref.xxh64(memoryview(b"abc")) == ref.xxh64(b"abc")
    assert ref.xxh64(b"abc", -1) == ref.xxh64(b"abc", MASK64)
    assert 0 <= ref.xxh64(b"abc", 12345) <= MASK64


# ---------------------------------------------------------------------------
# MD5 / ketama hash
# ---------------------------------------------------------------------------


def test_ketama_hash():
    assert ref.ketama_hash(b"test") == 3446378249
    # little-endian first 4 bytes of MD5("") = d41d8cd9...
    assert ref.ketama_hash(b"") == 0xD98C1DD4


# ---------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------


def _le(v: int) -> bytes:
    return (v % 2**64).to_bytes(8, "little")


def test_canonical_keys_basic():
    assert ref.canonical_keys("a") == [b"a"]
    assert ref.canonical_keys(b"a") == [b"a"]
    assert ref.canonical_keys(7) == [_le(7)]
    assert ref.canonical_keys(["é", b"\xff", ""]) == ["é".encode(), b"\xff", b""]
    assert ref.canonical_keys(("x", "y")) == [b"x", b"y"]
    assert ref.canonical_keys([]) == []
    assert ref.canonical_keys(()) == []
    assert ref.canonical_keys(np.array([], dtype=np.int64)) == []


def test_canonical_integer_encoding():
    same = [7, np.int64(7), np.uint64(7), np.int8(7), np.uint16(7)]
    for k in same:
        assert ref.canonical_keys(k) == [_le(7)]
    assert ref.canonical_keys([-1]) == ref.canonical_keys([2**64 - 1]) == [b"\xff" * 8]
    assert ref.canonical_keys([-(2**63)]) == [(2**63).to_bytes(8, "little")]
    assert ref.canonical_keys([1, np.int32(2), np.uint64(2**64 - 1)]) == [
        _le(1),
        _le(2),
        _le(2**64 - 1),
    ]


def test_canonical_numpy_arrays():
    base = [0, 1, -5, 2**40, -(2**63)]
    expected = [_le(v) for v in base]
    assert ref.canonical_keys(np.array(base, dtype="<i8")) == expected
    assert ref.canonical_keys(np.array(base, dtype=">i8")) == expected  # big-endian
    wide = np.array([v for v in base for _ in range(3)], dtype=np.int64)
    assert ref.canonical_keys(wide[::3]) == expected  # non-contiguous
    assert ref.canonical_keys(np.array([1, 255], dtype=np.uint8)) == [_le(1), _le(255)]
    assert ref.canonical_keys(np.array([-1, 3], dtype=np.int16)) == [_le(-1), _le(3)]
    assert ref.canonical_keys(np.array([2**64 - 1], dtype=">u8")) == [b"\xff" * 8]
    # S and U: trailing NULs are not part of the value
    assert ref.canonical_keys(np.array([b"ab", b"a\x00b", b"c"], dtype="S4")) == [
        b"ab",
        b"a\x00b",
        b"c",
    ]
    assert ref.canonical_keys(np.array(["ab", "é", ""])) == [b"ab", "é".encode(), b""]
    assert ref.canonical_keys(np.array(["x", b"y", 3], dtype=object)[:2]) == [b"x", b"y"]
    assert ref.canonical_keys(np.array([3, np.int64(4)], dtype=object)) == [_le(3), _le(4)]
    assert ref.canonical_keys(np.array(5)) == [_le(5)]  # 0-d array: one key


def test_canonical_numpy_stringdtype():
    if not hasattr(np, "dtypes") or not hasattr(np.dtypes, "StringDType"):
        pytest.skip("numpy without StringDType")
    arr = np.array(["a", "héllo", ""], dtype=np.dtypes.StringDType())
    assert ref.canonical_keys(arr) == [b"a", "héllo".encode(), b""]
    with_na = np.array(["a", None], dtype=np.dtypes.StringDType(na_object=None))
    with pytest.raises(TypeError, match=r"^keys\[1\]: "):
        ref.canonical_keys(with_na)


def test_canonical_pandas():
    pd = pytest.importorskip("pandas")
    assert ref.canonical_keys(pd.Series(["a", "b"])) == [b"a", b"b"]
    assert ref.canonical_keys(pd.Series([1, -1], dtype="int64")) == [_le(1), _le(-1)]
    assert ref.canonical_keys(pd.Series([1, 2], dtype="Int64")) == [_le(1), _le(2)]
    for bad in (  # None/NaN among Python objects: a bad object
        pd.Series(["a", None], dtype=object),
        pd.Series(["a", float("nan")], dtype=object),
    ):
        with pytest.raises(TypeError, match=r"^keys\[1\]: "):
            ref.canonical_keys(bad)
    for bad in (  # a missing value in a typed column: a null, as in Arrow and Polars
        pd.Series(["a", pd.NA], dtype="string"),
        pd.Series([1, None], dtype="Int64"),
    ):
        with pytest.raises(ValueError, match=r"^keys\[1\]: null"):
            ref.canonical_keys(bad)


def test_canonical_pyarrow():
    pa = pytest.importorskip("pyarrow")
    assert ref.canonical_keys(pa.array(["a", "é"])) == [b"a", "é".encode()]
    assert ref.canonical_keys(pa.array(["a"], type=pa.large_string())) == [b"a"]
    assert ref.canonical_keys(pa.array([b"\x00z"], type=pa.binary())) == [b"\x00z"]
    assert ref.canonical_keys(pa.array([b"q"], type=pa.large_binary())) == [b"q"]
    assert ref.canonical_keys(pa.array([-1, 2], type=pa.int8())) == [_le(-1), _le(2)]
    assert ref.canonical_keys(pa.array([2**64 - 1], type=pa.uint64())) == [b"\xff" * 8]
    chunked = pa.chunked_array([["a", "b"], ["c"]])
    assert ref.canonical_keys(chunked) == [b"a", b"b", b"c"]
    with pytest.raises(ValueError, match=r"^keys\[2\]: null"):
        ref.canonical_keys(pa.array(["a", "b", None]))
    with pytest.raises(ValueError, match=r"^keys\[1\]: null"):
        ref.canonical_keys(pa.chunked_array([[1], [None, 2]]))
    with pytest.raises(TypeError, match="double"):
        ref.canonical_keys(pa.array([1.5]))


def test_key_errors_table():
    cases = [
        ([1.5], TypeError, 0),
        (["a", None], TypeError, 1),
        (["a", "b", float("nan")], TypeError, 2),
        ([True], TypeError, 0),
        ([1, np.bool_(False)], TypeError, 1),
        (["a", object()], TypeError, 1),
        (["a", bytearray(b"x")], TypeError, 1),
        (["a", ["b"]], TypeError, 1),
        ([1, 2**64], ValueError, 1),
        ([-(2**63) - 1], ValueError, 0),
        (["ok", "\ud800"], ValueError, 1),
        (np.array(["a", None], dtype=object), TypeError, 1),
        (1.5, TypeError, 0),  # a lone non-key is a batch of one
        (None, TypeError, 0),
        (True, TypeError, 0),
        (np.bool_(True), TypeError, 0),
    ]
    for keys, exc, i in cases:
        with pytest.raises(exc, match=rf"^keys\[{i}\]: "):
            ref.canonical_keys(keys)
        with pytest.raises(exc, match=rf"^keys\[{i}\]: "):
            ref.ketama_keys(keys)


def test_key_errors_mixed_and_first_index():
    with pytest.raises(TypeError, match=r"^keys\[2\]: mixed"):
        ref.canonical_keys(["a", b"b", 3])
    with pytest.raises(TypeError, match=r"^keys\[1\]: mixed"):
        ref.canonical_keys([3, "a"])
    with pytest.raises(TypeError, match=r"^keys\[1\]: mixed"):
        ref.canonical_keys(np.array([3, b"a"], dtype=object))
    # an out-of-range int in a str batch is a mixing error at that index
    with pytest.raises(TypeError, match=r"^keys\[1\]: mixed"):
        ref.canonical_keys(["a", 2**70])
    # the first offending index wins, whatever the kind of error
    with pytest.raises(ValueError, match=r"^keys\[1\]: "):
        ref.canonical_keys(["a", "\udfff", None])
    with pytest.raises(TypeError, match=r"^keys\[1\]: "):
        ref.canonical_keys([1, None, 2**70])


def test_key_errors_numpy_dtypes():
    bad = [
        np.array([1.0, 2.0]),
        np.array([1.0], dtype=np.float32),
        np.array([True, False]),
        np.array([1 + 2j]),
        np.array(["2024-01-01"], dtype="datetime64[D]"),
        np.array([1], dtype="timedelta64[s]"),
    ]
    for arr in bad:
        with pytest.raises(TypeError, match=re.escape(str(arr.dtype))):
            ref.canonical_keys(arr)
        with pytest.raises(TypeError, match=re.escape(str(arr.dtype))):
            ref.ketama_keys(arr)


def test_ketama_keys():
    assert ref.ketama_keys(["a", b"b"]) == [b"a", b"b"]
    assert ref.ketama_keys([7, -1]) == [b"7", b"-1"]
    assert ref.ketama_keys(np.array([-1, 5], dtype=np.int64)) == [b"-1", b"5"]
    assert ref.ketama_keys(np.array([2**64 - 1], dtype=np.uint64)) == [b"18446744073709551615"]
    assert ref.ketama_keys(np.uint64(2**63)) == [str(2**63).encode()]
    assert ref.ketama_keys(np.array([b"ab\x00"], dtype="S4")) == [b"ab"]


# ---------------------------------------------------------------------------
# ring-xxh64@1
# ---------------------------------------------------------------------------


def _brute_assign(ring, hashes, strict=False):
    values, owners = ring.points()
    values = [int(v) for v in values]
    out = []
    for h in hashes:
        pos = next((i for i, v in enumerate(values) if (v > h if strict else v >= h)), 0)
        out.append(int(owners[pos]))
    return out


def _random_keys(rng: random.Random, count: int) -> list[str]:
    alphabet = string.ascii_letters + string.digits
    return ["".join(rng.choices(alphabet, k=rng.randint(1, 20))) for _ in range(count)]


def test_ring_points_follow_contract():
    weights = {"a": 1.0, "b": 2.5, "c": 0.1, "d": 1.0}
    ring = ref.Ring(list(weights), weights=weights, vnodes=40)
    values, owners = ring.points()
    assert values.dtype == np.uint64 and owners.dtype == np.int32
    mean = math.fsum(weights.values()) / len(weights)
    expected = []
    for name, w in weights.items():
        for j in range(max(1, round(40 * w / mean))):
            expected.append((ref.xxh64(f"{name}#{j}".encode()), name, j))
    expected.sort()
    assert [int(v) for v in values] == [v for v, _, _ in expected]
    assert [ring.nodes[o] for o in owners] == [name for _, name, _ in expected]
    counts = np.bincount(owners, minlength=4)
    # mean = 1.15: round(34.78) = 35, round(86.96) = 87, round(3.48) = 3
    assert counts.tolist() == [35, 87, 3, 35]


def test_ring_count_minimum_and_half_even():
    # tiny weight still gets one point; round() is half-to-even
    ring = ref.Ring({"big": 1000.0, "tiny": 1e-9}, vnodes=1)
    assert np.bincount(ring.points()[1]).tolist() == [2, 1]
    ring = ref.Ring({"a": 1.0, "b": 3.0}, vnodes=1)  # 0.5 -> 0 -> max 1, 1.5 -> 2
    assert np.bincount(ring.points()[1]).tolist() == [1, 2]
    ring = ref.Ring({"a": 5.0, "b": 3.0}, vnodes=1)  # 1.25 -> 1, 0.75 -> 1
    assert np.bincount(ring.points()[1]).tolist() == [1, 1]


def test_ring_assign_matches_brute_force_and_node_for():
    rng = random.Random(7)
    ring = ref.Ring([f"n{i}" for i in range(7)], weights={"n0": 3, "n3": 0.5}, vnodes=20)
    keys = _random_keys(rng, 500)
    got = ring.assign(keys)
    assert got.dtype == np.int32 and got.shape == (500,)
    hashes = [ref.xxh64(b) for b in ref.canonical_keys(keys)]
    assert got.tolist() == _brute_assign(ring, hashes)
    assert [ring.node_for(k) for k in keys[:50]] == [ring.nodes[i] for i in got[:50]]
    assert ring.assign(keys, threads=4).tolist() == got.tolist()
    ints = list(range(-50, 50))
    assert ring.assign(ints).tolist() == ring.assign(np.array(ints, dtype=">i8")).tolist()
    assert ring.node_for(-1) == ring.node_for(2**64 - 1) == ring.node_for(np.uint64(2**64 - 1))
    assert ring.assign([]).shape == (0,)
    assert ring.assign(np.array([], dtype="U1")).dtype == np.int32


def test_ring_exact_point_hit_and_wrap():
    ring = ref.Ring(["a", "b", "c"], vnodes=8)
    # the key "b#3" hashes exactly to b's point 3: first point >= h is that point
    for name in ring.nodes:
        for j in range(8):
            assert ring.node_for(f"{name}#{j}") == name
    values, owners = ring.points()
    top = int(values[-1])
    rng = random.Random(3)
    for _ in range(20000):
        key = rng.getrandbits(64)
        if ref.xxh64(_le(key)) > top:
            assert ring.node_for(key) == ring.nodes[owners[0]]
            break
    else:
        pytest.fail("no wrapping key found")


def test_ring_independent_of_node_order():
    names = [f"srv-{i}" for i in range(6)]
    weights = {n: 1.0 + i for i, n in enumerate(names)}
    a = ref.Ring(names, weights=weights, vnodes=30)
    b = ref.Ring(names[::-1], weights=weights, vnodes=30)
    va, oa = a.points()
    vb, ob = b.points()
    assert va.tolist() == vb.tolist()
    assert [a.nodes[i] for i in oa] == [b.nodes[i] for i in ob]
    keys = _random_keys(random.Random(11), 300)
    assert [a.nodes[i] for i in a.assign(keys)] == [b.nodes[i] for i in b.assign(keys)]


def test_ring_properties():
    ring = ref.Ring({"a": 2, "b": 1.5}, zones={"a": "z1", "b": "z2"}, vnodes=10)
    assert ring.nodes == ("a", "b")
    assert ring.weights == {"a": 2.0, "b": 1.5}
    assert ring.zones == {"a": "z1", "b": "z2"}
    assert ring.vnodes == 10
    assert ring.algorithm == "ring-xxh64@1"
    assert ring.compat is None
    plain = ref.Ring(["x"])
    assert plain.zones is None and plain.vnodes == 160 and plain.weights == {"x": 1.0}
    assert ref.Ring(["x", "y"], weights={"y": 2}).weights == {"x": 1.0, "y": 2.0}


# ---------------------------------------------------------------------------
# ketama-md5@1
# ---------------------------------------------------------------------------


def test_libketama_two_server_example():
    ring = ref.Ring.ketama({"127.0.0.1:11211": 600, "127.0.0.1:11212": 400})
    assert ring.algorithm == "ketama-md5@1"
    assert ring.compat == "libketama"
    assert ring.node_for("foo") == "127.0.0.1:11211"
    assert ring.node_for("baz") == "127.0.0.1:11211"
    assert ring.node_for("test") == "127.0.0.1:11211"
    assert ring.node_for("bar") == "127.0.0.1:11212"
    assert ring.assign(["foo", "bar", "baz", "test"]).tolist() == [0, 1, 0, 0]
    # pct 0.6 / 0.4 of 80 digests, 4 points each
    assert np.bincount(ring.points()[1]).tolist() == [48 * 4, 32 * 4]


def test_libketama_point_counts_float32():
    ring = ref.Ring.ketama(["a", "b", "c"])
    # floorf(float32(1/3) * 40.0 * 3) == 40 digests each
    assert np.bincount(ring.points()[1]).tolist() == [160, 160, 160]
    ring = ref.Ring.ketama({"a": 1, "b": 1000})
    counts = np.bincount(ring.points()[1], minlength=2).tolist()
    assert counts == [0, 79 * 4]  # a: floor(0.0799...) = 0 digests, b: floor(79.92) = 79
    assert ring.assign(["k1", "k2", "k3"]).tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="^n: "):
        ring.replicas(["k"], 2)


def test_ketama_points_and_lookup_literal():
    ring = ref.Ring.ketama({"alpha": 2, "beta": 1, "gamma": 3})
    values, owners = ring.points()
    assert values.dtype == np.uint64 and owners.dtype == np.int32
    assert values.tolist() == sorted(values.tolist())
    assert int(values.max()) < 2**32
    for keys in (_random_keys(random.Random(5), 400), list(range(-50, 100))):
        hashes = [ref.ketama_hash(b) for b in ref.ketama_keys(keys)]
        assert ring.assign(keys).tolist() == _brute_assign(ring, hashes)
    # a key whose hash equals a point: libketama takes that point (>=)
    for name in ring.nodes:
        assert ring.node_for(f"{name}-0") == name


def test_ketama_integer_keys_use_decimal():
    ring = ref.Ring.ketama(["a", "b", "c", "d"])
    ints = list(range(-20, 200))
    assert ring.assign(ints).tolist() == ring.assign([str(v) for v in ints]).tolist()
    assert ring.node_for(np.uint64(2**64 - 1)) == ring.node_for("18446744073709551615")
    assert ring.node_for(-1) == ring.node_for("-1")


@pytest.mark.parametrize("n_nodes", [5, 50])
def test_uhashring_parity(n_nodes):
    uhashring = pytest.importorskip("uhashring")
    rng = random.Random(1000 + n_nodes)
    weights = {f"cache-{i}.example:11211": rng.randint(1, 10) for i in range(n_nodes)}
    theirs = uhashring.HashRing(
        nodes={name: {"weight": w} for name, w in weights.items()}, hash_fn="ketama"
    )
    ours = ref.Ring.ketama(weights, compat="uhashring")
    assert ours.compat == "uhashring"
    keys = _random_keys(rng, 20000)
    got = ours.assign(keys)
    assert [ours.nodes[i] for i in got] == [theirs.get_node(k) for k in keys]
    values, owners = ours.points()
    assert [
        (int(v), ours.nodes[o]) for v, o in zip(values, owners, strict=True)
    ] == theirs.get_points()
    # a key whose hash equals a point goes to the next point (bisect_right)
    name = ours.nodes[0]
    assert ours.node_for(f"{name}-0") == theirs.get_node(f"{name}-0")


def test_uhashring_counts_and_equal_values(monkeypatch):
    ring = ref.Ring.ketama({"a": 1, "b": 2, "c": 4}, compat="uhashring")
    # ks = (40 * 3 * w) // 7
    assert np.bincount(ring.points()[1]).tolist() == [17 * 4, 34 * 4, 68 * 4]
    # Equal point values, forced by making every MD5 point the same value 7.
    monkeypatch.setattr(ref_ring, "_md5_points", lambda data: [7, 7, 7, 7])
    # uhashring: every equal point belongs to the node last in .nodes
    r = ref.Ring.ketama(["x", "z", "y"], compat="uhashring")
    assert set(r.points()[1].tolist()) == {2}
    assert r.node_for("anything") == "y"
    with pytest.raises(ValueError, match="^n: "):
        r.replicas(["k"], 2)  # only one node owns points
    # libketama: equal values ordered by node name, so "x" comes first, "z" last
    r = ref.Ring.ketama(["z", "x", "y"], compat="libketama")
    assert [r.nodes[o] for o in r.points()[1]][:: 40 * 4] == ["x", "y", "z"]
    assert r.node_for("anything") == "x"
    assert r.replicas("anything", 3)[0].tolist() == [1, 2, 0]


# ---------------------------------------------------------------------------
# Replicas
# ---------------------------------------------------------------------------


def _literal_replicas(ring, key, n, zones=None):
    """Section 5, written independently from the points() arrays."""
    values, owners = ring.points()
    values = [int(v) for v in values]
    owners = [int(o) for o in owners]
    if ring.algorithm == "ring-xxh64@1":
        h = ref.xxh64(ref.canonical_keys(key)[0])
    else:
        h = ref.ketama_hash(ref.ketama_keys(key)[0])
    strict = ring.compat == "uhashring"
    start = next((i for i, v in enumerate(values) if (v > h if strict else v >= h)), 0)
    walk = owners[start:] + owners[:start]
    met = list(dict.fromkeys(walk))  # distinct nodes in walk order
    if zones is None:
        return met[:n]
    picked, deferred, used = [], [], set()
    every_zone = {zones[ring.nodes[o]] for o in owners}
    for node in met:
        z = zones[ring.nodes[node]]
        if z in used:
            deferred.append(node)
        else:
            picked.append(node)
            used.add(z)
        if len(picked) == n or (used == every_zone and len(picked) + len(deferred) >= n):
            break
    return (picked + deferred)[:n]


def test_replicas_without_zones():
    rng = random.Random(21)
    rings = [
        ref.Ring([f"n{i}" for i in range(8)], weights={"n1": 4, "n5": 0.3}, vnodes=16),
        ref.Ring.ketama({f"m{i}": i + 1 for i in range(6)}),
        ref.Ring.ketama({f"m{i}": i + 1 for i in range(6)}, compat="uhashring"),
    ]
    keys = _random_keys(rng, 300)
    for ring in rings:
        total = len(ring.nodes)
        full = ring.replicas(keys, total)
        assert full.dtype == np.int32 and full.shape == (300, total)
        assert full[:, 0].tolist() == ring.assign(keys).tolist()
        for row in full:
            assert sorted(row.tolist()) == list(range(total))
        for n in (1, 2, 3):
            part = ring.replicas(keys, n, threads=2)
            assert part.shape == (300, n)
            assert part.tolist() == full[:, :n].tolist()
        for key in keys[:40]:
            assert ring.replicas([key], 3)[0].tolist() == _literal_replicas(ring, key, 3)
    assert rings[0].replicas([], 2).shape == (0, 2)


def test_replicas_with_zones():
    rng = random.Random(22)
    names = [f"n{i}" for i in range(9)]
    zones = {name: f"z{i % 3}" for i, name in enumerate(names)}
    zones["n8"] = "z3"  # uneven: z3 has one node
    ring = ref.Ring(names, zones=zones, vnodes=12)
    keys = _random_keys(rng, 400)
    for n in range(1, 10):
        got = ring.replicas(keys, n)
        assert got.shape == (400, n)
        assert got[:, 0].tolist() == ring.assign(keys).tolist()
        for row in got.tolist():
            assert len(set(row)) == n
            row_zones = [zones[names[i]] for i in row]
            if n <= 4:
                assert len(set(row_zones)) == n  # picked: all zones distinct
            else:
                assert set(row_zones) == {"z0", "z1", "z2", "z3"}
        for key in keys[:30]:
            assert ring.replicas(key, n)[0].tolist() == _literal_replicas(ring, key, n, zones)


def test_replicas_zones_deferred_order():
    # hand-checkable: two zones, walk order decides picked then deferred
    ring = ref.Ring(["a", "b", "c", "d"], zones={"a": 1, "b": 1, "c": 2, "d": 2}, vnodes=3)
    _, owners = ring.points()
    keys = _random_keys(random.Random(9), 200)
    for key in keys:
        row = ring.replicas(key, 3)[0].tolist()
        assert row == _literal_replicas(ring, key, 3, ring.zones)
        zones = ring.zones
        assert zones is not None
        assert {zones[ring.nodes[i]] for i in row[:2]} == {1, 2}


# ---------------------------------------------------------------------------
# add / remove
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["xxh64", "uhashring"])
def test_add_remove_movement_equal_weights(kind):
    names = [f"node-{i}" for i in range(6)]
    if kind == "xxh64":
        ring = ref.Ring(names, vnodes=40)
    else:
        ring = ref.Ring.ketama(names, compat="uhashring")
    keys = _random_keys(random.Random(31), 3000)
    before = [ring.nodes[i] for i in ring.assign(keys)]

    grown = ring.add("node-new")
    assert grown is not ring and ring.nodes == tuple(names)
    assert grown.nodes == tuple(names) + ("node-new",)
    after = [grown.nodes[i] for i in grown.assign(keys)]
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert moved and all(a == "node-new" for _, a in moved)
    assert 0.05 < len(moved) / len(keys) < 0.3  # about 1/7

    shrunk = ring.remove("node-2")
    assert shrunk.nodes == tuple(n for n in names if n != "node-2")
    after = [shrunk.nodes[i] for i in shrunk.assign(keys)]
    assert all(b == a for b, a in zip(before, after, strict=True) if b != "node-2")
    assert all(a != "node-2" for a in after)

    assert grown.remove("node-new").points()[0].tolist() == ring.points()[0].tolist()


def test_add_remove_keep_settings():
    ring = ref.Ring(["a", "b"], weights={"a": 2.0}, zones={"a": "x", "b": "y"}, vnodes=7)
    grown = ring.add("c", 3.0, zone="x")
    assert grown.weights == {"a": 2.0, "b": 1.0, "c": 3.0}
    assert grown.zones == {"a": "x", "b": "y", "c": "x"}
    assert grown.vnodes == 7
    assert grown.remove("a").zones == {"b": "y", "c": "x"}
    k = ref.Ring.ketama({"a": 3, "b": 1}, compat="uhashring")
    k2 = k.add("c")
    assert k2.weights == {"a": 3, "b": 1, "c": 1}
    assert k2.compat == "uhashring" and k2.algorithm == "ketama-md5@1"
    assert k2.add("d", 5).weights["d"] == 5
    assert k2.remove("b").nodes == ("a", "c")


# ---------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------


def test_ring_bad_arguments():
    bad = [
        (lambda: ref.Ring([]), ValueError, "nodes"),
        (lambda: ref.Ring({}), ValueError, "nodes"),
        (lambda: ref.Ring(["a", "a"]), ValueError, "nodes"),
        (lambda: ref.Ring(["a", ""]), ValueError, "nodes"),
        (lambda: ref.Ring(["a", 1]), TypeError, "nodes"),
        (lambda: ref.Ring(["a", b"b"]), TypeError, "nodes"),
        (lambda: ref.Ring("abc"), TypeError, "nodes"),
        (lambda: ref.Ring(None), TypeError, "nodes"),
        (lambda: ref.Ring({"a": 0}), ValueError, "nodes"),
        (lambda: ref.Ring({"a": -1.0}), ValueError, "nodes"),
        (lambda: ref.Ring(["a"], weights={"a": float("nan")}), ValueError, "weights"),
        (lambda: ref.Ring(["a"], weights={"a": float("inf")}), ValueError, "weights"),
        (lambda: ref.Ring(["a"], weights={"a": "2"}), TypeError, "weights"),  # type: ignore[dict-item]
        (lambda: ref.Ring(["a"], weights={"a": True}), TypeError, "weights"),
        (lambda: ref.Ring(["a"], weights={"zz": 1.0}), ValueError, "weights"),
        (lambda: ref.Ring(["a"], weights=[1.0]), TypeError, "weights"),  # type: ignore[arg-type]
        (lambda: ref.Ring({"a": 1.0}, weights={"a": 1.0}), ValueError, "weights"),
        (lambda: ref.Ring(["a"], vnodes=0), ValueError, "vnodes"),
        (lambda: ref.Ring(["a"], vnodes=1.5), TypeError, "vnodes"),  # type: ignore[arg-type]
        (lambda: ref.Ring(["a"], vnodes=True), TypeError, "vnodes"),
        (lambda: ref.Ring(["a", "b"], zones={"a": "z"}), ValueError, "zones"),
        (lambda: ref.Ring(["a"], zones={"a": "z", "q": "z"}), ValueError, "zones"),
        (lambda: ref.Ring(["a"], zones=["z"]), TypeError, "zones"),  # type: ignore[arg-type]
        (lambda: ref.Ring.ketama([]), ValueError, "nodes"),
        (lambda: ref.Ring.ketama(["a"], compat="memcached"), ValueError, "compat"),
        (lambda: ref.Ring.ketama({"a": 1.5}), TypeError, "nodes"),
        (lambda: ref.Ring.ketama({"a": 2.0}), TypeError, "nodes"),
        (lambda: ref.Ring.ketama({"a": 0}), ValueError, "nodes"),
        (lambda: ref.Ring.ketama(["a"], weights={"a": -3}), ValueError, "weights"),
        (lambda: ref.Ring.ketama(["a", "a"]), ValueError, "nodes"),
    ]
    for make, exc, word in bad:
        with pytest.raises(exc, match=word):
            make()


def test_ring_bad_calls():
    ring = ref.Ring(["a", "b", "c"], vnodes=4)
    for n, exc in ((0, ValueError), (4, ValueError), (-1, ValueError), (1.0, TypeError)):
        with pytest.raises(exc, match="^n: "):
            ring.replicas(["k"], n)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="node"):
        ring.remove("zz")
    with pytest.raises(ValueError, match="node"):
        ring.add("a")
    with pytest.raises(ValueError, match="zone"):
        ring.add("d", zone="z")
    with pytest.raises(ValueError, match="weight"):
        ring.add("d", 0)
    with pytest.raises(ValueError, match="node"):
        ref.Ring(["only"]).remove("only")
    zoned = ref.Ring(["a"], zones={"a": "z"})
    with pytest.raises(ValueError, match="zone"):
        zoned.add("b")
    k = ref.Ring.ketama(["a"])
    with pytest.raises(TypeError, match="weight"):
        k.add("b", 1.0)
    with pytest.raises(ValueError, match="zone"):
        k.add("b", zone="z")
    with pytest.raises(TypeError, match=r"^key: "):
        ring.node_for(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^key: "):
        ring.node_for(["a"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^key: "):
        ring.node_for(2**64)
    with pytest.raises(ValueError, match=r"^key: "):
        ring.node_for("\ud800")
    with pytest.raises(TypeError, match=r"^keys\[1\]: mixed"):
        ring.assign(["a", 1])
    with pytest.raises(TypeError, match="float64"):
        ring.replicas(np.zeros(3), 1)
