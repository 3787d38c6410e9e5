"""End-to-end ``ringguard assign`` on a Parquet file of string keys, on one core.

Builds (once, cached by size and seed) a Parquet file of N string keys ``order:<id>``
(random ids below 10^12, fixed seed) plus an int64 column, then runs the real console
script ``ringguard assign IN -o OUT --key order_id --nodes ...`` pinned to one CPU with
``taskset`` (when available) and reports rows/s measured around the whole process
(interpreter start, reading, hashing, writing the output file with the node column), and
the CPU time of the process (user + system, from ``getrusage``): on a shared, busy machine
the wall time includes waiting for the core, the CPU time does not. The
output is checked against ``Ring.assign`` on a sample of rows. Target: >= 5 M rows/s.

Usage::

    python benchmarks/bench_pipelines.py                    # 20M keys (~300 MB input)
    python benchmarks/bench_pipelines.py --rows 2000000     # quicker, indicative
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


def make_input(path: Path, rows: int, seed: int) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    with pq.ParquetWriter(path, pa.schema([("order_id", pa.string()),
                                           ("cents", pa.int64())])) as w:
        step = 2_000_000
        for lo in range(0, rows, step):
            n = min(step, rows - lo)
            ids = pa.array(rng.integers(0, 10**12, n, dtype=np.int64)).cast(pa.string())
            keys = pc.binary_join_element_wise("order:", ids, "")
            cents = pa.array(rng.integers(100, 100_000, n, dtype=np.int64))
            w.write_table(pa.table({"order_id": keys, "cents": cents}), row_group_size=1 << 20)


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
                    help="passed to ringguard assign --compression (default: its default)")
    args = ap.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq

    from ringguard import Ring

    work = Path(args.dir) if args.dir else Path(tempfile.gettempdir()) / "ringguard-bench"
    work.mkdir(parents=True, exist_ok=True)
    src = work / f"keys-{args.rows}-{args.seed}.parquet"
    if not src.exists():
        t0 = time.perf_counter()
        make_input(src, args.rows, args.seed)
        print(f"wrote {src} ({src.stat().st_size / 2**20:.0f} MiB) in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    dst = work / f"out.{args.format}"
    nodes = ",".join(f"node{i}" for i in range(args.nodes))
    exe = shutil.which("ringguard")
    cmd = [exe] if exe else [sys.executable, "-m", "ringguard"]
    cmd = [*cmd, "assign", str(src), "-o", str(dst), "--key", "order_id", "--nodes", nodes]
    if args.compression:
        cmd += ["--compression", args.compression]
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ARROW_NUM_THREADS": "1"}

    import ringguard

    print(f"ringguard assign, end to end: {args.rows:,} string keys, Parquet in, "
          f"{args.format} out (compression {args.compression or 'default'}), "
          f"{args.nodes} nodes, core {ringguard.BACKEND}, "
          f"{'pinned to CPU 0 (taskset)' if pin else 'NOT pinned'}")
    print(f"pyarrow {pa.__version__}, numpy {np.__version__}, python "
          f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load_average()}")
    import resource

    best = best_cpu = float("inf")
    for i in range(args.repeats):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run([*pin, *cmd], capture_output=True, text=True, env=env)
        dt = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return 1
        best, best_cpu = min(best, dt), min(best_cpu, cpu)
        print(f"  run {i + 1}: {dt:.2f} s wall = {args.rows / dt / 1e6:.2f} M rows/s; "
              f"{cpu:.2f} CPU s = {args.rows / cpu / 1e6:.2f} M rows per CPU-second "
              f"(command says: {out.stdout.strip()})")

    # Check: the node column equals Ring.assign on a sample of row groups.
    ring = Ring(nodes.split(","))
    if args.format == "parquet":
        f = pq.ParquetFile(dst)
        groups = sorted({0, f.num_row_groups // 2, f.num_row_groups - 1})
        got = f.read_row_groups(groups, columns=["order_id", "node"])
    else:
        import pyarrow.feather as feather

        got = feather.read_table(dst, columns=["order_id", "node"]).slice(0, 1_000_000)
    expected = np.asarray(ring.nodes, dtype=object)[ring.assign(got.column("order_id"))]
    names = got.column("node").cast(pa.string()).to_numpy(zero_copy_only=False)
    if not np.array_equal(names, expected):
        print("CHECK FAILED: node column differs from Ring.assign", file=sys.stderr)
        return 1
    rate = args.rows / best
    verdict = "met" if rate >= TARGET_ROWS_PER_S else "NOT met"
    print(f"best: {best:.2f} s = {rate / 1e6:.2f} M rows/s end to end "
          f"(target >= {TARGET_ROWS_PER_S / 1e6:.0f} M rows/s: {verdict}); on a quiet core "
          f"the wall time approaches the CPU time: best {best_cpu:.2f} CPU s = "
          f"{args.rows / best_cpu / 1e6:.2f} M rows per CPU-second")
    print(f"checked {got.num_rows:,} rows against Ring.assign; load average {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
