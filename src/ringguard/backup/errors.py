"""Errors of the backup layer (all subclasses of :class:`ringguard.RingGuardError`)."""

from __future__ import annotations

from typing import Any

from ..errors import RingGuardError

__all__ = [
    "BackupAuthError",
    "BackupCorrupted",
    "BackupError",
    "BackupFormatError",
    "BackupLocked",
]


class BackupError(RingGuardError):
    """Base class of backup errors."""


class BackupCorrupted(BackupError):
    """A snapshot, manifest or chunk failed a check; nothing unverified was written.

    Attributes
    ----------
    problems : list of dict
        One entry per damaged object: ``snapshot``, ``node``, ``range``, ``chunk``,
        ``copy`` (where known) and ``detail``.
    """

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class BackupFormatError(BackupError, ValueError):
    """A repository or manifest of an unknown format or version, or malformed."""


class BackupAuthError(BackupCorrupted):
    """Decryption failed: a wrong password, or an encrypted object was tampered with."""


class BackupLocked(BackupError):
    """The repository lock could not be taken in time (a prune or backup is running)."""
