"""pytest-benchmark cases for the failover layer (not part of the test suite).

Targets (issue 4): route >= 50 M keys/s; put_many overhead over MemoryBackend >= 1 M
records/s; SQLiteBackend and RedisBackend >= 100k records/s with replication 2; recovery
of a node holding 1M records in under 30 s.

Run as a script, it measures put_many throughput together with the CPU it costs (this
process, all threads, and the redis-server processes), which stays meaningful on a shared
machine where wall-clock rates swing with the neighbours' load::

    python benchmarks/test_bench_failover.py sqlite redis
    python benchmarks/test_bench_failover.py sqlite-apsw   # SQLiteBackend(driver="apsw")
    python benchmarks/test_bench_failover.py sqlite-write  # one SQLiteBackend alone
    python benchmarks/test_bench_failover.py recover       # 1M-record node rebuilt (SQLite)

It uses only APIs that predate the range digests, so the same command measures older
checkouts too (``PYTHONPATH=<checkout>/src``).
"""

from __future__ import annotations

import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from ringguard import Cluster, MemoryBackend, ReplicatedStore, Ring, SQLiteBackend
from ringguard.backends import Backend, Records
from ringguard.backends.base import DIGEST_BITS

NODES = [f"n{i}" for i in range(10)]
RNG = np.random.default_rng(0)
U64 = RNG.integers(0, 2**63, 1_000_000, dtype=np.int64).view(np.uint64)
KEYS = [f"order:{i}" for i in range(20_000)]
VALUES = [b"x" * 200] * len(KEYS)


@pytest.mark.benchmark(group="failover-route")
def test_route_u64(benchmark: pytest.FixtureRequest) -> None:
    c = Cluster(Ring(NODES), 2)
    c.mark_down("n3")
    benchmark(c.route, U64)


class NullBackend(Backend):
    """Stores nothing: what remains is the store's own cost per record."""

    def write(self, records: Records, *, fenced: bool = False) -> int:
        return len(records)

    def read(self, keys: Sequence[bytes]) -> Records:
        raise NotImplementedError

    def scan_range(self, lo: int, hi: int, batch_size: int = 10_000) -> Iterator[Records]:
        return iter(())

    def _digests(self) -> tuple[np.ndarray, np.ndarray]:
        z = np.zeros(2**DIGEST_BITS, dtype=np.uint64)
        return z, z.copy()

    def ping(self) -> None:
        pass

    def set_fence(self, epoch: int) -> None:
        pass

    def fence(self) -> int:
        return 0


@pytest.mark.benchmark(group="failover-put")
def test_put_many_overhead(benchmark: pytest.FixtureRequest) -> None:
    store = ReplicatedStore(Cluster(Ring(NODES), 2), {n: NullBackend() for n in NODES})
    benchmark(store.put_many, KEYS, VALUES)


@pytest.mark.benchmark(group="failover-put")
def test_put_many_memory(benchmark: pytest.FixtureRequest) -> None:
    store = ReplicatedStore(Cluster(Ring(NODES), 2), {n: MemoryBackend(n) for n in NODES})
    benchmark(store.put_many, KEYS, VALUES)


@pytest.mark.benchmark(group="failover-put")
def test_put_many_sqlite(benchmark: pytest.FixtureRequest, tmp_path: Path) -> None:
    backends = {n: SQLiteBackend(tmp_path / f"{n}.db", synchronous="NORMAL") for n in NODES}
    store = ReplicatedStore(Cluster(Ring(NODES), 2), backends)
    benchmark(store.put_many, KEYS, VALUES)
    for b in backends.values():
        b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(n: int, workdir: Path) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    """``n`` redis-server processes on free loopback ports, ready to serve."""
    procs, ports = [], []
    for _ in range(n):
        port = _free_port()
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ports.append(port)
    for port in ports:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {port} did not start") from None
                time.sleep(0.05)
    return procs, ports


@pytest.fixture
def redis_urls(tmp_path: Path) -> Iterator[list[str]]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    procs, ports = start_redis(3, tmp_path)
    yield [f"redis://127.0.0.1:{p}/0" for p in ports]
    for p in procs:
        p.kill()
        p.wait()


