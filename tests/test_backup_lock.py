"""The repository lock on local paths and ``memory://``, prune against running backups
(interleavings forced with events, not timing), streaming memory, and a real full disk.

Each test states its expected outcome in its docstring and asserts it.
"""

from __future__ import annotations

import errno
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import PURE_PYTHON
from ringguard import BackupLocked, BackupRepository, MemoryBackend
from ringguard.backends import Records
from ringguard.backup.lock import PRUNE_LOCK, LockDoc, marker_name
from ringguard.backup.store import ObjectStore
from test_backup import dump

N = 400 if PURE_PYTHON else 5_000
BITS = 4


class PausingBackend(MemoryBackend):
    """A node whose next ``scan_range`` stops at its start until ``release`` is set."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.pause = False
        self.in_scan = threading.Event()
        self.release = threading.Event()

    def scan_range(self, lo: int, hi: int, batch_size: int = 10_000) -> Iterator[Records]:
        it = super().scan_range(lo, hi, batch_size)
        if self.pause:
            self.pause = False
            self.in_scan.set()
            assert self.release.wait(30), "test did not release the backup"
        return it


def filled(n: int = N, name: str = "n1") -> PausingBackend:
    b = PausingBackend(name)
    keys = [f"key:{i:07d}".encode() for i in range(n)]
    b.write(Records.build(keys, [b"v%d" % i * 10 for i in range(n)], 1, np.arange(1, n + 1)))
    return b


@pytest.fixture(params=["local", "memory"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        pytest.importorskip("fsspec")
        return f"memory://rg-lock-{os.getpid()}-{time.time_ns()}"
    return str(tmp_path / "repo")


def store_of(repo: BackupRepository) -> ObjectStore:
    return repo._stores[0]


def chunk_names(repo: BackupRepository) -> list[str]:
    return store_of(repo).list("chunks")


def wait_for(cond: Any, what: str, timeout_s: float = 20.0) -> None:
    """Wait for a state (not a duration): fails the test if it never comes."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"never saw: {what}"
        time.sleep(0.005)


