"""Placement algorithms: which node(s) own each key."""

from .analysis import LoadReport, Movement, load, movement
from .base import Placement, from_json
from .plan import MigrationPlan, Ownership, Transfer, ownership, plan
from .ring import KetamaRing, Ring

__all__ = ["KetamaRing", "LoadReport", "MigrationPlan", "Movement", "Ownership", "Placement",
           "Ring", "Transfer", "from_json", "load", "movement", "ownership", "plan"]
