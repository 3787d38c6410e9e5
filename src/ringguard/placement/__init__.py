"""Placement algorithms: which node(s) own each key."""

from .analysis import LoadReport, Movement, load, movement
from .base import Placement, from_json
from .plan import MigrationPlan, Ownership, Transfer, ownership, plan
from .redis_slots import REDIS_SLOTS, RedisSlots, redis_slot
from .ring import KetamaRing, Ring

__all__ = ["REDIS_SLOTS", "KetamaRing", "LoadReport", "MigrationPlan", "Movement", "Ownership",
           "Placement", "RedisSlots", "Ring", "Transfer", "from_json", "load", "movement",
           "ownership", "plan", "redis_slot"]
