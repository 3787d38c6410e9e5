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

/* One 8-, 4- and 1-byte step of the final part (after the 32-byte stripes). */
#define RG_XXH64_STEP8(h, p)                                                                 \
    do {                                                                                     \
        (h) ^= rg_xxh64_round(0, rg_read64le(p));                                            \
        (h) = rg_rotl64((h), 27) * RG_XXH_P1 + RG_XXH_P4;                                    \
        (p) += 8;                                                                            \
    } while (0)
#define RG_XXH64_STEP1(h, p)                                                                 \
    do {                                                                                     \
        (h) ^= (uint64_t)(*(p)) * RG_XXH_P5;                                                 \
        (h) = rg_rotl64((h), 11) * RG_XXH_P1;                                                \
        (p)++;                                                                               \
    } while (0)

/* XXH64 of `len` bytes at `p`. The final part (len % 32 bytes: up to three 8-byte lanes,
 * one 4-byte word, up to three single bytes) is unrolled by count rather than looped, so a
 * batch of similar-length keys runs with few mispredicted branches. RG_ALWAYS_INLINE: the
 * batch kernels inline it into their loops. */
RG_ALWAYS_INLINE uint64_t rg_xxh64_inline(const uint8_t *p, uint64_t len, uint64_t seed) {
    uint64_t h;
    if (len >= 32) {
        const uint8_t *limit = p + len - 32;
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
    switch ((len & 31u) >> 3) {
    case 3: RG_XXH64_STEP8(h, p); /* fall through */
    case 2: RG_XXH64_STEP8(h, p); /* fall through */
    case 1: RG_XXH64_STEP8(h, p); /* fall through */
    default: break;
    }
    if (len & 4u) {
        h ^= (uint64_t)rg_read32le(p) * RG_XXH_P1;
        h = rg_rotl64(h, 23) * RG_XXH_P2 + RG_XXH_P3;
        p += 4;
    }
    switch (len & 3u) {
    case 3: RG_XXH64_STEP1(h, p); /* fall through */
    case 2: RG_XXH64_STEP1(h, p); /* fall through */
    case 1: RG_XXH64_STEP1(h, p); /* fall through */
    default: break;
    }
    return rg_xxh64_avalanche(h);
}

/* XXH64 of `len` bytes at `p` (an ordinary function call: for single hashes). */
RG_INLINE uint64_t rg_xxh64(const uint8_t *p, uint64_t len, uint64_t seed) {
    return rg_xxh64_inline(p, len, seed);
}

/* XXH64 of the 8 little-endian bytes of `v`, without the last step of the avalanche
 * (h ^= h >> 32). That step leaves the top 32 bits unchanged, so a lookup that only needs
 * the top bits of the hash (a bucket index) can skip it; rg_xxh64_u64_finish completes it. */
RG_INLINE uint64_t rg_xxh64_u64_top(uint64_t v, uint64_t seed) {
    uint64_t h = seed + RG_XXH_P5 + 8u;
    h ^= rg_xxh64_round(0, v);
    h = rg_rotl64(h, 27) * RG_XXH_P1 + RG_XXH_P4;
    h ^= h >> 33;
    h *= RG_XXH_P2;
    h ^= h >> 29;
    return h * RG_XXH_P3;
}

RG_INLINE uint64_t rg_xxh64_u64_finish(uint64_t top) { return top ^ (top >> 32); }

/* XXH64 of the 8 little-endian bytes of `v`: the canonical integer key, computed from the
 * value itself (no memory read, so no byte-order question). */
RG_INLINE uint64_t rg_xxh64_u64(uint64_t v, uint64_t seed) {
    return rg_xxh64_u64_finish(rg_xxh64_u64_top(v, seed));
}

#if RG_HAVE_AVX2
/* Four lanes of rg_xxh64_u64_top (seed 0) with AVX2, which has no 64-bit multiply: each
 * 64 x 64 -> 64-bit product is built from three 32 x 32 -> 64-bit ones (a.lo * c.lo, plus
 * a.hi * c.lo + a.lo * c.hi shifted up by 32; the a.hi * c.hi term only reaches bits >= 64). */
RG_TARGET_AVX2 RG_INLINE __m256i rg_mul64x4(__m256i a, __m256i c_lo, __m256i c_hi) {
    __m256i lo = _mm256_mul_epu32(a, c_lo);
    __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), c_lo),
                                     _mm256_mul_epu32(a, c_hi));
    return _mm256_add_epi64(lo, _mm256_slli_epi64(cross, 32));
}

RG_TARGET_AVX2 RG_INLINE __m256i rg_rotl64x4(__m256i a, int r) {
    return _mm256_or_si256(_mm256_slli_epi64(a, r), _mm256_srli_epi64(a, 64 - r));
}

#define RG_SET64X4(c) _mm256_set1_epi64x((long long)(c))
#define RG_SET64X4_HI(c) _mm256_set1_epi64x((long long)((uint64_t)(c) >> 32))

RG_TARGET_AVX2 RG_INLINE __m256i rg_xxh64_u64_top_x4(__m256i v) {
    const __m256i p1 = RG_SET64X4(RG_XXH_P1), p1h = RG_SET64X4_HI(RG_XXH_P1);
    const __m256i p2 = RG_SET64X4(RG_XXH_P2), p2h = RG_SET64X4_HI(RG_XXH_P2);
    const __m256i p3 = RG_SET64X4(RG_XXH_P3), p3h = RG_SET64X4_HI(RG_XXH_P3);
    __m256i h = rg_mul64x4(rg_rotl64x4(rg_mul64x4(v, p2, p2h), 31), p1, p1h);
    h = _mm256_xor_si256(h, RG_SET64X4(RG_XXH_P5 + 8u));
    h = _mm256_add_epi64(rg_mul64x4(rg_rotl64x4(h, 27), p1, p1h), RG_SET64X4(RG_XXH_P4));
    h = rg_mul64x4(_mm256_xor_si256(h, _mm256_srli_epi64(h, 33)), p2, p2h);
    return rg_mul64x4(_mm256_xor_si256(h, _mm256_srli_epi64(h, 29)), p3, p3h);
}
#endif

#endif
