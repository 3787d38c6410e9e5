/* MD5, written from RFC 1321 ("The MD5 Message-Digest Algorithm", section 3). */
#ifndef RG_MD5_H_INCLUDED
#define RG_MD5_H_INCLUDED

#include "rg_common.h"

/* T[i] = floor(2^32 * abs(sin(i + 1))), RFC 1321 section 3.4. */
static const uint32_t rg_md5_T[64] = {
    0xd76aa478u, 0xe8c7b756u, 0x242070dbu, 0xc1bdceeeu,
    0xf57c0fafu, 0x4787c62au, 0xa8304613u, 0xfd469501u,
    0x698098d8u, 0x8b44f7afu, 0xffff5bb1u, 0x895cd7beu,
    0x6b901122u, 0xfd987193u, 0xa679438eu, 0x49b40821u,
    0xf61e2562u, 0xc040b340u, 0x265e5a51u, 0xe9b6c7aau,
    0xd62f105du, 0x02441453u, 0xd8a1e681u, 0xe7d3fbc8u,
    0x21e1cde6u, 0xc33707d6u, 0xf4d50d87u, 0x455a14edu,
    0xa9e3e905u, 0xfcefa3f8u, 0x676f02d9u, 0x8d2a4c8au,
    0xfffa3942u, 0x8771f681u, 0x6d9d6122u, 0xfde5380cu,
    0xa4beea44u, 0x4bdecfa9u, 0xf6bb4b60u, 0xbebfbc70u,
    0x289b7ec6u, 0xeaa127fau, 0xd4ef3085u, 0x04881d05u,
    0xd9d4d039u, 0xe6db99e5u, 0x1fa27cf8u, 0xc4ac5665u,
    0xf4292244u, 0x432aff97u, 0xab9423a7u, 0xfc93a039u,
    0x655b59c3u, 0x8f0ccc92u, 0xffeff47du, 0x85845dd1u,
    0x6fa87e4fu, 0xfe2ce6e0u, 0xa3014314u, 0x4e0811a1u,
    0xf7537e82u, 0xbd3af235u, 0x2ad7d2bbu, 0xeb86d391u,
};

/* The four auxiliary functions of RFC 1321 section 3.4, in equivalent forms that need
 * one operation fewer: F = (x & y) | (~x & z), G = (x & z) | (y & ~z). */
#define RG_MD5_F(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define RG_MD5_G(x, y, z) ((y) ^ ((z) & ((x) ^ (y))))
#define RG_MD5_H(x, y, z) ((x) ^ (y) ^ (z))
#define RG_MD5_I(x, y, z) ((y) ^ ((x) | ~(z)))
/* One operation [abcd k s i]: a = b + ((a + f(b,c,d) + X[k] + T[i]) <<< s). */
#define RG_MD5_STEP(f, a, b, c, d, x, t, s) \
    do { (a) += f((b), (c), (d)) + (x) + (t); (a) = rg_rotl32((a), (s)) + (b); } while (0)

