"""Redis Cluster slots: redis_slot, RedisSlots, against vectors, the reference twin and a real
redis-server started with --cluster-enabled yes."""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import ringguard
from ringguard import InvalidPlacementError, RedisSlots, from_json, redis_slot
from ringguard import reference as ref
from ringguard._backend import core

FAST = ringguard.BACKEND == "c"

# ---- vectors -------------------------------------------------------------------------------

# CRC16-XMODEM check value (the Redis Cluster spec: "123456789" -> 0x31C3) and slots that
# the Redis documentation prints for CLUSTER KEYSLOT.
GOLDEN_SLOTS = [
    ("foo", 12182),
    ("bar", 5061),
    ("somekey", 11058),
    ("foo{hash_tag}", 2515),
    ("{hash_tag}bar", 2515),
    ("{user1000}.following", 3443),
    ("{user1000}.followers", 3443),
]

# Hash tag edge cases, each with the bytes Redis hashes (cluster-spec, "Hash tags").
TAG_CASES = [
    (b"{user1000}.following", b"user1000"),
    (b"foo{}{bar}", b"foo{}{bar}"),  # first { then } immediately: whole key
    (b"foo{{bar}}zap", b"{bar"),  # the tag is between the first { and the first } after it
    (b"foo{bar}{zap}", b"bar"),  # only the first tag counts
    (b"{}", b"{}"),
    (b"{", b"{"),
    (b"}", b"}"),
    (b"}{a}", b"a"),  # a } before the first { is ignored
    (b"x{a", b"x{a"),
    (b"", b""),
    (b"{\x00}", b"\x00"),
    (b"a{b}c{d}e", b"b"),
]


def test_crc16_check_value() -> None:
    assert core.crc16(b"123456789") == 0x31C3
    assert ref.crc16(b"123456789") == 0x31C3
    assert core.crc16(b"") == 0


