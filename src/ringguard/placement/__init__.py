"""Placement algorithms: which node(s) own each key."""

from .analysis import LoadReport, Movement, load, movement
from .base import Placement, from_json
from .redis_slots import REDIS_SLOTS, RedisSlots, redis_slot
from .ring import KetamaRing, Ring

__all__ = ["REDIS_SLOTS", "KetamaRing", "LoadReport", "Movement", "Placement", "RedisSlots",
           "Ring", "from_json", "load", "movement", "redis_slot"]
