"""Shared data and checks for tests/test_maglev.py, test_rendezvous.py and test_jump.py."""

from __future__ import annotations

import json
import pathlib
import pickle
from typing import Any

import numpy as np

import ringguard

VECTORS = json.loads((pathlib.Path(__file__).parent / "vectors" / "algos.json").read_text())
COMPILED = ringguard.BACKEND == "c"
# Parity sizes: the pure-Python backend runs the same tests on fewer keys.
N_BIG = 100_000 if COMPILED else 3_000
N_SMALL = 3_000 if COMPILED else 500


def vector_keys() -> list[str | int]:
    return [k["str"] if "str" in k else k["int"] for k in VECTORS["keys"]]


def u64_keys(n: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**64, n, dtype=np.uint64)


def str_keys(n: int, seed: int = 7) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"user:{int(v)}/\u00e9{i % 7}" for i, v in enumerate(rng.integers(0, 10**12, n))]


def containers(keys: list[str]) -> list[Any]:
    """The same str keys as a list, NumPy S and U arrays, object array, pyarrow if present."""
    out: list[Any] = [keys, np.array([k.encode() for k in keys], dtype="S"),
                      np.array(keys, dtype="U"), np.array(keys, dtype=object)]
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover
        return out
    out += [pa.array(keys, type=pa.string()),
            pa.chunked_array([keys[: len(keys) // 2], keys[len(keys) // 2 :]],
                             type=pa.large_string())]
    return out


def check_round_trips(p: Any) -> None:
    q = ringguard.from_json(p.to_json())
    assert q == p and hash(q) == hash(p) and q.to_json() == p.to_json()
    assert type(q).from_json(p.to_json()) == p
    r = pickle.loads(pickle.dumps(p))
    assert r == p and r.nodes == p.nodes
    keys = u64_keys(500)
    assert np.array_equal(q.assign(keys), p.assign(keys))


def check_replicas_shape(p: Any, keys: Any, n: int) -> np.ndarray:
    rep = p.replicas(keys, n)
    assert rep.dtype == np.int32 and rep.shape == (len(keys), n)
    assert np.array_equal(rep[:, 0], p.assign(keys))
    srt = np.sort(rep, axis=1)
    assert not (srt[:, 1:] == srt[:, :-1]).any(), "replicas must be distinct"
    assert rep.min() >= 0 and rep.max() < len(p.nodes)
    return rep


def check_empty_and_out(p: Any) -> None:
    empties: list[Any] = [[], np.empty(0, dtype=np.uint64), np.empty(0, dtype="S3")]
    for empty in empties:
        a = p.assign(empty)
        assert a.shape == (0,) and a.dtype == np.int32
        assert p.replicas(empty, 1).shape == (0, 1)
    keys = u64_keys(40_000 if COMPILED else 1_000)
    out = np.full(len(keys), -7, dtype=np.int32)
    assert p.assign(keys, out=out) is out
    assert np.array_equal(out, p.assign(keys, threads=3))
    assert np.array_equal(p.replicas(keys, 1, threads=2)[:, 0], out)
    ro = keys.copy()
    ro.flags.writeable = False
    assert np.array_equal(p.assign(ro), out)


def moved_by_name(old: Any, new: Any, keys: Any) -> tuple[np.ndarray, np.ndarray]:
    """Old and new owner names of every key, as arrays of str."""
    a = np.array(old.nodes, dtype=object)[old.assign(keys)]
    b = np.array(new.nodes, dtype=object)[new.assign(keys)]
    return a, b


def vector_groups() -> list[tuple[list[str | int], list[int]]]:
    """The vector keys split into a str batch and an int batch, with their positions."""
    keys = vector_keys()
    strs = [i for i, k in enumerate(keys) if isinstance(k, str)]
    ints = [i for i, k in enumerate(keys) if not isinstance(k, str)]
    return [([keys[i] for i in strs], strs), ([keys[i] for i in ints], ints)]
