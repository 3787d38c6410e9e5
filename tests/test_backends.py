"""The backend interface on every backend: range scans by key hash and range digests.

Each test runs on MemoryBackend, SQLiteBackend and RedisBackend (one real redis-server per
module; CI sets RINGGUARD_REQUIRE_REDIS=1 so a missing server fails instead of skipping).
Digests are checked against a from-scratch recomputation (``digests_of`` over a scan) and
against an independent encoding (``struct`` + the pure-Python reference XXH64).
"""

from __future__ import annotations

import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import scaled
from ringguard.backends import Backend, MemoryBackend, Records, SQLiteBackend, StaleEpochError
from ringguard.backends.base import (
    DIGEST_BITS,
    HASH_SPACE,
    digests_of,
    fold_digests,
    key_hashes,
    record_digests,
)
from ringguard.reference.ring import xxh64 as ref_xxh64

N = scaled(3000, 400)


_prefix_counter = iter(range(10**9))


@pytest.fixture(params=["memory", "sqlite", "sqlite-apsw", "redis"])
def make_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], Backend]]:
    """A factory of fresh, empty backends of one kind."""
    made: list[Backend] = []

    def make() -> Backend:
        b: Backend
        if request.param == "memory":
            b = MemoryBackend()
        elif request.param.startswith("sqlite"):
            driver = "apsw" if request.param == "sqlite-apsw" else "sqlite3"
            if driver == "apsw":
                pytest.importorskip("apsw")
            b = SQLiteBackend(tmp_path / f"n{len(made)}.db", synchronous="NORMAL",
                              driver=driver)
        else:
            from ringguard.backends import RedisBackend

            url = request.getfixturevalue("redis_url")
            b = RedisBackend(url, prefix=f"t{next(_prefix_counter)}:")
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def _records(rng: np.random.Generator, n: int, *, epoch: int = 1, tomb: float = 0.1) -> Records:
    keys = [f"key:{i}".encode() for i in rng.permutation(n).tolist()]
    values: list[bytes | None] = [
        None if rng.random() < tomb else rng.bytes(int(rng.integers(0, 40))) for _ in keys
    ]
    seqs = rng.integers(0, 2**62, n)
    return Records.build(keys, values, epoch, seqs)


def _scan_all(b: Backend) -> dict[bytes, tuple[bytes | None, int, int]]:
    out = {}
    for recs in b.scan():
        for k, v, e, s in zip(
            recs.keys, recs.values, recs.epochs.tolist(), recs.seqs.tolist(), strict=True
        ):
            assert k not in out
            out[k] = (v, e, s)
    return out


def _assert_digests_consistent(b: Backend) -> None:
    """Incremental digests equal a recomputation from a scan, at several resolutions."""
    for bits in (0, 1, 5, DIGEST_BITS):
        counts, sums = b.range_digests(bits)
        assert counts.dtype == np.uint64 and sums.dtype == np.uint64
        assert counts.shape == sums.shape == (2**bits,)
        c2, s2 = digests_of(b.scan(), bits)
        np.testing.assert_array_equal(counts, c2)
        np.testing.assert_array_equal(sums, s2)


# ---- the canonical encoding, against an independent implementation ------------------------


def _ref_digest(key: bytes, value: bytes | None, epoch: int, seq: int) -> int:
    head = struct.pack("<QQBI", epoch, seq, 1 if value is None else 0, len(key))
    return ref_xxh64(head + key + (value or b""), 0)


@pytest.mark.parametrize("tomb", [0.3, 0.0])  # 0.0: the batch path without tombstones
def test_record_digest_matches_the_documented_encoding(tomb: float) -> None:
    rng = np.random.default_rng(1)
    recs = _records(rng, 200, epoch=7, tomb=tomb)
    assert (None in recs.values) == (tomb > 0)
    got = record_digests(recs).tolist()
    want = [
        _ref_digest(k, v, e, s)
        for k, v, e, s in zip(
            recs.keys, recs.values, recs.epochs.tolist(), recs.seqs.tolist(), strict=True
        )
    ]
    assert got == want
    # A tombstone and an empty value differ; so do versions.
    a = record_digests(Records.build([b"k", b"k", b"k"], [None, b"", b""], 1, [2, 2, 3]))
    assert len(set(a.tolist())) == 3
    assert record_digests(Records.build([], [], 0, 0)).shape == (0,)


