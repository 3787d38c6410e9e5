"""A node backend on a real Redis server (redis-py, one script call per chunk).

Layout (format 3), for a backend with key prefix ``<p>``:

* each record is a Redis string ``<p><key>`` holding ``head | value | entry``: the head
  (42 bytes) is the version as fixed-width text ``epoch:seq`` (20 + 1 + 20 digits, so Lua
  compares versions exactly as text: Lua numbers are doubles and would round 64-bit
  sequences) and ``1`` for a tombstone else ``0``; the record's *digest entry* (12
  bytes) is the top 32 bits of its key hash and its digest, little-endian;
* ``ringguard-meta:<p>`` names the format and the digest resolution the data was written
  with (``ringguard-redis format=3 digest_bits=16``); a store written with another
  format or resolution is refused with a clear error;
* ``ringguard-index:<p>``, a sorted set of the record keys (``<p><key>``) scored by
  ``key hash >> 11`` (53 bits, exact as a double), serves range scans (a key enters it
  once, when first written);
* range digests are a *base* string ``ringguard-dbase:<p>`` of ``2**digest_bits`` pairs of
  little-endian uint64 (count, digest sum), plus two append-only logs of digest entries,
  ``ringguard-dadd:<p>`` (records that entered the store) and ``ringguard-dsub:<p>``
  (records that an overwrite replaced). The write script only appends entries, one
  ``APPEND`` per log per chunk, never arithmetic (Lua numbers would round 64-bit sums);
  the client folds the logs into the base in NumPy, mod ``2**64`` exactly as the digest
  definition says, and writes the folded base back (``ringguard-dgen:<p>`` guards that
  against a concurrent fold) once the logs outgrow the base.

A chunk of records (2000) is applied by one Lua script call, atomically and
last-writer-wins, digest entries included; the chunks of one write are pipelined on one
connection. A fenced write is checked chunk by chunk: if the fence rises between two
chunks of one write, the write raises :class:`~ringguard.backends.StaleEpochError` with
the earlier chunks applied (never acknowledged: the caller sees the error). Standalone
Redis only (the scan script reads record keys it does not declare, as Redis Cluster
forbids).

Format 2 (before this layout: BITFIELD digests and a 63-byte trailer) is refused, not
migrated: its stores name no format, so a prefix whose index exists without a format 3
``meta`` key raises :class:`~ringguard.backends.BackendError` on every call, telling to
rebuild the node from its replicas (``ReplicatedStore.recover`` onto a fresh prefix or
database): the replicated store holds every record on another node too.
"""

from __future__ import annotations

import logging
import operator
import struct
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

__all__ = ["FORMAT", "RedisBackend", "redact_url"]

_log = logging.getLogger(__name__)

#: On-server layout version (module docstring).
FORMAT = 3
# The digest entry keeps 32 bits of the key hash: enough for any resolution up to 32.
assert 1 <= DIGEST_BITS <= 32

