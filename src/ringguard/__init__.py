"""ringguard: consistent-hash placement with a compiled batch core.

>>> from ringguard import Ring
>>> ring = Ring(["db1", "db2", "db3"])
>>> ring.node_for("order:42") in ring.nodes
True

``ringguard.BACKEND`` is ``"c"`` when the compiled core is in use and ``"python"`` for the
pure-Python fallback (``RINGGUARD_PUREPYTHON=1`` forces it).
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import reference
from ._backend import BACKEND
from .errors import InvalidPlacementError, RingGuardError
from .placement import (
    REDIS_SLOTS,
    KetamaRing,
    LoadReport,
    MigrationPlan,
    Movement,
    Ownership,
    Placement,
    RedisSlots,
    Ring,
    Transfer,
    from_json,
    load,
    movement,
    ownership,
    plan,
    redis_slot,
)

try:
    __version__ = _version("ringguard")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "BACKEND",
    "InvalidPlacementError",
    "KetamaRing",
    "LoadReport",
    "MigrationPlan",
    "Movement",
    "Ownership",
    "Placement",
    "REDIS_SLOTS",
    "RedisSlots",
    "Ring",
    "RingGuardError",
    "Transfer",
    "__version__",
    "from_json",
    "load",
    "movement",
    "ownership",
    "plan",
    "redis_slot",
    "reference",
]
