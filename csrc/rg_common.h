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
#define RG_ALWAYS_INLINE static __forceinline
#elif defined(__GNUC__) || defined(__clang__)
#define RG_INLINE static inline
#define RG_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define RG_INLINE static inline
#define RG_ALWAYS_INLINE static inline
#endif

/* Hint that a branch is rarely taken (no-op where unsupported). */
#if defined(__GNUC__) || defined(__clang__)
#define RG_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define RG_UNLIKELY(x) (x)
#endif

/* Runtime-dispatched x86 SIMD. With GCC or Clang on x86-64, kernels that gain from AVX2 get
 * a second version compiled for it through a per-function target attribute (the rest of the
 * module stays baseline x86-64, never -mavx2 or -march=native), and the scalar version is
 * used unless the running CPU and OS support AVX2 (rg_cpu_has_avx2). Every other compiler
 * (MSVC included) and architecture builds only the portable scalar code. Define RG_NO_SIMD
 * to build without the AVX2 versions. */
#if !defined(RG_NO_SIMD) && !defined(_MSC_VER) && defined(__x86_64__) && \
    (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 5))
#define RG_HAVE_AVX2 1
#define RG_TARGET_AVX2 __attribute__((target("avx2")))
#include <immintrin.h>
#else
#define RG_HAVE_AVX2 0
#endif

/* 1 when the AVX2 kernels were compiled in and this CPU and OS can run them. */
RG_INLINE int rg_cpu_has_avx2(void) {
#if RG_HAVE_AVX2
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    return 0;
#endif
}

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
