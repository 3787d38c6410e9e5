"""A node backend on a real Redis server (redis-py, one script call per chunk).

Layout (format 2), for a backend with key prefix ``<p>``:

* each record is a Redis string ``<p><key>`` holding ``value | ver | d | neg | x``: the
  value bytes, then a 63-byte trailer: ``ver`` the version as fixed-width text
  ``epoch:seq`` (20 + 1 + 20 digits, so Lua compares versions exactly as text — Lua numbers
  are doubles and would round 64-bit sequences), ``d`` ``1`` for a tombstone else ``0``,
  ``neg`` the negated record digest as signed decimal text padded to 20 characters (what
  removing the record from its range digest adds) and ``x`` the digest's low byte;
* ``ringguard-index:<p>``, a sorted set of the keys scored by ``key hash >> 11`` (53 bits,
  exact as a double), serves range scans;
* ``ringguard-digest:<p>``, a string of ``2**16`` pairs of big-endian 64-bit integers
  (count, digest sum) maintained with ``BITFIELD ... OVERFLOW WRAP INCRBY i64``: the sums
  wrap mod ``2**64`` exactly as the digest definition says, and Lua never does arithmetic
  on them.

A chunk of records is applied by one Lua script call (the records packed into a few
arguments), atomically and last-writer-wins, digests included.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from .base import (
    DIGEST_BITS,
    Backend,
    BackendError,
    Records,
    StaleEpochError,
    check_batch_size,
    check_range,
    key_hashes,
)

__all__ = ["RedisBackend", "redact_url"]

# One call applies a chunk of records, atomically and last-writer-wins. The records come
# packed (few large arguments instead of several per record: argument handling is what
# costs on both sides): ARGV[4] holds a fixed-width ASCII header per record, ARGV[5] the
# keys back to back, ARGV[6] the values back to back. Header fields (1-based columns):
# ver 1-41, d 42, pos 43-62 (record digest, signed, space-padded), neg 63-82 (its
# negation), score 83-98 (key hash >> 11), bucket 99-103 (key hash >> 48), klen 104-108,
# vlen 109-118, low byte of the digest 119.
_W = 119
_LWW = """
local fence = redis.call('GET', KEYS[1])
if ARGV[1] == '1' and fence and ARGV[2] < fence then
  return -1
end
local pre, hdr, kb, vb = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local n = tonumber(ARGV[7])
local sub, num, match = string.sub, tonumber, string.match
local kp, vp, applied = 1, 1, 0
local ops, nops = {}, 0
for i = 0, n - 1 do
  local o = i * 119
  local kl = num(sub(hdr, o + 104, o + 108))
  local vl = num(sub(hdr, o + 109, o + 118))
  local k = sub(kb, kp, kp + kl - 1)
  kp = kp + kl
  local rk = pre .. k
  local ver = sub(hdr, o + 1, o + 41)
  -- Only the 63-byte trailer of the stored record comes back into Lua. The trailer is at
  -- the end (ending in a byte of the digest) because Lua 5.1 interns every string and
  -- hashes long ones from a sample of bytes taken from their end: strings that differ only
  -- in their versions must differ there, or each string creation would walk a long
  -- collision chain.
  local cur = redis.call('GETRANGE', rk, -63, -1)
  if cur == '' then
    cur = false
  end
  if (not cur) or ver > sub(cur, 1, 41) then
    redis.call('SET', rk, sub(vb, vp, vp + vl - 1) .. sub(hdr, o + 1, o + 42) ..
               sub(hdr, o + 63, o + 82) .. sub(hdr, o + 119, o + 119))
    local b = 2 * num(sub(hdr, o + 99, o + 103))
    if cur then
      ops[nops + 1], ops[nops + 2], ops[nops + 3] = 'INCRBY', 'i64', '#' .. (b + 1)
      ops[nops + 4] = match(sub(cur, 43, 62), '%S+')
      nops = nops + 4
    else
      ops[nops + 1], ops[nops + 2], ops[nops + 3], ops[nops + 4] = 'INCRBY', 'i64', '#' .. b, 1
      nops = nops + 4
      redis.call('ZADD', KEYS[2], sub(hdr, o + 83, o + 98), k)
    end
    ops[nops + 1], ops[nops + 2], ops[nops + 3] = 'INCRBY', 'i64', '#' .. (b + 1)
    ops[nops + 4] = match(sub(hdr, o + 43, o + 62), '%S+')
    nops = nops + 4
    applied = applied + 1
    if nops >= 4000 then
      redis.call('BITFIELD', KEYS[3], 'OVERFLOW', 'WRAP', unpack(ops, 1, nops))
      nops = 0
    end
  end
  vp = vp + vl
