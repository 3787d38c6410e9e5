/* ringguard: health-aware routing over preference lists.
 *
 * Plain C11, no Python.h. The caller (_core.pyx) has checked that every preference entry
 * is a valid node index for `up` before calling.
 */
#ifndef RG_ROUTE_H
#define RG_ROUTE_H

#include "rg_common.h"

/* For each key k, the first node of prefs[k*r .. k*r+r) whose up[] flag is set (the acting
 * node) and its position in the list; -1 and -1 where no replica is up. */
RG_INLINE void rg_route(const int32_t *prefs, int64_t n, int32_t r, const uint8_t *up,
                        int32_t *out_node, int8_t *out_pos) {
    int64_t k;
    for (k = 0; k < n; k++) {
        const int32_t *row = prefs + k * (int64_t)r;
        int32_t node = -1, j;
        int8_t pos = -1;
        for (j = 0; j < r; j++) {
            if (up[row[j]]) {
                node = row[j];
                pos = (int8_t)j;
                break;
            }
        }
        out_node[k] = node;
        out_pos[k] = pos;
    }
}

/* First index whose entry is outside [0, nnodes), or -1. */
RG_INLINE int64_t rg_check_indices(const int32_t *a, int64_t len, int32_t nnodes) {
    int64_t i;
    for (i = 0; i < len; i++) {
        if (a[i] < 0 || a[i] >= nnodes) return i;
    }
    return -1;
}

#endif
