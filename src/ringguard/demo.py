"""``ringguard demo``: an online shop's order stream surviving the loss of a node.

Orders are written through a :class:`~ringguard.failover.ReplicatedStore` (replication 2)
over SQLite files, one per node. A backup of every node is taken early on; midway one node
dies and writes go on through its standbys and the hint log. Then its disk is lost; the
node is rebuilt with ``restore_node``: its snapshot, then the hints and the surviving
replicas for what came after. Finally every acknowledged order is checked on both of its
replicas.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .backends import Backend, SQLiteBackend
from .backup import BackupRepository
from .failover import Cluster, Event, HintLog, QuorumError, ReplicatedStore
from .placement import Ring

__all__ = ["DemoReport", "run_demo"]


@dataclass
class DemoReport:
    """What the demo did and found."""

    directory: str
    nodes: list[str]
    victim: str
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
) -> DemoReport:
    """Run the demo in ``directory`` (a new temporary one by default).

    Examples
    --------
    >>> import tempfile
    >>> rep = run_demo(tempfile.mkdtemp(), orders=1000, say=lambda s: None)
    >>> rep.lost, rep.verified
    ([], 1000)
    """
    if orders < 2 or nodes < 3 or batch < 1:
        raise ValueError("orders must be >= 2, nodes >= 3 and batch >= 1")
    root = Path(directory) if directory is not None else Path(
        tempfile.mkdtemp(prefix="ringguard-demo-"))
    (root / "nodes").mkdir(parents=True, exist_ok=True)
    names = [f"db{i + 1}" for i in range(nodes)]
    for n in names:  # a fresh run: no data from an earlier one
        (root / "nodes" / f"{n}.db").unlink(missing_ok=True)
    (root / "hints.db").unlink(missing_ok=True)
    import shutil

    shutil.rmtree(root / "backups", ignore_errors=True)
    report = DemoReport(str(root), names, victim=names[1])

    def on_event(e: Event) -> None:
        if e.kind in ("down", "catching_up", "up"):
            report.events.append(f"{e.kind:<11} {e.node}: {e.reason}")
        if e.kind == "down":
            report.failovers += 1

    backends: dict[str, Backend] = {
        n: SQLiteBackend(root / "nodes" / f"{n}.db", synchronous="NORMAL") for n in names}
    cluster = Cluster(Ring(names), replication=2, on_event=on_event)
    store = ReplicatedStore(cluster, backends, hints=HintLog(root / "hints.db"))
    rng = random.Random(seed)
    acked: dict[str, bytes] = {}
    kill_at = (orders // 2) // batch * batch
    backup_at = (orders * 2 // 5) // batch * batch
    repo = BackupRepository(root / "backups")
    say(f"ringguard demo: an order stream over {nodes} SQLite nodes, replication 2")
    say(f"  data in {root}")
    t0 = time.perf_counter()
    for start in range(0, orders, batch):
        if start == backup_at:
            tb = time.perf_counter()
            repo.backup(store)  # a snapshot of every node
            report.backup_at, report.backup_s = start, time.perf_counter() - tb
            say(f"  backup of all {nodes} nodes after {start:,} orders")
        if start == kill_at:
            backends[report.victim].close()  # the node's process dies mid-stream
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
    victim_path = root / "nodes" / f"{report.victim}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{victim_path}{suffix}").unlink(missing_ok=True)
    fresh = SQLiteBackend(victim_path, synchronous="NORMAL")
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
    for b in backends.values():
        b.close()
    store.hints.close()
    return report


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


def terminal_progress(done: int, total: int) -> None:
    """A one-line progress bar on stderr, only when it is a terminal."""
    if not sys.stderr.isatty():
        return
    width = 30
    filled = int(width * done / total)
    sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} orders")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()
