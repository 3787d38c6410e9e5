# cython: language_level=3, embedsignature=True, freethreading_compatible=True
# cython: cdivision=True
"""The compiled core of ringguard: the only module that touches raw buffers.

Every function validates its arguments (lengths, offsets, modes) with the GIL held and
then runs a plain-C kernel from ``csrc/`` without the GIL. Outputs are allocated by the
caller in Python (NumPy) and passed in; nothing here imports NumPy at the C level, so one
binary works with NumPy 1.x and 2.x.

This is an internal module: use :mod:`ringguard` instead.
"""

from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsUnsignedLongLong, PyLong_Check
from cpython.bool cimport PyBool_Check
from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.unicode cimport PyUnicode_Check


cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object o, Py_ssize_t *size) except NULL
    bint PyUnicode_IS_COMPACT_ASCII(object o)
    void *PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    long long PyLong_AsLongLongAndOverflow(object o, int *overflow) except? -1


cdef extern from "rg_records.h" nogil:
    void rg_record_digests(const uint8_t *data, const int64_t *koff, const int64_t *voff,
                           const uint8_t *tomb, const int64_t *epochs, const int64_t *seqs,
                           int64_t n, uint8_t *scratch, uint64_t *out)


cdef extern from "rg_route.h" nogil:
    void rg_route(const int32_t *prefs, int64_t n, int32_t r, const uint8_t *up,
                  int32_t *out_node, int8_t *out_pos)
    int64_t rg_check_indices(const int32_t *a, int64_t length, int32_t nnodes)


cdef extern from "rg_ring.h" nogil:
    enum:
        RG_MODE_XXH64
        RG_MODE_KETAMA_GE
        RG_MODE_KETAMA_GT
    ctypedef struct rg_ring:
        const uint64_t *points
        const int32_t *owners
        const uint32_t *start
        const int32_t *direct
        const uint8_t *direct8
        uint32_t npoints
        uint32_t shift
    int RG_DIRECT8_MIXED
    int rg_simd_set(int want)
    int rg_simd_get()
    uint64_t rg_xxh64(const uint8_t *p, uint64_t length, uint64_t seed)
    void rg_md5(const uint8_t *p, uint64_t length, uint8_t *digest)
    uint32_t rg_ketama_hash(const uint8_t *p, uint64_t length)
    void rg_assign_u64(const rg_ring *r, const uint64_t *keys, int64_t n, int32_t *out,
                       int want_index)
    void rg_assign_decimal(const rg_ring *r, int mode, const uint64_t *keys, int is_signed,
                           int64_t n, int32_t *out, int want_index)
    void rg_assign_var(const rg_ring *r, int mode, const uint8_t *data, const int64_t *offs,
                       int64_t n, int32_t *out, int want_index)
    void rg_assign_fixed(const rg_ring *r, int mode, const uint8_t *data, int64_t width,
                         int64_t n, int32_t *out, int want_index)
    void rg_replicas(const int32_t *owners, uint32_t npoints, const int32_t *zone_of,
                     int32_t nzones, const int32_t *first, int64_t n_keys, int32_t nrep,
                     int32_t *out, uint32_t *seen, uint32_t *zseen, int32_t *deferred,
                     uint32_t *gen)
    void rg_hash_var(int mode, const uint8_t *data, const int64_t *offs, int64_t n,
                     uint64_t *out)
    void rg_ketama_points(const uint8_t *data, const int64_t *offs, int64_t n, uint32_t *out)
    int64_t rg_check_offsets(const int64_t *offs, int64_t n, int64_t datalen)
    int64_t rg_ucs4_offsets(const uint32_t *cps, int64_t width, int64_t n, int64_t *offs)
    void rg_ucs4_encode(const uint32_t *cps, int64_t width, int64_t n, const int64_t *offs,
                        uint8_t *data)


# AVX2 kernels on when this CPU supports them (csrc/rg_common.h); scalar otherwise.
rg_simd_set(1)


def _simd(enable=None):
    """Whether the AVX2 kernels are in use; ``enable`` switches them (tests compare both).

    Returns the setting now in force, False when AVX2 was asked for but this CPU or build
    lacks it. Not for switching while kernels run in other threads.
    """
    if enable is not None:
        rg_simd_set(1 if enable else 0)
    return bool(rg_simd_get())


MODE_XXH64 = RG_MODE_XXH64
MODE_KETAMA_GE = RG_MODE_KETAMA_GE
MODE_KETAMA_GT = RG_MODE_KETAMA_GT

# Batches below this many keys keep the GIL. Releasing it costs well under a microsecond
# (measured: a 2048-key uint64 batch takes ~20 us with or without the release, within
# noise), so only batches shorter than a few microseconds of work keep it.
cdef int64_t NOGIL_MIN = 1024

