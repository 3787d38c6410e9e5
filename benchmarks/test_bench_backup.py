"""pytest-benchmark cases for backups: 1M records of ~200 bytes on a local disk.

    pytest benchmarks/test_bench_backup.py --benchmark-only -s
    python benchmarks/test_bench_backup.py            # every figure side by side, one run

Targets (issue 5): full backup >= 50 MB/s of record data, incremental after changing 1% of
the records >= 10x faster than the full one, verify >= 150 MB/s, restore >= 50 MB/s (one
thread). Each case stores its MB/s in ``extra_info`` and the summary at the end prints them;
there are no timing assertions. Figures and what limits them: benchmarks/README.md.

Sources: ``MemoryBackend`` (columns sorted by key hash: ``scan_range`` is a slice) and a
``SQLiteBackend`` on the local disk (``scan_range`` is a primary-key range). The box is
shared and noisy, so separate cases drift apart: the ``side_by_side`` cases time a full and
an incremental backup of the same node alternately in one run and report their ratio, and
the script mode (``python benchmarks/test_bench_backup.py --help``) measures full backup
into a fresh repository, full backup into the same one, incremental after 1%, verify and
restore round by round in one process and prints them with the ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ringguard import BackupRepository, MemoryBackend, SQLiteBackend
from ringguard.backends import Records
from ringguard.backends.base import DIGEST_BITS

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


def _change_1pct(node: Any, rng: np.random.Generator, epoch: int, n: int = N) -> None:
    idx = rng.choice(n, n // 100, replace=False).tolist()
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
        f"{rep.ranges_read} of {2**DIGEST_BITS} ranges, {rep.chunks_written} chunk(s) "
        "written)")


def test_full_vs_incremental_side_by_side(
    benchmark: Any, sqlite_node: tuple[SQLiteBackend, float], workdir: Path
) -> None:
    _side_by_side(benchmark, sqlite_node[0], workdir, "SQLite node")


def test_full_vs_incremental_side_by_side_memory(
    benchmark: Any, records: tuple[Records, float], workdir: Path
) -> None:
    node = MemoryBackend("n2")  # its own copy: this case writes to it
    node.write(records[0])
    _side_by_side(benchmark, node, workdir, "MemoryBackend")


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


# ---- script mode ------------------------------------------------------------------------


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[tuple[float, float], Any]:
    """``((wall s, CPU s of this process), result)``: on a shared box the CPU time is
    what the work costs, the wall time also what the other jobs took."""
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return (time.perf_counter() - t, time.process_time() - c), out


def zstd_levels(recs: Records, levels: tuple[int, ...] = (-5, -1, 1, 2, 3),
                repeat: int = 5) -> list[tuple[int, float, float]]:
    """``(level, compressed/raw, MB/s)`` of zstandard on one full-backup chunk payload of
    ``recs`` (its first ~8192 records in key-hash order, as a backup writes them), best of
    ``repeat``; decompression checked."""
    import zstandard

    from ringguard.backup.codec import encode_chunk
    from ringguard.backup.snapshot import key_lengths, value_lengths
    from ringguard.placement.hashing import key_hashes

    order = np.argsort(key_hashes(recs.keys), kind="stable")[:8192]
    part = recs.take(order)
    payload = encode_chunk(np.array([0]), np.array([len(part)]), part, value_lengths(part),
                           key_lengths(part))
    out = []
    for level in levels:
        c = zstandard.ZstdCompressor(level=level)
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            z = c.compress(payload)
            best = min(best, time.perf_counter() - t)
        assert zstandard.ZstdDecompressor().decompress(z) == payload
        out.append((level, len(z) / len(payload), len(payload) / best / 1e6))
    return out


def main(argv: list[str] | None = None) -> int:
    """Every backup figure in one process, round by round; prints a table."""
    ap = argparse.ArgumentParser(
        description="Full backup (fresh and same repository), incremental after changing "
        "1%% of the records, verify and restore, alternately in one run (best of --rounds).")
    ap.add_argument("--records", type=int, default=N, help="records (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default %(default)s)")
    ap.add_argument("--sqlite", action="store_true", help="also back up an SQLiteBackend node")
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    ap.add_argument("--zstd-levels", action="store_true",
                    help="also print zstandard ratio and speed by level on one chunk payload")
    args = ap.parse_args(argv)
    n = args.records
    load0 = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    recs, mb = _records(n)
    nodes: list[tuple[str, Any]] = []
    mem = MemoryBackend("n1")
    (t_fill, _), _ = _timed(mem.write, recs)
    nodes.append(("MemoryBackend", mem))
    with tempfile.TemporaryDirectory(prefix="rg-bench-", dir=args.dir) as d:
        root = Path(d)
        if args.sqlite:
            sq = SQLiteBackend(root / "n1.db", synchronous="NORMAL")
            for i in range(0, n, 100_000):
                sq.write(recs.take(np.arange(i, min(n, i + 100_000))))
            nodes.append(("SQLiteBackend", sq))
        print(f"ringguard backup figures, {n:,} records, {mb:.1f} MB of record data, "
              f"DIGEST_BITS={DIGEST_BITS}, started {started}, load average "
              f"{load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
        print(f"python {platform.python_version()}, {platform.machine()}, "
              f"{os.cpu_count()} CPUs; filling the MemoryBackend took {t_fill:.2f} s "
              f"({mb / t_fill:.0f} MB/s, one write)")
        if args.zstd_levels:
            for level, ratio, mbps in zstd_levels(recs):
                print(f"  zstd level {level:2d}: compressed/raw {ratio:.3f}, {mbps:5.0f} MB/s "
                      "(one ~2 MB chunk payload, best of 5)")
        for label, node in nodes:
            rng = np.random.default_rng(SEED + 3)
            epochs = iter(range(500, 600))
            repo = BackupRepository(root / f"repo-{label}")
            repo.backup(node)
            times: dict[str, list[tuple[float, float]]] = {
                k: [] for k in ("fresh", "same", "inc", "verify", "restore")}
            rep: Any = None
            for r in range(args.rounds):
                path = root / f"fresh-{label}-{r}"
                t, _ = _timed(BackupRepository(path).backup, node)
                times["fresh"].append(t)
                shutil.rmtree(path)
                t, sid_full = _timed(repo.backup, node, full=True)
                times["same"].append(t)
                _change_1pct(node, rng, next(epochs), n)
                t, sid = _timed(repo.backup, node)
                times["inc"].append(t)
                rep = repo.last_backup[-1]
                assert rep.parent == sid_full, "the incremental backup did not extend the full"
                t, vr = _timed(repo.verify, sid)
                assert vr.ok, vr.problems
                times["verify"].append(t)
                target = MemoryBackend("target")
                t, _ = _timed(repo.restore, sid, target)
                times["restore"].append(t)
                got = target.range_digests(DIGEST_BITS)
                want = node.range_digests(DIGEST_BITS)
                assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True)), \
                    "restored records differ from the node's"
                print(f"  round {r + 1} {label} (wall/CPU s): " + ", ".join(
                    f"{k} {v[-1][0]:.2f}/{v[-1][1]:.2f}" for k, v in times.items()),
                    flush=True)
            best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in times.items()}
            print(f"{label}, best of {args.rounds} (wall | CPU of this process):")
            for k, what in (("fresh", "full backup, fresh repository"),
                            ("same", "full backup, same repository"),
                            ("verify", "verify (incremental snapshot)"),
                            ("restore", "restore into a MemoryBackend")):
                w, c = best[k]
                print(f"  {what:34s} {w:6.2f} s {mb / w:5.0f} MB/s | {c:6.2f} s "
                      f"{mb / c:5.0f} MB/s")
            w, c = best["inc"]
            print(f"  {'incremental after 1% changed':34s} {w:6.3f} s | {c:6.3f} s")
            for k, what in (("fresh", "fresh full"), ("same", "same-repo full")):
                paired = sorted(a[0] / b[0] for a, b in zip(times[k], times["inc"],
                                                             strict=True))
                print(f"    {what} / incremental: best/best {best[k][0] / w:5.1f}x wall, "
                      f"{best[k][1] / c:5.1f}x CPU; per round (wall) "
                      + " ".join(f"{x:.1f}x" for x in paired))
            print(f"    read {rep.records_read:,} records in {rep.ranges_read:,} of "
                  f"{2**DIGEST_BITS:,} ranges, wrote {rep.chunks_written} chunk(s), "
                  f"{rep.bytes_written:,} bytes")
            node.close()
    load1 = os.getloadavg()
    print(f"finished {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, load average "
          f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
