"""pytest-benchmark cases: the workloads of compare.py at smaller sizes.

    pytest benchmarks/ --benchmark-only

Sizes: 1M uint64 keys, 200k string keys; the pure-Python implementations
(ringguard.reference, uhashring) run on the first 2k keys of the same data.
Cases in one group therefore use different key counts: read the keys/s
summary printed at the end (also stored as extra_info "mkeys_per_s_best" in
--benchmark-json output), not the raw times.

No timing assertions here: targets are checked by compare.py --check only.
"""

from __future__ import annotations

import numpy as np
import pytest

# --------------------------------------------------------------------------- uint64 assign

G_U64 = "assign-u64"


@pytest.mark.benchmark(group=G_U64)
def test_u64_compiled(measure, ring, u64_keys):
    out = measure(lambda: ring.assign(u64_keys), len(u64_keys))
    assert out.shape == u64_keys.shape and out.dtype == np.int32


@pytest.mark.benchmark(group=G_U64)
def test_u64_reference(measure, ref_ring, u64_keys, n_ref):
    keys = u64_keys[:n_ref]
    measure(lambda: ref_ring.assign(keys), len(keys))


@pytest.mark.benchmark(group=G_U64)
def test_u64_numpy_path(measure, numpy_path, u64_keys):
    measure(lambda: numpy_path.assign_splitmix(u64_keys), len(u64_keys))


@pytest.mark.benchmark(group=G_U64)
def test_u64_numpy_tuned(measure, numpy_path, u64_keys):
    measure(lambda: numpy_path.assign_splitmix_bucketed(u64_keys), len(u64_keys))


@pytest.mark.benchmark(group=G_U64)
def test_u64_numpy_xxh64_exact(measure, numpy_path, u64_keys):
    measure(lambda: numpy_path.assign_xxh64(u64_keys), len(u64_keys))


@pytest.mark.benchmark(group=G_U64)
def test_u64_roofline_copy(measure, roofline_copy, u64_keys):
    out32 = np.empty(len(u64_keys), dtype=np.uint32)
    measure(lambda: roofline_copy(u64_keys, out32), len(u64_keys))


# --------------------------------------------------------------------------- threads

G_THREADS = "assign-u64-threads"


@pytest.mark.benchmark(group=G_THREADS)
@pytest.mark.parametrize("threads", [1, 2])
def test_u64_threads(measure, ring, u64_keys, threads):
    measure(lambda: ring.assign(u64_keys, threads=threads), len(u64_keys))


# --------------------------------------------------------------------------- string assign

G_LIST = "assign-str-list"
G_S = "assign-str-S"
G_ARROW = "assign-str-arrow"


@pytest.mark.benchmark(group=G_LIST)
def test_str_list_compiled(measure, ring, str_list):
    measure(lambda: ring.assign(str_list), len(str_list))


@pytest.mark.benchmark(group=G_LIST)
def test_str_list_reference(measure, ref_ring, str_list, n_ref):
    keys = str_list[:n_ref]
    measure(lambda: ref_ring.assign(keys), len(keys))


@pytest.mark.benchmark(group=G_LIST)
def test_str_list_uhashring(measure, uh_ring, str_list, n_ref):
    keys = str_list[:n_ref]
    get_node = uh_ring.get_node
    measure(lambda: [get_node(k) for k in keys], len(keys))


@pytest.mark.benchmark(group=G_S)
def test_str_S_compiled(measure, ring, str_S):
    measure(lambda: ring.assign(str_S), len(str_S))


@pytest.mark.benchmark(group=G_S)
def test_str_S_reference(measure, ref_ring, str_S, n_ref):
    keys = str_S[:n_ref]
    measure(lambda: ref_ring.assign(keys), len(keys))


@pytest.mark.benchmark(group=G_ARROW)
def test_str_arrow_compiled(measure, ring, str_arrow):
    measure(lambda: ring.assign(str_arrow), len(str_arrow))


@pytest.mark.benchmark(group=G_ARROW)
def test_str_arrow_reference(measure, ref_ring, str_arrow, n_ref):
    keys = str_arrow.slice(0, n_ref)
    measure(lambda: ref_ring.assign(keys), len(keys))


# --------------------------------------------------------------------------- ketama

G_KETAMA = "ketama-str-list"


@pytest.mark.benchmark(group=G_KETAMA)
def test_ketama_compiled(measure, ketama_ring, str_list):
    measure(lambda: ketama_ring.assign(str_list), len(str_list))


@pytest.mark.benchmark(group=G_KETAMA)
def test_ketama_reference(measure, ref_ketama_ring, str_list, n_ref):
    keys = str_list[:n_ref]
    measure(lambda: ref_ketama_ring.assign(keys), len(keys))


@pytest.mark.benchmark(group=G_KETAMA)
def test_ketama_uhashring(measure, uh_ring, str_list, n_ref):
    keys = str_list[:n_ref]
    get_node = uh_ring.get_node
    measure(lambda: [get_node(k) for k in keys], len(keys))


# --------------------------------------------------------------------------- replicas

G_REPL = "replicas-n3-u64"


@pytest.mark.benchmark(group=G_REPL)
def test_replicas_compiled(measure, ring, u64_keys):
    out = measure(lambda: ring.replicas(u64_keys, 3), len(u64_keys))
    assert out.shape == (len(u64_keys), 3)


@pytest.mark.benchmark(group=G_REPL)
def test_replicas_reference(measure, ref_ring, u64_keys, n_ref):
    keys = u64_keys[:n_ref]
    measure(lambda: ref_ring.replicas(keys, 3), len(keys))
