"""pytest-benchmark cases for backups: 1M records of ~200 bytes on a local disk.

    pytest benchmarks/test_bench_backup.py --benchmark-only -s

Targets (issue 5): full backup >= 50 MB/s of record data, incremental after changing 1% of
the records >= 10x faster than the full one, verify >= 150 MB/s, restore >= 50 MB/s (one
thread). Each case stores its MB/s in ``extra_info`` and the summary at the end prints them;
there are no timing assertions. Figures and what limits them: benchmarks/README.md.

The incremental cases read from a ``SQLiteBackend`` (a node on the local disk, whose
``scan_range`` is a primary-key range) or from ``IndexedNode`` (below: a ``MemoryBackend``
with a sorted hash index): ``MemoryBackend.scan_range`` sorts the (hash, key) pairs of the
ranges it reads on every call and reads each batch by key, so a backup from it mostly
measures that. The ``side_by_side`` cases time a full and an incremental backup of the
same node alternately in one run and report their ratio (the box is shared and noisy:
separate cases drift apart).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ringguard import BackupRepository, MemoryBackend, SQLiteBackend
from ringguard.backends import Records

N = 1_000_000
VALUE_BYTES = 184  # + a 16-byte key: ~200 bytes of record data
SEED = 20261127
_MBPS: list[tuple[str, float, float]] = []
_NOTES: list[str] = []


def _records(n: int) -> tuple[Records, float]:
    rng = np.random.default_rng(SEED)
    keys = [b"user:%011d" % i for i in range(n)]
    # Text-like values (lowercase letters): compressible about as much as JSON documents.
    blob = (rng.integers(0, 26, size=n * VALUE_BYTES, dtype=np.uint8) + 97).tobytes()
    values: list[bytes | None] = [blob[i * VALUE_BYTES : (i + 1) * VALUE_BYTES] for i in range(n)]
    mb = (sum(map(len, keys)) + n * VALUE_BYTES) / 1e6
    return Records.build(keys, values, 1, np.arange(1, n + 1)), mb


class IndexedNode(MemoryBackend):
    """A ``MemoryBackend`` with a sorted key-hash index, as a real store keeps one (SQLite's
    primary key is ``(hash, key)``): ``scan_range`` is a slice of the index instead of a
    sort of the whole dict, so a backup's time is the backup layer's own. Writes and range
    digests are ``MemoryBackend``'s; :meth:`reindex` (outside the timed part) rebuilds the
    index after writes."""

    def reindex(self) -> None:
        with self._lock:
            items = list(self._data.items())
        h = np.fromiter((r[3] for _, r in items), dtype=np.uint64, count=len(items))
        order = np.argsort(h, kind="stable")
        self._h = h[order]
        o = order.tolist()
        self._keys = [items[i][0] for i in o]
        self._values = [items[i][1][0] for i in o]
        self._eps = np.array([items[i][1][1] for i in o], dtype=np.int64)
        self._sqs = np.array([items[i][1][2] for i in o], dtype=np.int64)

    def scan_range(self, lo: int, hi: int, batch_size: int = 10_000) -> Iterator[Records]:
        a = int(np.searchsorted(self._h, np.uint64(lo), "left"))
        b = len(self._h) if hi >= 2**64 else int(np.searchsorted(self._h, np.uint64(hi), "left"))
        for i in range(a, b, batch_size):
            j = min(b, i + batch_size)
            yield Records(self._keys[i:j], self._values[i:j], self._eps[i:j], self._sqs[i:j])


class NullTarget(MemoryBackend):
    """A restore target that stores nothing: what is left is the restore's own work."""

    def write(self, records: Records, *, fenced: bool = False) -> int:
        return len(records)


@pytest.fixture(scope="module")
def records() -> tuple[Records, float]:
    return _records(N)


@pytest.fixture(scope="module")
def data(records: tuple[Records, float]) -> tuple[MemoryBackend, float]:
    recs, mb = records
    src = MemoryBackend("n1")
    src.write(recs)
    return src, mb


@pytest.fixture(scope="module")
def indexed(records: tuple[Records, float]) -> tuple[IndexedNode, float]:
    recs, mb = records
    node = IndexedNode("n1")
    node.write(recs)
    node.reindex()
    return node, mb


@pytest.fixture(scope="module")
def sqlite_node(records: tuple[Records, float]) -> Iterator[tuple[SQLiteBackend, float]]:
    recs, mb = records
    with tempfile.TemporaryDirectory(prefix="rg-bench-node-") as d:
        node = SQLiteBackend(Path(d) / "n1.db", synchronous="NORMAL")
        for i in range(0, N, 100_000):
            node.write(recs.take(np.arange(i, min(N, i + 100_000))))
        yield node, mb
        node.close()


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rg-bench-") as d:
        yield Path(d)