@pytest.mark.benchmark(group="failover-put")
def test_put_many_redis(benchmark: pytest.FixtureRequest, redis_urls: list[str]) -> None:
    from ringguard.backends import RedisBackend

    names = ["r0", "r1", "r2"]
    backends = {n: RedisBackend(u) for n, u in zip(names, redis_urls, strict=True)}
    store = ReplicatedStore(Cluster(Ring(names), 2), backends)
    benchmark(store.put_many, KEYS, VALUES)
    for b in backends.values():
        b.close()


@pytest.mark.benchmark(group="failover-recover")
def test_recover_100k(benchmark: pytest.FixtureRequest) -> None:
    backends = {n: MemoryBackend(n) for n in NODES[:4]}
    store = ReplicatedStore(Cluster(Ring(list(backends)), 2), backends)
    keys = [f"k{i}" for i in range(100_000)]
    store.put_many(keys, [b"v" * 100] * len(keys))

    def wipe_and_recover() -> None:
        backends["n1"].wipe()
        store.cluster.mark_down("n1")
        store.recover("n1")

    benchmark.pedantic(wipe_and_recover, rounds=3, iterations=1)


@pytest.mark.benchmark(group="failover-recover")
def test_recover_100k_sqlite(benchmark: pytest.FixtureRequest, tmp_path: Path) -> None:
    names = NODES[:4]
    backends = {n: SQLiteBackend(tmp_path / f"{n}.db", synchronous="NORMAL") for n in names}
    store = ReplicatedStore(Cluster(Ring(names), 2), backends)
    keys = [f"k{i}" for i in range(100_000)]
    for i in range(0, len(keys), 20_000):
        store.put_many(keys[i : i + 20_000], [b"v" * 100] * 20_000)
    rounds = iter(range(100))

    def wipe_and_recover() -> None:
        r = next(rounds)
        store.cluster.mark_down("n1")
        store.backends[1].close()
        fresh = SQLiteBackend(tmp_path / f"n1-{r}.db", synchronous="NORMAL")
        store.backends[1] = fresh
        store.recover("n1")

    benchmark.pedantic(wipe_and_recover, rounds=3, iterations=1)


def _replicated_pair(workdir: Path, n: int) -> tuple[ReplicatedStore, dict[str, Backend]]:
    """Two SQLite nodes, replication 2 (each holds every key), ``n`` records of 100 B.

    Node ``a`` is written through the backend in batches (what the store does for each
    replica) and its file copied for ``b``: the same state as ``put_many`` on both, set up
    in half the time.
    """
    a = SQLiteBackend(workdir / "a.db", synchronous="NORMAL")
    step = 20_000
    for i in range(0, n, step):
        keys = [b"k%d" % j for j in range(i, min(i + step, n))]
        a.write(Records.build(keys, [b"v" * 100] * len(keys), 0, np.arange(i, i + len(keys))))
    a.close()
    shutil.copy(workdir / "a.db", workdir / "b.db")
    backends: dict[str, Backend] = {
        x: SQLiteBackend(workdir / f"{x}.db", synchronous="NORMAL") for x in ("a", "b")
    }
    return ReplicatedStore(Cluster(Ring(list(backends)), 2), backends), backends


def _wipe_and_recover(store: ReplicatedStore, workdir: Path, tag: str) -> tuple[int, float]:
    """Replace node ``b`` by an empty file (its disk lost), recover it; (records, CPU s)."""
    store.cluster.mark_down("b")
    store.backends[1].close()
    store.backends[1] = SQLiteBackend(workdir / f"b-{tag}.db", synchronous="NORMAL")
    c0 = _cpu_s()
    rep = store.recover("b")
    return rep.records_copied, _cpu_s() - c0


