"""RedisBackend write cost on loopback redis-server processes (a script, not a test).

Wall-clock rates on a shared machine swing with the neighbours' load, so every figure comes
with the CPU it cost: this process (all threads) and the redis-server processes (their
``INFO cpu``), per record. ``--callgrind`` also runs one server under valgrind's callgrind
and prints the instructions the server executes per record written: a count that does not
depend on the machine's load, for comparing layouts of the write script::

    python benchmarks/bench_redis.py                 # backend writes and put_many
    python benchmarks/bench_redis.py --callgrind     # plus server instructions per record
    python benchmarks/bench_redis.py --records 50000 --value-bytes 1000

Cases: ``RedisBackend.write`` of new keys (inserts: the index grows) and of newer versions
of the same keys (overwrites) on one server; ``ReplicatedStore.put_many`` with
replication 2 on 3 servers, inserts then overwrites (the issue-4 target: >= 100k
records/s).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ringguard import Cluster, ReplicatedStore, Ring
from ringguard.backends import Records
from ringguard.backends.redis import RedisBackend


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {port} did not start") from None
            time.sleep(0.05)


def _server(workdir: Path, prefix: list[str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    cmd = [*(prefix or []), "redis-server", "--port", str(port), "--bind", "127.0.0.1",
           "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(port)
    return proc, port


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _server_cpu_s(backends: list[RedisBackend]) -> float:
    total = 0.0
    for b in backends:
        info = b._client.info("cpu")
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


def _batches(n: int, rounds: int, value_bytes: int) -> tuple[list[bytes], list[Records]]:
    keys = [b"order:%d" % i for i in range(n)]
    value = b"x" * value_bytes
    out = [Records.build(keys, [value] * n, 1, np.arange(n) + r * n) for r in range(rounds)]
    for r in out:  # what ReplicatedStore does once per batch, before the backends
        r.hashes()
        r.digests()
    return keys, out


def _report(label: str, n: int, walls: list[float], client: float, server: float) -> None:
    best = min(walls)
    print(f"{label:<44} best {n / best:>9,.0f} rec/s  median "
          f"{n / sorted(walls)[len(walls) // 2]:>9,.0f} rec/s  CPU/rec: client "
          f"{client:5.1f} us + servers {server:5.1f} us = {client + server:5.1f} us")


def _timed(calls: list[Callable[[], object]], backends: list[RedisBackend]
           ) -> tuple[list[float], float, float]:
    walls = []
    c0, s0 = _cpu_s(), _server_cpu_s(backends)
    for call in calls:
        t0 = time.perf_counter()
        call()
        walls.append(time.perf_counter() - t0)
    return walls, _cpu_s() - c0, _server_cpu_s(backends) - s0


def bench_backend(workdir: Path, n: int, rounds: int, value_bytes: int) -> None:
    proc, port = _server(workdir)
    try:
        b = RedisBackend(f"redis://127.0.0.1:{port}/0", timeout_s=30)
        _, batches = _batches(n, rounds + 1, value_bytes)
        fresh = [Records.build([b"%d:%s" % (r, k) for k in batches[0].keys], batches[0].values,
                               1, 1) for r in range(rounds)]
        for r in fresh:
            r.hashes()
            r.digests()
        walls, c, s = _timed([lambda r=r: b.write(r) for r in fresh], [b])
        per = rounds * n / 1e6
        _report(f"RedisBackend.write, {n} inserts", n, walls, c / per, s / per)
        b.write(batches[0])
        walls, c, s = _timed([lambda r=r: b.write(r) for r in batches[1:]], [b])
        _report(f"RedisBackend.write, {n} overwrites", n, walls, c / per, s / per)
        b.close()
    finally:
        proc.kill()
        proc.wait()


def bench_put_many(workdir: Path, n: int, rounds: int, value_bytes: int) -> None:
    servers = [_server(workdir) for _ in range(3)]
    try:
        names = ["r0", "r1", "r2"]
        backends = [RedisBackend(f"redis://127.0.0.1:{p}/0", timeout_s=30) for _, p in servers]
        store = ReplicatedStore(Cluster(Ring(names), 2), dict(zip(names, backends, strict=True)))
        keys = [f"order:{i}" for i in range(n)]
        values = [b"x" * value_bytes] * n
        per = rounds * n / 1e6
        calls = [lambda r=r: store.put_many([f"{r}:{k}" for k in keys], values)
                 for r in range(rounds)]
        walls, c, s = _timed(calls, backends)
        _report(f"put_many, replication 2, {n} inserts", n, walls, c / per, s / per)
        store.put_many(keys, values)
        walls, c, s = _timed([lambda: store.put_many(keys, values)] * rounds, backends)
        _report(f"put_many, replication 2, {n} overwrites", n, walls, c / per, s / per)
        store.close()
        for b in backends:
            b.close()
    finally:
        for proc, _ in servers:
            proc.kill()
            proc.wait()


def bench_callgrind(workdir: Path, n: int, value_bytes: int) -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("callgrind: valgrind is not installed, skipped")
        return
    out = str(workdir / "callgrind.out")
    proc, port = _server(workdir, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"])
    try:
        b = RedisBackend(f"redis://127.0.0.1:{port}/0", timeout_s=300)
        _, batches = _batches(n, 4, value_bytes)
        fresh = Records.build([b"new:" + k for k in batches[0].keys], batches[0].values, 1, 1)
        fresh.hashes()
        fresh.digests()
        b.write(batches[0])
        counts = {}
        for label, work in (("overwrites", batches[1:]), ("inserts", [fresh])):
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True,
                           check=True)
            for r in work:
                b.write(r)
            before = set(glob.glob(out + "*"))
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True,
                           check=True)
            deadline = time.monotonic() + 30
            while not (set(glob.glob(out + "*")) - before) and time.monotonic() < deadline:
                time.sleep(0.1)
            dump = max(set(glob.glob(out + "*")) - before or before, key=os.path.getmtime)
            m = re.search(r"^summary: (\d+)", Path(dump).read_text(), re.M)
            counts[label] = int(m.group(1)) / (len(work) * n) if m else float("nan")
        b.close()
        print(f"callgrind: redis-server instructions per record written ({value_bytes}-byte "
              f"values): overwrite {counts['overwrites']:,.0f}, insert {counts['inserts']:,.0f}")
    finally:
        proc.terminate()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=20_000, help="records per call")
    ap.add_argument("--rounds", type=int, default=5, help="timed calls per case")
    ap.add_argument("--value-bytes", type=int, default=200)
    ap.add_argument("--callgrind", action="store_true",
                    help="also count redis-server instructions per record (valgrind)")
    args = ap.parse_args(argv)
    if shutil.which("redis-server") is None:
        print("redis-server is not installed", file=sys.stderr)
        return 1
    import ringguard

    print(f"ringguard from {ringguard.__file__}; {args.records} records of "
          f"{args.value_bytes} bytes per call, {args.rounds} timed calls per case")
    workdir = Path(tempfile.mkdtemp(prefix="rg-bench-redis-"))
    try:
        bench_backend(workdir, args.records, args.rounds, args.value_bytes)
        bench_put_many(workdir, args.records, args.rounds, args.value_bytes)
        if args.callgrind:
            bench_callgrind(workdir, min(args.records, 8000), args.value_bytes)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
