"""Failover ("dual-machine redundancy"): health-aware routing, a replicated store with
hinted handoff and recovery, failure detectors and a monitor."""

from .cluster import Cluster, Event, HealthView, NodeState, Route, StateChanged, UnknownNodeError
from .detector import PhiAccrualDetector, ThresholdDetector
from .hints import HintCorrupted, HintLog
from .monitor import Monitor
from .store import NoHealthyReplica, QuorumError, RecoveryReport, ReplicatedStore

__all__ = [
    "Cluster",
    "Event",
    "HealthView",
    "HintCorrupted",
    "HintLog",
    "Monitor",
    "NoHealthyReplica",
    "NodeState",
    "PhiAccrualDetector",
    "QuorumError",
    "RecoveryReport",
    "ReplicatedStore",
    "Route",
    "StateChanged",
    "ThresholdDetector",
    "UnknownNodeError",
]
