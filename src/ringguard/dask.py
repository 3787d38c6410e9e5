"""Placement over Dask DataFrames (``pip install 'ringguard[dask]'``).

The placement travels to the workers as its JSON definition (a few hundred bytes, not its
arrays) and is rebuilt once per worker process, then reused by every partition there.

Examples
--------
>>> import dask.dataframe as dd, pandas as pd                  # doctest: +SKIP
>>> from ringguard import Ring
>>> from ringguard.dask import assign, partition_by_node
>>> ddf = dd.from_pandas(pd.DataFrame({"order": [f"o{i}" for i in range(1000)]}), 4)
>>> placed = assign(ddf, "order", Ring(["db1", "db2"]))       # adds a "node" column
>>> per_node = partition_by_node(ddf, "order", Ring(["db1", "db2"]))  # partition i = node i
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

__all__ = ["assign", "partition_by_node", "placement_from_json"]

_cache: dict[str, Any] = {}
_cache_lock = threading.Lock()


def _dd() -> Any:
    try:
        import dask.dataframe as dd
    except ImportError as exc:
        raise ImportError("the Dask integration needs dask: pip install 'ringguard[dask]'") from exc
    return dd


def placement_from_json(text: str) -> Any:
    """The placement of a JSON definition, built once per process and then reused."""
    with _cache_lock:
        p = _cache.get(text)
        if p is None:
            from .placement import from_json

            p = _cache[text] = from_json(text)
            if len(_cache) > 64:  # a long-lived worker seeing many placements
                _cache.pop(next(iter(_cache)))
        return p


def _assign_part(df: Any, key: str, spec: str, column: str, as_index: bool) -> Any:
    import pandas as pd

    p = placement_from_json(spec)
    idx = p.assign(df[key]) if len(df) else np.empty(0, dtype=np.int32)
    out = df.copy(deep=False)  # the partition's columns are shared, not copied
    if as_index:
        out[column] = idx.astype(np.int32)
    else:
        out[column] = pd.Categorical.from_codes(idx, categories=list(p.nodes))
    return out


def assign(ddf: Any, key: str, placement: Any, *, column: str = "node") -> Any:
    """``ddf`` with a categorical ``column`` naming the node of each row's ``key``.

    Parameters
    ----------
    ddf
        A Dask DataFrame.
    key
        The key column (str, bytes or integer values).
    placement
        Any ringguard placement.
    """
    dd = _dd()
    if not isinstance(ddf, dd.DataFrame):
        raise TypeError(f"ddf: expected a dask DataFrame, got {type(ddf).__name__}")
    if key not in ddf.columns:
        raise KeyError(f"no column {key!r} (columns: {', '.join(map(str, ddf.columns))})")
    import pandas as pd

    spec = placement.to_json()
    meta = ddf._meta.copy()
    meta[column] = pd.Categorical([], categories=list(placement.nodes))
    return ddf.map_partitions(_assign_part, key, spec, column, False, meta=meta)


def partition_by_node(ddf: Any, key: str, placement: Any, *, column: str = "node") -> Any:
    """Repartition so that partition ``i`` holds exactly the rows of ``placement.nodes[i]``.

    Each output partition can be written straight to its node. The node index becomes the
    index of the result (``column`` holds it), and the partitions come in node order.
    """
    dd = _dd()
    if not isinstance(ddf, dd.DataFrame):
        raise TypeError(f"ddf: expected a dask DataFrame, got {type(ddf).__name__}")
    if key not in ddf.columns:
        raise KeyError(f"no column {key!r} (columns: {', '.join(map(str, ddf.columns))})")
    spec = placement.to_json()
    n = len(placement.nodes)
    meta = ddf._meta.copy()
    meta[column] = np.empty(0, dtype=np.int32)
    tagged = ddf.map_partitions(_assign_part, key, spec, column, True, meta=meta)
    # Divisions 0, 1, ..., n-1, n-1: partition i holds index values in [i, i+1), i.e. node i.
    divisions = list(range(n)) + [n - 1] if n > 1 else [0, 0]
    return tagged.set_index(column, divisions=divisions, drop=False)