/* One 64-byte block (section 3.4), the 64 operations written out in their RFC order. */
RG_INLINE void rg_md5_block(uint32_t st[4], const uint8_t *block) {
    uint32_t X[16];
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
    unsigned i;
    for (i = 0; i < 16; i++) X[i] = rg_read32le(block + 4 * i);
    RG_MD5_STEP(RG_MD5_F, a, b, c, d, X[ 0], rg_md5_T[ 0],  7);
    RG_MD5_STEP(RG_MD5_F, d, a, b, c, X[ 1], rg_md5_T[ 1], 12);
    RG_MD5_STEP(RG_MD5_F, c, d, a, b, X[ 2], rg_md5_T[ 2], 17);
    RG_MD5_STEP(RG_MD5_F, b, c, d, a, X[ 3], rg_md5_T[ 3], 22);
    RG_MD5_STEP(RG_MD5_F, a, b, c, d, X[ 4], rg_md5_T[ 4],  7);
    RG_MD5_STEP(RG_MD5_F, d, a, b, c, X[ 5], rg_md5_T[ 5], 12);
    RG_MD5_STEP(RG_MD5_F, c, d, a, b, X[ 6], rg_md5_T[ 6], 17);
    RG_MD5_STEP(RG_MD5_F, b, c, d, a, X[ 7], rg_md5_T[ 7], 22);
    RG_MD5_STEP(RG_MD5_F, a, b, c, d, X[ 8], rg_md5_T[ 8],  7);
    RG_MD5_STEP(RG_MD5_F, d, a, b, c, X[ 9], rg_md5_T[ 9], 12);
    RG_MD5_STEP(RG_MD5_F, c, d, a, b, X[10], rg_md5_T[10], 17);
    RG_MD5_STEP(RG_MD5_F, b, c, d, a, X[11], rg_md5_T[11], 22);
    RG_MD5_STEP(RG_MD5_F, a, b, c, d, X[12], rg_md5_T[12],  7);
    RG_MD5_STEP(RG_MD5_F, d, a, b, c, X[13], rg_md5_T[13], 12);
    RG_MD5_STEP(RG_MD5_F, c, d, a, b, X[14], rg_md5_T[14], 17);
    RG_MD5_STEP(RG_MD5_F, b, c, d, a, X[15], rg_md5_T[15], 22);
    RG_MD5_STEP(RG_MD5_G, a, b, c, d, X[ 1], rg_md5_T[16],  5);
    RG_MD5_STEP(RG_MD5_G, d, a, b, c, X[ 6], rg_md5_T[17],  9);
    RG_MD5_STEP(RG_MD5_G, c, d, a, b, X[11], rg_md5_T[18], 14);
    RG_MD5_STEP(RG_MD5_G, b, c, d, a, X[ 0], rg_md5_T[19], 20);
    RG_MD5_STEP(RG_MD5_G, a, b, c, d, X[ 5], rg_md5_T[20],  5);
    RG_MD5_STEP(RG_MD5_G, d, a, b, c, X[10], rg_md5_T[21],  9);
    RG_MD5_STEP(RG_MD5_G, c, d, a, b, X[15], rg_md5_T[22], 14);
    RG_MD5_STEP(RG_MD5_G, b, c, d, a, X[ 4], rg_md5_T[23], 20);
    RG_MD5_STEP(RG_MD5_G, a, b, c, d, X[ 9], rg_md5_T[24],  5);
    RG_MD5_STEP(RG_MD5_G, d, a, b, c, X[14], rg_md5_T[25],  9);
    RG_MD5_STEP(RG_MD5_G, c, d, a, b, X[ 3], rg_md5_T[26], 14);
    RG_MD5_STEP(RG_MD5_G, b, c, d, a, X[ 8], rg_md5_T[27], 20);
    RG_MD5_STEP(RG_MD5_G, a, b, c, d, X[13], rg_md5_T[28],  5);
    RG_MD5_STEP(RG_MD5_G, d, a, b, c, X[ 2], rg_md5_T[29],  9);
    RG_MD5_STEP(RG_MD5_G, c, d, a, b, X[ 7], rg_md5_T[30], 14);
    RG_MD5_STEP(RG_MD5_G, b, c, d, a, X[12], rg_md5_T[31], 20);
    RG_MD5_STEP(RG_MD5_H, a, b, c, d, X[ 5], rg_md5_T[32],  4);
    RG_MD5_STEP(RG_MD5_H, d, a, b, c, X[ 8], rg_md5_T[33], 11);
    RG_MD5_STEP(RG_MD5_H, c, d, a, b, X[11], rg_md5_T[34], 16);
    RG_MD5_STEP(RG_MD5_H, b, c, d, a, X[14], rg_md5_T[35], 23);
    RG_MD5_STEP(RG_MD5_H, a, b, c, d, X[ 1], rg_md5_T[36],  4);
    RG_MD5_STEP(RG_MD5_H, d, a, b, c, X[ 4], rg_md5_T[37], 11);
    RG_MD5_STEP(RG_MD5_H, c, d, a, b, X[ 7], rg_md5_T[38], 16);
    RG_MD5_STEP(RG_MD5_H, b, c, d, a, X[10], rg_md5_T[39], 23);
    RG_MD5_STEP(RG_MD5_H, a, b, c, d, X[13], rg_md5_T[40],  4);
    RG_MD5_STEP(RG_MD5_H, d, a, b, c, X[ 0], rg_md5_T[41], 11);
    RG_MD5_STEP(RG_MD5_H, c, d, a, b, X[ 3], rg_md5_T[42], 16);
    RG_MD5_STEP(RG_MD5_H, b, c, d, a, X[ 6], rg_md5_T[43], 23);
    RG_MD5_STEP(RG_MD5_H, a, b, c, d, X[ 9], rg_md5_T[44],  4);
    RG_MD5_STEP(RG_MD5_H, d, a, b, c, X[12], rg_md5_T[45], 11);
    RG_MD5_STEP(RG_MD5_H, c, d, a, b, X[15], rg_md5_T[46], 16);
    RG_MD5_STEP(RG_MD5_H, b, c, d, a, X[ 2], rg_md5_T[47], 23);
    RG_MD5_STEP(RG_MD5_I, a, b, c, d, X[ 0], rg_md5_T[48],  6);
    RG_MD5_STEP(RG_MD5_I, d, a, b, c, X[ 7], rg_md5_T[49], 10);
    RG_MD5_STEP(RG_MD5_I, c, d, a, b, X[14], rg_md5_T[50], 15);
    RG_MD5_STEP(RG_MD5_I, b, c, d, a, X[ 5], rg_md5_T[51], 21);
    RG_MD5_STEP(RG_MD5_I, a, b, c, d, X[12], rg_md5_T[52],  6);
    RG_MD5_STEP(RG_MD5_I, d, a, b, c, X[ 3], rg_md5_T[53], 10);
    RG_MD5_STEP(RG_MD5_I, c, d, a, b, X[10], rg_md5_T[54], 15);
    RG_MD5_STEP(RG_MD5_I, b, c, d, a, X[ 1], rg_md5_T[55], 21);
    RG_MD5_STEP(RG_MD5_I, a, b, c, d, X[ 8], rg_md5_T[56],  6);
    RG_MD5_STEP(RG_MD5_I, d, a, b, c, X[15], rg_md5_T[57], 10);
    RG_MD5_STEP(RG_MD5_I, c, d, a, b, X[ 6], rg_md5_T[58], 15);
    RG_MD5_STEP(RG_MD5_I, b, c, d, a, X[13], rg_md5_T[59], 21);
    RG_MD5_STEP(RG_MD5_I, a, b, c, d, X[ 4], rg_md5_T[60],  6);
    RG_MD5_STEP(RG_MD5_I, d, a, b, c, X[11], rg_md5_T[61], 10);
    RG_MD5_STEP(RG_MD5_I, c, d, a, b, X[ 2], rg_md5_T[62], 15);
    RG_MD5_STEP(RG_MD5_I, b, c, d, a, X[ 9], rg_md5_T[63], 21);
    st[0] += a; st[1] += b; st[2] += c; st[3] += d;
}

