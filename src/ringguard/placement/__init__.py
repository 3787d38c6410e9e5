"""Placement algorithms: which node(s) own each key."""

from .analysis import LoadReport, Movement, load, movement
from .base import Placement, from_json
from .jump import JumpHash, jump_hash
from .maglev import Maglev
from .rendezvous import Rendezvous
from .ring import KetamaRing, Ring

__all__ = ["JumpHash", "KetamaRing", "LoadReport", "Maglev", "Movement", "Placement",
           "Rendezvous", "Ring", "from_json", "jump_hash", "load", "movement"]
