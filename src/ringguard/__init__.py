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
    JumpHash,
    KetamaRing,
    LoadReport,
    Maglev,
    Movement,
    Placement,
    Rendezvous,
    Ring,
    from_json,
    jump_hash,
    load,
    movement,
)

try:
    __version__ = _version("ringguard")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "BACKEND",
    "InvalidPlacementError",
    "JumpHash",
    "KetamaRing",
    "LoadReport",
    "Maglev",
    "Movement",
    "Placement",
    "Rendezvous",
    "Ring",
    "RingGuardError",
    "__version__",
    "from_json",
    "jump_hash",
    "load",
    "movement",
    "reference",
]
