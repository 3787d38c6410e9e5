"""Availability and durability of a placement: closed forms and a Monte Carlo simulator.

Closed forms
------------
Every formula here is a textbook model; each docstring states its assumptions. Durations
are hours (``float``) or strings with a unit (``"30d"``, ``"4h"``, ``"90s"``, ``"1y"``,
see :func:`parse_duration`). A year is 365 days (8760 h) and a month a twelfth of it.

Simulation
----------
:func:`simulate` draws node failure/repair timelines for many independent trials at once
(NumPy, vectorised over trials and nodes) and evaluates them against the replica sets of
the real placement: the preference list of every arc of a ring, weighted by the arc's
exact share of the hash space.

References
----------
- D. A. Patterson, G. Gibson, R. H. Katz, "A case for redundant arrays of inexpensive
  disks (RAID)", SIGMOD 1988 (mean time to data loss of mirrored/redundant groups).
- A. Cidon, S. Rumble, R. Stutsman, S. Katti, J. Ousterhout, M. Rosenblum, "Copysets:
  reducing the frequency of data loss in cloud storage", USENIX ATC 2013.
- M. L. Shooman, *Reliability of Computer Systems and Networks*, Wiley 2002 (series,
  parallel and k-of-n structures; Markov models of repairable systems).
"""

from __future__ import annotations

import itertools
import math
import numbers
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "HOURS_PER_MONTH",
    "HOURS_PER_YEAR",
    "ReplicaSets",
    "SimulationResult",
    "availability_k_of_n",
    "backup_storage",
    "downtime_hours_per_month",
    "downtime_hours_per_year",
    "loss_probability",
    "markov_loss_probability",
    "mttdl",
    "nines",
    "pair_availability",
    "parallel_availability",
    "parse_duration",
    "replica_sets",
    "series_availability",
    "simulate",
    "steady_state_availability",
    "usable_capacity",
]

HOURS_PER_YEAR = 8760.0  #: 365 days
HOURS_PER_MONTH = HOURS_PER_YEAR / 12  #: 730 hours

Duration = float | int | str

_UNITS = {
    "s": 1 / 3600, "sec": 1 / 3600, "m": 1 / 60, "min": 1 / 60, "h": 1.0, "hr": 1.0,
    "d": 24.0, "w": 168.0, "y": HOURS_PER_YEAR, "yr": HOURS_PER_YEAR,
}
_DURATION_RE = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")


# ---- validation helpers ------------------------------------------------------------------


def parse_duration(value: Duration, name: str = "duration") -> float:
    """A duration in hours, from hours or a string with a unit.

    Units: ``s``/``sec``, ``m``/``min`` (minutes), ``h``/``hr``, ``d``, ``w``, ``y``/``yr``
    (365 days). A bare number, or a string without a unit, is hours.

    Parameters
    ----------
    value
        Non-negative finite hours (``int``/``float``) or a string such as ``"30d"``.
    name
        Argument name used in error messages.

    Raises
    ------
    TypeError
        ``value`` is not a number or a string (``bool`` is rejected).
    ValueError
        Negative, non-finite, malformed, or with an unknown unit.

    Examples
    --------
    >>> parse_duration("30d"), parse_duration("90s"), parse_duration(4)
    (720.0, 0.025, 4.0)
    """
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m is None:
            raise ValueError(f"{name}: cannot parse {value!r} as a duration such as '30d'")
        unit = m.group(2).lower() or "h"
        if unit not in _UNITS:
            raise ValueError(
                f"{name}: unknown unit {m.group(2)!r} in {value!r}; "
                f"use one of {', '.join(sorted(_UNITS))}"
            )
        hours = float(m.group(1)) * _UNITS[unit]
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected hours (a number) or a string like '30d', "
                        f"got {type(value).__name__}")
    else:
        hours = float(value)
    if not math.isfinite(hours) or hours < 0:
        raise ValueError(f"{name}: must be a finite non-negative duration, got {value!r}")
    return hours


def _positive_duration(value: Duration, name: str) -> float:
    hours = parse_duration(value, name)
    if hours <= 0:
        raise ValueError(f"{name}: must be > 0, got {value!r}")
    return hours


def _probability(a: Any, name: str) -> float:
    if isinstance(a, bool) or not isinstance(a, numbers.Real):
        raise TypeError(f"{name}: expected a number in [0, 1], got {type(a).__name__}")
    x = float(a)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"{name}: must be in [0, 1], got {a!r}")
    return x


def _int(v: Any, name: str, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(v).__name__}")
    if v < low:
        raise ValueError(f"{name}: must be >= {low}, got {v}")
    return int(v)


def _real(v: Any, name: str, low: float, *, strict: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(v).__name__}")
    x = float(v)
    if not math.isfinite(x) or x < low or (strict and x == low):
        raise ValueError(f"{name}: must be {'>' if strict else '>='} {low}, got {v!r}")
    return x


# ---- closed forms ------------------------------------------------------------------------


def steady_state_availability(mtbf_hours: Duration, mttr_hours: Duration) -> float:
    """Long-run fraction of time one repairable component is up: ``MTBF / (MTBF + MTTR)``.

    Assumptions: an alternating renewal process (up for a mean ``mtbf_hours``, then down for
    a mean ``mttr_hours``, repaired as good as new); the result holds for any distributions
    with those means. Here MTBF is the mean *up* time (often written MTTF).

    Examples
    --------
    >>> round(steady_state_availability("91d", "24h"), 6)
    0.98913
    """
    up = _positive_duration(mtbf_hours, "mtbf_hours")
    down = parse_duration(mttr_hours, "mttr_hours")
    return up / (up + down)


