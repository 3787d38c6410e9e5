"""Backups: round trips, incremental uploads, and every fault case with its expected outcome.

Real files under ``tmp_path``; a real subprocess killed with SIGKILL for the crash case.
Sizes shrink on the pure-Python core (its key hashing costs ~5 us per key).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ringguard
from conftest import PURE_PYTHON
from ringguard import (
    BackupAuthError,
    BackupCorrupted,
    BackupFormatError,
    BackupLocked,
    BackupRepository,
    Cluster,
    MemoryBackend,
    ReplicatedStore,
    Ring,
    SQLiteBackend,
)
from ringguard.backends import Backend, Records
from ringguard.backends.base import DIGEST_BITS, record_digests
from ringguard.backup.manifest import (
    RANGE_COLUMNS,
    ChunkRef,
    Manifest,
    canonical,
    decode_table,
    empty_columns,
    encode_table,
    new_config,
)
from ringguard.placement.hashing import key_hashes

N = 400 if PURE_PYTHON else 20_000
BITS = 6  # 64 ranges: small chunks, quick tests
SCRYPT_N = 1 << 10  # test-only KDF cost


def make_records(n: int, seed: int = 1, epoch: int = 1) -> Records:
    rng = random.Random(seed)
    keys = [f"key:{i:07d}".encode() for i in range(n)]
    values: list[bytes | None] = [
        None if i % 50 == 7 else rng.randbytes(rng.randint(0, 300)) for i in range(n)
    ]
    return Records.build(keys, values, epoch, np.arange(1, n + 1))


def filled(n: int = N, name: str = "n1") -> MemoryBackend:
    b = MemoryBackend(name)
    b.write(make_records(n))
    return b


def dump(b: Backend) -> dict[bytes, tuple[bytes | None, int, int]]:
    out = {}
    for recs in b.scan():
        for k, v, e, s in zip(recs.keys, recs.values, recs.epochs.tolist(), recs.seqs.tolist(),
                              strict=True):
            out[k] = (v, e, s)
    return out


def chunk_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "chunks").rglob("*") if p.is_file()
                  and not p.name.startswith(".tmp-"))


def flip_bit(path: Path, pos: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[pos] ^= 1 << bit
    path.write_bytes(bytes(data))


def manifest_path(root: Path, sid: str) -> Path:
    return root / "snapshots" / f"{sid}.json"


def rewrite_manifest(root: Path, sid: str, edit: Any) -> None:
    """Edit a manifest and give it a valid checksum again (an attacker's forgery)."""
    doc = json.loads(manifest_path(root, sid).read_bytes())
    del doc["checksum"]
    edit(doc)
    doc["checksum"] = hashlib.sha256(canonical(doc)).hexdigest()
    manifest_path(root, sid).write_bytes(canonical(doc))


def get_table(doc: dict[str, Any]) -> dict[str, np.ndarray]:
    """The range table of a manifest document (format version 2 or 3), as arrays."""
    t = doc["ranges"]
    if doc["version"] == 2:
        return {k: np.frombuffer(base64.b64decode(t[k]), dtype=d).copy()
                for k, d in RANGE_COLUMNS.items()}
    return {k: v.copy() for k, v in decode_table(base64.b64decode(t["table"]),
                                                 t["rows"]).items()}


def set_table(doc: dict[str, Any], cols: dict[str, np.ndarray]) -> None:
    """Store ``cols`` as the range table of a manifest document, in its own version."""
    if doc["version"] == 2:
        doc["ranges"].update({k: base64.b64encode(np.ascontiguousarray(
            cols[k], dtype=d).tobytes()).decode() for k, d in RANGE_COLUMNS.items()})
    else:
        doc["ranges"]["table"] = base64.b64encode(encode_table(cols, 1)).decode()


def old_format(root: Path) -> Path:
    """Create an empty repository of format version 2 (what ringguard wrote before the
    compressed range table) at ``root``; the current code then keeps writing version 2."""
    root.mkdir(parents=True)
    (root / "config").write_bytes(new_config(uuid.uuid4().hex, None, version=2))
    return root


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture(params=[3, 2], ids=["format3", "format2"])
def any_format_dir(request: Any, tmp_path: Path) -> Path:
    """A repository directory: new (current format) or an existing version 2 one."""
    return tmp_path / "repo" if request.param == 3 else old_format(tmp_path / "repo")


# ---- round trips ------------------------------------------------------------------------


def digest_ranges(keys: list[bytes], bits: int = DIGEST_BITS) -> np.ndarray:
    return (key_hashes(keys) >> np.uint64(64 - bits)).astype(np.int64)


def assert_matches_backend(m: Manifest, b: Backend) -> None:
    """The snapshot's per-range counts and digests equal the node's own range digests."""
    counts, digests = b.range_digests(m.digest_bits)
    r = m.columns["range"].astype(np.int64)
    assert (counts[r] == m.columns["count"]).all() and (digests[r] == m.columns["digest"]).all()
    assert int(counts.sum()) == m.records


def test_full_and_incremental_round_trip(repo_dir: Path) -> None:
    """Expected: a restore equals the source (values, tombstones, versions); the manifest's
    range digests equal the node's; an incremental backup reads exactly the ranges whose
    digest changed and uploads them as one new chunk, naming the parent's for the rest."""
    src = filled()
    repo = BackupRepository(repo_dir, range_bits=BITS)
    s1 = repo.backup(src)
    m1 = repo.manifest(s1)
    groups = set((digest_ranges(list(dump(src))) >> (DIGEST_BITS - BITS)).tolist())
    assert len(chunk_files(repo_dir)) == len(m1.chunks) == len(groups)
    assert repo.last_backup[0].chunks_written == len(groups)
    assert repo.last_backup[0].records_read == N and repo.last_backup[0].parent is None
    assert_matches_backend(m1, src)
    target = MemoryBackend("t")
    assert repo.restore(s1, target).records == N
    assert dump(target) == dump(src)

    changed = [b"key:0000003", b"key:0000100", b"new-key"]
    src.write(Records.build(changed, [b"x", None, b"y"], 2, [1, 2, 3]))
    touched = set(digest_ranges(changed).tolist())
    in_touched = sum(r in touched for r in digest_ranges(list(dump(src))).tolist())
    before = set(chunk_files(repo_dir))
    s2 = repo.backup(src)
    new_files = set(chunk_files(repo_dir)) - before
    b2 = repo.last_backup[0]
    assert (b2.parent, b2.ranges_read, b2.records_read) == (s1, len(touched), in_touched)
    assert len(new_files) == 1 == b2.chunks_written
    m2 = repo.manifest(s2)
    assert len(m2.chunks) == len(groups) + 1  # the parent's chunks, and the new one
    assert m2.parent == s1 and m2.watermark == (2, 3) and not m2.fuzzy
    assert_matches_backend(m2, src)
    target2 = MemoryBackend("t2")
    repo.restore(s2, target2)
    assert dump(target2) == dump(src)
    assert [m.id for m in repo.snapshots()] == [s1, s2]
    st = repo.stats()
    assert st.snapshots == 2 and st.dedup > 1.5 and st.unique_bytes < st.logical_bytes
    assert st.stored_bytes > 0 and st.compression > 0


def test_verify_clean_reads_every_chunk(repo_dir: Path) -> None:
    """Expected: verify of an intact repository reports no problem and read every chunk."""
    repo = BackupRepository(repo_dir, range_bits=BITS)
    sid = repo.backup(filled())
    rep = repo.verify()
    assert rep.ok and rep.snapshots == 1
    assert rep.chunks == len(repo.manifest(sid).chunks)
    assert rep.bytes_read == sum(p.stat().st_size for p in chunk_files(repo_dir))
    assert repo.verify(sid, read_data=False).ok


def test_restore_keeps_newer_data_lww(repo_dir: Path) -> None:
    """Expected: restoring an old snapshot over newer records never overwrites them."""
    src = filled()
    repo = BackupRepository(repo_dir, range_bits=BITS)
    sid = repo.backup(src)
    src.write(Records.build([b"key:0000001"], [b"newer"], 5, 1))
    repo.restore(sid, src)
    assert src.read([b"key:0000001"]).values == [b"newer"]


def test_empty_backend_and_fsspec_memory_url() -> None:
    """Expected: an empty node backs up to an empty snapshot; memory:// works via fsspec."""
    pytest.importorskip("fsspec")
    url = f"memory://rg-test-{os.getpid()}-{time.time_ns()}"
    repo = BackupRepository(url, range_bits=BITS)
    empty = repo.backup(MemoryBackend("e"))
    assert repo.manifest(empty).records == 0 and repo.manifest(empty).watermark is None
    sid = repo.backup(filled(300))
    assert repo.verify().ok
    t = MemoryBackend("t")
    repo.restore(sid, t)
    assert dump(t) == dump(filled(300))


def test_fuzzy_flag_when_source_changes_during_backup(repo_dir: Path) -> None:
    """Expected: writes landing during the scan (one new key, one update of a key already
    read) mark the snapshot fuzzy and list exactly their two ranges (range digests are
    compared before and after, not only counts); a quiet backup is not fuzzy and its
    digests equal the node's (consistent at its watermark)."""
    late = [b"zz-late", b"key:0000001"]

    class Busy(MemoryBackend):
        def scan_range(self, lo: int, hi: int, batch_size: int = 10_000) -> Any:
            for i, b in enumerate(super().scan_range(lo, hi, batch_size=50)):
                if i == 1:
                    self.write(Records.build(late, [b"v", b"w"], 9, 9))
                yield b

    src = Busy("busy")
    src.write(make_records(300))
    repo = BackupRepository(repo_dir, range_bits=BITS)
    m = repo.manifest(repo.backup(src))
    assert m.fuzzy and list(m.fuzzy_ranges) == sorted(set(digest_ranges(late).tolist()))
    quiet = filled(300)
    m2 = repo.manifest(repo.backup(quiet))
    assert not m2.fuzzy and m2.fuzzy_ranges == ()
    assert_matches_backend(m2, quiet)


def test_import_ringguard_does_not_import_backup_extras() -> None:
    """Expected: zstandard, fsspec and cryptography load only when used."""
    code = ("import sys, ringguard; bad = [m for m in ('zstandard', 'fsspec', 'cryptography') "
            "if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---- damage -----------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncate", "flip-head", "flip-middle", "flip-last",
                                    "missing", "zero-length"])
