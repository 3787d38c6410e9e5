/* ringguard: batch kernels over a sorted ring of 64-bit points.
 *
 * Plain C11, no Python.h, no allocation. Every function here trusts its arguments: the
 * Cython layer (_core.pyx) checks lengths, offsets and table sizes with the GIL held before
 * calling them, so nothing below can index out of bounds.
 *
 * Lookup: the first point with value >= h (wrapping to point 0). A bucket table over the
 * top `bits` bits of the hash makes that O(1) for nearly every key: `direct[b]` is the
 * owning node when bucket b holds no point (every hash in it has the same successor), and
 * -1 otherwise; then a short scan over the points inside the bucket finds the successor.
 * With fewer than 255 nodes the kernels read a byte copy of that table instead (direct8:
 * 255 marks a bucket that holds a point), a quarter of the cache footprint.
 */
#ifndef RG_RING_H
#define RG_RING_H

#include "rg_common.h"
#include "xxh64.h"
#include "md5.h"

enum { RG_MODE_XXH64 = 0, RG_MODE_KETAMA_GE = 1, RG_MODE_KETAMA_GT = 2 };

typedef struct {
    const uint64_t *points; /* sorted ascending, npoints >= 1 */
    const int32_t *owners;  /* node index of each point */
    const uint32_t *start;  /* 2^bits + 1 entries: first point index >= bucket lower bound */
    const int32_t *direct;  /* 2^bits entries: owner if the bucket holds no point, else -1 */
    const uint8_t *direct8; /* NULL, or direct as bytes with RG_DIRECT8_MIXED for -1 */
    uint32_t npoints;
    uint32_t shift; /* 64 - bits, >= 40: a bucket index only reads the top 24 bits */
} rg_ring;

#define RG_DIRECT8_MIXED 255

/* AVX2 kernels in use (rg_simd_set, called once at import; 0 until then). */
static int rg_simd_avx2 = 0;

/* Use the AVX2 kernels when `want` and the CPU supports them; returns whether they are on. */
RG_INLINE int rg_simd_set(int want) {
    rg_simd_avx2 = want && rg_cpu_has_avx2();
    return rg_simd_avx2;
}

RG_INLINE int rg_simd_get(void) { return rg_simd_avx2; }

/* Index of the first point >= h, wrapping to 0. */
RG_INLINE uint32_t rg_ring_find(const rg_ring *r, uint64_t h) {
    uint64_t b = h >> r->shift;
    uint32_t i = r->start[b], end = r->start[b + 1];
    while (i < end && r->points[i] < h) i++;
    return i == r->npoints ? 0u : i;
}

/* Node owning hash h. */
RG_INLINE int32_t rg_ring_owner(const rg_ring *r, uint64_t h) {
    int32_t d;
    if (r->direct8 != NULL) {
        d = r->direct8[h >> r->shift];
        if (d != RG_DIRECT8_MIXED) return d;
    } else {
        d = r->direct[h >> r->shift];
        if (d >= 0) return d;
    }
    return r->owners[rg_ring_find(r, h)];
}

/* Owners of a block of hashes: the table loads are issued together, after the hashing. */
RG_INLINE void rg_ring_owners(const rg_ring *r, const uint64_t *h, int n, int32_t *out) {
    const unsigned shift = r->shift;
    int j;
    if (r->direct8 != NULL) {
        const uint8_t *const d8 = r->direct8;
        for (j = 0; j < n; j++) {
            int32_t d = d8[h[j] >> shift];
            out[j] = d != RG_DIRECT8_MIXED ? d : r->owners[rg_ring_find(r, h[j])];
        }
    } else {
        const int32_t *const d32 = r->direct;
        for (j = 0; j < n; j++) {
            int32_t d = d32[h[j] >> shift];
            out[j] = d >= 0 ? d : r->owners[rg_ring_find(r, h[j])];
        }
    }
}

