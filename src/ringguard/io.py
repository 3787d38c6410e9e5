"""Streaming files through a placement: CSV, Parquet, Arrow IPC and NDJSON, by record batch.

Used by ``ringguard assign``. Needs pyarrow (``pip install 'ringguard[arrow]'``). Keys are
read through Arrow buffers (no per-row Python objects) and node names are written as a
dictionary-encoded column, so a million rows cost a million small ints, not strings.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["FORMATS", "assign_file", "detect_format"]

FORMATS = ("csv", "parquet", "arrow", "ndjson")
_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow",
             ".feather": "arrow", ".ipc": "arrow", ".ndjson": "ndjson", ".jsonl": "ndjson"}


def _pa() -> Any:
    try:
        import pyarrow
    except ImportError as exc:
        raise ImportError(
            "reading and writing files needs pyarrow: pip install 'ringguard[arrow]'"
        ) from exc
    return pyarrow


def detect_format(path: str | os.PathLike[str], given: str | None = None) -> str:
    """The file format: ``given`` if set, else from the suffix (ValueError if unknown)."""
    if given is not None:
        if given not in FORMATS:
            raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {given!r}")
        return given
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in _SUFFIXES:
        raise ValueError(
            f"cannot tell the format of {os.fspath(path)!r} from its suffix; "
            f"pass --format ({', '.join(FORMATS)})"
        )
    return _SUFFIXES[suffix]


def _batches(path: str, fmt: str, batch_rows: int) -> Iterator[Any]:
    pa = _pa()
    if fmt == "csv":
        import pyarrow.csv as pcsv

        reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 22))
        yield from reader
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
    elif fmt == "arrow":
        with pa.memory_map(path) as source:
            try:
                reader = pa.ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    yield reader.get_batch(i)
            except pa.ArrowInvalid:
                source.seek(0)
                yield from pa.ipc.open_stream(source)
    else:  # ndjson: pyarrow reads it whole, then it is cut into batches
        import pyarrow.json as pjson

        yield from pjson.read_json(path).to_batches(max_chunksize=batch_rows)


class _Writer:
    def __init__(self, path: str, fmt: str, schema: Any) -> None:
        pa = _pa()
        self.fmt = fmt
        if fmt == "csv":
            import pyarrow.csv as pcsv

            self.w = pcsv.CSVWriter(path, schema)
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            self.w = pq.ParquetWriter(path, schema)
        elif fmt == "arrow":
            self.w = pa.ipc.new_file(path, schema)
        else:
            self.f = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, batch: Any) -> None:
        if self.fmt == "ndjson":
            import json

            for row in batch.to_pylist():
                self.f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        elif self.fmt == "csv":
            self.w.write(batch)
        else:
            self.w.write_batch(batch)

    def close(self) -> None:
        if self.fmt == "ndjson":
            self.f.close()
        else:
            self.w.close()


def assign_file(
    placement: Any,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    key: str,
    *,
    replicas: int = 0,
    in_format: str | None = None,
    out_format: str | None = None,
    column: str = "node",
    batch_rows: int = 1 << 20,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Copy ``src`` to ``dst`` adding the node of every row (and ``replicas`` columns).

    Returns the number of rows. Raises ``KeyError`` naming the missing key column.
    """
    pa = _pa()
    fin = detect_format(src, in_format)
    fout = detect_format(dst, out_format if out_format else (in_format or None))
    names = pa.array(list(placement.nodes), type=pa.string())
    writer: _Writer | None = None
    rows = 0
    try:
        for batch in _batches(os.fspath(src), fin, batch_rows):
            if key not in batch.schema.names:
                raise KeyError(f"no column {key!r} in {os.fspath(src)} "
                               f"(columns: {', '.join(batch.schema.names)})")
            keys = batch.column(key)
            cols, fields = list(batch.columns), list(batch.schema)
            if replicas:
                prefs = placement.replicas(keys, replicas)
                labels = [column] + [f"{column}_{j}" for j in range(1, replicas)]
                for j, label in enumerate(labels):
                    cols.append(_names(pa, np.ascontiguousarray(prefs[:, j]), names, fout))
                    fields.append(pa.field(label, cols[-1].type))
            else:
                cols.append(_names(pa, placement.assign(keys), names, fout))
                fields.append(pa.field(column, cols[-1].type))
            out = pa.RecordBatch.from_arrays(cols, schema=pa.schema(fields))
            if writer is None:
                writer = _Writer(os.fspath(dst), fout, out.schema)
            writer.write(out)
            rows += out.num_rows
            if progress is not None:
                progress(rows)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # an empty input: still write an empty output with the column
        raise ValueError(f"{os.fspath(src)} holds no rows")
    return rows


def _names(pa: Any, idx: np.ndarray, names: Any, fmt: str) -> Any:
    """Node names for node indices: dictionary-encoded where the format keeps it."""
    indices = pa.array(np.asarray(idx, dtype=np.int32))
    arr = pa.DictionaryArray.from_arrays(indices, names)
    return arr.cast(pa.string()) if fmt == "csv" else arr