def _cores() -> list[Any]:
    """The pure-Python core, and the compiled one when it is built."""
    from ringguard import _pycore

    try:
        from ringguard import _core
    except ImportError:  # a pure-Python install
        return [_pycore]
    return [_pycore, _core]


def test_record_digests_compiled_and_pure_cores_agree_with_the_encoding() -> None:
    """Expected: both cores' record_digests equal the documented encoding hashed by the
    ``xxhash`` package, for empty, short and large (buffer-growing) keys and values and
    extreme versions; a non-bytes key or value, a negative version or mismatched lengths
    raise naming the first offending record."""
    xxhash = pytest.importorskip("xxhash")
    cores = _cores()
    rng = np.random.default_rng(9)
    keys = [b"", b"k", rng.bytes(300), rng.bytes(5000), b"x" * 70_000]
    vals: list[bytes | None] = [b"", None, rng.bytes(10_000), b"v", rng.bytes(200_000)]
    ep = np.array([0, 2**63 - 1, 5, 1, 2**40], dtype=np.int64)
    sq = np.array([2**63 - 1, 0, 7, 2**32, 3], dtype=np.int64)
    want = [  # the encoding of the module docstring, hashed by the xxhash package
        xxhash.xxh64_intdigest(
            struct.pack("<QQBI", e, s, v is None, len(k)) + k + (v or b""), seed=0)
        for k, v, e, s in zip(keys, vals, ep.tolist(), sq.tolist(), strict=True)
    ]
    for core in cores:
        out = np.empty(len(keys), dtype=np.uint64)
        core.record_digests(keys, vals, ep, sq, out)
        assert out.tolist() == want, core.__name__
        with pytest.raises(TypeError, match=r"keys\[1\]"):
            core.record_digests([b"a", "b"], [b"", b""], ep[:2], sq[:2], out[:2])
        with pytest.raises(TypeError, match=r"values\[0\]"):
            core.record_digests([b"a"], [bytearray(b"x")], ep[:1], sq[:1], out[:1])
        with pytest.raises(ValueError, match=r"records\[1\]"):
            core.record_digests([b"a", b"b"], [b"", b""], np.array([1, -1]), sq[:2], out[:2])
        with pytest.raises(ValueError, match="2 keys but 1 values"):
            core.record_digests([b"a", b"b"], [b""], ep[:2], sq[:2], out[:2])
    assert record_digests(Records(keys, vals, ep, sq)).tolist() == want


