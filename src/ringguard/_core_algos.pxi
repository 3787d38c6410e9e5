# Kernels of Maglev, Rendezvous and JumpHash, included into _core.pyx.
#
# Same discipline as the ring kernels: every argument (table size, node arrays, lengths,
# shapes) is checked here with the GIL held, then the plain-C kernel from csrc/rg_algos.h
# runs without the GIL. The pure-Python twins are in _pycore_algos.py.

cdef extern from "rg_algos.h" nogil:
    void rg_hash_u64(const uint64_t *keys, int64_t n, uint64_t *out)
    void rg_hash_fixed(const uint8_t *data, int64_t width, int64_t n, uint64_t *out)
    void rg_maglev_populate(const uint64_t *offset, const uint64_t *skip, const int64_t *quota,
                            int32_t n, uint64_t m, int32_t *table, uint64_t *next_pos,
                            int64_t *count)
    void rg_maglev_assign_u64(const int32_t *table, uint64_t m, const uint64_t *keys,
                              int64_t n, int32_t *out)
    void rg_maglev_assign_var(const int32_t *table, uint64_t m, const uint8_t *data,
                              const int64_t *offs, int64_t n, int32_t *out)
    void rg_maglev_assign_fixed(const int32_t *table, uint64_t m, const uint8_t *data,
                                int64_t width, int64_t n, int32_t *out)
    void rg_maglev_replicas(const int32_t *table, uint64_t m, const uint64_t *hashes,
                            int64_t n, int32_t nrep, int32_t *out, uint32_t *seen,
                            uint32_t *gen)
    uint64_t rg_hrw_node_lane(uint64_t node_hash)
    double rg_hrw_ln_u(uint64_t h)
    void rg_hrw_assign(const uint64_t *lane, const double *weight, const int32_t *ids,
                       int32_t nnodes, const uint64_t *hashes, int64_t n, int32_t *out)
    void rg_hrw_replicas(const uint64_t *lane, const double *weight, const int32_t *ids,
                         int32_t nnodes, const uint64_t *hashes, int64_t n, int32_t nrep,
                         int32_t *out, double *top_score, int32_t *top_pos, double *low)
    int32_t rg_jump(uint64_t key, int64_t nb)
    void rg_jump_batch(const uint64_t *keys, int64_t n, int64_t nb, int32_t *out)
    void rg_jump_assign_u64(const uint64_t *keys, int64_t n, int64_t nb, int32_t *out)
    void rg_jump_replicas(const uint64_t *hashes, int64_t n, int64_t nb, int32_t nrep,
                          int32_t *out, int32_t *chosen)


# Largest Maglev table: the smallest prime above 2**24.
MAGLEV_MAX_TABLE = 16777259
# Most buckets JumpHash can address with int32 results.
JUMP_MAX_BUCKETS = 2**31 - 1


def is_prime(uint64_t m):
    """True when ``m`` is prime (trial division; meant for table sizes <= 2**32)."""
    cdef uint64_t d = 3
    if m < 2:
        return False
    if m % 2 == 0:
        return m == 2
    while d * d <= m:
        if m % d == 0:
            return False
        d += 2
    return True


def xxh64_u64(const uint64_t[::1] keys not None, uint64_t[::1] out not None):
    """XXH64 (seed 0) of canonical integer keys (8 bytes little-endian each) into ``out``."""
    cdef int64_t n = keys.shape[0]
    _check_out(n, out.shape[0])
    if n == 0:
        return
    with nogil:
        rg_hash_u64(&keys[0], n, &out[0])


def xxh64_fixed(const uint8_t[::1] data not None, int64_t width, uint64_t[::1] out not None):
    """XXH64 (seed 0) of fixed-width items (NumPy ``S``, trailing NULs dropped) into ``out``."""
    cdef int64_t n = out.shape[0]
    if width < 1:
        raise ValueError(f"width: must be >= 1, got {width}")
    if data.shape[0] != n * width:
        raise ValueError(f"data: has {data.shape[0]} bytes, expected {n} x {width}")
    if n == 0:
        return
    with nogil:
        rg_hash_fixed(&data[0], width, n, &out[0])