cdef object _np_integer = None
# Kernels get a real address for empty buffers (never NULL + offset, which is undefined).
cdef uint8_t _EMPTY[1]


cdef inline void _check_mode(int mode) except *:
    if mode != RG_MODE_XXH64 and mode != RG_MODE_KETAMA_GE and mode != RG_MODE_KETAMA_GT:
        raise ValueError(f"mode: unknown hash mode {mode}")


cdef inline void _check_out(Py_ssize_t n, Py_ssize_t nout) except *:
    if nout != n:
        raise ValueError(f"out: has length {nout}, expected {n}")


def xxh64(const uint8_t[::1] data not None, uint64_t seed=0):
    """XXH64 of a bytes-like object (the xxHash specification), as an int."""
    cdef uint64_t h
    with nogil:
        h = rg_xxh64(&data[0] if data.shape[0] else _EMPTY, <uint64_t>data.shape[0], seed)
    return h


def record_digests(list keys not None, list values not None,
                   const int64_t[::1] epochs not None, const int64_t[::1] seqs not None,
                   uint64_t[::1] out not None):
    """XXH64 (seed 0) of each record's canonical encoding (``backends.base``): epoch and
    seq as 8-byte little-endian, a tombstone byte, the key length as 4 bytes, the key, the
    value. Keys must be bytes, values bytes or None, versions >= 0; each record is
    encoded into one reused buffer and hashed there (no per-record Python objects)."""
    cdef Py_ssize_t n = len(keys), i, klen, vlen, need, cap = 4096
    cdef object k, v
    cdef int64_t e, q
    cdef uint8_t *buf
    cdef bytearray store
    cdef int b
    if len(values) != n or epochs.shape[0] != n or seqs.shape[0] != n:
        raise ValueError(f"record_digests: {n} keys but {len(values)} values, "
                         f"{epochs.shape[0]} epochs, {seqs.shape[0]} seqs")
    _check_out(n, out.shape[0])
    store = bytearray(cap)
    buf = <uint8_t *>PyByteArray_AS_STRING(store)
    for i in range(n):
        k = keys[i]
        v = values[i]
        if not PyBytes_Check(k):
            raise TypeError(f"keys[{i}]: expected bytes, got {type(k).__name__}")
        if v is not None and not PyBytes_Check(v):
            raise TypeError(f"values[{i}]: expected bytes or None, got {type(v).__name__}")
        e = epochs[i]
        q = seqs[i]
        if e < 0 or q < 0:
            raise ValueError(f"records[{i}]: versions must be >= 0, got ({e}, {q})")
        klen = PyBytes_GET_SIZE(k)
        if klen > 0xFFFFFFFF:
            raise ValueError(f"keys[{i}]: longer than 2**32 - 1 bytes")
        vlen = 0 if v is None else PyBytes_GET_SIZE(v)
        need = 21 + klen + vlen
        if need > cap:
            cap = need + need // 2
            store = bytearray(cap)
            buf = <uint8_t *>PyByteArray_AS_STRING(store)
        for b in range(8):
            buf[b] = <uint8_t>((<uint64_t>e >> (8 * b)) & 0xFF)
            buf[8 + b] = <uint8_t>((<uint64_t>q >> (8 * b)) & 0xFF)
        buf[16] = 1 if v is None else 0
        for b in range(4):
            buf[17 + b] = <uint8_t>((<uint64_t>klen >> (8 * b)) & 0xFF)
        memcpy(buf + 21, PyBytes_AS_STRING(k), klen)
        if vlen:
            memcpy(buf + 21 + klen, PyBytes_AS_STRING(v), vlen)
        out[i] = rg_xxh64(buf, <uint64_t>need, 0)


