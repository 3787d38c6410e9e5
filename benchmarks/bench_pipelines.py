"""End-to-end ``ringguard assign`` on a Parquet file of string keys, on one core.

Builds (once, cached by size and seed) a Parquet file of N string keys ``order:<id>``
(random ids below 10^12, fixed seed) plus an int64 column, then runs the real console
script ``ringguard assign IN -o OUT --key order_id --nodes ...`` pinned to one CPU with
``taskset`` (when available) and reports rows/s measured around the whole process
(interpreter start, reading, hashing, writing the output file with the node column), and
the CPU time of the process (user + system, from ``getrusage``): on a shared, busy machine
the wall time includes waiting for the core, the CPU time does not. The
output is checked against ``Ring.assign`` on a sample of rows. Target: >= 5 M rows/s.

Side by side, the same way (own process, same core, interleaved runs), it measures:

* the re-encoding writer: ``ringguard.io.assign_file(..., passthrough=False)``, what
  ``ringguard assign`` did before column-chunk passthrough (every input column decoded
  and re-encoded by pyarrow's ``ParquetWriter``);
* the pyarrow floor: pyarrow alone copying the same file with the same reader and writer
  settings (memory map, same batches, per-column codecs, no dictionary or statistics on
  mostly distinct columns), without ringguard and without the node column. No
  re-encoding writer can beat it; passthrough can, because it never re-encodes the
  input's columns (it reads the key column, copies the rest byte for byte).

``--input-compression`` builds the input with another codec (the output mirrors it);
several codecs, or ``--all`` (none, snappy, lz4, zstd), run one after the other and end
with a summary table.

Usage::

    python benchmarks/bench_pipelines.py                    # 20M keys (~300 MB input)
    python benchmarks/bench_pipelines.py --rows 2000000     # quicker, indicative
    python benchmarks/bench_pipelines.py --input-compression none   # uncompressed in and out
    python benchmarks/bench_pipelines.py --all              # none, snappy, lz4, zstd in one run
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_ROWS_PER_S = 5e6


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


FLOOR = """
import os, sys, resource, time
t0 = time.perf_counter()
import pyarrow.parquet as pq
src, dst, key, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
f = pq.ParquetFile(src, memory_map=True)
rg = f.metadata.row_group(0)
codecs = {rg.column(i).path_in_schema: rg.column(i).compression.lower()
          for i in range(rg.num_columns)}
codecs = {k: ("none" if v == "uncompressed" else "lz4" if v == "lz4_raw" else v)
          for k, v in codecs.items()}