end
if nops > 0 then
  redis.call('BITFIELD', KEYS[3], 'OVERFLOW', 'WRAP', unpack(ops, 1, nops))
end
return applied
"""
# One page of a range scan: the keys of the index with scores in [ARGV[1], ARGV[2]] from
# offset ARGV[3], at most ARGV[4], and their stored records, returned as [count, lengths,
# data]: lengths holds "klen(5) rlen(10)" per key, data the keys and records back to back
# (one reply element per page instead of three per record: parsing replies in redis-py
# is what costs). A record missing from the keyspace gets rlen 9999999999.
_FETCH = """
local ks = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', ARGV[3], ARGV[4])
local pre = ARGV[5]
local lens, data = {}, {}
for i, k in ipairs(ks) do
  local r = redis.call('GET', pre .. k)
  data[#data + 1] = k
  if r then
    lens[i] = string.format('%05d%010d', #k, #r)
    data[#data + 1] = r
  else
    lens[i] = string.format('%05d9999999999', #k)
  end
end
return {#ks, table.concat(lens), table.concat(data)}
"""
_SET_FENCE = """
local cur = redis.call('GET', KEYS[1])
if (not cur) or ARGV[1] > cur then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
"""
_CHUNK = 2000  # records per script call / keys per MGET
_TRAILER = 63  # ver 41, d 1, neg 20, one digest byte
_POW10 = np.array([10**i for i in range(19, -1, -1)], dtype=np.uint64)


def _digits(x: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits (ASCII) of non-negative integers: shape ``(n, width)``."""
    p = _POW10[20 - width :]
    return ((x.astype(np.uint64)[:, None] // p) % np.uint64(10) + np.uint64(48)).astype(np.uint8)


def _pack(records: Records) -> tuple[bytes, bytes, bytes]:
    """The (header, keys, values) arguments of the write script for ``records``."""
    n = len(records)
    h = records.hashes()
    dg = records.digests()
    vals = [b"" if v is None else v for v in records.values]
    signed = b"".join(
        [
            b"%20d%20d" % pq
            for pq in zip(
                dg.view(np.int64).tolist(),
                (np.uint64(0) - dg).view(np.int64).tolist(),
                strict=True,
            )
        ]
    )
    hdr = np.empty((n, _W), dtype=np.uint8)
    hdr[:, 0:20] = _digits(records.epochs, 20)
    hdr[:, 20] = ord(":")
    hdr[:, 21:41] = _digits(records.seqs, 20)
    hdr[:, 41] = np.array([v is None for v in records.values], dtype=np.uint8) + ord("0")
    hdr[:, 42:82] = np.frombuffer(signed, dtype=np.uint8).reshape(n, 40)
    hdr[:, 82:98] = _digits(h >> np.uint64(11), 16)
    hdr[:, 98:103] = _digits(h >> np.uint64(64 - DIGEST_BITS), 5)
    hdr[:, 103:108] = _digits(np.fromiter(map(len, records.keys), dtype=np.uint64, count=n), 5)
    hdr[:, 108:118] = _digits(np.fromiter(map(len, vals), dtype=np.uint64, count=n), 10)
    hdr[:, 118] = (dg & np.uint64(0xFF)).astype(np.uint8)
    return hdr.tobytes(), b"".join(records.keys), b"".join(vals)


def _unpack_fetch(lens: bytes, data: bytes, n: int) -> tuple[list[bytes], list[bytes | None]]:
    """Keys and stored records (None: missing) of a ``_FETCH`` reply."""
    if len(lens) != 15 * n:
        raise BackendError(f"scan: malformed reply ({len(lens)} length bytes for {n} keys)")
    keys: list[bytes] = []
    raws: list[bytes | None] = []
    pos = 0
    for i in range(0, 15 * n, 15):
        kl, rl = int(lens[i : i + 5]), int(lens[i + 5 : i + 15])
        keys.append(data[pos : pos + kl])
        pos += kl
        if rl == 9_999_999_999:
            raws.append(None)
        else:
            raws.append(data[pos : pos + rl])
            pos += rl
    if pos != len(data):
        raise BackendError("scan: malformed reply (data length)")
    return keys, raws


def redact_url(url: str) -> str:
    """``url`` without its password (safe to log or show)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    netloc = f"{user}:***@{host}" if user else f":***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class RedisBackend(Backend):
    """Records of one node in a Redis server.

    Parameters
    ----------
    url
        ``redis://[user:password@]host:port/db``. The password is never logged or shown.
    prefix
        Key prefix, so several nodes or applications can share one server.
    timeout_s
        Socket connect and read timeout: a dead or hung server fails calls within it.

    Examples
    --------
    >>> b = RedisBackend("redis://127.0.0.1:6379/0")  # doctest: +SKIP
    """

    def __init__(self, url: str, *, prefix: str = "rg:", timeout_s: float = 2.0) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "RedisBackend needs redis-py: pip install 'ringguard[redis]'"
            ) from exc
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("url: expected a redis://, rediss:// or unix:// URL")
        self.url = redact_url(url)
        self.name = self.url
        self._prefix = prefix.encode("utf-8")
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._script = self._client.register_script(_LWW)
        self._set_fence = self._client.register_script(_SET_FENCE)
        self._scan_script = self._client.register_script(_FETCH)
        # Outside the record namespace (<prefix><key>) for the usual prefixes.
        self._fence_key = b"ringguard-fence:" + self._prefix
        self._index_key = b"ringguard-index:" + self._prefix
        self._digest_key = b"ringguard-digest:" + self._prefix

    def _fail(self, what: str, exc: BaseException) -> BackendError:
        return BackendError(f"{self.url}: {what} failed ({type(exc).__name__}: {exc})")

    def set_fence(self, epoch: int) -> None:
        try:
            self._set_fence(keys=[self._fence_key], args=[f"{int(epoch):020d}"])
        except self._errors as exc:
            raise self._fail("set_fence", exc) from exc

    def fence(self) -> int:
        try:
            got = self._client.get(self._fence_key)
        except self._errors as exc:
            raise self._fail("fence", exc) from exc
        return int(got) if got else 0

    def write(self, records: Records, *, fenced: bool = False) -> int:
        if not len(records):
            return 0
        applied = 0
        low = f"{int(records.epochs.min()):020d}"
        keys = [self._fence_key, self._index_key, self._digest_key]
        try:
            for i in range(0, len(records), _CHUNK):
                part = records.take(np.arange(i, min(i + _CHUNK, len(records))))
                hdr, kb, vb = _pack(part)
                args = [1 if fenced else 0, low, self._prefix, hdr, kb, vb, len(part)]
                got = int(self._script(keys=keys, args=args))
                if got < 0:
                    raise StaleEpochError(
                        f"{self.url}: write with epoch {int(low)} below the fence {self.fence()}"
                    )
                applied += got
        except self._errors as exc:
            raise self._fail("write", exc) from exc
        return applied

    def read(self, keys: Sequence[bytes]) -> Records:
        ks = list(keys)
        rows: list[Any] = []
        p = self._prefix
        try:
            for i in range(0, len(ks), _CHUNK):
                rows += self._client.mget([p + k for k in ks[i : i + _CHUNK]])
        except self._errors as exc:
            raise self._fail("read", exc) from exc
        return self._records(ks, rows)

    def _records(self, ks: list[bytes], rows: Sequence[bytes | None]) -> Records:
        """Records from stored strings (``None``: absent)."""
        values: list[bytes | None] = []
        epochs = np.full(len(ks), -1, dtype=np.int64)
        seqs = np.full(len(ks), -1, dtype=np.int64)
        for j, raw in enumerate(rows):
            if raw is None:
                values.append(None)
                continue
            t = len(raw) - _TRAILER
            if t < 0 or raw[t + 20 : t + 21] != b":":
                raise BackendError(f"{self.url}: record {ks[j]!r} is not in ringguard's format")
            epochs[j], seqs[j] = int(raw[t : t + 20]), int(raw[t + 21 : t + 41])
            values.append(None if raw[t + 41 : t + 42] == b"1" else bytes(raw[:t]))
        return Records(ks, values, epochs, seqs)

    def scan_range(self, lo: int, hi: int, batch_size: int = 10_000) -> Iterator[Records]:
        lo, hi = check_range(lo, hi)
        batch_size = check_batch_size(batch_size)
        return self._scan(lo, hi, batch_size)

    def _scan(self, lo: int, hi: int, batch_size: int) -> Iterator[Records]:
        if lo >= hi:
            return
        # The index scores keys by hash >> 11: select by score (server side, one script
        # call per page returning the keys and records packed), then filter exact hashes.
        # Pages resume at the last score seen, skipping the members of that score already
        # returned (members of one score come in a fixed, byte-wise order).
        score, top, skip = lo >> 11, (hi - 1) >> 11, 0
        while True:
            try:
                got: list[bytes] = self._scan_script(
                    keys=[self._index_key], args=[score, top, skip, batch_size, self._prefix]
                )
            except self._errors as exc:
                raise self._fail("scan", exc) from exc
            n = int(got[0])
            if n == 0:
                return
            keys, raws = _unpack_fetch(bytes(got[1]), bytes(got[2]), n)
            h = key_hashes(keys)
            sc = h >> np.uint64(11)
            last = int(sc[-1])
            same = int((sc == sc[-1]).sum())
            skip = (skip if last == score else 0) + same
            score = last
            inside = np.flatnonzero((h >= np.uint64(lo)) & (h <= np.uint64(hi - 1)))
            if len(inside):
                order = inside[np.argsort(h[inside], kind="stable")].tolist()
                yield self._records([keys[j] for j in order], [raws[j] for j in order])
            if n < batch_size:
                return

    def _digests(self) -> tuple[np.ndarray, np.ndarray]:
        try:
            raw: bytes | None = self._client.get(self._digest_key)  # type: ignore[assignment]
        except self._errors as exc:
            raise self._fail("digests", exc) from exc
        n = 2**DIGEST_BITS
        pairs = np.zeros(2 * n, dtype=np.uint64)
        if raw:
            if len(raw) > 16 * n:
                raise BackendError(f"{self.url}: the digest string is {len(raw)} bytes")
            m = len(raw) // 8
            pairs[:m] = np.frombuffer(raw[: 8 * m], dtype=">u8")
            if len(raw) % 8:  # BITFIELD grows the string to the last byte it wrote
                pairs[m] = int.from_bytes(raw[8 * m :].ljust(8, b"\0"), "big")
        return pairs[0::2].copy(), pairs[1::2].copy()

    def count(self) -> int:
        try:
            return int(self._client.zcard(self._index_key))
        except self._errors as exc:
            raise self._fail("count", exc) from exc

    def ping(self) -> None:
        try:
            self._client.ping()
        except self._errors as exc:
            raise self._fail("ping", exc) from exc

    def close(self) -> None:
        try:
            self._client.close()
        except self._errors:  # pragma: no cover
            pass

    def __repr__(self) -> str:
        return f"RedisBackend({self.url!r})"