@pytest.mark.benchmark(group="failover-recover")
def test_recover_1m_sqlite(benchmark: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Issue 4 target: a node holding 1M records rebuilt from its replica in < 30 s."""
    n = 1_000_000
    store, backends = _replicated_pair(tmp_path, n)
    rounds = iter(range(100))

    def wipe_and_recover() -> None:
        copied, _ = _wipe_and_recover(store, tmp_path, str(next(rounds)))
        assert copied == n

    benchmark.pedantic(wipe_and_recover, rounds=1, iterations=1)
    for b in store.backends:
        b.close()


# ---- python benchmarks/test_bench_failover.py sqlite redis --------------------------------


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _measure(kind: str, rounds: int = 10) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="rg-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    if kind == "redis":
        from ringguard.backends import RedisBackend

        procs, ports = start_redis(3, workdir)
        names = ["r0", "r1", "r2"]
        backends: dict[str, Backend] = {
            n: RedisBackend(f"redis://127.0.0.1:{p}/0") for n, p in zip(names, ports, strict=True)
        }
    else:
        names = NODES
        kw = {"driver": "apsw"} if kind == "sqlite-apsw" else {}  # old checkouts: no driver
        backends = {
            n: SQLiteBackend(workdir / f"{n}.db", synchronous="NORMAL", **kw) for n in names
        }

    def server_cpu_s() -> float:
        total = 0.0
        for b in backends.values():
            client = getattr(b, "_client", None)
            if client is not None:
                info = client.info("cpu")
                total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return total

    try:
        store = ReplicatedStore(Cluster(Ring(names), 2), backends)
        store.put_many(KEYS, VALUES)  # warm up (inserts); the timed rounds overwrite
        walls = []
        c0, s0 = _cpu_s(), server_cpu_s()
        for _ in range(rounds):
            t0 = time.perf_counter()
            store.put_many(KEYS, VALUES)
            walls.append(time.perf_counter() - t0)
        per = rounds * len(KEYS) / 1e6
        client_us = (_cpu_s() - c0) / per
        server_us = (server_cpu_s() - s0) / per
        best = min(walls)
        print(
            f"{kind}: put_many of {len(KEYS)} records, replication 2: best {best * 1e3:.0f} ms "
            f"= {len(KEYS) / best:,.0f} records/s (median "
            f"{sorted(walls)[len(walls) // 2] * 1e3:.0f} ms); CPU per record: client "
            f"{client_us:.1f} us + servers {server_us:.1f} us = {client_us + server_us:.1f} us"
        )
    finally:
        for b in backends.values():
            b.close()
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _measure_write(n: int = 4_000, rounds: int = 30) -> None:
    """One SQLiteBackend alone: overwrites of ``n`` records (what one node receives from
    a 20,000-record put_many on 10 nodes with replication 2); CPU per record written."""
    workdir = Path(tempfile.mkdtemp(prefix="rg-bench-"))
    try:
        b = SQLiteBackend(workdir / "w.db", synchronous="NORMAL")
        keys = [b"order:%d" % i for i in range(n)]
        batches = [
            Records.build(keys, [b"x" * 200] * n, 0, np.arange(n) + r * n)
            for r in range(rounds + 1)
        ]
        for r in batches:
            r.hashes()
            r.digests()
        b.write(batches[0])  # inserts; the timed rounds overwrite
        walls = []
        c0 = _cpu_s()
        for r in batches[1:]:
            t0 = time.perf_counter()
            b.write(r)
            walls.append(time.perf_counter() - t0)
        cpu_us = (_cpu_s() - c0) / (rounds * n) * 1e6
        print(
            f"sqlite-write: {n} records of 200 B overwritten per write (NORMAL): best "
            f"{min(walls) / n * 1e6:.1f} us/record wall, {cpu_us:.1f} us/record CPU"
        )
        b.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _measure_recover(n: int = 1_000_000) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="rg-bench-"))
    try:
        t0 = time.perf_counter()
        store, _ = _replicated_pair(workdir, n)
        setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        copied, cpu = _wipe_and_recover(store, workdir, "0")
        wall = time.perf_counter() - t0
        assert copied == n, copied
        dg = [b.range_digests(8) for b in store.backends]
        assert all((x == y).all() for x, y in zip(dg[0], dg[1], strict=True))
        print(
            f"recover: node of {n:,} records (100 B) rebuilt from its replica (SQLite, "
            f"replication 2) in {wall:.1f} s wall, {cpu:.1f} s CPU = {cpu / n * 1e6:.1f} us "
            f"per record; digests equal afterwards (setup {setup:.0f} s)"
        )
        for b in store.backends:
            b.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    import ringguard

    print(f"ringguard from {ringguard.__file__}")
    for what in sys.argv[1:] or ["sqlite", "redis"]:
        if what == "recover":
            _measure_recover()
        elif what == "sqlite-write":
            _measure_write()
        else:
            _measure(what)
