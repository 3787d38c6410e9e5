"""The health-aware view of a placement: node states, epochs and routing.

A :class:`Cluster` owns an immutable :class:`HealthView` that is replaced (never mutated)
on every state change, so a batch that pins a view is routed consistently even while nodes
change state. Routing is one batch call into the compiled core: the placement gives each
key's preference list, and the core picks the first replica the view lets act.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._backend import core
from ..errors import RingGuardError
from ..placement.base import Placement

__all__ = [
    "Cluster",
    "Event",
    "HealthView",
    "NodeState",
    "Route",
    "StateChanged",
    "UnknownNodeError",
]

log = logging.getLogger("ringguard.failover")


class StateChanged(RingGuardError):
    """A conditional state change found the node in another state than expected."""


class UnknownNodeError(RingGuardError, KeyError):
    """A node name that is not part of the cluster's placement."""


class NodeState(str, enum.Enum):
    """Health of one node. ``UP`` and ``SUSPECT`` nodes act for their keys; ``DOWN`` and
    ``CATCHING_UP`` nodes do not (a catching-up node receives writes but serves no reads)."""

    UP = "up"
    SUSPECT = "suspect"
    DOWN = "down"
    CATCHING_UP = "catching_up"


_ACTING = (NodeState.UP, NodeState.SUSPECT)


@dataclass(frozen=True)
class HealthView:
    """An immutable snapshot of every node's state and epoch.

    Attributes
    ----------
    version : int
        Grows by one on every change; the cluster-wide fencing token.
    nodes : tuple of str
    states : tuple of NodeState
    epochs : tuple of int
        Per-node epoch: grows every time the node stops or starts acting (a promotion of
        its standby, or its return), so writes routed under an older epoch can be fenced.
    """

    version: int
    nodes: tuple[str, ...]
    states: tuple[NodeState, ...]
    epochs: tuple[int, ...]
    acting: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        acting = np.array([s in _ACTING for s in self.states], dtype=np.uint8)
        acting.flags.writeable = False
        object.__setattr__(self, "acting", acting)

    def state(self, node: str) -> NodeState:
        """State of ``node``."""
        return self.states[_index(self.nodes, node)]

    def is_up(self, node: str) -> bool:
        """True if ``node`` acts for its keys (``UP`` or ``SUSPECT``)."""
        return bool(self.acting[_index(self.nodes, node)])


def _index(nodes: tuple[str, ...], node: str) -> int:
    try:
        return nodes.index(node)
    except ValueError:
        raise UnknownNodeError(f"node {node!r} is not in the cluster {list(nodes)}") from None


@dataclass(frozen=True)
class Event:
    """One state change: ``kind`` is ``suspect``, ``down``, ``promote``, ``catching_up`` or
    ``up``."""

    kind: str
    node: str
    reason: str
    epoch: int
    view_version: int
    time_s: float


@dataclass(frozen=True)
class Route:
    """Where each key of a batch goes under one view.

    Attributes
    ----------
    node : numpy.ndarray
        int32 acting node per key (index into ``view.nodes``), ``-1`` where no replica acts.
    position : numpy.ndarray
        int8 position of that node in the key's preference list (0 = primary), ``-1`` if none.
    replicas : numpy.ndarray
        int32 ``(len(keys), replication)`` preference lists.
    view : HealthView
        The view the batch was routed under.
    """

    node: np.ndarray
    position: np.ndarray
    replicas: np.ndarray
    view: HealthView


