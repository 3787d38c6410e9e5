"""``ringguard.frame.assign_frame`` on pandas and Polars DataFrames."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

from conftest import make_str_keys, scaled
from ringguard import JumpHash, Maglev, Rendezvous, Ring
from ringguard.frame import assign_frame

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")

N = scaled(50_000, 2_000)
NODES = ["db1", "db2", "db3", "db4", "db5"]
PLACEMENTS = [Ring(NODES), Maglev(NODES), Rendezvous(NODES), JumpHash(NODES)]


@functools.cache
def _keys() -> tuple[str, ...]:
    return tuple(make_str_keys(N, 21))


def keys() -> list[str]:
    return list(_keys())


def pandas_frame() -> Any:
    return pd.DataFrame({"order": keys(), "cents": np.arange(N, dtype=np.int64)},
                        index=pd.RangeIndex(100, 100 + N))


def polars_frame() -> Any:
    return pl.DataFrame({"order": keys(), "cents": np.arange(N, dtype=np.int64)})


@pytest.mark.parametrize("placement", PLACEMENTS, ids=lambda p: type(p).__name__)
def test_pandas_node_column_equals_assign(placement: Any) -> None:
    df = pandas_frame()
    out = assign_frame(df, "order", placement)
    expected = np.asarray(placement.nodes, dtype=object)[placement.assign(keys())]
    assert isinstance(out["node"].dtype, pd.CategoricalDtype)
    assert list(out["node"].cat.categories) == list(placement.nodes)
    np.testing.assert_array_equal(out["node"].to_numpy(dtype=object), expected)
    np.testing.assert_array_equal(out["node"].cat.codes.to_numpy(), placement.assign(keys()))
    assert out.index.equals(df.index)  # rows keep their labels
    assert list(df.columns) == ["order", "cents"]  # the input is not modified
    assert out["cents"].tolist() == list(range(N))


@pytest.mark.parametrize("placement", PLACEMENTS, ids=lambda p: type(p).__name__)
def test_polars_node_column_equals_assign(placement: Any) -> None:
    df = polars_frame()
    out = assign_frame(df, "order", placement, column="shard")
    expected = np.asarray(placement.nodes, dtype=object)[placement.assign(keys())]
    assert out.schema["shard"] == pl.Enum(list(placement.nodes))
    assert out.get_column("shard").to_list() == expected.tolist()
    # The physical codes are the node indices.
    np.testing.assert_array_equal(out.get_column("shard").to_physical().to_numpy(),
                                  placement.assign(keys()))
    assert df.columns == ["order", "cents"]
    assert out.columns == ["order", "cents", "shard"]


@pytest.mark.parametrize("kind", ["pandas", "polars"])
def test_replica_columns_are_the_preference_list(kind: str) -> None:
    ring = Ring(NODES, vnodes=50)
    df = pandas_frame() if kind == "pandas" else polars_frame()
    out = assign_frame(df, "order", ring, replicas=3)
    prefs = ring.replicas(keys(), 3)
    for j, name in enumerate(["node", "node_1", "node_2"]):
        col = out[name]
        got = col.tolist() if kind == "pandas" else col.to_list()
        assert got == [NODES[i] for i in prefs[:, j].tolist()]
    assert "node_3" not in out.columns


def test_memory_shape_is_codes_not_strings() -> None:
    ring = Ring(NODES)
    pout = assign_frame(pandas_frame(), "order", ring, replicas=2)
    for name in ("node", "node_1"):
        codes = pout[name].cat.codes
        assert codes.dtype == np.int8  # one byte a row for 5 nodes
        # deep memory: the codes plus the five category strings, not N Python strings
        assert pout[name].memory_usage(deep=True, index=False) < N + 4096
    qout = assign_frame(polars_frame(), "order", ring)
    col = qout.get_column("node")
    assert col.to_physical().dtype in (pl.UInt8, pl.UInt16, pl.UInt32)
    assert col.estimated_size() <= 4 * N + 4096


def test_integer_and_categorical_key_columns() -> None:
    ring = Ring(NODES)
    ints = np.arange(-500, 500, dtype=np.int64)
    pout = assign_frame(pd.DataFrame({"id": ints}), "id", ring)
    qout = assign_frame(pl.DataFrame({"id": ints}), "id", ring)
    expected = [NODES[i] for i in ring.assign(ints).tolist()]
    assert pout["node"].tolist() == expected == qout["node"].to_list()
    skus = [f"sku{i % 13}" for i in range(300)]
    expected = [NODES[i] for i in ring.assign(skus).tolist()]
    assert assign_frame(pd.DataFrame({"k": pd.Categorical(skus)}), "k", ring)[
        "node"].tolist() == expected
    assert assign_frame(pl.DataFrame({"k": pl.Series(skus, dtype=pl.Categorical)}), "k",
                        ring)["node"].to_list() == expected


def test_existing_column_is_replaced_in_the_copy_only() -> None:
    ring = Ring(NODES)
    df = pd.DataFrame({"k": ["a", "b"], "node": ["old", "old"]})
    out = assign_frame(df, "k", ring)
    assert out["node"].tolist() == [ring.node_for("a"), ring.node_for("b")]
    assert df["node"].tolist() == ["old", "old"]


def test_empty_frames() -> None:
    ring = Ring(NODES)
    out = assign_frame(pd.DataFrame({"k": pd.Series([], dtype=object)}), "k", ring, replicas=2)
    assert len(out) == 0 and isinstance(out["node_1"].dtype, pd.CategoricalDtype)
    qout = assign_frame(pl.DataFrame({"k": pl.Series([], dtype=pl.String)}), "k", ring)
    assert qout.height == 0 and qout.schema["node"] == pl.Enum(NODES)


@pytest.mark.parametrize("kind", ["pandas", "polars"])
def test_errors(kind: str) -> None:
    ring = Ring(NODES)
    mk = pd.DataFrame if kind == "pandas" else pl.DataFrame
    df = mk({"k": ["a", "b"]})
    with pytest.raises(KeyError, match="'nope'"):
        assign_frame(df, "nope", ring)
    with pytest.raises(ValueError, match="key column"):
        assign_frame(df, "k", ring, column="k")
    with pytest.raises(ValueError, match="replicas"):
        assign_frame(df, "k", ring, replicas=0)
    with pytest.raises(TypeError, match="replicas"):
        assign_frame(df, "k", ring, replicas=2.0)  # type: ignore[arg-type]
    # A null key names its row, with the same exception from pandas and Polars.
    with pytest.raises(ValueError, match=r"keys\[1\]"):
        assign_frame(mk({"k": ["a", None]}), "k", ring)
    with pytest.raises(TypeError, match="DataFrame"):
        assign_frame(df["k"], "k", ring)
