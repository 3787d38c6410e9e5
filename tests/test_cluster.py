"""Cluster: states, epochs, immutable views and health-aware routing."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from conftest import scaled
from ringguard import Ring, _pycore
from ringguard._backend import core
from ringguard.failover import Cluster, Event, NodeState, UnknownNodeError

NODES = [f"n{i}" for i in range(6)]
KEYS = [f"order:{i}" for i in range(scaled(20_000, 1_000))]


def expected_route(prefs: np.ndarray, acting: np.ndarray) -> tuple[list[int], list[int]]:
    nodes, positions = [], []
    for row in prefs.tolist():
        hit = [(j, x) for j, x in enumerate(row) if acting[x]]
        nodes.append(hit[0][1] if hit else -1)
        positions.append(hit[0][0] if hit else -1)
    return nodes, positions


@pytest.mark.parametrize("replication", [1, 2, 3])
def test_route_is_the_first_acting_replica(replication: int) -> None:
    c = Cluster(Ring(NODES), replication=replication)
    c.mark_down("n1")
    c.mark_catching_up("n3")
    c.mark_suspect("n4")  # a suspect still acts
    r = c.route(KEYS)
    assert r.replicas.shape == (len(KEYS), replication)
    nodes, positions = expected_route(r.replicas, r.view.acting)
    assert r.node.tolist() == nodes
    assert r.position.tolist() == positions
    assert not {c.nodes[i] for i in r.node.tolist() if i >= 0} & {"n1", "n3"}


def test_primary_down_moves_its_keys_to_the_standby_only() -> None:
    c = Cluster(Ring(NODES), replication=2)
    before = c.route(KEYS)
    c.mark_down("n2")
    after = c.route(KEYS)
    was_primary = before.node == NODES.index("n2")
    assert (after.position[was_primary] == 1).all()
    assert (after.node[was_primary] == before.replicas[was_primary, 1]).all()
    assert (after.node[~was_primary] == before.node[~was_primary]).all()


def test_no_acting_replica_gives_minus_one() -> None:
    c = Cluster(Ring(["a", "b", "c"]), replication=2)
    c.mark_down("a")
    c.mark_down("b")
    r = c.route(KEYS)
    both_down = np.isin(r.replicas, [0, 1]).all(axis=1)
    assert both_down.any()
    assert (r.node[both_down] == -1).all() and (r.position[both_down] == -1).all()
    assert (r.node[~both_down] == 2).all()


def test_views_are_immutable_snapshots() -> None:
    c = Cluster(Ring(NODES), replication=2)
    pinned = c.view
    c.mark_down("n0")
    assert pinned.is_up("n0") and not c.is_up("n0")
    assert c.view.version == pinned.version + 1
    with pytest.raises(ValueError):
        pinned.acting[0] = 0
    # Routing under the pinned view ignores the later change.
    r = c.route(KEYS, view=pinned)
    assert r.node.tolist() == r.replicas[:, 0].tolist()


def test_epochs_grow_when_a_node_stops_or_starts_acting() -> None:
    events: list[Event] = []
    c = Cluster(Ring(NODES), replication=2, on_event=events.append, epoch_base=0)
    assert c.node_epoch("n1") == 0 and c.epoch == 0
    c.mark_suspect("n1", reason="slow heartbeats")
    assert c.node_epoch("n1") == 0  # still acting
    c.mark_down("n1", reason="phi above threshold")
    assert c.node_epoch("n1") == 1
    c.mark_catching_up("n1")
    assert c.node_epoch("n1") == 1  # still not acting
    c.mark_up("n1")
    assert c.node_epoch("n1") == 2
    c.mark_up("n1")  # no change, no event
    assert [e.kind for e in events] == ["suspect", "down", "promote", "catching_up", "up"]
    assert [e.view_version for e in events] == [1, 2, 2, 3, 4]
    assert events[1].reason == "phi above threshold"
    assert c.state("n1") is NodeState.UP and c.epoch == 4


def test_unknown_nodes_and_bad_arguments() -> None:
    c = Cluster(Ring(NODES))
    with pytest.raises(UnknownNodeError, match="'zz'"):
        c.mark_down("zz")
    with pytest.raises(ValueError, match="replication"):
        Cluster(Ring(NODES), replication=7)
    with pytest.raises(TypeError, match="replication"):
        Cluster(Ring(NODES), replication=2.0)  # type: ignore[arg-type]
    other = Cluster(Ring(["x", "y"]))
    with pytest.raises(ValueError, match="view"):
        c.route(KEYS, view=other.view)


def test_route_kernel_validates_indices_and_matches_twin() -> None:
    rng = np.random.default_rng(5)
    prefs = rng.integers(0, 8, size=(5000, 3), dtype=np.int32)
    up = (rng.random(8) < 0.5).astype(np.uint8)
    outs = []
    for impl in (core, _pycore):
        node = np.empty(len(prefs), np.int32)
        pos = np.empty(len(prefs), np.int8)
        impl.route(prefs, up, node, pos)
        outs.append((node.tolist(), pos.tolist()))
        bad = prefs.copy()
        bad[17, 2] = 8
        with pytest.raises(ValueError, match=r"prefs\[17, 2\]"):
            impl.route(bad, up, node, pos)
    assert outs[0] == outs[1] == expected_route(prefs, up)


def test_routing_while_states_change_is_consistent_per_view() -> None:
    c = Cluster(Ring(NODES), replication=3)
    keys = KEYS[:2000]
    errors: list[str] = []
    stop = threading.Event()

    def flap() -> None:
        i = 0
        while not stop.is_set():
            node = NODES[i % len(NODES)]
            c.mark_down(node)
            c.mark_up(node)
            i += 1

    def router() -> None:
        for _ in range(30):
            r = c.route(keys)
            nodes, _ = expected_route(r.replicas, r.view.acting)
            if r.node.tolist() != nodes:
                errors.append("route disagrees with its own view")

    t = threading.Thread(target=flap)
    t.start()
    routers = [threading.Thread(target=router) for _ in range(3)]
    for th in routers:
        th.start()
    for th in routers:
        th.join()
    stop.set()
    t.join()
    assert errors == []