def _change_1pct(node: Any, rng: np.random.Generator, epoch: int) -> None:
    idx = rng.choice(N, N // 100, replace=False).tolist()
    keys = [b"user:%011d" % i for i in idx]
    node.write(Records.build(keys, [b"changed" * 26] * len(keys), epoch, 1))


def _run(benchmark: Any, name: str, mb: float, fn: Any, setup: Any = None) -> Any:
    result = benchmark.pedantic(fn, setup=setup, rounds=3, iterations=1)
    best = benchmark.stats.stats.min
    benchmark.extra_info["MB"] = mb
    benchmark.extra_info["MB_per_s"] = mb / best
    _MBPS.append((name, best, mb / best))
    return result


def test_full_backup(benchmark: Any, data: tuple[MemoryBackend, float], workdir: Path) -> None:
    src, mb = data
    counter = iter(range(100))

    def setup() -> tuple[tuple[BackupRepository], dict[str, Any]]:
        return (BackupRepository(workdir / f"r{next(counter)}"),), {}

    _run(benchmark, "full backup (MemoryBackend)", mb, lambda repo: repo.backup(src), setup)


def test_full_backup_indexed(
    benchmark: Any, indexed: tuple[IndexedNode, float], workdir: Path
) -> None:
    src, mb = indexed
    counter = iter(range(100))

    def setup() -> tuple[tuple[BackupRepository], dict[str, Any]]:
        return (BackupRepository(workdir / f"r{next(counter)}"),), {}

    _run(benchmark, "full backup (indexed in-memory node)", mb, lambda repo: repo.backup(src),
         setup)


def test_full_backup_sqlite(
    benchmark: Any, sqlite_node: tuple[SQLiteBackend, float], workdir: Path
) -> None:
    src, mb = sqlite_node
    counter = iter(range(100))

    def setup() -> tuple[tuple[BackupRepository], dict[str, Any]]:
        return (BackupRepository(workdir / f"r{next(counter)}"),), {}

    _run(benchmark, "full backup (SQLiteBackend)", mb, lambda repo: repo.backup(src), setup)


def test_incremental_backup_1pct(
    benchmark: Any, sqlite_node: tuple[SQLiteBackend, float], workdir: Path
) -> None:
    src, mb = sqlite_node
    repo = BackupRepository(workdir / "r")
    repo.backup(src)
    rng = np.random.default_rng(SEED + 1)
    epoch = iter(range(10, 100))

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        _change_1pct(src, rng, next(epoch))  # since the last backup: exactly 1% of the keys
        return (), {}

    _run(benchmark, "incremental, 1% random keys (SQLite)", mb, lambda: repo.backup(src), setup)
    rep = repo.last_backup[0]
    benchmark.extra_info.update(ranges_read=rep.ranges_read, records_read=rep.records_read,
                                chunks_written=rep.chunks_written)


def _side_by_side(benchmark: Any, node: Any, workdir: Path, label: str) -> None:
    """Alternate full and incremental backups of the same node; the best of each."""
    repo = BackupRepository(workdir / "side")
    repo.backup(node)
    rng = np.random.default_rng(SEED + 2)
    epochs = iter(range(200, 300))
    fulls: list[float] = []
    incs: list[float] = []

    def once() -> None:
        t = time.perf_counter()
        repo.backup(node, full=True)
        fulls.append(time.perf_counter() - t)
        _change_1pct(node, rng, next(epochs))
        if isinstance(node, IndexedNode):
            node.reindex()
        t = time.perf_counter()
        repo.backup(node)
        incs.append(time.perf_counter() - t)

    benchmark.pedantic(once, rounds=3, iterations=1)
    rep = repo.last_backup[0]
    ratio = min(fulls) / min(incs)
    benchmark.extra_info.update(full_s=min(fulls), incremental_s=min(incs), ratio=ratio)
    _NOTES.append(
        f"side by side ({label}): full {min(fulls):.2f} s, incremental after 1% "
        f"{min(incs):.3f} s -> {ratio:.1f}x (read {rep.records_read} records in "
        f"{rep.ranges_read} of 65536 ranges, {rep.chunks_written} chunk(s) written)")


def test_full_vs_incremental_side_by_side(
    benchmark: Any, sqlite_node: tuple[SQLiteBackend, float], workdir: Path
) -> None:
    _side_by_side(benchmark, sqlite_node[0], workdir, "SQLite node")


def test_full_vs_incremental_side_by_side_indexed(
    benchmark: Any, records: tuple[Records, float], workdir: Path
) -> None:
    node = IndexedNode("n2")  # its own copy: this case writes to it
    node.write(records[0])
    node.reindex()
    _side_by_side(benchmark, node, workdir, "indexed in-memory node")


def test_verify(benchmark: Any, data: tuple[MemoryBackend, float], workdir: Path) -> None:
    src, mb = data
    repo = BackupRepository(workdir / "r")
    sid = repo.backup(src)
    report = _run(benchmark, "verify", mb, lambda: repo.verify(sid))
    assert report.ok


def test_restore(benchmark: Any, data: tuple[MemoryBackend, float], workdir: Path) -> None:
    src, mb = data
    repo = BackupRepository(workdir / "r")
    sid = repo.backup(src)

    def setup() -> tuple[tuple[MemoryBackend], dict[str, Any]]:
        return (MemoryBackend("target"),), {}

    _run(benchmark, "restore (into a MemoryBackend)", mb, lambda t: repo.restore(sid, t), setup)


def test_restore_own_work(
    benchmark: Any, data: tuple[MemoryBackend, float], workdir: Path
) -> None:
    src, mb = data
    repo = BackupRepository(workdir / "r")
    sid = repo.backup(src)

    def setup() -> tuple[tuple[MemoryBackend], dict[str, Any]]:
        return (NullTarget("null"),), {}

    _run(benchmark, "restore (target stores nothing)", mb, lambda t: repo.restore(sid, t),
         setup)


def teardown_module() -> None:
    if _MBPS:
        print("\nbackup benchmarks (best of 3, 1M records):")
        for name, s, mbps in _MBPS:
            print(f"  {name:40s} {s:7.2f} s  {mbps:7.0f} MB/s")
    for note in _NOTES:
        print("  " + note)
