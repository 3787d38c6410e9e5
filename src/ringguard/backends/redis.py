"""A node backend on a real Redis server (redis-py, pipelined batches).

Each record is a Redis hash ``<prefix><key>`` with fields ``ver`` (the version as a
fixed-width ``epoch:seq`` string, so Lua compares it exactly as text — Lua numbers are
doubles and would round 64-bit sequences), ``v`` (the value), ``d`` (1 for a tombstone) and
``gh``/``gl`` (the record digest's 32-bit halves). A sorted set
``ringguard-index:<prefix>`` lists the keys scored by ``key hash >> 11`` (53 bits, exact as
a double) for range scans; a hash ``ringguard-digest:<prefix>`` holds per 16-bit range the
count ``c<r>`` and digest sum as exact 32-bit halves ``h<r>``/``l<r>``. A chunk of records
is applied by one Lua script call, atomically and last-writer-wins, digests included.
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
    record_digests,
)

__all__ = ["RedisBackend", "redact_url"]

# One call applies a chunk of records, atomically and last-writer-wins. The records come
# packed (few large arguments instead of several per record: argument handling is what
# costs on both sides): ARGV[4] holds a fixed-width ASCII header per record, ARGV[5] the
# keys back to back, ARGV[6] the values back to back. Header fields (widths): ver (41,
# "epoch:seq" as 20+20 zero-padded digits, compared as text), d (1, '1' = tombstone),
# gh/gl (10 each: high and low 32-bit halves of the record digest, decimal), score (16:
# key hash >> 11, exact as a double), bucket (5: key hash >> 48), klen (5), vlen (10).
# Digest sums per bucket are kept as two exact 32-bit halves with carries (h<b>, l<b>)
# and a count (c<b>) in one hash: every intermediate stays far below 2**53.
_LWW = """
local fence = redis.call('GET', KEYS[1])
if ARGV[1] == '1' and fence and ARGV[2] < fence then
  return -1