RG_INLINE int32_t rg_ring_result(const rg_ring *r, uint64_t h, int want_index) {
    return want_index ? (int32_t)rg_ring_find(r, h) : rg_ring_owner(r, h);
}

/* Key hash in ring space. Ketama hashes are 32-bit: they live in the top half so that
 * "first point >= h" keeps its meaning; "first point > h" (uhashring) is ">= h + 1". */
RG_INLINE uint64_t rg_hash_bytes(int mode, const uint8_t *p, uint64_t len) {
    uint64_t k;
    if (mode == RG_MODE_XXH64) return rg_xxh64(p, len, 0);
    k = (uint64_t)rg_ketama_hash(p, len) << 32;
    return mode == RG_MODE_KETAMA_GT ? k + 1u : k;
}

/* Decimal text of an integer key (libketama clients hash str(key)); returns its length. */
RG_INLINE unsigned rg_format_decimal(uint64_t v, int is_signed, uint8_t buf[24]) {
    uint8_t tmp[24];
    unsigned n = 0, len = 0;
    uint64_t mag = v;
    if (is_signed && (int64_t)v < 0) {
        buf[len++] = '-';
        mag = ~v + 1u; /* magnitude of a negative two's complement value, INT64_MIN included */
    }
    do { tmp[n++] = (uint8_t)('0' + (mag % 10u)); mag /= 10u; } while (mag);
    while (n) buf[len++] = tmp[--n];
    return len;
}

/* ---- batch kernels: each fills out[0..n) ---------------------------------------------- */

/* Canonical integer keys, hashed with XXH64. The bucket index needs only the top bits of
 * the hash, which rg_xxh64_u64_top already has; the full hash is finished only for keys
 * whose bucket holds a point (about npoints / 2^bits of them). Table fields are copied to
 * locals so the compiler keeps them in registers (stores to out may alias them under
 * -fno-strict-aliasing otherwise). */
RG_INLINE int32_t rg_owner_slow(const rg_ring *r, uint64_t top) {
    return r->owners[rg_ring_find(r, rg_xxh64_u64_finish(top))];
}

static void rg_assign_u64_scalar(const rg_ring *r, const uint64_t *keys, int64_t n,
                                 int32_t *out) {
    const unsigned shift = r->shift;
    int64_t i;
    if (r->direct8 != NULL) {
        const uint8_t *const d8 = r->direct8;
        for (i = 0; i < n; i++) {
            uint64_t t = rg_xxh64_u64_top(keys[i], 0);
            int32_t d = d8[t >> shift];
            out[i] = d != RG_DIRECT8_MIXED ? d : rg_owner_slow(r, t);
        }
    } else {
        const int32_t *const d32 = r->direct;
        for (i = 0; i < n; i++) {
            uint64_t t = rg_xxh64_u64_top(keys[i], 0);
            int32_t d = d32[t >> shift];
            out[i] = d >= 0 ? d : rg_owner_slow(r, t);
        }
    }
}

#if RG_HAVE_AVX2
/* Groups of 8 keys: 4 hashed in AVX2 lanes and 4 with scalar multiplies at the same time
 * (the vector and the integer multipliers are separate units, and AVX2 needs three 32-bit
 * multiplies per 64-bit one, so neither alone keeps up), then 8 table loads. */
#define RG_U64_GROUP(TABLE, HIT)                                                             \
    for (; i + 8 <= n; i += 8) {                                                             \
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(keys + i));          \
        _mm256_storeu_si256((__m256i *)(void *)b, _mm256_srl_epi64(rg_xxh64_u64_top_x4(v), sh)); \
        for (j = 4; j < 8; j++) b[j] = rg_xxh64_u64_top(keys[i + j], 0) >> shift;            \
        for (j = 0; j < 8; j++) {                                                            \
            int32_t d = (TABLE)[b[j]];                                                       \
            out[i + j] = (HIT) ? d : rg_owner_slow(r, rg_xxh64_u64_top(keys[i + j], 0));     \
        }                                                                                    \
    }

