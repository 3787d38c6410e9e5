/* ringguard: batch kernels of Maglev, weighted Rendezvous (HRW) and Jump consistent hash.
 *
 * Plain C11, no Python.h, no allocation. As in rg_ring.h, every function trusts its
 * arguments: _core_algos.pxi checks table sizes, node counts and lengths with the GIL held
 * before calling them. The rules implemented here are docs/placement-contract.md
 * sections 6 (Maglev), 7 (Rendezvous) and 8 (JumpHash).
 *
 * Floating point: Rendezvous scores and Jump's step use only IEEE-754 double + - * / and
 * exact integer<->double conversions, evaluated one operation at a time (no contraction to
 * FMA, no extended precision), so results are bit-identical on every platform and equal to
 * the same sequence of Python float operations. No libm function is called.
 */
#ifndef RG_ALGOS_H
#define RG_ALGOS_H

/* No contraction of a * b + c into an FMA (that would change results between platforms).
 * GCC ignores this pragma but -std=c11 (and setup.py's -ffp-contract=off) turn it off. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(_MSC_VER)
#pragma fp_contract(off)
#endif

#include <float.h>
#include "rg_common.h"
#include "xxh64.h"

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0 && FLT_EVAL_METHOD != -1
#error "ringguard needs double arithmetic evaluated in double precision (e.g. SSE2, not x87)"
#endif

/* ---- shared: key hashes ---------------------------------------------------------------- */

/* XXH64 (seed 0) of canonical integer keys (8 bytes little-endian). */
RG_INLINE void rg_hash_u64(const uint64_t *keys, int64_t n, uint64_t *out) {
    int64_t i;
    for (i = 0; i < n; i++) out[i] = rg_xxh64_u64(keys[i], 0);
}

/* XXH64 (seed 0) of fixed-width items (NumPy `S`), trailing NULs dropped. */
RG_INLINE void rg_hash_fixed(const uint8_t *data, int64_t width, int64_t n, uint64_t *out) {
    int64_t i;
    for (i = 0; i < n; i++) {
        const uint8_t *p = data + i * width;
        int64_t len = width;
        while (len > 0 && p[len - 1] == 0) len--;
        out[i] = rg_xxh64(p, (uint64_t)len, 0);
    }
}

/* ---- exact 64-bit remainder by a table size M < 2^32 ----------------------------------- */

#if defined(__SIZEOF_INT128__) && !defined(RG_PORTABLE_C)
#define RG_HAVE_U128 1
__extension__ typedef unsigned __int128 rg_u128; /* __extension__: quiet under -pedantic */
#endif

/* High 64 bits of a * b. */
RG_INLINE uint64_t rg_mulhi64(uint64_t a, uint64_t b) {
#if defined(RG_HAVE_U128)
    return (uint64_t)(((rg_u128)a * b) >> 64);
#else
    uint64_t al = a & 0xFFFFFFFFu, ah = a >> 32, bl = b & 0xFFFFFFFFu, bh = b >> 32;
    uint64_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
    uint64_t mid = (ll >> 32) + (lh & 0xFFFFFFFFu) + (hl & 0xFFFFFFFFu);
    return hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
#endif
}

/* h mod m with inv = floor((2^64 - 1) / m): the quotient estimate mulhi(h, inv) is at most
 * 2 below the true quotient, so at most two corrections give the exact remainder. */
RG_INLINE uint64_t rg_mod(uint64_t h, uint64_t m, uint64_t inv) {
    uint64_t r = h - rg_mulhi64(h, inv) * m;
    if (r >= m) r -= m;
    if (r >= m) r -= m;
    return r;
}

/* ---- Maglev (contract section 6) ------------------------------------------------------- */

/* Fill table[0..m) (m prime) from the nodes' permutations, nodes in name order:
 * permutation of node i is offset[i], offset[i] + skip[i], ... (mod m). In each round every
 * node whose count is below quota[i] takes one turn: it claims the first still-empty entry
 * of its permutation. Requires 1 <= n <= m, offset[i] < m, 1 <= skip[i] < m, quota[i] >= 1
 * and sum(quota) >= m. next_pos/count are n-entry scratch arrays. */