def record_digests_columns(const uint8_t[::1] data not None, const int64_t[::1] koff not None,
                           const int64_t[::1] voff not None, const uint8_t[::1] tomb not None,
                           const int64_t[::1] epochs not None, const int64_t[::1] seqs not None,
                           uint64_t[::1] out not None):
    """:func:`record_digests` of records stored column-wise: key ``i`` is
    ``data[koff[i]:koff[i + 1]]``, value ``i`` is ``data[voff[i]:voff[i + 1]]`` (empty for
    a tombstone, ``tomb[i] != 0``). Every bound, version and length is checked before the
    kernel runs without the GIL."""
    cdef int64_t n = koff.shape[0] - 1, i, need, big = 0
    if n < 0 or voff.shape[0] != n + 1:
        raise ValueError(f"record_digests_columns: koff has {koff.shape[0]} entries, voff "
                         f"{voff.shape[0]}; both need n + 1 >= 1")
    if tomb.shape[0] != n or epochs.shape[0] != n or seqs.shape[0] != n:
        raise ValueError(f"record_digests_columns: {n} records but {tomb.shape[0]} tombstone "
                         f"flags, {epochs.shape[0]} epochs, {seqs.shape[0]} seqs")
    _check_out(n, out.shape[0])
    if n == 0:
        return
    check_offsets(koff, data.shape[0])
    try:
        check_offsets(voff, data.shape[0])
    except ValueError as exc:
        raise ValueError(str(exc).replace("keys[", "values[", 1)) from None
    for i in range(n):
        if epochs[i] < 0 or seqs[i] < 0:
            raise ValueError(f"records[{i}]: versions must be >= 0, got "
                             f"({epochs[i]}, {seqs[i]})")
        if koff[i + 1] - koff[i] > 0xFFFFFFFF:
            raise ValueError(f"keys[{i}]: longer than 2**32 - 1 bytes")
        if tomb[i] and voff[i + 1] != voff[i]:
            raise ValueError(f"values[{i}]: a tombstone with a value")
        need = 21 + (koff[i + 1] - koff[i]) + (voff[i + 1] - voff[i])
        if need > big:
            big = need
    scratch = bytearray(big)
    cdef uint8_t *sp = <uint8_t *>PyByteArray_AS_STRING(scratch)
    cdef const uint8_t *dp = &data[0] if data.shape[0] else _EMPTY
    with nogil:
        rg_record_digests(dp, &koff[0], &voff[0], &tomb[0], &epochs[0], &seqs[0], n, sp,
                          &out[0])


def md5(const uint8_t[::1] data not None):
    """MD5 digest (RFC 1321) of a bytes-like object, as 16 bytes."""
    cdef uint8_t digest[16]
    rg_md5(&data[0] if data.shape[0] else _EMPTY, <uint64_t>data.shape[0], digest)
    return <bytes>digest[:16]


def ketama_hash(const uint8_t[::1] data not None):
    """libketama's key hash: the first 4 bytes of MD5, little-endian, as an int."""
    return rg_ketama_hash(&data[0] if data.shape[0] else _EMPTY, <uint64_t>data.shape[0])


def check_offsets(const int64_t[::1] offsets not None, Py_ssize_t datalen):
    """Raise ``ValueError`` naming the first item whose offsets leave ``data``."""
    cdef int64_t n = offsets.shape[0] - 1, bad
    if n < 0:
        raise ValueError("offsets: must have at least one entry")
    bad = rg_check_offsets(&offsets[0], n, datalen)
    if bad >= 0:
        raise ValueError(
            f"keys[{bad}]: offsets {offsets[bad]}..{offsets[bad + 1]} are outside the "
            f"{datalen}-byte data buffer or decreasing")


def hash_var(int mode, const uint8_t[::1] data not None, const int64_t[::1] offsets not None,
             uint64_t[::1] out not None):
    """Hash every item of a (data, offsets) batch into ``out`` (ring space)."""
    cdef int64_t n = offsets.shape[0] - 1
    _check_mode(mode)
    check_offsets(offsets, data.shape[0])
    _check_out(n, out.shape[0])
    if n == 0:
        return
    cdef const uint8_t *dp = &data[0] if data.shape[0] else _EMPTY
    with nogil:
        rg_hash_var(mode, dp, &offsets[0], n, &out[0])


def ketama_points(const uint8_t[::1] data not None, const int64_t[::1] offsets not None,
                  uint32_t[::1] out not None):
    """The four libketama points of each item's MD5 digest, into ``out`` (4 per item)."""
    cdef int64_t n = offsets.shape[0] - 1
    check_offsets(offsets, data.shape[0])
    _check_out(4 * n, out.shape[0])
    if n == 0:
        return
    cdef const uint8_t *dp = &data[0] if data.shape[0] else _EMPTY
    with nogil:
        rg_ketama_points(dp, &offsets[0], n, &out[0])


def ucs4_to_utf8(const uint32_t[:, ::1] cps not None):
    """Encode a 2-D array of UCS-4 code points (NumPy ``U`` items) as UTF-8.

    Returns ``(data, offsets)`` as bytearray/int64 memory; raises ``ValueError`` naming the
    first item that holds a surrogate or a value above U+10FFFF.
    """
    import numpy as np
    cdef int64_t n = cps.shape[0], width = cps.shape[1], bad
    offsets = np.empty(n + 1, dtype=np.int64)
    cdef int64_t[::1] offs = offsets
    if n == 0 or width == 0:
        offsets[:] = 0
        return np.empty(0, dtype=np.uint8), offsets
    with nogil:
        bad = rg_ucs4_offsets(&cps[0, 0], width, n, &offs[0])
    if bad >= 0:
        raise ValueError(f"keys[{bad}]: not encodable as UTF-8 (surrogate or invalid code point)")
    data = np.empty(max(offs[n], 1), dtype=np.uint8)
    cdef uint8_t[::1] dv = data
    with nogil:
        rg_ucs4_encode(&cps[0, 0], width, n, &offs[0], &dv[0])
    return data[:offs[n]], offsets


