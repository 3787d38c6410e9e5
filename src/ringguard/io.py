"""Streaming files through a placement: CSV, Parquet, Arrow IPC and NDJSON, by record batch.

Used by ``ringguard assign``. Needs pyarrow (``pip install 'ringguard[arrow]'``). Keys are
read through Arrow buffers (no per-row Python objects) and node names are written as a
dictionary-encoded column, so a million rows cost a million small ints, not strings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["COMPRESSIONS", "FORMATS", "assign_file", "detect_format", "parquet_codecs"]

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

        # memory_map: column chunks are decompressed straight from the page cache instead
        # of being read() into a freshly allocated buffer first (less copying, less
        # page zeroing by the kernel).
        yield from pq.ParquetFile(path, memory_map=True).iter_batches(batch_size=batch_rows)
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


COMPRESSIONS = ("none", "snappy", "lz4", "zstd", "gzip")
# Parquet codec names in a footer -> what ParquetWriter takes.
_PARQUET_CODECS = {"UNCOMPRESSED": "none", "SNAPPY": "snappy", "LZ4": "lz4", "LZ4_RAW": "lz4",
                   "ZSTD": "zstd", "GZIP": "gzip", "BROTLI": "brotli"}


def parquet_codecs(path: str | os.PathLike[str]) -> dict[str, str]:
    """The compression of every top-level column of a Parquet file (from its footer, first
    row group), as ParquetWriter names them; empty if the file has no row groups, nested
    columns or a codec pyarrow cannot write."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    if meta.num_row_groups == 0:
        return {}
    rg = meta.row_group(0)
    out = {}
    for i in range(rg.num_columns):
        col = rg.column(i)
        codec = _PARQUET_CODECS.get(str(col.compression).upper())
        if codec is None or "." in col.path_in_schema:
            return {}
        out[col.path_in_schema] = codec
    return out
_SAMPLE = 16_384  # rows of the first batch looked at to choose the Parquet encodings


def _high_cardinality(pa: Any, batch: Any) -> set[str]:
    """Columns of ``batch`` whose first rows are mostly distinct (keys, ids, free text):
    Parquet dictionary encoding only costs time there (the writer builds a dictionary,
    then falls back to plain), and min/max statistics of random strings prune nothing.

    Counted with a Python set over the sample (~10 ms): ``pyarrow.compute`` would do it
    faster but costs ~140 ms to import, on every ``ringguard assign`` run.
    """
    out = set()
    head = batch.slice(0, _SAMPLE)
    for name, col in zip(head.schema.names, head.columns, strict=True):
        t = col.type
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)
                or pa.types.is_binary(t) or pa.types.is_large_binary(t)
                or pa.types.is_integer(t)):
            continue
        n = len(col)
        if n >= 1024 and len(set(col.to_pylist())) > n // 2:
            out.add(name)
    return out


