"""Node names as a column of a pandas or Polars DataFrame.

:func:`assign_frame` places one key column and adds the owning node (and, optionally, the
rest of the preference list) as a categorical column: pandas ``Categorical`` or Polars
``Enum`` whose categories are ``placement.nodes`` in order, so the codes *are* the node
indices that ``placement.assign`` returns. A million rows cost a million small integers
(one byte each for up to 127 nodes in pandas, 255 in Polars), never a million Python
strings. Neither pandas nor Polars is imported unless a frame of theirs is passed in.

For Dask DataFrames use :mod:`ringguard.dask`; for files, :func:`ringguard.io.assign_file`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["assign_frame"]


def _labels(column: str, n: int) -> list[str]:
    return [column] + [f"{column}_{j}" for j in range(1, n)]


def _indices(placement: Any, keys: Any, n: int) -> np.ndarray:
    """``(rows, n)`` node indices: the preference list, or the primary only for ``n == 1``."""
    if n == 1:
        return np.asarray(placement.assign(keys)).reshape(-1, 1)
    return np.asarray(placement.replicas(keys, n))


def _pandas(df: Any, key: str, placement: Any, labels: list[str]) -> Any:
    import pandas as pd

    idx = _indices(placement, df[key], len(labels))
    categories = pd.Index(list(placement.nodes), dtype=object)
    dtype = pd.CategoricalDtype(categories, ordered=False)
    out = df.copy(deep=False)  # the caller's frame keeps its columns
    for j, label in enumerate(labels):
        out[label] = pd.Categorical.from_codes(np.ascontiguousarray(idx[:, j]), dtype=dtype)
    return out


def _polars(df: Any, key: str, placement: Any, labels: list[str]) -> Any:
    import polars as pl

    nodes = list(placement.nodes)
    enum = pl.Enum(nodes)
    idx = _indices(placement, df.get_column(key), len(labels))
    codes = list(range(len(nodes)))
    cols = [
        pl.Series(label, np.ascontiguousarray(idx[:, j])).replace_strict(
            codes, nodes, return_dtype=enum)
        for j, label in enumerate(labels)
    ]
    return df.with_columns(cols)  # a new frame; Polars frames are never modified in place


def assign_frame(
    df: Any,
    key: str,
    placement: Any,
    column: str = "node",
    *,
    replicas: int | None = None,
) -> Any:
    """A copy of ``df`` with the node of every row's ``key`` as a categorical ``column``.

    Parameters
    ----------
    df
        A pandas or Polars DataFrame (not modified).
    key
        The key column: str, bytes or integer values (the key rule; nulls raise).
    placement
        Any ringguard placement (``Ring``, ``Maglev``, ``Rendezvous``, ``JumpHash``, ...).
    column
        Name of the added column (default ``"node"``). An existing column of that name is
        replaced, as ``DataFrame.assign`` would.
    replicas
        With ``n >= 2``, the whole preference list: ``column`` (the primary), then
        ``{column}_1`` ... ``{column}_{n-1}`` (standbys in order). ``None`` or 1: primary only.

    Returns
    -------
    DataFrame
        Same type as ``df``; pandas columns are ``Categorical`` and Polars columns ``Enum``,
        both with categories ``placement.nodes`` in order (code ``i`` = ``nodes[i]``).

    Raises
    ------
    KeyError
        ``key`` is not a column of ``df`` (the message names it).
    TypeError, ValueError
        ``df`` is not a pandas/Polars DataFrame, ``replicas`` is not a positive int, an
        added column would overwrite ``key``, or a key breaks the key rule.

    Examples
    --------
    >>> import pandas as pd
    >>> from ringguard import Ring
    >>> ring = Ring(["db1", "db2", "db3"])
    >>> out = assign_frame(pd.DataFrame({"order": ["o1", "o2"]}), "order", ring, replicas=2)
    >>> list(out.columns), str(out["node"].dtype)
    (['order', 'node', 'node_1'], 'category')
    """
    if replicas is None:
        n = 1
    elif isinstance(replicas, (bool, np.bool_)) or not isinstance(replicas, (int, np.integer)):
        raise TypeError(f"replicas: expected an int, got {type(replicas).__name__}")
    else:
        n = int(replicas)
        if n < 1:
            raise ValueError(f"replicas: must be >= 1, got {n}")
    if not isinstance(column, str) or not column:
        raise ValueError(f"column: expected a non-empty str, got {column!r}")
    module = type(df).__module__ or ""
    kind = "pandas" if module.startswith("pandas") else (
        "polars" if module.startswith("polars") else "")
    if kind == "" or type(df).__name__ != "DataFrame":
        hint = " (for Dask use ringguard.dask.assign)" if module.startswith("dask") else ""
        raise TypeError(
            f"df: expected a pandas or Polars DataFrame, got {module}.{type(df).__name__}{hint}"
        )
    columns = list(df.columns)
    if key not in columns:
        raise KeyError(f"no column {key!r} in the frame (columns: "
                       f"{', '.join(map(str, columns))})")
    labels = _labels(column, n)
    if key in labels:
        raise ValueError(f"column: {key!r} is the key column; choose another column name")
    if kind == "pandas":
        return _pandas(df, key, placement, labels)
    return _polars(df, key, placement, labels)
