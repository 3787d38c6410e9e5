/* ringguard: Redis Cluster slots and bounded-load assignment.
 *
 * Plain C11, no Python.h, no allocation. As in rg_ring.h, every function trusts its
 * arguments: _core_slots.pxi checks lengths, offsets and indices with the GIL held first.
 */
#ifndef RG_SLOTS_H
#define RG_SLOTS_H

#include "rg_common.h"
#include "crc16.h"
#include "rg_ring.h"

#define RG_REDIS_SLOTS 16384u

/* Index of the first byte c in p[0..len), or len. Eight bytes at a time: a byte of
 * x = word ^ (c * 0x01..01) is zero exactly where the word holds c, and
 * (x - 0x01..01) & ~x & 0x80..80 is non-zero iff some byte of x is zero; its lowest set
 * bit marks the first such byte in memory order (little-endian read). */
RG_INLINE uint64_t rg_find_byte(const uint8_t *p, uint64_t len, uint8_t c) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const uint64_t pattern = ones * c;
    uint64_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x = rg_read64le(p + i) ^ pattern;
        uint64_t m = (x - ones) & ~x & highs;
        if (m) {
            /* Borrows can only flag bytes above the first zero byte, so the lowest flag
             * is exact; scan bytewise from this word to stay simple and portable. */
            break;
        }
    }
    for (; i < len; i++) if (p[i] == c) return i;
    return len;
}

/* The Redis Cluster slot of a key (cluster-spec, "Hash tags"): if the key holds a '{' and,
 * after the first '{', a '}', and at least one byte lies between the first '{' and the
 * first '}' after it, only those bytes are hashed; otherwise the whole key is. */
RG_INLINE uint16_t rg_redis_slot(const uint8_t *p, uint64_t len) {
    uint64_t open = rg_find_byte(p, len, '{');
    if (open < len) {
        uint64_t tag = open + 1;
        uint64_t close = tag + rg_find_byte(p + tag, len - tag, '}');
        if (close < len && close > tag) return (uint16_t)(rg_crc16(p + tag, close - tag) & 16383u);
    }
    return (uint16_t)(rg_crc16(p, len) & 16383u);
}

/* Variable-length keys: item i is data[offs[i] .. offs[i+1]). */
RG_INLINE void rg_slots_var(const uint8_t *data, const int64_t *offs, int64_t n, uint16_t *out) {
    int64_t i;
    for (i = 0; i < n; i++) out[i] = rg_redis_slot(data + offs[i], (uint64_t)(offs[i + 1] - offs[i]));
}

/* Fixed-width keys (NumPy `S`): item i is data[i*width ..], trailing NULs dropped. */
RG_INLINE void rg_slots_fixed(const uint8_t *data, int64_t width, int64_t n, uint16_t *out) {
    int64_t i;
    for (i = 0; i < n; i++) {
        const uint8_t *p = data + i * width;
        int64_t len = width;
        while (len > 0 && p[len - 1] == 0) len--;
        out[i] = rg_redis_slot(p, (uint64_t)len);
    }
}

/* Integer keys as Redis sees them: their decimal text (digits hold no '{'). */
RG_INLINE void rg_slots_decimal(const uint64_t *keys, int is_signed, int64_t n, uint16_t *out) {
    uint8_t buf[24];
    int64_t i;
    for (i = 0; i < n; i++) {
        unsigned len = rg_format_decimal(keys[i], is_signed, buf);
        out[i] = (uint16_t)(rg_crc16(buf, len) & 16383u);
    }
}

/* Node of each slot: out[i] = table[slots[i]] (slots < 16384, checked by the caller). */
RG_INLINE void rg_slot_nodes(const uint16_t *slots, const int32_t *table, int64_t n, int32_t *out) {
    int64_t i;
    for (i = 0; i < n; i++) out[i] = table[slots[i]];
}

/* Largest value in slots[0..n), n >= 1. */
RG_INLINE uint16_t rg_max_u16(const uint16_t *v, int64_t n) {
    uint16_t m = 0;
    int64_t i;
    for (i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

/* Bounded loads (Mirrokni, Thorup, Zadimoghaddam 2016): keys in order, each from its point
 * first[k] clockwise to the first point whose node still has room (count < cap).
 *   owners/npoints   the ring's point owners
 *   cap              capacity per node; count: per-node counters, zero on entry
 * The caller guarantees that the capacities of the nodes owning points sum to >= n_keys,
 * so every walk ends within one turn of the ring. */
RG_INLINE void rg_assign_bounded(const int32_t *owners, uint32_t npoints, const int32_t *first,
                                 int64_t n_keys, const int64_t *cap, int64_t *count, int32_t *out) {
    int64_t k;
    for (k = 0; k < n_keys; k++) {
        uint32_t pos = (uint32_t)first[k];
        int32_t node = owners[pos];
        while (count[node] >= cap[node]) {
            pos = (pos + 1u == npoints) ? 0u : pos + 1u;
            node = owners[pos];
        }
        count[node]++;
        out[k] = node;
    }
}

#endif
