"""ringguard: consistent-hash placement with a compiled batch core.

>>> from ringguard import Ring
>>> ring = Ring(["db1", "db2", "db3"])
>>> ring.node_for("order:42") in ring.nodes
True

``ringguard.BACKEND`` is ``"c"`` when the compiled core is in use and ``"python"`` for the
pure-Python fallback (``RINGGUARD_PUREPYTHON=1`` forces it).
"""

from typing import Any

from . import reference
from ._backend import BACKEND
from .backends import Backend, BackendError, MemoryBackend, SQLiteBackend
from .backup import (
    BackupAuthError,
    BackupCorrupted,
    BackupError,
    BackupFormatError,
    BackupLocked,
    BackupRepository,
)
from .errors import InvalidPlacementError, RingGuardError
from .failover import (
    Cluster,
    HintLog,
    Monitor,
    NodeState,
    NoHealthyReplica,
    PhiAccrualDetector,
    QuorumError,
    ReplicatedStore,
    ThresholdDetector,
)
from .placement import (
    REDIS_SLOTS,
    KetamaRing,
    LoadReport,
    MigrationPlan,
    Movement,
    Ownership,
    Placement,
    RedisSlots,
    Ring,
    Transfer,
    from_json,
    load,
    movement,
    ownership,
    plan,
    redis_slot,
)


def __getattr__(name: str) -> Any:
    # Looked up on first use: importlib.metadata alone costs tens of milliseconds to import.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("ringguard")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            value = "0+unknown"
        globals()["__version__"] = value
        return value
    # RedisBackend needs redis-py, imported only when asked for.
    if name == "RedisBackend":
        from .backends.redis import RedisBackend

        return RedisBackend
    raise AttributeError(f"module 'ringguard' has no attribute {name!r}")


__all__ = [
    "BACKEND",
    "Backend",
    "BackendError",
    "BackupAuthError",
    "BackupCorrupted",
    "BackupError",
    "BackupFormatError",
    "BackupLocked",
    "BackupRepository",
    "Cluster",
    "HintLog",
    "MemoryBackend",
    "Monitor",
    "NoHealthyReplica",
    "NodeState",
    "PhiAccrualDetector",
    "QuorumError",
    "RedisBackend",
    "ReplicatedStore",
    "SQLiteBackend",
    "ThresholdDetector",
    "InvalidPlacementError",
    "KetamaRing",
    "LoadReport",
    "MigrationPlan",
    "Movement",
    "Ownership",
    "Placement",
    "REDIS_SLOTS",
    "RedisSlots",
    "Ring",
    "RingGuardError",
    "Transfer",
    "__version__",
    "from_json",
    "load",
    "movement",
    "ownership",
    "plan",
    "redis_slot",
    "reference",
]
