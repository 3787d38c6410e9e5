/* ringguard: portable helpers shared by the hash functions.
 *
 * Plain C11, no Python.h. Every multi-byte read is an explicit little-endian load built
 * from bytes, so results are identical on big-endian machines; compilers turn these into
 * single loads on little-endian targets.
 *
 * Compiler-specific fast paths (unsigned __int128 for a 64x64->128 multiply,
 * __builtin_clzll) each have a plain-C fallback, which is what MSVC compiles. Defining
 * RG_PORTABLE_C (setup.py: RINGGUARD_PORTABLE_C=1) forces the fallbacks everywhere, so
 * they are tested on gcc too (tests/test_packaging.py).
 */
#ifndef RG_COMMON_H
#define RG_COMMON_H

#include <stdint.h>
#include <string.h>

#if defined(_MSC_VER)
#define RG_INLINE static __inline
#else
#define RG_INLINE static inline
#endif

RG_INLINE uint64_t rg_rotl64(uint64_t x, unsigned r) { return (x << r) | (x >> (64u - r)); }
RG_INLINE uint32_t rg_rotl32(uint32_t x, unsigned r) { return (x << r) | (x >> (32u - r)); }

RG_INLINE uint32_t rg_read32le(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

RG_INLINE uint64_t rg_read64le(const uint8_t *p) {
    return (uint64_t)rg_read32le(p) | ((uint64_t)rg_read32le(p + 4) << 32);
}

RG_INLINE void rg_write32le(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

#endif
