"""SQLiteBackend's layout under keys that share a hash: records in a rowid table with an
(hs, key) primary key, stored versions read by hash and matched by key, winners updated by
rowid, new keys inserted.

Real 64-bit collisions cannot be produced on demand, so the "collisions" variants squeeze
the key hash (as tests/test_memory_backend.py does) to 16 or 512 values: most or some keys
then share a hash, which sends writes down the general (in-order) path. Every variant is
checked against the one-record-at-a-time model of last-writer-wins: write counts, scans
(order, batch sizes), reads, counts and range digests, also after the file is reopened
through the other driver and after an older layout is migrated.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ringguard.backends import Records, SQLiteBackend
from ringguard.backends import base as backends_base
from ringguard.backends import memory as memory_mod
from ringguard.backends import sqlite as sqlite_mod
from ringguard.backends.base import DIGEST_BITS, HASH_SPACE, digests_of, record_digests
from test_memory_backend import Model, _check_same, _random_batch


def _squeezed(bits: int) -> Callable[[Any], np.ndarray]:
    """The real key hash with only its top ``bits`` bits kept."""
    real = backends_base.key_hashes
    mask = np.uint64(((1 << bits) - 1) << (64 - bits))

    def h(keys: Any) -> np.ndarray:
        return np.asarray(real(keys), dtype=np.uint64) & mask

    return h


@pytest.fixture(params=["plain", "collisions-16", "collisions-512"])
def variant(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param != "plain":
        fake = _squeezed(4 if request.param == "collisions-16" else 9)
        for mod in (backends_base, sqlite_mod, memory_mod):
            monkeypatch.setattr(mod, "key_hashes", fake)
    return str(request.param)


def _shared(path: Path) -> int:
    """Rows of ``records`` beyond one per distinct key hash."""
    with sqlite3.connect(path) as db:
        rows, hashes = db.execute("SELECT COUNT(*), COUNT(DISTINCT hs) FROM records").fetchone()
    return int(rows - hashes)


@pytest.fixture(params=["sqlite3", "apsw"])
def driver(request: pytest.FixtureRequest) -> str:
    if request.param == "apsw":
        pytest.importorskip("apsw")
    return str(request.param)


def test_random_batches_match_the_model(tmp_path: Path, variant: str, driver: str) -> None:
    """Expected: after each of 120 random batches (keys repeated within a batch, ties,
    tombstones) the write count equals the model's; now and then, and after a reopen
    through the other driver, scans, reads, count and digests equal the model's. With
    squeezed hashes many stored keys really share a hash; without, none do."""
    rng = np.random.default_rng(31)
    path = tmp_path / "n.db"
    other = "apsw" if driver == "sqlite3" else "sqlite3"
    if other == "apsw":
        pytest.importorskip("apsw")
    b, model = SQLiteBackend(path, driver=driver), Model()
    for i in range(120):
        recs = _random_batch(rng, 300)
        assert b.write(recs) == model.write(recs), i
        if i % 30 == 29:
            _check_same(b, model, rng, odd_keys=False)  # type: ignore[arg-type]
    b.close()
    with SQLiteBackend(path, driver=other) as again:
        _check_same(again, model, rng, odd_keys=False)  # type: ignore[arg-type]
        more = _random_batch(rng, 300)
        assert again.write(more) == model.write(more)
    with SQLiteBackend(path, driver=driver) as again:
        _check_same(again, model, rng, odd_keys=False)  # type: ignore[arg-type]
    x = _shared(path)
    assert (x == 0) if variant == "plain" else (x > 0)


def test_scan_range_bounds_order_and_batch_sizes(tmp_path: Path, variant: str) -> None:
    """Expected: scan_range(lo, hi, batch) yields exactly the records with lo <= hash <
    hi, in (hash, key) order, in batches of at most ``batch``, for bounds at, between and
    next to stored hashes and at both ends of the space, even when one hash holds more
    keys than a batch."""
    rng = np.random.default_rng(32)
    b = SQLiteBackend(tmp_path / "s.db")
    for _ in range(8):
        b.write(_random_batch(rng, 500))
    keys = [k for r in b.scan(10_000) for k in r.keys]
    h = backends_base.key_hashes(keys).astype(object)
    ordered = sorted(zip(h, keys, strict=True))
    assert list(zip(h, keys, strict=True)) == ordered
    cuts = sorted({0, HASH_SPACE, *(int(x) for x in h[::7]), *(int(x) + 1 for x in h[::11]),
                   *rng.integers(0, 2**63, 5).tolist()})
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        for batch in (1, 5, 64):
            parts = list(b.scan_range(lo, hi, batch))
            assert all(0 < len(p) <= batch for p in parts)
            got = [k for p in parts for k in p.keys]
            assert got == [k for hk, k in ordered if lo <= hk < hi], (lo, hi, batch)
    assert list(b.scan_range(0, HASH_SPACE, 3))  # the whole space
    assert list(b.scan_range(7, 7)) == []
    b.close()


_EARLY_V3_DDL = [
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE records (hs INTEGER NOT NULL, key BLOB NOT NULL, value BLOB, "
    "epoch INTEGER NOT NULL, seq INTEGER NOT NULL, dg INTEGER NOT NULL, PRIMARY KEY (hs, key)) "
    "WITHOUT ROWID",
    "CREATE TABLE digest_pages (page INTEGER PRIMARY KEY, counts BLOB NOT NULL, "
    "sums BLOB NOT NULL)",
    "CREATE TABLE digest_log (id INTEGER PRIMARY KEY, buckets BLOB NOT NULL, "
    "counts BLOB NOT NULL, sums BLOB NOT NULL)",
    "INSERT INTO meta VALUES ('schema', 3)",
    f"INSERT INTO meta VALUES ('digest_bits', {DIGEST_BITS})",
]


def test_a_without_rowid_file_is_copied_into_the_rowid_layout(
    tmp_path: Path, variant: str
) -> None:
    """Expected: an early schema-3 file (``WITHOUT ROWID`` table), holding keys that share
    a hash in the collision variants, opens in the rowid layout with the same records,
    digests equal to the model's and later writes applied last-writer-wins; its pages
    and log (stale here: empty) are not trusted, the digests are recomputed."""
    rng = np.random.default_rng(33)
    model = Model()
    for _ in range(6):
        model.write(_random_batch(rng, 400))
    ref = model.records()
    path = tmp_path / "v3.db"
    db = sqlite3.connect(path)
    for stmt in _EARLY_V3_DDL:
        db.execute(stmt)
    hs = (backends_base.key_hashes(ref.keys) ^ np.uint64(1 << 63)).view(np.int64).tolist()
    db.executemany(
        "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)",
        zip(hs, ref.keys, ref.values, ref.epochs.tolist(), ref.seqs.tolist(),
            record_digests(ref).view(np.int64).tolist(), strict=True),
    )
    db.commit()
    db.close()
    with SQLiteBackend(path) as b:
        _check_same(b, model, rng, odd_keys=False)  # type: ignore[arg-type]
        more = _random_batch(rng, 400)
        assert b.write(more) == model.write(more)
        _check_same(b, model, rng, odd_keys=False)  # type: ignore[arg-type]
    db = sqlite3.connect(path)
    meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
    pk = sorted((r[5], r[1]) for r in db.execute("PRAGMA table_info(records)") if r[5])
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'records'").fetchone()[0]
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert meta["schema"] == 3 and [c for _, c in pk] == ["hs", "key"]
    assert "WITHOUT ROWID" not in sql.upper() and "records_v2" not in names
    assert (_shared(path) == 0) == (variant == "plain")


def test_digests_of_colliding_keys_stay_exact_across_overwrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Expected: with every key on one hash, overwrites, tombstones and stale versions
    keep the incremental digests equal to a recomputation, and each key reads back its
    own latest value."""
    fake = _squeezed(0)  # one hash value for every key
    for mod in (backends_base, sqlite_mod, memory_mod):
        monkeypatch.setattr(mod, "key_hashes", fake)
    keys = [b"a", b"b", b"c", b"d"]
    with SQLiteBackend(tmp_path / "one.db") as b:
        assert b.write(Records.build(keys, [b"1"] * 4, 1, 1)) == 4
        assert b.write(Records.build(keys[::-1], [b"2", None, b"2", b"2"], 1, 2)) == 4
        assert b.write(Records.build([b"c"], [b"old"], 1, 1)) == 0  # stale
        got = b.read(keys + [b"e"])
        assert got.values == [b"2", b"2", None, b"2", None]
        assert got.seqs.tolist() == [2, 2, 2, 2, -1]
        assert b.count() == 4
        for bits in (0, DIGEST_BITS):
            c, s = b.range_digests(bits)
            rc, rs = digests_of(b.scan(), bits)
            np.testing.assert_array_equal(c, rc)
            np.testing.assert_array_equal(s, rs)
    assert _shared(tmp_path / "one.db") == 3


