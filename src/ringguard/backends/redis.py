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

# One call applies a chunk of records, atomically and last-writer-wins, with a constant
# number of server calls per chunk (each redis.call from Lua costs far more than the Lua
# around it): one MGET of the stored records, one MSET of the records that win, BITFIELD
# calls carrying every digest increment of the chunk, one ZADD of the keys that are new.
# KEYS: fence, index, digest, then the n prefixed record keys. ARGV: fenced flag, lowest
# epoch (20 digits), n, prefix length, '1' if a key comes twice in the chunk, a header of
# two space-separated tokens per record (the BITFIELD offset of its range's digest sum
# '#<2b+1>', its digest as signed decimal), the index scores (16 zero-padded digits per
# record), then the n stored strings (value and trailer, see the module docstring).
# Per-record fields travel in few arguments rather than as arguments of their own, and the
# loop creates as few Lua strings as it can (each costs the server more than the rest of
# the loop): the count offset and the score are cut only for keys that are new.
_LWW = """
local fence = redis.call('GET', KEYS[1])
if ARGV[1] == '1' and fence and ARGV[2] < fence then
  return -1
end
local n, plen, dup, scores = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1', ARGV[7]
local sub, find = string.sub, string.find
local tok = string.gmatch(ARGV[6], '%S+')
local cur = redis.call('MGET', unpack(KEYS, 4, n + 3))
local sets, ops, zs, latest = {}, {}, {}, {}
local ns, no, nz, applied = 0, 0, 0, 0
for i = 1, n do
  local rk, rec = KEYS[i + 3], ARGV[i + 7]
  local stok, pos = tok(), tok()
  local c = cur[i]
  if dup then
    -- The later record of a repeated key is compared with what the chunk put there.
    local l = latest[rk]
    if l ~= nil then
      c = l
    end
  end
  -- Trailer from the end: ver -63..-23, tombstone flag -22, negated digest -21..-2
  -- (right-aligned in 20 characters, never blank).
  if (not c) or sub(rec, -63, -23) > sub(c, -63, -23) then
    sets[ns + 1], sets[ns + 2] = rk, rec
    ns = ns + 2
    if dup then
      latest[rk] = rec
    end
    if c then
      ops[no + 1], ops[no + 2], ops[no + 3] = 'INCRBY', 'i64', stok
      ops[no + 4] = sub(c, find(c, '%S', -21), -2)
    else
      ops[no + 1], ops[no + 2], ops[no + 4] = 'INCRBY', 'i64', 1
      ops[no + 3] = '#' .. (tonumber(sub(stok, 2)) - 1)
      zs[nz + 1], zs[nz + 2] = sub(scores, 16 * i - 15, 16 * i), sub(rk, plen + 1)
      nz = nz + 2
    end
    ops[no + 5], ops[no + 6], ops[no + 7], ops[no + 8] = 'INCRBY', 'i64', stok, pos
    no = no + 8
    applied = applied + 1
  end
end
-- unpack() is bounded by Lua's C stack (about 8000 values): apply in slices.
for j = 1, ns, 4000 do
  redis.call('MSET', unpack(sets, j, math.min(j + 3999, ns)))
end
for j = 1, no, 4000 do
  redis.call('BITFIELD', KEYS[3], 'OVERFLOW', 'WRAP', unpack(ops, j, math.min(j + 3999, no)))
end
for j = 1, nz, 4000 do
  redis.call('ZADD', KEYS[2], unpack(zs, j, math.min(j + 3999, nz)))
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


def _pack(records: Records, prefix: bytes) -> tuple[list[bytes], list[bytes]]:
    """The record keys and the per-record arguments of the write script for ``records``."""
    n = len(records)
    h = records.hashes()
    dg = records.digests()
    tr = np.empty((n, _TRAILER), dtype=np.uint8)
    tr[:, 0:20] = _digits(records.epochs, 20)
    tr[:, 20] = ord(":")
    tr[:, 21:41] = _digits(records.seqs, 20)
    tr[:, 41] = np.array([v is None for v in records.values], dtype=np.uint8) + ord("0")
    neg = b"".join([b"%20d" % x for x in (np.uint64(0) - dg).view(np.int64).tolist()])
    tr[:, 42:62] = np.frombuffer(neg, dtype=np.uint8).reshape(n, 20)
    tr[:, 62] = (dg & np.uint64(0xFF)).astype(np.uint8)
    tb = tr.tobytes()
    s2 = (h >> np.uint64(64 - DIGEST_BITS)).astype(np.int64) * 2 + 1
    hdr = b" ".join(
        [b"#%d %d" % sd for sd in zip(s2.tolist(), dg.view(np.int64).tolist(), strict=True)]
    )
    scores = _digits(h >> np.uint64(11), 16).tobytes()
    recs = [
        (b"" if v is None else v) + tb[j : j + _TRAILER]
        for v, j in zip(records.values, range(0, n * _TRAILER, _TRAILER), strict=True)
    ]
    dup = b"1" if len(set(records.keys)) < n else b"0"
    return [prefix + k for k in records.keys], [dup, hdr, scores, *recs]


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
                rkeys, rargs = _pack(part, self._prefix)
                head = [b"1" if fenced else b"0", low.encode(), b"%d" % len(part)]
                head.append(b"%d" % len(self._prefix))
                got = int(self._evalsha([*keys, *rkeys], [*head, *rargs]))
                if got < 0:
                    raise StaleEpochError(
                        f"{self.url}: write with epoch {int(low)} below the fence {self.fence()}"
                    )
                applied += got
        except self._errors as exc:
            raise self._fail("write", exc) from exc
        return applied

    def _evalsha(self, keys: list[bytes], args: list[bytes]) -> Any:
        """Run the write script on ``keys`` and ``args`` (all bytes).

        The command is encoded here in one pass rather than by redis-py's generic encoder,
        whose per-argument cost dominates the client's CPU for the thousands of arguments a
        chunk has. A connection that fails mid-call is dropped, never reused.
        """
        import redis

        sha = self._script.sha.encode()
        parts = [b"*%d\r\n$7\r\nEVALSHA\r\n$%d\r\n%s\r\n" % (len(keys) + len(args) + 3,
                                                              len(sha), sha)]
        parts.append(b"$%d\r\n%d\r\n" % (len(str(len(keys))), len(keys)))
        parts += [b"$%d\r\n%s\r\n" % (len(a), a) for a in keys]
        parts += [b"$%d\r\n%s\r\n" % (len(a), a) for a in args]
        payload = b"".join(parts)
        pool = self._client.connection_pool
        for attempt in (0, 1):
            conn = pool.get_connection()
            try:
                conn.send_packed_command([payload])
                return conn.read_response()
            except redis.exceptions.NoScriptError:
                if attempt:
                    raise
            except BaseException:
                conn.disconnect()
                raise
            finally:
                pool.release(conn)
            self._client.script_load(_LWW)  # the server lost its script cache (restart)
        raise AssertionError("unreachable")  # pragma: no cover

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
