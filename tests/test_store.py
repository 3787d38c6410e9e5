"""Backends and the replicated store: last-writer-wins, hints, quorum, recovery."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from conftest import scaled
from ringguard import Ring
from ringguard.backends import (
    Backend,
    BackendError,
    MemoryBackend,
    Records,
    SQLiteBackend,
    StaleEpochError,
)
from ringguard.backends.base import DIGEST_BITS
from ringguard.failover import (
    Cluster,
    HintCorrupted,
    HintLog,
    NodeState,
    NoHealthyReplica,
    QuorumError,
    ReplicatedStore,
)
from ringguard.reference.ring import xxh64 as ref_xxh64

NODES = ["n0", "n1", "n2", "n3"]


@pytest.fixture(params=["memory", "sqlite"])
def make_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], Backend]]:
    made: list[Backend] = []

    def make(name: str) -> Backend:
        b: Backend = (
            MemoryBackend(name)
            if request.param == "memory"
            else SQLiteBackend(tmp_path / f"{name}.db")
        )
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def test_backend_last_writer_wins(make_backend: Callable[[str], Backend]) -> None:
    b = make_backend("x")
    assert b.write(Records.build([b"a", b"b"], [b"1", b"2"], 1, [5, 5])) == 2
    assert b.write(Records.build([b"a"], [b"old"], 1, 4)) == 0  # older: ignored
    assert b.write(Records.build([b"a"], [b"same"], 1, 5)) == 0  # equal: ignored (idempotent)
    assert b.write(Records.build([b"a"], [b"new"], 2, 0)) == 1  # newer epoch wins
    assert b.write(Records.build([b"b"], [None], 1, 6)) == 1  # tombstone
    got = b.read([b"a", b"b", b"zz"])
    assert got.values == [b"new", None, None]
    assert got.epochs.tolist() == [2, 1, -1] and got.seqs.tolist() == [0, 6, -1]
    assert b.count() == 2
    b.ping()


def test_backend_scan_returns_everything_in_key_hash_order(
    make_backend: Callable[[str], Backend],
) -> None:
    b = make_backend("x")
    keys = [f"k{i:05d}".encode() for i in range(2500)]
    b.write(Records.build(keys[::-1], [k + b"!" for k in keys[::-1]], 0, 1))
    seen = [k for recs in b.scan(batch_size=700) for k in recs.keys]
    assert seen == sorted(keys, key=lambda k: ref_xxh64(k, 0))


def test_records_validate_their_input() -> None:
    with pytest.raises(TypeError, match=r"keys\[1\]"):
        Records.build([b"a", "b"], [b"", b""], 0, 0)  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"values\[0\]"):
        Records.build([b"a"], ["x"], 0, 0)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="versions"):
        Records.build([b"a"], [b"x"], -1, 0)
    # The fast (C-level) checks hand over to the loop that names the first culprit.
    with pytest.raises(ValueError, match=r"keys\[2\]: longer"):
        Records.build([b"a", b"b", b"k" * (64 * 1024 + 1)], [b"", b"", b""], 0, 0)
    with pytest.raises(TypeError, match=r"values\[1\]: expected bytes or None, got int"):
        Records.build([b"a", b"b", b"c"], [None, 5, b""], 0, 0)  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"keys\[0\]: expected bytes, got str"):
        Records.build(["a", b"b"], [b"", b""], 0, 0)  # type: ignore[list-item]

    class Blob(bytes):
        pass

    # bytes subclasses and tombstones pass (the slow path accepts what the fast one skips).
    r = Records.build([Blob(b"a"), b"b"], [Blob(b"x"), None], 0, [1, 2])
    assert r.values == [b"x", None] and r.take([1, 0]).keys == [b"b", b"a"]
    assert r.take([1]).values == [None] and len(r.take([])) == 0


def test_store_keys_str_bytes_and_mixed() -> None:
    store = make_store({n: MemoryBackend(n) for n in NODES})
    store.put_many(["a", "é"], [b"1", b"2"])
    store.put_many([b"b", "c"], [b"3", b"4"])
    assert store.get_many([b"a", "\u00e9".encode(), "b", b"c"]) == [b"1", b"2", b"3", b"4"]
    with pytest.raises(TypeError, match=r"keys\[1\]: store keys must be str or bytes"):
        store.put_many(["a", 7], [b"1", b"2"])


def test_sqlite_is_durable_and_reports_a_lost_file(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    with SQLiteBackend(path) as b:
        b.write(Records.build([b"k"], [b"v"], 3, 9))
    with SQLiteBackend(path) as b:
        assert b.read([b"k"]).values == [b"v"]
        os.remove(path)
        with pytest.raises(BackendError, match="gone"):
            b.read([b"k"])
    b.close()
    with pytest.raises(BackendError, match="closed"):
        b.ping()


def make_store(backends: Mapping[str, Backend], replication: int = 2, **kw: Any) -> ReplicatedStore:
    return ReplicatedStore(Cluster(Ring(list(backends), vnodes=64), replication), backends, **kw)


def test_put_get_delete_round_trip() -> None:
    store = make_store({n: MemoryBackend(n) for n in NODES})
    keys = [f"order:{i}" for i in range(3000)]
    assert store.put_many(keys, [k.encode() for k in keys]) == 3000
    assert store.get_many(keys) == [k.encode() for k in keys]
    store.delete_many(keys[:10])
    assert store.get_many(keys[:12]) == [None] * 10 + [k.encode() for k in keys[10:12]]
    # Every record lives on exactly its two replicas.
    prefs = store.cluster.placement.replicas(keys, 2)
    for j, b in enumerate(store.backends):
        expected = {keys[i] for i in np.flatnonzero((prefs == j).any(axis=1)).tolist()}
        assert {k.decode() for recs in b.scan() for k in recs.keys} == expected


def test_a_dead_primary_costs_no_acknowledged_write(tmp_path: Path) -> None:
    backends = {n: MemoryBackend(n) for n in NODES}
    hints = HintLog(tmp_path / "hints.db")
    store = make_store(backends, hints=hints)
    keys = [f"cart:{i}" for i in range(4000)]
    store.put_many(keys[:2000], [b"v1"] * 2000)
    backends["n1"].fail()  # the machine dies; the store notices on its next write
    assert store.put_many(keys, [b"v2"] * 4000) == 4000
    assert store.cluster.state("n1") is NodeState.DOWN
    assert hints.pending("n1") > 0
    assert store.get_many(keys) == [b"v2"] * 4000
    backends["n1"].heal()
    report = store.recover("n1")
    assert report.hints_replayed > 0 and hints.pending("n1") == 0
    assert store.cluster.state("n1") is NodeState.UP
    # n1 now holds the latest version of every key it is a replica of.
    prefs = store.cluster.placement.replicas(keys, 2)
    mine = [keys[i].encode() for i in np.flatnonzero((prefs == 1).any(axis=1)).tolist()]
    assert backends["n1"].read(mine).values == [b"v2"] * len(mine)


def test_inline_and_threaded_backends_mixed(tmp_path: Path) -> None:
    """Expected: SQLite nodes (parallel_writes False) are written in the calling thread and
    Memory nodes on the pool, in one put_many; a SQLite node whose file is gone is marked
    down and hinted while every key is still acknowledged and readable."""
    import threading

    seen: dict[str, set[str]] = {}

    class Spy(SQLiteBackend):
        def write(self, records: Records, *, fenced: bool = False) -> int:
            seen.setdefault(self.name, set()).add(threading.current_thread().name)
            return super().write(records, fenced=fenced)

    backends: dict[str, Backend] = {
        "n0": Spy(tmp_path / "n0.db"), "n1": MemoryBackend("n1"),
        "n2": Spy(tmp_path / "n2.db"), "n3": MemoryBackend("n3"),
    }
    assert not backends["n0"].parallel_writes and backends["n1"].parallel_writes
    hints = HintLog()
    store = make_store(backends, hints=hints)
    keys = [f"cart:{i}" for i in range(2000)]
    assert store.put_many(keys, [b"v1"] * 2000) == 2000
    assert set(seen) == {"n0.db", "n2.db"}
    assert seen["n0.db"] == seen["n2.db"] == {threading.current_thread().name}
    os.remove(tmp_path / "n2.db")  # its disk is lost: the next write to it fails
    assert store.put_many(keys, [b"v2"] * 2000) == 2000
    assert store.cluster.state("n2") is NodeState.DOWN and hints.pending("n2") > 0
    assert store.get_many(keys) == [b"v2"] * 2000
    store.close()
    for b in backends.values():
        b.close()


def test_both_replicas_down_fails_exactly_those_keys() -> None:
    backends = {n: MemoryBackend(n) for n in NODES}
    store = make_store(backends)
    keys = [f"pay:{i}" for i in range(3000)]
    store.cluster.mark_down("n0")
    store.cluster.mark_down("n2")
    prefs = store.cluster.placement.replicas(keys, 2)
    dead = {i for i, row in enumerate(prefs.tolist()) if set(row) <= {0, 2}}
    assert dead  # with 4 nodes some keys live only on n0 and n2
    with pytest.raises(QuorumError) as err:
        store.put_many(keys, [b"x"] * len(keys))
    assert sorted(err.value.keys) == sorted(keys[i] for i in dead)
    assert err.value.acked == len(keys) - len(dead)
    alive = [k for i, k in enumerate(keys) if i not in dead]
    assert store.get_many(alive) == [b"x"] * len(alive)
    with pytest.raises(NoHealthyReplica) as nh:
        store.get_many(keys)
    assert sorted(nh.value.keys) == sorted(keys[i] for i in dead)


def test_wiped_sqlite_node_is_rebuilt_from_replicas(tmp_path: Path) -> None:
    backends: dict[str, Backend] = {n: SQLiteBackend(tmp_path / f"{n}.db") for n in NODES}
    store = make_store(backends)
    keys = [f"order:{i}" for i in range(3000)]
    store.put_many(keys, [f"v{i}".encode() for i in range(3000)])
    before = {
        k: v for recs in backends["n3"].scan() for k, v in zip(recs.keys, recs.values, strict=True)
    }
    digests_before = backends["n3"].range_digests(DIGEST_BITS)
    store.cluster.mark_down("n3", reason="disk lost")
    backends["n3"].close()
    os.remove(tmp_path / "n3.db")
    backends["n3"] = SQLiteBackend(tmp_path / "n3.db")  # an empty disk
    store.backends[3] = backends["n3"]
    report = store.recover("n3")
    assert report.records_copied == len(before)
    after = {
        k: v for recs in backends["n3"].scan() for k, v in zip(recs.keys, recs.values, strict=True)
    }
    assert after == before
    for x, y in zip(backends["n3"].range_digests(DIGEST_BITS), digests_before, strict=True):
        np.testing.assert_array_equal(x, y)  # versions included: an exact copy
    assert report.ranges_scanned > 0 and report.ranges_copied > 0
    print(f"OBSERVED disk loss: rebuilt {report.records_copied} records from replicas, "
          f"{report.ranges_scanned} of {report.ranges_compared} compared ranges scanned, "
          f"range digests equal to before the loss")
    for b in backends.values():
        b.close()


def test_hint_log_survives_restart_and_detects_damage(tmp_path: Path) -> None:
    path = tmp_path / "hints.db"
    log = HintLog(path)
    log.append("n1", Records.build([b"a", b"b"], [b"1", None], 4, [1, 2]))
    log.close()
    log = HintLog(path)
    assert log.pending("n1") == 2
    db = sqlite3.connect(path)
    db.execute("UPDATE hints SET value = ? WHERE key = ?", (b"X", b"a"))
    db.commit()
    db.close()
    target = MemoryBackend()
    with pytest.raises(HintCorrupted, match="CRC"):
        log.replay("n1", target)
    assert target.count() == 0  # nothing of a damaged batch is written
    log.close()


def test_store_arguments_are_checked() -> None:
    backends = {n: MemoryBackend(n) for n in NODES}
    cluster = Cluster(Ring(NODES), 2)
    with pytest.raises(ValueError, match="no backend for node 'n3'"):
        ReplicatedStore(cluster, {n: backends[n] for n in NODES[:3]})
    with pytest.raises(ValueError, match="write_quorum"):
        ReplicatedStore(cluster, backends, write_quorum=3)
    store = ReplicatedStore(cluster, backends)
    with pytest.raises(TypeError, match=r"keys\[1\]"):
        store.put_many(["a", 7], [b"", b""])
    with pytest.raises(ValueError, match="values"):
        store.put_many(["a"], [])


class StoreMachine(RuleBasedStateMachine):
    """Random writes, node deaths and recoveries: no acknowledged write is ever lost."""

    def __init__(self) -> None:
        super().__init__()
        self.backends = {n: MemoryBackend(n) for n in NODES}
        self.store = make_store(self.backends)
        self.model: dict[str, bytes | None] = {}
        self.down: set[str] = set()
        self.version = 0

    @rule(
        ids=st.lists(st.integers(0, 40), min_size=1, max_size=15, unique=True), delete=st.booleans()
    )
    def write(self, ids: list[int], delete: bool) -> None:
        self.version += 1
        keys = [f"k{i}" for i in ids]
        values: list[bytes | None] = [
            None if delete else f"{k}@{self.version}".encode() for k in keys
        ]
        try:
            self.store.put_many(keys, values)
        except QuorumError as exc:
            failed = set(exc.keys)
            for k, v in zip(keys, values, strict=True):
                if k not in failed:
                    self.model[k] = v
                else:
                    self.model.pop(k, "unknown")  # may or may not be stored: forget it
            return
        self.model.update(zip(keys, values, strict=True))

    @precondition(lambda self: len(self.down) < 2)
    @rule(node=st.sampled_from(NODES))
    def kill(self, node: str) -> None:
        self.backends[node].fail()
        self.store.cluster.mark_down(node, reason="killed")
        self.down.add(node)

    @precondition(lambda self: bool(self.down))
    @rule(data=st.data())
    def recover(self, data: st.DataObject) -> None:
        node = data.draw(st.sampled_from(sorted(self.down)))
        self.backends[node].heal()
        self.store.recover(node)
        self.down.discard(node)

    @invariant()
    def acknowledged_writes_are_readable(self) -> None:
        keys = sorted(self.model)
        if not keys:
            return
        try:
            got = self.store.get_many(keys)
        except NoHealthyReplica as exc:
            unreadable = set(exc.keys)
            keys = [k for k in keys if k not in unreadable]
            got = self.store.get_many(keys) if keys else []
        assert got == [self.model[k] for k in keys]


StoreMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
test_store_state_machine = StoreMachine.TestCase


def test_f9_hints_survive_a_restart_of_the_writer(tmp_path: Path) -> None:
    backends = {n: SQLiteBackend(tmp_path / f"{n}.db") for n in NODES}
    store = make_store(backends, hints=HintLog(tmp_path / "hints.db"))
    keys = [f"order:{i}" for i in range(1000)]
    store.cluster.mark_down("n2")
    store.put_many(keys, [b"v"] * len(keys))
    pending = store.hints.pending("n2")
    assert pending > 0
    store.hints.close()  # the writer process goes away
    del store
    again = make_store(backends, hints=HintLog(tmp_path / "hints.db"))  # and restarts
    assert again.hints.pending("n2") == pending
    replayed = again.recover("n2").hints_replayed
    assert replayed == pending
    print(f"OBSERVED F9: {pending} hints survived the writer's restart, {replayed} replayed")
    prefs = again.cluster.placement.replicas(keys, 2)
    mine = [keys[i].encode() for i in np.flatnonzero((prefs == 2).any(axis=1)).tolist()]
    assert backends["n2"].read(mine).values == [b"v"] * len(mine)
    for b in backends.values():
        b.close()


def test_writes_after_a_restart_of_the_writer_win(tmp_path: Path) -> None:
    """Versions keep growing across processes: a restarted writer is not 'older'."""
    backends = {n: SQLiteBackend(tmp_path / f"{n}.db") for n in NODES}
    first = make_store(backends)
    for n in NODES:  # many view changes in the first process
        first.cluster.mark_down(n)
        first.cluster.mark_up(n)
    first.put_many(["order:1"], [b"old"])
    time.sleep(0.02)  # a restart takes longer than the 8 view changes above
    second = make_store(backends)  # a new process: a new Cluster
    second.put_many(["order:1"], [b"new"])
    assert second.get_many(["order:1"]) == [b"new"]
    assert first.get_many(["order:1"]) == [b"new"]
    for b in backends.values():
        b.close()


def test_fencing_refuses_stale_epochs(make_backend: Callable[[str], Backend]) -> None:
    b = make_backend("x")
    assert b.fence() == 0
    b.set_fence(10)
    b.set_fence(5)  # never lowers
    assert b.fence() == 10
    with pytest.raises(StaleEpochError, match="fence"):
        b.write(Records.build([b"a", b"b"], [b"1", b"2"], [10, 9], 1), fenced=True)
    assert b.read([b"a", b"b"]).values == [None, None]  # nothing of the batch written
    assert b.write(Records.build([b"a"], [b"1"], 9, 1)) == 1  # replays are not fenced
    assert b.write(Records.build([b"b"], [b"2"], 10, 1), fenced=True) == 1


class CountingBackend(MemoryBackend):
    """Counts the fenced writes it refused."""

    refused = 0

    def write(self, records: Records, *, fenced: bool = False) -> int:
        try:
            return super().write(records, fenced=fenced)
        except StaleEpochError:
            self.refused += 1
            raise


def test_a_batch_routed_before_a_return_is_fenced_off() -> None:
    backends = {n: CountingBackend(n) for n in NODES}
    store = make_store(backends)
    keys = [f"k{i}" for i in range(500)]
    before = store.cluster.view  # a slow writer pins this view...
    store.cluster.mark_down("n1")
    store.recover("n1")  # ...while n1 fails over and returns (fence = new epoch)
    assert backends["n1"].fence() > before.version
    assert store.put_many(keys, [b"late"] * len(keys), view=before) == len(keys)
    refused = backends["n1"].refused
    assert refused >= 1  # n1 refused its part of the stale batch (one call per replica column)...
    assert store.hints.pending("n1") == 0  # ...which went through the hint log instead
    assert store.get_many(keys) == [b"late"] * len(keys)
    fresh = store.put_many(keys, [b"now"] * len(keys))
    assert fresh == len(keys) and backends["n1"].refused == refused  # fresh writes pass


# ---- digest-driven anti-entropy --------------------------------------------------------


class RangeSpy(MemoryBackend):
    """Records the finest ranges (2**DIGEST_BITS) whose records scan_range returned, and how many
    records it returned."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.scanned: set[int] = set()
        self.records_read = 0

    def scan_range(self, lo: int, hi: int, batch_size: int = 10_000) -> Iterator[Records]:
        for recs in super().scan_range(lo, hi, batch_size):
            self.records_read += len(recs)
            self.scanned |= _ranges_of(recs.keys)
            yield recs

    def reset(self) -> None:
        self.scanned = set()
        self.records_read = 0


