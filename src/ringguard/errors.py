"""One exception hierarchy for ringguard's domain errors.

Wrong argument types raise :class:`TypeError` and wrong values :class:`ValueError`, as
Python does; the classes here are for conditions of the domain (a placement document that
fails validation, a quorum not reached, a corrupt backup). Each also derives from the
built-in it refines, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["RingGuardError", "InvalidPlacementError"]


class RingGuardError(Exception):
    """Base class of every ringguard-specific error."""


class InvalidPlacementError(RingGuardError, ValueError):
    """A serialized placement (``from_json``) is malformed, of an unknown version or
    algorithm, or describes an invalid configuration."""