cdef inline str _describe(object item):
    return type(item).__name__


cdef extern from *:
    """
    /* Packing a list/tuple of str/bytes keys into one buffer (encode_sequence). The loop
     * reads each item through a borrowed reference and runs no Python code (the UTF-8 of a
     * non-ASCII str is computed by CPython itself and cached in the object), so the list
     * cannot change under it; it stops and returns whenever the caller must do something
     * that could run Python code (grow the buffer, raise). Free-threaded builds get a tuple
     * copy from the caller instead, so no other thread can change the items. */
    #ifdef Py_GIL_DISABLED
    #define RG_FREE_THREADED 1
    #else
    #define RG_FREE_THREADED 0
    #endif
    #if defined(__GNUC__) || defined(__clang__)
    #define RG_PREFETCH(p) __builtin_prefetch((const void *)(p))
    #else
    #define RG_PREFETCH(p) ((void)0)
    #endif
    #define RG_PACK_AHEAD 8
    enum { RG_PACK_ERROR = -1, RG_PACK_DONE = 0, RG_PACK_BAD_TYPE = 1, RG_PACK_FULL = 2 };

    /* Copy a short item with a few overlapping fixed-size moves (no libc call); every read
     * stays inside src[0..n) and every write inside dst[0..n). */
    static CYTHON_INLINE void rg_copy_key(uint8_t *dst, const uint8_t *src, Py_ssize_t n) {
        if (n >= 16 && n <= 32) {
            memcpy(dst, src, 16);
            memcpy(dst + n - 16, src + n - 16, 16);
        } else if (n >= 8 && n < 16) {
            memcpy(dst, src, 8);
            memcpy(dst + n - 8, src + n - 8, 8);
        } else if (n >= 4 && n < 8) {
            memcpy(dst, src, 4);
            memcpy(dst + n - 4, src + n - 4, 4);
        } else if (n > 0 && n < 4) {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        } else if (n > 32) {
            memcpy(dst, src, (size_t)n);
        }
    }

    /* Pack items [*pos, n) of a list or tuple; data has cap bytes, offs n + 1 entries with
     * offs[*pos] already set. Returns an RG_PACK_* code with *pos at the item it stopped on
     * (RG_PACK_FULL: the item needs *need bytes of room; RG_PACK_ERROR: a Python exception
     * is set). */
    static int rg_pack_bytes(PyObject *seq, Py_ssize_t n, Py_ssize_t *pos, uint8_t *data,
                             int64_t cap, int64_t *offs, int64_t *need) {
        Py_ssize_t i = *pos, size;
        int64_t total = offs[i];
        for (; i < n; i++) {
            PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
            const char *p;
            if (i + RG_PACK_AHEAD < n) RG_PREFETCH(PySequence_Fast_GET_ITEM(seq, i + RG_PACK_AHEAD));
            if (PyUnicode_Check(item)) {
                if (PyUnicode_IS_COMPACT_ASCII(item)) {
                    p = (const char *)PyUnicode_DATA(item);
                    size = PyUnicode_GET_LENGTH(item);
                } else {
                    p = PyUnicode_AsUTF8AndSize(item, &size);
                    if (p == NULL) { *pos = i; return RG_PACK_ERROR; }
                }
            } else if (PyBytes_Check(item)) {
                p = PyBytes_AS_STRING(item);
                size = PyBytes_GET_SIZE(item);
            } else {
                *pos = i;
                return RG_PACK_BAD_TYPE;
            }
            if (size > cap - total) {
                *pos = i;
                *need = total + size;
                return RG_PACK_FULL;
            }
            rg_copy_key(data + total, (const uint8_t *)p, size);
            total += size;
            offs[i + 1] = total;
        }
        *pos = n;
        return RG_PACK_DONE;
    }
    """
    int RG_FREE_THREADED
    enum:
        RG_PACK_ERROR
        RG_PACK_DONE
        RG_PACK_BAD_TYPE
        RG_PACK_FULL
    int rg_pack_bytes(object seq, Py_ssize_t n, Py_ssize_t *pos, uint8_t *data, int64_t cap,
                      int64_t *offs, int64_t *need) except RG_PACK_ERROR
    Py_ssize_t PySequence_Fast_GET_SIZE(object o)