def test_damaged_chunk_is_detected_and_nothing_restored(repo_dir: Path, damage: str) -> None:
    """Expected: verify names the damaged chunk with its range, node and snapshot; restore
    raises BackupCorrupted and writes nothing; allow_partial restores every other range
    and lists the damaged one as missing."""
    src = filled()
    repo = BackupRepository(repo_dir, range_bits=BITS)
    sid = repo.backup(src)
    m = repo.manifest(sid)
    chunk = m.chunks[3].id
    rows = m.columns["chunk"] == 3
    ranges = tuple(m.columns["range"][rows].tolist())
    lost = int(m.columns["count"][rows].sum())
    path = repo_dir / "chunks" / chunk[:2] / chunk
    size = path.stat().st_size
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: size // 2])
    elif damage == "flip-head":
        flip_bit(path, 5, 1)  # the codec byte
    elif damage == "flip-middle":
        flip_bit(path, size // 2, 3)
    elif damage == "flip-last":
        flip_bit(path, size - 1, 7)
    elif damage == "missing":
        path.unlink()
    else:
        path.write_bytes(b"")
    rep = repo.verify()
    assert not rep.ok
    assert len(rep.problems) == 1
    p = rep.problems[0]
    assert (p.snapshot, p.node, p.range, p.chunk) == (sid, "n1", ranges[0], chunk)
    assert p.ranges == ranges and p.kind == ("missing" if damage == "missing" else "chunk")
    target = MemoryBackend("t")
    with pytest.raises(BackupCorrupted) as exc:
        repo.restore(sid, target)
    assert exc.value.problems[0]["ranges"] == list(ranges)
    assert target.count() == 0  # nothing half-written
    rr = repo.restore(sid, target, allow_partial=True)
    assert rr.records == N - lost and [q.ranges for q in rr.missing] == [ranges]
    streamed = MemoryBackend("s")  # two-pass restore (payloads not kept in memory)
    with pytest.raises(BackupCorrupted):
        repo.restore(sid, streamed, memory_limit_bytes=0)
    assert streamed.count() == 0
    repo.restore(sid, streamed, allow_partial=True, memory_limit_bytes=0)
    assert dump(streamed) == dump(target)


def test_bit_flip_in_manifest_is_detected(repo_dir: Path) -> None:
    """Expected: one flipped bit anywhere in a manifest (20 seeded positions) makes verify
    report the manifest, hides the snapshot from snapshots() and fails restore."""
    repo = BackupRepository(repo_dir, range_bits=BITS)
    sid = repo.backup(filled(300))
    path = manifest_path(repo_dir, sid)
    original = path.read_bytes()
    rng = random.Random(5)
    for _ in range(20):
        path.write_bytes(original)
        flip_bit(path, rng.randrange(len(original)), rng.randrange(8))
        rep = repo.verify()
        assert [(p.kind, p.snapshot) for p in rep.problems] == [("manifest", sid)]
        assert repo.snapshots() == []
        with pytest.raises(BackupCorrupted):
            repo.restore(sid, MemoryBackend("t"))


def test_path_traversal_in_manifest_is_refused(repo_dir: Path, tmp_path: Path) -> None:
    """Expected: a forged manifest (valid checksum) naming ``../`` paths is rejected as
    invalid before any file is opened; no name outside the repository is reachable."""
    repo = BackupRepository(repo_dir, range_bits=BITS)
    sid = repo.backup(filled(300))
    secret = tmp_path / "secret"
    secret.write_bytes(b"do not read")

    def edit(doc: dict[str, Any]) -> None:
        doc["chunks"][0][0] = "../../secret"

    rewrite_manifest(repo_dir, sid, edit)
    rep = repo.verify()
    assert rep.problems[0].kind == "manifest" and "invalid" in rep.problems[0].detail
    with pytest.raises(BackupCorrupted, match="64 hex"):
        repo.restore(sid, MemoryBackend("t"))
    from ringguard.backup.store import check_name

    for bad in ("../config", "chunks/../../x", "/etc/passwd", "snapshots/a/../b.json"):
        with pytest.raises(ValueError, match="not a repository path"):
            check_name(bad)


def test_unknown_format_versions_are_refused(repo_dir: Path) -> None:
    """Expected: a config or manifest of a newer version is refused with a clear message
    naming both versions."""
    repo = BackupRepository(repo_dir, range_bits=BITS)
    sid = repo.backup(filled(300))
    rewrite_manifest(repo_dir, sid, lambda d: d.update(version=99))
    with pytest.raises(BackupFormatError,
                       match="version 99 is not supported.*reads versions 2, 3"):
        repo.manifest(sid)
    assert repo.verify().problems[0].kind == "manifest"
    cfg = json.loads((repo_dir / "config").read_bytes())
    cfg["version"] = 99
    (repo_dir / "config").write_text(json.dumps(cfg))
    with pytest.raises(BackupFormatError, match="repository format version 99 is not supported"):
        BackupRepository(repo_dir)
    (repo_dir / "config").write_bytes(b"")
    with pytest.raises(BackupFormatError, match="not valid JSON"):
        BackupRepository(repo_dir)


def test_broken_incremental_chain_does_not_matter(repo_dir: Path) -> None:
    """Expected: every snapshot names all its chunks, so losing the parent manifest leaves
    the child complete: it verifies and restores in full."""
    src = filled()
    repo = BackupRepository(repo_dir, range_bits=BITS)
    s1 = repo.backup(src)
    src.write(Records.build([b"key:0000010"], [b"changed"], 3, 1))
    s2 = repo.backup(src)
    manifest_path(repo_dir, s1).unlink()
    assert repo.verify().ok and [m.id for m in repo.snapshots()] == [s2]
    t = MemoryBackend("t")
    repo.restore(s2, t)
    assert dump(t) == dump(src)


# ---- crashes and concurrency ------------------------------------------------------------

_CRASH_SCRIPT = """
import sys, time
from ringguard import BackupRepository, MemoryBackend
from ringguard.backends import Records
from ringguard.backup import store

put = store.LocalStore.put
def slow_put(self, name, data, *, sync=True):
    put(self, name, data, sync=sync)
    if name.startswith("chunks/"):
        print("chunk", flush=True)
        time.sleep(0.02)
store.LocalStore.put = slow_put
b = MemoryBackend("n1")
n = int(sys.argv[2])
b.write(Records.build([b"k%06d" % i for i in range(n)], [b"v" * 50] * n, 7, 1))
BackupRepository(sys.argv[1], range_bits=6).backup(b, full=True)
print("finished", flush=True)
"""


def test_sigkill_mid_backup_leaves_no_half_snapshot(repo_dir: Path) -> None:
    """Expected: after SIGKILL in the middle of a backup, only the earlier snapshot is
    listed, verify passes, and the next backup (which rewrites the orphan chunks) is
    complete."""
    repo = BackupRepository(repo_dir, range_bits=6)
    first = repo.backup(filled(300))
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_CRASH_SCRIPT), str(repo_dir), "3000"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        seen = 0
        for line in proc.stdout:
            seen += line.startswith("chunk")
            if seen == 10:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL and seen == 10
    assert [m.id for m in repo.snapshots()] == [first]
    assert repo.verify().ok
    b = MemoryBackend("n1")
    b.write(Records.build([b"k%06d" % i for i in range(3000)], [b"v" * 50] * 3000, 7, 1))
    sid = repo.backup(b)
    assert repo.verify().ok
    t = MemoryBackend("t")
    repo.restore(sid, t)
    assert dump(t) == dump(b)