RG_TARGET_AVX2 static void rg_assign_u64_avx2(const rg_ring *r, const uint64_t *keys, int64_t n,
                                              int32_t *out) {
    const unsigned shift = r->shift;
    const __m128i sh = _mm_cvtsi32_si128((int)shift);
    uint64_t b[8];
    int64_t i = 0;
    int j;
    if (r->direct8 != NULL) {
        const uint8_t *const d8 = r->direct8;
        RG_U64_GROUP(d8, d != RG_DIRECT8_MIXED)
    } else {
        const int32_t *const d32 = r->direct;
        RG_U64_GROUP(d32, d >= 0)
    }
    rg_assign_u64_scalar(r, keys + i, n - i, out + i);
}
#undef RG_U64_GROUP
#endif

RG_INLINE void rg_assign_u64(const rg_ring *r, const uint64_t *keys, int64_t n, int32_t *out,
                             int want_index) {
    int64_t i;
    if (want_index) {
        for (i = 0; i < n; i++) out[i] = (int32_t)rg_ring_find(r, rg_xxh64_u64(keys[i], 0));
        return;
    }
#if RG_HAVE_AVX2
    /* Only when few keys take the slow path (npoints <= 2^bits / 8: about 12% of them or
     * fewer): each slow key is a mispredicted branch that also discards the group's vector
     * work in flight, and on denser tables the scalar loop is faster (measured). */
    if (rg_simd_avx2 && ((uint64_t)r->npoints << 3) <= (UINT64_C(1) << (64u - r->shift))) {
        rg_assign_u64_avx2(r, keys, n, out);
        return;
    }
#endif
    rg_assign_u64_scalar(r, keys, n, out);
}

/* Integer keys hashed as decimal text (ketama modes). */
RG_INLINE void rg_assign_decimal(const rg_ring *r, int mode, const uint64_t *keys, int is_signed,
                                 int64_t n, int32_t *out, int want_index) {
    uint8_t buf[24];
    int64_t i;
    for (i = 0; i < n; i++) {
        unsigned len = rg_format_decimal(keys[i], is_signed, buf);
        out[i] = rg_ring_result(r, rg_hash_bytes(mode, buf, len), want_index);
    }
}

/* String keys go through in blocks: hash a block (XXH64 inlined, so the multiplies of
 * neighbouring keys overlap), then look the block up. */
#define RG_STR_BLOCK 8

/* Variable-length byte strings: item i is data[offs[i] .. offs[i+1]). */
RG_INLINE void rg_assign_var(const rg_ring *r, int mode, const uint8_t *data, const int64_t *offs,
                             int64_t n, int32_t *out, int want_index) {
    uint64_t h[RG_STR_BLOCK];
    int64_t i = 0;
    int j;
    if (mode == RG_MODE_XXH64 && !want_index) {
        for (; i + RG_STR_BLOCK <= n; i += RG_STR_BLOCK) {
            for (j = 0; j < RG_STR_BLOCK; j++)
                h[j] = rg_xxh64_inline(data + offs[i + j], (uint64_t)(offs[i + j + 1] - offs[i + j]), 0);
            rg_ring_owners(r, h, RG_STR_BLOCK, out + i);
        }
    }
    for (; i < n; i++) {
        uint64_t hi = rg_hash_bytes(mode, data + offs[i], (uint64_t)(offs[i + 1] - offs[i]));
        out[i] = rg_ring_result(r, hi, want_index);
    }
}

/* Length of a fixed-width item with its trailing NULs dropped. */
RG_INLINE int64_t rg_fixed_len(const uint8_t *p, int64_t width) {
    while (width > 0 && p[width - 1] == 0) width--;
    return width;
}

