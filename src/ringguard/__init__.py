"""ringguard: consistent-hash placement with a compiled batch core.

>>> from ringguard import Ring
>>> ring = Ring(["db1", "db2", "db3"])
>>> ring.node_for("order:42") in ring.nodes
True

``ringguard.BACKEND`` is ``"c"`` when the compiled core is in use and ``"python"`` for the
pure-Python fallback (``RINGGUARD_PUREPYTHON=1`` forces it).
"""

from typing import TYPE_CHECKING, Any

from ._backend import BACKEND
from .errors import InvalidPlacementError, RingGuardError
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

if TYPE_CHECKING:  # the lazily imported names, for type checkers and IDEs
    from . import availability, reference
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
    from .backends.redis import RedisBackend
    from .backup import (
        BackupAuthError,
        BackupCorrupted,
        BackupError,
        BackupFormatError,
        BackupLocked,
        BackupRepository,
    )
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
    from .frame import assign_frame

# Everything outside placement is imported on first use (PEP 562), so `import ringguard`
# costs little more than importing NumPy: failover, backup, availability and the reference
# core pull in sqlite3, hashlib, threading and friends that a pipeline asking only for a
# placement never needs.
_LAZY: dict[str, str] = {
    "Backend": "backends",
    "BackendError": "backends",
    "BackupAuthError": "backup",
    "BackupCorrupted": "backup",
    "BackupError": "backup",
    "BackupFormatError": "backup",
    "BackupLocked": "backup",
    "BackupRepository": "backup",
    "MemoryBackend": "backends",
    "ReplicaSets": "availability",
    "SQLiteBackend": "backends",
    "SimulationResult": "availability",
    "availability_k_of_n": "availability",
    "backup_storage": "availability",
    "downtime_hours_per_month": "availability",
    "downtime_hours_per_year": "availability",
    "loss_probability": "availability",
    "markov_loss_probability": "availability",
    "mttdl": "availability",
    "nines": "availability",
    "pair_availability": "availability",
    "parallel_availability": "availability",
    "parse_duration": "availability",
    "replica_sets": "availability",
    "series_availability": "availability",
    "simulate": "availability",
    "steady_state_availability": "availability",
    "usable_capacity": "availability",
    "Cluster": "failover",
    "HintLog": "failover",
    "Monitor": "failover",
    "NodeState": "failover",
    "NoHealthyReplica": "failover",
    "PhiAccrualDetector": "failover",
    "QuorumError": "failover",
    "ReplicatedStore": "failover",
    "ThresholdDetector": "failover",
    "RedisBackend": "backends.redis",
    "assign_frame": "frame",
    "availability": "",
    "reference": "",
}

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
    target = _LAZY.get(name)
    if target is not None:
        import importlib

        obj: Any
        if target == "":  # a submodule itself: ringguard.availability, ringguard.reference
            obj = importlib.import_module(f".{name}", __name__)
        else:
            obj = getattr(importlib.import_module(f".{target}", __name__), name)
        globals()[name] = obj
        return obj
    raise AttributeError(f"module 'ringguard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
    "assign_frame",
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
