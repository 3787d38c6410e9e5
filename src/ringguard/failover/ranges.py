"""Who holds each key-hash range: the map anti-entropy needs to compare range digests.

Backends keep digests per range of the top ``DIGEST_BITS`` bits of the key hash (XXH64, seed
0). Two replicas' digests of a range are comparable only where both should hold exactly the
same records, i.e. where every key of the range has both in its preference list. For a ring
whose lookup hash is that same key hash (:class:`~ringguard.placement.Ring`, not ketama),
this is exact and cheap: a range that contains no ring point is *pure* — every hash in it
maps to the same first point, hence the same preference list — and its preference list is
the ring's walk from that point. Ranges that contain a point are *mixed*.

For other placements (ketama, Maglev, rendezvous, jump, zoned rings) the map is unknown
and every range counts as mixed: anti-entropy then compares raw digests and scans the
ranges that differ, filtering keys through the placement (correct, but close to a full scan
when the node's neighbours hold other keys too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backends.base import DIGEST_BITS
from ..placement.base import Placement
from ..placement.ring import KetamaRing, Ring

__all__ = ["RangeOwners", "range_owners"]


@dataclass(frozen=True)
class RangeOwners:
    """Preference lists of the ``2**DIGEST_BITS`` key-hash ranges.

    Attributes
    ----------
    pure : numpy.ndarray
        bool per range: every key of the range has the same preference list.
    prefs : numpy.ndarray
        int32 ``(ranges, replication)``: that preference list (meaningless where not pure).
    """

    pure: np.ndarray
    prefs: np.ndarray

    def co_owned(self, a: int, b: int) -> np.ndarray:
        """Pure ranges whose every key has both node ``a`` and node ``b`` as replicas."""
        return self.pure & (self.prefs == a).any(axis=1) & (self.prefs == b).any(axis=1)


def _walk(owners: np.ndarray, n: int) -> np.ndarray:
    """For each point, the first ``n`` distinct owners walking clockwise from it."""
    npts = len(owners)
    out = np.empty((npts, n), dtype=np.int32)
    ext = np.concatenate([owners, owners]).tolist()
    for p in range(npts):
        seen: list[int] = []
        q = p
        while len(seen) < n:
            o = ext[q]
            if o not in seen:
                seen.append(o)
            q += 1
        out[p] = seen
    return out


def range_owners(placement: Placement, replication: int) -> RangeOwners | None:
    """The :class:`RangeOwners` of ``placement`` at ``replication``, or ``None`` where it
    cannot be derived from the placement's structure (see the module docstring).

    Examples
    --------
    >>> from ringguard import Ring
    >>> ro = range_owners(Ring(["a", "b", "c"]), 2)
    >>> ro.prefs.shape == (2**DIGEST_BITS, 2), bool(ro.pure.mean() > 0.9)
    (True, True)
    """
    if not isinstance(placement, Ring) or isinstance(placement, KetamaRing):
        return None
    if placement.zones is not None:
        return None
    values, owners = placement.points()
    values = np.asarray(values, dtype=np.uint64)
    owners = np.asarray(owners, dtype=np.int64)
    if not len(values):
        return None
    shift = np.uint64(64 - DIGEST_BITS)
    r = np.arange(2**DIGEST_BITS, dtype=np.uint64)
    lo = r << shift
    last = lo + ((np.uint64(1) << shift) - np.uint64(1))
    # First point >= h (wrapping to point 0): constant over a range iff no point lies in
    # [lo, last) — searchsorted gives the same index for both ends.
    a = np.searchsorted(values, lo, side="left")
    b = np.searchsorted(values, last, side="left")
    pure = a == b
    point = a % len(values)
    if placement.pairs is not None:
        nodes = placement.nodes
        partner = np.array(
            [nodes.index(placement.partner(nm)) for nm in nodes], dtype=np.int32
        )
        first = owners[point].astype(np.int32)
        prefs = first[:, None] if replication == 1 else np.stack([first, partner[first]], axis=1)
        if replication > 2:
            return None
    else:
        prefs = _walk(owners, replication)[point]
    return RangeOwners(pure, np.ascontiguousarray(prefs, dtype=np.int32))