cdef extern from *:
    """
    /* Lookup of a list/tuple of str/bytes keys straight from the objects (Ring.assign with
     * one thread): each key is hashed where it lies, in blocks of RG_STR_BLOCK so the
     * multiplies of neighbouring keys overlap, then the block is looked up. Nothing is
     * copied into a packed buffer and read back. Same reading rules as rg_pack_bytes (a
     * borrowed reference per item, no Python code run), so the sequence cannot change
     * under it; it gives up (RG_PACK_BAD_TYPE, or RG_PACK_ERROR with an exception set) at
     * the first item it cannot read, and the caller then takes the general path, which
     * names the problem. */
    static CYTHON_INLINE int rg_seq_item(PyObject *item, const uint8_t **p, Py_ssize_t *size) {
        if (PyUnicode_Check(item)) {
            if (PyUnicode_IS_COMPACT_ASCII(item)) {
                *p = (const uint8_t *)PyUnicode_DATA(item);
                *size = PyUnicode_GET_LENGTH(item);
                return RG_PACK_DONE;
            }
            *p = (const uint8_t *)PyUnicode_AsUTF8AndSize(item, size);
            return *p == NULL ? RG_PACK_ERROR : RG_PACK_DONE;
        }
        if (PyBytes_Check(item)) {
            *p = (const uint8_t *)PyBytes_AS_STRING(item);
            *size = PyBytes_GET_SIZE(item);
            return RG_PACK_DONE;
        }
        return RG_PACK_BAD_TYPE;
    }

    static int rg_assign_seq(const rg_ring *r, int mode, PyObject *seq, Py_ssize_t n,
                             int32_t *out, int want_index) {
        uint64_t h[RG_STR_BLOCK];
        Py_ssize_t i = 0, size;
        const uint8_t *p;
        int j, status;
        if (mode == RG_MODE_XXH64 && !want_index) {
            for (; i + RG_STR_BLOCK <= n; i += RG_STR_BLOCK) {
                if (i + RG_STR_BLOCK + RG_PACK_AHEAD <= n) {
                    for (j = 0; j < RG_STR_BLOCK; j++)
                        RG_PREFETCH(PySequence_Fast_GET_ITEM(seq, i + RG_PACK_AHEAD + j));
                }
                for (j = 0; j < RG_STR_BLOCK; j++) {
                    status = rg_seq_item(PySequence_Fast_GET_ITEM(seq, i + j), &p, &size);
                    if (status != RG_PACK_DONE) return status;
                    h[j] = rg_xxh64_inline(p, (uint64_t)size, 0);
                }
                rg_ring_owners(r, h, RG_STR_BLOCK, out + i);
            }
        }
        for (; i < n; i++) {
            status = rg_seq_item(PySequence_Fast_GET_ITEM(seq, i), &p, &size);
            if (status != RG_PACK_DONE) return status;
            out[i] = rg_ring_result(r, rg_hash_bytes(mode, p, (uint64_t)size), want_index);
        }
        return RG_PACK_DONE;
    }
    """
    int rg_assign_seq(const rg_ring *r, int mode, object seq, Py_ssize_t n, int32_t *out,
                      int want_index) except RG_PACK_ERROR


def encode_sequence(seq):
    """Turn a list/tuple of keys into contiguous buffers (the key rule, one pass in C).

    Returns ``("bytes", data, offsets)`` for str/bytes keys (str as UTF-8), or
    ``("int", values, has_negative, has_big)`` for integer keys, values as canonical uint64
    (two's complement). Raises ``TypeError``/``ValueError`` naming the first bad index.
    """
    global _np_integer
    import numpy as np
    if _np_integer is None:
        _np_integer = np.integer
    cdef object items
    # Lists and tuples are read in place (see rg_pack_bytes); anything else, and lists on a
    # free-threaded build, through a tuple copy.
    if type(seq) is tuple or (type(seq) is list and not RG_FREE_THREADED):
        items = seq
    else:
        items = tuple(seq)
    cdef Py_ssize_t n = PySequence_Fast_GET_SIZE(items)
    if n == 0:
        return "bytes", np.empty(0, dtype=np.uint8), np.zeros(1, dtype=np.int64)
    first = items[0]
    if PyUnicode_Check(first) or PyBytes_Check(first):
        return _encode_bytes(items, n)
    if _is_int(first):
        return _encode_ints(tuple(items))
    raise TypeError(f"keys[0]: expected str, bytes or int, got {_describe(first)}")


cdef inline bint _is_int(object item):
    return (PyLong_Check(item) and not PyBool_Check(item)) or isinstance(item, _np_integer)


