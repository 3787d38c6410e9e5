"""pytest-benchmark cases for backups: 1M records of ~200 bytes on a local disk.

    pytest benchmarks/test_bench_backup.py --benchmark-only -s

Targets (issue 5): full backup >= 50 MB/s of record data, incremental after changing 1% of
the records >= 10x faster than the full one, verify >= 150 MB/s, restore >= 50 MB/s (one
thread). Each case stores its MB/s in ``extra_info`` and the summary at the end prints them;
there are no timing assertions. Figures and what limits them: benchmarks/README.md.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ringguard import BackupRepository, MemoryBackend
from ringguard.backends import Records

N = 1_000_000
VALUE_BYTES = 184  # + a 16-byte key: ~200 bytes of record data
SEED = 20261127
_MBPS: list[tuple[str, float, float]] = []


def _records(n: int) -> tuple[Records, float]:
    rng = np.random.default_rng(SEED)
    keys = [b"user:%011d" % i for i in range(n)]
    # Text-like values (lowercase letters): compressible about as much as JSON documents.
    blob = (rng.integers(0, 26, size=n * VALUE_BYTES, dtype=np.uint8) + 97).tobytes()
    values: list[bytes | None] = [blob[i * VALUE_BYTES : (i + 1) * VALUE_BYTES] for i in range(n)]
    mb = (sum(map(len, keys)) + n * VALUE_BYTES) / 1e6
    return Records.build(keys, values, 1, np.arange(1, n + 1)), mb


@pytest.fixture(scope="module")
def data() -> tuple[MemoryBackend, float]:
    recs, mb = _records(N)
    src = MemoryBackend("n1")
    src.write(recs)
    return src, mb


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rg-bench-") as d:
        yield Path(d)


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

    _run(benchmark, "full backup", mb, lambda repo: repo.backup(src), setup)


def test_incremental_backup_1pct(
    benchmark: Any, data: tuple[MemoryBackend, float], workdir: Path
) -> None:
    src, mb = data
    repo = BackupRepository(workdir / "r")
    repo.backup(src)
    rng = np.random.default_rng(SEED + 1)
    epoch = iter(range(2, 100))

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        idx = rng.choice(N, N // 100, replace=False).tolist()
        keys = [b"user:%011d" % i for i in idx]
        src.write(Records.build(keys, [b"changed" * 26] * len(keys), next(epoch), 1))
        return (), {}

    _run(benchmark, "incremental (1% random keys)", mb, lambda: repo.backup(src), setup)
    benchmark.extra_info["chunks_written"] = repo.last_backup[0].chunks_written


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

    _run(benchmark, "restore", mb, lambda t: repo.restore(sid, t), setup)


def teardown_module() -> None:
    if _MBPS:
        print("\nbackup benchmarks (best of 3, 1M records):")
        for name, s, mbps in _MBPS:
            print(f"  {name:30s} {s:7.2f} s  {mbps:7.0f} MB/s")
