"""The compiled lookup kernels' own code paths, checked against an independent model.

The model is the contract written directly: XXH64 from the ``xxhash`` package (not ours),
then the first ring point >= the hash by ``np.searchsorted``, wrapping to point 0. The
kernels under test have several paths that must all give that answer: the AVX2 and the
scalar integer kernels (switched with the private ``_core._simd``), the byte-wide and the
int32 bucket tables (rings under / over 255 nodes), the dense rings on which the AVX2
kernel defers to the scalar one, the block loops of the string kernels and their tails, and
every branch of XXH64's final part (key lengths 0..80).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import ringguard
from conftest import N_KEYS, assert_same, scaled

xxhash = pytest.importorskip("xxhash")

COMPILED = ringguard.BACKEND == "c"

RINGS = {
    "1 point": lambda: ringguard.Ring(["solo"], vnodes=1),
    "2 nodes": lambda: ringguard.Ring(["a", "b"], vnodes=3),
    "10 nodes": lambda: ringguard.Ring([f"node{i}" for i in range(10)]),
    "weighted 12": lambda: ringguard.Ring({f"w{i}": 1 + i % 4 for i in range(12)}),
    "40 nodes": lambda: ringguard.Ring([f"n{i}" for i in range(40)]),
    "100 nodes": lambda: ringguard.Ring([f"n{i}" for i in range(100)]),
    # dense: npoints > 2^bits / 8 (only past the table's 2^20 cap), the AVX2 kernel hands
    # over to the scalar one; with the byte-wide table, and with the int32 one
    "dense 200": lambda: ringguard.Ring([f"d{i}" for i in range(200)], vnodes=700),
    "dense 1000": lambda: ringguard.Ring([f"d{i}" for i in range(1000)]),
    # 300 owners do not fit the byte-wide table: the int32 table is read
    "300 nodes": lambda: ringguard.Ring([f"n{i}" for i in range(300)], vnodes=20),
}


@pytest.fixture(params=list(RINGS), scope="module")
def ring(request: pytest.FixtureRequest) -> Any:
    return RINGS[request.param]()


def _model(ring: Any, hashes: np.ndarray) -> np.ndarray:
    points, owners = ring.points()
    idx = np.searchsorted(points, hashes, side="left")
    idx[idx == len(points)] = 0
    return np.asarray(owners, dtype=np.int32)[idx]


def _xxh_u64(keys: np.ndarray) -> np.ndarray:
    return np.array([xxhash.xxh64_intdigest(int(k).to_bytes(8, "little")) for k in keys.tolist()],
                    dtype=np.uint64)


def _xxh_bytes(keys: list[bytes]) -> np.ndarray:
    return np.array([xxhash.xxh64_intdigest(k) for k in keys], dtype=np.uint64)


def _simd_modes() -> Iterator[str]:
    """Run the body once per integer kernel the machine has (restoring the setting)."""
    if not COMPILED:
        yield "python"
        return
    core = pytest.importorskip("ringguard._core")
    before = core._simd()
    try:
        for want in (False, True):
            if core._simd(want) == want:
                yield "avx2" if want else "scalar"
    finally:
        core._simd(before)


U64_KEYS = np.random.default_rng(20261127).integers(
    0, 2**64 - 1, N_KEYS, dtype=np.uint64, endpoint=True)
U64_HASHES = _xxh_u64(U64_KEYS)


def test_u64_every_kernel_matches_the_model(ring: Any) -> None:
    expected = _model(ring, U64_HASHES)
    for mode in _simd_modes():
        assert_same(ring.assign(U64_KEYS), expected, f"uint64 keys, {mode}")
        # every tail length of the 8-key groups, and offsets into the array
        for n in range(0, 20):
            assert_same(ring.assign(U64_KEYS[3:3 + n]), expected[3:3 + n], f"{mode} n={n}")


def test_u64_threads_and_out_match(ring: Any) -> None:
    keys = U64_KEYS[: scaled(60_000, 2_000)]
    expected = _model(ring, U64_HASHES[: len(keys)])
    for mode in _simd_modes():
        out = np.full(len(keys), -5, dtype=np.int32)
        assert ring.assign(keys, out=out) is out
        assert_same(out, expected, f"out=, {mode}")
        assert_same(ring.assign(keys, threads=2), expected, f"threads=2, {mode}")


def test_signed_and_small_integer_dtypes(ring: Any) -> None:
    ints = np.arange(-5000, 5000, 7, dtype=np.int64)
    expected = _model(ring, _xxh_u64(ints.view(np.uint64)))
    for mode in _simd_modes():
        assert_same(ring.assign(ints), expected, f"int64, {mode}")
        small = ints[(ints >= -128) & (ints < 128)]
        assert_same(ring.assign(small.astype(np.int8)),
                    _model(ring, _xxh_u64(small.view(np.uint64))), f"int8, {mode}")


def _keys_of_every_length(max_len: int, per_len: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    keys = []
    for length in range(max_len + 1):
        for _ in range(per_len):
            b = bytes(rng.integers(0, 256, length, dtype=np.uint8))
            keys.append(b.rstrip(b"\x00") if length else b)
    order = rng.permutation(len(keys))
    return [keys[i] for i in order]


STR_KEYS = _keys_of_every_length(80, scaled(40, 4), 11)
STR_HASHES = _xxh_bytes(STR_KEYS)


def test_byte_keys_of_every_length_in_every_layout(ring: Any) -> None:
    expected = _model(ring, STR_HASHES)
    pa = pytest.importorskip("pyarrow")
    width = max(map(len, STR_KEYS))
    layouts = {
        "list of bytes": STR_KEYS,
        "tuple of bytes": tuple(STR_KEYS),
        "NumPy S": np.array(STR_KEYS, dtype=f"S{width}"),
        "NumPy S, wider": np.array(STR_KEYS, dtype=f"S{width + 9}"),
        "pyarrow binary": pa.array(STR_KEYS, type=pa.binary()),
    }
    for name, keys in layouts.items():
        assert_same(ring.assign(keys), expected, name)
    for n in range(0, 20):  # block tails of the string kernels
        assert_same(ring.assign(STR_KEYS[5:5 + n]), expected[5:5 + n], f"list n={n}")
        assert_same(ring.assign(layouts["NumPy S"][5:5 + n]), expected[5:5 + n], f"S n={n}")


def test_str_lists_read_in_place_match_the_utf8_model(ring: Any) -> None:
    rng = np.random.default_rng(12)
    words = ["order:", "é", "中文", "😀", "k", "\x00x", "-" * 31, "long" * 20]
    keys = ["".join(rng.choice(words, size=int(rng.integers(0, 6)))) for _ in range(3000)]
    expected = _model(ring, _xxh_bytes([k.encode() for k in keys]))
    assert_same(ring.assign(keys), expected, "list of str")
    assert_same(ring.assign(tuple(keys)), expected, "tuple of str")
    assert_same(ring.assign(iter(keys)), expected, "iterator of str")
    mixed = [k.encode() if i % 3 == 0 else k for i, k in enumerate(keys)]
    assert_same(ring.assign(mixed), expected, "str and bytes")


class _KeyList(list):  # a list subclass: read through the general (packing) path
    pass


@pytest.mark.parametrize("make", [
    lambda: ringguard.Ring([f"node{i}" for i in range(10)]),
    lambda: ringguard.Ring({f"w{i}": 1 + i % 3 for i in range(7)}, zones={
        f"w{i}": f"z{i % 3}" for i in range(7)}),
    lambda: ringguard.Ring.ketama({"s1": 600, "s2": 400, "s3": 100}, compat="libketama"),
    lambda: ringguard.Ring.ketama({"s1": 600, "s2": 400, "s3": 100}, compat="uhashring"),
], ids=["xxh64", "zones", "libketama", "uhashring"])
def test_list_keys_read_in_place_equal_the_packed_path(make: Any) -> None:
    """One thread reads a list's keys where they lie (no packed copy); threads=2, list
    subclasses and arrays pack them first. Every path, for assign and replicas, agrees."""
    ring = make()
    keys: list[Any] = [f"order:{i}" for i in range(scaled(5000, 500))]
    keys += ["é" * (i % 40) for i in range(50)] + [b"\xff" * (i % 70) for i in range(90)]
    packed = np.array([k.encode() if isinstance(k, str) else k for k in keys], dtype=object)
    expected = ring.assign(packed)
    for n in (len(keys), 1, 7, 8, 9, 16, 17, 23, 24, 25):
        assert_same(ring.assign(keys[:n]), expected[:n], f"list n={n}")
    assert_same(ring.assign(keys, threads=2), expected, "threads=2")
    assert_same(ring.assign(_KeyList(keys)), expected, "list subclass")
    expected_rep = ring.replicas(packed, 2)
    np.testing.assert_array_equal(ring.replicas(keys, 2), expected_rep)
    np.testing.assert_array_equal(ring.replicas(tuple(keys), 2), expected_rep)
    out = np.full(len(keys), -7, dtype=np.int32)
    assert ring.assign(keys, out=out) is out
    assert_same(out, expected, "out=")


def test_list_packing_grows_past_its_first_estimate() -> None:
    """The packing buffer starts at ~32 bytes per key and doubles when a key overflows it."""
    ring = ringguard.Ring([f"node{i}" for i in range(10)])
    keys = ["x" * 50] * 400 + ["é" * 3000] + [b"\xff" * 70_000] + ["tail"] * 7
    expected = _model(ring, _xxh_bytes([k.encode() if isinstance(k, str) else k for k in keys]))
    assert_same(ring.assign(keys), expected, "growing list")
    assert_same(ring.assign(tuple(keys)), expected, "growing tuple")


@pytest.mark.parametrize("bad, index, error", [
    (["a", "b", 3], 2, "mixed key types"),
    (["a", None], 1, "got NoneType"),
    (["a"] * 5000 + [1.5], 5000, "got float"),
    (["x" * 100] * 200 + [b"y", True], 201, "got bool"),
    (["ok", "\ud800"], 1, "not encodable as UTF-8"),
])
def test_list_packing_errors_name_the_first_bad_index(bad: list[Any], index: int,
                                                      error: str) -> None:
    ring = ringguard.Ring(["a", "b", "c"])
    with pytest.raises((TypeError, ValueError), match=rf"keys\[{index}\]: .*{error}"):
        ring.assign(bad)
    with pytest.raises((TypeError, ValueError), match=rf"keys\[{index}\]: .*{error}"):
        ring.assign(tuple(bad))


def test_lists_are_not_modified() -> None:
    ring = ringguard.Ring(["a", "b", "c"])
    keys = [f"k{i}" for i in range(1000)] + ["é" * 5]
    copy = list(keys)
    ring.assign(keys)
    assert keys == copy


def _first_bad_offset(offs: list[int], datalen: int) -> int:
    for i in range(len(offs) - 1):
        if offs[i] < 0 or offs[i] > offs[i + 1] or offs[i + 1] > datalen:
            return i
    return -1


def test_check_offsets_finds_the_first_bad_item_in_any_block() -> None:
    """The offsets check scans blocks of 4096 without branches, then the failing block."""
    from ringguard._backend import core

    n = 3 * 4096 + 17
    good = np.arange(n + 1, dtype=np.int64) * 3
    datalen = int(good[-1])
    core.check_offsets(good, datalen)
    cases = []
    for i in (0, 1, 4095, 4096, 4097, 8191, 2 * 4096 + 5, n - 1):
        dec = good.copy()
        dec[i + 1] = dec[i] - 1  # item i decreases (and item i + 1 may too)
        cases.append(dec)
    neg = good.copy()
    neg[0] = -1
    cases.append(neg)
    for end in (4096, 8192, n):  # the data buffer ends before the block's last offset
        short = good.copy()
        short[end:] = datalen + 1
        cases.append(short)
    for offs in cases:
        want = _first_bad_offset(offs.tolist(), datalen)
        assert want >= 0
        with pytest.raises(ValueError, match=rf"keys\[{want}\]: offsets"):
            core.check_offsets(offs, datalen)
    core.check_offsets(good, datalen + 5)
    with pytest.raises(ValueError, match=rf"keys\[{n - 1}\]: offsets"):
        core.check_offsets(good, datalen - 1)


@pytest.mark.parametrize("make", [
    lambda: ringguard.Ring([f"node{i}" for i in range(10)]),
    lambda: ringguard.Ring({f"w{i}": 1 + i % 3 for i in range(9)},
                           zones={f"w{i}": f"z{i % 4}" for i in range(9)}),
    lambda: ringguard.Ring.ketama({"s1": 600, "s2": 400, "s3": 100}),
    lambda: ringguard.Ring([f"n{i}" for i in range(300)], vnodes=20),
], ids=["10 nodes", "zones", "ketama", "300 nodes"])
def test_replicas_from_the_point_table_equal_the_walk(make: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """replicas() gathers rows of a per-point preference table built once per n; the walk
    from each key's point (what it replaced, and still used for huge tables) agrees."""
    ring = make()
    keys = U64_KEYS[: scaled(50_000, 3_000)]
    ns = sorted({1, 2, 3, min(5, len(ring.nodes))})
    tables = {n: ring.replicas(keys, n) for n in ns}
    threaded = {n: ring.replicas(keys, n, threads=2) for n in ns}
    monkeypatch.setattr(type(ring), "_pref_table", lambda self, n: None)
    for n in ns:
        walked = ring.replicas(keys, n)
        np.testing.assert_array_equal(tables[n], walked, err_msg=f"n={n}")
        np.testing.assert_array_equal(threaded[n], walked, err_msg=f"n={n}, threads=2")


def test_gather_rows_refuses_an_index_outside_the_table() -> None:
    from ringguard._backend import core

    table = np.arange(12, dtype=np.int32).reshape(4, 3)
    first = np.array([0, 3, 2, 1], dtype=np.int32)
    out = np.empty((4, 3), dtype=np.int32)
    core.gather_rows(table, first, out)
    np.testing.assert_array_equal(out, table[first])
    for bad, idx in ((4, 2), (-1, 2), (2**31 - 1, 2)):
        f = first.copy()
        f[idx] = bad
        out[:] = -9
        with pytest.raises(ValueError, match=rf"first\[{idx}\]: {bad} is not a row index"):
            core.gather_rows(table, f, out)
        assert (out == -9).all()  # nothing written
    with pytest.raises(ValueError, match="out: has shape"):
        core.gather_rows(table, first, np.empty((4, 2), dtype=np.int32))
    core.gather_rows(table, first[:0], np.empty((0, 3), dtype=np.int32))

