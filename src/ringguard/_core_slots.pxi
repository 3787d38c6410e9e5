# Kernels of Redis Cluster slots and bounded loads, included into _core.pyx.
# Same discipline as the rest of the core: every length, offset and index is checked here
# with the GIL held; the C kernels (csrc/rg_slots.h) then run without it.

from libc.stdint cimport uint16_t


cdef extern from "rg_slots.h" nogil:
    uint16_t rg_crc16(const uint8_t *p, uint64_t length)
    uint16_t rg_redis_slot(const uint8_t *p, uint64_t length)
    void rg_slots_var(const uint8_t *data, const int64_t *offs, int64_t n, uint16_t *out)
    void rg_slots_fixed(const uint8_t *data, int64_t width, int64_t n, uint16_t *out)
    void rg_slots_decimal(const uint64_t *keys, int is_signed, int64_t n, uint16_t *out)
    void rg_slot_nodes(const uint16_t *slots, const int32_t *table, int64_t n, int32_t *out)
    uint16_t rg_max_u16(const uint16_t *v, int64_t n)
    void rg_assign_bounded(const int32_t *owners, uint32_t npoints, const int32_t *first,
                           int64_t n_keys, const int64_t *cap, int64_t *count, int32_t *out)


REDIS_SLOTS = 16384


def crc16(const uint8_t[::1] data not None):
    """CRC16-XMODEM (poly 0x1021, init 0, no reflection) of a bytes-like object, as an int."""
    return rg_crc16(&data[0] if data.shape[0] else _EMPTY, <uint64_t>data.shape[0])


def redis_slot_bytes(const uint8_t[::1] data not None):
    """Redis Cluster slot of one key given as bytes ({hash tag} rules included)."""
    return rg_redis_slot(&data[0] if data.shape[0] else _EMPTY, <uint64_t>data.shape[0])


def slots_var(const uint8_t[::1] data not None, const int64_t[::1] offsets not None,
              uint16_t[::1] out not None):
    """Redis Cluster slot of each variable-length key: item i is data[offsets[i]:offsets[i+1]]."""
    cdef int64_t n = offsets.shape[0] - 1
    check_offsets(offsets, data.shape[0])
    _check_out(n, out.shape[0])
    if n == 0:
        return
    cdef const uint8_t *dp = &data[0] if data.shape[0] else _EMPTY
    if n < NOGIL_MIN:
        rg_slots_var(dp, &offsets[0], n, &out[0])
    else:
        with nogil:
            rg_slots_var(dp, &offsets[0], n, &out[0])


def slots_fixed(const uint8_t[::1] data not None, int64_t width, uint16_t[::1] out not None):
    """Redis Cluster slot of each fixed-width key (NumPy ``S``), trailing NULs dropped."""
    cdef int64_t n = out.shape[0]
    if width < 1:
        raise ValueError(f"width: must be >= 1, got {width}")
    if data.shape[0] != n * width:
        raise ValueError(f"data: has {data.shape[0]} bytes, expected {n} x {width}")
    if n == 0:
        return
    if n < NOGIL_MIN:
        rg_slots_fixed(&data[0], width, n, &out[0])
    else:
        with nogil:
            rg_slots_fixed(&data[0], width, n, &out[0])


def slots_decimal(const uint64_t[::1] keys not None, bint is_signed, uint16_t[::1] out not None):
    """Redis Cluster slot of integer keys, hashed as their decimal text (as Redis sees them)."""
    cdef int64_t n = keys.shape[0]
    _check_out(n, out.shape[0])
    if n == 0:
        return
    if n < NOGIL_MIN:
        rg_slots_decimal(&keys[0], is_signed, n, &out[0])
    else:
        with nogil:
            rg_slots_decimal(&keys[0], is_signed, n, &out[0])


def slot_nodes(const uint16_t[::1] slots not None, const int32_t[::1] table not None,
               int32_t[::1] out not None):
    """``out[i] = table[slots[i]]``: the node of each slot through a 16384-entry table."""
    cdef int64_t n = slots.shape[0]
    cdef uint16_t mx
    _check_out(n, out.shape[0])
    if table.shape[0] != REDIS_SLOTS:
        raise ValueError(f"table: has {table.shape[0]} entries, expected {REDIS_SLOTS}")
    if n == 0:
        return
    with nogil:
        mx = rg_max_u16(&slots[0], n)
    if mx >= REDIS_SLOTS:
        raise ValueError(f"slots: value {mx} is outside 0..{REDIS_SLOTS - 1}")
    with nogil:
        rg_slot_nodes(&slots[0], &table[0], n, &out[0])


def assign_bounded(const int32_t[::1] owners not None, const int32_t[::1] first not None,
                   const int64_t[::1] cap not None, int32_t[::1] out not None):
    """Bounded-load assignment: keys in order walk clockwise from their point ``first[k]``
    to the first point whose node has room (``count < cap``); node index into ``out``.

    Sequential by nature (each key depends on the ones before), so one call, GIL released.
    Raises ``ValueError`` before any work when an index is out of range or the capacities
    of the nodes owning points cannot hold every key.
    """
    import numpy as np
    cdef int64_t n = first.shape[0], nnodes = cap.shape[0], i, room = 0
    cdef Py_ssize_t npoints = owners.shape[0]
    _check_out(n, out.shape[0])
    if npoints < 1 or npoints >= 2**31:
        raise ValueError(f"owners: need 1 .. 2**31-1 points, got {npoints}")
    for i in range(npoints):
        if owners[i] < 0 or owners[i] >= nnodes:
            raise ValueError(f"owners[{i}]: node index out of range")
    for i in range(nnodes):
        if cap[i] < 0:
            raise ValueError(f"cap[{i}]: capacity must be >= 0")
    for i in range(n):
        if first[i] < 0 or first[i] >= npoints:
            raise ValueError(f"first[{i}]: point index out of range")
    owning = np.zeros(nnodes, dtype=np.uint8)
    cdef uint8_t[::1] ow = owning
    for i in range(npoints):
        if not ow[owners[i]]:
            ow[owners[i]] = 1
            room += cap[owners[i]]
    if room < n:
        raise ValueError(f"max_load: capacities hold {room} keys, fewer than the {n} given")
    if n == 0:
        return
    counts = np.zeros(nnodes, dtype=np.int64)
    cdef int64_t[::1] cv = counts
    with nogil:
        rg_assign_bounded(&owners[0], <uint32_t>npoints, &first[0], n, &cap[0], &cv[0], &out[0])
