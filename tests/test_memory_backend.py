"""MemoryBackend's column store against a plain dict model of last-writer-wins.

The model below applies records one at a time, the rule in backends/base.py: a record
replaces the stored one only if its (epoch, seq) is greater. The backend applies whole
batches with array operations (sorted runs, a delta run merged now and then), so these
tests drive both with the same random batches (keys repeated within a batch, equal
versions, tombstones) and compare every observable: write counts, reads, scans, counts
and range digests. One variant squeezes the key hash to a few values so that many keys
share a hash (the collision paths), another merges the delta run after every few records.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from ringguard.backends import MemoryBackend, Records
from ringguard.backends import base as backends_base
from ringguard.backends import memory as memory_mod
from ringguard.backends.base import DIGEST_BITS, HASH_SPACE, StaleEpochError, digests_of


class Model:
    """Last-writer-wins, one record at a time."""

    def __init__(self) -> None:
        self.data: dict[bytes, tuple[bytes | None, int, int]] = {}

    def write(self, recs: Records) -> int:
        applied = 0
        for k, v, e, s in zip(recs.keys, recs.values, recs.epochs.tolist(),
                              recs.seqs.tolist(), strict=True):
            old = self.data.get(k)
            if old is None or (e, s) > (old[1], old[2]):
                self.data[k] = (v, e, s)
                applied += 1
        return applied

    def records(self) -> Records:
        keys = sorted(self.data)
        return Records.build(keys, [self.data[k][0] for k in keys],
                             [self.data[k][1] for k in keys], [self.data[k][2] for k in keys])


def _squeezed(real: Any) -> Any:
    """A key hash with only 16 distinct values (top 4 bits kept): most keys collide."""

    def h(keys: Any) -> np.ndarray:
        return np.asarray(real(keys), dtype=np.uint64) & np.uint64(0xF << 60)

    return h


@pytest.fixture(params=["plain", "collisions", "small-delta"])
def variant(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "collisions":
        fake = _squeezed(backends_base.key_hashes)
        monkeypatch.setattr(backends_base, "key_hashes", fake)
        monkeypatch.setattr(memory_mod, "key_hashes", fake)
    if request.param == "small-delta":
        monkeypatch.setattr(memory_mod, "_MIN_DELTA", 3)
    return str(request.param)


def _random_batch(rng: np.random.Generator, universe: int) -> Records:
    n = int(rng.integers(1, 120))
    ids = rng.integers(0, universe, n)  # repeats within a batch on purpose
    keys = [b"k%04d" % i for i in ids.tolist()]
    values: list[bytes | None] = [
        None if rng.random() < 0.2 else b"v%d-" % int(rng.integers(1000)) * int(rng.integers(1, 4))
        for _ in range(n)
    ]
    # Few distinct versions: many ties between batch records and with stored ones.
    return Records.build(keys, values, rng.integers(0, 3, n), rng.integers(0, 4, n))


def _scan_all(b: MemoryBackend, batch_size: int = 50) -> list[tuple[bytes, bytes | None, int, int]]:
    out = []
    for r in b.scan(batch_size):
        assert len(r) <= batch_size
        out += list(zip(r.keys, r.values, r.epochs.tolist(), r.seqs.tolist(), strict=True))
    return out


def _check_same(
    b: MemoryBackend, model: Model, rng: np.random.Generator, *, odd_keys: bool = True
) -> None:
    """Scan, count, digests and reads of ``b`` equal the model's (``odd_keys``: also read
    non-bytes keys, which MemoryBackend answers as absent)."""
    ref = model.records()
    got = _scan_all(b)
    # Ascending key hash; the same records as the model.
    hashes = backends_base.key_hashes([k for k, *_ in got]) if got else np.zeros(0, np.uint64)
    assert (np.diff(hashes.astype(object)) >= 0).all() if len(hashes) > 1 else True
    assert sorted(got) == sorted(zip(ref.keys, ref.values, ref.epochs.tolist(),
                                     ref.seqs.tolist(), strict=True))
    assert b.count() == len(model.data)
    for bits in (0, 3, DIGEST_BITS):
        c, s = b.range_digests(bits)
        rc, rs = digests_of([ref], bits)
        np.testing.assert_array_equal(c, rc)
        np.testing.assert_array_equal(s, rs)
    # Reads: present, absent and non-bytes keys.
    probe: list[Any] = [b"k%04d" % i for i in rng.integers(0, 400, 30).tolist()]
    probe += [b"absent", "k0001", 7] if odd_keys else [b"absent"]
    r = b.read(probe)
    for k, v, e, s in zip(r.keys, r.values, r.epochs.tolist(), r.seqs.tolist(), strict=True):
        want = model.data.get(k) if isinstance(k, bytes) else None
        assert (v, e, s) == (want if want is not None else (None, -1, -1)), k


def test_random_batches_match_the_one_at_a_time_model(variant: str) -> None:
    """Expected: after each of 150 random batches the backend's write count, and now and
    then its scan, reads, count and range digests, equal the model's."""
    rng = np.random.default_rng(5)
    b, model = MemoryBackend(variant), Model()
    for i in range(150):
        recs = _random_batch(rng, 300)
        assert b.write(recs) == model.write(recs), i
        if i % 25 == 24:
            _check_same(b, model, rng)
    _check_same(b, model, rng)