cdef tuple _encode_bytes(object items, Py_ssize_t n):
    # One pass over the objects (they are scattered in memory: touching each once is what
    # costs), packing into a buffer sized for 32-byte keys: pages it never writes are never
    # touched, so the estimate costs address space only; longer keys double it.
    import numpy as np
    cdef Py_ssize_t pos = 0
    cdef int64_t cap = 32 * <int64_t>n + 4096, need = 0
    cdef int status
    offsets = np.empty(n + 1, dtype=np.int64)
    cdef int64_t[::1] offs = offsets
    data = np.empty(cap, dtype=np.uint8)
    cdef uint8_t[::1] dv = data
    offs[0] = 0
    while True:
        try:
            status = rg_pack_bytes(items, n, &pos, &dv[0], cap, &offs[0], &need)
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"keys[{pos}]: str is not encodable as UTF-8 ({exc.reason})") from None
        if status == RG_PACK_DONE:
            break
        if status == RG_PACK_FULL:
            # Growing may run Python code (a collection): check the list afterwards.
            cap = max(2 * cap, need + 4096)
            grown = np.empty(cap, dtype=np.uint8)
            grown[:offs[pos]] = data[:offs[pos]]
            data = grown
            dv = data
            if PySequence_Fast_GET_SIZE(items) != n:
                raise RuntimeError("keys: the list changed size while it was being read")
            continue
        item = items[pos]
        if _is_int(item):
            raise TypeError(f"keys[{pos}]: mixed key types: int in a batch of str/bytes keys")
        raise TypeError(f"keys[{pos}]: expected str, bytes or int, got {_describe(item)}")
    return "bytes", data[:offs[n]], offsets


cdef tuple _encode_ints(tuple items):
    import numpy as np
    cdef Py_ssize_t n = len(items), i
    cdef int overflow = 0
    cdef long long v
    cdef bint has_negative = False, has_big = False
    values = np.empty(n, dtype=np.uint64)
    cdef uint64_t[::1] vv = values
    for i in range(n):
        item = items[i]
        if not PyLong_Check(item) or PyBool_Check(item):
            if PyBool_Check(item) or not isinstance(item, _np_integer):
                if PyUnicode_Check(item) or PyBytes_Check(item):
                    raise TypeError(f"keys[{i}]: mixed key types: {_describe(item)} in a batch of int keys")
                raise TypeError(f"keys[{i}]: expected str, bytes or int, got {_describe(item)}")
            item = int(item)
        v = PyLong_AsLongLongAndOverflow(item, &overflow)
        if overflow == 0:
            vv[i] = <uint64_t>v
            if v < 0:
                has_negative = True
        elif overflow > 0:
            try:
                vv[i] = PyLong_AsUnsignedLongLong(item)
            except OverflowError:
                raise ValueError(f"keys[{i}]: integer {item} is outside [-2**63, 2**64)") from None
            has_big = True
        else:
            raise ValueError(f"keys[{i}]: integer {item} is outside [-2**63, 2**64)")
    return "int", values, has_negative, has_big


