"""Failure detectors and the Monitor, driven by an explicit clock."""

from __future__ import annotations

import threading
import time

import pytest

from ringguard import Ring
from ringguard.backends import MemoryBackend
from ringguard.failover import (
    Cluster,
    Event,
    Monitor,
    NodeState,
    PhiAccrualDetector,
    ReplicatedStore,
    ThresholdDetector,
)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class HangingBackend(MemoryBackend):
    """ping() blocks until released: a machine that accepts connections and never answers."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.release = threading.Event()
        self.hang = False

    def ping(self) -> None:
        if self.hang:
            self.release.wait(10)
        super().ping()


def test_phi_grows_with_silence_and_learns_the_interval() -> None:
    clock = Clock()
    d = PhiAccrualDetector(clock=clock, heartbeat_interval_s=1.0)
    for i in range(20):
        clock.t = i * 0.5
        d.heartbeat("a")
    clock.t = 9.5 + 0.5
    assert d.phi("a") == pytest.approx(0.5 / 0.5 / 2.302585, rel=1e-6)
    clock.t = 9.5 + 0.5 * 2.302585 * 8 + 0.01  # just past phi 8 with a 0.5 s mean
    assert not d.is_available("a")
    # Gaps longer than twice the heartbeat are not learned as the new normal.
    d2 = PhiAccrualDetector(clock=clock)
    clock.t = 0
    d2.heartbeat("b")
    clock.t = 100
    d2.heartbeat("b")
    clock.t = 101
    assert d2.phi("b") == pytest.approx(1 / 2.302585, rel=1e-6)


def test_phi_does_not_convict_after_a_local_pause() -> None:
    clock = Clock()
    d = PhiAccrualDetector(clock=clock)
    for i in range(10):
        clock.t = float(i)
        d.heartbeat("a")
    assert d.is_available("a")
    clock.t = 60.0  # we were paused for 51 s: the silence may be ours
    assert d.is_available("a")
    clock.t = 61.0
    assert not d.is_available("a")


def test_threshold_detector_needs_streaks() -> None:
    d = ThresholdDetector(fall=3, rise=2)
    for ok in (False, False, True, False, False):
        d.record("a", ok)
    assert d.is_available("a") and d.failing("a")
    d.record("a", False)
    assert not d.is_available("a")
    d.record("a", True)
    assert not d.is_available("a")
    d.record("a", True)
    assert d.is_available("a")
    with pytest.raises(ValueError):
        ThresholdDetector(fall=0)


def make(
    hold_down_s: float = 10.0,
) -> tuple[dict[str, MemoryBackend], Cluster, Monitor, Clock, list[Event], ReplicatedStore]:
    clock = Clock()
    events: list[Event] = []
    backends: dict[str, MemoryBackend] = {n: HangingBackend(n) for n in ["a", "b", "c"]}
    cluster = Cluster(Ring(list(backends)), 2, on_event=events.append)
    store = ReplicatedStore(cluster, backends)
    mon = Monitor(
        cluster,
        backends,
        store=store,
        detector=ThresholdDetector(fall=3, rise=2),
        timeout_s=0.2,
        hold_down_s=hold_down_s,
        clock=clock,
    )
    return backends, cluster, mon, clock, events, store


def test_monitor_suspects_fails_over_and_recovers_through_the_store() -> None:
    backends, cluster, mon, clock, events, store = make()
    keys = [f"k{i}" for i in range(500)]
    store.put_many(keys, [b"v1"] * 500)
    backends["b"].fail()
    for _ in range(3):
        clock.t += 1
        mon.step()
    assert cluster.state("b") is NodeState.DOWN
    assert "probe failed" in events[-2].reason and events[-1].kind == "promote"
    store.put_many(keys, [b"v2"] * 500)  # b misses these: hints
    backends["b"].heal()
    for _ in range(3):  # answers again, but the hold-down keeps it out
        clock.t += 1
        mon.step()
    assert cluster.state("b") is NodeState.DOWN
    clock.t += 10
    mon.step()
    assert cluster.state("b") is NodeState.UP
    kinds = [e.kind for e in events if e.node == "b"]
    assert kinds == ["suspect", "down", "promote", "catching_up", "up"]
    assert store.hints.pending("b") == 0
    assert store.get_many(keys) == [b"v2"] * 500


def test_a_hanging_probe_is_a_failure_with_a_reason() -> None:
    backends, cluster, mon, clock, events, _ = make()
    hb = backends["c"]
    assert isinstance(hb, HangingBackend)
    hb.hang = True
    t0 = time.monotonic()
    for _ in range(3):
        clock.t += 1
        mon.step()
    assert time.monotonic() - t0 < 3  # bounded by the probe timeout, not the hang
    assert cluster.state("c") is NodeState.DOWN
    assert "timed out" in events[0].reason or "hanging" in events[0].reason
    hb.release.set()
    print(f"OBSERVED F14: hanging probe -> {[e.kind for e in events]} within "
          f"{time.monotonic() - t0:.2f} s, reason {events[0].reason!r}")


def test_a_flapping_node_fails_over_at_most_once_per_hold_down() -> None:
    backends, cluster, mon, clock, events, _ = make(hold_down_s=10.0)
    mon.detector = ThresholdDetector(fall=1, rise=1)
    for i in range(40):  # down/up every second for 40 s
        if i % 2:
            backends["a"].heal()
        else:
            backends["a"].fail()
        clock.t += 1
        mon.step()
    downs = [e for e in events if e.node == "a" and e.kind == "down"]
    assert 1 <= len(downs) <= 40 // 10
    print(f"OBSERVED flapping (monitor): {len(downs)} failovers in 40 s, hold-down 10 s")


def test_every_node_down_then_back() -> None:
    backends, cluster, mon, clock, _, _ = make(hold_down_s=0)
    for b in backends.values():
        b.fail()
    for _ in range(3):
        clock.t += 1
        mon.step()
    assert all(cluster.state(n) is NodeState.DOWN for n in cluster.nodes)
    assert (cluster.route(["x", "y"]).node == -1).all()
    for b in backends.values():
        b.heal()
    for _ in range(2):
        clock.t += 1
        mon.step()
    assert all(cluster.state(n) is NodeState.UP for n in cluster.nodes)
    print("OBSERVED F16: every node DOWN, route -1 for every key; all back UP after 2 probes")


def test_background_thread_starts_and_stops() -> None:
    backends = {n: MemoryBackend(n) for n in ["a", "b"]}
    cluster = Cluster(Ring(list(backends)), 2)
    with Monitor(
        cluster,
        backends,
        interval_s=0.02,
        timeout_s=0.5,
        detector=ThresholdDetector(fall=1, rise=1),
        hold_down_s=0,
    ):
        backends["a"].fail()
        deadline = time.monotonic() + 5
        while cluster.state("a") is not NodeState.DOWN and time.monotonic() < deadline:
            time.sleep(0.01)
    assert cluster.state("a") is NodeState.DOWN
