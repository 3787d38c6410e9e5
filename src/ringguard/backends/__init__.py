"""Node backends: one small interface (:class:`Backend`) over SQLite, memory and Redis."""

from .base import Backend, BackendError, Records
from .memory import MemoryBackend
from .sqlite import SQLiteBackend

__all__ = ["Backend", "BackendError", "MemoryBackend", "Records", "SQLiteBackend"]