def test_disk_full_during_backup_commits_nothing(repo_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Expected: ENOSPC on the 5th chunk raises OSError; no snapshot is listed; verify
    passes; once space is back the backup succeeds."""
    from ringguard.backup import store

    repo = BackupRepository(repo_dir, range_bits=BITS)
    real_put = store.LocalStore.put
    calls = {"n": 0}

    def full_put(self: Any, name: str, data: bytes, *, sync: bool = True) -> None:
        calls["n"] += 1
        if calls["n"] >= 5:
            raise OSError(28, "No space left on device")
        real_put(self, name, data, sync=sync)

    monkeypatch.setattr(store.LocalStore, "put", full_put)
    with pytest.raises(OSError, match="No space"):
        repo.backup(filled())
    assert repo.snapshots() == [] and repo.verify().ok
    monkeypatch.setattr(store.LocalStore, "put", real_put)
    repo.backup(filled())
    assert repo.verify().ok and len(repo.snapshots()) == 1


def test_two_backups_of_the_same_node_at_once(repo_dir: Path) -> None:
    """Expected: both backups commit their own snapshot; both verify and restore equal."""
    src = filled()
    BackupRepository(repo_dir, range_bits=BITS)
    ids: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ids.append(BackupRepository(repo_dir, range_bits=BITS).backup(src))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors and len(ids) == 2
    repo = BackupRepository(repo_dir)
    assert sorted(m.id for m in repo.snapshots()) == sorted(ids)
    assert repo.verify().ok
    for sid in ids:
        t = MemoryBackend("t")
        repo.restore(sid, t)
        assert dump(t) == dump(src)


def test_prune_keeps_newest_by_watermark_and_sweeps(repo_dir: Path) -> None:
    """Expected: prune(keep_last=1) forgets the older snapshots (ordered by (epoch, seq)),
    deletes chunks nobody references, keeps a fresh orphan chunk (a running backup's) within
    the grace period, and waits for / refuses while a backup holds the lock."""
    src = filled()
    repo = BackupRepository(repo_dir, range_bits=BITS, lock_timeout_s=0.2)
    ids = [repo.backup(src)]
    for i in range(2):
        src.write(Records.build([b"key:0000000"], [b"z%d" % i], 10 + i, 1))
        ids.append(repo.backup(src))
    orphan = repo_dir / "chunks" / "ab" / ("ab" + "0" * 62)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"in-progress")
    with repo._locked(shared=True), pytest.raises(BackupLocked):
        repo.prune(keep_last=1, grace_s=0)
    forgotten = repo.prune(keep_last=1, grace_s=60)
    assert sorted(forgotten) == sorted(ids[:2]) and orphan.exists()
    assert [m.id for m in repo.snapshots()] == [ids[2]]
    m = repo.manifest(ids[2])
    live = len({c.id for c in m.chunks})
    # The second backup's chunk is superseded by the third's; kept within the grace period.
    assert len(chunk_files(repo_dir)) == live + 1 + 1
    repo.prune(keep_last=1, grace_s=0)
    assert not orphan.exists() and len(chunk_files(repo_dir)) == live and repo.verify().ok
    t = MemoryBackend("t")
    repo.restore(ids[2], t)
    assert dump(t) == dump(src)


# ---- copies -----------------------------------------------------------------------------


def test_copies_verify_restore_and_repair(tmp_path: Path) -> None:
    """Expected: with copies=2 a damaged chunk and manifest in copy 1 are reported for that
    copy only; restore reads the intact copy; repair() heals copy 1; stats count both."""
    urls = [str(tmp_path / "c1"), str(tmp_path / "c2")]
    repo = BackupRepository(urls, copies=2, range_bits=BITS)
    src = filled()
    sid = repo.backup(src)
    e = repo.manifest(sid).ranges[0]
    flip_bit(tmp_path / "c1" / "chunks" / e.chunk[:2] / e.chunk, 20)
    assert repo.stats().verified_copies is None
    rep = repo.verify()
    assert [(p.copy, p.chunk) for p in rep.problems] == [(repo.urls[0], e.chunk)]
    assert repo.stats().verified_copies == 1
    t = MemoryBackend("t")
    repo.restore(sid, t)
    assert dump(t) == dump(src)
    fixed = repo.repair()
    assert [p.chunk for p in fixed.repaired] == [e.chunk] and not fixed.unrepairable
    assert repo.verify().ok and repo.stats().verified_copies == 2
    manifest_path(tmp_path / "c2", sid).unlink()
    assert repo.verify().problems[0].copy == repo.urls[1]
    assert len(repo.repair().repaired) == 1 and repo.verify().ok
    st = repo.stats()
    assert st.copies == 2 and st.total_stored_bytes == 2 * st.stored_bytes
    with pytest.raises(ValueError, match="copies"):
        BackupRepository(urls[0], copies=2)


# ---- encryption -------------------------------------------------------------------------


def test_encryption_wrong_password_and_tampering(repo_dir: Path) -> None:
    """Expected: objects hold no plaintext; a wrong or missing password is refused; a
    tampered chunk fails authentication in verify and restore writes nothing."""
    pytest.importorskip("cryptography")
    src = MemoryBackend("n1")
    src.write(Records.build([b"secret-key"], [b"PLAINTEXT-VALUE" * 4], 1, 1))
    repo = BackupRepository(repo_dir, password="correct horse", range_bits=BITS,
                            scrypt_n=SCRYPT_N)
    sid = repo.backup(src)
    for p in repo_dir.rglob("*"):
        if p.is_file():
            assert b"PLAINTEXT" not in p.read_bytes() and b"secret-key" not in p.read_bytes()
    with pytest.raises(BackupAuthError, match="wrong password"):
        BackupRepository(repo_dir, password="wrong")
    with pytest.raises(BackupAuthError, match="encrypted"):
        BackupRepository(repo_dir)
    again = BackupRepository(repo_dir, password="correct horse")
    t = MemoryBackend("t")
    again.restore(sid, t)
    assert dump(t) == dump(src)
    (chunk,) = chunk_files(repo_dir)
    flip_bit(chunk, 30)
    rep = again.verify()
    assert "authentication failed" in rep.problems[0].detail
    t2 = MemoryBackend("t2")
    with pytest.raises(BackupCorrupted):
        again.restore(sid, t2)
    assert t2.count() == 0


# ---- placements and nodes ---------------------------------------------------------------


def _store(nodes: list[str], backends: dict[str, Backend]) -> ReplicatedStore:
    return ReplicatedStore(Cluster(Ring(nodes), 2), backends)


@pytest.mark.parametrize("change", ["one-more", "one-less"])
def test_restore_into_other_membership_reroutes(repo_dir: Path, change: str) -> None:
    """Expected: restoring every node's snapshot into a store with one node more (or less)
    puts each record on exactly its replicas under the new placement, versions kept."""
    old_nodes = ["a", "b", "c"]
    old = _store(old_nodes, {n: MemoryBackend(n) for n in old_nodes})
    n = N // 4
    keys = [f"user:{i}" for i in range(n)]
    old.put_many(keys, [f"v{i}".encode() for i in range(n)])
    repo = BackupRepository(repo_dir, range_bits=BITS)
    ids = repo.backup(old)
    assert len(ids) == 3
    new_nodes = old_nodes + ["d"] if change == "one-more" else ["a", "b"]
    new = _store(new_nodes, {x: MemoryBackend(x) for x in new_nodes})
    repo.restore(ids, new)
    assert new.get_many(keys) == old.get_many(keys)
    kb = [k.encode() for k in keys]
    prefs = new.cluster.placement.replicas(kb, 2)
    for j in range(len(new_nodes)):
        should = {kb[i] for i in np.flatnonzero((prefs == j).any(axis=1)).tolist()}
        assert set(dump(new.backends[j])) == should
    versions = {k: v[1:] for b in old.backends for k, v in dump(b).items()}
    assert all(versions[k] == v[1:] for b in new.backends for k, v in dump(b).items())


def test_restore_refuses_other_hash_function_unless_rehash(repo_dir: Path) -> None:
    """Expected: a snapshot taken under an xxh64 ring is not restored into a ketama ring
    (another hash function) unless rehash=True."""
    nodes = ["a", "b"]
    old = _store(nodes, {x: MemoryBackend(x) for x in nodes})
    old.put_many(["k1", "k2"], [b"1", b"2"])
    repo = BackupRepository(repo_dir, range_bits=BITS)
    ids = repo.backup(old)
    new = ReplicatedStore(Cluster(Ring.ketama(nodes), 2), {x: MemoryBackend(x) for x in nodes})
    with pytest.raises(ValueError, match="rehash=True"):
        repo.restore(ids, new)
    assert all(b.count() == 0 for b in new.backends)
    repo.restore(ids, new, rehash=True)
    assert new.get_many(["k1", "k2"]) == [b"1", b"2"]


def test_restore_node_rebuilds_wiped_sqlite_node(tmp_path: Path) -> None:
    """Expected: a wiped SQLite node is rebuilt from its newest snapshot, then recover()
    adds what was written after the backup; it ends with every record it should hold."""
    nodes = ["n1", "n2", "n3"]
    backends: dict[str, Backend] = {x: SQLiteBackend(tmp_path / f"{x}.db") for x in nodes}
    store = _store(nodes, backends)
    n = N // 4
    keys = [f"order:{i}" for i in range(n)]
    store.put_many(keys, [f"v{i}".encode() for i in range(n)])
    repo = BackupRepository(tmp_path / "repo", range_bits=BITS)
    repo.backup(store)
    store.put_many(keys[:20], [b"after-backup"] * 20)
    expected = dump(backends["n3"])
    store.cluster.mark_down("n3", reason="disk lost")
    backends["n3"].close()
    os.remove(tmp_path / "n3.db")
    backends["n3"] = SQLiteBackend(tmp_path / "n3.db")
    store.backends[2] = backends["n3"]
    rep = repo.restore_node(store, "n3")
    assert rep.records == repo.snapshots("n3")[-1].records > 0
    assert dump(backends["n3"]) == expected
    assert rep.recovery.records_copied == sum(
        1 for k, v in expected.items() if v[0] == b"after-backup"
    )
    assert store.cluster.is_up("n3")
    for b in backends.values():
        b.close()


def test_arguments_are_checked(repo_dir: Path) -> None:
    """Expected: wrong arguments raise TypeError/ValueError naming the argument."""
    with pytest.raises(ValueError, match="range_bits"):
        BackupRepository("/nonexistent-never-created", range_bits=40)
    with pytest.raises(ValueError, match="codec"):
        BackupRepository("/nonexistent-never-created", codec=7)
    repo = BackupRepository(repo_dir, codec=1)
    with pytest.raises(TypeError, match="source"):
        repo.backup(object())
    with pytest.raises(ValueError, match="node"):
        repo.backup(MemoryBackend("x"), node="")
    with pytest.raises(ValueError, match="not a snapshot id"):
        repo.manifest("../config")
    sid = repo.backup(filled(100))  # zlib-coded chunks restore like any others
    t = MemoryBackend("t")
    repo.restore(sid, t)
    assert dump(t) == dump(filled(100))
    assert ringguard.BackupRepository is BackupRepository


def test_consistent_forgery_with_keys_of_another_range_is_detected(any_format_dir: Path
                                                                   ) -> None:
    """Expected: a chunk whose digest, id, count and manifest all agree but whose keys
    belong to another range fails verify (every key is re-hashed in batch) and restore."""
    from ringguard.backup.codec import compress, decode_chunk, decompress, encode_chunk

    repo_dir = any_format_dir
    repo = BackupRepository(repo_dir, range_bits=BITS)
    sid = repo.backup(filled(2000))
    m = repo.manifest(sid)
    r0 = int(m.columns["range"][0])  # a range of chunk 0
    other = m.chunks[1]
    obj = (repo_dir / "chunks" / other.id[:2] / other.id).read_bytes()
    branges, bcounts, recs = decode_chunk(decompress(obj)[1])
    recs = recs.take(np.arange(int(bcounts[0])))  # the first block of chunk 1 ...
    vlens = np.array([-1 if v is None else len(v) for v in recs.values], dtype=np.int64)
    payload = encode_chunk(np.array([r0]), np.array([len(recs)]), recs, vlens)  # ... as r0
    digest = hashlib.sha256(payload).hexdigest()
    path = repo_dir / "chunks" / digest[:2] / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(compress(payload, 1))
    forged = int(record_digests(recs).sum(dtype=np.uint64))  # a consistent range digest

    def edit(doc: dict[str, Any]) -> None:
        cols = get_table(doc)
        doc["records"] += len(recs) - int(cols["count"][0])
        cols["count"][0], cols["digest"][0], cols["raw"][0] = len(recs), forged, 1
        cols["chunk"][0] = len(doc["chunks"])
        doc["chunks"].append([digest, digest, len(payload)])
        set_table(doc, cols)

    rewrite_manifest(repo_dir, sid, edit)
    rep = repo.verify()
    assert [(p.range, "does not hash into" in p.detail) for p in rep.problems] == [
        (r0, True)
    ]
    t = MemoryBackend("t")
    with pytest.raises(BackupCorrupted, match="does not hash into"):
        repo.restore(sid, t)
    assert t.count() == 0


def test_prune_retention_rules_follow_watermarks(repo_dir: Path) -> None:
    """Expected: keep_last takes the greatest (epoch, seq) watermarks even when the clock
    disagrees; keep_daily/keep_weekly keep the newest snapshot of each recent day/week."""
    from ringguard.backup.manifest import Manifest
    from ringguard.backup.repository import _retained

    day = 86400.0
    t0 = 1_700_000_000.0  # a Tuesday

    def snap(i: int, created: float, wm: tuple[int, int]) -> Manifest:
        return Manifest(f"{i:032x}", "n1", created, None, BITS, None, wm, False, 0, (),
                        empty_columns())

    ms = [
        snap(1, t0, (1, 10)),
        snap(2, t0 + 60, (1, 20)),  # same day, newer watermark
        snap(3, t0 + day, (1, 30)),
        snap(4, t0 + 8 * day, (2, 5)),  # next week
        snap(5, t0 + 8 * day + 60, (1, 40)),  # later clock, older epoch
    ]
    ids = {m.id: i + 1 for i, m in enumerate(ms)}

    def kept(**kw: Any) -> list[int]:
        return sorted(ids[x] for x in _retained(ms, kw.get("last"), kw.get("daily"),
                                                kw.get("weekly")))

    assert kept(last=1) == [4]
    assert kept(last=2) == [4, 5]
    assert kept(daily=2) == [3, 4]
    assert kept(daily=3) == [2, 3, 4]
    assert kept(weekly=2) == [3, 4]
    assert kept(last=1, weekly=2) == [3, 4]
    repo = BackupRepository(repo_dir)
    with pytest.raises(ValueError, match="keep_last"):
        repo.prune(keep_last=0)
    with pytest.raises(ValueError, match="give keep_last"):
        repo.prune()


@pytest.mark.parametrize("damage", ["truncate", "zero-length", "garbage"])
def test_damaged_manifest_hides_snapshot_and_restores_nothing(repo_dir: Path,
                                                               damage: str) -> None:
    """Expected: a truncated, empty or garbage manifest is reported by verify, the snapshot
    is not listed, restore raises BackupCorrupted and writes nothing, and the next backup
    of the node works (its parent is the last intact snapshot)."""
    repo = BackupRepository(repo_dir, range_bits=BITS)
    src = filled(300)
    first = repo.backup(src)
    second = repo.backup(src)
    path = manifest_path(repo_dir, second)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "zero-length": b"",
                      "garbage": b"\x00\xff" * 64}[damage])
    rep = repo.verify()
    assert [(p.kind, p.snapshot) for p in rep.problems] == [("manifest", second)]
    assert [m.id for m in repo.snapshots()] == [first]
    t = MemoryBackend("t")
    with pytest.raises(BackupCorrupted):
        repo.restore(second, t)
    assert t.count() == 0
    third = repo.backup(src)
    assert repo.manifest(third).parent == first


def test_chunk_damaged_between_verify_and_write_stops_the_restore(repo_dir: Path) -> None:
    """Expected: in a two-pass restore, a chunk damaged after the verification pass is
    caught when re-read; the restore stops with BackupCorrupted saying how many ranges
    were written, and never writes the damaged range."""
    repo = BackupRepository(repo_dir, range_bits=BITS)
    sid = repo.backup(filled())
    m = repo.manifest(sid)
    last = m.chunks[-1].id
    lost = int(m.columns["count"][m.columns["chunk"] == len(m.chunks) - 1].sum())

    class Saboteur(MemoryBackend):
        def write(self, records: Records, *, fenced: bool = False) -> int:
            if not self.count():
                p = repo_dir / "chunks" / last[:2] / last
                p.write_bytes(p.read_bytes()[:-1])
            return super().write(records, fenced=fenced)

    t = Saboteur("t")
    repo.write_batch_records = 1  # a write per chunk: the damage lands before the last one
    with pytest.raises(BackupCorrupted, match="changed during the restore"):
        repo.restore(sid, t, memory_limit_bytes=0)
    assert t.count() == N - lost if len(m.chunks) > 1 else t.count() == 0


def test_prune_during_a_running_backup_waits_and_loses_nothing(
    repo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Expected: while a backup (another thread) is writing chunks, prune cannot take the
    lock (BackupLocked, nothing deleted); after it commits, prune keeps its chunks and the
    new snapshot verifies and restores in full."""
    from ringguard.backup import store

    src = filled()
    repo = BackupRepository(repo_dir, range_bits=BITS, lock_timeout_s=0.3)
    old = repo.backup(src)
    src.write(Records.build([b"key:0000004"], [b"new"], 7, 1))
    started = threading.Event()
    release = threading.Event()
    real_put = store.LocalStore.put

    def slow_put(self: Any, name: str, data: bytes, *, sync: bool = True) -> None:
        real_put(self, name, data, sync=sync)
        if name.startswith("chunks/"):
            started.set()
            release.wait(10)

    monkeypatch.setattr(store.LocalStore, "put", slow_put)
    ids: list[str] = []
    th = threading.Thread(target=lambda: ids.append(repo.backup(src)))
    th.start()
    try:
        assert started.wait(10)
        before = chunk_files(repo_dir)
        with pytest.raises(BackupLocked):
            repo.prune(keep_last=1, grace_s=0)
        assert chunk_files(repo_dir) == before
    finally:
        release.set()
        th.join(30)
    monkeypatch.setattr(store.LocalStore, "put", real_put)
    assert repo.prune(keep_last=1, grace_s=0) == [old]
    assert repo.verify().ok
    t = MemoryBackend("t")
    repo.restore(ids[0], t)
    assert dump(t) == dump(src)


def test_redis_node_killed_and_restored(tmp_path: Path) -> None:
    """Expected: a RedisBackend on a real redis-server is backed up; after SIGKILL and a
    restart (no persistence: every key is lost) the restore brings back every record with
    its version and tombstones."""
    import shutil

    from test_failover_redis import REQUIRED, RedisProc

    if shutil.which("redis-server") is None:
        if REQUIRED:
            pytest.fail("RINGGUARD_REQUIRE_REDIS is set but redis-server is not installed")
        pytest.skip("redis-server is not installed")
    pytest.importorskip("redis")
    from ringguard import RedisBackend

    proc = RedisProc(tmp_path)
    proc.start()
    try:
        node = RedisBackend(proc.url)
        node.write(make_records(N // 10))
        expected = dump(node)
        repo = BackupRepository(tmp_path / "repo", range_bits=BITS)
        sid = repo.backup(node, node="redis-1")
        node.close()
        proc.kill()
        proc.start()
        node = RedisBackend(proc.url)
        assert node.count() == 0
        assert repo.restore(sid, node).records == len(expected)
        assert dump(node) == expected
        node.close()
    finally:
        proc.kill()


def test_wrong_range_digest_in_manifest_is_reported_for_that_range(any_format_dir: Path
                                                                   ) -> None:
    """Expected: a manifest (valid checksum) whose digest of one range is off by one is
    caught by verify, which recomputes every range's digest from the decoded records:
    exactly that range is reported (kind "range"); restore raises and writes nothing;
    allow_partial restores every other record."""
    src = filled()
    repo = BackupRepository(any_format_dir, range_bits=BITS)
    sid = repo.backup(src)
    m = repo.manifest(sid)
    row = len(m.columns["range"]) // 2
    r, lost = int(m.columns["range"][row]), int(m.columns["count"][row])

    def edit(doc: dict[str, Any]) -> None:
        cols = get_table(doc)
        cols["digest"][row] += np.uint64(1)
        set_table(doc, cols)

    rewrite_manifest(any_format_dir, sid, edit)
    rep = repo.verify()
    assert [(p.kind, p.range, "digest" in p.detail) for p in rep.problems] == [("range", r, True)]
    t = MemoryBackend("t")
    with pytest.raises(BackupCorrupted, match="digest"):
        repo.restore(sid, t)
    assert t.count() == 0
    assert repo.restore(sid, t, allow_partial=True).records == N - lost


def test_sqlite_node_digests_match_and_incremental_reads_only_changes(tmp_path: Path) -> None:
    """Expected: a snapshot of a SQLiteBackend node (digests kept by its own schema-3
    bookkeeping, an independent implementation) has exactly the node's range digests;
    after updating and deleting a few keys the incremental backup reads only their
    ranges; its restore equals the node."""
    node = SQLiteBackend(tmp_path / "n1.db")
    node.write(make_records(N))
    repo = BackupRepository(tmp_path / "repo", range_bits=BITS)
    repo.backup(node)
    changed = [b"key:0000005", b"key:0000777"]
    node.write(Records.build(changed, [b"new", None], 3, 1))
    sid = repo.backup(node)
    m = repo.manifest(sid)
    assert_matches_backend(m, node)
    touched = set(digest_ranges(changed).tolist())
    assert repo.last_backup[0].ranges_read == len(touched)
    assert repo.last_backup[0].records_read == sum(
        r in touched for r in digest_ranges(list(dump(node))).tolist())
    t = MemoryBackend("t")
    repo.restore(sid, t)
    assert dump(t) == dump(node)
    node.close()


def test_incremental_packs_changed_ranges_into_target_sized_chunks(repo_dir: Path) -> None:
    """Expected: an incremental backup with many scattered changes packs the ranges it read
    into several chunks of about chunk_target_bytes (never splitting a range), reuses the
    parent's chunks for the rest, and verifies and restores equal to the node."""
    src = filled()
    repo = BackupRepository(repo_dir, range_bits=BITS, chunk_target_bytes=2048)
    first = repo.backup(src)
    keys = [f"key:{i:07d}".encode() for i in range(0, N, 7 if PURE_PYTHON else 37)]
    src.write(Records.build(keys, [b"changed"] * len(keys), 4, 1))
    sid = repo.backup(src)
    b = repo.last_backup[0]
    m = repo.manifest(sid)
    new = [c for c in m.chunks if c.id not in {c.id for c in repo.manifest(first).chunks}]
    assert b.chunks_written == len(new) > 1 and b.ranges_read == len(set(digest_ranges(keys)))
    assert all(c.raw < 2048 + 8 * 1024 for c in new)  # target + at most one range's records
    assert_matches_backend(m, src)
    assert repo.verify().ok
    t = MemoryBackend("t")
    repo.restore(sid, t)
    assert dump(t) == dump(src)


@pytest.mark.parametrize("shape", ["fixed", "few_lengths", "many_lengths"])
def test_columnar_digests_equal_the_backends_record_digests(shape: str) -> None:
    """Expected: the digests, key hashes and records computed from a payload's columns
    (the verify/restore/backup path) equal record_digests/key_hashes of the same records,
    for one record layout, a few (key, value) length pairs, and many (the gather path),
    with tombstones and empty keys and values among them."""
    from ringguard.backup._columnar import decode_columns
    from ringguard.backup.codec import encode_chunk
    from ringguard.backup.snapshot import value_lengths

    rng = np.random.default_rng(7)
    n = 500
    if shape == "fixed":
        keys = [b"k%07d" % i for i in range(n)]
        vals: list[bytes | None] = [bytes(rng.integers(0, 256, 40, dtype=np.uint8))
                                    for _ in range(n)]
    else:
        top = 3 if shape == "few_lengths" else 300
        keys = [bytes(rng.integers(0, 256, int(rng.integers(0, 4 if top == 3 else 40)),
                                   dtype=np.uint8)) for _ in range(n)]
        vals = [None if rng.random() < 0.2 else
                bytes(rng.integers(0, 256, int(rng.integers(0, top)), dtype=np.uint8))
                for _ in range(n)]
    recs = Records.build(keys, vals, rng.integers(0, 2**62, n), rng.integers(0, 2**62, n))
    payload = encode_chunk(np.array([3, 9]), np.array([200, n - 200]), recs,
                           value_lengths(recs))
    cols = decode_columns(payload)
    assert cols.ranges.tolist() == [3, 9] and cols.counts.tolist() == [200, n - 200]
    assert cols.record_digests().tolist() == record_digests(recs).tolist()
    assert cols.key_hashes().tolist() == key_hashes(keys).tolist()
    idx = np.array([0, 7, 499])
    got = cols.records(idx, cols.key_hashes(), cols.record_digests())
    assert got.keys == [keys[i] for i in idx] and got.values == [vals[i] for i in idx]
    assert got.digests().tolist() == record_digests(recs.take(idx)).tolist()
    with pytest.raises(ValueError, match="lengths describe"):
        decode_columns(payload[:-1])


def test_snapshot_at_another_digest_resolution_is_never_extended(repo_dir: Path) -> None:
    """Expected: a snapshot written at another range resolution (an older or newer
    DIGEST_BITS) is read, verified and restored as written, and the next backup of the
    node is a full one at the backends' resolution (its ranges cannot be compared with
    the node's), after which backups are incremental again."""
    src = filled()
    old_res = BackupRepository(repo_dir, range_bits=BITS, digest_bits=DIGEST_BITS - 2)
    first = old_res.backup(src)
    assert old_res.manifest(first).digest_bits == DIGEST_BITS - 2
    src.write(Records.build([b"key:0000003"], [b"new"], 9, 1))
    repo = BackupRepository(repo_dir, range_bits=BITS)
    second = repo.backup(src)
    m = repo.manifest(second)
    assert m.digest_bits == DIGEST_BITS
    assert repo.last_backup[-1].parent is None  # a full backup
    assert repo.last_backup[-1].records_read == src.count()
    assert np.array_equal(
        np.bincount(m.columns["range"].astype(np.int64), weights=m.columns["count"],
                    minlength=2**DIGEST_BITS),
        src.range_digests(DIGEST_BITS)[0].astype(np.float64))
    assert repo.verify().ok
    t = MemoryBackend("t")
    repo.restore(first, t)
    assert dump(t) == {**dump(src), b"key:0000003": dump(filled())[b"key:0000003"]}
    src.write(Records.build([b"key:0000004"], [b"newer"], 9, 2))
    repo.backup(src)
    assert repo.last_backup[-1].parent == second
    assert 0 < repo.last_backup[-1].records_read < src.count()
    with pytest.raises(ValueError, match="range_bits"):
        BackupRepository(repo_dir, range_bits=DIGEST_BITS + 1)


class _OneRangeAtATime(MemoryBackend):
    """A MemoryBackend without the optional scan_ranges: backups call scan_range once
    per interval, as for any other backend."""

    scan_ranges = None  # type: ignore[assignment]


def test_backup_with_and_without_scan_ranges_is_identical(tmp_path: Path) -> None:
    """Expected: full and incremental backups of equal data through scan_ranges (one
    call) and through scan_range (one call per interval) give the same range tables and
    the same chunk ids, and the incremental one reads only part of the node."""
    nodes = [MemoryBackend("n"), _OneRangeAtATime("n")]
    mans = []
    for i, node in enumerate(nodes):
        node.write(make_records(N))
        repo = BackupRepository(tmp_path / f"r{i}", range_bits=BITS)
        repo.backup(node)
        node.write(make_records(N // 40, seed=3, epoch=5))
        node.write(Records.build([b"key:%07d" % j for j in range(0, N, 97)], [b"x"] * len(
            range(0, N, 97)), 6, 1))
        sid = repo.backup(node)
        assert 0 < repo.last_backup[-1].records_read < N
        assert repo.last_backup[-1].parent is not None
        mans.append(repo.manifest(sid))
        t = MemoryBackend("t")
        repo.restore(sid, t)
        assert dump(t) == dump(node)
    a, b = mans
    assert [c.id for c in a.chunks] == [c.id for c in b.chunks]
    for k in a.columns:
        np.testing.assert_array_equal(a.columns[k], b.columns[k])


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("node", ["db1", "\x00ringguard-column-digest\x00",
                                  "\x00ringguard-column-table\x00", "é-node"])
def test_manifest_columns_spliced_in_are_the_canonical_encoding(node: str, version: int
                                                                ) -> None:
    """Expected: dump_manifest writes the base64 range columns (version 2) or compressed
    table (version 3) into the JSON text without the encoder; the bytes equal canonical()
    of the whole document (checksum included), also when a field happens to contain a
    placeholder (the direct encoding is used then); loading gives the columns back."""
    from ringguard.backup.manifest import MANIFEST_FORMAT, dump_manifest, load_manifest

    rng = np.random.default_rng(7)
    rows = 50
    cols = empty_columns(rows)
    cols["range"][:] = np.sort(rng.choice(2**DIGEST_BITS, rows, replace=False))
    cols["count"][:] = rng.integers(1, 9, rows)
    cols["digest"][:] = rng.integers(0, 2**63, rows)
    cols["raw"][:] = rng.integers(1, 999, rows)
    cols["epoch"][:] = 3
    cols["seq"][:] = rng.integers(0, 10**6, rows)
    sid = "5" + "0" * 31
    m = Manifest(id=sid, node=node, created=1.5, placement="{}", range_bits=10,
                 parent=None, watermark=(3, 9), fuzzy=False, records=int(cols["count"].sum()),
                 chunks=(ChunkRef("a" * 64, "b" * 64, 10),), columns=cols,
                 digest_bits=DIGEST_BITS)
    doc = {
        "format": MANIFEST_FORMAT, "version": version, "id": sid, "node": node,
        "created": 1.5, "placement": "{}",
        "hash": {"function": m.hash_function, "seed": m.hash_seed, "range_bits": 10,
                 "digest_bits": DIGEST_BITS},
        "parent": None, "watermark": [3, 9], "fuzzy": False, "fuzzy_ranges": [],
        "records": m.records, "chunks": [["a" * 64, "b" * 64, 10]],
        "ranges": {"rows": rows},
    }
    set_table(doc, cols)
    body = canonical(doc)
    doc["checksum"] = hashlib.sha256(body).hexdigest()
    out = dump_manifest(m, version=version, codec=1)
    assert out == canonical(doc)
    back = load_manifest(out, sid)
    assert all(np.array_equal(back.columns[k], cols[k]) for k in RANGE_COLUMNS)


def test_backup_and_restore_report_progress(tmp_path: Path) -> None:
    """Expected: backup(progress=) goes from (0, records to read) to (total, total) without
    going back, and an incremental one counts only the records of the changed ranges;
    restore(progress=) goes from (0, 2N) to (2N, 2N), the first half verified before any
    write; verify(progress=) counts snapshots; a non-callable is a TypeError before any
    work."""
    n = 3000
    src = filled(n)
    repo = BackupRepository(tmp_path / "repo")
    repo.scan_batch_size = 500  # several batches, so several calls
    calls: list[tuple[int, int]] = []
    repo.backup(src, progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, n) and calls[-1] == (n, n) and len(calls) > 3
    assert all(a[0] <= b[0] and b[1] == n for a, b in zip(calls, calls[1:], strict=False))
    changed = [b"key:0000005", b"key:0000777"]
    src.write(Records.build(changed, [b"new", b"new"], 2, 1))
    digest_of = {int(r) for r in (key_hashes(changed) >> np.uint64(64 - DIGEST_BITS))}
    in_ranges = sum(1 for k in dump(src)
                    if int(key_hashes([k])[0] >> np.uint64(64 - DIGEST_BITS)) in digest_of)
    inc: list[tuple[int, int]] = []
    sid = repo.backup(src, progress=lambda d, t: inc.append((d, t)))
    assert inc[0] == (0, in_ranges) and inc[-1] == (in_ranges, in_ranges)
    target = MemoryBackend("t")
    writes_before: list[int] = []

    def on_restore(d: int, t: int) -> None:
        rest.append((d, t))
        if d <= t // 2:
            writes_before.append(target.count())

    rest: list[tuple[int, int]] = []
    repo.restore(sid, target, progress=on_restore)
    assert rest[0] == (0, 2 * n) and rest[-1] == (2 * n, 2 * n)
    assert all(a[0] <= b[0] for a, b in zip(rest, rest[1:], strict=False))
    assert set(writes_before) == {0}  # nothing written while verifying
    assert dump(target) == dump(src)
    ver: list[tuple[int, int]] = []
    assert repo.verify(progress=lambda d, t: ver.append((d, t))).ok
    assert ver == [(0, 2), (1, 2), (2, 2)]  # two snapshots, one copy
    with pytest.raises(TypeError, match="progress: expected a callable"):
        repo.verify(progress=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="progress: expected a callable"):
        repo.backup(src, progress=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="progress: expected a callable"):
        repo.restore(sid, MemoryBackend("u"), progress="x")  # type: ignore[arg-type]


def test_block_stats_greatest_version_equals_sorting() -> None:
    """Expected: block_stats' greatest (epoch, seq) of each block (computed with two
    reductions, no sort) equals max() of the (epoch, seq) tuples, ties of epoch included."""
    from ringguard.backup.snapshot import block_stats

    rng = np.random.default_rng(11)
    for n in (1, 2, 50, 3000):
        fine = np.sort(rng.integers(0, max(1, n // 4), n))
        epochs = rng.integers(0, 4, n)  # few epochs: many ties, decided by seq
        seqs = rng.integers(0, 2**62, n)
        recs = Records.build([b"k%d" % i for i in range(n)], [b"v"] * n, epochs, seqs)
        st = block_stats(fine, recs)
        want: dict[int, tuple[int, int]] = {}
        for f, e, s in zip(fine.tolist(), epochs.tolist(), seqs.tolist(), strict=True):
            want[f] = max(want.get(f, (-1, -1)), (e, s))
        assert st.ranges.tolist() == sorted(want)
        assert list(zip(st.epochs.tolist(), st.seqs.tolist(), strict=True)) == [
            want[f] for f in sorted(want)]
        rd = record_digests(recs)
        assert st.counts.sum() == n and st.digests.tolist() == [
            int(rd[fine == f].sum(dtype=np.uint64)) for f in sorted(want)]


def test_default_range_bits_follow_the_node_size(repo_dir: Path) -> None:
    """Expected: with range_bits=None a full backup groups ranges so a chunk holds about
    group_records records (one chunk per non-empty group of the chosen bits); a node that
    grew a little keeps the previous grouping, so unchanged groups deduplicate; an
    incremental backup extends a parent of any grouping; an explicit range_bits is kept."""
    src = filled()
    repo = BackupRepository(repo_dir)
    assert repo.range_bits is None
    repo.group_records = max(1, N // 50)  # ~50 records a chunk on the pure-Python core
    want_bits = ((N - 1) // repo.group_records).bit_length()  # N / 2**bits <= group_records
    s1 = repo.backup(src)
    m1 = repo.manifest(s1)
    groups = set((digest_ranges(list(dump(src))) >> (DIGEST_BITS - want_bits)).tolist())
    assert m1.range_bits == want_bits and len(m1.chunks) == len(groups)
    assert repo.last_backup[0].chunks_written == len(groups)
    assert max(int(c) for c in np.bincount(m1.columns["chunk"].astype(np.int64),
                                           weights=m1.columns["count"])) \
        <= 2 * repo.group_records  # a group never holds many more than the target
    # Grow the node by a quarter: the new choice is within one bit, so the old one stays,
    # and every group the new keys avoided is the same chunk again.
    extra = [f"more:{i:07d}".encode() for i in range(N // 4)]
    src.write(Records.build(extra, [b"e"] * len(extra), 2, np.arange(1, len(extra) + 1)))
    s2 = repo.backup(src, full=True)
    m2 = repo.manifest(s2)
    touched = set((digest_ranges(extra) >> (DIGEST_BITS - want_bits)).tolist())
    assert m2.range_bits == want_bits
    assert repo.last_backup[0].chunks_written == len(touched)
    assert repo.last_backup[0].chunks_reused == len(groups - touched)
    target = MemoryBackend("t")
    repo.restore(s2, target)
    assert dump(target) == dump(src)
    # An incremental backup by a repository with another grouping extends the parent.
    src.write(Records.build([b"key:0000003"], [b"changed"], 3, [1]))
    other = want_bits + 2
    explicit = BackupRepository(repo_dir, range_bits=other)
    s3 = explicit.backup(src)
    assert explicit.last_backup[0].parent is None  # explicit bits: only a same-bits parent
    assert explicit.manifest(s3).range_bits == other
    src.write(Records.build([b"key:0000004"], [b"changed"], 4, [1]))
    s4 = repo.backup(src)
    assert repo.last_backup[0].parent == s3 and repo.last_backup[0].ranges_read == 1
    assert repo.manifest(s4).range_bits == other  # inherited with the parent's chunks
    assert repo.verify().ok
    with pytest.raises(ValueError, match="range_bits"):
        BackupRepository(repo_dir, range_bits=-1)


def test_old_format_repository_is_still_backed_up_verified_and_restored(tmp_path: Path) -> None:
    """Expected: a repository of format version 2 (base64 range columns) is opened, backed
    up (full and incremental) in version 2 by the current code, verifies and restores
    exactly; a new repository is version 3 (one compressed range table) and its manifests
    are smaller for the same snapshot."""
    src = filled()
    old = BackupRepository(old_format(tmp_path / "old"), range_bits=BITS)
    new = BackupRepository(tmp_path / "new", range_bits=BITS)
    assert (old.format_version, new.format_version) == (2, 3)
    s_old, s_new = old.backup(src), new.backup(src)
    src.write(Records.build([b"key:0000003", b"brand-new"], [b"x", b"y"], 2, [1, 2]))
    s_old2 = old.backup(src)
    assert old.last_backup[0].parent == s_old and old.last_backup[0].ranges_read == 2
    docs = {}
    for root, sid in ((tmp_path / "old", s_old2), (tmp_path / "new", s_new)):
        docs[root.name] = json.loads(manifest_path(root, sid).read_bytes())
    assert docs["old"]["version"] == 2 and set(docs["old"]["ranges"]) == {*RANGE_COLUMNS, "rows"}
    assert docs["new"]["version"] == 3 and set(docs["new"]["ranges"]) == {"rows", "table"}
    assert json.loads((tmp_path / "old" / "config").read_bytes())["version"] == 2
    assert json.loads((tmp_path / "new" / "config").read_bytes())["version"] == 3
    assert manifest_path(tmp_path / "new", s_new).stat().st_size < manifest_path(
        tmp_path / "old", s_old).stat().st_size
    for a, b in zip(old.manifest(s_old).ranges, new.manifest(s_new).ranges, strict=True):
        assert (a.range, a.count, a.digest, a.raw) == (b.range, b.count, b.digest, b.raw)
    assert old.verify().ok and new.verify().ok
    target = MemoryBackend("t")
    assert old.restore(s_old2, target).records == len(dump(src))
    assert dump(target) == dump(src)


@pytest.mark.parametrize("damage", ["not_base64", "garbage", "rows_more", "rows_fewer",
                                    "truncated", "not_ascending"])
def test_damaged_compressed_range_table_is_refused(repo_dir: Path, damage: str) -> None:
    """Expected: a version 3 manifest with a valid checksum (a forgery) whose compressed
    range table is not base64, not a compressed object, holds more or fewer rows than
    "rows" says, is cut short, or decodes to range ids out of order is refused by name
    (BackupCorrupted); verify reports the manifest; restore writes nothing."""
    repo = BackupRepository(repo_dir, range_bits=BITS)
    sid = repo.backup(filled(2000))

    def edit(doc: dict[str, Any]) -> None:
        t = doc["ranges"]
        cols = get_table(doc)
        if damage == "not_base64":
            t["table"] = "!!" + t["table"]
        elif damage == "garbage":
            t["table"] = base64.b64encode(os.urandom(64)).decode()
        elif damage in ("rows_more", "rows_fewer"):
            keep = len(cols["range"]) + (1 if damage == "rows_more" else -1)
            more = {k: np.resize(v, keep) for k, v in cols.items()}
            t["table"] = base64.b64encode(encode_table(more, 2)).decode()
        elif damage == "truncated":
            t["table"] = base64.b64encode(base64.b64decode(t["table"])[:-9]).decode()
        else:
            cols["range"][[0, 1]] = cols["range"][[1, 0]]
            set_table(doc, cols)

    rewrite_manifest(repo_dir, sid, edit)
    want = "ranges table is damaged \\(range ids overflow|range row 0" if damage == \
        "not_ascending" else "ranges table"
    with pytest.raises(BackupCorrupted, match=want):
        repo.manifest(sid)
    assert [p.kind for p in repo.verify().problems] == ["manifest"]
    t = MemoryBackend("t")
    with pytest.raises(BackupCorrupted):
        repo.restore(sid, t)
    assert t.count() == 0


def test_local_store_flush_fsyncs_few_objects_and_syncfs_many(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Expected: flush() of a few objects fsyncs each file, its directory and the chunks
    directory (and never syncfs, which waits for every writer on the filesystem); of more
    than FSYNC_MAX_OBJECTS it makes one syncfs call where the platform has it."""
    from ringguard.backup import store as store_mod

    st = store_mod.LocalStore(str(tmp_path / "r"))
    names = [f"chunks/{i:02x}/{i:064x}" for i in range(store_mod.FSYNC_MAX_OBJECTS + 1)]
    for n in names:
        st.put(n, b"x", sync=False)
    synced: list[str] = []
    syncfs: list[str] = []
    monkeypatch.setattr(store_mod, "_fsync_path", synced.append)
    def fake_syncfs(path: str) -> bool:
        syncfs.append(path)
        return True

    monkeypatch.setattr(store_mod, "_syncfs", fake_syncfs)
    few = names[:2]
    st.flush(few)
    want = {st._path(n) for n in few} | {os.path.dirname(st._path(n)) for n in few}
    assert set(synced) == want | {str(tmp_path / "r" / "chunks")} and not syncfs
    synced.clear()
    st.flush(names)
    assert syncfs == [st.root] and not synced
