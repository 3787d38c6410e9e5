"""Node backends: one small interface (:class:`Backend`) over SQLite, memory and Redis."""

from typing import Any

from .base import Backend, BackendError, Records, StaleEpochError
from .memory import MemoryBackend
from .sqlite import SQLiteBackend

__all__ = [
    "Backend",
    "BackendError",
    "MemoryBackend",
    "Records",
    "RedisBackend",
    "StaleEpochError",
    "SQLiteBackend",
]


def __getattr__(name: str) -> Any:
    # RedisBackend imports redis-py lazily: `import ringguard` never imports redis.
    if name == "RedisBackend":
        from .redis import RedisBackend

        return RedisBackend
    raise AttributeError(name)
