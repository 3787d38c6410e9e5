"""Batch key hashing for the layers above placement (backup ranges).

The backup layer groups records by ranges of the XXH64 key-hash space; it asks for the
hashes here, in one batch call to the compiled core, instead of hashing itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._backend import core

__all__ = ["KEY_HASH", "KEY_HASH_SEED", "key_hashes", "key_hashes_buffer"]

KEY_HASH = "xxh64"
KEY_HASH_SEED = 0


def key_hashes(keys: Sequence[bytes]) -> np.ndarray:
    """XXH64 (seed 0) of each byte-string key, as ``uint64``, in one batch call.

    Examples
    --------
    >>> int(key_hashes([b""])[0]) == 0xEF46DB3751D8E999
    True
    """
    out = np.empty(len(keys), dtype=np.uint64)
    if not len(keys):
        return out
    res = core.encode_sequence(list(keys))
    if res[0] != "bytes":
        raise TypeError("keys: expected byte strings")
    core.hash_var(core.MODE_XXH64, res[1], res[2], out)
    return out


def key_hashes_buffer(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """XXH64 (seed 0) of keys stored back to back in ``data`` (uint8), key ``i`` being
    ``data[offsets[i]:offsets[i + 1]]`` (int64 offsets, checked), without Python objects."""
    out = np.empty(len(offsets) - 1, dtype=np.uint64)
    core.hash_var(core.MODE_XXH64, np.ascontiguousarray(data, dtype=np.uint8),
                  np.ascontiguousarray(offsets, dtype=np.int64), out)
    return out