/* MD5 of `len` bytes at `p` into `digest[16]`. */
RG_INLINE void rg_md5(const uint8_t *p, uint64_t len, uint8_t digest[16]) {
    uint32_t st[4] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u};
    uint8_t tail[128];
    uint64_t full = len & ~(uint64_t)63, rest = len - full, i, tail_len;
    for (i = 0; i < full; i += 64) rg_md5_block(st, p + i);
    /* Padding (3.1) and length (3.2): 0x80, zeros to 56 mod 64, bit length little-endian. */
    memset(tail, 0, sizeof tail);
    if (rest) memcpy(tail, p + full, (size_t)rest);
    tail[rest] = 0x80;
    tail_len = (rest < 56) ? 64 : 128;
    rg_write32le(tail + tail_len - 8, (uint32_t)(len << 3));
    rg_write32le(tail + tail_len - 4, (uint32_t)(len >> 29));
    rg_md5_block(st, tail);
    if (tail_len == 128) rg_md5_block(st, tail + 64);
    for (i = 0; i < 4; i++) rg_write32le(digest + 4 * i, st[i]);
}

/* libketama's hash: the first four digest bytes read little-endian. */
RG_INLINE uint32_t rg_ketama_hash(const uint8_t *p, uint64_t len) {
    uint8_t d[16];
    rg_md5(p, len, d);
    return rg_read32le(d);
}

#endif
