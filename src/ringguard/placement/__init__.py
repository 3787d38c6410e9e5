"""Placement algorithms: which node(s) own each key."""

from .analysis import LoadReport, Movement, load, movement
from .base import Placement, from_json
from .ring import KetamaRing, Ring

__all__ = ["KetamaRing", "LoadReport", "Movement", "Placement", "Ring", "from_json", "load",
           "movement"]
