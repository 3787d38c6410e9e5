"""RedisBackend format 3 against a real redis-server: layout, refusal of other formats,
digest logs and their folding, version edge cases, pipelined multi-chunk writes.

CI sets RINGGUARD_REQUIRE_REDIS=1: there a missing redis-server fails these tests instead
of skipping them. The pure-NumPy helpers (digit encoding, digest folding) are checked
without a server.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from conftest import scaled
from ringguard.backends import BackendError, MemoryBackend, Records, StaleEpochError
from ringguard.backends.base import DIGEST_BITS, digests_of, key_hashes, record_digests

redis = pytest.importorskip("redis")
from ringguard.backends import redis as rb  # noqa: E402  (needs redis-py)

I63 = 2**63 - 1


# ---- pure helpers (no server) --------------------------------------------------------------


def test_digits_match_python_formatting() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([
        rng.integers(0, I63, 2000, dtype=np.int64),
        np.array([0, 1, 9, 10, 9999, 10_000, 10**18, I63], dtype=np.int64),
    ])
    got = rb._digits(x, 20)
    want = np.frombuffer(b"".join(b"%020d" % v for v in x.tolist()), dtype=np.uint8)
    np.testing.assert_array_equal(got.reshape(-1), want)
    h = rng.integers(0, 2**53, 500, dtype=np.int64).view(np.uint64)
    got16 = rb._digits(h, 16).tobytes()
    assert got16 == b"".join(b"%016d" % v for v in h.tolist())


@pytest.mark.parametrize("bits", [1, 7, 16, 18, 20])
def test_folding_digest_logs_equals_recomputation(bits: int) -> None:
    # The logs keep 32 hash bits, so the fold works at any resolution up to 32 (the store
    # itself folds at DIGEST_BITS): check it against digests_of, an independent path.
    rng = np.random.default_rng(bits)
    n = 3000
    keys = [b"k%d" % i for i in range(n)]
    vals: list[bytes | None] = [None if i % 7 == 0 else rng.bytes(i % 13) for i in range(n)]
    recs = Records.build(keys, vals, 1, rng.integers(0, I63, n))
    gone = recs.take(np.arange(0, n, 4))  # entered, then replaced: in both logs
    add = rb._entries(record_digests(recs), key_hashes(keys)).tobytes()
    add += rb._entries(record_digests(gone), key_hashes(gone.keys)).tobytes()
    sub = rb._entries(record_digests(gone), key_hashes(gone.keys)).tobytes()
    counts, sums = rb._fold(None, add, sub, bits)
    # From the full 64-bit key hashes (digests_of stops at DIGEST_BITS).
    r = (key_hashes(keys) >> np.uint64(64 - bits)).astype(np.intp)
    c2 = np.bincount(r, minlength=2**bits).astype(np.uint64)
    s2 = np.zeros(2**bits, dtype=np.uint64)
    np.add.at(s2, r, record_digests(recs))
    if bits <= DIGEST_BITS:
        for x, y in zip((c2, s2), digests_of([recs], bits), strict=True):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(counts, c2)
    np.testing.assert_array_equal(sums, s2)
    # Folding in two steps (base + the rest of the logs) gives the same.
    base = np.empty(2 * 2**bits, dtype="<u8")
    half = 12 * 1000
    base[0::2], base[1::2] = rb._fold(None, add[:half], None, bits)
    again = rb._fold(base.tobytes(), add[half:], sub, bits)
    np.testing.assert_array_equal(again[0], c2)
    np.testing.assert_array_equal(again[1], s2)


def test_fold_rejects_malformed_state() -> None:
    with pytest.raises(ValueError, match="base"):
        rb._fold(b"\0" * 10, None, None, 4)
    with pytest.raises(ValueError, match="multiple of 12"):
        rb._fold(None, b"\0" * 13, None, 4)


# ---- against a server ----------------------------------------------------------------------


_prefixes = itertools.count()


@pytest.fixture
def make(redis_url: str) -> Iterator[Callable[..., Any]]:
    """Fresh RedisBackends, each on its own prefix unless one is given."""
    made: list[Any] = []

    def factory(prefix: str | None = None) -> Any:
        b = rb.RedisBackend(redis_url, prefix=prefix or f"rt{next(_prefixes)}:")
        made.append(b)
        return b

    yield factory
    for b in made:
        b.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[Any]:
    """A plain redis-py client on the test server."""
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def _assert_same_as(b: Any, model: MemoryBackend) -> None:
    """Same records (scan), same counts and digests as the model, and digests equal to a
    recomputation from the scan."""
    ours = {k: (v, e, s) for r in b.scan() for k, v, e, s in
            zip(r.keys, r.values, r.epochs.tolist(), r.seqs.tolist(), strict=True)}
    theirs = {k: (v, e, s) for r in model.scan() for k, v, e, s in
              zip(r.keys, r.values, r.epochs.tolist(), r.seqs.tolist(), strict=True)}
    assert ours == theirs
    assert b.count() == model.count()
    for x, y in zip(b.range_digests(DIGEST_BITS), model.range_digests(DIGEST_BITS), strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(b.range_digests(DIGEST_BITS), digests_of(b.scan(), DIGEST_BITS), strict=True):
        np.testing.assert_array_equal(x, y)


def test_layout_records_format_and_resolution(make: Callable[..., Any], raw: Any) -> None:
    b = make()
    b.write(Records.build([b"a", b"b"], [b"va", None], 7, [3, 4]))
    p = b._prefix
    assert raw.get(b"ringguard-meta:" + p) == (
        b"ringguard-redis format=3 digest_bits=%d" % DIGEST_BITS
    )
    stored = raw.get(p + b"a")
    assert stored[:41] == b"%020d:%020d" % (7, 3) and stored[41:42] == b"0"
    assert stored[42:-12] == b"va"
    h = int(key_hashes([b"a"])[0])
    d = int(record_digests(Records.build([b"a"], [b"va"], 7, 3))[0])
    assert stored[-12:] == (h >> 32).to_bytes(4, "little") + d.to_bytes(8, "little")
    assert raw.get(p + b"b")[41:42] == b"1"
    assert sorted(raw.zrange(b"ringguard-index:" + p, 0, -1)) == [p + b"a", p + b"b"]
    assert raw.strlen(b"ringguard-dadd:" + p) == 24  # two 12-byte entries, nothing folded


def test_format2_data_is_refused_untouched(make: Callable[..., Any], raw: Any) -> None:
    # A format-2 store: records with a 63-byte trailer, an index of unprefixed keys,
    # a BITFIELD digest string, no meta key.
    p = b"old2:"
    trailer = b"%020d:%020d0" % (1, 1) + b"%20d" % -5 + b"\x07"
    raw.set(p + b"k", b"value" + trailer)
    raw.zadd(b"ringguard-index:" + p, {b"k": 1})
    raw.set(b"ringguard-digest:" + p, b"\0" * 16)
    b = make("old2:")
    for call in (
        lambda: b.write(Records.build([b"n"], [b"v"], 1, 1)),
        lambda: b.read([b"k"]),
        lambda: list(b.scan()),
        lambda: b.range_digests(0),
        b.count,
    ):
        with pytest.raises(BackendError, match="format 2") as info:
            call()
        assert "rebuild" in str(info.value)
    assert raw.get(b"ringguard-meta:" + p) is None
    assert raw.get(p + b"n") is None
    assert raw.get(p + b"k") == b"value" + trailer


def test_another_resolution_is_refused(make: Callable[..., Any], raw: Any) -> None:
    b = make()
    b.write(Records.build([b"a"], [b"1"], 1, 1))
    other = 18 if DIGEST_BITS != 18 else 16
    raw.set(b"ringguard-meta:" + b._prefix, b"ringguard-redis format=3 digest_bits=%d" % other)
    for call in (
        lambda: b.write(Records.build([b"a"], [b"2"], 1, 2)),
        lambda: b.read([b"a"]),
        lambda: b.range_digests(DIGEST_BITS),
    ):
        with pytest.raises(BackendError, match=f"digest_bits={other}"):
            call()
    raw.set(b"ringguard-meta:" + b._prefix, b"something else")
    with pytest.raises(BackendError, match="another format"):
        b.read([b"a"])


def test_a_foreign_value_is_named(make: Callable[..., Any], raw: Any) -> None:
    b = make()
    b.write(Records.build([b"mine"], [b"x"], 1, 1))
    raw.set(b._prefix + b"theirs", b"a plain string of another program, long enough" * 2)
    with pytest.raises(BackendError, match="theirs.*not in ringguard's format"):
        b.read([b"mine", b"theirs"])
    raw.set(b._prefix + b"short", b"x")
    with pytest.raises(BackendError, match="short"):
        b.read([b"short"])


def test_version_edges_against_the_model(make: Callable[..., Any]) -> None:
    # The script decides last-writer-wins by comparing the stored string with a bound
    # built from the version below the record's; check the edges where that bound
    # borrows (seq 0), does not exist ((0, 0)) or is at the int64 limit.
    b = make()
    model = MemoryBackend()
    epochs = [0, 1, 2, I63]
    seqs = [0, 1, 2, 10**18, I63 - 1, I63]
    versions = [(e, s) for e in epochs for s in seqs]
    rng = np.random.default_rng(11)
    keys = [b"e%d" % i for i in range(6)]
    for step in range(40):
        pick = rng.integers(0, len(versions), len(keys))
        ev = [versions[j] for j in pick.tolist()]
        vals: list[bytes | None] = [None if rng.random() < 0.2 else b"s%d" % step for _ in keys]
        recs = Records.build(keys, vals, [e for e, _ in ev], [s for _, s in ev])
        assert b.write(recs) == model.write(recs), f"step {step}"
        # A replay applies nothing.
        assert b.write(recs) == model.write(recs) == 0
    _assert_same_as(b, model)
    got = b.read(keys)
    want = model.read(keys)
    assert got.values == want.values
    np.testing.assert_array_equal(got.seqs, want.seqs)
    np.testing.assert_array_equal(got.epochs, want.epochs)


def test_equal_version_with_other_content_keeps_the_first(make: Callable[..., Any]) -> None:
    b = make()
    assert b.write(Records.build([b"k"], [b"first"], 3, 5)) == 1
    assert b.write(Records.build([b"k"], [b"second"], 3, 5)) == 0
    assert b.write(Records.build([b"k"], [None], 3, 5)) == 0
    assert b.read([b"k"]).values == [b"first"]


def test_multi_chunk_writes_with_duplicates_match_the_model(make: Callable[..., Any]) -> None:
    n = scaled(3 * rb._CHUNK + 123, rb._CHUNK + 50)
    rng = np.random.default_rng(3)
    b = make()
    model = MemoryBackend()
    for rnd in range(3):
        ids = rng.integers(0, n // 2, n)  # many keys repeat, inside and across chunks
        keys = [b"d\r\n\0%d" % i for i in ids.tolist()]  # RESP delimiters inside keys
        vals: list[bytes | None] = [
            None if rng.random() < 0.1 else b"\r\n" * int(rng.integers(0, 4)) for _ in keys
        ]
        recs = Records.build(keys, vals, rnd, rng.integers(0, 50, n))
        assert b.write(recs) == model.write(recs)
    _assert_same_as(b, model)


def test_digest_logs_fold_into_the_base(make: Callable[..., Any], raw: Any) -> None:
    b = make()
    b._fold_at = 12 * 100  # fold as soon as the logs hold 100 entries
    model = MemoryBackend()
    rng = np.random.default_rng(4)
    for rnd in range(6):
        keys = [b"f%d" % i for i in rng.integers(0, 400, 300).tolist()]
        recs = Records.build(keys, [b"v%d" % rnd] * 300, 1, rnd * 1000 + np.arange(300))
        assert b.write(recs) == model.write(recs)
    p = b._prefix
    assert raw.strlen(b"ringguard-dbase:" + p) == 16 * 2**DIGEST_BITS
    assert int(raw.get(b"ringguard-dgen:" + p)) >= 1
    assert raw.strlen(b"ringguard-dadd:" + p) + raw.strlen(b"ringguard-dsub:" + p) < 12 * 700
    _assert_same_as(b, model)


def test_a_fold_from_a_stale_generation_is_ignored(make: Callable[..., Any]) -> None:
    b1 = make()
    b2 = make(b1._prefix.decode())
    model = MemoryBackend()
    recs = Records.build([b"a", b"b", b"c"], [b"1", b"2", b"3"], 1, 1)
    b1.write(recs)
    model.write(recs)
    stale = b1._state()  # b1 reads the state ...
    assert b2._fold()  # ... b2 folds first ...
    more = Records.build([b"a", b"d"], [b"4", b"5"], 1, 2)
    b2.write(more)
    model.write(more)
    # ... so b1's fold, from the generation it read, must change nothing.
    gen, counts, sums, na, ns = stale
    pairs = np.empty(2 * len(counts), dtype="<u8")
    pairs[0::2], pairs[1::2] = counts, sums
    keys = [b1._gen_key, b1._base_key, b1._add_key, b1._sub_key]
    assert b1._fold_script(keys=keys, args=[gen, pairs.tobytes(), na, ns]) == 0
    _assert_same_as(b1, model)
    assert b1._fold()
    _assert_same_as(b2, model)


def test_a_lost_script_cache_is_reloaded_mid_write(make: Callable[..., Any], raw: Any) -> None:
    b = make()
    model = MemoryBackend()
    n = 2 * rb._CHUNK + 10
    first = Records.build([b"s%d" % i for i in range(n)], [b"x"] * n, 1, 1)
    assert b.write(first) == model.write(first) == n
    raw.script_flush()  # as after a server restart
    second = Records.build(first.keys, [b"y"] * n, 1, 2)
    assert b.write(second) == model.write(second) == n
    _assert_same_as(b, model)


def test_stale_multi_chunk_write_writes_nothing(make: Callable[..., Any]) -> None:
    b = make()
    b.set_fence(5)
    n = 2 * rb._CHUNK + 10
    recs = Records.build([b"z%d" % i for i in range(n)], [b"x"] * n, 4, 1)
    with pytest.raises(StaleEpochError, match="below the fence 5"):
        b.write(recs, fenced=True)
    assert b.count() == 0
    assert int(b.range_digests(0)[0][0]) == 0
    # Unfenced (hint replay, anti-entropy) goes through; the next fenced write at the
    # fence epoch too.
    assert b.write(recs) == n
    assert b.write(Records.build([b"z0"], [b"y"], 5, 2), fenced=True) == 1


def test_prefixes_are_isolated(make: Callable[..., Any]) -> None:
    a, c = make(), make()
    a.write(Records.build([b"k1", b"k2"], [b"a1", b"a2"], 1, 1))
    c.write(Records.build([b"k2", b"k3"], [b"c2", b"c3"], 1, 1))
    assert sorted(k for r in a.scan() for k in r.keys) == [b"k1", b"k2"]
    assert sorted(k for r in c.scan() for k in r.keys) == [b"k2", b"k3"]
    assert a.read([b"k2", b"k3"]).values == [b"a2", None]
    assert a.count() == c.count() == 2


def test_redis_backend_rejects_a_bad_prefix(redis_url: str) -> None:
    with pytest.raises(TypeError, match="prefix"):
        rb.RedisBackend(redis_url, prefix=b"bytes")  # type: ignore[arg-type]


def test_concurrent_writers_converge_to_the_greatest_versions(make: Callable[..., Any]) -> None:
    # Two clients (threads, each its own backend object and connection) write the same
    # keys with interleaved versions in pipelined multi-chunk writes: whatever the order
    # the chunks ran in, every key ends at its greatest version and the digests are exact.
    import threading

    n = scaled(2 * rb._CHUNK + 77, 600)
    first = make()
    second = make(first._prefix.decode())
    keys = [b"c%d" % i for i in range(n)]
    rounds = 4
    errors: list[BaseException] = []

    def writer(b: Any, parity: int) -> None:
        try:
            for r in range(rounds):
                seq = 2 * r + parity
                b.write(Records.build(keys, [b"%d" % seq] * n, 1, seq))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(b, p)) for p, b in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    top = 2 * (rounds - 1) + 1
    model = MemoryBackend()
    model.write(Records.build(keys, [b"%d" % top] * n, 1, top))
    _assert_same_as(first, model)