def test_scan_range_bounds_and_order(variant: str) -> None:
    """Expected: scan_range(lo, hi) yields exactly the records with lo <= hash < hi in
    ascending hash order, for bounds inside, between and at the ends of the space."""
    rng = np.random.default_rng(6)
    b = MemoryBackend()
    for _ in range(10):
        b.write(_random_batch(rng, 500))
    allrecs = _scan_all(b)
    h = backends_base.key_hashes([k for k, *_ in allrecs]).astype(object)
    cuts = sorted({0, HASH_SPACE, *(int(x) for x in h[::7]),
                   *(int(x) + 1 for x in h[::11]), *rng.integers(0, 2**63, 5).tolist()})
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        got = [k for r in b.scan_range(lo, hi, 13) for k in r.keys]
        want = [k for k, hk in zip([k for k, *_ in allrecs], h, strict=True) if lo <= hk < hi]
        assert got == want, (lo, hi)
    assert list(b.scan_range(5, 5)) == []
    assert list(b.scan_range(HASH_SPACE, HASH_SPACE)) == []


def test_scan_is_not_changed_by_later_writes() -> None:
    """Expected: records handed out by a scan keep the values they had when scan_range
    was called, though later writes update the store in place."""
    b = MemoryBackend()
    b.write(Records.build([b"a", b"b", b"c"], [b"1", b"2", b"3"], 1, 1))
    it = b.scan_range(0, HASH_SPACE, 1)
    b.write(Records.build([b"a", b"b", b"c"], [b"x", b"y", None], 2, 1))
    seen = {k: v for r in it for k, v in zip(r.keys, r.values, strict=True)}
    assert seen == {b"a": b"1", b"b": b"2", b"c": b"3"}
    assert b.read([b"a", b"c"]).values == [b"x", None]


def test_fenced_write_below_the_fence_changes_nothing() -> None:
    """Expected: a fenced batch with one record below the fence raises StaleEpochError
    and writes none of its records (data and digests unchanged)."""
    b = MemoryBackend()
    b.write(Records.build([b"a"], [b"1"], 5, 1))
    b.set_fence(5)
    before = b.range_digests(DIGEST_BITS)
    with pytest.raises(StaleEpochError, match="below the fence 5"):
        b.write(Records.build([b"a", b"z"], [b"2", b"3"], [6, 4], 1), fenced=True)
    assert b.read([b"a", b"z"]).values == [b"1", None]
    assert b.count() == 1
    for x, y in zip(before, b.range_digests(DIGEST_BITS), strict=True):
        np.testing.assert_array_equal(x, y)
    assert b.write(Records.build([b"z"], [b"3"], 5, 1), fenced=True) == 1


def test_non_bytes_key_is_refused_naming_its_index() -> None:
    """Expected: a batch built without validation that holds a str key is refused with a
    TypeError naming the first offending index, and nothing is written."""
    b = MemoryBackend()
    recs = Records([b"a", b"b", "c"], [b"1", b"2", b"3"],  # type: ignore[list-item]
                   np.ones(3, np.int64), np.ones(3, np.int64))
    with pytest.raises(TypeError, match=r"keys\[2\]"):
        b.write(recs)
    assert b.count() == 0


def test_wipe_and_rewrite() -> None:
    """Expected: wipe() empties data and digests; the backend is usable afterwards."""
    b = MemoryBackend()
    b.write(Records.build([b"k%d" % i for i in range(50)], [b"v"] * 50, 1, 1))
    b.wipe()
    assert b.count() == 0 and _scan_all(b) == []
    assert int(b.range_digests(0)[0][0]) == 0
    assert b.write(Records.build([b"k1"], [b"w"], 0, 0)) == 1
    assert b.read([b"k1"]).values == [b"w"]