/* Fixed-width byte strings (NumPy `S`): item i is data[i*width ..], trailing NULs dropped. */
RG_INLINE void rg_assign_fixed(const rg_ring *r, int mode, const uint8_t *data, int64_t width,
                               int64_t n, int32_t *out, int want_index) {
    uint64_t h[RG_STR_BLOCK];
    int64_t i = 0;
    int j;
    if (mode == RG_MODE_XXH64 && !want_index) {
        for (; i + RG_STR_BLOCK <= n; i += RG_STR_BLOCK) {
            for (j = 0; j < RG_STR_BLOCK; j++) {
                const uint8_t *p = data + (i + j) * width;
                h[j] = rg_xxh64_inline(p, (uint64_t)rg_fixed_len(p, width), 0);
            }
            rg_ring_owners(r, h, RG_STR_BLOCK, out + i);
        }
    }
    for (; i < n; i++) {
        const uint8_t *p = data + i * width;
        out[i] = rg_ring_result(r, rg_hash_bytes(mode, p, (uint64_t)rg_fixed_len(p, width)),
                                want_index);
    }
}

/* Preference lists: walk forward from each key's point, Dynamo style, or zone-distinct
 * first (Cassandra NetworkTopologyStrategy) when zone_of is not NULL.
 *   first[k]    point index of key k (from a want_index kernel)
 *   out         n_keys x nrep, row-major
 *   seen        nnodes scratch stamps, zero on first call; zseen: nzones scratch stamps
 *   deferred    nrep scratch slots
 *   *gen        stamp generation, carried across calls that share the scratch arrays
 * Requires 1 <= nrep <= number of distinct owners, so every walk completes. */
RG_INLINE void rg_replicas(const int32_t *owners, uint32_t npoints, const int32_t *zone_of,
                           int32_t nzones, const int32_t *first, int64_t n_keys, int32_t nrep,
                           int32_t *out, uint32_t *seen, uint32_t *zseen, int32_t *deferred,
                           uint32_t *gen) {
    int64_t k;
    for (k = 0; k < n_keys; k++) {
        int32_t *row = out + k * (int64_t)nrep;
        int32_t picked = 0, ndef = 0, zones_used = 0;
        uint32_t step, pos = (uint32_t)first[k], g = ++(*gen);
        for (step = 0; step < npoints && picked < nrep; step++) {
            int32_t node = owners[pos];
            pos = (pos + 1u == npoints) ? 0u : pos + 1u;
            if (seen[node] == g) continue;
            seen[node] = g;
            if (zone_of == NULL) {
                row[picked++] = node;
                continue;
            }
            if (zseen[zone_of[node]] != g) {
                zseen[zone_of[node]] = g;
                zones_used++;
                row[picked++] = node;
            } else if (ndef < nrep) {
                deferred[ndef++] = node;
            }
            if (zones_used == nzones && picked + ndef >= nrep) break;
        }
        for (int32_t j = 0; picked < nrep && j < ndef; j++) row[picked++] = deferred[j];
    }
}

/* XXH64 (or ketama hash, in ring space) of each variable-length item, into out[0..n). */
RG_INLINE void rg_hash_var(int mode, const uint8_t *data, const int64_t *offs, int64_t n,
                           uint64_t *out) {
    int64_t i;
    for (i = 0; i < n; i++) out[i] = rg_hash_bytes(mode, data + offs[i], (uint64_t)(offs[i + 1] - offs[i]));
}

/* The four libketama points of each item's MD5 digest, into out[4*i .. 4*i+4). */
RG_INLINE void rg_ketama_points(const uint8_t *data, const int64_t *offs, int64_t n, uint32_t *out) {
    uint8_t d[16];
    int64_t i;
    for (i = 0; i < n; i++) {
        rg_md5(data + offs[i], (uint64_t)(offs[i + 1] - offs[i]), d);
        out[4 * i] = rg_read32le(d);
        out[4 * i + 1] = rg_read32le(d + 4);
        out[4 * i + 2] = rg_read32le(d + 8);
        out[4 * i + 3] = rg_read32le(d + 12);
    }
}