# ---- Maglev --------------------------------------------------------------------------------

cdef uint64_t _maglev_size(const int32_t[::1] table, int nnodes) except 0:
    cdef uint64_t m = table.shape[0]
    if m < 2 or m > MAGLEV_MAX_TABLE or not is_prime(m):
        raise ValueError(f"table: size must be a prime in 2..{MAGLEV_MAX_TABLE}, got {m}")
    if nnodes < 1:
        raise ValueError("nnodes: must be >= 1")
    return m


def maglev_populate(const uint64_t[::1] offsets not None, const uint64_t[::1] skips not None,
                    const int64_t[::1] quotas not None, int32_t[::1] table not None):
    """Fill a Maglev lookup table (contract section 9); nodes in name order.

    ``table`` (length M, prime) receives name-order node positions. ``offsets[i] < M``,
    ``1 <= skips[i] < M``, ``quotas[i] >= 1`` with ``sum(quotas) >= M``, and at most M nodes.
    """
    import numpy as np
    cdef Py_ssize_t n = offsets.shape[0], i
    cdef uint64_t m = table.shape[0]
    cdef int64_t total = 0
    if m < 2 or m > MAGLEV_MAX_TABLE or not is_prime(m):
        raise ValueError(f"table: size must be a prime in 2..{MAGLEV_MAX_TABLE}, got {m}")
    if n < 1 or <uint64_t>n > m:
        raise ValueError(f"offsets: need 1..{m} nodes, got {n}")
    if skips.shape[0] != n or quotas.shape[0] != n:
        raise ValueError("skips/quotas: length differs from offsets")
    for i in range(n):
        if offsets[i] >= m:
            raise ValueError(f"offsets[{i}]: must be < {m}")
        if skips[i] < 1 or skips[i] >= m:
            raise ValueError(f"skips[{i}]: must be in 1..{m - 1}")
        if quotas[i] < 1 or quotas[i] > <int64_t>m:
            raise ValueError(f"quotas[{i}]: must be in 1..{m}")
        total += quotas[i]
    if total < <int64_t>m:
        raise ValueError(f"quotas: sum {total} is below the table size {m}")
    next_arr = np.empty(n, dtype=np.uint64)
    count_arr = np.empty(n, dtype=np.int64)
    cdef uint64_t[::1] nx = next_arr
    cdef int64_t[::1] cnt = count_arr
    with nogil:
        rg_maglev_populate(&offsets[0], &skips[0], &quotas[0], <int32_t>n, m, &table[0],
                           &nx[0], &cnt[0])


cdef void _check_table(const int32_t[::1] table, int nnodes) except *:
    # Every entry must be a node index: the kernels index with it.
    cdef Py_ssize_t j
    for j in range(table.shape[0]):
        if table[j] < 0 or table[j] >= nnodes:
            raise ValueError(f"table[{j}]: node index out of range")


