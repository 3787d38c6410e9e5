"""50M string keys through ``ringguard.dask.assign`` on a LocalCluster vs one process.

The keys ``order:<id>`` (random ids below 10^12, fixed seed per partition) are generated
*inside* each partition (``dd.from_map``), so the graph stays small and both sides do the
same work: build the partition's keys as an Arrow-backed pandas string column, place them,
count rows per node. The single-process side runs exactly the same partition function in
a loop with ``threads=1``; the cluster side is ``LocalCluster(n_workers=2,
threads_per_worker=1, processes=True)`` with ``assign`` + ``value_counts``. The per-node
counts of both must be equal (checked). Also reported: ``Ring.assign`` alone over one
partition's keys (the kernel's share of the work).

Usage::

    python benchmarks/bench_pipelines_dask.py                  # 50M keys, 50 partitions
    python benchmarks/bench_pipelines_dask.py --rows 5000000   # quicker, indicative
    python benchmarks/bench_pipelines_dask.py --no-worker-profiler   # without dask's profiler
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def make_keys(spec: tuple[int, int, int]) -> Any:
    """Partition ``(index, rows, seed)``: a DataFrame of ``rows`` string keys."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    index, rows, seed = spec
    rng = np.random.default_rng([seed, index])
    ids = pa.array(rng.integers(0, 10**12, rows, dtype=np.int64)).cast(pa.string())
    keys = pc.binary_join_element_wise("order:", ids, "")
    return pd.DataFrame({"order_id": pd.Series(keys, dtype=pd.ArrowDtype(pa.string()))})


def local_counts(specs: list[tuple[int, int, int]], ring: Any) -> np.ndarray:
    counts = np.zeros(len(ring.nodes), dtype=np.int64)
    for spec in specs:
        df = make_keys(spec)
        counts += np.bincount(ring.assign(df["order_id"], threads=1),
                              minlength=len(ring.nodes))
    return counts


def _placements_built() -> int:
    from ringguard import dask as rgdask

    return len(rgdask._cache)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=50_000_000)
    ap.add_argument("--partitions", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--rounds", type=int, default=2,
                    help="interleaved single/cluster rounds; the best of each is reported")
    ap.add_argument("--no-worker-profiler", action="store_true",
                    help="turn off distributed's sampling profiler in the workers (it walks "
                    "the running task's stack every 10 ms)")
    args = ap.parse_args()

    import dask
    import dask.dataframe as dd
    import distributed

    import ringguard
    from ringguard import Ring
    from ringguard.dask import assign

    ring = Ring([f"node{i}" for i in range(args.nodes)])
    per = -(-args.rows // args.partitions)
    specs = [(i, min(per, args.rows - i * per), args.seed) for i in range(args.partitions)
             if args.rows - i * per > 0]
    print(f"ringguard.dask.assign: {args.rows:,} string keys in {len(specs)} partitions, "
          f"{args.nodes} nodes, core {ringguard.BACKEND}; dask {dask.__version__}, "
          f"{os.cpu_count()} CPUs")
    print(f"load average at start: {load_average()}")

    # The kernel alone, on one partition's keys.
    df0 = make_keys(specs[0])
    col = df0["order_id"]
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        ring.assign(col, threads=1)
        best = min(best, time.perf_counter() - t0)
    print(f"  Ring.assign alone (threads=1, {len(col):,} keys): "
          f"{len(col) / best / 1e6:.1f} M keys/s")

    import resource

    def cpu_self() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return float(r.ru_utime + r.ru_stime)

    if args.no_worker_profiler:
        dask.config.set({"distributed.worker.profile.enabled": False})
    print(f"worker profiler: {'off' if args.no_worker_profiler else 'on (the default)'}")
    cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                       processes=True, dashboard_address=":0",
                                       silence_logs=50)
    client = distributed.Client(cluster)
    t_single = t_cluster = c_single = c_cluster = float("inf")
    try:
        # Warm-up: every worker imports ringguard/pandas/pyarrow and rebuilds the ring once.
        small = [(i, 1000, args.seed + 1) for i in range(2 * args.workers)]
        warm = dd.from_map(make_keys, small, meta=make_keys((0, 0, args.seed)))
        t0 = time.perf_counter()
        assign(warm, "order_id", ring)["node"].value_counts().compute()
        print(f"  cluster warm-up (imports, ring rebuilt once per worker): "
              f"{time.perf_counter() - t0:.1f} s (not counted below)")
        # What the workers burn doing nothing (heartbeats, the sampling profiler, the
        # event loop): part of the cluster's CPU time below that no task causes.
        w0, t0 = sum(client.run(cpu_self).values()), time.perf_counter()
        time.sleep(3.0)
        idle = (sum(client.run(cpu_self).values()) - w0) / (time.perf_counter() - t0)
        print(f"  idle workers: {idle:.3f} CPU s per second (all {args.workers} together)")
        # Interleaved rounds, best of each, so that bursts of load hit both sides.
        for _ in range(args.rounds):
            c0, t0 = cpu_self(), time.perf_counter()
            single = local_counts(specs, ring)
            t_single = min(t_single, time.perf_counter() - t0)
            c_single = min(c_single, cpu_self() - c0)

            ddf = dd.from_map(make_keys, specs, meta=make_keys((0, 0, args.seed)))
            placed = assign(ddf, "order_id", ring)
            w0 = sum(client.run(cpu_self).values())
            t0 = time.perf_counter()
            vc = placed["node"].value_counts().compute()
            t_cluster = min(t_cluster, time.perf_counter() - t0)
            c_cluster = min(c_cluster, sum(client.run(cpu_self).values()) - w0)
        # The placement was rebuilt from its JSON once per worker, not once per task.
        built = client.run(_placements_built)
    finally:
        client.close()
        cluster.close()
    print(f"  single process (generate + assign, threads=1): best {t_single:.1f} s = "
          f"{args.rows / t_single / 1e6:.2f} M keys/s ({c_single:.1f} CPU s)")
    counts = np.array([int(vc.get(n, 0)) for n in ring.nodes], dtype=np.int64)
    ok = np.array_equal(counts, single) and counts.sum() == args.rows
    print(f"  LocalCluster({args.workers} workers x 1 thread): best {t_cluster:.1f} s = "
          f"{args.rows / t_cluster / 1e6:.2f} M keys/s ({c_cluster:.1f} CPU s in the "
          f"workers), speed-up {t_single / t_cluster:.2f}x over one process")
    print(f"  placements built per worker (ringguard.dask cache): "
          f"{sorted(built.values())} for {args.rounds * len(specs) + 2 * args.workers} partition "
          f"tasks")
    print(f"  per-node counts equal: {'yes' if ok else 'NO'} "
          f"(max/mean {counts.max() / counts.mean():.3f})")
    print(f"load average at end: {load_average()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