def test_scan_ranges_equals_scan_range_per_interval(
    tmp_path: Path, variant: str, driver: str
) -> None:
    """Expected: scan_ranges over random ascending disjoint intervals (empty ones, ones
    sharing an end, the top of the space) yields, in batches of at most ``batch``, the
    records scan_range yields for each interval, in order, each tagged with its
    interval's index; overlapping or descending intervals are refused when the call is
    made."""
    rng = np.random.default_rng(34)
    b = SQLiteBackend(tmp_path / "m.db", driver=driver)
    for _ in range(6):
        b.write(_random_batch(rng, 500))
    for trial in range(20):
        cuts = np.sort(rng.integers(0, 2**64, int(rng.integers(2, 40)), dtype=np.uint64))
        bounds = sorted({0, *(int(c) for c in cuts), HASH_SPACE})
        ivs = [(a, z) for a, z in zip(bounds, bounds[1:], strict=False) if rng.random() < 0.6]
        if trial % 5 == 0:
            ivs.append((HASH_SPACE, HASH_SPACE))  # empty, at the top
        batch = int(rng.integers(1, 80))
        got: list[tuple[int, bytes]] = []
        for recs, which in b.scan_ranges(ivs, batch):
            assert 0 < len(recs) <= batch and len(which) == len(recs)
            assert which.dtype == np.int64
            got += list(zip(which.tolist(), recs.keys, strict=True))
        want = [(j, k) for j, (lo, hi) in enumerate(ivs)
                for r in b.scan_range(lo, hi, 1000) for k in r.keys]
        assert got == want, trial
    with pytest.raises(ValueError, match=r"intervals\[1\]"):
        b.scan_ranges([(10, 20), (15, 30)])
    with pytest.raises(ValueError, match="lo"):
        b.scan_ranges([(5, 1)])
    assert list(b.scan_ranges([])) == []
    b.close()


