"""Failover: health-aware routing over a placement (``Cluster``).

The replicated store, failure detectors and hint log build on this module.
"""

from .cluster import Cluster, Event, HealthView, NodeState, Route, UnknownNodeError

__all__ = ["Cluster", "Event", "HealthView", "NodeState", "Route", "UnknownNodeError"]