class _Writer:
    def __init__(self, path: str, fmt: str, schema: Any, *,
                 compression: str | dict[str, str] | None = None,
                 first: Any = None, plain: frozenset[str] = frozenset()) -> None:
        pa = _pa()
        self.fmt = fmt
        if fmt == "csv":
            import pyarrow.csv as pcsv

            self.w = pcsv.CSVWriter(path, schema)
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            busy = _high_cardinality(pa, first) if first is not None else set()
            dict_cols = [n for n in schema.names if n not in busy]
            stats_cols = [n for n in schema.names if n not in busy and n not in plain]
            self.w = pq.ParquetWriter(path, schema, compression=compression or "snappy",
                                      use_dictionary=dict_cols, write_statistics=stats_cols)
        elif fmt == "arrow":
            assert not isinstance(compression, dict)
            opts = pa.ipc.IpcWriteOptions(
                compression=None if compression in (None, "none") else compression)
            self.w = pa.ipc.new_file(path, schema, options=opts)
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
    compression: str | None = None,
    passthrough: bool = True,
) -> int:
    """Copy ``src`` to ``dst`` adding the node of every row (and ``replicas`` columns).

    ``compression`` applies to Parquet and Arrow IPC output: one of :data:`COMPRESSIONS`.
    By default Arrow IPC output is uncompressed, and Parquet output is compressed like the
    input: Parquet in, every column keeps its input codec (an uncompressed file stays
    uncompressed and fast to write, a zstd file stays small) and the added node columns
    take the key column's codec; any other input gives snappy. Parquet output keeps
    dictionary encoding and statistics for every column except those whose first 16k
    rows are mostly distinct (unique keys, ids): there they cost time and buy nothing.
    The node columns are always dictionary-encoded.

    Parquet in and Parquet out take a faster path, *column-chunk passthrough*
    (:func:`ringguard._parquet.splice_assign`): the input's bytes are copied unchanged
    (every column keeps its pages, encodings, statistics and codec), only the key column
    is read, and the node column(s) are appended as new column chunks (dictionary-encoded,
    the key column's codec, no statistics) with a footer extending the input's. It falls
    back to re-encoding every column as described above when passthrough does not apply:
    an encrypted footer or columns, a nested schema, column chunks in other files, a
    codec pyarrow cannot write, an input without rows, many small row groups (a few
    thousand rows each: re-encoding is faster there, see
    :func:`ringguard._parquet.worth_it`), a non-Parquet input or output, or a
    ``compression`` other than the one every input column chunk already has.
    ``passthrough=False`` forces re-encoding.

    Returns the number of rows. Raises ``KeyError`` naming the missing key column,
    ``ValueError`` if the input already has a column named like an added one, and
    :class:`ringguard._parquet.ParquetFooterError` (a ``ValueError``) for a Parquet input
    whose footer is malformed.
    """
    pa = _pa()
    fin = detect_format(src, in_format)
    fout = detect_format(dst, out_format if out_format else (in_format or None))
    if compression is not None:
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression: expected one of {', '.join(COMPRESSIONS)}, "
                             f"got {compression!r}")
        if fout not in ("parquet", "arrow"):
            raise ValueError(f"compression: applies to parquet and arrow output, not {fout}")
        if fout == "arrow" and compression not in ("none", "lz4", "zstd"):
            raise ValueError("compression: arrow output takes none, lz4 or zstd")
    names = _string_array(pa, placement.nodes)
    if os.path.exists(dst) and os.path.samefile(src, dst):
        raise ValueError(f"the output {os.fspath(dst)!r} is the input file")
    labels = [column] + [f"{column}_{j}" for j in range(1, replicas)]
    if passthrough and fin == "parquet" and fout == "parquet":
        from . import _parquet

        plan = _parquet.splice_plan(src, key)
        if plan.ok:
            _no_clash(labels, plan.names, src)
        if (plan.ok and plan.codec is not None
                and (compression is None or plan.codecs == {compression})):
            fields = [pa.field(label, pa.dictionary(pa.int32(), pa.string()))
                      for label in labels]

            seen = 0

            def compute(keys: Any) -> list[Any]:
                nonlocal seen
                try:
                    if replicas:
                        prefs = placement.replicas(keys, replicas)
                        out = [_names(pa, np.ascontiguousarray(prefs[:, j]), names, fout)
                               for j in range(replicas)]
                    else:
                        out = [_names(pa, placement.assign(keys), names, fout)]
                except (TypeError, ValueError) as exc:
                    raise _at_row(exc, seen, src, key) from exc
                seen += len(keys)
                return out

            return _parquet.splice_assign(plan, src, dst, key, compute, fields,
                                          batch_rows=batch_rows, progress=progress)
    from ._parquet import sibling_tmp

    target = os.fspath(dst)
    tmp = sibling_tmp(target)  # renamed over dst once complete
    writer: _Writer | None = None
    rows = 0
    done = False
    try:
        for batch in _batches(os.fspath(src), fin, batch_rows):
            if key not in batch.schema.names:
                raise KeyError(f"no column {key!r} in {os.fspath(src)} "
                               f"(columns: {', '.join(batch.schema.names)})")
            keys = batch.column(key)
            if writer is None:
                _no_clash(labels, batch.schema.names, src)
            cols, fields = list(batch.columns), list(batch.schema)
            try:
                if replicas:
                    prefs = placement.replicas(keys, replicas)
                else:
                    idx = placement.assign(keys)
            except (TypeError, ValueError) as exc:
                raise _at_row(exc, rows, src, key) from exc
            if replicas:
                for j, label in enumerate(labels):
                    cols.append(_names(pa, np.ascontiguousarray(prefs[:, j]), names, fout))
                    fields.append(pa.field(label, cols[-1].type))
            else:
                cols.append(_names(pa, idx, names, fout))
                fields.append(pa.field(column, cols[-1].type))
            out = pa.RecordBatch.from_arrays(cols, schema=pa.schema(fields))
            if writer is None:
                added = frozenset(f.name for f in fields[batch.num_columns:])
                codec: str | dict[str, str] | None = compression
                if codec is None and fout == "parquet" and fin == "parquet":
                    codec = _mirrored(parquet_codecs(src), out.schema.names, key) or None
                writer = _Writer(tmp or target, fout, out.schema, compression=codec,
                                 first=batch, plain=added)
            writer.write(out)
            rows += out.num_rows
            if progress is not None:
                progress(rows)
        if writer is None:  # an empty input
            raise ValueError(f"{os.fspath(src)} holds no rows")
        w, writer = writer, None
        w.close()  # may fail (a full disk): then nothing is renamed
        if tmp:
            os.replace(tmp, target)
        done = True
    finally:
        if writer is not None:
            writer.close()
        if not done and tmp and os.path.exists(tmp):
            os.unlink(tmp)
    return rows