def series_availability(availabilities: Iterable[float]) -> float:
    """Availability of components that are all needed (series): the product.

    Assumes independent failures.

    Examples
    --------
    >>> round(series_availability([0.99, 0.999]), 5)
    0.98901
    """
    out = 1.0
    for i, a in enumerate(availabilities):
        out *= _probability(a, f"availabilities[{i}]")
    return out


def parallel_availability(availabilities: Iterable[float]) -> float:
    """Availability of redundant components of which any one suffices (parallel).

    ``1 - prod(1 - a_i)``; assumes independent failures and perfect, instant failover
    (see :func:`pair_availability` for the cost of failing over).

    Examples
    --------
    >>> round(parallel_availability([0.99, 0.99]), 6)
    0.9999
    """
    down = 1.0
    for i, a in enumerate(availabilities):
        down *= 1.0 - _probability(a, f"availabilities[{i}]")
    return 1.0 - down


def availability_k_of_n(k: int, n: int, availability: float) -> float:
    """Probability that at least ``k`` of ``n`` identical independent components are up.

    ``sum_{i=k}^{n} C(n, i) a^i (1 - a)^(n - i)`` (a binomial tail).

    Examples
    --------
    >>> round(availability_k_of_n(2, 3, 0.9), 3)  # a 2-of-3 quorum
    0.972
    """
    n = _int(n, "n", 1)
    k = _int(k, "k", 0)
    if k > n:
        raise ValueError(f"k: must be <= n ({n}), got {k}")
    a = _probability(availability, "availability")
    return float(sum(math.comb(n, i) * a**i * (1 - a) ** (n - i) for i in range(k, n + 1)))


def pair_availability(
    mtbf_hours: Duration,
    mttr_hours: Duration,
    detect_hours: Duration = 0.0,
    promote_hours: Duration = 0.0,
) -> float:
    """Availability of a primary/standby pair with imperfect failover.

    ``1 - U**2 - (detect + promote) / (MTBF + MTTR)`` with ``U = MTTR / (MTBF + MTTR)``:
    the pair is down while both members are down, and after each failure of the acting
    primary for the time it takes to detect the failure and promote the standby.

    Assumptions: two identical members with independent failures; failures of the acting
    primary occur at the rate ``1 / (MTBF + MTTR)`` of one member; ``detect + promote`` is
    much shorter than MTTR; the overlap of a failover window with a double failure is
    neglected (second order). With zero detection this is :func:`parallel_availability`
    of two members.

    Examples
    --------
    >>> round(pair_availability("91d", "24h", detect_hours="30s"), 7)
    0.9998781
    """
    up = _positive_duration(mtbf_hours, "mtbf_hours")
    down = parse_duration(mttr_hours, "mttr_hours")
    switch = parse_duration(detect_hours, "detect_hours") + parse_duration(
        promote_hours, "promote_hours")
    u = down / (up + down)
    return max(0.0, 1.0 - u * u - switch / (up + down))


def nines(availability: float) -> float:
    """Number of nines: ``-log10(1 - availability)`` (``inf`` for 1.0).

    Examples
    --------
    >>> round(nines(0.9995), 2)
    3.3
    """
    a = _probability(availability, "availability")
    return math.inf if a == 1.0 else -math.log10(1.0 - a)


def downtime_hours_per_year(availability: float) -> float:
    """Expected downtime per 365-day year, in hours: ``(1 - A) * 8760``.

    Examples
    --------
    >>> round(downtime_hours_per_year(0.999), 2)
    8.76
    """
    return (1.0 - _probability(availability, "availability")) * HOURS_PER_YEAR


def downtime_hours_per_month(availability: float) -> float:
    """Expected downtime per month (a twelfth of a 365-day year), in hours.

    Examples
    --------
    >>> round(downtime_hours_per_month(0.999) * 60, 1)  # minutes
    43.8
    """
    return (1.0 - _probability(availability, "availability")) * HOURS_PER_MONTH


def _group_mttdl_exact(lam: float, mu: float, r: int) -> float:
    """Mean time to absorption of the birth-death chain 0..r (failed members), from 0."""
    q = _generator(lam, mu, r)
    # -Q T = 1  (expected time to absorption from each transient state)
    t = np.linalg.solve(-q, np.ones(r))
    return float(t[0])


def _generator(lam: float, mu: float, r: int, n: int | None = None) -> np.ndarray:
    """Sub-generator over the transient states 0..r-1 failed nodes among ``n`` (default
    ``r``: one replica set); state ``r`` (absorbing) is data loss."""
    n = r if n is None else n
    q = np.zeros((r, r))
    for k in range(r):
        up_rate = (n - k) * lam
        down_rate = k * mu
        q[k, k] = -(up_rate + down_rate)
        if k + 1 < r:
            q[k, k + 1] = up_rate
        if k > 0:
            q[k, k - 1] = down_rate
    return q


