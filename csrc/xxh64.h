/* XXH64, written from the xxHash specification (doc/xxhash_spec.md, "XXH64 algorithm
 * description"). Seeded, 64-bit output, byte-order independent.
 */
#ifndef RG_XXH64_H
#define RG_XXH64_H

#include "rg_common.h"

#define RG_XXH_P1 0x9E3779B185EBCA87ULL
#define RG_XXH_P2 0xC2B2AE3D27D4EB4FULL
#define RG_XXH_P3 0x165667B19E3779F9ULL
#define RG_XXH_P4 0x85EBCA77C2B2AE63ULL
#define RG_XXH_P5 0x27D4EB2F165667C5ULL

RG_INLINE uint64_t rg_xxh64_round(uint64_t acc, uint64_t lane) {
    acc += lane * RG_XXH_P2;
    acc = rg_rotl64(acc, 31);
    return acc * RG_XXH_P1;
}

RG_INLINE uint64_t rg_xxh64_merge(uint64_t acc, uint64_t v) {
    acc ^= rg_xxh64_round(0, v);
    return acc * RG_XXH_P1 + RG_XXH_P4;
}

RG_INLINE uint64_t rg_xxh64_avalanche(uint64_t h) {
    h ^= h >> 33;
    h *= RG_XXH_P2;
    h ^= h >> 29;
    h *= RG_XXH_P3;
    h ^= h >> 32;
    return h;
}

/* XXH64 of `len` bytes at `p`. */
RG_INLINE uint64_t rg_xxh64(const uint8_t *p, uint64_t len, uint64_t seed) {
    const uint8_t *end = p + len;
    uint64_t h;
    if (len >= 32) {
        const uint8_t *limit = end - 32;
        uint64_t v1 = seed + RG_XXH_P1 + RG_XXH_P2;
        uint64_t v2 = seed + RG_XXH_P2;
        uint64_t v3 = seed;
        uint64_t v4 = seed - RG_XXH_P1;
        do {
            v1 = rg_xxh64_round(v1, rg_read64le(p));
            v2 = rg_xxh64_round(v2, rg_read64le(p + 8));
            v3 = rg_xxh64_round(v3, rg_read64le(p + 16));
            v4 = rg_xxh64_round(v4, rg_read64le(p + 24));
            p += 32;
        } while (p <= limit);
        h = rg_rotl64(v1, 1) + rg_rotl64(v2, 7) + rg_rotl64(v3, 12) + rg_rotl64(v4, 18);
        h = rg_xxh64_merge(h, v1);
        h = rg_xxh64_merge(h, v2);
        h = rg_xxh64_merge(h, v3);
        h = rg_xxh64_merge(h, v4);
    } else {
        h = seed + RG_XXH_P5;
    }
    h += len;
    while (p + 8 <= end) {
        h ^= rg_xxh64_round(0, rg_read64le(p));
        h = rg_rotl64(h, 27) * RG_XXH_P1 + RG_XXH_P4;
        p += 8;
    }
    if (p + 4 <= end) {
        h ^= (uint64_t)rg_read32le(p) * RG_XXH_P1;
        h = rg_rotl64(h, 23) * RG_XXH_P2 + RG_XXH_P3;
        p += 4;
    }
    while (p < end) {
        h ^= (uint64_t)(*p) * RG_XXH_P5;
        h = rg_rotl64(h, 11) * RG_XXH_P1;
        p++;
    }
    return rg_xxh64_avalanche(h);
}

/* XXH64 of the 8 little-endian bytes of `v`: the canonical integer key, computed from the
 * value itself (no memory read, so no byte-order question). */
RG_INLINE uint64_t rg_xxh64_u64(uint64_t v, uint64_t seed) {
    uint64_t h = seed + RG_XXH_P5 + 8u;
    h ^= rg_xxh64_round(0, v);
    h = rg_rotl64(h, 27) * RG_XXH_P1 + RG_XXH_P4;
    return rg_xxh64_avalanche(h);
}

#endif
