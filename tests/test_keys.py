"""The key rule (contract section 1): the same keys in any container give the same answer,
and keys are hashed through their canonical bytes (ketama: their ketama bytes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import ringguard
from conftest import make_bytes_keys, make_str_keys
from ringguard import reference as ref

N = 1500
RINGS: dict[str, Callable[[], Any]] = {
    "ring": lambda: ringguard.Ring([f"n{i}" for i in range(7)], vnodes=40),
    "libketama": lambda: ringguard.Ring.ketama({f"n{i}": i + 1 for i in range(7)}),
    "uhashring": lambda: ringguard.Ring.ketama({f"n{i}": i + 1 for i in range(7)},
                                               compat="uhashring"),
}


@pytest.fixture(params=list(RINGS), scope="module")
def ring(request: pytest.FixtureRequest) -> Any:
    return RINGS[request.param]()


def _str_forms(keys: list[str]) -> dict[str, Any]:
    pa = pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    forms = {
        "tuple": tuple(keys),
        "numpy-U": np.array(keys),
        "numpy-U-wider": np.array(keys, dtype=f"U{max(map(len, keys)) + 5}"),
        "numpy-object": np.array(keys, dtype=object),
        "pandas-object": pd.Series(keys, dtype=object),
        "pandas-string[python]": pd.Series(keys, dtype="string[python]"),
        "pandas-string[pyarrow]": pd.Series(keys, dtype="string[pyarrow]"),
        "pandas-default": pd.Series(keys, index=np.arange(len(keys)) * 3),
        "arrow-string": pa.array(keys, type=pa.string()),
        "arrow-large_string": pa.array(keys, type=pa.large_string()),
        "arrow-chunked": pa.chunked_array([keys[:100], keys[100:101], [], keys[101:]],
                                          type=pa.string()),
        "utf8-bytes": [k.encode() for k in keys],
    }
    if hasattr(np, "dtypes") and hasattr(np.dtypes, "StringDType"):
        forms["numpy-StringDType"] = np.array(keys, dtype=np.dtypes.StringDType())
    return forms


def test_str_keys_same_in_every_container(ring: Any) -> None:
    keys = make_str_keys(N, 501, max_len=60)
    expected = ring.assign(keys)
    assert expected.dtype == np.int32 and expected.shape == (N,)
    for name, form in _str_forms(keys).items():
        assert ring.assign(form).tolist() == expected.tolist(), name


def test_bytes_keys_same_in_every_container(ring: Any) -> None:
    pa = pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    keys = make_bytes_keys(N, 502, max_len=60)
    expected = ring.assign(keys).tolist()
    forms = {
        "tuple": tuple(keys),
        "numpy-S": np.array(keys),
        "numpy-S-wider": np.array(keys, dtype="S80"),
        "numpy-object": np.array(keys, dtype=object),
        "pandas-object": pd.Series(keys, dtype=object),
        "arrow-binary": pa.array(keys, type=pa.binary()),
        "arrow-large_binary": pa.array(keys, type=pa.large_binary()),
        "arrow-chunked": pa.chunked_array([keys[:7], keys[7:]], type=pa.binary()),
    }
    for name, form in forms.items():
        assert ring.assign(form).tolist() == expected, name


def test_int_keys_same_in_every_container(ring: Any) -> None:
    pa = pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(503)
    i64 = rng.integers(-(2**63), 2**63 - 1, N, dtype=np.int64)
    i64[:5] = [0, -1, 1, -(2**63), 2**63 - 1]
    values = i64.tolist()
    expected = ring.assign(values).tolist()
    forms = {
        "tuple": tuple(values),
        "numpy-int64": i64,
        "numpy->i8": i64.astype(">i8"),
        "numpy-object": np.array(values, dtype=object),
        "numpy-scalars": [np.int64(v) for v in values],
        "pandas-int64": pd.Series(i64),
        "pandas-Int64": pd.Series(values, dtype="Int64"),
        "arrow-int64": pa.array(values, type=pa.int64()),
        "arrow-chunked": pa.chunked_array([values[:10], values[10:]], type=pa.int64()),
    }
    for name, form in forms.items():
        assert ring.assign(form).tolist() == expected, name
    small = rng.integers(-128, 128, N).tolist()
    expected_small = ring.assign(small).tolist()
    for dtype in ("int8", "int16", "int32", "int64", ">i2", ">i4"):
        assert ring.assign(np.array(small, dtype=dtype)).tolist() == expected_small, dtype
    for pa_type in (pa.int8(), pa.int16(), pa.int32()):
        assert ring.assign(pa.array(small, type=pa_type)).tolist() == expected_small
    positive = rng.integers(0, 256, N).tolist()
    expected_pos = ring.assign(positive).tolist()
    for dtype in ("uint8", "uint16", "uint32", "uint64", "int16", ">u8"):
        assert ring.assign(np.array(positive, dtype=dtype)).tolist() == expected_pos, dtype
    assert ring.assign(pa.array(positive, type=pa.uint8())).tolist() == expected_pos


def test_equal_integer_scalars(ring: Any) -> None:
    """7, np.int64(7), np.uint64(7), np.int8(7)... are one key, in every ring."""
    node = ring.node_for(7)
    for k in (np.int64(7), np.uint64(7), np.int8(7), np.uint8(7), np.int32(7)):
        assert ring.node_for(k) == node, type(k)
    for batch in ([7], (7,), np.array([7], dtype=np.uint16), np.array(7), np.array([7], ">i8")):
        assert ring.nodes[ring.assign(batch)[0]] == node
    assert ring.assign(7).tolist() == ring.assign([7]).tolist()


def test_two_complement_integers_in_ring() -> None:
    """In ring-xxh64@1 an integer is its value mod 2**64: -1 and 2**64-1 are one key."""
    ring = ringguard.Ring([f"n{i}" for i in range(16)], vnodes=30)
    pairs = [(-1, 2**64 - 1), (-(2**63), 2**63), (-2, 2**64 - 2), (-12345, 2**64 - 12345)]
    for neg, pos in pairs:
        assert ring.node_for(neg) == ring.node_for(pos)
        assert ring.node_for(np.int64(neg)) == ring.node_for(np.uint64(pos))
    signed = np.random.default_rng(5).integers(-(2**63), 2**63 - 1, N, dtype=np.int64)
    assert ring.assign(signed).tolist() == ring.assign(signed.view(np.uint64)).tolist()
    assert ring.assign(signed.tolist()).tolist() == \
        ring.assign([v % 2**64 for v in signed.tolist()]).tolist()


def test_canonical_bytes(ring: Any) -> None:
    """str is its UTF-8; Ring ints are 8 little-endian bytes, ketama ints decimal text."""
    strs = make_str_keys(N, 504)
    assert ring.assign(strs).tolist() == ring.assign([s.encode("utf-8") for s in strs]).tolist()
    ints = np.random.default_rng(6).integers(-(2**63), 2**63 - 1, N, dtype=np.int64).tolist()
    ints += [0, -1, 2**63, 2**64 - 1]
    if ring.algorithm == "ring-xxh64@1":
        as_bytes = [(v % 2**64).to_bytes(8, "little") for v in ints]
    else:
        as_bytes = [str(v).encode("ascii") for v in ints]
    assert ring.assign(ints).tolist() == ring.assign(as_bytes).tolist()
    assert ring.node_for("") == ring.node_for(b"")
    assert ring.assign(["é", b"\xc3\xa9", "😀", "😀".encode()]).tolist()[0::2] == \
        ring.assign(["é", b"\xc3\xa9", "😀", "😀".encode()]).tolist()[1::2]


def test_numpy_trailing_nuls_are_not_part_of_the_value(ring: Any) -> None:
    s_arr = np.array([b"ab", b"ab\x00", b"a\x00b", b"\x00", b""], dtype="S6")
    assert s_arr.tolist() == [b"ab", b"ab", b"a\x00b", b"", b""]
    assert ring.assign(s_arr).tolist() == ring.assign([b"ab", b"ab", b"a\x00b", b"", b""]).tolist()
    u_arr = np.array(["ab", "ab\x00", "a\x00b", "é\x00"], dtype="U5")
    assert ring.assign(u_arr).tolist() == ring.assign(["ab", "ab", "a\x00b", "é"]).tolist()
    # in a list, bytes are taken as they are: a trailing NUL is part of the key
    keys = [b"a" + b"\x00" * i for i in range(40)]
    listed = ring.assign(keys).tolist()
    assert listed == _twin(ring).assign(keys).tolist()
    assert len(set(listed)) > 1  # 40 distinct keys, not 40 copies of b"a"


def _twin(ring: Any) -> Any:
    if ring.algorithm == "ring-xxh64@1":
        return ref.Ring(list(ring.nodes), weights=ring.weights, vnodes=ring.vnodes)
    return ref.Ring.ketama(list(ring.nodes), weights=ring.weights, compat=ring.compat)


def test_mixed_str_and_bytes(ring: Any) -> None:
    strs = make_str_keys(300, 505)
    mixed = [s if i % 2 else s.encode() for i, s in enumerate(strs)]
    assert ring.assign(mixed).tolist() == ring.assign(strs).tolist()
    assert ring.assign(mixed).tolist() == _twin(ring).assign(mixed).tolist()


def test_long_and_astral_keys(ring: Any) -> None:
    keys = ["x" * 70000, "😀" * 5000, "\U0010ffff" * 3, "a" * 31, "a" * 32, "a" * 33,
            "中" * 1000, "\x00middle\x00nul"]
    expected = _twin(ring).assign(keys).tolist()
    assert ring.assign(keys).tolist() == expected
    assert ring.assign(np.array(keys)).tolist() == expected
    assert ring.assign([k.encode() for k in keys]).tolist() == expected


def test_zero_dim_arrays_and_scalars_are_one_key(ring: Any) -> None:
    for scalar, batch in ((np.array(5), [5]), (np.array("key"), ["key"]),
                          (np.array(b"key"), [b"key"]), (np.str_("k"), ["k"]),
                          (np.bytes_(b"k"), [b"k"]), ("k", ["k"]), (b"k", [b"k"]), (5, [5])):
        got = ring.assign(scalar)
        assert got.shape == (1,)
        assert got.tolist() == ring.assign(batch).tolist()


def test_empty_batches_in_every_container(ring: Any) -> None:
    pa = pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    empties = [[], (), np.array([], dtype=np.int64), np.array([], dtype="U3"),
               np.array([], dtype="S3"), np.array([], dtype=object),
               pa.array([], type=pa.string()), pa.array([], type=pa.int64()),
               pa.chunked_array([], type=pa.binary()), pd.Series([], dtype=object),
               pd.Series([], dtype="int64")]
    for keys in empties:
        got = ring.assign(keys)
        assert got.shape == (0,) and got.dtype == np.int32, type(keys)
        reps = ring.replicas(keys, 2)
        assert reps.shape == (0, 2) and reps.dtype == np.int32


def test_every_small_batch_length(ring: Any) -> None:
    """Batch lengths around the kernels' block size (16) and the GIL threshold."""
    twin = _twin(ring)
    rng = np.random.default_rng(507)
    ints = rng.integers(-(2**63), 2**63 - 1, 80, dtype=np.int64)
    strs = make_str_keys(80, 508)
    for n in list(range(0, 50)) + [63, 64, 65, 79]:
        assert ring.assign(ints[:n]).tolist() == twin.assign(ints[:n]).tolist(), n
        assert ring.assign(ints.view(np.uint64)[:n]).tolist() == \
            twin.assign(ints.view(np.uint64)[:n]).tolist(), n
        assert ring.assign(strs[:n]).tolist() == twin.assign(strs[:n]).tolist(), n
    for n in (2047, 2048, 2049):  # around NOGIL_MIN
        many = np.arange(-n // 2, n - n // 2, dtype=np.int64) * 7919
        assert ring.assign(many).tolist() == twin.assign(many).tolist(), n


def test_list_encoding_buffer_growth(ring: Any) -> None:
    """Lists of long keys outgrow the first encoding buffer (~16 bytes per key) many times."""
    rng = np.random.default_rng(509)
    sizes = rng.integers(0, 400, 600).tolist()
    keys: list[Any] = []
    for i, size in enumerate(sizes):
        if i % 3 == 0:
            keys.append("é" * size)  # 2 UTF-8 bytes per char
        elif i % 3 == 1:
            keys.append(bytes(rng.integers(0, 256, size, dtype=np.uint8)))
        else:
            keys.append("k" * size)  # ASCII, read in place
    assert ring.assign(keys).tolist() == _twin(ring).assign(keys).tolist()
    huge_first = ["x" * 100_000] + ["y"] * 10
    assert ring.assign(huge_first).tolist() == _twin(ring).assign(huge_first).tolist()


class _Text(str):
    pass


def test_str_subclasses_are_str_keys(ring: Any) -> None:
    base = ["abc", "é-key", "😀", "", "plain ascii key"]
    expected = ring.assign(base).tolist()
    assert ring.assign([np.str_(s) for s in base]).tolist() == expected
    assert ring.assign([_Text(s) for s in base]).tolist() == expected
    assert ring.assign(np.array(base, dtype=object)).tolist() == expected



def _missing_forms() -> dict[str, tuple[Any, int, type[Exception]]]:
    """Containers with a missing key, the index of the first one, and the exception.

    A missing value in a typed column (Arrow, Polars, a pandas extension dtype) is a bad
    value: ValueError. ``None``/NaN among Python objects is a bad type, like a float:
    TypeError (pinned for lists and object arrays in test_errors.py)."""
    pa = pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    forms: dict[str, tuple[Any, int, type[Exception]]] = {
        "list-None": (["a", "b", None, "c"], 2, TypeError),
        "list-NaN": (["a", float("nan")], 1, TypeError),
        "int-list-None": ([1, 2, None], 2, TypeError),
        "numpy-object": (np.array(["a", None, None], dtype=object), 1, TypeError),
        "pandas-object": (pd.Series(["a", "b", None], dtype=object), 2, TypeError),
        "pandas-string": (pd.Series(["a", "b", None], dtype="string"), 2, ValueError),
        "pandas-string[pyarrow]": (pd.Series([None, "b"], dtype="string[pyarrow]"), 0,
                                   ValueError),
        "pandas-ArrowDtype": (pd.Series(["a", None], dtype=pd.ArrowDtype(pa.string())), 1,
                              ValueError),
        "pandas-Int64": (pd.Series([1, 2, 3, None], dtype="Int64"), 3, ValueError),
        "pandas-category": (pd.Series(["x", None], dtype="category"), 1, ValueError),
        "pandas-Index-string": (pd.Index(["x", "y", None], dtype="string"), 2, ValueError),
        "pandas-relabelled": (pd.Series(["a", None], dtype="string", index=[7, 3]), 1,
                              ValueError),
        "arrow-string": (pa.array(["a", "b", None]), 2, ValueError),
        "arrow-int64": (pa.array([1, None, 3]), 1, ValueError),
        "arrow-chunked": (pa.chunked_array([["a", "b"], ["c", None]]), 3, ValueError),
        "arrow-dictionary": (pa.array(["a", None]).dictionary_encode(), 1, ValueError),
        "polars-string": (pl.Series(["a", None]), 1, ValueError),
        "polars-int": (pl.Series([None, 1]), 0, ValueError),
    }
    return forms


def test_missing_keys_in_typed_columns_are_value_errors(ring: Any) -> None:
    """pandas NA in an extension dtype raises what an Arrow or Polars null raises (it often
    *is* an Arrow null), naming the first missing index; None among objects a TypeError."""
    for name, (keys, index, exc) in _missing_forms().items():
        with pytest.raises(exc, match=rf"^keys\[{index}\]: ") as info:
            ring.assign(keys)
        assert type(info.value) is exc, name
        with pytest.raises(exc, match=rf"^keys\[{index}\]: "):
            ring.replicas(keys, 2)


def test_a_missing_key_after_a_bad_one_is_not_named_first(ring: Any) -> None:
    pd = pytest.importorskip("pandas")
    for keys in (["a", 1.5, None], pd.Series(["a", 1.5, None], dtype=object),
                 np.array(["a", True, None], dtype=object)):
        with pytest.raises(TypeError, match=r"^keys\[1\]: "):
            ring.assign(keys)


@pytest.mark.parametrize("type_name", ["int8", "int16", "int32", "int64",
                                       "uint8", "uint16", "uint32", "uint64"])
def test_arrow_integers_read_from_their_buffer(ring: Any, type_name: str) -> None:
    """Arrow integer keys of every width, sliced (non-zero offset) and chunked, equal the
    same values as Python ints."""
    pa = pytest.importorskip("pyarrow")
    t = getattr(pa, type_name)()
    info = np.iinfo(np.dtype(type_name))
    rng = np.random.default_rng(510)
    values = rng.integers(info.min, info.max, 700, dtype=np.dtype(type_name), endpoint=True)
    values[:2] = [info.min, info.max]
    arr = pa.array(values, type=t)
    expected = ring.assign(values.tolist()).tolist()
    assert ring.assign(arr).tolist() == expected
    assert ring.assign(arr.slice(3, 500)).tolist() == expected[3:503]
    assert ring.assign(arr.slice(699)).tolist() == expected[699:]
    chunked = pa.chunked_array([arr.slice(0, 5), arr.slice(5, 0), arr.slice(5)])
    assert ring.assign(chunked).tolist() == expected
