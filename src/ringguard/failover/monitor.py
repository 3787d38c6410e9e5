"""Probes every backend on a background thread and turns failures into cluster states."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..backends.base import Backend
from .cluster import Cluster, NodeState
from .detector import PhiAccrualDetector, ThresholdDetector
from .store import ReplicatedStore

__all__ = ["Monitor"]


class _Probe:
    """One ping in a daemon thread, so a hanging backend cannot block the monitor."""

    def __init__(self, backend: Backend) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(backend,), daemon=True)
        self.thread.start()

    def _run(self, backend: Backend) -> None:
        try:
            backend.ping()
        except BaseException as exc:  # noqa: BLE001 - any failure is a failed probe
            self.error = exc
        finally:
            self.done.set()


class Monitor:
    """Health checking for a :class:`Cluster`.

    Every ``interval_s`` it pings each node's backend (bounded by ``timeout_s``; a probe
    that raises or hangs is a failure with a reason), feeds the detector, and changes
    states: ``suspect`` on the first failures, ``down`` when the detector convicts, and —
    once the node answers again and ``hold_down_s`` has passed since its failover — recovery
    through ``store.recover`` (``catching_up`` then ``up``). The hold-down means a flapping
    node causes at most one failover per hold-down period.

    Parameters
    ----------
    cluster, backends
        The cluster and one backend per node name.
    store
        If given, returning nodes are recovered through it (hint replay, anti-entropy);
        otherwise they are simply marked up.
    detector
        A :class:`ThresholdDetector` (default: fall 3, rise 2) or a
        :class:`PhiAccrualDetector`.
    clock
        Monotonic clock in seconds (injectable for tests).

    Examples
    --------
    >>> from ringguard import Ring
    >>> from ringguard.backends import MemoryBackend
    >>> from ringguard.failover import Cluster, Monitor
    >>> nodes = {n: MemoryBackend(n) for n in ["a", "b"]}
    >>> c = Cluster(Ring(list(nodes)), 2)
    >>> m = Monitor(c, nodes, detector=ThresholdDetector(fall=1, rise=1), hold_down_s=0)
    >>> nodes["a"].fail(); m.step(); c.state("a").value
    'down'
    """

    def __init__(
        self,
        cluster: Cluster,
        backends: Mapping[str, Backend],
        *,
        store: ReplicatedStore | None = None,
        detector: ThresholdDetector | PhiAccrualDetector | None = None,
        interval_s: float = 1.0,
        timeout_s: float = 1.0,
        hold_down_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        missing = [n for n in cluster.nodes if n not in backends]
        if missing:
            raise ValueError(f"backends: no backend for node {missing[0]!r}")
        if interval_s <= 0 or timeout_s <= 0 or hold_down_s < 0:
            raise ValueError("interval_s and timeout_s must be > 0, hold_down_s >= 0")
        self.cluster = cluster
        self.backends = dict(backends)
        self.store = store
        self.detector = detector if detector is not None else ThresholdDetector()
        self.interval_s, self.timeout_s, self.hold_down_s = interval_s, timeout_s, hold_down_s
        self._clock = clock
        self._failover_at: dict[str, float] = {}
        self._seen: dict[str, NodeState] = {}
        self._pending: dict[str, _Probe] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_errors: dict[str, str] = {}

    def _probe_all(self) -> dict[str, str | None]:
        """Ping every node at once; map node -> failure reason (None when it answered)."""
        probes = {}
        for name in self.cluster.nodes:
            old = self._pending.get(name)
            if old is not None and not old.done.is_set():
                continue  # the previous probe still hangs: do not pile up threads
            probes[name] = self._pending[name] = _Probe(self.backends[name])
        deadline = time.monotonic() + self.timeout_s
        out: dict[str, str | None] = {}
        for name in self.cluster.nodes:
            p = probes.get(name)
            if p is None:
                out[name] = "previous probe still hanging"
                continue
            p.done.wait(max(0.0, deadline - time.monotonic()))
            if not p.done.is_set():
                out[name] = f"probe timed out after {self.timeout_s:g} s"
            elif p.error is not None:
                out[name] = f"probe failed: {type(p.error).__name__}: {p.error}"
            else:
                out[name] = None
        return out

    def step(self) -> None:
        """One round: probe every node and apply the state changes it implies."""
        results = self._probe_all()
        now = self._clock()
        det = self.detector
        for name, reason in results.items():
            if reason is None:
                det.heartbeat(name)
                self.last_errors.pop(name, None)
            else:
                if isinstance(det, ThresholdDetector):
                    det.record(name, False)
                self.last_errors[name] = reason
            state = self.cluster.state(name)
            if state is NodeState.DOWN and self._seen.get(name) is not NodeState.DOWN:
                # Down since the last round, whoever decided it (the store marks nodes down
                # on failed calls): the hold-down counts from now.
                self._failover_at[name] = now
            self._seen[name] = state
            since = now - self._failover_at.get(name, -float("inf"))
            available = det.is_available(name)
            if state in (NodeState.UP, NodeState.SUSPECT):
                if not available:
                    self._mark_down(name, reason or "detector convicted", now)
                elif reason is not None or det.suspicious(name):
                    if state is NodeState.UP:
                        self.cluster.mark_suspect(name, reason=reason or "late heartbeats")
                elif state is NodeState.SUSPECT:
                    self.cluster.mark_up(name, reason="probes answer again")
            elif state is NodeState.CATCHING_UP:  # a recovery that did not finish
                if reason is not None:
                    self._mark_down(name, reason, now)
                else:
                    self._bring_back(name)
            elif state is NodeState.DOWN and available and reason is None:
                if since >= self.hold_down_s:
                    self._bring_back(name)

    def _mark_down(self, name: str, reason: str, now: float) -> None:
        self.cluster.mark_down(name, reason=reason)
        self._seen[name] = NodeState.DOWN
        self._failover_at[name] = now

    def _bring_back(self, name: str) -> None:
        if self.store is None:
            self.cluster.mark_up(name, reason="probes answer again")
            return
        try:
            self.store.recover(name)
        except Exception as exc:  # noqa: BLE001 - back to down, retried after a hold-down
            self.last_errors[name] = f"recovery failed: {exc}"
            if self.cluster.state(name) is not NodeState.DOWN:
                self.cluster.mark_down(name, reason=f"recovery failed: {exc}")
            # Failed again (here or through a failed write meanwhile): a new hold-down.
            self._seen[name] = NodeState.DOWN
            self._failover_at[name] = self._clock()

    # ---- background thread ----------------------------------------------------------------

    def start(self) -> Monitor:
        """Probe on a daemon thread every ``interval_s`` until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError("monitor already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ringguard-monitor", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.step()
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - t0)))

    def stop(self) -> None:
        """Stop the background thread (waits for the current round)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
