"""Failure detectors: phi accrual (Hayashibara et al. 2004) and a fall/rise threshold.

Both take an injectable monotonic clock (``clock=`` returning seconds), so tests and
simulations drive time explicitly.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["PhiAccrualDetector", "ThresholdDetector"]

_LOG10_E = 1.0 / math.log(10.0)


class PhiAccrualDetector:
    """Suspicion level from heartbeat arrival times, with Cassandra's defaults.

    ``phi = (now - last_heartbeat) / mean_interval * log10(e)``: the exponential model of
    inter-arrival times (Cassandra's simplification of the paper's normal model); phi is
    ``-log10`` of the probability that a heartbeat this late is still coming.

    Parameters
    ----------
    threshold
        Convict when phi exceeds this (Cassandra's ``phi_convict_threshold``, 8).
    window
        Intervals remembered per node (1000).
    heartbeat_interval_s
        Expected interval; the mean before anything is learned. Intervals longer than twice
        it are not learned (a gap is a failure, not the new normal).
    max_local_pause_s
        If the detector itself was not consulted for this long (a GC or VM pause of the
        local process), the next check convicts nobody: the silence may be ours (5 s).
    clock
        Monotonic clock in seconds.

    Examples
    --------
    >>> t = [0.0]
    >>> d = PhiAccrualDetector(clock=lambda: t[0])
    >>> for i in range(10):
    ...     t[0] = float(i); d.heartbeat("a")
    >>> t[0] = 10.0; round(d.phi("a"), 3)
    0.434
    >>> t[0] = 30.0; d.is_available("a")
    False
    """

    def __init__(
        self,
        *,
        threshold: float = 8.0,
        window: int = 1000,
        heartbeat_interval_s: float = 1.0,
        max_local_pause_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not threshold > 0 or not heartbeat_interval_s > 0 or window < 1:
            raise ValueError("threshold, heartbeat_interval_s and window must be positive")
        self.threshold = float(threshold)
        self.window = int(window)
        self.heartbeat_interval_s = float(heartbeat_interval_s)
        self.max_local_pause_s = float(max_local_pause_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._intervals: dict[str, deque[float]] = {}
        self._sums: dict[str, float] = {}
        self._last_check: float | None = None

    def heartbeat(self, node: str) -> None:
        """Record a heartbeat (a successful probe) from ``node`` now."""
        now = self._clock()
        with self._lock:
            last = self._last.get(node)
            self._last[node] = now
            if last is None:
                return
            interval = now - last
            if interval <= 0 or interval > 2 * self.heartbeat_interval_s:
                return
            q = self._intervals.setdefault(node, deque())
            q.append(interval)
            self._sums[node] = self._sums.get(node, 0.0) + interval
            if len(q) > self.window:
                self._sums[node] -= q.popleft()

    def phi(self, node: str) -> float:
        """Current suspicion level of ``node`` (0 right after a heartbeat)."""
        now = self._clock()
        with self._lock:
            last = self._last.get(node)
            if last is None:
                return 0.0
            q = self._intervals.get(node)
            mean = self._sums[node] / len(q) if q else self.heartbeat_interval_s
            return _LOG10_E * max(0.0, now - last) / mean

    def suspicious(self, node: str) -> bool:
        """True once phi passes half the threshold (worth flagging, not yet convicting)."""
        return self.phi(node) > self.threshold / 2

    def is_available(self, node: str) -> bool:
        """False when phi exceeds the threshold (and the local process was not paused)."""
        now = self._clock()
        with self._lock:
            paused = (
                self._last_check is not None and now - self._last_check > self.max_local_pause_s
            )
            self._last_check = now
        if paused:
            return True
        return self.phi(node) <= self.threshold


class ThresholdDetector:
    """Down after ``fall`` consecutive failed probes, up after ``rise`` good ones.

    Examples
    --------
    >>> d = ThresholdDetector(fall=2, rise=2)
    >>> d.record("a", False); d.is_available("a")
    True
    >>> d.record("a", False); d.is_available("a")
    False
    >>> d.record("a", True); d.record("a", True); d.is_available("a")
    True
    """

    def __init__(self, fall: int = 3, rise: int = 2) -> None:
        if fall < 1 or rise < 1:
            raise ValueError("fall and rise must be >= 1")
        self.fall, self.rise = fall, rise
        self._lock = threading.Lock()
        self._up: dict[str, bool] = {}
        self._streak: dict[str, int] = {}

    def record(self, node: str, ok: bool) -> None:
        """Record one probe result for ``node``."""
        with self._lock:
            up = self._up.get(node, True)
            streak = self._streak.get(node, 0)
            if ok == up:
                self._streak[node] = 0
                return
            streak += 1
            if streak >= (self.rise if ok else self.fall):
                self._up[node] = ok
                streak = 0
            self._streak[node] = streak

    def heartbeat(self, node: str) -> None:
        """A successful probe (same as ``record(node, True)``)."""
        self.record(node, True)

    def suspicious(self, node: str) -> bool:
        """Same as :meth:`failing`."""
        return self.failing(node)

    def failing(self, node: str) -> bool:
        """True while ``node`` has failed its most recent probes but is not yet down."""
        with self._lock:
            return self._up.get(node, True) and self._streak.get(node, 0) > 0

    def is_available(self, node: str) -> bool:
        """Current verdict for ``node``."""
        with self._lock:
            return self._up.get(node, True)
