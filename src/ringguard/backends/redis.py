"""A node backend on a real Redis server (redis-py, pipelined batches).

Each record is a Redis hash ``<prefix><key>`` with fields ``ver`` (the version as a
fixed-width ``epoch:seq`` string, so Lua compares it exactly as text — Lua numbers are
doubles and would round 64-bit sequences), ``v`` (the value) and ``d`` (1 for a tombstone).
A batch is applied by one Lua script, atomically and last-writer-wins.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from .base import Backend, BackendError, Records, StaleEpochError

__all__ = ["RedisBackend", "redact_url"]

_LWW = """
local fence = redis.call('GET', KEYS[1])
if ARGV[1] == '1' and fence and ARGV[2] < fence then
  return -1
end
local applied = 0
for i = 2, #KEYS do
  local j = 3 * (i - 1)
  local cur = redis.call('HGET', KEYS[i], 'ver')
  if (not cur) or ARGV[j] > cur then
    redis.call('HSET', KEYS[i], 'ver', ARGV[j], 'v', ARGV[j + 1], 'd', ARGV[j + 2])
    applied = applied + 1
  end
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


def _ver(e: int, s: int) -> str:
    return f"{e:020d}:{s:020d}"


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
        # Outside the record namespace (scan matches prefix*), so no record key collides.
        self._fence_key = b"ringguard-fence:" + self._prefix

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
        applied = 0
        p = self._prefix
        low = f"{int(records.epochs.min()) if len(records) else 0:020d}"
        try:
            for i in range(0, len(records), _CHUNK):
                keys = [self._fence_key] + [p + k for k in records.keys[i : i + _CHUNK]]
                args: list[Any] = [1 if fenced else 0, low]
                for v, e, s in zip(
                    records.values[i : i + _CHUNK],
                    records.epochs[i : i + _CHUNK].tolist(),
                    records.seqs[i : i + _CHUNK].tolist(),
                    strict=True,
                ):
                    args += [_ver(e, s), b"" if v is None else v, 1 if v is None else 0]
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

    def _keys(self) -> list[bytes]:
        try:
            found = {
                bytes(k)[len(self._prefix) :]
                for k in self._client.scan_iter(match=self._prefix + b"*", count=10_000)
            }
        except self._errors as exc:
            raise self._fail("scan", exc) from exc
        return sorted(found)

    def scan(self, batch_size: int = 10_000) -> Iterator[Records]:
        keys = self._keys()
        for i in range(0, len(keys), batch_size):
            yield self.read(keys[i : i + batch_size])

    def count(self) -> int:
        return len(self._keys())

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
