"""The Dask path on a real LocalCluster with two worker processes."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from conftest import scaled
from ringguard import Maglev, Ring

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

N = scaled(100_000, 4_000)  # the frame travels in the graph: keep it under 10 MiB


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
    )
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def frame() -> Any:
    df = pd.DataFrame(
        {"order": [f"order:{i}" for i in range(N)], "cents": np.arange(N, dtype=np.int64)}
    )
    return dd.from_pandas(df, npartitions=8)


def cached_placements() -> int:
    from ringguard import dask as rgd

    return len(rgd._cache)


@pytest.mark.parametrize(
    "placement",
    [Ring([f"db{i}" for i in range(5)]), Maglev([f"db{i}" for i in range(5)])],
    ids=repr,
)
def test_assign_on_a_cluster_equals_single_machine(client: Any, placement: Any) -> None:
    from ringguard.dask import assign

    out = assign(frame(), "order", placement).compute()
    keys = [f"order:{i}" for i in range(N)]
    expected = [placement.nodes[i] for i in placement.assign(keys).tolist()]
    assert out.sort_values("cents")["node"].astype(str).tolist() == expected
    # Shipped as its definition (bytes of JSON), rebuilt once per worker process.
    assert len(pickle.dumps(placement)) < 2_000
    counts = client.run(cached_placements)
    assert len(counts) == 2 and all(c >= 1 for c in counts.values())


def test_partition_by_node_gives_one_node_per_partition(client: Any) -> None:
    from ringguard.dask import partition_by_node

    ring = Ring(["a", "b", "c", "d"])
    parts = partition_by_node(frame(), "order", ring)
    assert parts.npartitions == 4
    total = 0
    for i in range(4):
        part = parts.get_partition(i).compute()
        assert set(part["node"].tolist()) <= {i}
        assert (ring.assign(part["order"]) == i).all()
        total += len(part)
    assert total == N


def test_bad_arguments() -> None:
    from ringguard.dask import assign

    with pytest.raises(KeyError, match="nope"):
        assign(frame(), "nope", Ring(["a"]))
    with pytest.raises(TypeError, match="dask DataFrame"):
        assign(pd.DataFrame({"k": ["x"]}), "k", Ring(["a"]))