RG_INLINE void rg_maglev_populate(const uint64_t *offset, const uint64_t *skip,
                                  const int64_t *quota, int32_t n, uint64_t m, int32_t *table,
                                  uint64_t *next_pos, int64_t *count) {
    uint64_t filled = 0, j;
    int32_t i;
    for (j = 0; j < m; j++) table[j] = -1;
    for (i = 0; i < n; i++) {
        next_pos[i] = offset[i];
        count[i] = 0;
    }
    for (;;) {
        for (i = 0; i < n; i++) {
            uint64_t c;
            if (count[i] >= quota[i]) continue;
            c = next_pos[i];
            while (table[c] >= 0) {
                c += skip[i];
                if (c >= m) c -= m;
            }
            table[c] = i;
            c += skip[i];
            if (c >= m) c -= m;
            next_pos[i] = c;
            count[i]++;
            if (++filled == m) return;
        }
    }
}

/* Canonical integer keys: hash a block of keys first (independent multiplies), then the
 * table loads of that block (they overlap with each other), as rg_assign_u64 does. */
#define RG_MAGLEV_BLOCK 16
RG_INLINE void rg_maglev_assign_u64(const int32_t *table, uint64_t m, const uint64_t *keys,
                                    int64_t n, int32_t *out) {
    const uint64_t inv = UINT64_MAX / m;
    uint64_t slot[RG_MAGLEV_BLOCK];
    int64_t i = 0;
    int j;
    for (; i + RG_MAGLEV_BLOCK <= n; i += RG_MAGLEV_BLOCK) {
        for (j = 0; j < RG_MAGLEV_BLOCK; j++) slot[j] = rg_mod(rg_xxh64_u64(keys[i + j], 0), m, inv);
        for (j = 0; j < RG_MAGLEV_BLOCK; j++) out[i + j] = table[slot[j]];
    }
    for (; i < n; i++) out[i] = table[rg_mod(rg_xxh64_u64(keys[i], 0), m, inv)];
}

RG_INLINE void rg_maglev_assign_var(const int32_t *table, uint64_t m, const uint8_t *data,
                                    const int64_t *offs, int64_t n, int32_t *out) {
    const uint64_t inv = UINT64_MAX / m;
    int64_t i;
    for (i = 0; i < n; i++) {
        uint64_t h = rg_xxh64(data + offs[i], (uint64_t)(offs[i + 1] - offs[i]), 0);
        out[i] = table[rg_mod(h, m, inv)];
    }
}

RG_INLINE void rg_maglev_assign_fixed(const int32_t *table, uint64_t m, const uint8_t *data,
                                      int64_t width, int64_t n, int32_t *out) {
    const uint64_t inv = UINT64_MAX / m;
    int64_t i;
    for (i = 0; i < n; i++) {
        const uint8_t *p = data + i * width;
        int64_t len = width;
        while (len > 0 && p[len - 1] == 0) len--;
        out[i] = table[rg_mod(rg_xxh64(p, (uint64_t)len, 0), m, inv)];
    }
}

/* Preference lists: from slot hash mod m walk forward (wrapping), keeping the first nrep
 * distinct nodes. Requires every node index < nnodes and nrep <= number of distinct nodes
 * in the table (so each walk completes within m steps). seen: nnodes stamps; *gen as in
 * rg_replicas. */
RG_INLINE void rg_maglev_replicas(const int32_t *table, uint64_t m, const uint64_t *hashes,
                                  int64_t n, int32_t nrep, int32_t *out, uint32_t *seen,
                                  uint32_t *gen) {
    const uint64_t inv = UINT64_MAX / m;
    int64_t k;
    for (k = 0; k < n; k++) {
        int32_t *row = out + k * (int64_t)nrep;
        int32_t got = 0;
        uint32_t g = ++(*gen);
        uint64_t pos = rg_mod(hashes[k], m, inv), step;
        for (step = 0; step < m && got < nrep; step++) {
            int32_t node = table[pos];
            if (++pos == m) pos = 0;
            if (seen[node] == g) continue;
            seen[node] = g;
            row[got++] = node;
        }
    }
}

/* ---- Rendezvous (contract section 7) --------------------------------------------------- */

/* XXH64(LE(a) || LE(b), seed 0) split in two: the key half once per key, the node half
 * (one XXH64 round of b) once per node. */
RG_INLINE uint64_t rg_hrw_key_state(uint64_t key_hash) {
    uint64_t h = RG_XXH_P5 + 16u;
    h ^= rg_xxh64_round(0, key_hash);
    return rg_rotl64(h, 27) * RG_XXH_P1 + RG_XXH_P4;
}

RG_INLINE uint64_t rg_hrw_node_lane(uint64_t node_hash) { return rg_xxh64_round(0, node_hash); }

