"""Placement algorithms: which node(s) own each key."""

from .analysis import LoadReport, Movement, load, movement
from .base import Placement, from_json
from .jump import JumpHash, jump_hash
from .maglev import Maglev
from .plan import MigrationPlan, Ownership, Transfer, ownership, plan
from .redis_slots import REDIS_SLOTS, RedisSlots, redis_slot
from .rendezvous import Rendezvous
from .ring import KetamaRing, Ring

__all__ = [
    "REDIS_SLOTS",
    "JumpHash",
    "KetamaRing",
    "LoadReport",
    "Maglev",
    "MigrationPlan",
    "Movement",
    "Ownership",
    "Placement",
    "RedisSlots",
    "Rendezvous",
    "Ring",
    "Transfer",
    "from_json",
    "jump_hash",
    "load",
    "movement",
    "ownership",
    "plan",
    "redis_slot",
]