cdef class CoreMaglev:
    """A filled Maglev lookup table (node indices), ready for batch lookups.

    Built by :class:`ringguard.Maglev` from a read-only NumPy array that it keeps alive.
    """

    cdef readonly object table
    cdef readonly int nnodes
    cdef readonly int distinct_owners
    cdef const int32_t *tp
    cdef uint64_t m

    def __cinit__(self, table, int nnodes):
        cdef const int32_t[::1] tv = table
        self.m = _maglev_size(tv, nnodes)
        _check_table(tv, nnodes)
        import numpy as np
        self.table = table
        self.nnodes = nnodes
        self.distinct_owners = int(np.unique(np.asarray(table)).shape[0])
        self.tp = &tv[0]

    def assign_u64(self, const uint64_t[::1] keys not None, int32_t[::1] out not None):
        """``table[XXH64(key) % M]`` for canonical integer keys, into ``out``."""
        cdef int64_t n = keys.shape[0]
        _check_out(n, out.shape[0])
        if n == 0:
            return
        if n < NOGIL_MIN:
            rg_maglev_assign_u64(self.tp, self.m, &keys[0], n, &out[0])
        else:
            with nogil:
                rg_maglev_assign_u64(self.tp, self.m, &keys[0], n, &out[0])

    def assign_var(self, const uint8_t[::1] data not None, const int64_t[::1] offsets not None,
                   int32_t[::1] out not None):
        """Lookup of variable-length byte-string keys (item i is data[offsets[i]:offsets[i+1]])."""
        cdef int64_t n = offsets.shape[0] - 1
        check_offsets(offsets, data.shape[0])
        _check_out(n, out.shape[0])
        if n == 0:
            return
        cdef const uint8_t *dp = &data[0] if data.shape[0] else _EMPTY
        with nogil:
            rg_maglev_assign_var(self.tp, self.m, dp, &offsets[0], n, &out[0])

    def assign_fixed(self, const uint8_t[::1] data not None, int64_t width,
                     int32_t[::1] out not None):
        """Lookup of fixed-width byte strings (NumPy ``S``), trailing NULs dropped."""
        cdef int64_t n = out.shape[0]
        if width < 1:
            raise ValueError(f"width: must be >= 1, got {width}")
        if data.shape[0] != n * width:
            raise ValueError(f"data: has {data.shape[0]} bytes, expected {n} x {width}")
        if n == 0:
            return
        with nogil:
            rg_maglev_assign_fixed(self.tp, self.m, &data[0], width, n, &out[0])

    def replicas(self, const uint64_t[::1] hashes not None, int nrep,
                 int32_t[:, ::1] out not None):
        """First ``nrep`` distinct nodes walking forward from slot ``hash % M``."""
        import numpy as np
        cdef int64_t n = hashes.shape[0]
        cdef uint32_t gen = 0
        if out.shape[0] != n or out.shape[1] != nrep:
            raise ValueError(f"out: has shape {(out.shape[0], out.shape[1])}, expected {(n, nrep)}")
        if nrep < 1 or nrep > self.distinct_owners:
            raise ValueError(f"n: must be in 1..{self.distinct_owners}, got {nrep}")
        if n >= 0xFFFFFFF0:
            raise ValueError("hashes: too many keys for one call; split the batch")
        if n == 0:
            return
        seen_arr = np.zeros(self.nnodes, dtype=np.uint32)
        cdef uint32_t[::1] seen = seen_arr
        with nogil:
            rg_maglev_replicas(self.tp, self.m, &hashes[0], n, nrep, &out[0, 0], &seen[0], &gen)


# ---- Rendezvous ----------------------------------------------------------------------------

def hrw_ln_u(uint64_t h):
    """The deterministic ln(u) of Rendezvous (contract section 10), u from hash ``h``."""
    return rg_hrw_ln_u(h)


def hrw_node_lanes(const uint64_t[::1] node_hashes not None, uint64_t[::1] out not None):
    """Per-node precomputed XXH64 lane of each node hash (an XXH64 round), into ``out``."""
    cdef Py_ssize_t i
    _check_out(node_hashes.shape[0], out.shape[0])
    for i in range(node_hashes.shape[0]):
        out[i] = rg_hrw_node_lane(node_hashes[i])


cdef void _check_hrw(const uint64_t[::1] lanes, const double[::1] weights,
                     const int32_t[::1] ids) except *:
    cdef Py_ssize_t n = lanes.shape[0], i
    if n < 1 or n >= 2**31:
        raise ValueError(f"lanes: need at least one node, got {n}")
    if ids.shape[0] != n:
        raise ValueError("ids: length differs from lanes")
    for i in range(n):
        if ids[i] < 0:
            raise ValueError(f"ids[{i}]: negative node index")
    if weights is not None:
        if weights.shape[0] != n:
            raise ValueError("weights: length differs from lanes")
        for i in range(n):
            # finite and > 0 (NaN fails both comparisons)
            if not (weights[i] > 0.0 and weights[i] <= 1.7976931348623157e308):
                raise ValueError(f"weights[{i}]: must be finite and > 0")


def hrw_assign(const uint64_t[::1] lanes not None, const double[::1] weights,
               const int32_t[::1] ids not None, const uint64_t[::1] hashes not None,
               int32_t[::1] out not None):
    """Highest-score node of each key hash (``weights`` None: all weights equal)."""
    cdef int64_t n = hashes.shape[0]
    cdef const double *wp = NULL
    _check_hrw(lanes, weights, ids)
    _check_out(n, out.shape[0])
    if n == 0:
        return
    if weights is not None:
        wp = &weights[0]
    with nogil:
        rg_hrw_assign(&lanes[0], wp, &ids[0], <int32_t>lanes.shape[0], &hashes[0], n, &out[0])