RG_INLINE uint64_t rg_hrw_mix(uint64_t key_state, uint64_t node_lane) {
    uint64_t h = key_state ^ node_lane;
    h = rg_rotl64(h, 27) * RG_XXH_P1 + RG_XXH_P4;
    return rg_xxh64_avalanche(h);
}

RG_INLINE double rg_bits_to_double(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

/* ln(u) for u = (2k + 1) / 2^53, k = h >> 12 (so 0 < u < 1), from + - * / only.
 * x = 2k + 1 = m * 2^e with m in [1, 2) (e from the bit length, m exact); if m > sqrt(2),
 * m /= 2 and e += 1; then ln(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.1716, as a
 * fixed odd series to s^25, and ln(u) = (E * LN2_LO + ln(m)) + E * LN2_HI, E = e - 53. */
#define RG_LN2_HI 0.693147180369123816490  /* 0x1.62e42fee00000p-1 */
#define RG_LN2_LO 1.90821492927058770002e-10 /* 0x1.a39ef35793c76p-33 */
#define RG_SQRT2 1.41421356237309514547 /* 0x1.6a09e667f3bcdp+0 */

/* floor(log2(x)) for x >= 1 (the bit length minus one), by binary search. */
RG_INLINE int rg_floor_log2(uint64_t x) {
#if (defined(__GNUC__) || defined(__clang__)) && !defined(RG_PORTABLE_C)
    return 63 - __builtin_clzll(x);
#else
    int e = 0;
    if (x >> 32) { x >>= 32; e += 32; }
    if (x >> 16) { x >>= 16; e += 16; }
    if (x >> 8) { x >>= 8; e += 8; }
    if (x >> 4) { x >>= 4; e += 4; }
    if (x >> 2) { x >>= 2; e += 2; }
    if (x >> 1) { e += 1; }
    return e;
#endif
}

RG_INLINE double rg_hrw_ln_u(uint64_t h) {
    uint64_t x = ((h >> 12) << 1) | 1u; /* < 2^53, odd */
    int e = rg_floor_log2(x);
    double m, s, z, p, lnm, E;
    /* m = x / 2^e, exact: the double with exponent 0 and x's bits below the leading one. */
    m = rg_bits_to_double((UINT64_C(1023) << 52) | ((x << (52 - e)) & UINT64_C(0xFFFFFFFFFFFFF)));
    if (m > RG_SQRT2) {
        m = m * 0.5;
        e = e + 1;
    }
    s = (m - 1.0) / (m + 1.0);
    z = s * s;
    p = 1.0 / 25.0;
    p = p * z + 1.0 / 23.0;
    p = p * z + 1.0 / 21.0;
    p = p * z + 1.0 / 19.0;
    p = p * z + 1.0 / 17.0;
    p = p * z + 1.0 / 15.0;
    p = p * z + 1.0 / 13.0;
    p = p * z + 1.0 / 11.0;
    p = p * z + 1.0 / 9.0;
    p = p * z + 1.0 / 7.0;
    p = p * z + 1.0 / 5.0;
    p = p * z + 1.0 / 3.0;
    lnm = 2.0 * s + (2.0 * s) * (z * p);
    E = (double)(e - 53);
    return (E * RG_LN2_LO + lnm) + E * RG_LN2_HI;
}

/* Weighted score -w / ln(u); always finite and > 0. */
RG_INLINE double rg_hrw_score(uint64_t h, double w) { return -w / rg_hrw_ln_u(h); }

#define RG_HRW_STACK 64
/* 2^-53 and 2^-40, written in decimal (exact) for compilers without hex float literals */
#define RG_2POW_M53 1.1102230246251565404236316680908203125e-16
#define RG_2POW_M40 9.094947017729282379150390625e-13

/* Nodes are given in name order: lane[i] = rg_hrw_node_lane(XXH64(name_i)), ids[i] = the
 * node's index in the placement, weight[i] (NULL: all weights equal, rank by h >> 12).
 * Ranking: higher score first; equal scores: lower name-order position first. */
RG_INLINE void rg_hrw_assign(const uint64_t *lane, const double *weight, const int32_t *ids,
                             int32_t nnodes, const uint64_t *hashes, int64_t n, int32_t *out) {
    int64_t k;
    int32_t i;
    for (k = 0; k < n; k++) {
        uint64_t st = rg_hrw_key_state(hashes[k]);
        int32_t best = 0;
        if (weight == NULL) {
            uint64_t bu = rg_hrw_mix(st, lane[0]) >> 12;
            for (i = 1; i < nnodes; i++) {
                uint64_t u = rg_hrw_mix(st, lane[i]) >> 12;
                if (u > bu) { bu = u; best = i; }
            }
        } else {
            /* Exact result of "highest score -w/ln(u), ties by name" without computing ln for
             * every node. With t = 1 - u (exact in double), t <= -ln(u) <= t/u, so
             * w*u/t <= score <= w/t. Pass 1 finds the largest lower bound L = max w*u/t.
             * Candidates are the nodes whose upper bound w/t reaches L less a 2^-40 relative
             * margin (far above the rounding of the bounds and of ln, a few ulp): every other
             * node scores strictly below the winner. A lone candidate is the winner (most
             * keys: no ln at all); otherwise the candidates are scored exactly, which gives
             * the same result as scoring every node. */
            double lo_best = 0.0, bs = -1.0, tbuf[RG_HRW_STACK];
            int32_t first = -1, ncand = 0;
            const int keep = nnodes <= RG_HRW_STACK;
            for (i = 0; i < nnodes; i++) {
                uint64_t x = ((rg_hrw_mix(st, lane[i]) >> 12) << 1) | 1u;
                double t = (double)(int64_t)((UINT64_C(1) << 53) - x) * RG_2POW_M53;
                double lo = weight[i] * ((double)(int64_t)x * RG_2POW_M53) / t;
                lo_best = lo > lo_best ? lo : lo_best;
                if (keep) tbuf[i] = t;
            }
            lo_best = lo_best * (1.0 - RG_2POW_M40);
            for (i = 0; i < nnodes; i++) {
                double t;
                int is_cand;
                if (keep) {
                    t = tbuf[i];
                } else {
                    uint64_t x = ((rg_hrw_mix(st, lane[i]) >> 12) << 1) | 1u;
                    t = (double)(int64_t)((UINT64_C(1) << 53) - x) * RG_2POW_M53;
                }
                is_cand = weight[i] >= lo_best * t;
                if (is_cand && first < 0) first = i;
                ncand += is_cand;
            }
            if (first < 0 || !(lo_best <= DBL_MAX)) {
                /* bounds overflowed (weights near DBL_MAX): score every node */
                lo_best = 0.0;
                first = 0;
                ncand = nnodes;
            }
            best = first;
            if (ncand > 1) {
                for (i = first; i < nnodes; i++) {
                    uint64_t h = rg_hrw_mix(st, lane[i]);
                    uint64_t x = ((h >> 12) << 1) | 1u;
                    double t = (double)(int64_t)((UINT64_C(1) << 53) - x) * RG_2POW_M53;
                    if (weight[i] >= lo_best * t) {
                        double sc = rg_hrw_score(h, weight[i]);
                        if (sc > bs) { bs = sc; best = i; }
                    }
                }
            }
        }
        out[k] = ids[best];
    }
}

/* Top nrep nodes per key (1 <= nrep <= nnodes), best first. Scratch: nrep doubles and
 * nrep ints (the running top list, kept sorted by insertion) and nrep doubles (low).
 * Weighted: the same bounds as rg_hrw_assign. The nrep largest lower bounds are found
 * first; their smallest, L, is at most the nrep-th best score, so every node of the true
 * top nrep (ties included) has upper bound >= L, and only those nodes are scored. */
RG_INLINE void rg_hrw_top_insert(double sc, int32_t i, int32_t nrep, int32_t *got,
                                 double *top_score, int32_t *top_pos) {
    int32_t j;
    if (*got == nrep && !(sc > top_score[nrep - 1])) return;
    j = *got < nrep ? (*got)++ : nrep - 1;
    /* strict >: an equal score stays behind the earlier (lower name) node */
    while (j > 0 && sc > top_score[j - 1]) {
        top_score[j] = top_score[j - 1];
        top_pos[j] = top_pos[j - 1];
        j--;
    }
    top_score[j] = sc;
    top_pos[j] = i;
}

RG_INLINE void rg_hrw_replicas(const uint64_t *lane, const double *weight, const int32_t *ids,
                               int32_t nnodes, const uint64_t *hashes, int64_t n, int32_t nrep,
                               int32_t *out, double *top_score, int32_t *top_pos, double *low) {
    int64_t k;
    int32_t i, j, got;
    for (k = 0; k < n; k++) {
        uint64_t st = rg_hrw_key_state(hashes[k]);
        int32_t *row = out + k * (int64_t)nrep;
        got = 0;
        if (weight == NULL) {
            for (i = 0; i < nnodes; i++) {
                /* h >> 12 < 2^52 converts to double exactly, same order */
                uint64_t h = rg_hrw_mix(st, lane[i]);
                rg_hrw_top_insert((double)(int64_t)(h >> 12), i, nrep, &got, top_score, top_pos);
            }
        } else {
            double lim;
            int32_t nlow = 0;
            for (i = 0; i < nnodes; i++) {
                uint64_t x = ((rg_hrw_mix(st, lane[i]) >> 12) << 1) | 1u;
                double t = (double)(int64_t)((UINT64_C(1) << 53) - x) * RG_2POW_M53;
                double lo = weight[i] * ((double)(int64_t)x * RG_2POW_M53) / t;
                /* keep the nrep largest lower bounds, sorted descending, in low[] */
                if (nlow == nrep && !(lo > low[nrep - 1])) continue;
                j = nlow < nrep ? nlow++ : nrep - 1;
                while (j > 0 && lo > low[j - 1]) { low[j] = low[j - 1]; j--; }
                low[j] = lo;
            }
            lim = low[nrep - 1] * (1.0 - RG_2POW_M40);
            if (!(lim <= DBL_MAX)) lim = 0.0; /* overflowed bounds: score every node */
            for (i = 0; i < nnodes; i++) {
                uint64_t h = rg_hrw_mix(st, lane[i]);
                uint64_t x = ((h >> 12) << 1) | 1u;
                double t = (double)(int64_t)((UINT64_C(1) << 53) - x) * RG_2POW_M53;
                if (weight[i] >= lim * t)
                    rg_hrw_top_insert(rg_hrw_score(h, weight[i]), i, nrep, &got, top_score,
                                      top_pos);
            }
            if (got < nrep) { /* cannot happen (see above); stay exact anyway */
                got = 0;
                for (i = 0; i < nnodes; i++)
                    rg_hrw_top_insert(rg_hrw_score(rg_hrw_mix(st, lane[i]), weight[i]), i, nrep,
                                      &got, top_score, top_pos);
            }
        }
        for (j = 0; j < nrep; j++) row[j] = ids[top_pos[j]];
    }
}

/* ---- Jump consistent hash (contract section 8; Lamping & Veach 2014) ------------------- */

/* Bucket of a 64-bit key among nb >= 1 buckets: the paper's linear congruential walk. */
RG_INLINE int32_t rg_jump(uint64_t key, int64_t nb) {
    int64_t b = -1, j = 0;
    while (j < nb) {
        b = j;
        key = key * UINT64_C(2862933555777941757) + 1u;
        j = (int64_t)((double)(b + 1) * (2147483648.0 / (double)(int64_t)((key >> 33) + 1u)));
    }
    return (int32_t)b;
}

RG_INLINE void rg_jump_batch(const uint64_t *keys, int64_t n, int64_t nb, int32_t *out) {
    int64_t i;
    for (i = 0; i < n; i++) out[i] = rg_jump(keys[i], nb);
}

/* Jump over the XXH64 key hash of canonical integer keys, fused. */
RG_INLINE void rg_jump_assign_u64(const uint64_t *keys, int64_t n, int64_t nb, int32_t *out) {
    int64_t i;
    for (i = 0; i < n; i++) out[i] = rg_jump(rg_xxh64_u64(keys[i], 0), nb);
}

/* Replica r (0 <= r < nrep <= nb): position jump(h_r, nb - r) among the buckets not chosen
 * yet, in ascending order; h_0 = key hash, h_r = XXH64(LE(h_0), seed r). Scratch: nrep
 * ints (chosen buckets, kept sorted). */
RG_INLINE void rg_jump_replicas(const uint64_t *hashes, int64_t n, int64_t nb, int32_t nrep,
                                int32_t *out, int32_t *chosen) {
    int64_t k;
    int32_t r, j;
    for (k = 0; k < n; k++) {
        int32_t *row = out + k * (int64_t)nrep;
        for (r = 0; r < nrep; r++) {
            uint64_t h = r == 0 ? hashes[k] : rg_xxh64_u64(hashes[k], (uint64_t)r);
            int32_t b = rg_jump(h, nb - r);
            /* b-th free bucket: step over chosen ones (sorted ascending) */
            j = 0;
            while (j < r && chosen[j] <= b) { b++; j++; }
            row[r] = b;
            /* insert b at position j (everything before it is < b) */
            {
                int32_t t = r;
                while (t > j) { chosen[t] = chosen[t - 1]; t--; }
                chosen[j] = b;
            }
        }
    }
}

#endif