cdef class CoreRing:
    """A sorted ring of 64-bit points with its bucket index, ready for batch lookups.

    Built by :mod:`ringguard.placement` from NumPy arrays that it keeps read-only; this
    object holds references to them so the pointers stay valid.
    """

    cdef rg_ring ring
    cdef readonly object points, owners, start, direct
    cdef object _direct8
    cdef readonly int bits
    cdef readonly int distinct_owners

    def __cinit__(self, points, owners, start, direct, int bits):
        cdef const uint64_t[::1] pv = points
        cdef const int32_t[::1] ov = owners
        cdef const uint32_t[::1] sv = start
        cdef const int32_t[::1] dv = direct
        cdef const uint8_t[::1] d8v
        cdef Py_ssize_t npoints = pv.shape[0], i
        if npoints < 1 or npoints >= 2**31:
            raise ValueError(f"points: need 1 .. 2**31-1 points, got {npoints}")
        if ov.shape[0] != npoints:
            raise ValueError("owners: length differs from points")
        if bits < 1 or bits > 24:
            raise ValueError(f"bits: must be in 1..24, got {bits}")
        if sv.shape[0] != (1 << bits) + 1 or dv.shape[0] != (1 << bits):
            raise ValueError("start/direct: wrong table size for bits")
        for i in range(npoints):
            if ov[i] < 0:
                raise ValueError(f"owners[{i}]: negative node index")
            if i and pv[i] < pv[i - 1]:
                raise ValueError(f"points[{i}]: points are not sorted")
        for i in range(sv.shape[0]):
            if sv[i] > npoints or (i and sv[i] < sv[i - 1]):
                raise ValueError(f"start[{i}]: bucket table is inconsistent")
        self.points, self.owners, self.start, self.direct, self.bits = points, owners, start, direct, bits
        import numpy as np
        self.distinct_owners = int(np.count_nonzero(np.bincount(np.asarray(owners))))
        self.ring.points = &pv[0]
        self.ring.owners = &ov[0]
        self.ring.start = &sv[0]
        self.ring.direct = &dv[0]
        # A byte copy of the table when every owner fits below the "holds a point" marker.
        self.ring.direct8 = NULL
        d = np.asarray(direct)
        if int(d.max()) < RG_DIRECT8_MIXED:
            self._direct8 = np.where(d < 0, RG_DIRECT8_MIXED, d).astype(np.uint8)
            d8v = self._direct8
            self.ring.direct8 = &d8v[0]
        self.ring.npoints = <uint32_t>npoints
        self.ring.shift = <uint32_t>(64 - bits)

    def assign_u64(self, const uint64_t[::1] keys not None, int32_t[::1] out not None,
                   bint want_index=False):
        """XXH64-ring lookup of canonical integer keys into ``out``."""
        cdef int64_t n = keys.shape[0]
        _check_out(n, out.shape[0])
        if n == 0:
            return
        if n < NOGIL_MIN:
            rg_assign_u64(&self.ring, &keys[0], n, &out[0], want_index)
        else:
            with nogil:
                rg_assign_u64(&self.ring, &keys[0], n, &out[0], want_index)

    def assign_decimal(self, int mode, const uint64_t[::1] keys not None, bint is_signed,
                       int32_t[::1] out not None, bint want_index=False):
        """Lookup of integer keys hashed as their decimal text (ketama)."""
        cdef int64_t n = keys.shape[0]
        _check_mode(mode)
        _check_out(n, out.shape[0])
        if n == 0:
            return
        with nogil:
            rg_assign_decimal(&self.ring, mode, &keys[0], is_signed, n, &out[0], want_index)

    def assign_var(self, int mode, const uint8_t[::1] data not None,
                   const int64_t[::1] offsets not None, int32_t[::1] out not None,
                   bint want_index=False):
        """Lookup of variable-length byte-string keys: item i is data[offsets[i]:offsets[i+1]]."""
        cdef int64_t n = offsets.shape[0] - 1
        _check_mode(mode)
        check_offsets(offsets, data.shape[0])
        _check_out(n, out.shape[0])
        if n == 0:
            return
        cdef const uint8_t *dp = &data[0] if data.shape[0] else _EMPTY
        if n < NOGIL_MIN:
            rg_assign_var(&self.ring, mode, dp, &offsets[0], n, &out[0], want_index)
        else:
            with nogil:
                rg_assign_var(&self.ring, mode, dp, &offsets[0], n, &out[0], want_index)

    def assign_seq(self, int mode, seq, int32_t[::1] out not None, bint want_index=False):
        """Lookup of a list or tuple of str/bytes keys read in place (no packed copy).

        Returns False, having written nothing that matters, if some item is not str/bytes
        or cannot be encoded, or if the sequence is not a list/tuple that can be read in
        place: the caller then takes the general path, which raises the precise error.
        The GIL is held throughout (the items are Python objects).
        """
        cdef Py_ssize_t n
        cdef int status
        _check_mode(mode)
        if not (type(seq) is tuple or (type(seq) is list and not RG_FREE_THREADED)):
            return False
        n = PySequence_Fast_GET_SIZE(seq)
        _check_out(n, out.shape[0])
        if n == 0:
            return True
        try:
            status = rg_assign_seq(&self.ring, mode, seq, n, &out[0], want_index)
        except UnicodeEncodeError:
            return False
        return status == RG_PACK_DONE

    def assign_fixed(self, int mode, const uint8_t[::1] data not None, int64_t width,
                     int32_t[::1] out not None, bint want_index=False):
        """Lookup of fixed-width byte strings (NumPy ``S``), trailing NULs dropped."""
        cdef int64_t n = out.shape[0]
        _check_mode(mode)
        if width < 1:
            raise ValueError(f"width: must be >= 1, got {width}")
        if data.shape[0] != n * width:
            raise ValueError(f"data: has {data.shape[0]} bytes, expected {n} x {width}")
        if n == 0:
            return
        with nogil:
            rg_assign_fixed(&self.ring, mode, &data[0], width, n, &out[0], want_index)

    def replicas(self, const int32_t[::1] first not None, int nrep, int nnodes,
                 const int32_t[::1] zone_of, int nzones, int32_t[:, ::1] out not None):
        """Preference lists of ``nrep`` distinct nodes from each key's point index ``first``.

        ``zone_of`` (or None) maps node index -> zone index in ``0..nzones``. The caller
        guarantees (and this checks) that ``nrep`` distinct nodes own points.
        """
        import numpy as np
        cdef int64_t n = first.shape[0], i
        cdef uint32_t npoints = self.ring.npoints, gen = 0
        cdef const int32_t *zp = NULL
        if out.shape[0] != n or out.shape[1] != nrep:
            raise ValueError(f"out: has shape {(out.shape[0], out.shape[1])}, expected {(n, nrep)}")
        if nnodes < 1:
            raise ValueError("nnodes: must be >= 1")
        cdef int distinct = self.distinct_owners
        if int(np.asarray(self.owners).max()) >= nnodes:
            raise ValueError("nnodes: smaller than the largest owner index")
        if n >= 0xFFFFFFF0:
            raise ValueError("first: too many keys for one call; split the batch")
        if nrep < 1 or nrep > distinct:
            raise ValueError(f"n: must be in 1..{distinct}, got {nrep}")
        if zone_of is not None:
            if zone_of.shape[0] != nnodes or nzones < 1:
                raise ValueError("zone_of: must map every node to a zone")
            for i in range(nnodes):
                if zone_of[i] < 0 or zone_of[i] >= nzones:
                    raise ValueError(f"zone_of[{i}]: zone index out of range")
            zp = &zone_of[0]
        for i in range(n):
            if first[i] < 0 or <uint32_t>first[i] >= npoints:
                raise ValueError(f"first[{i}]: point index out of range")
        if n == 0:
            return
        seen_arr = np.zeros(nnodes, dtype=np.uint32)
        zseen_arr = np.zeros(max(nzones, 1), dtype=np.uint32)
        deferred_arr = np.zeros(nrep, dtype=np.int32)
        cdef uint32_t[::1] seen = seen_arr
        cdef uint32_t[::1] zseen = zseen_arr
        cdef int32_t[::1] deferred = deferred_arr
        with nogil:
            rg_replicas(self.ring.owners, npoints, zp, nzones, &first[0], n, nrep,
                        &out[0, 0], &seen[0], &zseen[0], &deferred[0], &gen)