def mttdl(
    mttf_hours: Duration,
    mttr_hours: Duration,
    replicas: int,
    *,
    copysets: int = 1,
    exact: bool = False,
) -> float:
    """Mean time to data loss, in hours, of ``copysets`` replica sets of ``replicas`` nodes.

    Default (Patterson, Gibson & Katz 1988, generalised): one set of ``r`` replicas loses
    data when all ``r`` are down at once, and ``MTTDL = MTTF**r / (r * MTTR**(r - 1))``;
    for ``r = 2`` this is the mirrored-pair ``MTTF**2 / (2 MTTR)``. A cluster whose data
    is spread over ``G`` distinct replica sets (copysets, Cidon et al. 2013) loses data
    when *any* set is fully down: ``MTTDL / G``.

    Assumptions: independent exponential failures (rate ``1/MTTF`` per node) and repairs
    (rate ``1/MTTR`` per failed node, repaired in parallel); ``MTTR << MTTF``; the sets
    fail independently (rare-event approximation for ``G > 1``).

    ``exact=True`` solves the birth-death Markov chain of one set exactly instead (it
    keeps the terms in ``MTTR/MTTF`` that the closed form drops: for ``r = 2``,
    ``(3 lambda + mu) / (2 lambda**2)``).

    Examples
    --------
    >>> round(mttdl("91d", "24h", 2) / 8760, 2)  # years, one mirrored pair
    11.34
    >>> round(mttdl("91d", "24h", 2, exact=True) / 8760, 2)
    11.72
    """
    mttf = _positive_duration(mttf_hours, "mttf_hours")
    mttr = _positive_duration(mttr_hours, "mttr_hours")
    r = _int(replicas, "replicas", 1)
    g = _int(copysets, "copysets", 1)
    if exact:
        one = _group_mttdl_exact(1.0 / mttf, 1.0 / mttr, r)
    else:
        one = mttf**r / (r * mttr ** (r - 1))
    return one / g


def loss_probability(horizon_hours: Duration, mttdl_hours: Duration) -> float:
    """Probability of at least one data loss within a horizon: ``1 - exp(-T / MTTDL)``.

    Assumes losses arrive as a Poisson process of rate ``1 / MTTDL`` (accurate when the
    repair time is much shorter than both the horizon and the MTTDL).

    Examples
    --------
    >>> round(loss_probability("1y", mttdl("91d", "24h", 2)), 4)  # one mirrored pair
    0.0844
    >>> round(loss_probability("1y", mttdl("91d", "24h", 3)), 4)  # one set of 3
    0.0015
    """
    t = parse_duration(horizon_hours, "horizon_hours")
    m = _positive_duration(mttdl_hours, "mttdl_hours")
    return -math.expm1(-t / m)


def _expm(a: np.ndarray) -> np.ndarray:
    """Matrix exponential by scaling and squaring with a Taylor series (small matrices)."""
    norm = float(np.abs(a).sum(axis=1).max())
    s = max(0, math.ceil(math.log2(norm)) + 1) if norm > 0 else 0
    x = a / 2.0**s
    out = np.eye(len(a))
    term = np.eye(len(a))
    for i in range(1, 20):
        term = term @ x / i
        out = out + term
    for _ in range(s):
        out = out @ out
    return out


def markov_loss_probability(
    horizon_hours: Duration,
    mttf_hours: Duration,
    mttr_hours: Duration,
    replicas: int,
    *,
    copysets: int = 1,
    nodes: int | None = None,
) -> float:
    """Exact probability that a replica set is fully down at some time within the horizon.

    Transient solution ``1 - e0 . expm(Q T) . 1`` of the birth-death chain of
    :func:`mttdl` (``exact=True``), starting with every member up; for ``G`` independent
    sets ``1 - (1 - p)**G``. This is what :func:`simulate` estimates for a placement whose
    data lives on one set of ``replicas`` nodes (a ring of exactly ``replicas`` nodes).

    ``nodes=n`` instead models ``n`` nodes of which *every* ``replicas``-subset is a replica
    set (ring successors with many vnodes: ``C(n, r)`` copysets, Cidon et al. 2013): the
    chain counts the nodes down (failure rate ``(n - k) / MTTF``, repair rate
    ``k / MTTR``) and data is lost when ``replicas`` are down together. This is exact for
    that layout, whereas ``copysets=C(n, r)`` treats overlapping sets as independent and
    overestimates the loss probability once it is not small.

    Examples
    --------
    >>> round(markov_loss_probability("1y", "91d", "24h", 2), 4)
    0.0816
    >>> round(markov_loss_probability("1y", "91d", "24h", 3, nodes=10), 3)
    0.138
    >>> round(markov_loss_probability("1y", "91d", "24h", 3, copysets=120), 3)
    0.154
    """
    t = parse_duration(horizon_hours, "horizon_hours")
    mttf = _positive_duration(mttf_hours, "mttf_hours")
    mttr = _positive_duration(mttr_hours, "mttr_hours")
    r = _int(replicas, "replicas", 1)
    g = _int(copysets, "copysets", 1)
    n = None
    if nodes is not None:
        n = _int(nodes, "nodes", r)
        if g != 1:
            raise ValueError("copysets: give either copysets or nodes, not both")
    q = _generator(1.0 / mttf, 1.0 / mttr, r, n)
    survive = float(_expm(q * t)[0].sum())
    p = min(1.0, max(0.0, 1.0 - survive))
    return 1.0 - (1.0 - p) ** g


def usable_capacity(
    raw_capacity: float, nodes: int, failures: int = 0, replication: int = 1
) -> float:
    """Data that ``nodes`` equal nodes can hold and still keep ``replication`` copies of
    everything after ``failures`` of them are lost: ``N * (n - f) / (n * r)``.

    ``raw_capacity`` (N) is the total of all nodes, in any unit (the result is in the same
    unit). A mirrored pair holds ``N / 2``: either ``nodes=2, failures=1`` (the survivor
    keeps one full copy) or ``nodes=2, replication=2``.

    Examples
    --------
    >>> usable_capacity(20.0, nodes=2, failures=1)  # a pair of 10 TB nodes
    10.0
    >>> usable_capacity(100.0, nodes=10, failures=1, replication=2)
    45.0
    """
    raw = _real(raw_capacity, "raw_capacity", 0.0)
    n = _int(nodes, "nodes", 1)
    f = _int(failures, "failures", 0)
    r = _int(replication, "replication", 1)
    if f >= n:
        raise ValueError(f"failures: must be < nodes ({n}), got {f}")
    if r > n - f:
        raise ValueError(
            f"replication: {r} copies need at least {r} surviving nodes, "
            f"but only {n - f} remain after {f} failures")
    return raw * (n - f) / (n * r)


