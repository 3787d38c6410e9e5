"""Small helpers the reference placements share (plain Python)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .ring import _check_float_weight, _parse_nodes, _single_key_error, canonical_keys, xxh64

__all__ = ["key_hashes", "node_weights", "check_n", "check_single_key"]


def key_hashes(keys: Any) -> list[int]:
    """XXH64 (seed 0) of the canonical bytes of every key (contract sections 1-2)."""
    return [xxh64(b, 0) for b in canonical_keys(keys)]


def node_weights(nodes: Any, weights: Any) -> tuple[list[str], list[float]]:
    """Names in the given order and their float weights (default 1.0)."""
    names, raw = _parse_nodes(nodes, weights)
    return names, [_check_float_weight(n, raw.get(n, 1.0), "weights") for n in names]


def check_n(n: Any, limit: int) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n: must be an int, got {type(n).__name__}")
    if not 1 <= int(n) <= limit:
        raise ValueError(f"n: must be between 1 and {limit}, got {n}")
    return int(n)


def check_single_key(key: Any) -> int:
    """The key hash of one key, with ``key: ...`` errors."""
    if isinstance(key, bool) or not isinstance(key, (str, bytes, int, np.integer)):
        raise TypeError(
            f"key: {type(key).__name__} is not a valid key (expected str, bytes or int)"
        )
    try:
        (h,) = key_hashes(key)
    except (TypeError, ValueError) as exc:
        raise _single_key_error(exc) from None
    return h
