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

from . import availability, reference
from ._backend import BACKEND
from .availability import (
    ReplicaSets,
    SimulationResult,
    availability_k_of_n,
    backup_storage,
    downtime_hours_per_month,
    downtime_hours_per_year,
    loss_probability,
    markov_loss_probability,
    mttdl,
    nines,
    pair_availability,
    parallel_availability,
    parse_duration,
    replica_sets,
    series_availability,
    simulate,
    steady_state_availability,
    usable_capacity,
)
from .errors import InvalidPlacementError, RingGuardError
from .placement import (
    KetamaRing,
    LoadReport,
    MigrationPlan,
    Movement,
    Ownership,
    Placement,
    Ring,
    Transfer,
    from_json,
    load,
    movement,
    ownership,
    plan,
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
    "ReplicaSets",
    "Ring",
    "RingGuardError",
    "SimulationResult",
    "Transfer",
    "__version__",
    "availability",
    "availability_k_of_n",
    "backup_storage",
    "downtime_hours_per_month",
    "downtime_hours_per_year",
    "from_json",
    "load",
    "loss_probability",
    "markov_loss_probability",
    "movement",
    "mttdl",
    "nines",
    "ownership",
    "pair_availability",
    "parallel_availability",
    "parse_duration",
    "plan",
    "reference",
    "replica_sets",
    "series_availability",
    "simulate",
    "steady_state_availability",
    "usable_capacity",
]
