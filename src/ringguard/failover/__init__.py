"""Failover: health-aware routing over a placement (``Cluster``).

The replicated store, failure detectors and hint log build on this module.
"""

from .cluster import Cluster, Event, HealthView, NodeState, Route, UnknownNodeError
from .hints import HintCorrupted, HintLog
from .store import NoHealthyReplica, QuorumError, RecoveryReport, ReplicatedStore

__all__ = [
    "Cluster",
    "Event",
    "HealthView",
    "HintCorrupted",
    "HintLog",
    "NoHealthyReplica",
    "NodeState",
    "QuorumError",
    "RecoveryReport",
    "ReplicatedStore",
    "Route",
    "UnknownNodeError",
]