def run_thread(fn: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def body() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # reported by the test
            out.append(exc)

    th = threading.Thread(target=body, daemon=True)
    th.start()
    return th, out


def test_exclusive_create_refuses_a_second_creator(url: str) -> None:
    """Expected: create_exclusive writes the lock once; a second call returns False and
    leaves the first owner's document in place."""
    s = store_of(BackupRepository(url))
    assert s.create_exclusive(PRUNE_LOCK, b"first")
    assert not s.create_exclusive(PRUNE_LOCK, b"second")
    assert s.get(PRUNE_LOCK) == b"first"


def test_prune_waits_for_a_running_backup_and_loses_nothing(url: str) -> None:
    """Expected: while a backup is registered (paused inside its scan), a prune takes the
    lock object but deletes nothing and waits; once the backup commits, the prune forgets
    the parent and keeps every chunk the new (incremental) snapshot reuses from it: the
    new snapshot verifies and restores in full."""
    src = filled()
    repo = BackupRepository(url, range_bits=BITS, lock_timeout_s=30)
    old = repo.backup(src)
    src.write(Records.build([b"key:0000004"], [b"new"], 7, 1))
    before = chunk_names(repo)
    src.pause = True
    tb, rb = run_thread(lambda: repo.backup(src))
    assert src.in_scan.wait(20)
    markers = [n for n in store_of(repo).list("locks") if n.startswith("locks/backup-")]
    assert len(markers) == 1
    pruner = BackupRepository(url, lock_timeout_s=30)
    tp, rp = run_thread(lambda: pruner.prune(keep_last=1, grace_s=0))
    wait_for(lambda: store_of(repo).exists(PRUNE_LOCK), "the prune's lock object")
    assert tp.is_alive() and not rp  # blocked by the backup marker
    assert chunk_names(repo) == before and [m.id for m in repo.snapshots()] == [old]
    src.release.set()
    tb.join(30)
    tp.join(30)
    (new,) = rb
    assert isinstance(new, str) and rp == [[old]]
    m = repo.manifest(new)
    assert m.parent == old and len(m.chunks) > 1  # reuses the forgotten parent's chunks
    assert {c.id for c in m.chunks} <= {n.rsplit("/", 1)[1] for n in chunk_names(repo)}
    assert repo.verify().ok and store_of(repo).list("locks") == []
    t = MemoryBackend("t")
    repo.restore(new, t)
    assert dump(t) == dump(src)


def test_backup_waits_for_a_running_prune(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Expected: while a prune sweeps (paused at its first delete), a backup with a short
    timeout raises BackupLocked and leaves no marker or snapshot; one with a long timeout
    withdraws its marker and commits only after the prune finished; nothing is lost."""
    src = filled()
    repo = BackupRepository(url, range_bits=BITS, lock_timeout_s=30)
    repo.backup(src)
    src.write(Records.build([b"key:0000000"], [b"a"], 5, 1))
    repo.backup(src)
    src.write(Records.build([b"key:0000000"], [b"b"], 6, 1))  # supersedes the 2nd's chunk
    keep = repo.backup(src)
    in_sweep = threading.Event()
    release = threading.Event()
    cls = type(store_of(repo))
    real_delete = cls.delete

    def paused_delete(self: ObjectStore, name: str) -> None:
        if name.startswith("chunks/") and not in_sweep.is_set():
            in_sweep.set()
            assert release.wait(30)
        real_delete(self, name)

    monkeypatch.setattr(cls, "delete", paused_delete)
    tp, rp = run_thread(lambda: repo.prune(keep_last=1, grace_s=0))
    assert in_sweep.wait(20)
    quick = BackupRepository(url, range_bits=BITS, lock_timeout_s=0.3)
    with pytest.raises(BackupLocked, match="locked by a prune"):
        quick.backup(src)
    assert [n for n in store_of(repo).list("locks") if n != PRUNE_LOCK] == []
    patient = BackupRepository(url, range_bits=BITS, lock_timeout_s=30)
    tb, rb = run_thread(lambda: patient.backup(src, full=True))
    time.sleep(0.1)  # give it every chance to run early; the protocol must hold it back
    assert [m.id for m in repo.snapshots()] == [keep] and not rb
    release.set()
    tp.join(30)
    tb.join(30)
    assert len(rp[0]) == 2 and isinstance(rb[0], str)
    assert sorted(m.id for m in repo.snapshots()) == sorted([keep, rb[0]])
    assert repo.verify().ok
    t = MemoryBackend("t")
    repo.restore(rb[0], t)
    assert dump(t) == dump(src)


def test_stale_locks_expire_and_live_ones_block(url: str) -> None:
    """Expected: a prune lock whose lease ran out (a crashed prune) neither blocks a
    backup nor a prune, which takes it over; a live foreign prune lock makes a backup
    raise BackupLocked naming the prune; a stale backup marker does not hold a prune."""
    repo = BackupRepository(url, range_bits=BITS, lock_timeout_s=0.3)
    s = store_of(repo)
    s.put(PRUNE_LOCK, LockDoc.encode("prune", "a" * 32, -1.0))  # expired
    s.put(marker_name("b" * 32), LockDoc.encode("backup", "b" * 32, -1.0))
    sid = repo.backup(filled(50))
    assert repo.prune(keep_last=1) == [] and not s.exists(PRUNE_LOCK)
    assert [m.id for m in repo.snapshots()] == [sid]
    s.put(PRUNE_LOCK, LockDoc.encode("prune", "c" * 32, 600.0))  # live, someone else's
    with pytest.raises(BackupLocked, match="locked by a prune"):
        repo.backup(filled(50))
    with pytest.raises(BackupLocked, match="another prune"):
        repo.prune(keep_last=1)
    s.put(PRUNE_LOCK, b"\x00garbage")  # malformed: held until its mtime + lease
    with pytest.raises(BackupLocked):
        repo.backup(filled(50))


def test_backup_that_lost_its_marker_commits_nothing(url: str) -> None:
    """Expected: if a backup's marker disappears while it runs (its lease expired and a
    prune broke it), the backup raises BackupLocked at its commit point and no snapshot
    becomes visible."""
    src = filled()
    repo = BackupRepository(url, range_bits=BITS, lock_timeout_s=30)
    first = repo.backup(src)
    src.pause = True
    tb, rb = run_thread(lambda: repo.backup(src, full=True))
    assert src.in_scan.wait(20)
    for name in store_of(repo).list("locks"):
        store_of(repo).delete(name)
    src.release.set()
    tb.join(30)
    assert isinstance(rb[0], BackupLocked) and "lost its lock" in str(rb[0])
    assert [m.id for m in repo.snapshots()] == [first] and repo.verify().ok


def test_full_backup_streams_one_range_group_at_a_time(tmp_path: Path) -> None:
    """Expected: a backup holds at most one scan batch plus one range group of records
    (not the node): the packer's peak stays below batch + the largest group, and the
    node is read once, in key-hash order."""
    n = 2_000 if PURE_PYTHON else 20_000
    src = filled(n)
    repo = BackupRepository(tmp_path / "repo", range_bits=6)
    repo.scan_batch_size = 100
    sid = repo.backup(src)
    m = repo.manifest(sid)
    group = (m.columns["range"].astype(np.int64) >> (m.digest_bits - 6))
    largest = int(np.bincount(group, weights=m.columns["count"]).max())
    peak = repo.last_backup[0].peak_records
    assert peak <= 100 + largest and peak < n // 10
    assert repo.last_backup[0].records_read == n
    t = MemoryBackend("t")
    repo.restore(sid, t)
    assert dump(t) == dump(src)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs (needs root and mount(2); skipped with the reason otherwise)."""
    d = tmp_path / "small"
    d.mkdir()
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot run mount for a small tmpfs: {exc}")
    if proc.returncode != 0:
        pytest.skip(f"mounting a 1 MiB tmpfs is not permitted here: {proc.stderr.strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], capture_output=True, timeout=30, check=False)


def test_disk_full_on_a_real_small_tmpfs(small_tmpfs: Path) -> None:
    """Expected: a backup that runs out of space on a real 1 MiB tmpfs raises OSError
    (ENOSPC); no snapshot of it is visible and no temp file is left; the repository still
    verifies and restores the earlier snapshot; after space is freed the same backup
    succeeds and restores in full."""
    rng = np.random.default_rng(3)
    repo = BackupRepository(small_tmpfs / "repo", range_bits=2, codec=0)
    first_src = filled(50)
    first = repo.backup(first_src)
    filler = small_tmpfs / "filler"
    filler.write_bytes(b"\0" * 768 * 1024)
    big = MemoryBackend("big")
    n = 1000
    big.write(Records.build([b"b%05d" % i for i in range(n)],
                            [rng.bytes(300) for _ in range(n)], 1, np.arange(1, n + 1)))
    with pytest.raises(OSError) as exc:
        repo.backup(big)
    assert exc.value.errno == errno.ENOSPC
    assert [m.id for m in repo.snapshots()] == [first]
    assert not [p for p in (small_tmpfs / "repo").rglob(".tmp-*")]
    assert repo.verify().ok and store_of(repo).list("locks") == []
    t = MemoryBackend("t")
    repo.restore(first, t)
    assert dump(t) == dump(first_src)
    filler.unlink()
    sid = repo.backup(big)
    assert repo.verify().ok and len(repo.snapshots()) == 2
    t2 = MemoryBackend("t2")
    repo.restore(sid, t2)
    assert dump(t2) == dump(big)


def test_backup_blocked_in_one_copy_withdraws_from_all(tmp_path: Path) -> None:
    """Expected: with copies=2 and a live prune lock only in the second copy (a prune
    that is taking the lock copy by copy), a backup withdraws its marker from the first
    copy too (so that prune is never held up by it) and raises BackupLocked; once the lock
    is gone the backup goes through and leaves no lock objects."""
    urls = [str(tmp_path / "c1"), str(tmp_path / "c2")]
    repo = BackupRepository(urls, copies=2, range_bits=BITS, lock_timeout_s=0.3)
    c1, c2 = repo._stores
    c2.put(PRUNE_LOCK, LockDoc.encode("prune", "d" * 32, 600.0))
    with pytest.raises(BackupLocked, match="locked by a prune"):
        repo.backup(filled(50))
    assert c1.list("locks") == [] and c2.list("locks") == [PRUNE_LOCK]
    c2.delete(PRUNE_LOCK)
    sid = repo.backup(filled(50))
    assert c1.list("locks") == [] == c2.list("locks") and repo.verify().ok
    assert [m.id for m in repo.snapshots()] == [sid]