end
local pre, hdr, kb, vb = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local n = tonumber(ARGV[7])
local sub, num = string.sub, tonumber
local kp, vp, applied = 1, 1, 0
local acc, order = {}, {}
for i = 0, n - 1 do
  local o = i * 98
  local kl = num(sub(hdr, o + 84, o + 88))
  local vl = num(sub(hdr, o + 89, o + 98))
  local k = sub(kb, kp, kp + kl - 1)
  kp = kp + kl
  local ver = sub(hdr, o + 1, o + 41)
  local rk = pre .. k
  local cur = redis.call('HMGET', rk, 'ver', 'gh', 'gl')
  if (not cur[1]) or ver > cur[1] then
    local gh, gl, b = sub(hdr, o + 43, o + 52), sub(hdr, o + 53, o + 62), sub(hdr, o + 79, o + 83)
    redis.call('HSET', rk, 'ver', ver, 'v', sub(vb, vp, vp + vl - 1), 'd', sub(hdr, o + 42, o + 42),
               'gh', gh, 'gl', gl)
    local a = acc[b]
    if not a then
      a = {0, 0, 0}
      acc[b] = a
      order[#order + 1] = b
    end
    a[2] = a[2] + num(gh)
    a[3] = a[3] + num(gl)
    if cur[1] then
      a[2] = a[2] - num(cur[2])
      a[3] = a[3] - num(cur[3])
    else
      a[1] = a[1] + 1
      redis.call('ZADD', KEYS[2], sub(hdr, o + 63, o + 78), k)
    end
    applied = applied + 1
  end
  vp = vp + vl
end
local step = 200
for g = 1, #order, step do
  local fields = {}
  local last = math.min(g + step - 1, #order)
  for j = g, last do
    local b = order[j]
    fields[#fields + 1] = 'c' .. b
    fields[#fields + 1] = 'h' .. b
    fields[#fields + 1] = 'l' .. b
  end
  local cur = redis.call('HMGET', KEYS[3], unpack(fields))
  local out = {}
  for j = g, last do
    local a = acc[order[j]]
    local x = 3 * (j - g)
    local c = (num(cur[x + 1]) or 0) + a[1]
    local l = (num(cur[x + 3]) or 0) + a[3]
    local carry = math.floor(l / 4294967296)
    l = l - carry * 4294967296
    local h = ((num(cur[x + 2]) or 0) + a[2] + carry) % 4294967296
    out[#out + 1] = fields[x + 1]
    out[#out + 1] = string.format('%.0f', c)
    out[#out + 1] = fields[x + 2]
    out[#out + 1] = string.format('%.0f', h)
    out[#out + 1] = fields[x + 3]
    out[#out + 1] = string.format('%.0f', l)
  end
  redis.call('HSET', KEYS[3], unpack(out))
end
return applied
"""
_SET_FENCE = """
local cur = redis.call('GET', KEYS[1])
if (not cur) or ARGV[1] > cur then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
"""
_CHUNK = 1000  # keys per script call / pipeline round trip
_HEADER_WIDTH = 98
_POW10 = np.array([10**i for i in range(19, -1, -1)], dtype=np.uint64)


def _digits(x: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits (ASCII) of non-negative integers: shape ``(n, width)``."""
    p = _POW10[20 - width :]
    return ((x.astype(np.uint64)[:, None] // p) % np.uint64(10) + np.uint64(48)).astype(np.uint8)


def _pack(records: Records) -> tuple[bytes, bytes, bytes]:
    """The (header, keys, values) arguments of the write script for ``records``."""
    n = len(records)
    h = key_hashes(records.keys)
    dg = record_digests(records)
    vals = [b"" if v is None else v for v in records.values]
    hdr = np.empty((n, _HEADER_WIDTH), dtype=np.uint8)
    hdr[:, 0:20] = _digits(records.epochs, 20)
    hdr[:, 20] = ord(":")
    hdr[:, 21:41] = _digits(records.seqs, 20)
    hdr[:, 41] = np.array([v is None for v in records.values], dtype=np.uint8) + ord("0")
    hdr[:, 42:52] = _digits(dg >> np.uint64(32), 10)
    hdr[:, 52:62] = _digits(dg & np.uint64(0xFFFFFFFF), 10)
    hdr[:, 62:78] = _digits(h >> np.uint64(11), 16)
    hdr[:, 78:83] = _digits(h >> np.uint64(64 - DIGEST_BITS), 5)
    hdr[:, 83:88] = _digits(np.fromiter(map(len, records.keys), dtype=np.uint64, count=n), 5)
    hdr[:, 88:98] = _digits(np.fromiter(map(len, vals), dtype=np.uint64, count=n), 10)
    return hdr.tobytes(), b"".join(records.keys), b"".join(vals)


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
        try:
            for i in range(0, len(ks), _CHUNK):
                pipe = self._client.pipeline(transaction=False)
                for k in ks[i : i + _CHUNK]:
                    pipe.hmget(self._prefix + k, "ver", "v", "d")
                rows += pipe.execute()
        except self._errors as exc:
            raise self._fail("read", exc) from exc
        values: list[bytes | None] = []
        epochs = np.full(len(ks), -1, dtype=np.int64)
        seqs = np.full(len(ks), -1, dtype=np.int64)
        for j, (ver, v, d) in enumerate(rows):
            if ver is None:
                values.append(None)
                continue
            e, s = ver.split(b":")
            epochs[j], seqs[j] = int(e), int(s)
            values.append(None if d == b"1" else bytes(v))
        return Records(ks, values, epochs, seqs)

    def scan_range(self, lo: int, hi: int, batch_size: int = 10_000) -> Iterator[Records]:
        lo, hi = check_range(lo, hi)
        batch_size = check_batch_size(batch_size)
        return self._scan(lo, hi, batch_size)

    def _scan(self, lo: int, hi: int, batch_size: int) -> Iterator[Records]:
        if lo >= hi:
            return
        # The index scores keys by hash >> 11: select by score, then filter exact hashes.
        # Pages resume at the last score seen, skipping the members of that score already
        # returned (members of one score come in a fixed, byte-wise order).
        score, top, skip = lo >> 11, (hi - 1) >> 11, 0
        while True:
            try:
                rows: list[Any] = self._client.zrangebyscore(
                    self._index_key, score, top, start=skip, num=batch_size, withscores=True
                )
            except self._errors as exc:
                raise self._fail("scan", exc) from exc
            if not rows:
                return
            keys = [bytes(k) for k, _ in rows]
            last = int(rows[-1][1])
            same = sum(int(s) == last for _, s in rows)
            skip = (skip if last == score else 0) + same
            score = last
            h = key_hashes(keys)
            inside = np.flatnonzero((h >= np.uint64(lo)) & (h <= np.uint64(hi - 1)))
            if len(inside):
                order = inside[np.argsort(h[inside], kind="stable")]
                yield self.read([keys[j] for j in order.tolist()])
            if len(rows) < batch_size:
                return

    def _digests(self) -> tuple[np.ndarray, np.ndarray]:
        try:
            got: dict[bytes, bytes] = self._client.hgetall(self._digest_key)  # type: ignore
        except self._errors as exc:
            raise self._fail("digests", exc) from exc
        n = 2**DIGEST_BITS
        parts = np.zeros((3, n), dtype=np.uint64)
        row = {ord("c"): 0, ord("h"): 1, ord("l"): 2}
        for f, v in got.items():
            parts[row[f[0]], int(f[1:])] = int(v)
        return parts[0], (parts[1] << np.uint64(32)) + parts[2]

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
