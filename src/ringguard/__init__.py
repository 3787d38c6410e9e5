"""ringguard: consistent-hash placement with a compiled batch core.

>>> from ringguard import Ring
>>> ring = Ring(["db1", "db2", "db3"])
>>> ring.node_for("order:42") in ring.nodes
True

``ringguard.BACKEND`` is ``"c"`` when the compiled core is in use and ``"python"`` for the
pure-Python fallback (``RINGGUARD_PUREPYTHON=1`` forces it).
"""

from typing import Any

from . import availability, reference
from ._backend import BACKEND
from .availability import (
    ReplicaSets,
    SimulationResult,
    availability_k_of_n,
    backup_storage,
    downtime_hours_per_month,
    downtime_hours_per_year,
    loss_probability,
    markov_loss_probability,
    mttdl,
    nines,
    pair_availability,
    parallel_availability,
    parse_duration,
    replica_sets,
    series_availability,
    simulate,
    steady_state_availability,
    usable_capacity,
)
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
    JumpHash,
    KetamaRing,
    LoadReport,
    Maglev,
    MigrationPlan,
    Movement,
    Ownership,
    Placement,
    RedisSlots,
    Rendezvous,
    Ring,
    Transfer,
    from_json,
    jump_hash,
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
    "JumpHash",
    "KetamaRing",
    "LoadReport",
    "MigrationPlan",
    "Maglev",
    "Movement",
    "Ownership",
    "Placement",
    "REDIS_SLOTS",
    "RedisSlots",
    "Rendezvous",
    "ReplicaSets",
    "Ring",
    "RingGuardError",
    "SimulationResult",
    "Transfer",
    "__version__",
    "availability",
    "availability_k_of_n",
    "backup_storage",
    "downtime_hours_per_month",
    "downtime_hours_per_year",
    "from_json",
    "jump_hash",
    "load",
    "loss_probability",
    "markov_loss_probability",
    "movement",
    "mttdl",
    "nines",
    "ownership",
    "pair_availability",
    "parallel_availability",
    "parse_duration",
    "plan",
    "redis_slot",
    "reference",
    "replica_sets",
    "series_availability",
    "simulate",
    "steady_state_availability",
    "usable_capacity",
]
