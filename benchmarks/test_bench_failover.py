"""pytest-benchmark cases for the failover layer (not part of the test suite).

Targets (issue 4): route >= 50 M keys/s; put_many overhead over MemoryBackend >= 1 M
records/s; SQLiteBackend and RedisBackend >= 100k records/s with replication 2; recovery
of a node holding 1M records in under 30 s.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from ringguard import Cluster, MemoryBackend, ReplicatedStore, Ring, SQLiteBackend
from ringguard.backends import Backend, Records

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
        z = np.zeros(2**16, dtype=np.uint64)
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


@pytest.fixture
def redis_urls(tmp_path: Path) -> Iterator[list[str]]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    procs, urls = [], []
    for i in range(3):
        port = 16400 + i
        procs.append(subprocess.Popen(["redis-server", "--port", str(port), "--save", "",
                                       "--appendonly", "no", "--dir", str(tmp_path)],
                                      stdout=subprocess.DEVNULL))
        urls.append(f"redis://127.0.0.1:{port}/0")
    time.sleep(0.5)
    yield urls
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
