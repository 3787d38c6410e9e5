"""``ringguard demo``: an online shop's order stream surviving the loss of a node.

Orders are written through a :class:`~ringguard.failover.ReplicatedStore` (replication 2)
over SQLite files, one per node, or (``backend="redis"``) over real ``redis-server``
processes on free loopback ports, started and always stopped by the demo. A backup of
every node is taken early on; midway one node dies and writes go on through its standbys
and the hint log. Then its disk is lost; the node is rebuilt with ``restore_node``: its
snapshot, then the hints and the surviving replicas for what came after. Finally every
acknowledged order is checked on both of its replicas.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backends import Backend, SQLiteBackend
from .backup import BackupRepository
from .failover import Cluster, Event, HintLog, QuorumError, ReplicatedStore
from .placement import Ring

__all__ = ["DemoReport", "RedisUnavailable", "run_demo"]


class RedisUnavailable(RuntimeError):
    """``backend="redis"`` was asked for, but redis-server or redis-py is missing.

    ``missing`` says which: ``"redis-server"`` (a program) or ``"redis-py"`` (the extra).
    """

    def __init__(self, message: str, missing: str) -> None:
        super().__init__(message)
        self.missing = missing


class _SQLiteNodes:
    """Nodes as SQLite files under ``root/nodes``; death = the process closes its file."""

    kind = "sqlite"

    def __init__(self, root: Path, names: list[str]) -> None:
        self.root = root
        (root / "nodes").mkdir(parents=True, exist_ok=True)
        for n in names:  # a fresh run: no data from an earlier one
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path(n)}{suffix}").unlink(missing_ok=True)

    def path(self, name: str) -> Path:
        return self.root / "nodes" / f"{name}.db"

    def open(self, name: str) -> Backend:
        return SQLiteBackend(self.path(name), synchronous="NORMAL")

    def kill(self, name: str, backend: Backend) -> None:
        backend.close()

    def wipe(self, name: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path(name)}{suffix}").unlink(missing_ok=True)

    def describe(self) -> str:
        return "SQLite nodes"

    def close(self) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the redis-server gets SIGKILL if the demo process dies without cleaning up."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _RedisNodes:
    """Nodes as real ``redis-server`` processes on 127.0.0.1 without persistence; death =
    SIGKILL; a lost disk = a fresh, empty server on the same port."""

    kind = "redis"

    def __init__(self, root: Path, names: list[str]) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RedisUnavailable(
                "--backend redis needs redis-server on PATH (e.g. apt-get install redis-server)",
                "redis-server")
        try:
            import redis  # noqa: F401
        except ImportError:
            raise RedisUnavailable(
                "--backend redis needs redis-py: pip install 'ringguard[redis]'",
                "redis-py") from None
        self.exe = exe
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        try:
            for n in names:
                self._start(n)
        except BaseException:
            self.close()
            raise

    def _start(self, name: str) -> None:
        workdir = self.root / "redis" / name
        workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(5):
            port = self.ports[name] if attempt == 0 and name in self.ports else _free_port()
            proc = subprocess.Popen(
                [self.exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "yes"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
            self.procs[name] = proc
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        self.ports[name] = port
                        return
                except OSError:
                    time.sleep(0.05)
            self._stop(name)  # port taken in between, or a slow start: another port
        raise RuntimeError(f"redis-server for {name} did not start")

    def _stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

    def open(self, name: str) -> Backend:
        from .backends import RedisBackend

        return RedisBackend(f"redis://127.0.0.1:{self.ports[name]}/0", timeout_s=2.0)

    def kill(self, name: str, backend: Backend) -> None:
        self._stop(name)  # SIGKILL: the server is gone, connections are refused

    def wipe(self, name: str) -> None:
        self._start(name)  # no persistence: the new server starts empty

    def describe(self) -> str:
        return "redis-server processes on " + ", ".join(
            f"127.0.0.1:{p}" for p in self.ports.values())

    def close(self) -> None:
        for name in list(self.procs):
            self._stop(name)


@dataclass
class DemoReport:
    """What the demo did and found."""

    directory: str
    nodes: list[str]
    victim: str
    backend: str = "sqlite"
    orders_acknowledged: int = 0
    orders_refused: int = 0
    failovers: int = 0
    hints_kept: int = 0
    hints_replayed: int = 0
    records_copied: int = 0
    backup_at: int = 0
    backup_s: float = 0.0
    backup_verified: bool = False
    records_restored: int = 0
    recovery_s: float = 0.0
    write_s: float = 0.0
    verified: int = 0
    lost: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @property
    def orders_per_s(self) -> float:
        return self.orders_acknowledged / self.write_s if self.write_s else 0.0


def _order(i: int, rng: random.Random) -> bytes:
    items = rng.randint(1, 5)
    doc = {"id": i, "customer": rng.randint(1, 50_000), "items": items,
           "total_cents": sum(rng.randint(199, 9999) for _ in range(items))}
    return json.dumps(doc, separators=(",", ":")).encode()


def run_demo(
    directory: str | os.PathLike[str] | None = None,
    *,
    orders: int = 20_000,
    nodes: int = 4,
    batch: int = 500,
    seed: int = 0,
    say: Callable[[str], None] = print,
    progress: Callable[[int, int], None] | None = None,
    backend: str = "sqlite",
) -> DemoReport:
    """Run the demo in ``directory`` (a new temporary one by default).

    ``backend="redis"`` runs the nodes as ``redis-server`` processes on free loopback ports
    (raises :class:`RedisUnavailable` when redis-server or redis-py is missing); they are
    stopped before this returns or raises.

    Examples
    --------
    >>> import tempfile
    >>> rep = run_demo(tempfile.mkdtemp(), orders=1000, say=lambda s: None)
    >>> rep.lost, rep.verified
    ([], 1000)
    """
    if orders < 2 or nodes < 3 or batch < 1:
        raise ValueError("orders must be >= 2, nodes >= 3 and batch >= 1")
    if backend not in ("sqlite", "redis"):
        raise ValueError(f"backend: expected 'sqlite' or 'redis', got {backend!r}")
    root = Path(directory) if directory is not None else Path(
        tempfile.mkdtemp(prefix="ringguard-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    names = [f"db{i + 1}" for i in range(nodes)]
    (root / "hints.db").unlink(missing_ok=True)
    shutil.rmtree(root / "backups", ignore_errors=True)
    farm: Any = _SQLiteNodes(root, names) if backend == "sqlite" else _RedisNodes(root, names)
    try:
        return _run(farm, root, names, orders, batch, seed, say, progress)
    finally:
        farm.close()


def _run(
    farm: Any, root: Path, names: list[str], orders: int, batch: int, seed: int,
    say: Callable[[str], None], progress: Callable[[int, int], None] | None,
) -> DemoReport:
    report = DemoReport(str(root), names, victim=names[1], backend=farm.kind)

    def on_event(e: Event) -> None:
        if e.kind in ("down", "catching_up", "up"):
            report.events.append(f"{e.kind:<11} {e.node}: {e.reason}")
        if e.kind == "down":
            report.failovers += 1

    backends: dict[str, Backend] = {n: farm.open(n) for n in names}
    cluster = Cluster(Ring(names), replication=2, on_event=on_event)
    store = ReplicatedStore(cluster, backends, hints=HintLog(root / "hints.db"))
    try:
        _stream(report, farm, store, backends, root, orders, batch, seed, say, progress)
    finally:
        for b in backends.values():
            b.close()
        store.hints.close()
    return report


def _stream(
    report: DemoReport, farm: Any, store: ReplicatedStore, backends: dict[str, Backend],
    root: Path, orders: int, batch: int, seed: int, say: Callable[[str], None],
    progress: Callable[[int, int], None] | None,
) -> None:
    names = report.nodes
    nodes = len(names)
    cluster = store.cluster
    rng = random.Random(seed)
    acked: dict[str, bytes] = {}
    kill_at = (orders // 2) // batch * batch
    backup_at = (orders * 2 // 5) // batch * batch
    repo = BackupRepository(root / "backups")
    say(f"ringguard demo: an order stream over {nodes} {farm.describe()}, replication 2")
    say(f"  data in {root}")
    t0 = time.perf_counter()
    for start in range(0, orders, batch):
        if start == backup_at:
            tb = time.perf_counter()
            repo.backup(store)  # a snapshot of every node
            report.backup_at, report.backup_s = start, time.perf_counter() - tb
            say(f"  backup of all {nodes} nodes after {start:,} orders")
        if start == kill_at:
            farm.kill(report.victim, backends[report.victim])  # the node dies mid-stream
            say(f"  ! {report.victim} dies after {start:,} orders")
        keys = [f"order:{i:08d}" for i in range(start, min(start + batch, orders))]
        values = [_order(i, rng) for i in range(start, start + len(keys))]
        try:
            store.put_many(keys, values)
            acked.update(zip(keys, values, strict=True))
        except QuorumError as exc:  # not acknowledged: the shop would retry these
            refused = set(exc.keys)
            report.orders_refused += len(refused)
            acked.update((k, v) for k, v in zip(keys, values, strict=True) if k not in refused)
        if progress is not None:
            progress(start + len(keys), orders)
    report.write_s = time.perf_counter() - t0 - report.backup_s
    report.orders_acknowledged = len(acked)
    report.hints_kept = store.hints.pending(report.victim)

    # The machine comes back with an empty disk: rebuild it from replicas and hints.
    backends[report.victim].close()
    farm.wipe(report.victim)
    fresh = farm.open(report.victim)
    backends[report.victim] = fresh
    store.backends[names.index(report.victim)] = fresh
    say(f"  ! {report.victim} returns with an empty disk; restore_node rebuilds it")
    report.backup_verified = repo.verify().ok
    restored = repo.restore_node(store, report.victim)
    rec = restored.recovery
    report.records_restored = restored.records
    report.hints_replayed, report.records_copied = rec.hints_replayed, rec.records_copied
    report.recovery_s = restored.seconds + rec.seconds

    # Every acknowledged order must be on both of its replicas, with its latest value.
    keys = sorted(acked)
    prefs = cluster.placement.replicas(keys, 2)
    for j, name in enumerate(names):
        mine = [keys[i] for i, row in enumerate(prefs.tolist()) if j in row]
        got = backends[name].read([k.encode() for k in mine]).values
        for k, v in zip(mine, got, strict=True):
            if v != acked[k]:
                report.lost.append(k)
    report.verified = len(keys) - len(set(report.lost))


def print_report(rep: DemoReport, say: Callable[[str], None] = print) -> None:
    """The demo's closing report."""
    say("")
    for line in rep.events:
        say(f"  event  {line}")
    rows = [
        ("orders acknowledged", f"{rep.orders_acknowledged:,}"),
        ("orders refused (quorum)", f"{rep.orders_refused:,}"),
        ("failovers", f"{rep.failovers}"),
        (f"backup (after {rep.backup_at:,} orders)",
         f"{rep.backup_s:.2f} s, verified: {'yes' if rep.backup_verified else 'NO'}"),
        (f"hints kept for {rep.victim}", f"{rep.hints_kept:,}"),
        ("records restored from snapshot", f"{rep.records_restored:,}"),
        ("hints replayed", f"{rep.hints_replayed:,}"),
        ("records copied from replicas", f"{rep.records_copied:,}"),
        ("time to recover", f"{rep.recovery_s:.2f} s"),
        ("write throughput", f"{rep.orders_per_s:,.0f} orders/s"),
        ("verified on both replicas", f"{rep.verified:,} / {rep.orders_acknowledged:,}"),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        say(f"  {label:<{width}}  {value}")
    say(f"  {len(set(rep.lost))} orders lost" if rep.lost else "  0 orders lost")
