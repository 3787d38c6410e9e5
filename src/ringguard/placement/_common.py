"""Helpers every placement class shares: node/weight parsing, output arrays, key scalars.

Moved out of ``ring.py`` so that Maglev, Rendezvous and JumpHash use the same checks (and
the same error messages) as :class:`~ringguard.placement.ring.Ring`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from .._backend import core
from .._keys import KeyPart, normalize
from ..errors import InvalidPlacementError
from .base import (
    JsonPlacement,
    check_replica_count,
    check_threads,
    expect_keys,
    expect_node_list,
    run_over_parts,
)

__all__ = ["HashedPlacement", "_check_names", "_check_out", "_float_weight",
           "_parse_nodes", "_readonly", "check_no_zone", "key_hashes", "load_named_nodes"]



def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _check_names(names: Sequence[Any]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"nodes[{i}]: node names must be str, got {type(name).__name__}")
        if not name:
            raise ValueError(f"nodes[{i}]: node names must be non-empty")
        if name in seen:
            raise ValueError(f"nodes[{i}]: duplicate node name {name!r}")
        seen.add(name)
        out.append(name)
    if not out:
        raise ValueError("nodes: a placement needs at least one node")
    return out


def _parse_nodes(nodes: Any, weights: Any) -> tuple[list[str], dict[str, Any]]:
    """Names in order and the explicitly given weights (a mapping or ``weights=``)."""
    if isinstance(nodes, (str, bytes)):
        raise TypeError("nodes: expected a sequence of node names or a mapping, got a string")
    given: dict[str, Any] = {}
    if isinstance(nodes, Mapping):
        if weights is not None:
            raise ValueError("weights: give weights either in the nodes mapping or as weights=")
        names = _check_names(list(nodes))
        given = dict(nodes)
    else:
        if not isinstance(nodes, (Sequence, np.ndarray)):
            raise TypeError(f"nodes: expected a sequence or mapping, got {type(nodes).__name__}")
        names = _check_names(list(nodes))
        if weights is not None:
            if not isinstance(weights, Mapping):
                raise TypeError("weights: expected a mapping of node name -> weight")
            unknown = [k for k in weights if k not in set(names)]
            if unknown:
                raise ValueError(f"weights: unknown node {unknown[0]!r}")
            given = dict(weights)
    return names, given


# Weights above this are refused, so no weight computation can overflow (contract 3).
MAX_WEIGHT = 1e15


def _float_weight(name: str, w: Any) -> float:
    if isinstance(w, bool) or not isinstance(w, numbers.Real):
        raise TypeError(f"weights[{name!r}]: expected a number, got {type(w).__name__}")
    try:
        f = float(w)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f) or not 0 < f <= MAX_WEIGHT:
        raise ValueError(
            f"weights[{name!r}]: must be finite, > 0 and <= {MAX_WEIGHT:g}, got {w!r}"
        )
    return f


def _check_out(out: Any, shape: tuple[int, ...]) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=np.int32)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a NumPy int32 array, got {type(out).__name__}")
    if out.dtype != np.int32 or out.shape != shape:
        raise ValueError(f"out: expected int32 of shape {shape}, got {out.dtype} {out.shape}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out: must be C-contiguous and writeable")
    return out


# ---- a base for placements that hash each key once and then run a kernel ------------------


def key_hashes(part: KeyPart) -> np.ndarray:
    """XXH64 (seed 0) of the canonical bytes of every key of one part, as uint64."""
    out = np.empty(part.n, dtype=np.uint64)
    if part.kind == "u64":
        core.xxh64_u64(part.values, out)
    elif part.kind == "var":
        core.hash_var(core.MODE_XXH64, part.data, part.offsets, out)
    elif part.kind == "fixed":
        core.xxh64_fixed(part.data, part.width, out)
    else:  # pragma: no cover - normalize(ketama=False) never gives "dec"
        raise AssertionError(f"unexpected key part {part.kind!r}")
    return out


def check_no_zone(zone: Any, what: str) -> None:
    if zone is not None:
        raise ValueError(f"zone: {what} has no zones")


class HashedPlacement(JsonPlacement):
    """Batch plumbing, identity and serialization of Maglev, Rendezvous and JumpHash.

    Subclasses set ``algorithm`` and ``_nodes`` and implement ``_assign_part``,
    ``_replicas_part``, ``_max_replicas`` and ``_body``.
    """

    algorithm: ClassVar[str]
    _nodes: tuple[str, ...]
    __slots__ = ()

    @property
    def nodes(self) -> tuple[str, ...]:
        """Node names; batch calls return indices into this tuple."""
        return self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def _assign_part(self, part: KeyPart, out: np.ndarray) -> None:
        raise NotImplementedError

    def _replicas_part(self, part: KeyPart, out: np.ndarray, n: int) -> None:
        raise NotImplementedError

    def _max_replicas(self) -> int:
        return len(self._nodes)


    def _run(self, keys: Any, threads: Any, out: Any, tail: tuple[int, ...],
             fn: Callable[[KeyPart, np.ndarray], None]) -> np.ndarray:
        nthreads = check_threads(threads)
        batch = normalize(keys)
        return run_over_parts(batch, nthreads, _check_out(out, (batch.n, *tail)), fn)

    def assign(self, keys: Any, *, threads: int | None = None, out: Any = None) -> np.ndarray:
        """Node index of every key.

        Parameters
        ----------
        keys
            One key or a batch (str, bytes, int, lists, NumPy, pandas, pyarrow).
        threads
            Split the batch over this many threads (GIL-free kernels); default 1.
        out
            Optional int32 array of ``len(keys)`` to write into.

        Returns
        -------
        numpy.ndarray
            int32 indices into :attr:`nodes`, one per key.

        Examples
        --------
        >>> import numpy as np
        >>> from ringguard import Rendezvous
        >>> Rendezvous(["a", "b", "c"]).assign(np.arange(4, dtype=np.uint64)).dtype.name
        'int32'
        """
        return self._run(keys, threads, out, (), self._assign_part)


    def replicas(
        self, keys: Any, n: int, *, threads: int | None = None, out: Any = None
    ) -> np.ndarray:
        """Preference list of ``n`` distinct nodes per key, primary first.

        Returns
        -------
        numpy.ndarray
            int32 array of shape ``(len(keys), n)``; column 0 equals :meth:`assign`.

        Examples
        --------
        >>> from ringguard import Maglev
        >>> Maglev(["a", "b", "c"], table_size=1009).replicas(["k1", "k2"], 2).shape
        (2, 2)
        """
        nrep = check_replica_count(n, self._max_replicas())

        def part_fn(part: KeyPart, o: np.ndarray) -> None:
            self._replicas_part(part, o, nrep)

        return self._run(keys, threads, out, (nrep,), part_fn)


def load_named_nodes(doc: dict[str, Any], fields: set[str], where: str) -> list[dict[str, Any]]:
    """The ``nodes`` list of a document, each an object with exactly ``fields``."""
    nodes = expect_node_list(doc["nodes"])
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            raise InvalidPlacementError(f"nodes[{i}]: expected an object")
        expect_keys(node, fields, f"{where} nodes[{i}]")
    return nodes
