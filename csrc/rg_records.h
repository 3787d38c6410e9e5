/* ringguard: record digests over columnar buffers (backup chunks).
 *
 * Plain C11, no Python.h, no allocation. The digest of a record is XXH64 (seed 0) of its
 * canonical encoding (ringguard/backends/base.py): epoch and seq as 8 bytes little-endian,
 * a tombstone byte, the key length as 4 bytes little-endian, the key, the value. Each
 * record is encoded into the caller's scratch buffer and hashed there.
 *
 * The function trusts its arguments: _core.pyx checks, with the GIL held, that every key
 * and value lies inside `data`, that tombstones have empty values, that versions are
 * >= 0 and key lengths < 2**32, and that `scratch` holds the largest record.
 */
#ifndef RG_RECORDS_H
#define RG_RECORDS_H

#include "rg_common.h"
#include "xxh64.h"

RG_INLINE void rg_put_le(uint8_t *p, uint64_t v, int nbytes) {
    int b;
    for (b = 0; b < nbytes; b++) p[b] = (uint8_t)(v >> (8 * b));
}

/* Key i is data[koff[i] .. koff[i + 1]), value i is data[voff[i] .. voff[i + 1]),
 * tomb[i] != 0 marks a tombstone. */
RG_INLINE void rg_record_digests(const uint8_t *data, const int64_t *koff,
                                 const int64_t *voff, const uint8_t *tomb,
                                 const int64_t *epochs, const int64_t *seqs, int64_t n,
                                 uint8_t *scratch, uint64_t *out) {
    int64_t i;
    for (i = 0; i < n; i++) {
        uint64_t kl = (uint64_t)(koff[i + 1] - koff[i]);
        uint64_t vl = (uint64_t)(voff[i + 1] - voff[i]);
        rg_put_le(scratch, (uint64_t)epochs[i], 8);
        rg_put_le(scratch + 8, (uint64_t)seqs[i], 8);
        scratch[16] = tomb[i] ? 1 : 0;
        rg_put_le(scratch + 17, kl, 4);
        if (kl) memcpy(scratch + 21, data + koff[i], (size_t)kl);
        if (vl) memcpy(scratch + 21 + kl, data + voff[i], (size_t)vl);
        out[i] = rg_xxh64(scratch, 21 + kl + vl, 0);
    }
}

#endif
