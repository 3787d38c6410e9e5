"""Polars Series as keys: the same nodes as the same keys in a list or NumPy array.

Decision for Categorical and Enum series: they are hashed by their *values* (the strings),
exactly like a pandas Categorical or an Arrow dictionary array, never by their codes.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from conftest import make_bytes_keys, make_str_keys, scaled
from ringguard import JumpHash, Maglev, RedisSlots, Rendezvous, Ring, redis_slot

pl = pytest.importorskip("polars")

N = scaled(20_000, 1_500)
NODES = [f"db{i}" for i in range(7)]
PLACEMENTS = [
    Ring(NODES),
    Ring(NODES, weights={"db3": 2.5}, vnodes=40),
    Ring.ketama(NODES),
    Maglev(NODES, table_size=1031),
    Rendezvous(NODES),
    JumpHash(NODES),
    RedisSlots.even(NODES),
]


def chunked(values: Any, dtype: Any, pieces: int = 4) -> Any:
    """A Polars Series of ``pieces`` chunks (not rechunked)."""
    step = max(1, len(values) // pieces)
    parts = [pl.Series("k", values[i : i + step], dtype=dtype)
             for i in range(0, len(values), step)]
    s = pl.concat(parts, rechunk=False)
    assert s.n_chunks() == len(parts) > 1
    return s


@pytest.mark.parametrize("placement", PLACEMENTS, ids=lambda p: type(p).__name__)
def test_string_series_equals_list(placement: Any) -> None:
    keys = make_str_keys(N, 11)
    expected = placement.assign(keys)
    np.testing.assert_array_equal(placement.assign(pl.Series("k", keys)), expected)
    np.testing.assert_array_equal(placement.assign(chunked(keys, pl.String)), expected)
    n = min(3, len(placement.nodes))
    np.testing.assert_array_equal(placement.replicas(chunked(keys, pl.String), n),
                                  placement.replicas(keys, n))


@pytest.mark.parametrize("placement", PLACEMENTS, ids=lambda p: type(p).__name__)
def test_binary_series_equals_list(placement: Any) -> None:
    keys = make_bytes_keys(N, 12)
    expected = placement.assign(keys)
    np.testing.assert_array_equal(placement.assign(pl.Series("k", keys, dtype=pl.Binary)),
                                  expected)
    np.testing.assert_array_equal(placement.assign(chunked(keys, pl.Binary)), expected)


@pytest.mark.parametrize("placement", PLACEMENTS, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("dtype", ["Int64", "UInt64", "Int32", "UInt16", "Int8"])
def test_integer_series_equals_numpy(placement: Any, dtype: str) -> None:
    pdt = getattr(pl, dtype)
    ndt = np.dtype(dtype.lower())
    info = np.iinfo(ndt)
    rng = np.random.default_rng(13)
    values = rng.integers(info.min, info.max, N, dtype=ndt, endpoint=True)
    expected = placement.assign(values)
    np.testing.assert_array_equal(placement.assign(pl.Series("k", values, dtype=pdt)),
                                  expected)
    np.testing.assert_array_equal(placement.assign(chunked(values, pdt)), expected)
    np.testing.assert_array_equal(placement.replicas(chunked(values, pdt), 2),
                                  placement.replicas(values, 2))


def test_uint64_above_int64_and_negative_keys() -> None:
    ring = Ring(NODES)
    big = [2**64 - 1, 2**63, 0, 7]
    np.testing.assert_array_equal(ring.assign(pl.Series(big, dtype=pl.UInt64)),
                                  ring.assign(big))
    neg = [-1, -(2**63), 7]
    np.testing.assert_array_equal(ring.assign(pl.Series(neg, dtype=pl.Int64)),
                                  ring.assign(neg))
    # 7 as Int64, UInt8 and a Python int: one node (the key rule's canonical bytes).
    assert len({ring.node_for(7), *(ring.nodes[i] for i in (
        ring.assign(pl.Series([7], dtype=pl.Int64))[0],
        ring.assign(pl.Series([7], dtype=pl.UInt8))[0]))}) == 1


def test_redis_slot_of_a_series() -> None:
    keys = ["foo", "{user1000}.following", "{user1000}.followers", "bar"] * 5
    np.testing.assert_array_equal(redis_slot(chunked(keys, pl.String)), redis_slot(keys))


@pytest.mark.parametrize("dtype", ["categorical", "enum"])
def test_categorical_and_enum_are_hashed_by_value(dtype: str) -> None:
    ring = Ring(NODES)
    keys = [f"sku:{i % 97}" for i in range(N)]
    pdt = pl.Categorical if dtype == "categorical" else pl.Enum(sorted(set(keys)))
    s = pl.Series("k", keys, dtype=pdt)
    np.testing.assert_array_equal(ring.assign(s), ring.assign(keys))
    # Not the codes: hashing the physical integers would give other nodes.
    codes = s.to_physical().to_numpy()
    assert not np.array_equal(ring.assign(s), ring.assign(codes))


def test_nulls_raise_naming_the_first_null() -> None:
    ring = Ring(NODES)
    with pytest.raises(ValueError, match=r"keys\[2\]: null key"):
        ring.assign(pl.Series(["a", "b", None, None]))
    with pytest.raises(ValueError, match=r"keys\[5\]: null key"):
        ring.assign(chunked([1, 2, 3, 4, 5, None, 7, 8], pl.Int64))
    with pytest.raises(ValueError, match=r"keys\[0\]: null key"):
        ring.replicas(pl.Series([None, b"x"], dtype=pl.Binary), 2)


@pytest.mark.parametrize("values,dtype,match", [
    ([1.5, 2.0], "Float64", "Float64"),
    ([True, False], "Boolean", "Boolean"),
    ([1, 2], "Int128", "Int128"),
])
def test_unsupported_dtypes_raise_type_error(values: Any, dtype: str, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        Ring(NODES).assign(pl.Series(values, dtype=getattr(pl, dtype)))


def test_a_frame_is_not_a_key_column() -> None:
    with pytest.raises(TypeError, match="Series"):
        Ring(NODES).assign(pl.DataFrame({"k": ["a"]}))


def test_input_series_unchanged_and_empty_series() -> None:
    s = chunked([f"k{i}" for i in range(100)], pl.String)
    before = s.to_list()
    Ring(NODES).assign(s)
    assert s.to_list() == before and s.n_chunks() > 1
    assert Ring(NODES).assign(pl.Series("k", [], dtype=pl.String)).shape == (0,)


def test_import_ringguard_does_not_import_polars() -> None:
    code = "import sys, ringguard; ringguard.Ring(['a']).assign(['x']); " \
           "print('polars' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "False", out.stderr