def test_crc16_tables_match_the_bitwise_definition() -> None:
    rng = random.Random(16)
    for length in range(0, 70):
        data = bytes(rng.randrange(256) for _ in range(length))
        assert core.crc16(data) == ref.crc16(data), length
    for b in range(256):  # every table entry of every slice is reached
        for prefix in (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00"):
            data = bytes([b]) + prefix
            assert core.crc16(data) == ref.crc16(data)


@pytest.mark.parametrize("key, slot", GOLDEN_SLOTS)
def test_golden_slots(key: str, slot: int) -> None:
    assert redis_slot(key).tolist() == [slot]
    assert redis_slot(key.encode()).tolist() == [slot]
    assert ref.redis_slot([key]).tolist() == [slot]
    assert core.redis_slot_bytes(key.encode()) == slot


@pytest.mark.parametrize("key, hashed", TAG_CASES)
def test_hash_tag_rule(key: bytes, hashed: bytes) -> None:
    expected = ref.crc16(hashed) & 16383
    assert ref.key_slot(key) == expected
    assert core.redis_slot_bytes(key) == expected
    assert redis_slot([key]).tolist() == [expected]
    # The same key in every layout: fixed-width S (no trailing NULs in these), object, arrow.
    if not key.endswith(b"\x00"):
        assert redis_slot(np.array([key, b"pad-to-width-xx"], dtype="S")).tolist()[0] == expected


def test_integer_keys_hash_their_decimal_text() -> None:
    assert redis_slot([7, 123456789]).tolist() == redis_slot(["7", "123456789"]).tolist()
    assert redis_slot(np.array([-1, -(2**63)], dtype=np.int64)).tolist() == \
        redis_slot(["-1", str(-(2**63))]).tolist()
    assert redis_slot(np.array([2**64 - 1], dtype=np.uint64)).tolist() == \
        redis_slot(["18446744073709551615"]).tolist()
    assert redis_slot(np.int64(-5)).tolist() == redis_slot("-5").tolist()


# ---- parity over every key layout ----------------------------------------------------------


def _random_keys(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        base = "".join(rng.choice("ab{}:xyzé0") for _ in range(rng.randrange(0, 14)))
        if rng.random() < 0.3:
            base = f"{{user{rng.randrange(1000)}}}:{base}"
        out.append(base)
    return out


def test_parity_over_layouts() -> None:
    pa = pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    rng = random.Random(3)
    keys = _random_keys(rng, 3000 if FAST else 600)
    expected = ref.redis_slot(keys)
    layouts: list[Any] = [
        keys,
        tuple(keys),
        [k.encode() for k in keys],
        np.array(keys),  # U
        np.array(keys, dtype=object),
        pa.array(keys),
        pa.array(keys, type=pa.large_string()),
        pa.chunked_array([keys[:100], keys[100:]]),
        pd.Series(keys),
    ]
    for layout in layouts:
        assert np.array_equal(redis_slot(layout), expected), type(layout)
    s_keys = [k.encode() for k in keys if k]  # NumPy S drops trailing NULs; none here
    assert np.array_equal(redis_slot(np.array(s_keys, dtype="S")), ref.redis_slot(s_keys))
    ints = np.array([rng.randrange(-(2**63), 2**63) for _ in range(500)], dtype=np.int64)
    assert np.array_equal(redis_slot(ints), ref.redis_slot(ints))
    assert np.array_equal(redis_slot(ints.view(np.uint64)), ref.redis_slot(ints.view(np.uint64)))
    assert np.array_equal(redis_slot(pa.array(ints)), ref.redis_slot(ints))


def test_threads_and_out() -> None:
    n = 100_000 if FAST else 3000
    keys = np.array([f"k{i}" for i in range(n)], dtype="S")
    one = redis_slot(keys)
    assert np.array_equal(redis_slot(keys, threads=4), one)
    out = np.zeros(n, dtype=np.uint16)
    assert redis_slot(keys, out=out) is out
    assert np.array_equal(out, one)
    assert one.dtype == np.uint16 and one.max() < 16384


def test_empty_batches() -> None:
    empties: list[Any] = [[], np.array([], dtype="S3"), np.array([], dtype=np.int64), ()]
    for empty in empties:
        r = redis_slot(empty)
        assert r.shape == (0,) and r.dtype == np.uint16
    rs = RedisSlots.even(["a", "b"])
    assert rs.assign([]).shape == (0,)
    assert rs.replicas([], 2).shape == (0, 2)


def test_bad_inputs() -> None:
    with pytest.raises(TypeError, match=r"keys\[1\]"):
        redis_slot(["a", 1.5])
    with pytest.raises(TypeError, match=r"keys\[2\]: mixed"):
        redis_slot(["a", "b", 3])
    with pytest.raises(TypeError, match=r"keys\[0\]"):
        redis_slot([None])
    with pytest.raises(TypeError, match="float64"):
        redis_slot(np.array([1.0]))
    with pytest.raises(ValueError, match=r"keys\[1\]"):
        redis_slot(["ok", "\ud800"])
    with pytest.raises(ValueError, match="out"):
        redis_slot(["a"], out=np.zeros(2, dtype=np.uint16))
    with pytest.raises(ValueError, match="out"):
        redis_slot(["a"], out=np.zeros(1, dtype=np.int32))
    with pytest.raises(ValueError, match="threads"):
        redis_slot(["a"], threads=0)


def test_inputs_are_not_modified_and_read_only_arrays_work() -> None:
    keys = np.array([b"{a}1", b"b2"], dtype="S")
    keys.flags.writeable = False
    before = keys.copy()
    redis_slot(keys)
    assert np.array_equal(keys, before)


@settings(max_examples=200 if FAST else 50, deadline=None)
@given(st.lists(st.binary(max_size=24).map(lambda b: b.replace(b"\x00", b"{")), max_size=30))
def test_property_matches_reference(keys: list[bytes]) -> None:
    assert np.array_equal(redis_slot(keys), ref.redis_slot(keys))


@settings(max_examples=200 if FAST else 50, deadline=None)
@given(st.text(alphabet="{ab", min_size=1, max_size=12), st.text(alphabet="{}ab", max_size=12))
def test_property_tag_colocates(tag: str, rest: str) -> None:
    """Any key "{tag}rest" with a non-empty tag free of '}' lands in the slot of the tag."""
    assert redis_slot(f"{{{tag}}}{rest}").tolist() == [ref.crc16(tag.encode()) & 16383]


# ---- RedisSlots ----------------------------------------------------------------------------


def _fragmented(rng: random.Random, nodes: list[str], cuts: int) -> list[tuple[int, int, str]]:
    points = sorted(rng.sample(range(1, 16384), cuts))
    bounds = [0, *points, 16384]
    return [(bounds[i], bounds[i + 1] - 1, rng.choice(nodes)) for i in range(len(bounds) - 1)]


def test_validation_names_gaps_and_overlaps() -> None:
    with pytest.raises(ValueError, match=r"slots 100\.\.199 are not covered"):
        RedisSlots([(0, 99, "a"), (200, 16383, "b")])
    with pytest.raises(ValueError, match=r"slots 16000\.\.16383 are not covered"):
        RedisSlots([(0, 15999, "a")])
    with pytest.raises(ValueError, match=r"slot_ranges\[1\] \(50\.\.16383, 'b'\) overlaps "
                                         r"slot_ranges\[0\] \(0\.\.99, 'a'\) at slot 50"):
        RedisSlots([(0, 99, "a"), (50, 16383, "b")])
    with pytest.raises(ValueError, match=r"slot_ranges\[0\] end: slot 16384"):
        RedisSlots([(0, 16384, "a")])
    with pytest.raises(ValueError, match=r"slot_ranges\[0\]: end 5 is before start 9"):
        RedisSlots([(9, 5, "a")])
    with pytest.raises(TypeError, match=r"slot_ranges\[0\] start"):
        RedisSlots([(0.0, 16383, "a")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"slot_ranges\[1\]: expected a \(start, end, node\)"):
        RedisSlots([(0, 100, "a"), (101, 16383)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="slot_ranges"):
        RedisSlots("0-16383")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"slot_ranges\[0\] node"):
        RedisSlots([(0, 16383, "")])
    with pytest.raises(ValueError, match=r"not in nodes"):
        RedisSlots([(0, 16383, "a")], nodes=["b"])
    with pytest.raises(ValueError, match="at least one node"):
        RedisSlots([])


def test_assign_is_the_slot_table() -> None:
    rng = random.Random(5)
    ranges = _fragmented(rng, ["a", "b", "c", "d"], 40)
    rs = RedisSlots(ranges)
    rr = ref.RedisSlots(ranges)
    assert rs.nodes == rr.nodes
    keys = _random_keys(rng, 2000 if FAST else 400)
    got = rs.assign(keys)
    assert np.array_equal(got, rs.slot_table[redis_slot(keys)])
    assert np.array_equal(got, rr.assign(keys))
    assert rs.node_for(keys[0]) == rs.nodes[got[0]] == rr.node_for(keys[0])
    assert not rs.slot_table.flags.writeable
    assert sum(rs.slot_counts().values()) == 16384
    # slot_ranges is the canonical form: rebuilding from it gives an equal placement.
    assert RedisSlots(rs.slot_ranges, nodes=rs.nodes) == rs


@pytest.mark.parametrize("cuts", [0, 3, 200])
def test_replicas_match_the_reference_walk(cuts: int) -> None:
    rng = random.Random(cuts)
    nodes = ["a", "b", "c", "d", "e"]
    ranges = _fragmented(rng, nodes, cuts) if cuts else [(0, 16383, "a")]
    rs, rr = RedisSlots(ranges), ref.RedisSlots(ranges)
    keys = _random_keys(rng, 400)
    owning = len(set(r[2] for r in ranges))
    for n in range(1, owning + 1):
        got = rs.replicas(keys, n)
        assert np.array_equal(got, rr.replicas(keys, n)), n
        assert np.array_equal(got[:, 0], rs.assign(keys))
        assert all(len(set(row)) == n for row in got.tolist())
    with pytest.raises(ValueError, match="n: must be between 1 and"):
        rs.replicas(keys, owning + 1)
    with pytest.raises(TypeError, match="n: expected an int"):
        rs.replicas(keys, 1.0)  # type: ignore[arg-type]


def test_even_add_remove() -> None:
    rs = RedisSlots.even(["a", "b", "c"])
    assert rs.slot_ranges == ((0, 5460, "a"), (5461, 10921, "b"), (10922, 16383, "c"))
    grown = rs.add("d")
    assert grown.nodes == ("a", "b", "c", "d")
    counts = grown.slot_counts()
    assert counts["d"] == 16384 // 4 and max(counts.values()) - min(counts.values()) <= 1
    moved = grown.slot_table != rs.slot_table
    assert int(moved.sum()) == 4096 and set(grown.slot_table[moved].tolist()) == {3}
    shrunk = grown.remove("b")
    assert shrunk.nodes == ("a", "c", "d")
    old = np.array(grown.nodes)[grown.slot_table]
    new = np.array(shrunk.nodes)[shrunk.slot_table]
    assert set(old[old != new].tolist()) == {"b"}  # only b's slots moved
    c = shrunk.slot_counts()
    assert max(c.values()) - min(c.values()) <= 1
    with pytest.raises(ValueError, match="already"):
        rs.add("a")
    with pytest.raises(ValueError, match="weight"):
        rs.add("x", weight=2.0)
    with pytest.raises(ValueError, match="zone"):
        rs.add("x", zone="z1")
    with pytest.raises(ValueError, match="not a node"):
        rs.remove("zz")
    with pytest.raises(ValueError, match="last node"):
        RedisSlots.even(["a"]).remove("a")
    with pytest.raises(ValueError, match="at least one node"):
        RedisSlots.even([])


def test_json_and_pickle_round_trip() -> None:
    rng = random.Random(9)
    rs = RedisSlots(_fragmented(rng, ["n1", "n2", "n3"], 30), nodes=["n3", "n1", "n2", "spare"])
    doc = json.loads(rs.to_json())
    assert doc["algorithm"] == "redis-slots@1" and doc["nodes"] == ["n3", "n1", "n2", "spare"]
    back = from_json(rs.to_json())
    assert back == rs and back.nodes == rs.nodes and hash(back) == hash(rs)
    assert RedisSlots.from_json(rs.to_json()) == rs
    assert pickle.loads(pickle.dumps(rs)) == rs
    bad = dict(doc, ranges=doc["ranges"][1:])
    with pytest.raises(InvalidPlacementError, match="not covered"):
        from_json(bad)
    with pytest.raises(InvalidPlacementError, match=r"ranges\[0\]"):
        from_json(dict(doc, ranges=[[0, "16383", "n1"]]))
    with pytest.raises(InvalidPlacementError, match="unexpected fields"):
        from_json(dict(doc, extra=1))
    with pytest.raises(InvalidPlacementError, match="not a RedisSlots"):
        RedisSlots.from_json(ringguard.Ring(["a"]).to_json())


def test_from_cluster_slots_shapes() -> None:
    raw = [
        [0, 8191, [b"10.0.0.1", 7000, b"id1"], [b"10.0.0.2", 7001, b"id2"]],
        [8192, 16383, ["10.0.0.3", 7002, "id3"]],
    ]
    parsed = {
        (0, 8191): {"primary": ("10.0.0.1", 7000), "replicas": [("10.0.0.2", 7001)]},
        (8192, 16383): {"primary": ("10.0.0.3", 7002), "replicas": []},
    }
    a, b = RedisSlots.from_cluster_slots(raw), RedisSlots.from_cluster_slots(parsed)
    assert a == b and a.nodes == ("10.0.0.1:7000", "10.0.0.3:7002")
    with pytest.raises(ValueError, match="not covered"):
        RedisSlots.from_cluster_slots(raw[:1])
    with pytest.raises(TypeError, match="reply"):
        RedisSlots.from_cluster_slots("nope")


def test_slot_nodes_kernel_checks() -> None:
    table = RedisSlots.even(["a", "b"]).slot_table
    out = np.empty(3, dtype=np.int32)
    core.slot_nodes(np.array([0, 8192, 16383], dtype=np.uint16), table, out)
    assert out.tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="slots: value 16384"):
        core.slot_nodes(np.array([0, 16384, 1], dtype=np.uint16), table, out)
    with pytest.raises(ValueError, match="table"):
        core.slot_nodes(np.zeros(3, dtype=np.uint16), table[:100], out)
    with pytest.raises(ValueError, match="out"):
        core.slot_nodes(np.zeros(2, dtype=np.uint16), table, out)


def test_placement_protocol() -> None:
    assert isinstance(RedisSlots.even(["a"]), ringguard.Placement)
    rep = ringguard.load(RedisSlots.even(["a", "b"]), [f"k{i}" for i in range(1000)])
    assert int(rep.counts.sum()) == 1000


# ---- against a real redis-server -----------------------------------------------------------


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_cluster_port() -> int:
    """A free loopback port whose cluster bus port (port + 10000) is free as well."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 55000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for redis-server")


@pytest.fixture(scope="module")
def redis_cluster_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = shutil.which("redis-server")
    required = os.environ.get("RINGGUARD_REQUIRE_REDIS", "") not in ("", "0")
    if server is None:
        if required:
            pytest.fail("RINGGUARD_REQUIRE_REDIS is set but redis-server is not installed")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    if required:
        import redis
    else:
        redis = pytest.importorskip("redis", reason="redis-py is not installed (pip install redis)")
    workdir: pathlib.Path = tmp_path_factory.mktemp("redis-cluster")
    port = _free_cluster_port()
    log = workdir / "redis.log"
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
         "--cluster-config-file", str(workdir / "nodes.conf"), "--save", "", "--appendonly",
         "no", "--dir", str(workdir), "--protected-mode", "yes", "--logfile", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir,
    )
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    text = log.read_text(errors="replace") if log.exists() else ""
                    raise RuntimeError(f"redis-server did not start:\n{text[-2000:]}") from None
                time.sleep(0.05)
        yield client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_matches_cluster_keyslot(redis_cluster_node: Any) -> None:
    rng = random.Random(20240607)
    keys: list[bytes] = []
    for i in range(12_000):
        kind = i % 4
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 20)))
        if kind == 0:
            keys.append(body)  # raw bytes, braces possible
        elif kind == 1:
            keys.append(b"{" + body.replace(b"}", b"") + b"}" + body)  # a tag (maybe empty)
        elif kind == 2:
            keys.append(f"user:{rng.randrange(10**9)}:{{{rng.randrange(100)}}}".encode())
        else:
            keys.append(rng.choice([b"{", b"}", b"{}", b"a{b", b"}{"]) + body)
    pipe = redis_cluster_node.pipeline(transaction=False)
    for k in keys:
        pipe.execute_command("CLUSTER", "KEYSLOT", k)
    expected = np.array(pipe.execute(), dtype=np.int64)
    assert np.array_equal(redis_slot(keys).astype(np.int64), expected)
    # str keys travel as UTF-8; integer keys as their decimal text.
    texts: list[str] = [f"é{{{i % 37}}}x{i}" for i in range(2000)]
    ints = [rng.randrange(-(2**63), 2**63) for _ in range(2000)]
    pipe = redis_cluster_node.pipeline(transaction=False)
    for t in texts:
        pipe.execute_command("CLUSTER", "KEYSLOT", t)
    for v in ints:
        pipe.execute_command("CLUSTER", "KEYSLOT", str(v))
    got = pipe.execute()
    assert redis_slot(texts).tolist() == got[:2000]
    assert redis_slot(np.array(ints, dtype=np.int64)).tolist() == got[2000:]


def test_from_a_live_cluster_slots_reply(redis_cluster_node: Any) -> None:
    client = redis_cluster_node
    if not client.execute_command("CLUSTER", "SLOTS"):
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    reply = client.execute_command("CLUSTER", "SLOTS")
    rs = RedisSlots.from_cluster_slots(reply)
    port = client.connection_pool.connection_kwargs["port"]
    assert len(rs.nodes) == 1 and rs.nodes[0].endswith(f":{port}")
    assert rs.assign(["a", "b"]).tolist() == [0, 0]


# ---- golden fixture and a state machine ----------------------------------------------------

VECTORS = pathlib.Path(__file__).parent / "vectors" / "redis_slots.json"


def test_golden_fixture_from_redis_server() -> None:
    doc = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert core.crc16(doc["crc16_check"]["input"].encode()) == doc["crc16_check"]["crc16"]
    keys = [k for k, _ in doc["str_keys"]]
    expected = [s for _, s in doc["str_keys"]]
    assert redis_slot(keys).tolist() == expected
    assert ref.redis_slot(keys).tolist() == expected
    ints = np.array([v for v, _ in doc["int64_keys"]], dtype=np.int64)
    assert redis_slot(ints).tolist() == [s for _, s in doc["int64_keys"]]


class RedisSlotsMachine(RuleBasedStateMachine):
    """add/remove against a dict model {slot: node}: only the joining/leaving node's slots
    move, coverage stays complete, and counts stay within one of each other."""

    def __init__(self) -> None:
        super().__init__()
        self.rs = RedisSlots.even(["n0", "n1"])
        self.model = {s: self.rs.nodes[o] for s, o in enumerate(self.rs.slot_table.tolist())}
        self.counter = 2

    @rule()
    def add(self) -> None:
        name = f"n{self.counter}"
        self.counter += 1
        new = self.rs.add(name)
        owners = [new.nodes[o] for o in new.slot_table.tolist()]
        moved = [s for s in range(16384) if owners[s] != self.model[s]]
        assert {owners[s] for s in moved} <= {name}
        assert len(moved) == 16384 // len(new.nodes)
        self.rs, self.model = new, dict(enumerate(owners))

    @precondition(lambda self: len(self.rs.nodes) > 1)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.rs.nodes))
        new = self.rs.remove(name)
        owners = [new.nodes[o] for o in new.slot_table.tolist()]
        assert all(owners[s] == self.model[s] for s in range(16384) if self.model[s] != name)
        self.rs, self.model = new, dict(enumerate(owners))

    @invariant()
    def balanced_and_round_trips(self) -> None:
        counts = self.rs.slot_counts()
        assert sum(counts.values()) == 16384
        assert max(counts.values()) - min(counts.values()) <= 1
        assert from_json(self.rs.to_json()) == self.rs


RedisSlotsMachine.TestCase.settings = settings(
    max_examples=15 if FAST else 5, stateful_step_count=8, deadline=None
)
test_redis_slots_state_machine = RedisSlotsMachine.TestCase
