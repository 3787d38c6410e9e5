"""``ringguard assign`` in a subprocess, over real files of every format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import scaled
from ringguard import Ring

pa = pytest.importorskip("pyarrow")
import pyarrow.csv as pcsv  # noqa: E402
import pyarrow.feather as feather  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

N = scaled(20_000, 2_000)
NODES = ["db1", "db2", "db3", "db4"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ringguard", "assign", *args],
                          capture_output=True, text=True, timeout=300)


def table() -> Any:
    return pa.table({"order_id": [f"order:{i}" for i in range(N)],
                     "total": np.arange(N, dtype=np.int64)})


def write(path: Path) -> None:
    t = table()
    suffix = path.suffix
    if suffix == ".csv":
        pcsv.write_csv(t, path)
    elif suffix == ".parquet":
        pq.write_table(t, path)
    elif suffix == ".arrow":
        feather.write_feather(t, path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in t.to_pylist()))


def read(path: Path) -> Any:
    suffix = path.suffix
    if suffix == ".csv":
        return pcsv.read_csv(path)
    if suffix == ".parquet":
        return pq.read_table(path)
    if suffix == ".arrow":
        return feather.read_table(path)
    import pyarrow.json as pjson

    return pjson.read_json(path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".arrow", ".ndjson"])
def test_every_format_gets_the_placement_of_every_row(tmp_path: Path, suffix: str) -> None:
    src, dst = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    write(src)
    out = run(str(src), "-o", str(dst), "--key", "order_id", "--nodes", ",".join(NODES))
    assert out.returncode == 0, out.stderr
    assert f"{N:,} rows" in out.stdout
    got = read(dst)
    keys = [f"order:{i}" for i in range(N)]
    expected = [NODES[i] for i in Ring(NODES).assign(keys).tolist()]
    assert got.column("node").cast(pa.string()).to_pylist() == expected
    assert got.column("total").to_pylist() == list(range(N))  # other columns unchanged


def test_replica_columns_and_a_placement_file(tmp_path: Path) -> None:
    ring = Ring(NODES, vnodes=64)
    spec = tmp_path / "ring.json"
    spec.write_text(ring.to_json())
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    write(src)
    out = run(str(src), "-o", str(dst), "--key", "order_id", "--placement", str(spec),
              "--replicas", "2")
    assert out.returncode == 0, out.stderr
    got = pq.read_table(dst)
    prefs = ring.replicas([f"order:{i}" for i in range(N)], 2)
    for j, name in enumerate(["node", "node_1"]):
        col = got.column(name)
        assert pa.types.is_dictionary(col.type)  # names stored once, rows as small ints
        assert col.cast(pa.string()).to_pylist() == [NODES[i] for i in prefs[:, j].tolist()]


def test_user_mistakes_exit_2_without_traceback(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    write(src)
    cases = [
        [str(src), "-o", str(tmp_path / "o.csv"), "--key", "nope", "--nodes", "a,b"],
        [str(tmp_path / "missing.csv"), "-o", str(tmp_path / "o.csv"), "--key", "k",
         "--nodes", "a"],
        [str(src), "-o", str(tmp_path / "o.xyz"), "--key", "order_id", "--nodes", "a"],
        [str(src), "-o", str(tmp_path / "o.csv"), "--key", "order_id"],
    ]
    for args in cases:
        out = run(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert "Traceback" not in out.stderr and "error:" in out.stderr


def test_parquet_encodings_and_compression(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    t = table().append_column("country", pa.array([["de", "fr", "us"][i % 3]
                                                   for i in range(N)]))
    pq.write_table(t, src)
    out = run(str(src), "-o", str(dst), "--key", "order_id", "--nodes", ",".join(NODES),
              "--compression", "zstd")
    assert out.returncode == 0, out.stderr
    meta = pq.ParquetFile(dst).metadata.row_group(0)
    cols = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert all(c.compression == "ZSTD" for c in cols.values())
    # Unique keys: plain (a dictionary would only cost time); a few countries and the
    # node names: dictionary-encoded.
    assert "RLE_DICTIONARY" not in cols["order_id"].encodings
    assert "RLE_DICTIONARY" in cols["country"].encodings
    assert "RLE_DICTIONARY" in cols["node"].encodings
    assert cols["country"].is_stats_set
    got = pq.read_table(dst)
    assert got.column("country").to_pylist() == t.column("country").to_pylist()

    arrow_dst = tmp_path / "out.arrow"
    out = run(str(src), "-o", str(arrow_dst), "--key", "order_id", "--nodes", "a,b",
              "--compression", "lz4")
    assert out.returncode == 0, out.stderr
    assert feather.read_table(arrow_dst).num_rows == N
    for bad in (["-o", str(tmp_path / "o.csv"), "--compression", "zstd"],
                ["-o", str(tmp_path / "o.arrow"), "--compression", "snappy"]):
        out = run(str(src), "--key", "order_id", "--nodes", "a", *bad)
        assert out.returncode == 2 and "compression" in out.stderr, out.stderr


def test_parquet_output_mirrors_the_input_codecs(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(table(), src, compression={"order_id": "none", "total": "zstd"})
    out = run(str(src), "-o", str(dst), "--key", "order_id", "--nodes", ",".join(NODES),
              "--replicas", "2")
    assert out.returncode == 0, out.stderr
    meta = pq.ParquetFile(dst).metadata.row_group(0)
    codecs = {meta.column(i).path_in_schema: meta.column(i).compression
              for i in range(meta.num_columns)}
    # Each input column keeps its codec; the added ones take the key column's.
    assert codecs == {"order_id": "UNCOMPRESSED", "total": "ZSTD",
                      "node": "UNCOMPRESSED", "node_1": "UNCOMPRESSED"}
    # --compression still overrides, and non-Parquet input gives snappy.
    out = run(str(src), "-o", str(dst), "--key", "order_id", "--nodes", "a,b",
              "--compression", "gzip")
    assert out.returncode == 0, out.stderr
    meta = pq.ParquetFile(dst).metadata.row_group(0)
    assert {meta.column(i).compression for i in range(meta.num_columns)} == {"GZIP"}
    csv_src = tmp_path / "in.csv"
    write(csv_src)
    out = run(str(csv_src), "-o", str(dst), "--key", "order_id", "--nodes", "a,b")
    assert out.returncode == 0, out.stderr
    meta = pq.ParquetFile(dst).metadata.row_group(0)
    assert {meta.column(i).compression for i in range(meta.num_columns)} == {"SNAPPY"}
    assert pq.read_table(dst).num_rows == N


def test_assign_does_not_import_pandas(tmp_path: Path) -> None:
    """``pa.array`` imports pandas when it is installed (~0.3 s a run): assign avoids it,
    for string and integer keys."""
    pytest.importorskip("pandas")
    src = tmp_path / "in.parquet"
    write(src)
    code = ("import sys\nfrom ringguard.cli import main\n"
            "for key in ('order_id', 'total'):\n"
            "    assert main(['assign', sys.argv[1], '-o', sys.argv[2], '--key', key,\n"
            "                 '--nodes', 'a,b,c', '--replicas', '2']) == 0\n"
            "assert 'pandas' not in sys.modules, 'pandas was imported'\n")
    out = subprocess.run([sys.executable, "-c", code, str(src), str(tmp_path / "o.parquet")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = pq.read_table(tmp_path / "o.parquet")
    expected = Ring(["a", "b", "c"]).replicas(np.arange(N), 2)[:, 1]
    assert got.column("node_1").cast(pa.string()).to_pylist() == [
        "abc"[i] for i in expected.tolist()]
