"""pytest-benchmark cases for Redis Cluster slots, bounded loads and dual-machine pairs.

    pytest benchmarks/test_bench_slots.py --benchmark-only

Same conventions as test_bench.py: fixed-seed data, the pure-Python reference on a prefix
of the same keys, and a keys/s summary at the end (compare that, not raw times). No timing
assertions. Targets: redis_slot >= 50 M keys/s on string keys from a buffer (NumPy S /
Arrow); bounded loads >= 30 M keys/s (10 nodes, uint64 keys).
"""

from __future__ import annotations

import numpy as np
import pytest

N_SLOT_KEYS = 1_000_000
N_U64 = 1_000_000
N_REF = 2_000


@pytest.fixture(scope="module")
def slot_keys() -> list[str]:
    rng = np.random.default_rng(20240607)
    ids = rng.integers(0, 10**9, N_SLOT_KEYS)
    tags = rng.integers(0, 1000, N_SLOT_KEYS)
    # One key in four carries a hash tag, as in a cluster that co-locates users' keys.
    return [f"{{user{t}}}:cart:{i}" if i % 4 == 0 else f"session:{i}:v2"
            for i, t in zip(ids.tolist(), tags.tolist(), strict=True)]


@pytest.fixture(scope="module")
def slot_S(slot_keys: list[str]) -> np.ndarray:
    return np.array(slot_keys, dtype="S")


@pytest.fixture(scope="module")
def slot_arrow(pa, slot_keys: list[str]):
    return pa.array(slot_keys, type=pa.string())


@pytest.fixture(scope="module")
def u64_keys_10m() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 2**63, N_U64).astype(np.uint64)


def _numpy_crc16_slots(arr: np.ndarray) -> np.ndarray:
    """Best plain-NumPy baseline: table CRC16 column by column over an S array, vectorized
    across keys (no hash tags, so it does less than redis_slot)."""
    table = np.zeros(256, dtype=np.uint16)
    for b in range(256):
        crc = b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
        table[b] = crc
    width = arr.dtype.itemsize
    mat = arr.view(np.uint8).reshape(len(arr), width)
    lengths = np.char.str_len(arr)
    crc = np.zeros(len(arr), dtype=np.uint16)
    for j in range(width):
        nxt = (crc << np.uint16(8)) ^ table[(crc >> np.uint16(8)) ^ mat[:, j]]
        crc = np.where(j < lengths, nxt, crc)
    return crc & np.uint16(16383)


# --------------------------------------------------------------------------- redis_slot

G_SLOT = "redis-slot"


@pytest.mark.benchmark(group=G_SLOT)
def test_slot_numpy_S(measure, rg, slot_S):
    out = measure(lambda: rg.redis_slot(slot_S), len(slot_S))
    assert out.dtype == np.uint16 and out.shape == slot_S.shape


@pytest.mark.benchmark(group=G_SLOT)
def test_slot_arrow(measure, rg, slot_arrow):
    measure(lambda: rg.redis_slot(slot_arrow), len(slot_arrow))


@pytest.mark.benchmark(group=G_SLOT)
def test_slot_list_of_str(measure, rg, slot_keys):
    keys = slot_keys[:200_000]
    measure(lambda: rg.redis_slot(keys), len(keys))


@pytest.mark.benchmark(group=G_SLOT)
def test_slot_numpy_S_threads2(measure, rg, slot_S):
    measure(lambda: rg.redis_slot(slot_S, threads=2), len(slot_S))


@pytest.mark.benchmark(group=G_SLOT)
def test_slot_numpy_baseline(measure, slot_S):
    keys = slot_S[:200_000]
    measure(lambda: _numpy_crc16_slots(keys), len(keys))


@pytest.mark.benchmark(group=G_SLOT)
def test_slot_reference(measure, rg_reference, slot_keys):
    keys = slot_keys[:N_REF]
    measure(lambda: rg_reference.redis_slot(keys), len(keys))


@pytest.mark.benchmark(group=G_SLOT)
def test_slot_table_assign(measure, rg, slot_S):
    rs = rg.RedisSlots.even([f"10.0.0.{i}:6379" for i in range(6)])
    measure(lambda: rs.assign(slot_S), len(slot_S))


# --------------------------------------------------------------------------- bounded loads

G_BOUNDED = "bounded-loads-u64"


@pytest.fixture(scope="module")
def ring10(rg):
    return rg.Ring([f"node{i}" for i in range(10)])


@pytest.mark.benchmark(group=G_BOUNDED)
def test_bounded_125(measure, ring10, u64_keys_10m):
    measure(lambda: ring10.assign(u64_keys_10m, max_load=1.25), len(u64_keys_10m))


@pytest.mark.benchmark(group=G_BOUNDED)
def test_bounded_100(measure, ring10, u64_keys_10m):
    measure(lambda: ring10.assign(u64_keys_10m, max_load=1.0), len(u64_keys_10m))


@pytest.mark.benchmark(group=G_BOUNDED)
def test_bounded_unbounded_assign(measure, ring10, u64_keys_10m):
    measure(lambda: ring10.assign(u64_keys_10m), len(u64_keys_10m))


@pytest.mark.benchmark(group=G_BOUNDED)
def test_bounded_reference(measure, rg_reference, u64_keys_10m):
    ref_ring = rg_reference.Ring([f"node{i}" for i in range(10)])
    keys = u64_keys_10m[:N_REF]
    measure(lambda: ref_ring.assign(keys, max_load=1.25), len(keys))


# --------------------------------------------------------------------------- pairs

G_PAIRS = "replicas-pairs-vs-ring"


@pytest.fixture(scope="module")
def paired10(rg):
    nodes = [f"node{i}" for i in range(10)]
    return rg.Ring(nodes, pairs=[(nodes[2 * i], nodes[2 * i + 1]) for i in range(5)])


@pytest.mark.benchmark(group=G_PAIRS)
def test_pairs_replicas(measure, paired10, u64_keys_10m):
    measure(lambda: paired10.replicas(u64_keys_10m, 2), len(u64_keys_10m))


@pytest.mark.benchmark(group=G_PAIRS)
def test_ring_replicas(measure, ring10, u64_keys_10m):
    measure(lambda: ring10.replicas(u64_keys_10m, 2), len(u64_keys_10m))
