"""Verified, incremental backups of node backends, in k copies, optionally encrypted.

>>> from ringguard.backup import BackupRepository  # doctest: +SKIP
>>> repo = BackupRepository("/backups/shop")  # doctest: +SKIP
>>> sid = repo.backup(node_backend)  # doctest: +SKIP
>>> repo.verify().ok  # doctest: +SKIP
True
>>> repo.restore(sid, new_backend)  # doctest: +SKIP
"""

from .errors import BackupAuthError, BackupCorrupted, BackupError, BackupFormatError, BackupLocked
from .manifest import Manifest, RangeEntry
from .repository import (
    BackupReport,
    BackupRepository,
    Problem,
    RepairReport,
    RestoreReport,
    Stats,
    VerifyReport,
)

__all__ = [
    "BackupAuthError",
    "BackupCorrupted",
    "BackupError",
    "BackupFormatError",
    "BackupLocked",
    "BackupReport",
    "BackupRepository",
    "Manifest",
    "Problem",
    "RangeEntry",
    "RepairReport",
    "RestoreReport",
    "Stats",
    "VerifyReport",
]