def gather_rows(const int32_t[:, ::1] table not None, const int32_t[::1] first not None,
                int32_t[:, ::1] out not None):
    """``out[k] = table[first[k]]`` (a ring's per-point preference lists, gathered per key).

    Raises ``ValueError`` naming the first index that is not a row of ``table``, before
    anything is written.
    """
    cdef int64_t n = first.shape[0], i, bad = -1
    cdef int64_t nrows = table.shape[0], width = table.shape[1], j
    if out.shape[0] != n or out.shape[1] != width:
        raise ValueError(f"out: has shape {(out.shape[0], out.shape[1])}, expected {(n, width)}")
    if n == 0 or width == 0:
        return
    with nogil:
        for i in range(n):
            if first[i] < 0 or first[i] >= nrows:
                bad = i
                break
    if bad >= 0:
        raise ValueError(f"first[{bad}]: {first[bad]} is not a row index in 0..{nrows - 1}")
    with nogil:
        if width == 2:
            for i in range(n):
                out[i, 0] = table[first[i], 0]
                out[i, 1] = table[first[i], 1]
        elif width == 3:
            for i in range(n):
                out[i, 0] = table[first[i], 0]
                out[i, 1] = table[first[i], 1]
                out[i, 2] = table[first[i], 2]
        else:
            for i in range(n):
                for j in range(width):
                    out[i, j] = table[first[i], j]


def route(const int32_t[:, ::1] prefs not None, const uint8_t[::1] up not None,
          int32_t[::1] out_node not None, int8_t[::1] out_pos not None):
    """Acting node (first replica flagged up) and its position for every preference list.

    ``prefs`` is ``(n_keys, r)`` node indices, ``up`` one flag per node; writes ``-1`` where
    no replica is up. Raises ``ValueError`` naming the first entry that is not a node index.
    """
    cdef int64_t n = prefs.shape[0], bad
    cdef int32_t r = <int32_t>prefs.shape[1]
    cdef int32_t nnodes = <int32_t>up.shape[0]
    if r < 1 or r > 127:
        raise ValueError(f"prefs: need 1..127 replicas per key, got {r}")
    _check_out(n, out_node.shape[0])
    _check_out(n, out_pos.shape[0])
    if n == 0:
        return
    with nogil:
        bad = rg_check_indices(&prefs[0, 0], n * r, nnodes)
    if bad >= 0:
        raise ValueError(f"prefs[{bad // r}, {bad % r}]: {prefs[bad // r, bad % r]} is not a "
                         f"node index in 0..{nnodes - 1}")
    with nogil:
        rg_route(&prefs[0, 0], n, r, &up[0], &out_node[0], &out_pos[0])


include "_core_algos.pxi"
include "_core_slots.pxi"