def backup_storage(
    data: float,
    copies: int = 1,
    *,
    compression_ratio: float = 1.0,
    dedup_ratio: float = 1.0,
    retained: int = 1,
    change_fraction: float = 1.0,
) -> float:
    """Storage needed for backups: ``k * D / (c * d) * (1 + (R - 1) * delta)``.

    ``data`` (D) in any unit; ``copies`` (k) independent backup copies;
    ``compression_ratio`` (c) and ``dedup_ratio`` (d) as "x:1" factors (2.0 halves the
    size); ``retained`` (R) snapshots kept; each snapshot after the first stores the
    fraction ``change_fraction`` (delta) of the data (1.0: full backups every time; e.g.
    0.05 for incrementals with 5 % change between snapshots). With the defaults this is
    the design document's ``B = k x N``.

    Examples
    --------
    >>> backup_storage(10.0, copies=3)
    30.0
    >>> backup_storage(10.0, 2, compression_ratio=2.0, retained=8, change_fraction=0.1)
    17.0
    """
    d = _real(data, "data", 0.0)
    k = _int(copies, "copies", 1)
    c = _real(compression_ratio, "compression_ratio", 0.0, strict=True)
    dd = _real(dedup_ratio, "dedup_ratio", 0.0, strict=True)
    r = _int(retained, "retained", 1)
    delta = _probability(change_fraction, "change_fraction")
    return k * d / (c * dd) * (1.0 + (r - 1) * delta)


# ---- replica sets of a placement ---------------------------------------------------------


@dataclass(frozen=True)
class ReplicaSets:
    """The distinct replica sets of a placement and the share of hash space each holds.

    Attributes
    ----------
    nodes : tuple of str
        Node names (indices below refer to them).
    members : numpy.ndarray
        int64 ``(G, r)``: node indices of each set, sorted ascending.
    share : numpy.ndarray
        float64 ``(G,)``: fraction of the hash space whose replicas are exactly that set
        (sums to 1).
    primary_share : numpy.ndarray
        float64 ``(len(nodes),)``: fraction of the hash space each node is primary for.

    Examples
    --------
    >>> from ringguard import Ring
    >>> rs = replica_sets(Ring(["a", "b", "c"]), 2)
    >>> len(rs), round(float(rs.share.sum()), 12)
    (3, 1.0)
    """

    nodes: tuple[str, ...]
    members: np.ndarray
    share: np.ndarray
    primary_share: np.ndarray

    def __len__(self) -> int:
        return len(self.members)

    def loss_given_failures(self, failures: int) -> float:
        """Probability that ``failures`` nodes, failed at once and chosen uniformly, hold
        every replica of some set (Cidon et al. 2013: the copyset effect).

        Exact enumeration over all ``C(n, failures)`` choices (at most 2 million).

        Examples
        --------
        >>> from ringguard import Ring
        >>> replica_sets(Ring(["a", "b", "c"]), 2).loss_given_failures(2)
        1.0
        """
        n = len(self.nodes)
        f = _int(failures, "failures", 0)
        if f > n:
            raise ValueError(f"failures: must be <= the number of nodes ({n}), got {f}")
        total = math.comb(n, f)
        if total > 2_000_000:
            raise ValueError(f"failures: C({n}, {f}) = {total} choices is too many to enumerate")
        r = self.members.shape[1]
        if f < r:
            return 0.0
        combos = np.array(list(itertools.combinations(range(n), f)), dtype=np.int64)
        down = np.zeros((len(combos), n), dtype=bool)
        np.put_along_axis(down, combos, True, axis=1)
        hit = np.zeros(len(combos), dtype=bool)
        for lo in range(0, len(self.members), 256):
            m = self.members[lo:lo + 256]
            hit |= np.any(np.all(down[:, m], axis=2), axis=1)
        return float(hit.mean())


def _ring_walk(owners: np.ndarray, r: int) -> np.ndarray:
    """First ``r`` distinct owners walking forward from every point (vectorised by step)."""
    p = len(owners)
    pref = np.full((p, r), -1, dtype=np.int64)
    pref[:, 0] = owners
    count = np.ones(p, dtype=np.int64)
    rows = np.arange(p) if r > 1 else np.zeros(0, dtype=np.int64)
    step = 1
    while rows.size and step < p:
        cand = owners[(rows + step) % p]
        dup = (pref[rows] == cand[:, None]).any(axis=1)
        add = rows[~dup]
        pref[add, count[add]] = cand[~dup]
        count[add] += 1
        rows = rows[count[rows] < r]
        step += 1
    if rows.size:  # pragma: no cover - replication was checked against the owners
        raise ValueError("replication: not enough distinct nodes on the ring")
    return pref