rows, w = 0, None
for b in f.iter_batches(batch_size=batch):
    if w is None:  # ringguard's rule: no dictionary/statistics on mostly distinct columns
        head = b.slice(0, 16384)
        busy = {n for n, c in zip(head.schema.names, head.columns)
                if len(c) >= 1024 and len(set(c.to_pylist())) > len(c) // 2}
        keep = [n for n in b.schema.names if n not in busy]
        w = pq.ParquetWriter(dst, b.schema, compression=codecs, use_dictionary=keep,
                             write_statistics=keep)
    w.write_batch(b)
    rows += b.num_rows
w.close()
print(f"{rows} rows copied by pyarrow")
"""


def make_input(path: Path, rows: int, seed: int, compression: str = "snappy") -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    with pq.ParquetWriter(path, pa.schema([("order_id", pa.string()), ("cents", pa.int64())]),
                          compression=compression) as w:
        step = 2_000_000
        for lo in range(0, rows, step):
            n = min(step, rows - lo)
            ids = pa.array(rng.integers(0, 10**12, n, dtype=np.int64)).cast(pa.string())
            keys = pc.binary_join_element_wise("order:", ids, "")
            cents = pa.array(rng.integers(100, 100_000, n, dtype=np.int64))
            w.write_table(pa.table({"order_id": keys, "cents": cents}), row_group_size=1 << 20)


REENCODE = """
import sys
from ringguard import Ring
from ringguard.io import assign_file
src, dst, key, nodes = sys.argv[1:5]
rows = assign_file(Ring(nodes.split(",")), src, dst, key, passthrough=False)
print(f"{rows} rows re-encoded by ringguard")
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3, help="runs; the best is reported")
    ap.add_argument("--dir", default=None, help="work directory (default: a temp dir)")
    ap.add_argument("--format", default="parquet", choices=("parquet", "arrow"),
                    help="output format (input is always Parquet)")
    ap.add_argument("--compression", default=None,
                    help="passed to ringguard assign --compression (default: its default, "
                    "the input's codecs)")
    ap.add_argument("--input-compression", nargs="+", default=["snappy"],
                    choices=("none", "snappy", "lz4", "zstd"),
                    help="codec(s) of the generated input file (default snappy); several "
                    "run one after the other and end in one summary table")
    ap.add_argument("--all", action="store_true",
                    help="the same as --input-compression none snappy lz4 zstd")
    ap.add_argument("--no-floor", action="store_true",
                    help="skip the pyarrow-only copy of the same file")
    ap.add_argument("--no-reencode", action="store_true",
                    help="skip ringguard's re-encoding writer (assign_file(passthrough=False))")
    args = ap.parse_args()
    codecs = ["none", "snappy", "lz4", "zstd"] if args.all else args.input_compression

    import pyarrow as pa

    import ringguard

    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    print(f"ringguard assign, end to end: {args.rows:,} string keys, Parquet in "
          f"({', '.join(codecs)}), {args.format} out (compression "
          f"{args.compression or 'default'}), "
          f"{args.nodes} nodes, core {ringguard.BACKEND}, "
          f"{'pinned to CPU 0 (taskset)' if pin else 'NOT pinned'}")
    print(f"pyarrow {pa.__version__}, numpy {np.__version__}, python "
          f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load_average()}")
    summary = []
    for codec in codecs:
        res = run_one(args, codec, pin)
        if res is None:
            return 1
        summary.append((codec, *res))
    if len(summary) > 1:
        print("\nsummary, best wall time of each (M rows/s; per CPU-second in brackets):")
        print(f"{'input codec':<12} {'assign':>16} {'re-encode':>16} {'pyarrow floor':>16}"
              "  target >= 5")
        for codec, fast, slow, floor in summary:
            cells = [f"{args.rows / w / 1e6:6.2f} ({args.rows / c / 1e6:5.2f})"
                     if w != float("inf") else f"{'-':>14}" for w, c in (fast, slow, floor)]
            verdict = "met" if args.rows / fast[0] >= TARGET_ROWS_PER_S else "NOT met"
            print(f"{codec:<12} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16}  {verdict}")
    print(f"load average at the end {load_average()}")
    return 0


Best = tuple[float, float]  # (wall s, CPU s)