class Cluster:
    """Health-aware routing over a placement.

    Parameters
    ----------
    placement
        Any :class:`ringguard.Placement` (``Ring``, ``Ring.ketama``, ...).
    replication
        Replicas per key (the preference list length); 2 is a primary and a standby.
    on_event
        Optional callback receiving every :class:`Event` (also logged on
        ``ringguard.failover``).
    epoch_base
        First view version, then each change adds one. Default: versions follow the clock
        in milliseconds (each change gives ``max(previous + 1, now_ms)``), so records
        written after a restart of the process are newer than those written before it.

    Examples
    --------
    >>> from ringguard import Ring
    >>> from ringguard.failover import Cluster
    >>> c = Cluster(Ring(["a", "b", "c"]), replication=2)
    >>> r = c.route(["order:1", "order:2"])
    >>> c.mark_down(c.nodes[int(r.node[0])], reason="maintenance")
    >>> int(c.route(["order:1"]).position[0])
    1
    """

    def __init__(
        self,
        placement: Placement,
        replication: int = 2,
        *,
        on_event: Callable[[Event], Any] | None = None,
        epoch_base: int | None = None,
    ) -> None:
        self._clocked = epoch_base is None
        if epoch_base is None:
            # Milliseconds since 1970, and every later version at least the clock: a
            # restarted process starts above every version its predecessor used (unless
            # that one made more than 1000 view changes per second just before), so record
            # versions (epoch, seq) keep growing across restarts.
            epoch_base = time.time_ns() // 1_000_000
        if isinstance(epoch_base, bool) or not isinstance(epoch_base, int) or epoch_base < 0:
            raise ValueError("epoch_base: expected an int >= 0")
        if isinstance(replication, bool) or not isinstance(replication, int):
            raise TypeError(f"replication: expected an int, got {type(replication).__name__}")
        nodes = tuple(placement.nodes)
        if not 1 <= replication <= min(len(nodes), 127):
            raise ValueError(
                f"replication: must be between 1 and the node count ({len(nodes)}), "
                f"got {replication}"
            )
        if on_event is not None and not callable(on_event):
            raise TypeError("on_event: expected a callable")
        self._placement = placement
        self._replication = replication
        self._on_event = on_event
        self._lock = threading.Lock()
        self._view = HealthView(epoch_base, nodes, (NodeState.UP,) * len(nodes), (0,) * len(nodes))

    @property
    def placement(self) -> Placement:
        """The placement whose preference lists are routed."""
        return self._placement

    @property
    def replication(self) -> int:
        """Replicas per key."""
        return self._replication

    @property
    def nodes(self) -> tuple[str, ...]:
        """Node names (indices in routes refer to this tuple)."""
        return self._view.nodes

    @property
    def view(self) -> HealthView:
        """The current immutable health view (pin it to route a batch consistently)."""
        return self._view

    @property
    def epoch(self) -> int:
        """Cluster-wide fencing token: the view version, which grows on every change."""
        return self._view.version

    def node_epoch(self, node: str) -> int:
        """Per-node epoch (grows whenever ``node`` stops or starts acting)."""
        v = self._view
        return v.epochs[_index(v.nodes, node)]

    def state(self, node: str) -> NodeState:
        """Current state of ``node``."""
        return self._view.state(node)

    def is_up(self, node: str) -> bool:
        """True if ``node`` currently acts for its keys."""
        return self._view.is_up(node)

    # ---- state changes ------------------------------------------------------------------

    def _set(
        self, node: str, state: NodeState, reason: str, expect: NodeState | None = None
    ) -> Event | None:
        with self._lock:
            v = self._view
            i = _index(v.nodes, node)
            old = v.states[i]
            if expect is not None and old is not expect:
                raise StateChanged(
                    f"{node} is {old.value}, not {expect.value}: {reason or 'state changed'}"
                )
            if old is state:
                return None
            epochs = list(v.epochs)
            if (old in _ACTING) != (state in _ACTING):
                epochs[i] += 1  # the node stops or starts acting: fence older writes
            states = list(v.states)
            states[i] = state
            # Versions follow the clock (milliseconds) when it is ahead, so a restarted
            # process, which starts at the clock, is never behind its predecessor.
            version = (
                max(v.version + 1, time.time_ns() // 1_000_000)
                if self._clocked
                else (v.version + 1)
            )
            self._view = HealthView(version, v.nodes, tuple(states), tuple(epochs))
            kind = {
                NodeState.SUSPECT: "suspect",
                NodeState.DOWN: "down",
                NodeState.CATCHING_UP: "catching_up",
                NodeState.UP: "up",
            }[state]
            event = Event(kind, node, reason, epochs[i], self._view.version, time.monotonic())
        self._emit(event)
        if state is NodeState.DOWN and old in _ACTING:
            self._emit(
                Event(
                    "promote",
                    node,
                    f"standbys of {node} act for its keys",
                    event.epoch,
                    event.view_version,
                    event.time_s,
                )
            )
        return event

    def _emit(self, event: Event) -> None:
        log.info(
            "%s %s (epoch %d, view %d): %s",
            event.kind,
            event.node,
            event.epoch,
            event.view_version,
            event.reason or "-",
        )
        if self._on_event is not None:
            self._on_event(event)

    def mark_suspect(self, node: str, reason: str = "") -> None:
        """Flag ``node`` as suspected (it still acts until marked down)."""
        self._set(node, NodeState.SUSPECT, reason)

    def mark_down(self, node: str, reason: str = "") -> None:
        """Take ``node`` out of routing; its standbys act for its keys."""
        self._set(node, NodeState.DOWN, reason)

    def mark_catching_up(self, node: str, reason: str = "") -> None:
        """``node`` is back and replaying what it missed; it does not act yet."""
        self._set(node, NodeState.CATCHING_UP, reason)

    def mark_up(self, node: str, reason: str = "", *, expect: NodeState | None = None) -> None:
        """``node`` acts for its keys again.

        With ``expect``, the change happens only if the node is still in that state
        (compare-and-set); otherwise :class:`StateChanged` is raised and nothing changes.
        """
        self._set(node, NodeState.UP, reason, expect)

    # ---- routing ------------------------------------------------------------------------

    def route(
        self, keys: Any, *, view: HealthView | None = None, threads: int | None = None
    ) -> Route:
        """Acting node per key: the first replica in its preference list that the view lets
        act, ``-1`` where none does.

        Parameters
        ----------
        keys
            Any key batch accepted by the placement.
        view
            Route under this pinned view (default: the current one, read once).
        """
        v = self._view if view is None else view
        if not isinstance(v, HealthView) or v.nodes != self.nodes:
            raise ValueError("view: not a view of this cluster")
        prefs = np.ascontiguousarray(
            self._placement.replicas(keys, self._replication, threads=threads), dtype=np.int32
        )
        node = np.empty(len(prefs), dtype=np.int32)
        pos = np.empty(len(prefs), dtype=np.int8)
        core.route(prefs, v.acting, node, pos)
        return Route(node, pos, prefs, v)

    def __repr__(self) -> str:
        v = self._view
        states = ", ".join(f"{n}={s.value}" for n, s in zip(v.nodes, v.states, strict=True))
        return f"Cluster(replication={self._replication}, view={v.version}: {states})"