def _ring_arrays(placement: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(64-bit points, owners, share of each point's arc) of a ring placement."""
    from .placement.plan import _arcs
    from .placement.plan import _ring_arrays as ring_arrays

    points, owners = ring_arrays(placement)
    arcs = _arcs(points)
    share = arcs.astype(np.float64) / 2.0**64
    total = share.sum()
    if total == 0:  # every point at one value: the first point owns everything
        share[0] = 1.0
    else:
        share /= total
    return points, owners, share


def replica_sets(
    placement: Any,
    replication: int = 2,
    strategy: Literal["ring", "pairs"] = "ring",
    pairs: Sequence[tuple[str, str]] | None = None,
) -> ReplicaSets:
    """Distinct replica sets of a ring placement, with their exact hash-space shares.

    ``strategy="ring"``: the replicas of the arc ending at each point are the first
    ``replication`` distinct owners walking forward from that point (the preference list
    of :meth:`Ring.replicas`; zone-aware rings use the placement's own zone rule).
    ``strategy="pairs"``: each node's standby is its fixed partner from ``pairs``
    (``replication`` must be 2; every node that owns hash space must be in exactly one
    pair).

    Examples
    --------
    >>> from ringguard import Ring
    >>> ring = Ring(["a", "b", "c", "d"])
    >>> len(replica_sets(ring, 2, "pairs", pairs=[("a", "b"), ("c", "d")]))
    2
    """
    if not hasattr(placement, "nodes"):
        raise TypeError(f"placement: expected a Ring, got {type(placement).__name__}")
    nodes = tuple(placement.nodes)
    r = _int(replication, "replication", 1)
    if strategy not in ("ring", "pairs"):
        raise ValueError(f"strategy: expected 'ring' or 'pairs', got {strategy!r}")
    try:
        points, owners, share = _ring_arrays(placement)
    except TypeError as exc:
        raise TypeError(f"placement: {exc}") from None
    distinct = int(np.unique(owners).size)
    if r > distinct:
        raise ValueError(
            f"replication: {r} exceeds the number of nodes that own hash space ({distinct})")
    primary_share = np.bincount(owners, weights=share, minlength=len(nodes))
    if strategy == "pairs":
        if r != 2:
            raise ValueError(f"replication: strategy='pairs' means 2 replicas, got {r}")
        partner = _check_pairs(pairs, nodes, owners)
        pref = np.stack([owners, partner[owners]], axis=1)
    else:
        if pairs is not None:
            raise ValueError("pairs: only used with strategy='pairs'")
        zones = getattr(placement, "zones", None)
        if zones and r > 1:
            first = np.arange(len(points), dtype=np.int32)
            out = np.empty((len(points), r), dtype=np.int32)
            placement._index.replicas(first, r, len(nodes), placement._zone_of,
                                      placement._nzones, out)
            pref = out.astype(np.int64)
        else:
            pref = _ring_walk(owners.astype(np.int64), r)
    members = np.sort(pref, axis=1)
    uniq, inverse = np.unique(members, axis=0, return_inverse=True)
    shares = np.bincount(inverse.reshape(-1), weights=share, minlength=len(uniq))
    keep = shares > 0
    return ReplicaSets(nodes, uniq[keep], shares[keep], primary_share)


def _check_pairs(pairs: Any, nodes: tuple[str, ...], owners: np.ndarray) -> np.ndarray:
    if pairs is None:
        raise ValueError("pairs: strategy='pairs' needs pairs=[(a, b), ...]")
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise TypeError(f"pairs: expected a sequence of (a, b) tuples, got "
                        f"{type(pairs).__name__}")
    pos = {name: i for i, name in enumerate(nodes)}
    partner = np.full(len(nodes), -1, dtype=np.int64)
    for i, pair in enumerate(pairs):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"pairs[{i}]: expected a pair (a, b), got {pair!r}")
        a, b = pair
        for name in (a, b):
            if name not in pos:
                raise ValueError(f"pairs[{i}]: {name!r} is not a node of the placement")
        if a == b:
            raise ValueError(f"pairs[{i}]: a node cannot be its own partner ({a!r})")
        for name in (a, b):
            if partner[pos[name]] >= 0:
                raise ValueError(f"pairs[{i}]: {name!r} is already in another pair")
        partner[pos[a]], partner[pos[b]] = pos[b], pos[a]
    missing = [nodes[i] for i in np.unique(owners).tolist() if partner[i] < 0]
    if missing:
        raise ValueError(f"pairs: node {missing[0]!r} owns hash space but has no partner")
    return partner


# ---- simulation --------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate` estimated; every estimate comes with a 95 % interval.

    Attributes
    ----------
    availability, availability_ci
        Mean fraction of the key space readable over the horizon (time-averaged, then
        averaged over trials); normal-approximation interval.
    p_loss, p_loss_ci
        Probability that some replica set is entirely down at some moment within the
        horizon (data loss); Wilson score interval.
    expected_keys_lost, expected_keys_lost_ci
        Expected fraction of the key space whose replica set was entirely down at some
        moment; normal-approximation interval.
    trials, years, replication, strategy, nodes, replica_sets
        The configuration: ``replica_sets`` is the number of distinct sets (copysets).

    Examples
    --------
    >>> from ringguard import Ring
    >>> res = simulate(Ring(["a", "b", "c"]), 2, mtbf="1y", mttr="4h", trials=500)
    >>> res.p_loss_ci[0] <= res.p_loss <= res.p_loss_ci[1], res.replica_sets
    (True, 3)
    """

    availability: float
    availability_ci: tuple[float, float]
    p_loss: float
    p_loss_ci: tuple[float, float]
    expected_keys_lost: float
    expected_keys_lost_ci: tuple[float, float]
    trials: int
    years: float
    replication: int
    strategy: str
    nodes: int
    replica_sets: int

    @property
    def nines(self) -> float:
        """``-log10(1 - availability)``.

        Examples
        --------
        >>> from ringguard import Ring
        >>> simulate(Ring(["a", "b"]), trials=100).nines > 2
        True
        """
        return nines(min(1.0, max(0.0, self.availability)))

    def __repr__(self) -> str:
        a, p, k = self.availability_ci, self.p_loss_ci, self.expected_keys_lost_ci
        return (
            f"SimulationResult({self.nodes} nodes, r={self.replication} {self.strategy}, "
            f"{self.replica_sets} replica sets, {self.years:g} y x {self.trials} trials:\n"
            f"  availability       {self.availability:.8f}  [{a[0]:.8f}, {a[1]:.8f}]\n"
            f"  p_loss             {self.p_loss:.6f}  [{p[0]:.6f}, {p[1]:.6f}]\n"
            f"  expected_keys_lost {self.expected_keys_lost:.3e}  [{k[0]:.3e}, {k[1]:.3e}])"
        )


def _mean_ci(x: np.ndarray) -> tuple[float, tuple[float, float]]:
    m = float(x.mean())
    half = 1.96 * float(x.std(ddof=1)) / math.sqrt(len(x)) if len(x) > 1 else math.inf
    return m, (m - half, m + half)


def _wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.96
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def _timelines(
    rng: np.random.Generator,
    units: int,
    horizon: float,
    draw_up: Any,
    mean_down: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Down intervals ``(unit, start, end)`` of ``units`` alternating up/down processes.

    Vectorised over units; the loop is over failure rounds (each round every still-active
    unit fails once and is repaired), so it runs about ``horizon / (MTBF + MTTR)`` times.
    """
    ids = np.arange(units, dtype=np.int64)
    t = np.zeros(units)
    out_id, out_s, out_e = [], [], []
    while ids.size:
        s = t + draw_up(ids.size)
        keep = s < horizon
        ids, s = ids[keep], s[keep]
        e = s + rng.exponential(mean_down, ids.size)
        out_id.append(ids)
        out_s.append(s)
        out_e.append(np.minimum(e, horizon))
        keep = e < horizon
        ids, t = ids[keep], e[keep]
    if not out_id:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    return np.concatenate(out_id), np.concatenate(out_s), np.concatenate(out_e)


def _merge(key: np.ndarray, s: np.ndarray, e: np.ndarray, step: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union of overlapping intervals with the same key (key * step shifts them apart)."""
    order = np.lexsort((s, key))
    key, s, e = key[order], s[order], e[order]
    shifted_end = np.maximum.accumulate(e + key * step)
    new = np.ones(len(s), dtype=bool)
    new[1:] = (s[1:] + key[1:] * step) > shifted_end[:-1]
    starts = np.flatnonzero(new)
    return key[starts], s[starts], np.maximum.reduceat(e, starts)


def simulate(
    placement: Any,
    replication: int = 2,
    strategy: Literal["ring", "pairs"] = "ring",
    *,
    mtbf: Duration = "91d",
    mttr: Duration = "24h",
    detect: Duration = 0.0,
    years: float = 1.0,
    trials: int = 10_000,
    seed: int = 0,
    distribution: Literal["exponential", "weibull"] = "exponential",
    weibull_shape: float = 1.0,
    pairs: Sequence[tuple[str, str]] | None = None,
    zone_failures_per_year: float | None = None,
    zone_mttr: Duration | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Monte Carlo of node failures and repairs over the real replica sets of a placement.

    Model: every node starts up; it stays up for a random time of mean ``mtbf``
    (exponential, or Weibull with ``weibull_shape`` scaled to that mean, restarting as
    new after each repair), then is down for an exponential time of mean ``mttr``;
    nodes are independent except for optional zone outages (each zone of a zone-aware
    ring goes down as a whole ``zone_failures_per_year`` times a year on average, for an
    exponential time of mean ``zone_mttr``, default ``mttr``). The key space is split into
    the replica sets of :func:`replica_sets`. A range is unreadable while all its replicas
    are down, and for ``detect`` after each failure of its primary (before failover; the
    small overlap of such a window with a full outage is counted twice, which errs on the
    side of less availability). Data is lost when all replicas of a range are down at the
    same moment (a down node is taken to have lost its copy, as in :func:`mttdl`).

    Parameters
    ----------
    placement
        A :class:`~ringguard.Ring` (or ``Ring.ketama``).
    replication, strategy, pairs
        See :func:`replica_sets`.
    mtbf, mttr, detect
        Hours or strings with units (``"91d"``, ``"24h"``, ``"30s"``).
    years
        Horizon of every trial.
    trials
        Independent trials; intervals shrink like ``1 / sqrt(trials)``.
    seed
        Seed of ``numpy.random.default_rng``: equal inputs give equal results.
    distribution, weibull_shape
        Time to failure: ``"exponential"`` (memoryless, the closed forms' assumption) or
        ``"weibull"`` with this shape (< 1: infant mortality, > 1: wear-out), scaled so
        that its mean is ``mtbf``.
    zone_failures_per_year, zone_mttr
        Correlated outages of whole zones (needs ``Ring(zones=...)``): mean outages per
        zone per year (up time between them exponential) and their mean duration.
    progress
        Called as ``progress(done, total)`` with the number of trials finished, once
        before the first and after every chunk of trials (about 250,000 node timelines
        each; the chunking is fixed, so it never changes the results).

    Returns
    -------
    SimulationResult

    Examples
    --------
    >>> from ringguard import Ring
    >>> res = simulate(Ring(["a", "b"]), mtbf="91d", mttr="24h", trials=2000, seed=1)
    >>> 0.05 < res.p_loss < 0.12
    True
    """
    sets = replica_sets(placement, replication, strategy, pairs)
    up_mean = _positive_duration(mtbf, "mtbf")
    down_mean = _positive_duration(mttr, "mttr")
    detect_h = parse_duration(detect, "detect")
    horizon = _real(years, "years", 0.0, strict=True) * HOURS_PER_YEAR
    n_trials = _int(trials, "trials", 2)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    if distribution not in ("exponential", "weibull"):
        raise ValueError(
            f"distribution: expected 'exponential' or 'weibull', got {distribution!r}")
    shape = _real(weibull_shape, "weibull_shape", 0.0, strict=True)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress: expected a callable or None, got {type(progress).__name__}")
    rng = np.random.default_rng(int(seed))
    nnodes = len(sets.nodes)
    r = sets.members.shape[1]

    if distribution == "weibull":
        scale = up_mean / math.gamma(1.0 + 1.0 / shape)

        def draw_up(size: int) -> np.ndarray:
            return scale * rng.weibull(shape, size)
    else:
        def draw_up(size: int) -> np.ndarray:
            return rng.exponential(up_mean, size)

    zone_rate = (None if zone_failures_per_year is None
                 else _real(zone_failures_per_year, "zone_failures_per_year", 0.0))
    zone_down = down_mean if zone_mttr is None else _positive_duration(zone_mttr, "zone_mttr")
    unavailable = np.zeros(n_trials)
    lost_share = np.zeros(n_trials)
    any_loss = np.zeros(n_trials, dtype=bool)
    # Trials run in chunks of about _CHUNK_UNITS node timelines (bounded memory: ~1 kB per
    # node-year at MTBF 91 d); the chunking is fixed, so results depend on the seed only.
    chunk = max(1, _CHUNK_UNITS // nnodes)
    if progress is not None:
        progress(0, n_trials)
    for lo in range(0, n_trials, chunk):
        hi = min(n_trials, lo + chunk)
        _run_trials(rng, placement, sets, hi - lo, horizon, draw_up, down_mean, detect_h,
                    zone_rate, zone_down, unavailable[lo:hi], lost_share[lo:hi],
                    any_loss[lo:hi])
        if progress is not None:
            progress(hi, n_trials)

    avail, avail_ci = _mean_ci(1.0 - unavailable / horizon)
    keys, keys_ci = _mean_ci(lost_share)
    k = int(any_loss.sum())
    return SimulationResult(
        availability=avail,
        availability_ci=(max(0.0, avail_ci[0]), min(1.0, avail_ci[1])),
        p_loss=k / n_trials,
        p_loss_ci=_wilson(k, n_trials),
        expected_keys_lost=keys,
        expected_keys_lost_ci=(max(0.0, keys_ci[0]), min(1.0, keys_ci[1])),
        trials=n_trials,
        years=horizon / HOURS_PER_YEAR,
        replication=r,
        strategy=strategy,
        nodes=nnodes,
        replica_sets=len(sets),
    )


# Node timelines per chunk of trials in simulate().
_CHUNK_UNITS = 250_000


def _run_trials(
    rng: np.random.Generator,
    placement: Any,
    sets: ReplicaSets,
    n_trials: int,
    horizon: float,
    draw_up: Any,
    down_mean: float,
    detect_h: float,
    zone_rate: float | None,
    zone_down: float,
    unavailable: np.ndarray,
    lost_share: np.ndarray,
    any_loss: np.ndarray,
) -> None:
    """Simulate ``n_trials`` trials; write unavailable hours, share lost and whether any
    data was lost, per trial, into the given arrays."""
    nnodes = len(sets.nodes)
    r = sets.members.shape[1]
    unit, start, end = _timelines(rng, n_trials * nnodes, horizon, draw_up, down_mean)
    trial = unit // nnodes
    node = unit % nnodes
    if zone_rate is not None:
        trial, node, start, end = _add_zone_outages(
            rng, placement, sets.nodes, trial, node, start, end, n_trials, horizon,
            zone_rate, zone_down)

    # Detection windows: each failure of a node costs min(detect, down time) on the share
    # it is primary for (with one replica there is no failover and the outage counts below).
    if detect_h > 0 and r > 1:
        np.add.at(unavailable, trial,
                  sets.primary_share[node] * np.minimum(detect_h, end - start))

    lost_trial, lost_set, lost_len = _full_outages(
        trial, node, start, end, sets, nnodes, horizon)
    np.add.at(unavailable, lost_trial, sets.share[lost_set] * lost_len)
    if lost_trial.size:
        lost = np.sort(lost_trial * len(sets) + lost_set)
        lost = lost[np.concatenate([[True], lost[1:] != lost[:-1]])]
        np.add.at(lost_share, lost // len(sets), sets.share[lost % len(sets)])
    any_loss[lost_trial] = True


def _add_zone_outages(
    rng: np.random.Generator,
    placement: Any,
    nodes: tuple[str, ...],
    trial: np.ndarray,
    node: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    n_trials: int,
    horizon: float,
    per_year: float,
    zone_down: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    zones = getattr(placement, "zones", None)
    if not zones:
        raise ValueError("zone_failures_per_year: the placement has no zones (Ring(zones=...))")
    if per_year == 0:
        return trial, node, start, end
    names = sorted(set(zones.values()))
    zone_of = np.array([names.index(zones[n]) for n in nodes], dtype=np.int64)
    nz = len(names)
    mean_up = HOURS_PER_YEAR / per_year

    def draw(size: int) -> np.ndarray:
        return rng.exponential(mean_up, size)

    zunit, zs, ze = _timelines(rng, n_trials * nz, horizon, draw, zone_down)
    ztrial, zone = zunit // nz, zunit % nz
    parts_t, parts_n, parts_s, parts_e = [trial], [node], [start], [end]
    for z in range(nz):  # expand each zone outage to the nodes of the zone
        sel = zone == z
        members = np.flatnonzero(zone_of == z)
        parts_t.append(np.repeat(ztrial[sel], len(members)))
        parts_n.append(np.tile(members, int(sel.sum())))
        parts_s.append(np.repeat(zs[sel], len(members)))
        parts_e.append(np.repeat(ze[sel], len(members)))
    nnodes = len(nodes)
    key = np.concatenate(parts_t) * nnodes + np.concatenate(parts_n)
    key, s, e = _merge(key, np.concatenate(parts_s), np.concatenate(parts_e), 2.0 * horizon)
    return key // nnodes, key % nnodes, s, e


# Down sets with more candidate subsets than this (default: max(64, number of replica sets))
# are matched with a node mask instead of subset codes; tests set it to 0 to compare both.
_COMBO_LIMIT: int | None = None


def _full_outages(
    trial: np.ndarray,
    node: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    sets: ReplicaSets,
    nnodes: int,
    horizon: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (trial, replica set, duration) during which all members of the set are down.

    A replica set becomes fully down only when its last member fails, and stays so until
    the first of its members is repaired. So only failures that find at least ``r - 1``
    other nodes down are examined, all trials at once: each trial is shifted to its own
    stretch of the time axis, intervals are sorted by start, and the other nodes down at
    a failure are found by looking back over earlier starts (a bounded loop that stops
    when every failure has found all of them; the running maximum of end times cuts it
    short). The candidate sets are then matched against the placement's replica sets by
    an integer code of their sorted members.
    """
    r = sets.members.shape[1]
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if start.size == 0:
        return empty
    step = 2.0 * horizon + 1.0
    order = np.argsort(start + trial * step, kind="stable")
    st = start[order] + trial[order] * step
    en = end[order] + trial[order] * step
    nd = node[order].astype(np.int64)
    ends = np.sort(en)
    # nodes down just after each failure (this one included)
    down = np.arange(1, len(st) + 1) - np.searchsorted(ends, st, side="right")
    cand = np.flatnonzero(down >= r)
    if cand.size == 0:
        return empty
    want = down[cand] - 1  # other nodes down at that moment
    t = st[cand]
    reach = np.maximum.accumulate(en)
    j = cand - 1
    found = np.zeros(len(cand), dtype=np.int64)
    rows = np.arange(len(cand))
    h_row, h_pos, h_idx = [], [], []
    while rows.size:
        jj = j[rows]
        ok = jj >= 0
        ok[ok] = reach[jj[ok]] > t[rows[ok]]
        rows, jj = rows[ok], jj[ok]
        hit = en[jj] > t[rows]
        hr = rows[hit]
        h_row.append(hr)
        h_pos.append(found[hr] + 1)
        h_idx.append(jj[hit])
        found[hr] += 1
        j[rows] = jj - 1
        rows = rows[found[rows] < want[rows]]
    hit_row = np.concatenate(h_row)
    hit_pos = np.concatenate(h_pos)
    hit_idx = np.concatenate(h_idx)
    per = found + 1  # members of each down set, the failing node first

    base = np.int64(nnodes)
    weights = base ** np.arange(r - 1, -1, -1, dtype=np.int64)
    codes = sets.members @ weights
    corder = np.argsort(codes)
    sorted_codes = codes[corder]
    local = np.zeros(len(cand), dtype=np.int64)
    out_row, out_set, out_len = [], [], []
    for d in np.flatnonzero(np.bincount(per)).tolist():
        if d < r:
            continue
        rows_d = np.flatnonzero(per == d)
        local[rows_d] = np.arange(len(rows_d))
        idx = np.empty((len(rows_d), d), dtype=np.int64)  # interval of each down member
        idx[:, 0] = cand[rows_d]
        sel = per[hit_row] == d
        idx[local[hit_row[sel]], hit_pos[sel]] = hit_idx[sel]
        members, stops = nd[idx], en[idx]
        t_d = t[rows_d]
        limit = max(64, len(codes)) if _COMBO_LIMIT is None else _COMBO_LIMIT
        if math.comb(d - 1, r - 1) <= limit:
            for rest in itertools.combinations(range(1, d), r - 1):
                cols = [0, *rest]
                c = np.sort(members[:, cols], axis=1) @ weights
                pos = np.searchsorted(sorted_codes, c)
                pos[pos == len(sorted_codes)] = 0
                at = np.flatnonzero(sorted_codes[pos] == c)
                out_row.append(rows_d[at])
                out_set.append(corder[pos[at]])
                out_len.append(stops[at][:, cols].min(axis=1) - t_d[at])
        else:  # many nodes down at once (zone outages): test every set against a mask
            for lo in range(0, len(rows_d), 512):
                m = members[lo:lo + 512]
                mask = np.zeros((len(m), nnodes), dtype=bool)
                np.put_along_axis(mask, m, True, axis=1)
                stop_of = np.full((len(m), nnodes), np.inf)
                np.put_along_axis(stop_of, m, stops[lo:lo + 512], axis=1)
                for glo in range(0, len(codes), 2048):
                    g = sets.members[glo:glo + 2048]
                    inside = mask[:, g].all(axis=2) & (g == m[:, :1, None]).any(axis=2)
                    hr, hg = np.nonzero(inside)
                    out_row.append(rows_d[lo + hr])
                    out_set.append(hg + glo)
                    out_len.append(stop_of[hr[:, None], g[hg]].min(axis=1) - t_d[lo + hr])
    if not out_row:
        return empty
    rows_out = np.concatenate(out_row)
    lost_trial = np.floor(t[rows_out] / step).astype(np.int64)
    return lost_trial, np.concatenate(out_set).astype(np.int64), np.concatenate(out_len)