def run_one(args: argparse.Namespace, codec: str,
            pin: list[str]) -> tuple[Best, Best, Best] | None:
    """Interleaved runs of ``ringguard assign``, the re-encoding writer and the floor."""
    import resource

    import pyarrow as pa
    import pyarrow.parquet as pq

    from ringguard import Ring

    work = Path(args.dir) if args.dir else Path(tempfile.gettempdir()) / "ringguard-bench"
    work.mkdir(parents=True, exist_ok=True)
    suffix = "" if codec == "snappy" else f"-{codec}"
    src = work / f"keys-{args.rows}-{args.seed}{suffix}.parquet"
    if not src.exists():
        t0 = time.perf_counter()
        make_input(src, args.rows, args.seed, codec)
        print(f"wrote {src} ({src.stat().st_size / 2**20:.0f} MiB) in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    dst = work / f"out.{args.format}"
    nodes = ",".join(f"node{i}" for i in range(args.nodes))
    exe = shutil.which("ringguard")
    cmd = [exe] if exe else [sys.executable, "-m", "ringguard"]
    cmd = [*cmd, "assign", str(src), "-o", str(dst), "--key", "order_id", "--nodes", nodes]
    if args.compression:
        cmd += ["--compression", args.compression]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ARROW_NUM_THREADS": "1"}
    print(f"\n{codec} input ({src.stat().st_size / 2**20:.0f} MiB), load average "
          f"{load_average()}")

    def timed(argv: list[str]) -> tuple[float, float, str] | None:
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run([*pin, *argv], capture_output=True, text=True, env=env)
        dt = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return None
        return dt, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), out.stdout

    others: dict[str, list[str]] = {}
    if args.format == "parquet" and not args.compression:
        if not args.no_reencode:
            others["re-encode"] = [sys.executable, "-c", REENCODE, str(src),
                                   str(work / "reencoded.parquet"), "order_id", nodes]
        if not args.no_floor:
            others["floor"] = [sys.executable, "-c", FLOOR, str(src),
                               str(work / "floor.parquet"), "order_id", str(1 << 20)]
    inf = float("inf")
    best: dict[str, list[float]] = {k: [inf, inf] for k in ["assign", *others]}
    what = {"assign": "ringguard assign (passthrough)",
            "re-encode": "ringguard re-encoding writer",
            "floor": "pyarrow alone copies the file"}
    for i in range(args.repeats):  # interleaved, so all see the same machine load
        for name, argv in [("assign", cmd), *others.items()]:
            res = timed(argv)
            if res is None:
                return None
            dt, cpu, said = res
            best[name] = [min(best[name][0], dt), min(best[name][1], cpu)]
            note = f" (command says: {said.strip()})" if name == "assign" else ""
            print(f"  {what[name]}, run {i + 1}: {dt:.2f} s wall = "
                  f"{args.rows / dt / 1e6:.2f} M rows/s; {cpu:.2f} CPU s = "
                  f"{args.rows / cpu / 1e6:.2f} M rows per CPU-second{note}")

    # Check: the node column equals Ring.assign on a sample of row groups, and the
    # re-encoded output (if any) holds the same rows.
    ring = Ring(nodes.split(","))
    if args.format == "parquet":
        f = pq.ParquetFile(dst)
        groups = sorted({0, f.num_row_groups // 2, f.num_row_groups - 1})
        got = f.read_row_groups(groups, columns=["order_id", "cents", "node"])
        if "re-encode" in others:
            # Both keep the input's row order; compare the same rows by position.
            rows_before = [sum(f.metadata.row_group(g).num_rows for g in range(k))
                           for k in groups]
            full = pq.read_table(work / "reencoded.parquet",
                                 columns=["order_id", "cents", "node"])
            same = pa.concat_tables([
                full.slice(lo, f.metadata.row_group(g).num_rows)
                for lo, g in zip(rows_before, groups, strict=True)])
            if not same.combine_chunks().equals(got.combine_chunks()):
                print("CHECK FAILED: passthrough output differs from re-encoded output",
                      file=sys.stderr)
                return None
    else:
        import pyarrow.feather as feather

        got = feather.read_table(dst, columns=["order_id", "node"]).slice(0, 1_000_000)
    expected = np.asarray(ring.nodes, dtype=object)[ring.assign(got.column("order_id"))]
    names = got.column("node").cast(pa.string()).to_numpy(zero_copy_only=False)
    if not np.array_equal(names, expected):
        print("CHECK FAILED: node column differs from Ring.assign", file=sys.stderr)
        return None
    w, c = best["assign"]
    rate = args.rows / w
    verdict = "met" if rate >= TARGET_ROWS_PER_S else "NOT met"
    print(f"best: {w:.2f} s = {rate / 1e6:.2f} M rows/s end to end "
          f"(target >= {TARGET_ROWS_PER_S / 1e6:.0f} M rows/s: {verdict}); on a quiet core "
          f"the wall time approaches the CPU time: best {c:.2f} CPU s = "
          f"{args.rows / c / 1e6:.2f} M rows per CPU-second")
    for name, (ow, oc) in best.items():
        if name != "assign":
            print(f"{name}: best {ow:.2f} s = {args.rows / ow / 1e6:.2f} M rows/s wall, "
                  f"{oc:.2f} CPU s = {args.rows / oc / 1e6:.2f} M rows per CPU-second; "
                  f"passthrough saves {ow - w:+.2f} s wall, {oc - c:+.2f} CPU s")
    print(f"checked {got.num_rows:,} rows against Ring.assign"
          f"{' and the re-encoded file' if 're-encode' in others else ''}")
    return ((w, c), tuple(best.get("re-encode", [inf, inf])),  # type: ignore[return-value]
            tuple(best.get("floor", [inf, inf])))


if __name__ == "__main__":
    sys.exit(main())