def _ranges_of(keys: list[bytes]) -> set[int]:
    return {ref_xxh64(k, 0) >> (64 - DIGEST_BITS) for k in keys}


def test_recover_scans_only_ranges_whose_digests_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    from ringguard.failover import store as store_module
    from ringguard.failover.ranges import range_owners

    # Read across no gap holding records, so the records read show exactly which ranges
    # were scanned (by default small gaps are read through to save calls).
    monkeypatch.setattr(store_module, "_GAP_RECORDS", 0)
    backends = {n: RangeSpy(n) for n in NODES}
    store = make_store(backends)
    n_keys = scaled(20_000, 2_000)
    keys = [f"order:{i}" for i in range(n_keys)]
    store.put_many(keys, [b"v1"] * n_keys)
    owners = range_owners(store.cluster.placement, 2)
    assert owners is not None
    mixed = set(np.flatnonzero(~owners.pure).tolist())

    # In sync: nothing copied, and no range that both should hold in full is scanned.
    store.cluster.mark_down("n1")
    report = store.recover("n1")
    assert report.records_copied == report.records_pushed == report.ranges_copied == 0
    scanned = set().union(*(b.scanned for b in backends.values()))
    assert scanned <= mixed
    assert report.ranges_scanned <= 3 * len(mixed)  # n1 against each of the 3 others
    read = sum(b.records_read for b in backends.values())
    assert read < 0.1 * 2 * n_keys  # far from a full scan of the replicas

    # Writes n1 missed without a hint (lost in flight) and writes only n1 got.
    prefs = store.cluster.placement.replicas(keys, 2)
    h = [ref_xxh64(k.encode(), 0) >> (64 - DIGEST_BITS) for k in keys]
    shared = [i for i in range(n_keys) if set(prefs[i].tolist()) == {1, 2} and owners.pure[h[i]]]
    lost, only_n1 = shared[:5], shared[5:8]
    newer = Records.build([keys[i].encode() for i in lost], [b"v2"] * 5, 2**50, 1)
    backends["n2"].write(newer)
    ahead = Records.build([keys[i].encode() for i in only_n1], [b"v3"] * 3, 2**50, 2)
    backends["n1"].write(ahead)
    for b in backends.values():
        b.reset()
    store.cluster.mark_down("n1")
    report = store.recover("n1")
    assert report.records_copied == 5 and report.records_pushed == 3
    touched = _ranges_of(newer.keys + ahead.keys)
    assert report.ranges_copied == len(touched)
    # Pure ranges scanned are exactly those holding the changed keys (n1 vs n2).
    pure_scanned = (backends["n1"].scanned | backends["n2"].scanned) - mixed
    assert pure_scanned == touched
    assert backends["n1"].read(newer.keys).values == [b"v2"] * 5
    assert backends["n2"].read(ahead.keys).values == [b"v3"] * 3
    assert store.get_many([keys[i] for i in lost + only_n1]) == [b"v2"] * 5 + [b"v3"] * 3
    # Replicas of the shared ranges now agree digest for digest.
    co = owners.co_owned(1, 2)
    d1, d2 = backends["n1"].range_digests(DIGEST_BITS), backends["n2"].range_digests(DIGEST_BITS)
    np.testing.assert_array_equal(d1[1][co], d2[1][co])