def test_record_digests_columns_equal_the_list_form_and_check_bounds() -> None:
    """Expected: the columnar kernel (keys back to back, then values back to back, as a
    backup chunk stores them) gives each core's list-form digests for random records with
    tombstones and empty keys; bounds outside the buffer, decreasing bounds, a tombstone
    with a value, a negative version and mismatched lengths raise naming the record."""
    cores = _cores()
    rng = np.random.default_rng(10)
    n = 300
    keys = [rng.bytes(int(rng.integers(0, 30))) for _ in range(n)]
    vals: list[bytes | None] = [
        None if rng.random() < 0.2 else rng.bytes(int(rng.integers(0, 600))) for _ in range(n)]
    ep = rng.integers(0, 2**63, n, dtype=np.int64)
    sq = rng.integers(0, 2**63, n, dtype=np.int64)
    kb = b"".join(keys)
    data = np.frombuffer(kb + b"".join(v or b"" for v in vals), dtype=np.uint8)
    koff = np.concatenate(([0], np.cumsum([len(k) for k in keys]))).astype(np.int64)
    voff = len(kb) + np.concatenate(([0], np.cumsum([len(v or b"") for v in vals])))
    tomb = np.array([v is None for v in vals], dtype=np.uint8)
    want = np.empty(n, dtype=np.uint64)
    cores[0].record_digests(keys, vals, ep, sq, want)  # the pure-Python core
    for core in cores:
        out = np.empty(n, dtype=np.uint64)
        core.record_digests_columns(data, koff, voff, tomb, ep, sq, out)
        np.testing.assert_array_equal(out, want, err_msg=core.__name__)
        bad = voff.copy()
        bad[-1] = len(data) + 1
        with pytest.raises(ValueError, match=rf"values\[{n - 1}\]"):
            core.record_digests_columns(data, koff, bad, tomb, ep, sq, out)
        bad = koff.copy()
        bad[5] = bad[6] + 1
        with pytest.raises(ValueError, match=r"keys\[5\]"):
            core.record_digests_columns(data, bad, voff, tomb, ep, sq, out)
        t = tomb.copy()
        j = int(np.flatnonzero((tomb == 0) & (np.diff(voff) > 0))[0])
        t[j] = 1
        with pytest.raises(ValueError, match=rf"values\[{j}\]: a tombstone with a value"):
            core.record_digests_columns(data, koff, voff, t, ep, sq, out)
        e = ep.copy()
        e[7] = -1
        with pytest.raises(ValueError, match=r"records\[7\]"):
            core.record_digests_columns(data, koff, voff, tomb, e, sq, out)
        with pytest.raises(ValueError, match="records but"):
            core.record_digests_columns(data, koff, voff, tomb[:-1], ep, sq, out)
        empty = np.empty(0, dtype=np.uint64)
        core.record_digests_columns(data[:0], koff[:1], voff[:1], tomb[:0], ep[:0], sq[:0],
                                    empty)


def test_key_hash_is_xxh64_seed0_of_the_key() -> None:
    keys = [b"", b"a", b"order:1", bytes(range(256))]
    assert key_hashes(keys).tolist() == [ref_xxh64(k, 0) for k in keys]
    assert int(key_hashes([b""])[0]) == 0xEF46DB3751D8E999  # published XXH64 vector


# ---- digests ------------------------------------------------------------------------------


def test_digests_of_an_empty_backend(make_backend: Callable[[], Backend]) -> None:
    b = make_backend()
    for bits in (0, 3, DIGEST_BITS):
        counts, sums = b.range_digests(bits)
        assert not counts.any() and not sums.any() and len(counts) == 2**bits