def hrw_replicas(const uint64_t[::1] lanes not None, const double[::1] weights,
                 const int32_t[::1] ids not None, const uint64_t[::1] hashes not None,
                 int nrep, int32_t[:, ::1] out not None):
    """The ``nrep`` highest-score nodes of each key hash, best first."""
    import numpy as np
    cdef int64_t n = hashes.shape[0]
    cdef const double *wp = NULL
    _check_hrw(lanes, weights, ids)
    if nrep < 1 or nrep > lanes.shape[0]:
        raise ValueError(f"n: must be in 1..{lanes.shape[0]}, got {nrep}")
    if out.shape[0] != n or out.shape[1] != nrep:
        raise ValueError(f"out: has shape {(out.shape[0], out.shape[1])}, expected {(n, nrep)}")
    if n == 0:
        return
    if weights is not None:
        wp = &weights[0]
    ts_arr = np.empty(nrep, dtype=np.float64)
    tp_arr = np.empty(nrep, dtype=np.int32)
    low_arr = np.empty(nrep, dtype=np.float64)
    cdef double[::1] ts = ts_arr
    cdef int32_t[::1] tp = tp_arr
    cdef double[::1] low = low_arr
    with nogil:
        rg_hrw_replicas(&lanes[0], wp, &ids[0], <int32_t>lanes.shape[0], &hashes[0], n, nrep,
                        &out[0, 0], &ts[0], &tp[0], &low[0])


# ---- JumpHash ------------------------------------------------------------------------------

cdef void _check_buckets(int64_t nb) except *:
    if nb < 1 or nb > JUMP_MAX_BUCKETS:
        raise ValueError(f"num_buckets: must be in 1..{JUMP_MAX_BUCKETS}, got {nb}")


def jump(uint64_t key, int64_t num_buckets):
    """Jump consistent hash (Lamping & Veach) of one 64-bit key, as an int."""
    _check_buckets(num_buckets)
    return rg_jump(key, num_buckets)


def jump_batch(const uint64_t[::1] keys not None, int64_t num_buckets,
               int32_t[::1] out not None):
    """Jump consistent hash of every raw 64-bit key (no hashing) into ``out``."""
    cdef int64_t n = keys.shape[0]
    _check_buckets(num_buckets)
    _check_out(n, out.shape[0])
    if n == 0:
        return
    with nogil:
        rg_jump_batch(&keys[0], n, num_buckets, &out[0])


def jump_assign_u64(const uint64_t[::1] keys not None, int64_t num_buckets,
                    int32_t[::1] out not None):
    """Jump of XXH64 (seed 0) of canonical integer keys, fused, into ``out``."""
    cdef int64_t n = keys.shape[0]
    _check_buckets(num_buckets)
    _check_out(n, out.shape[0])
    if n == 0:
        return
    with nogil:
        rg_jump_assign_u64(&keys[0], n, num_buckets, &out[0])


def jump_replicas(const uint64_t[::1] hashes not None, int64_t num_buckets, int nrep,
                  int32_t[:, ::1] out not None):
    """``nrep`` distinct buckets per key hash (contract section 11), primary first."""
    import numpy as np
    cdef int64_t n = hashes.shape[0]
    _check_buckets(num_buckets)
    if nrep < 1 or nrep > num_buckets:
        raise ValueError(f"n: must be in 1..{num_buckets}, got {nrep}")
    if out.shape[0] != n or out.shape[1] != nrep:
        raise ValueError(f"out: has shape {(out.shape[0], out.shape[1])}, expected {(n, nrep)}")
    if n == 0:
        return
    ch_arr = np.empty(nrep, dtype=np.int32)
    cdef int32_t[::1] ch = ch_arr
    with nogil:
        rg_jump_replicas(&hashes[0], n, num_buckets, nrep, &out[0, 0], &ch[0])