@pytest.mark.parametrize("placement", ["maglev", "pairs", "zones"])
def test_recover_without_a_range_map_or_with_pairs_still_converges(placement: str) -> None:
    from ringguard import Maglev

    backends = {n: MemoryBackend(n) for n in NODES}
    if placement == "maglev":
        p: Any = Maglev(NODES)
    elif placement == "pairs":
        p = Ring(NODES, vnodes=64, pairs=[("n0", "n2"), ("n1", "n3")])
    else:
        p = Ring(NODES, vnodes=64, zones={"n0": "a", "n1": "b", "n2": "a", "n3": "b"})
    store = ReplicatedStore(Cluster(p, 2), backends)
    keys = [f"k{i}".encode() for i in range(3000)]
    store.put_many(keys, [b"v"] * len(keys))
    backends["n1"].wipe()
    store.cluster.mark_down("n1")
    report = store.recover("n1")
    prefs = p.replicas(keys, 2)
    mine = [keys[i] for i in np.flatnonzero((prefs == 1).any(axis=1)).tolist()]
    assert report.records_copied == len(mine) > 0
    assert backends["n1"].read(mine).values == [b"v"] * len(mine)
    assert backends["n1"].count() == len(mine)


def test_rebuilding_a_wiped_node_reads_in_bounded_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Expected: rebuilding a wiped node with a small batch size copies every record it
    should hold, yet no single scan of a replica returns more than _RUN_BATCHES batches
    plus one finest range's records (the runs are cut, memory stays bounded)."""
    from ringguard.failover import store as store_module

    calls: list[int] = []

    class Counting(MemoryBackend):
        def scan_range(self, lo: int, hi: int, batch_size: int = 10_000) -> Iterator[Records]:
            got = list(super().scan_range(lo, hi, batch_size))
            calls.append(sum(map(len, got)))
            return iter(got)

    backends = {n: Counting(n) for n in NODES}
    store = make_store(backends)
    keys = [f"k{i}".encode() for i in range(scaled(6000, 2000))]
    store.put_many(keys, [b"v"] * len(keys))
    backends["n1"].wipe()
    store.cluster.mark_down("n1")
    batch = 50
    report = store.recover("n1", batch_size=batch)
    mine = [k for k, p in zip(keys, store.cluster.placement.replicas(keys, 2), strict=True)
            if 1 in p.tolist()]
    assert report.records_copied == len(mine) == backends["n1"].count()
    assert backends["n1"].read(mine).values == [b"v"] * len(mine)
    per_range = np.bincount(
        [ref_xxh64(k, 0) >> (64 - DIGEST_BITS) for k in keys], minlength=2**DIGEST_BITS
    ).max()
    assert len(calls) > len(keys) // (store_module._RUN_BATCHES * batch)
    assert max(calls) <= store_module._RUN_BATCHES * batch + 2 * per_range
