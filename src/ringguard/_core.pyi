"""Type stubs for the compiled core (``_core.pyx``); ``_pycore.py`` has the same API."""

from typing import Any

import numpy as np

MODE_XXH64: int
MODE_KETAMA_GE: int
MODE_KETAMA_GT: int

def xxh64(data: bytes | bytearray | memoryview | np.ndarray, seed: int = 0) -> int: ...
def md5(data: bytes | bytearray | memoryview | np.ndarray) -> bytes: ...
def ketama_hash(data: bytes | bytearray | memoryview | np.ndarray) -> int: ...
def check_offsets(offsets: np.ndarray, datalen: int) -> None: ...
def hash_var(mode: int, data: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None: ...
def ketama_points(data: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None: ...
def ucs4_to_utf8(cps: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
def encode_sequence(seq: Any) -> tuple[Any, ...]: ...

class CoreRing:
    points: np.ndarray
    owners: np.ndarray
    start: np.ndarray
    direct: np.ndarray
    bits: int
    distinct_owners: int
    def __init__(
        self, points: np.ndarray, owners: np.ndarray, start: np.ndarray, direct: np.ndarray,
        bits: int,
    ) -> None: ...
    def assign_u64(self, keys: np.ndarray, out: np.ndarray, want_index: bool = False) -> None: ...
    def assign_decimal(
        self, mode: int, keys: np.ndarray, is_signed: bool, out: np.ndarray,
        want_index: bool = False,
    ) -> None: ...
    def assign_var(
        self, mode: int, data: np.ndarray, offsets: np.ndarray, out: np.ndarray,
        want_index: bool = False,
    ) -> None: ...
    def assign_fixed(
        self, mode: int, data: np.ndarray, width: int, out: np.ndarray, want_index: bool = False
    ) -> None: ...
    def replicas(
        self, first: np.ndarray, nrep: int, nnodes: int, zone_of: np.ndarray | None,
        nzones: int, out: np.ndarray,
    ) -> None: ...
def route(
    prefs: np.ndarray, up: np.ndarray, out_node: np.ndarray, out_pos: np.ndarray
) -> None: ...

# --- Maglev, Rendezvous, JumpHash (_core_algos.pxi) ---

# --- Redis Cluster slots, bounded loads (_core_slots.pxi) ---