def test_concurrent_writers_converge_to_the_greatest_version() -> None:
    """Expected: four threads writing overlapping keys with distinct versions at once
    leave every key at its greatest version, with digests matching the records."""
    b = MemoryBackend()
    keys = [b"k%03d" % i for i in range(300)]

    def writer(t: int) -> None:
        rng = np.random.default_rng(t)
        for _ in range(40):
            idx = rng.choice(len(keys), 50, replace=False)
            seqs = rng.integers(0, 1000, 50) * 4 + t  # distinct across threads
            b.write(Records.build([keys[i] for i in idx.tolist()],
                                  [b"t%d-%d" % (t, s) for s in seqs.tolist()], 1, seqs))

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # Replay every thread's writes, one record at a time, into the model.
    model = Model()
    for t in range(4):
        rng = np.random.default_rng(t)
        for _ in range(40):
            idx = rng.choice(len(keys), 50, replace=False)
            seqs = rng.integers(0, 1000, 50) * 4 + t
            model.write(Records.build([keys[i] for i in idx.tolist()],
                                      [b"t%d-%d" % (t, s) for s in seqs.tolist()], 1, seqs))
    _check_same(b, model, np.random.default_rng(0))


def test_large_batches_in_key_hash_order_and_at_random() -> None:
    """Expected: a store filled by batches in ascending key-hash order (what a restore
    writes) and one filled at random hold the same records and digests."""
    n = 20_000
    keys = [b"user:%08d" % i for i in range(n)]
    recs = Records.build(keys, [b"v%d" % i for i in range(n)], 1, np.arange(n))
    order = np.argsort(recs.hashes(), kind="stable")
    a, b = MemoryBackend("a"), MemoryBackend("b")
    for i in range(0, n, 3000):
        a.write(recs.take(order[i : i + 3000]))
    perm = np.random.default_rng(1).permutation(n)
    for i in range(0, n, 777):
        b.write(recs.take(perm[i : i + 777]))
    assert _scan_all(a, 4096) == _scan_all(b, 4096)
    for x, y in zip(a.range_digests(DIGEST_BITS), b.range_digests(DIGEST_BITS), strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.count() == b.count() == n


def test_scan_order_does_not_depend_on_write_order(variant: str) -> None:
    """Expected: the same records written in two different orders and batchings scan
    back in the same order, keys sharing a hash included (ordered by key), so backups of
    equal data give equal chunks."""
    n = 600
    keys = [b"k%04d" % i for i in range(n)]
    recs = Records.build(keys, [b"v%d" % i for i in range(n)], 1, np.arange(n))
    a, b = MemoryBackend("a"), MemoryBackend("b")
    for i in range(0, n, 50):
        a.write(recs.take(np.arange(i, min(n, i + 50))))
    perm = np.random.default_rng(2).permutation(n)
    for i in range(0, n, 7):
        b.write(recs.take(perm[i : i + 7]))
        if i % 140 == 0:
            list(b.scan(10))  # merges the delta run part-way
    got = _scan_all(a)
    assert got == _scan_all(b)
    h = backends_base.key_hashes([k for k, *_ in got]).astype(object)
    assert all((h[i], got[i][0]) < (h[i + 1], got[i + 1][0]) for i in range(n - 1))


def test_scan_ranges_equals_scan_range_per_interval(variant: str) -> None:
    """Expected: scan_ranges over ascending disjoint intervals (empty ones and the end of
    the space included) yields the records scan_range gives for each, in order, each
    tagged with its interval; out-of-order or overlapping intervals are refused naming
    the first bad one."""
    rng = np.random.default_rng(8)
    b = MemoryBackend()
    for _ in range(8):
        b.write(_random_batch(rng, 600))
    cuts = sorted({0, HASH_SPACE, *rng.integers(0, 2**63, 12).tolist(),
                   *(2**63 + x for x in rng.integers(0, 2**63, 12).tolist())})
    ivs = [(lo, hi) for lo, hi in zip(cuts, cuts[1:], strict=False)][::2]
    ivs.append((HASH_SPACE, HASH_SPACE))
    ivs.insert(1, (ivs[0][1], ivs[0][1]))  # empty, touching its neighbour
    want = [(k, i) for i, (lo, hi) in enumerate(ivs) for r in b.scan_range(lo, hi)
            for k in r.keys]
    got = []
    for r, which in b.scan_ranges(ivs, 7):
        assert len(r) <= 7 and len(which) == len(r)
        got += list(zip(r.keys, which.tolist(), strict=True))
    assert got == want and len(got) > 0
    assert list(b.scan_ranges([])) == []
    with pytest.raises(ValueError, match=r"intervals\[2\]"):
        b.scan_ranges([(0, 10), (10, 20), (15, 30)])
    with pytest.raises(ValueError, match="lo"):
        b.scan_ranges([(5, 1)])
