"""Selects the compiled core or its pure-Python twin, once, at import.

``RINGGUARD_PUREPYTHON=1`` forces the pure-Python core. If the compiled extension cannot
be imported (a source install without a compiler), the pure-Python core is used and one
``RuntimeWarning`` says so: placement is identical, only slower.
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType

core: ModuleType
BACKEND: str

if os.environ.get("RINGGUARD_PUREPYTHON", "") not in ("", "0"):
    from . import _pycore as core

    BACKEND = "python"
else:
    try:
        from . import _core as core

        BACKEND = "c"
    except ImportError as exc:  # pragma: no cover - depends on the install
        from . import _pycore as core

        BACKEND = "python"
        warnings.warn(
            f"ringguard: the compiled core is not available ({exc}); using the pure-Python "
            "core, which gives the same placements much more slowly. Install a wheel or a "
            "C compiler and reinstall to get the fast path.",
            RuntimeWarning,
            stacklevel=2,
        )

__all__ = ["core", "BACKEND"]