def test_driver_is_checked_and_named_in_errors(tmp_path: Path) -> None:
    """Expected: an unknown driver is a ValueError naming it; a file that is not a
    database fails to open with BackendError through either driver."""
    with pytest.raises(ValueError, match="driver: expected 'sqlite3' or 'apsw', got 'pg'"):
        SQLiteBackend(tmp_path / "x.db", driver="pg")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database, just some bytes" * 100)
    drivers = ["sqlite3"]
    try:
        import apsw  # noqa: F401
        drivers.append("apsw")
    except ImportError:
        pass
    for d in drivers:
        with pytest.raises(backends_base.BackendError, match="cannot open"):
            SQLiteBackend(junk, driver=d)


def test_wal_autocheckpoint_is_applied_and_checked(tmp_path: Path, driver: str) -> None:
    """Expected: the connection runs with the requested checkpoint interval (10,000 pages
    by default); a negative, bool or non-int interval is a ValueError naming it."""
    for name, pages, want in (("c.db", None, 10_000), ("d.db", 0, 0)):
        b = (SQLiteBackend(tmp_path / name, driver=driver) if pages is None
             else SQLiteBackend(tmp_path / name, driver=driver, wal_autocheckpoint=pages))
        try:
            assert b._conn().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == want
        finally:
            b.close()
    for bad in (-1, True, 2.5):
        with pytest.raises(ValueError, match="wal_autocheckpoint"):
            SQLiteBackend(tmp_path / "e.db", wal_autocheckpoint=bad)  # type: ignore[arg-type]