def _at_row(exc: Exception, base: int, src: str | os.PathLike[str], key: str) -> Exception:
    """A bad-key error with the row of the file (the key rule counts within a batch)."""
    m = re.match(r"keys\[(\d+)\]: (.*)", str(exc), re.S)
    if m is None or type(exc) not in (TypeError, ValueError):
        return exc
    return type(exc)(f"{os.fspath(src)}: row {base + int(m[1])}, column {key!r}: {m[2]}")


def _no_clash(labels: list[str], names: Any, src: str | os.PathLike[str]) -> None:
    clash = [label for label in labels if label in names]
    if clash:
        raise ValueError(f"{os.fspath(src)} already has a column {clash[0]!r}; "
                         "name the node column otherwise (--column)")


def _mirrored(codecs: dict[str, str], names: list[str], key: str) -> dict[str, str]:
    """Per-column codecs for the output: the input's, and the key column's for added ones."""
    if not codecs or key not in codecs:
        return {}
    return {n: codecs.get(n, codecs[key]) for n in names}


def _string_array(pa: Any, items: Any) -> Any:
    """A pyarrow string array of ``items`` built from its buffers.

    ``pa.array`` is avoided on purpose: it imports pandas when pandas is installed, which
    costs a third of a second per ``ringguard assign`` run for nothing.
    """
    encoded = [str(x).encode("utf-8") for x in items]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return pa.StringArray.from_buffers(len(encoded), pa.py_buffer(offsets),
                                       pa.py_buffer(b"".join(encoded)))


def _names(pa: Any, idx: np.ndarray, names: Any, fmt: str) -> Any:
    """Node names for node indices: dictionary-encoded where the format keeps it.

    The int32 indices are wrapped, not copied (and not passed through ``pa.array``, which
    would import pandas).
    """
    idx = np.ascontiguousarray(idx, dtype=np.int32)
    indices = pa.Array.from_buffers(pa.int32(), len(idx), [None, pa.py_buffer(idx)])
    arr = pa.DictionaryArray.from_arrays(indices, names)
    return arr.cast(pa.string()) if fmt == "csv" else arr