# One call applies a chunk of records, atomically and last-writer-wins, with a constant
# number of server calls per chunk (each redis.call from Lua costs far more than the Lua
# around it): one MGET of the fence and format, one MGET of the stored records, one MSET of
# the records that win, one ZADD of the keys that are new, one APPEND per digest log.
# Per record the loop calls as few Lua functions as it can (each string.sub costs the
# server about as much as passing an argument): the version test is one comparison of
# the stored string with the record's *bound* (see _Packed), and only an overwrite cuts
# the replaced record's digest entry, only a new key its index score. The chunk's own
# digest entries arrive as one argument, appended whole when every record wins.
# KEYS: fence, meta, index, digest add log, digest sub log, then the n prefixed record
# keys. ARGV: fenced flag, lowest epoch (20 digits), n, '1' if a key comes twice in the
# chunk, the expected meta string, the index scores (16 zero-padded digits per record),
# the digest entries (12 bytes per record), the n stored strings, then the n bounds.
# Returns {applied, summed lengths of the logs appended to} or {-1, fence} (stale epoch,
# nothing written) or {-2, meta} (the prefix holds another format, nothing written).
_LWW = """
local fm = redis.call('MGET', KEYS[1], KEYS[2])
local fence, meta = fm[1], fm[2]
if meta ~= ARGV[5] then
  if meta or redis.call('EXISTS', KEYS[3]) == 1 then
    return {-2, meta or ''}
  end
  redis.call('SET', KEYS[2], ARGV[5])
end
if ARGV[1] == '1' and fence and ARGV[2] < fence then
  return {-1, fence}
end
local n, dup, scores, adds = tonumber(ARGV[3]), ARGV[4] == '1', ARGV[6], ARGV[7]
local sub = string.sub
local cur = redis.call('MGET', unpack(KEYS, 6, n + 5))
local sets, ins, outs, zs, latest = {}, {}, {}, {}, {}
local ns, ni, no, nz = 0, 0, 0, 0
for i = 1, n do
  local rk, c = KEYS[i + 5], cur[i]
  if dup then
    -- The later record of a repeated key is compared with what the chunk put there.
    local l = latest[rk]
    if l ~= nil then
      c = l
    end
  end
  -- A stored record sorts below the bound exactly when its version is older.
  if (not c) or c < ARGV[i + n + 7] then
    local rec = ARGV[i + 7]
    sets[ns + 1], sets[ns + 2] = rk, rec
    ns = ns + 2
    if dup then
      latest[rk] = rec
    end
    ni = ni + 1
    ins[ni] = i
    if c then
      no = no + 1
      outs[no] = sub(c, -12)
    else
      zs[nz + 1], zs[nz + 2] = sub(scores, 16 * i - 15, 16 * i), rk
      nz = nz + 2
    end
  end
end
-- unpack() is bounded by Lua's C stack (about 8000 values): apply in slices.
for j = 1, ns, 4000 do
  redis.call('MSET', unpack(sets, j, math.min(j + 3999, ns)))
end
for j = 1, nz, 4000 do
  redis.call('ZADD', KEYS[3], unpack(zs, j, math.min(j + 3999, nz)))
end
local logged = 0
if ni == n then
  logged = redis.call('APPEND', KEYS[4], adds)
elseif ni > 0 then
  local t = {}
  for j = 1, ni do
    local i = ins[j]
    t[j] = sub(adds, 12 * i - 11, 12 * i)
  end
  logged = redis.call('APPEND', KEYS[4], table.concat(t))
end
if no > 0 then
  logged = logged + redis.call('APPEND', KEYS[5], table.concat(outs))
end
return {ni, logged}
"""
# Folds the digest logs into the base: KEYS gen, base, add log, sub log; ARGV the
# generation the fold started from, the new base, the lengths of the logs it folded.
# Entries appended since stay in the logs; a concurrent fold (generation moved) wins.
_FOLD = """
local g = redis.call('GET', KEYS[1]) or '0'
if g ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
for j = 3, 4 do
  local rest = redis.call('GETRANGE', KEYS[j], ARGV[j], -1)
  if rest == '' then
    redis.call('DEL', KEYS[j])
  else
    redis.call('SET', KEYS[j], rest)
  end
end
redis.call('INCR', KEYS[1])
return 1
"""
# One page of a range scan: the (prefixed) keys of the index with scores in [ARGV[1], ARGV[2]] from
# offset ARGV[3], at most ARGV[4], and their stored records, returned as [count, lengths,
# data]: lengths holds "klen(5) rlen(10)" per key, data the keys and records back to back
# (one reply element per page instead of three per record: parsing replies in redis-py
# is what costs). A record missing from the keyspace gets rlen 9999999999.
_FETCH = """
local ks = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', ARGV[3], ARGV[4])
local lens, data = {}, {}
for i, k in ipairs(ks) do
  local r = redis.call('GET', k)
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
_WINDOW = 4  # script calls in flight on one connection during a write
_HEAD = 42  # version 41, tombstone flag 1 (then the value, then the digest entry)
_ENTRY = np.dtype([("h32", "<u4"), ("digest", "<u8")])  # the last 12 bytes of a record
_BOUND = 49  # RESP of one bound: "$42\r\n", version 41, "9", "\r\n"
assert _ENTRY.itemsize == 12
_FIRST = operator.itemgetter(0)
_HEAD_BYTES = struct.Struct(f"{_HEAD}s")
_MIN = _HEAD + _ENTRY.itemsize  # the shortest record (an empty value)
_TAIL_BYTES = struct.Struct(f"{_ENTRY.itemsize + 2}s")
_META = f"ringguard-redis format={FORMAT} digest_bits={DIGEST_BITS}".encode()
_META_STEM = f"ringguard-redis format={FORMAT} digest_bits=".encode()
_SEQ_MAX = np.int64(2**63 - 1)  # the greatest seq (versions are int64)
_lut4: np.ndarray | None = None


class _Headers(dict[int, bytes]):
    """RESP bulk-string headers ``$<len>\\r\\n`` by length (the short ones cached)."""

    def __missing__(self, n: int) -> bytes:
        h = b"$%d\r\n" % n
        if n < 65536:
            self[n] = h
        return h


_HEADERS = _Headers()


def _digits(x: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits (ASCII) of integers in ``[0, min(10**width, 2**63))``:
    shape ``(n, width)``, ``width`` a multiple of 4 (four digits per int64 division, then
    one 4-byte table lookup)."""
    global _lut4
    if _lut4 is None:
        d = np.arange(10_000)
        quads = np.stack([d // 1000, d // 100 % 10, d // 10 % 10, d % 10], axis=1) + 48
        _lut4 = quads.astype(np.uint8).view("<u4").reshape(-1)
    q = np.asarray(x)
    if q.dtype.kind not in "iu":
        raise TypeError("_digits: integers expected")
    q = q.astype(np.int64)
    out = np.empty((len(q), width // 4), dtype="<u4")
    for g in range(width // 4 - 1, -1, -1):
        nq = q // 10_000
        out[:, g] = _lut4.take(q - nq * 10_000)
        q = nq
    return out.view(np.uint8).reshape(len(out), width)


def _versions(epochs: np.ndarray, seqs: np.ndarray) -> np.ndarray:
    """Versions as stored: ``epoch:seq``, 20 digits each, as ``(n, 41)`` ASCII bytes."""
    v = np.empty((len(epochs), 41), dtype=np.uint8)
    if len(epochs) and epochs.min() == epochs.max():  # the usual batch: one epoch
        v[:, 0:20] = _digits(epochs[:1], 20)
    else:
        v[:, 0:20] = _digits(epochs, 20)
    v[:, 20] = ord(":")
    v[:, 21:41] = _digits(seqs, 20)
    return v


def _entries(digests: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Digest entries (top 32 bits of the key hash, record digest) as ``(n, 12)`` bytes."""
    e = np.empty(len(digests), dtype=_ENTRY)
    e["digest"] = digests
    e["h32"] = (np.asarray(hashes, dtype=np.uint64) >> np.uint64(32)).astype(np.uint32)
    return e.view(np.uint8).reshape(len(digests), 12)


class _Packed:
    """A write's records encoded once, as RESP pieces ready to cut into script calls.

    Each stored string is a 42-byte head (version text, tombstone flag), the value, then
    the 12-byte digest entry (the module docstring). With each record travels its
    *bound*: the version just below its own, ``(epoch, seq - 1)`` (``(epoch - 1,
    2**63 - 1)`` for seq 0), as text, then ``9``. Versions are fixed-width digit strings,
    so a stored string ``c`` compares below the bound exactly when its version is at most
    the bound's, i.e. below the record's: where the versions are equal the bound's ``9``
    beats the stored tombstone flag (``0``/``1``). Version ``(0, 0)`` has no version
    below it: its bound is the empty string, below everything.

    The script's cost is mostly bytes turned into Lua strings (this server's Lua hashes
    every byte of each, about a dozen instructions per byte): the stored records its MGET
    returns and the records and bounds it is passed. Hence one bound argument rather
    than cutting two version strings per record, and nothing else per record.
    """

    def __init__(self, records: Records, prefix: bytes) -> None:
        n = len(records)
        h = records.hashes()
        e, s = records.epochs, records.seqs
        head = np.empty((n, _HEAD), dtype=np.uint8)
        head[:, 0:41] = _versions(e, s)
        values = [b"" if v is None else v for v in records.values]
        head[:, 41] = np.fromiter(
            map(operator.is_, records.values, [None] * n), dtype=np.uint8, count=n
        ) + ord("0")
        ent = _entries(records.digests(), h)
        tail = np.empty((n, _ENTRY.itemsize + 2), dtype=np.uint8)
        tail[:, :-2] = ent
        tail[:, -2:] = np.frombuffer(b"\r\n", dtype=np.uint8)
        zero = s == 0
        below = np.empty((n, _BOUND), dtype=np.uint8)  # "$42\r\n" bound(42) "\r\n"
        below[:, 0:5] = np.frombuffer(b"$42\r\n", dtype=np.uint8)
        below[:, 5:46] = _versions(np.maximum(e - zero, 0), np.where(zero, _SEQ_MAX, s - 1))
        below[:, 46] = ord("9")
        below[:, 47:49] = np.frombuffer(b"\r\n", dtype=np.uint8)
        self.bounds = below.tobytes()
        self.origin = np.flatnonzero(zero & (e == 0))  # version (0, 0): empty bound
        self.n = n
        self.keys = records.keys
        self.entries = ent.tobytes()
        self.scores = _digits(h >> np.uint64(11), 16).tobytes()
        hd = _HEADERS
        plen = len(prefix)
        kp: list[bytes] = [b""] * (4 * n)
        kp[0::4] = [hd[plen + k] for k in map(len, records.keys)]
        kp[1::4] = [prefix] * n
        kp[2::4] = records.keys
        kp[3::4] = [b"\r\n"] * n
        rp: list[bytes] = [b""] * (4 * n)
        rp[0::4] = [hd[_HEAD + _ENTRY.itemsize + v] for v in map(len, values)]
        rp[1::4] = list(map(_FIRST, _HEAD_BYTES.iter_unpack(head.tobytes())))
        rp[2::4] = values
        rp[3::4] = list(map(_FIRST, _TAIL_BYTES.iter_unpack(tail.tobytes())))
        self.key_pieces = kp
        self.rec_pieces = rp

    def call(self, sha: bytes, fixed_keys: list[bytes], head: list[bytes], lo: int, hi: int
             ) -> bytes:
        """The EVALSHA command (RESP) applying records ``lo:hi``."""
        m = hi - lo
        dup = b"1" if len(set(self.keys[lo:hi])) < m else b"0"
        args = [*head, b"%d" % m, dup, _META, self.scores[16 * lo : 16 * hi],
                self.entries[12 * lo : 12 * hi]]
        nk = len(fixed_keys) + m
        hd = _HEADERS
        parts = [b"*%d\r\n$7\r\nEVALSHA\r\n" % (nk + len(args) + 2 * m + 3), hd[len(sha)],
                 sha, b"\r\n", b"$%d\r\n%d\r\n" % (len(str(nk)), nk)]
        for a in fixed_keys:
            parts += (hd[len(a)], a, b"\r\n")
        parts += self.key_pieces[4 * lo : 4 * hi]
        for a in args:
            parts += (hd[len(a)], a, b"\r\n")
        parts += self.rec_pieces[4 * lo : 4 * hi]
        o = self.origin[(self.origin >= lo) & (self.origin < hi)].tolist()
        if not o:
            parts.append(self.bounds[_BOUND * lo : _BOUND * hi])
        else:  # version (0, 0): an empty bound
            at = lo
            for j in o:
                parts += (self.bounds[_BOUND * at : _BOUND * j], b"$0\r\n\r\n")
                at = j + 1
            parts.append(self.bounds[_BOUND * at : _BOUND * hi])
        return b"".join(parts)

def _fold(base: bytes | None, add: bytes | None, sub: bytes | None, bits: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """Range digests ``(counts, sums)`` at ``bits``: the base plus the add log minus the
    sub log (uint64, wrapping mod ``2**64``). Raises ValueError for malformed strings."""
    n = 2**bits
    if base:
        if len(base) != 16 * n:
            raise ValueError(f"the digest base is {len(base)} bytes, expected {16 * n}")
        pairs = np.frombuffer(base, dtype="<u8").astype(np.uint64)
    else:
        pairs = np.zeros(2 * n, dtype=np.uint64)
    counts, sums = pairs[0::2].copy(), pairs[1::2].copy()
    for log, sign in ((add, 1), (sub, -1)):
        if not log:
            continue
        if len(log) % _ENTRY.itemsize:
            raise ValueError(f"a digest log is {len(log)} bytes, not a multiple of 12")
        e = np.frombuffer(log, dtype=_ENTRY)
        r = (e["h32"].astype(np.uint64) >> np.uint64(32 - bits)).astype(np.intp)
        c = np.bincount(r, minlength=n).astype(np.uint64)
        d = e["digest"].astype(np.uint64)
        if sign > 0:
            counts += c
            np.add.at(sums, r, d)
        else:
            counts -= c
            np.subtract.at(sums, r, d)
    return counts, sums


def _unpack_fetch(lens: bytes, data: bytes, n: int, prefix: bytes
                  ) -> tuple[list[bytes], list[bytes | None]]:
    """Keys (``prefix`` removed) and stored records (None: missing) of a ``_FETCH`` reply."""
    p = len(prefix)
    if len(lens) != 15 * n:
        raise BackendError(f"scan: malformed reply ({len(lens)} length bytes for {n} keys)")
    keys: list[bytes] = []
    raws: list[bytes | None] = []
    pos = 0
    for i in range(0, 15 * n, 15):
        kl, rl = int(lens[i : i + 5]), int(lens[i + 5 : i + 15])
        if data[pos : pos + p] != prefix or kl < p:
            raise BackendError("scan: the index holds a key outside the prefix")
        keys.append(data[pos + p : pos + kl])
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
    """Records of one node in a Redis server (standalone; not Redis Cluster).

    Parameters
    ----------
    url
        ``redis://[user:password@]host:port/db``. The password is never logged or shown.
    prefix
        Key prefix, so several nodes or applications can share one server.
    timeout_s
        Socket connect and read timeout: a dead or hung server fails calls within it.

    A prefix holding data of another layout (format 2, or another digest resolution) is
    refused with :class:`BackendError` on first use; see the module docstring.

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
        if not isinstance(prefix, str):
            raise TypeError(f"prefix: expected a str, got {type(prefix).__name__}")
        self.url = redact_url(url)
        self.name = self.url
        self._prefix = prefix.encode("utf-8")
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self._fold_errors: tuple[type[BaseException], ...] = (BackendError, *self._errors)
        self._noscript = redis.exceptions.NoScriptError
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._script = self._client.register_script(_LWW)
        self._fold_script = self._client.register_script(_FOLD)
        self._set_fence = self._client.register_script(_SET_FENCE)
        self._scan_script = self._client.register_script(_FETCH)
        # Outside the record namespace (<prefix><key>) for the usual prefixes.
        p = self._prefix
        self._fence_key = b"ringguard-fence:" + p
        self._meta_key = b"ringguard-meta:" + p
        self._index_key = b"ringguard-index:" + p
        self._gen_key = b"ringguard-dgen:" + p
        self._base_key = b"ringguard-dbase:" + p
        self._add_key = b"ringguard-dadd:" + p
        self._sub_key = b"ringguard-dsub:" + p
        # Logs longer than this (bytes, both together) are folded into the base by write().
        self._fold_at = max(16 << DIGEST_BITS, 1 << 20)

    def _fail(self, what: str, exc: BaseException) -> BackendError:
        return BackendError(f"{self.url}: {what} failed ({type(exc).__name__}: {exc})")

    def _foreign(self, meta: bytes | None) -> BackendError:
        """The error for a prefix holding another layout (``meta`` as stored)."""
        where = f"{self.url}: prefix {self._prefix!r}"
        fix = "rebuild this node from its replicas on a fresh prefix or database"
        if not meta:
            return BackendError(
                f"{where} holds ringguard Redis format 2 data (or keys of another program);"
                f" format {FORMAT} refuses it: {fix}"
            )
        if meta.startswith(_META_STEM):
            got = meta[len(_META_STEM) :].decode("ascii", "replace")[:20]
            return BackendError(
                f"{where} was written with digest_bits={got}, this build uses "
                f"{DIGEST_BITS}: {fix}"
            )
        return BackendError(f"{where} holds data of another format ({meta[:60]!r}): {fix}")

    def _check_meta(self, meta: bytes | None) -> None:
        """Raise if the prefix holds another layout (``meta``: the stored meta string)."""
        if meta == _META:
            return
        if meta is not None or self._client.exists(self._index_key):
            raise self._foreign(meta)

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
        packed = _Packed(records, self._prefix)
        head = [b"1" if fenced else b"0", b"%020d" % int(records.epochs.min())]
        keys = [self._fence_key, self._meta_key, self._index_key, self._add_key, self._sub_key]
        cuts = list(range(0, len(records), _CHUNK))
        try:
            replies = self._pipeline(packed, keys, head, cuts)
        except self._errors as exc:
            raise self._fail("write", exc) from exc
        applied = logged = 0
        for got in replies:
            code = int(got[0])
            if code == -1:
                raise StaleEpochError(
                    f"{self.url}: write with epoch {int(head[1])} below the fence "
                    f"{int(got[1])}"
                )
            if code == -2:
                raise self._foreign(bytes(got[1]) or None)
            applied += code
            logged = max(logged, int(got[1]))
        if logged > self._fold_at:
            try:
                self._fold()
            except self._fold_errors as exc:  # the write itself is done
                _log.warning("%s: folding the digest logs failed: %s", self.url, exc)
        return applied

    def _pipeline(self, packed: _Packed, keys: list[bytes], head: list[bytes],
                  cuts: list[int]) -> list[Any]:
        """Send the script calls of ``packed`` (one per chunk starting at ``cuts``), up to
        ``_WINDOW`` in flight on one connection, and return their replies in order.

        After a stale-epoch or foreign-format reply no further chunk is sent. A chunk the
        server refused for want of the script (restart, SCRIPT FLUSH) is resent once the
        script is loaded; the calls are idempotent anyway. A connection that fails
        mid-call is dropped, never reused.
        """
        sha = self._script.sha.encode()
        n = packed.n
        replies: list[Any] = [None] * len(cuts)
        todo = list(range(len(cuts)))
        pool = self._client.connection_pool
        for attempt in (0, 1):
            missing: list[int] = []
            stop = False
            conn = pool.get_connection()
            try:
                sent: list[int] = []
                for j in todo:
                    if stop:
                        break
                    lo = cuts[j]
                    conn.send_packed_command(
                        [packed.call(sha, keys, head, lo, min(lo + _CHUNK, n))],
                        check_health=False,
                    )
                    sent.append(j)
                    if len(sent) > _WINDOW:
                        stop = self._reply(conn, sent.pop(0), replies, missing) or stop
                while sent:
                    self._reply(conn, sent.pop(0), replies, missing)
            except BaseException:
                conn.disconnect()
                raise
            finally:
                pool.release(conn)
            if not missing:
                break
            if attempt:
                raise BackendError(f"{self.url}: the server keeps losing the write script")
            self._client.script_load(_LWW)
            todo = missing
        return [r for r in replies if r is not None]

    def _reply(self, conn: Any, j: int, replies: list[Any], missing: list[int]) -> bool:
        """Read the reply of chunk ``j``; True if it refused the write (no more chunks)."""
        try:
            got = conn.read_response()
        except self._noscript:
            missing.append(j)
            return False
        replies[j] = got
        return int(got[0]) < 0

    def read(self, keys: Sequence[bytes]) -> Records:
        ks = list(keys)
        rows: list[Any] = []
        p = self._prefix
        try:
            # The format travels with the first chunk: no extra round trip.
            got: list[Any] = self._client.mget(
                [self._meta_key] + [p + k for k in ks[:_CHUNK]]
            )
            self._check_meta(got[0])
            rows += got[1:]
            for i in range(_CHUNK, len(ks), _CHUNK):
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
            flag = raw[41:42]
            try:
                if len(raw) < _MIN or raw[20:21] != b":" or flag not in (b"0", b"1"):
                    raise ValueError
                epochs[j], seqs[j] = int(raw[0:20]), int(raw[21:41])
            except ValueError:
                raise BackendError(
                    f"{self.url}: record {ks[j]!r} is not in ringguard's format"
                ) from None
            values.append(None if flag == b"1" else bytes(raw[_HEAD:-12]))
        return Records(ks, values, epochs, seqs)

    def scan_range(self, lo: int, hi: int, batch_size: int = 10_000) -> Iterator[Records]:
        lo, hi = check_range(lo, hi)
        batch_size = check_batch_size(batch_size)
        return self._scan(lo, hi, batch_size)

    def _scan(self, lo: int, hi: int, batch_size: int) -> Iterator[Records]:
        if lo >= hi:
            return
        try:
            self._check_meta(self._client.get(self._meta_key))  # type: ignore[arg-type]
        except self._errors as exc:
            raise self._fail("scan", exc) from exc
        # The index scores keys by hash >> 11: select by score (server side, one script
        # call per page returning the keys and records packed), then filter exact hashes.
        # Pages resume at the last score seen, skipping the members of that score already
        # returned (members of one score come in a fixed, byte-wise order).
        score, top, skip = lo >> 11, (hi - 1) >> 11, 0
        while True:
            try:
                got: list[bytes] = self._scan_script(
                    keys=[self._index_key], args=[score, top, skip, batch_size]
                )
            except self._errors as exc:
                raise self._fail("scan", exc) from exc
            n = int(got[0])
            if n == 0:
                return
            keys, raws = _unpack_fetch(bytes(got[1]), bytes(got[2]), n, self._prefix)
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

    def _state(self) -> tuple[bytes, np.ndarray, np.ndarray, int, int]:
        """The digest generation, folded ``(counts, sums)`` and the log lengths folded,
        read in one atomic MGET."""
        try:
            got: list[Any] = self._client.mget(
                [self._meta_key, self._gen_key, self._base_key, self._add_key, self._sub_key]
            )
            meta, gen, base, add, sub = got
            self._check_meta(meta)
        except self._errors as exc:
            raise self._fail("digests", exc) from exc
        try:
            counts, sums = _fold(base, add, sub, DIGEST_BITS)
        except ValueError as exc:
            raise BackendError(f"{self.url}: {exc}") from None
        return gen or b"0", counts, sums, len(add or b""), len(sub or b"")

    def _digests(self) -> tuple[np.ndarray, np.ndarray]:
        _, counts, sums, _, _ = self._state()
        return counts, sums

    def _fold(self) -> bool:
        """Fold the digest logs into the base; False if another client folded first."""
        gen, counts, sums, na, ns = self._state()
        pairs = np.empty(2 * len(counts), dtype="<u8")
        pairs[0::2], pairs[1::2] = counts, sums
        try:
            done = self._fold_script(
                keys=[self._gen_key, self._base_key, self._add_key, self._sub_key],
                args=[gen, pairs.tobytes(), na, ns],
            )
        except self._errors as exc:
            raise self._fail("fold digests", exc) from exc
        return bool(done)

    def count(self) -> int:
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.get(self._meta_key)
            pipe.zcard(self._index_key)
            meta, n = pipe.execute()
            self._check_meta(meta)
            return int(n)
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