/* ---- input checks and conversions (run before any kernel) ----------------------------- */

/* First index i whose item [offs[i], offs[i+1]) is not inside data[0..datalen), or -1.
 * Offsets that start at >= 0, never decrease and end at <= datalen are all in range, so
 * blocks are checked with a branch-free "any decrease" pass, and the exact first bad item
 * is looked for only in a block that fails. */
RG_INLINE int64_t rg_check_offsets(const int64_t *offs, int64_t n, int64_t datalen) {
    int64_t b, i;
    for (b = 0; b < n; b += 4096) {
        int64_t e = n - b < 4096 ? n : b + 4096;
        int decreasing = 0;
        for (i = b; i < e; i++) decreasing |= offs[i] > offs[i + 1];
        if (decreasing || offs[b] < 0 || offs[e] > datalen) {
            for (i = b; i < e; i++) {
                if (offs[i] < 0 || offs[i] > offs[i + 1] || offs[i + 1] > datalen) return i;
            }
        }
    }
    return -1;
}

/* UTF-8 length of a UCS-4 item with trailing NULs dropped, or -1 if it holds a surrogate
 * or a value above U+10FFFF. */
RG_INLINE int64_t rg_ucs4_utf8_len(const uint32_t *cp, int64_t width) {
    int64_t len = 0, j;
    while (width > 0 && cp[width - 1] == 0) width--;
    for (j = 0; j < width; j++) {
        uint32_t c = cp[j];
        if (c < 0x80u) len += 1;
        else if (c < 0x800u) len += 2;
        else if (c < 0x10000u) {
            if (c >= 0xD800u && c <= 0xDFFFu) return -1;
            len += 3;
        } else if (c <= 0x10FFFFu) len += 4;
        else return -1;
    }
    return len;
}

/* Offsets (n + 1 entries) of UCS-4 items encoded as UTF-8; returns the first invalid item
 * index, or -1 when all are valid. */
RG_INLINE int64_t rg_ucs4_offsets(const uint32_t *cps, int64_t width, int64_t n, int64_t *offs) {
    int64_t i;
    offs[0] = 0;
    for (i = 0; i < n; i++) {
        int64_t len = rg_ucs4_utf8_len(cps + i * width, width);
        if (len < 0) return i;
        offs[i + 1] = offs[i] + len;
    }
    return -1;
}

/* Encode validated UCS-4 items into data at offs (from rg_ucs4_offsets). */
RG_INLINE void rg_ucs4_encode(const uint32_t *cps, int64_t width, int64_t n, const int64_t *offs,
                              uint8_t *data) {
    int64_t i, j;
    for (i = 0; i < n; i++) {
        const uint32_t *cp = cps + i * width;
        uint8_t *o = data + offs[i];
        uint8_t *end = data + offs[i + 1];
        for (j = 0; j < width && o < end; j++) {
            uint32_t c = cp[j];
            if (c < 0x80u) *o++ = (uint8_t)c;
            else if (c < 0x800u) {
                *o++ = (uint8_t)(0xC0u | (c >> 6));
                *o++ = (uint8_t)(0x80u | (c & 0x3Fu));
            } else if (c < 0x10000u) {
                *o++ = (uint8_t)(0xE0u | (c >> 12));
                *o++ = (uint8_t)(0x80u | ((c >> 6) & 0x3Fu));
                *o++ = (uint8_t)(0x80u | (c & 0x3Fu));
            } else {
                *o++ = (uint8_t)(0xF0u | (c >> 18));
                *o++ = (uint8_t)(0x80u | ((c >> 12) & 0x3Fu));
                *o++ = (uint8_t)(0x80u | ((c >> 6) & 0x3Fu));
                *o++ = (uint8_t)(0x80u | (c & 0x3Fu));
            }
        }
    }
}

#endif