def test_incremental_digests_equal_recomputation_and_other_backends(
    make_backend: Callable[[], Backend],
) -> None:
    rng = np.random.default_rng(2)
    b = make_backend()
    model = MemoryBackend("model")
    first = _records(rng, N)
    for target in (b, model):
        assert target.write(first) == N
    _assert_digests_consistent(b)
    before = b.range_digests(DIGEST_BITS)

    # A rejected (older) write changes nothing, not even the digests.
    older = Records.build(first.keys, [b"older"] * N, 0, 0)
    assert b.write(older) == 0
    after = b.range_digests(DIGEST_BITS)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])

    # Overwrites (newer), deletes (tombstones), new keys, and a replay of the same batch.
    over = first.take(np.arange(0, N, 3))
    over = Records.build(over.keys, [b"new"] * len(over), 2, over.seqs)
    dels = first.take(np.arange(1, N, 5))
    dels = Records.build(dels.keys, [None] * len(dels), 3, 0)
    fresh = Records.build([f"fresh:{i}".encode() for i in range(N // 4)], [b"x"] * (N // 4), 1, 1)
    for batch in (over, dels, fresh, over):
        applied = b.write(batch)
        assert applied == model.write(batch)
    assert b.count() == model.count() == N + N // 4
    _assert_digests_consistent(b)
    for bits in (0, 8, DIGEST_BITS):
        for x, y in zip(b.range_digests(bits), model.range_digests(bits), strict=True):
            np.testing.assert_array_equal(x, y)
    assert _scan_all(b) == _scan_all(model)


def test_digests_do_not_depend_on_write_order(make_backend: Callable[[], Backend]) -> None:
    rng = np.random.default_rng(3)
    recs = _records(rng, N // 2)
    newer = Records.build(recs.keys[::2], [b"v2"] * len(recs.keys[::2]), 5, 1)
    a, b = make_backend(), make_backend()
    a.write(recs)
    a.write(newer)
    # b: newer first (the older records then lose), in reversed small batches.
    for i in range(len(newer), 0, -97):
        b.write(newer.take(np.arange(max(0, i - 97), i)))
    assert b.write(recs) == len(recs) - len(newer)
    for bits in (0, 4, DIGEST_BITS):
        for x, y in zip(a.range_digests(bits), b.range_digests(bits), strict=True):
            np.testing.assert_array_equal(x, y)


def test_coarser_digests_are_sums_of_finer(make_backend: Callable[[], Backend]) -> None:
    b = make_backend()
    b.write(_records(np.random.default_rng(4), N))
    fine_c, fine_s = b.range_digests(DIGEST_BITS)
    for bits in range(DIGEST_BITS):
        c, s = b.range_digests(bits)
        c1, s1 = b.range_digests(bits + 1)
        np.testing.assert_array_equal(c, c1[0::2] + c1[1::2])
        np.testing.assert_array_equal(s, s1[0::2] + s1[1::2])  # uint64: wraps mod 2**64
        c2, s2 = fold_digests(fine_c, fine_s, bits)
        np.testing.assert_array_equal(c, c2)
        np.testing.assert_array_equal(s, s2)
    assert int(b.range_digests(0)[0][0]) == N


def test_many_overwrites_of_one_key_keep_digests_exact(make_backend: Callable[[], Backend]) -> None:
    # Exercises the subtraction (borrow/carry) path of every backend's bookkeeping.
    b = make_backend()
    for s in range(1, 60):
        b.write(Records.build([b"hot", b"other"], [bytes([s]) * s, None], 1, [s, 60 - s]))
    _assert_digests_consistent(b)
    assert b.count() == 2


def test_a_key_repeated_in_one_batch_keeps_the_greatest_version(
    make_backend: Callable[[], Backend],
) -> None:
    # Backends that read the stored versions of a whole chunk up front (Redis) must still
    # compare a repeated key with the record the same batch already put there.
    b = make_backend()
    b.write(Records.build([b"old"], [b"o"], 1, 5))
    keys = [b"new", b"old", b"new", b"old", b"new", b"x"]
    vals: list[bytes | None] = [b"n1", b"o2", b"n3", None, b"n0", b"x1"]
    seqs = [2, 7, 9, 8, 1, 3]  # "new": 9 wins; "old": 8 (a tombstone) wins
    applied = b.write(Records.build(keys, vals, 1, seqs))
    assert applied == 5  # n1, n3, o2, the tombstone, x1; n0 loses to n1 already written
    got = b.read([b"new", b"old", b"x"])
    assert got.values == [b"n3", None, b"x1"]
    assert got.seqs.tolist() == [9, 8, 3]
    assert b.count() == 3
    _assert_digests_consistent(b)


def test_bad_bits(make_backend: Callable[[], Backend]) -> None:
    b = make_backend()
    for bad in (-1, DIGEST_BITS + 1, 64):
        with pytest.raises(ValueError, match="bits"):
            b.range_digests(bad)
    for wrong in (1.5, "3", True, None):
        with pytest.raises(TypeError, match="bits"):
            b.range_digests(wrong)  # type: ignore[arg-type]


def test_stale_epoch_write_leaves_digests_unchanged(make_backend: Callable[[], Backend]) -> None:
    b = make_backend()
    b.write(Records.build([b"a", b"b"], [b"1", b"2"], 3, 1))
    before = b.range_digests(DIGEST_BITS)
    b.set_fence(5)
    with pytest.raises(StaleEpochError):
        b.write(Records.build([b"a", b"c"], [b"x", b"y"], [6, 4], 9), fenced=True)
    after = b.range_digests(DIGEST_BITS)
    np.testing.assert_array_equal(before[1], after[1])
    assert b.count() == 2


# ---- scan_range ---------------------------------------------------------------------------


def test_scan_range_boundaries(make_backend: Callable[[], Backend]) -> None:
    b = make_backend()
    recs = _records(np.random.default_rng(5), N)
    b.write(recs)
    h = key_hashes(recs.keys)
    by_hash = dict(zip(h.tolist(), recs.keys, strict=True))
    hs = sorted(by_hash)

    def keys_in(lo: int, hi: int, batch_size: int = 10_000) -> list[bytes]:
        out: list[bytes] = []
        for batch in b.scan_range(lo, hi, batch_size):
            assert 0 < len(batch) <= batch_size
            out += batch.keys
        return out

    # Full range: everything, in ascending key-hash order.
    assert keys_in(0, HASH_SPACE) == [by_hash[x] for x in hs]
    assert keys_in(0, HASH_SPACE, 7) == [by_hash[x] for x in hs]
    # lo is inclusive, hi exclusive, at a record's exact hash.
    x, y = hs[10], hs[20]
    assert keys_in(x, y) == [by_hash[v] for v in hs[10:20]]
    assert keys_in(x + 1, y + 1) == [by_hash[v] for v in hs[11:21]]
    assert keys_in(x, x + 1) == [by_hash[x]]
    assert keys_in(x, x) == []  # empty range
    assert keys_in(HASH_SPACE, HASH_SPACE) == []
    assert keys_in(hs[-1], HASH_SPACE) == [by_hash[hs[-1]]]
    assert keys_in(0, hs[0]) == []
    assert keys_in(0, hs[0] + 1) == [by_hash[hs[0]]]
    # The 2**bits ranges partition the space; scans carry the values and versions.
    bits = 4
    width = HASH_SPACE >> bits
    got: list[bytes] = []
    counts, _ = b.range_digests(bits)
    for r in range(2**bits):
        part = keys_in(r * width, (r + 1) * width, 50)
        assert len(part) == int(counts[r])
        got += part
    assert got == [by_hash[v] for v in hs]
    model = {k: (v, e, s) for k, v, e, s in zip(
        recs.keys, recs.values, recs.epochs.tolist(), recs.seqs.tolist(), strict=True)}
    assert _scan_all(b) == model


def test_scan_range_bad_arguments(make_backend: Callable[[], Backend]) -> None:
    b = make_backend()
    for lo, hi in ((5, 4), (-1, 10), (0, HASH_SPACE + 1), (HASH_SPACE + 1, HASH_SPACE + 2)):
        with pytest.raises(ValueError, match="lo|hi"):
            b.scan_range(lo, hi)  # raised at the call, not at the first next()
    with pytest.raises(TypeError, match="lo"):
        b.scan_range(0.5, 10)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="hi"):
        b.scan_range(0, "10")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        b.scan_range(0, 10, 0)


# ---- SQLite specifics ---------------------------------------------------------------------


def test_sqlite_digests_survive_reopen(tmp_path: Path) -> None:
    recs = _records(np.random.default_rng(6), N)
    with SQLiteBackend(tmp_path / "a.db") as b:
        b.write(recs)
        want = b.range_digests(DIGEST_BITS)
    with SQLiteBackend(tmp_path / "a.db") as b:
        got = b.range_digests(DIGEST_BITS)
        _assert_digests_consistent(b)
    np.testing.assert_array_equal(want[1], got[1])


def test_sqlite_migrates_a_version1_file(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE records (key BLOB PRIMARY KEY, value BLOB, epoch INTEGER NOT NULL, "
        "seq INTEGER NOT NULL) WITHOUT ROWID"
    )
    db.executemany(
        "INSERT INTO records VALUES (?, ?, ?, ?)",
        [(f"k{i}".encode(), None if i % 7 == 0 else b"v%d" % i, 1, i) for i in range(300)],
    )
    db.commit()
    db.close()
    model = MemoryBackend()
    model.write(Records.build(
        [f"k{i}".encode() for i in range(300)],
        [None if i % 7 == 0 else b"v%d" % i for i in range(300)], 1, np.arange(300)))
    with SQLiteBackend(path) as b:
        assert b.count() == 300
        _assert_digests_consistent(b)
        for x, y in zip(b.range_digests(DIGEST_BITS), model.range_digests(DIGEST_BITS),
                        strict=True):
            np.testing.assert_array_equal(x, y)


# Schema 2 (what ringguard wrote before the digests moved into NumPy arrays): the digests
# of the top 16 hash bits in a table kept by triggers, one UPDATE per record.
_V2_BITS = 16
_V2_SHIFT, _V2_HALF = 64 - _V2_BITS, 2 ** (_V2_BITS - 1)
_V2_DDL = [
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE records (hs INTEGER NOT NULL, key BLOB NOT NULL, value BLOB, "
    "epoch INTEGER NOT NULL, seq INTEGER NOT NULL, dg INTEGER NOT NULL, PRIMARY KEY (hs, key)) "
    "WITHOUT ROWID",
    "CREATE TABLE digests (bucket INTEGER PRIMARY KEY, cnt INTEGER NOT NULL, "
    "hi INTEGER NOT NULL, lo INTEGER NOT NULL)",
    f"""CREATE TRIGGER records_ins AFTER INSERT ON records BEGIN
        INSERT INTO digests (bucket, cnt, hi, lo) VALUES ((NEW.hs >> {_V2_SHIFT}) + {_V2_HALF},
            1, (NEW.dg >> 32) & 4294967295, NEW.dg & 4294967295)
        ON CONFLICT(bucket) DO UPDATE SET cnt = cnt + 1, hi = hi + excluded.hi,
            lo = lo + excluded.lo; END""",
    f"""CREATE TRIGGER records_upd AFTER UPDATE ON records BEGIN
        UPDATE digests SET
            hi = hi - ((OLD.dg >> 32) & 4294967295) + ((NEW.dg >> 32) & 4294967295),
            lo = lo - (OLD.dg & 4294967295) + (NEW.dg & 4294967295)
        WHERE bucket = (NEW.hs >> {_V2_SHIFT}) + {_V2_HALF}; END""",
    "INSERT INTO meta VALUES ('schema', 2)",
]


def _write_v2(path: Path, recs: Records) -> None:
    """A schema-2 file holding ``recs``, written with raw SQL (upserts fire the triggers)."""
    db = sqlite3.connect(path)
    for stmt in _V2_DDL:
        db.execute(stmt)
    hs = (key_hashes(recs.keys) ^ np.uint64(1 << 63)).view(np.int64).tolist()
    dg = record_digests(recs).view(np.int64).tolist()
    db.executemany(
        "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(hs, key) DO UPDATE SET "
        "value = excluded.value, epoch = excluded.epoch, seq = excluded.seq, dg = excluded.dg "
        "WHERE (excluded.epoch, excluded.seq) > (records.epoch, records.seq)",
        zip(hs, recs.keys, recs.values, recs.epochs.tolist(), recs.seqs.tolist(), dg,
            strict=True),
    )
    db.commit()
    db.close()


def test_sqlite_migrates_a_version2_file(tmp_path: Path) -> None:
    """Expected: a schema-2 file (trigger-kept digests table) opens as schema 3 with the
    same records, digests equal to a MemoryBackend holding the same writes, the triggers
    and the digests table gone, and the resolution recorded; later writes keep the digests
    exact across a reopen."""
    rng = np.random.default_rng(21)
    first, second = _records(rng, N), _records(rng, N // 3, epoch=2)
    path = tmp_path / "v2.db"
    _write_v2(path, first)
    _write_v2_more = sqlite3.connect(path)  # the v2 triggers really kept its digests
    assert _write_v2_more.execute("SELECT SUM(cnt) FROM digests").fetchone()[0] == N
    _write_v2_more.close()
    model = MemoryBackend()
    model.write(first)
    with SQLiteBackend(path) as b:
        assert b.count() == N
        for x, y in zip(b.range_digests(DIGEST_BITS), model.range_digests(DIGEST_BITS),
                        strict=True):
            np.testing.assert_array_equal(x, y)
        assert model.write(second) == b.write(second)
        _assert_digests_consistent(b)
    db = sqlite3.connect(path)
    objects = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
    table_sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'records'").fetchone()[0]
    db.close()
    assert "digests" not in objects and not {"records_ins", "records_upd"} & objects
    # the WITHOUT ROWID table was copied into the rowid layout, and the copy dropped
    assert "WITHOUT ROWID" not in table_sql.upper() and "records_v2" not in objects
    assert meta["schema"] == 3 and meta["digest_bits"] == DIGEST_BITS
    with SQLiteBackend(path) as b:
        _assert_digests_consistent(b)
        assert _scan_all(b) == _scan_all(model)


def test_sqlite_file_of_another_resolution_is_rebuilt(tmp_path: Path) -> None:
    """Expected: a file whose meta says it was written at another DIGEST_BITS (its pages
    mean other ranges) gets its digests recomputed from the records on open."""
    path = tmp_path / "r.db"
    recs = _records(np.random.default_rng(22), N)
    with SQLiteBackend(path) as b:
        b.write(recs)
        want = b.range_digests(DIGEST_BITS)
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE name = 'digest_bits'", (DIGEST_BITS - 2,))
    db.execute("UPDATE digest_pages SET counts = zeroblob(length(counts))")  # now wrong
    db.commit()
    db.close()
    with SQLiteBackend(path) as b:
        got = b.range_digests(DIGEST_BITS)
        _assert_digests_consistent(b)
    np.testing.assert_array_equal(want[0], got[0])
    np.testing.assert_array_equal(want[1], got[1])


@pytest.mark.parametrize("damage", [
    "UPDATE digest_log SET sums = x'00'",
    "UPDATE digest_log SET buckets = x'ffffffff', counts = zeroblob(8), sums = zeroblob(8)",
    "INSERT INTO digest_pages VALUES (-1, x'', x'')",
])
def test_sqlite_damaged_digests_are_refused(tmp_path: Path, damage: str) -> None:
    """Expected: a digest log row or page of the wrong size or out of range makes opening
    fail with a BackendError naming it (never a wrong digest or a crash)."""
    from ringguard.backends import BackendError

    path = tmp_path / "d.db"
    with SQLiteBackend(path) as b:
        b.write(_records(np.random.default_rng(23), 50))
    db = sqlite3.connect(path)
    db.execute(damage)
    db.commit()
    db.close()
    with pytest.raises(BackendError, match="damaged"):
        SQLiteBackend(path)


def test_sqlite_checkpoints_keep_digests_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Expected: with a checkpoint every 3 logged writes, the log never holds more than 3
    rows, the pages plus the log equal a recomputation after every reopen."""
    import ringguard.backends.sqlite as lite

    monkeypatch.setattr(lite, "_LOG_CHECKPOINT", 3)
    rng = np.random.default_rng(24)
    path = tmp_path / "c.db"
    b = SQLiteBackend(path, synchronous="NORMAL")
    for i in range(10):
        b.write(_records(rng, 80, epoch=i))
        assert b._db is not None
        assert b._db.execute("SELECT COUNT(*) FROM digest_log").fetchone()[0] <= 3
        if i % 4 == 3:
            b.close()
            b = SQLiteBackend(path, synchronous="NORMAL")
            _assert_digests_consistent(b)
    _assert_digests_consistent(b)
    b.close()


def test_sqlite_two_connections_share_the_digests(tmp_path: Path) -> None:
    """Expected: two backends on one file (two connections) each see the other's writes in
    their digests, and both equal a recomputation."""
    rng = np.random.default_rng(25)
    path = tmp_path / "two.db"
    with SQLiteBackend(path) as a, SQLiteBackend(path) as b:
        a.write(_records(rng, 200))
        np.testing.assert_array_equal(a.range_digests(8)[1], b.range_digests(8)[1])
        b.write(_records(rng, 300, epoch=2))
        a.write(_records(rng, 100, epoch=3))
        _assert_digests_consistent(a)
        _assert_digests_consistent(b)


def test_sqlite_another_key_with_the_same_hash_is_not_mistaken_for_the_key(
    tmp_path: Path,
) -> None:
    """Expected: a stored row of another key with the same key hash (a forged collision)
    is neither overwritten nor taken as the key's stored version: the key is inserted as
    new (count +1 in its range) and the other row stays."""
    path = tmp_path / "col.db"
    key = b"victim"
    hs = int((key_hashes([key]) ^ np.uint64(1 << 63)).view(np.int64)[0])
    db = sqlite3.connect(path)
    SQLiteBackend(path).close()
    db.execute(  # same hs, different key, a version that would win
        "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", (hs, b"impostor", b"x", 9, 9, 0)
    )
    db.execute("UPDATE meta SET value = -1 WHERE name = 'digest_bits'")  # recount on open
    db.commit()
    b = SQLiteBackend(path)
    r = int(key_hashes([key])[0] >> np.uint64(64 - DIGEST_BITS))
    before = b.range_digests(DIGEST_BITS)[0][r]
    assert before == 1  # the impostor, counted from its stored hash
    assert b.write(Records.build([key, b"k2"], [b"new", b"v2"], 1, 1)) == 2
    assert b.read([key]).values == [b"new"]
    assert b.range_digests(DIGEST_BITS)[0][r] == before + 1
    rows = db.execute("SELECT key FROM records WHERE hs = ?", (hs,)).fetchall()
    assert sorted(k for (k,) in rows) == [b"impostor", key]
    db.close()
    b.close()


_CRASH_WRITER = """
import sys
import numpy as np
import ringguard.backends.sqlite as lite
from ringguard.backends import Records, SQLiteBackend
lite._LOG_CHECKPOINT = 4  # checkpoints happen inside the crash window too
b = SQLiteBackend(sys.argv[1], synchronous="NORMAL")
rng = np.random.default_rng(int(sys.argv[2]))
for i in range(10**6):
    keys = [b"k%d" % k for k in rng.integers(0, 3000, 400).tolist()]
    b.write(Records.build(keys, [b"v%d" % i] * len(keys), 1, i))
    print(i, flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_sqlite_digests_survive_a_killed_writer(tmp_path: Path, seed: int) -> None:
    """Expected: a process SIGKILLed in the middle of its writes leaves a file whose
    digests (pages plus log, loaded on open) equal a recomputation from the records, and
    every write it acknowledged (printed after write() returned) is there."""
    path = tmp_path / "crash.db"
    acked = -1
    want = 6 + 3 * seed  # kill after a few checkpoints, at a point that varies
    with subprocess.Popen(
        [sys.executable, "-c", _CRASH_WRITER, str(path), str(seed)],
        stdout=subprocess.PIPE, text=True,
    ) as proc:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while acked < want and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acked = int(line)
        proc.kill()
        proc.wait(timeout=30)
    assert acked >= want, "the writer did not get far enough"
    with SQLiteBackend(path) as b:
        _assert_digests_consistent(b)
        # Every acknowledged batch i is there: its keys hold seq >= i (a later one may
        # have overwritten them).
        rng = np.random.default_rng(seed)
        for i in range(acked + 1):
            keys = [b"k%d" % k for k in rng.integers(0, 3000, 400).tolist()]
            assert (b.read(keys).seqs >= i).all()


# ---- random histories ---------------------------------------------------------------------

_ops = st.lists(
    st.tuples(
        st.lists(st.integers(0, 30), min_size=1, max_size=12),  # keys
        st.integers(0, 3),  # epoch
        st.integers(0, 5),  # seq
        st.booleans(),  # tombstone
    ),
    max_size=15,
)


@settings(max_examples=30, deadline=None)
@given(ops=_ops)
def test_random_histories_memory_and_sqlite_agree(ops: list[tuple[list[int], int, int, bool]],
                                                   tmp_path_factory: pytest.TempPathFactory
                                                   ) -> None:
    path = tmp_path_factory.mktemp("h") / "h.db"
    mem = MemoryBackend()
    with SQLiteBackend(path, synchronous="NORMAL") as lite:
        for keys, e, s, tomb in ops:
            kb = [b"k%d" % k for k in keys]
            vals: list[bytes | None] = [
                None if tomb else b"%d:%d:%d" % (k, e, s) for k in keys
            ]
            recs = Records.build(kb, vals, e, s)
            assert mem.write(recs) == lite.write(recs)
        for bits in (0, 2, DIGEST_BITS):
            for x, y in zip(mem.range_digests(bits), lite.range_digests(bits), strict=True):
                np.testing.assert_array_equal(x, y)
        _assert_digests_consistent(mem)
        _assert_digests_consistent(lite)
        assert _scan_all(mem) == _scan_all(lite)
