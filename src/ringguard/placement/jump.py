"""Jump consistent hash (Lamping & Veach, 2014, arXiv:1406.2294) over the XXH64 key hash.

Nodes are buckets in the order given: ``add`` appends a bucket and only the last bucket can
be removed (that is the algorithm's nature; use :class:`~ringguard.Rendezvous` or
:class:`~ringguard.Ring` to remove arbitrary nodes). Section 8 of
``docs/placement-contract.md`` is the exact rule, replicas included.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from .._backend import core
from .._keys import KeyPart
from ..errors import InvalidPlacementError
from ._common import HashedPlacement, _check_names, check_no_zone, key_hashes, load_named_nodes
from .base import expect_keys, register

__all__ = ["JumpHash", "jump_hash"]


def _check_buckets(num_buckets: Any) -> int:
    if isinstance(num_buckets, bool) or not isinstance(num_buckets, numbers.Integral):
        raise TypeError(f"num_buckets: expected an int, got {type(num_buckets).__name__}")
    nb = int(num_buckets)
    if not 1 <= nb <= core.JUMP_MAX_BUCKETS:
        raise ValueError(f"num_buckets: must be between 1 and {core.JUMP_MAX_BUCKETS}, got {nb}")
    return nb


def jump_hash(keys: Any, num_buckets: int) -> Any:
    """The raw jump consistent hash of 64-bit integer keys (no key hashing).

    Parameters
    ----------
    keys
        One integer in ``[-2**63, 2**64)`` (taken mod 2**64), or an integer array/sequence.
    num_buckets
        Number of buckets, >= 1.

    Returns
    -------
    int or numpy.ndarray
        The bucket (an int for one key, int32 array for a batch).

    Examples
    --------
    >>> from ringguard import jump_hash
    >>> [jump_hash(1, b) for b in (1, 7, 18)]
    [0, 6, 17]
    """
    nb = _check_buckets(num_buckets)
    if isinstance(keys, (numbers.Integral, np.integer)) and not isinstance(keys, bool):
        v = int(keys)
        if not -(2**63) <= v < 2**64:
            raise ValueError(f"keys: integer {v} is outside [-2**63, 2**64)")
        return int(core.jump(v % 2**64, nb))
    arr = np.asarray(keys)
    if arr.ndim != 1:
        raise ValueError(f"keys: expected one integer or a 1-D batch, got shape {arr.shape}")
    if len(arr) == 0:
        return np.empty(0, dtype=np.int32)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"keys: jump_hash needs integer keys, got dtype {arr.dtype}")
    signed = arr.dtype.kind == "i"
    vals = np.ascontiguousarray(arr, dtype=np.int64 if signed else np.uint64).view(np.uint64)
    out = np.empty(len(vals), dtype=np.int32)
    core.jump_batch(vals, nb, out)
    return out


class JumpHash(HashedPlacement):
    """Jump consistent hash placement (``jump-xxh64@1``).

    A key goes to bucket ``jump(XXH64(key), len(nodes))``; bucket i is ``nodes[i]``. No
    memory beyond the names, perfect balance in expectation, and adding a node moves only
    keys onto it, but only the last node can be removed and nodes have no weights.

    Parameters
    ----------
    nodes
        Node names, in bucket order.

    Examples
    --------
    >>> from ringguard import JumpHash
    >>> j = JumpHash(["a", "b", "c"])
    >>> j.node_for("order:42") in j.nodes
    True
    >>> j.add("d").nodes
    ('a', 'b', 'c', 'd')
    """

    algorithm: ClassVar[str] = "jump-xxh64@1"
    __slots__ = ("_nodes", "__weakref__")

    def __init__(self, nodes: Sequence[str]) -> None:
        if isinstance(nodes, (str, bytes)):
            raise TypeError("nodes: expected a sequence of node names, got a string")
        if isinstance(nodes, Mapping):
            raise TypeError("nodes: JumpHash takes a sequence of names (it has no weights); "
                            "use Rendezvous or Maglev for weighted nodes")
        if not isinstance(nodes, (Sequence, np.ndarray)):
            raise TypeError(f"nodes: expected a sequence, got {type(nodes).__name__}")
        names = _check_names(list(nodes))
        _check_buckets(len(names))
        self._nodes = tuple(names)

    def __repr__(self) -> str:
        return f"JumpHash({len(self._nodes)} nodes)"

    def _assign_part(self, part: KeyPart, out: np.ndarray) -> None:
        if part.kind == "u64":
            core.jump_assign_u64(part.values, len(self._nodes), out)
        else:
            core.jump_batch(key_hashes(part), len(self._nodes), out)

    def _replicas_part(self, part: KeyPart, out: np.ndarray, n: int) -> None:
        core.jump_replicas(key_hashes(part), len(self._nodes), n, out)

    def add(self, node: str, weight: float = 1.0, zone: str | None = None) -> JumpHash:
        """A new placement with ``node`` appended as the last bucket.

        Only keys that move to the new node change owner. ``weight`` must be 1 (JumpHash
        has no weights).
        """
        check_no_zone(zone, "JumpHash")
        if weight != 1:
            raise ValueError("weight: JumpHash has no weights; use Rendezvous or Maglev")
        if node in self._nodes:
            raise ValueError(f"node: {node!r} is already in the placement")
        return JumpHash(list(self._nodes) + [node])

    def remove(self, node: str) -> JumpHash:
        """A new placement without ``node``, which must be the last one.

        Raises
        ------
        ValueError
            For any other node: jump hash can only shrink from the end. Use
            :class:`~ringguard.Rendezvous` or :class:`~ringguard.Ring` when arbitrary
            nodes can leave.
        """
        if node not in self._nodes:
            raise ValueError(f"node: {node!r} is not in the placement")
        if len(self._nodes) == 1:
            raise ValueError("node: cannot remove the last node")
        if node != self._nodes[-1]:
            raise ValueError(
                f"node: JumpHash can only remove its last node ({self._nodes[-1]!r}), not "
                f"{node!r}; use Rendezvous or Ring when arbitrary nodes can be removed"
            )
        return JumpHash(list(self._nodes[:-1]))

    def _body(self) -> dict[str, Any]:
        return {"nodes": [{"name": nm} for nm in self._nodes]}



def _load(doc: dict[str, Any]) -> JumpHash:
    where = JumpHash.algorithm
    expect_keys(doc, {"format", "version", "algorithm", "nodes"}, where)
    nodes = load_named_nodes(doc, {"name"}, where)
    try:
        return JumpHash([nd["name"] for nd in nodes])
    except (TypeError, ValueError) as exc:
        raise InvalidPlacementError(f"{where}: {exc}") from None


register(JumpHash.algorithm, _load)
