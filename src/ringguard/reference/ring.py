"""Pure-Python reference twin of the placement contract.

This module implements ``docs/placement-contract.md`` as literally and as
plainly as possible.  It is the oracle the compiled core is tested against and
the speed baseline, so it favours obviousness over speed: plain loops,
:mod:`bisect`, :mod:`hashlib` and a small pure-Python XXH64.

NumPy is used only to return arrays and to read NumPy inputs.  pandas and
pyarrow are never imported here; their objects are recognised by the module
their type comes from and converted with their own ``tolist``/``to_pylist``.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import numbers
import operator
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["xxh64", "ketama_hash", "canonical_keys", "ketama_keys", "Ring"]

# ---------------------------------------------------------------------------
# XXH64, written from the xxHash specification (doc/xxhash_spec.md).
# ---------------------------------------------------------------------------

_MASK64 = 0xFFFFFFFFFFFFFFFF

_PRIME64_1 = 0x9E3779B185EBCA87
_PRIME64_2 = 0xC2B2AE3D27D4EB4F
_PRIME64_3 = 0x165667B19E3779F9
_PRIME64_4 = 0x85EBCA77C2B2AE63
_PRIME64_5 = 0x27D4EB2F165667C5


def _rotl64(x: int, r: int) -> int:
    """Rotate the 64-bit value ``x`` left by ``r`` bits."""
    return ((x << r) | (x >> (64 - r))) & _MASK64


def _xxh64_round(acc: int, lane: int) -> int:
    """One XXH64 accumulator round: ``rotl(acc + lane * P2, 31) * P1``."""
    acc = (acc + lane * _PRIME64_2) & _MASK64
    acc = _rotl64(acc, 31)
    return (acc * _PRIME64_1) & _MASK64


def _xxh64_merge(acc: int, val: int) -> int:
    """Merge one accumulator into ``acc`` (step 3 of the spec)."""
    acc ^= _xxh64_round(0, val)
    return (acc * _PRIME64_1 + _PRIME64_4) & _MASK64


def _read64(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 8], "little")


def _read32(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 4], "little")


def xxh64(data: bytes | bytearray | memoryview, seed: int = 0) -> int:
    """Compute XXH64 of ``data`` as specified by xxHash.

    Parameters
    ----------
    data : bytes
        The input bytes (any bytes-like object).
    seed : int, optional
        The 64-bit seed; it is taken modulo ``2**64``. Default 0.

    Returns
    -------
    int
        The 64-bit hash as an unsigned Python int.

    Examples
    --------
    >>> hex(xxh64(b""))
    '0xef46db3751d8e999'
    """
    data = bytes(data)
    seed = operator.index(seed) & _MASK64
    length = len(data)
    pos = 0

    # Step 1/2: four accumulators over 32-byte stripes, or the short-input start.
    if length >= 32:
        v1 = (seed + _PRIME64_1 + _PRIME64_2) & _MASK64
        v2 = (seed + _PRIME64_2) & _MASK64
        v3 = seed
        v4 = (seed - _PRIME64_1) & _MASK64
        while pos + 32 <= length:
            v1 = _xxh64_round(v1, _read64(data, pos))
            v2 = _xxh64_round(v2, _read64(data, pos + 8))
            v3 = _xxh64_round(v3, _read64(data, pos + 16))
            v4 = _xxh64_round(v4, _read64(data, pos + 24))
            pos += 32
        # Step 3: converge the accumulators.
        acc = (_rotl64(v1, 1) + _rotl64(v2, 7) + _rotl64(v3, 12) + _rotl64(v4, 18)) & _MASK64
        acc = _xxh64_merge(acc, v1)
        acc = _xxh64_merge(acc, v2)
        acc = _xxh64_merge(acc, v3)
        acc = _xxh64_merge(acc, v4)
    else:
        acc = (seed + _PRIME64_5) & _MASK64

    # Step 4: add the input length.
    acc = (acc + length) & _MASK64

    # Step 5: consume the remaining 0..31 bytes.
    while pos + 8 <= length:
        acc ^= _xxh64_round(0, _read64(data, pos))
        acc = (_rotl64(acc, 27) * _PRIME64_1 + _PRIME64_4) & _MASK64
        pos += 8
    if pos + 4 <= length:
        acc ^= (_read32(data, pos) * _PRIME64_1) & _MASK64
        acc = (_rotl64(acc, 23) * _PRIME64_2 + _PRIME64_3) & _MASK64
        pos += 4
    while pos < length:
        acc ^= (data[pos] * _PRIME64_5) & _MASK64
        acc = (_rotl64(acc, 11) * _PRIME64_1) & _MASK64
        pos += 1

    # Step 6: final mix (avalanche).
    acc ^= acc >> 33
    acc = (acc * _PRIME64_2) & _MASK64
    acc ^= acc >> 29
    acc = (acc * _PRIME64_3) & _MASK64
    acc ^= acc >> 32
    return acc


def ketama_hash(data: bytes) -> int:
    """Return the libketama hash: the first 4 bytes of MD5, little-endian.

    Parameters
    ----------
    data : bytes
        The input bytes.

    Returns
    -------
    int
        ``d[0] | d[1] << 8 | d[2] << 16 | d[3] << 24`` for ``d = MD5(data)``.

    Examples
    --------
    >>> ketama_hash(b"test")
    3446378249
    """
    d = hashlib.md5(bytes(data)).digest()
    return d[0] | d[1] << 8 | d[2] << 16 | d[3] << 24


def _md5_points(data: bytes) -> list[int]:
    """The four little-endian 32-bit words of ``MD5(data)`` (ketama points)."""
    d = hashlib.md5(data).digest()
    return [int.from_bytes(d[4 * h : 4 * h + 4], "little") for h in range(4)]


# ---------------------------------------------------------------------------
# Keys (contract section 1).
# ---------------------------------------------------------------------------

_INT_MIN = -(2**63)
_INT_END = 2**64  # exclusive

# NumPy dtype kinds: i/u integers, S bytes, U str, O object, T StringDType.
_NUMPY_OK_KINDS = "iuSUOT"

_PYARROW_OK_TYPES = (
    "is_string",
    "is_large_string",
    "is_binary",
    "is_large_binary",
    "is_integer",
)


def _module_of(obj: Any) -> str:
    return type(obj).__module__ or ""


def _is_int_item(x: Any) -> bool:
    """True for Python ints and NumPy integer scalars, never for bools."""
    if isinstance(x, (bool, np.bool_)):
        return False
    return isinstance(x, (int, np.integer))


def _batch_items(keys: Any) -> tuple[list[Any], bool]:
    """Turn a batch into a plain list of items.

    Returns ``(items, from_arrow)``; ``from_arrow`` says a ``None`` item is an
    Arrow null (a ``ValueError``) rather than a bad object (a ``TypeError``).
    Anything that is not a recognised batch container is a batch of one key.
    """
    if isinstance(keys, (list, tuple)):
        return list(keys), False

    if isinstance(keys, np.ndarray):
        if keys.dtype.kind not in _NUMPY_OK_KINDS:
            raise TypeError(
                f"keys: NumPy arrays of dtype {keys.dtype} are not supported "
                "(use an integer, S, U, object or StringDType array)"
            )
        if keys.ndim == 0:
            keys = keys.reshape(1)
        if keys.ndim != 1:
            raise ValueError(f"keys: expected a 1-D array, got shape {keys.shape}")
        # .tolist() gives Python ints (with the right sign), bytes with trailing
        # NULs removed, and str, whatever the byte order or memory layout.
        return keys.tolist(), False

    module = _module_of(keys)
    if module.startswith("pandas"):
        import pandas as pd  # lazy: only when we were given a pandas object

        if isinstance(keys, (pd.Series, pd.Index)):
            items = keys.tolist()
            if isinstance(keys.dtype, np.dtype):  # object/NumPy dtypes: Python objects
                return items, False
            # An extension dtype (string, Int64, category, ArrowDtype) is a typed column:
            # its missing values are nulls (a ValueError), as in Arrow and Polars.
            for i in np.flatnonzero(np.asarray(keys.isna(), dtype=bool)).tolist():
                items[i] = None
            return items, True
    if module.startswith("pyarrow"):
        import pyarrow as pa  # lazy: only when we were given a pyarrow object

        if isinstance(keys, (pa.Array, pa.ChunkedArray)):
            if not any(getattr(pa.types, check)(keys.type) for check in _PYARROW_OK_TYPES):
                raise TypeError(
                    f"keys: pyarrow arrays of type {keys.type} are not supported "
                    "(use string, large_string, binary, large_binary or an integer type)"
                )
            return keys.to_pylist(), True

    # A single str, bytes or int, or any other single object (rejected below).
    return [keys], False


def _validated(keys: Any) -> tuple[list[Any], bool]:
    """Validate a batch; return ``(items, is_int_batch)``.

    Every item is then a plain ``int`` (integer batch) or ``bytes`` (byte-string
    batch, with ``str`` items already encoded as UTF-8).  The first offending
    index wins, as the table of contract section 1 says.
    """
    items, from_arrow = _batch_items(keys)
    out: list[Any] = []
    batch_is_int: bool | None = None  # decided by the first item
    for i, x in enumerate(items):
        if x is None and from_arrow:
            raise ValueError(f"keys[{i}]: null is not a valid key")
        if _is_int_item(x):
            item_is_int = True
        elif isinstance(x, (str, bytes)):
            item_is_int = False
        else:
            what = "None" if x is None else type(x).__name__
            raise TypeError(f"keys[{i}]: {what} is not a valid key (expected str, bytes or int)")

        if batch_is_int is None:
            batch_is_int = item_is_int
        elif item_is_int != batch_is_int:
            if item_is_int:
                raise TypeError(f"keys[{i}]: mixed key types: int item in a str/bytes batch")
            raise TypeError(f"keys[{i}]: mixed key types: {type(x).__name__} item in an int batch")

        if item_is_int:
            v = int(x)
            if not _INT_MIN <= v < _INT_END:
                raise ValueError(f"keys[{i}]: integer {v} is outside [-2**63, 2**64)")
            out.append(v)
        elif isinstance(x, str):
            try:
                out.append(x.encode("utf-8"))
            except UnicodeEncodeError as exc:
                raise ValueError(
                    f"keys[{i}]: str cannot be encoded as UTF-8 ({exc.reason})"
                ) from None
        else:
            out.append(bytes(x))
    return out, bool(batch_is_int)


def canonical_keys(keys: Any) -> list[bytes]:
    """Return the canonical bytes of every key of a batch (contract section 1).

    Parameters
    ----------
    keys : str, bytes, int, sequence, numpy.ndarray, pandas.Series or pyarrow array
        A batch of keys, or one key (a batch of one).

    Returns
    -------
    list of bytes
        ``str`` -> UTF-8, ``bytes`` -> itself, integer ``v`` -> the 8 bytes of
        ``v % 2**64`` little-endian.

    Raises
    ------
    TypeError
        ``"keys[i]: ..."`` for a bad or mixed item at index ``i``, or naming the
        dtype of an unsupported NumPy (or pyarrow) array.
    ValueError
        ``"keys[i]: ..."`` for an integer outside ``[-2**63, 2**64)``, a str that
        is not UTF-8 encodable, or a pyarrow null.
    """
    items, is_int = _validated(keys)
    if is_int:
        return [(v % _INT_END).to_bytes(8, "little") for v in items]
    return items


def ketama_keys(keys: Any) -> list[bytes]:
    """Return the ketama bytes of every key of a batch (contract section 1).

    Same validation as :func:`canonical_keys`, but an integer becomes the
    ASCII decimal ``str(v)`` of its value as given.

    Parameters
    ----------
    keys : str, bytes, int, sequence, numpy.ndarray, pandas.Series or pyarrow array
        A batch of keys, or one key (a batch of one).

    Returns
    -------
    list of bytes
        The bytes libketama clients hash for each key.

    Raises
    ------
    TypeError, ValueError
        As :func:`canonical_keys`.
    """
    items, is_int = _validated(keys)
    if is_int:
        return [str(v).encode("ascii") for v in items]
    return items


# ---------------------------------------------------------------------------
# Argument validation helpers for Ring.
# ---------------------------------------------------------------------------

_XXH64_ALGORITHM = "ring-xxh64@1"
_KETAMA_ALGORITHM = "ketama-md5@1"
_COMPATS = ("libketama", "uhashring")


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{what}: node names must be str, got {type(name).__name__}")
    if name == "":
        raise ValueError(f"{what}: node names must not be empty")
    return str(name)  # plain str even for str subclasses such as numpy.str_


def _check_float_weight(name: str, w: Any, what: str) -> float:
    if isinstance(w, (bool, np.bool_)) or not isinstance(w, numbers.Real):
        raise TypeError(f"{what}: weight of {name!r} must be a number, got {type(w).__name__}")
    try:
        w = float(w)
    except OverflowError:
        w = math.inf
    if not math.isfinite(w) or not 0.0 < w <= 1e15:
        raise ValueError(f"{what}: weight of {name!r} must be finite, > 0 and <= 1e15, got {w!r}")
    return w


def _check_int_weight(name: str, w: Any, what: str) -> int:
    if isinstance(w, (bool, np.bool_)) or not isinstance(w, (int, np.integer)):
        raise TypeError(
            f"{what}: ketama weight of {name!r} must be an int >= 1, got {type(w).__name__}"
        )
    w = int(w)
    if not 1 <= w <= 2**32 - 1:
        raise ValueError(f"{what}: ketama weight of {name!r} must be in 1..2**32-1, got {w}")
    return w


def _parse_nodes(nodes: Any, weights: Any) -> tuple[list[str], dict[str, Any]]:
    """Return ``(names in the given order, raw weights given by name)``."""
    raw: dict[str, Any] = {}
    if isinstance(nodes, Mapping):
        if weights is not None:
            raise ValueError("weights: cannot be given when nodes is a mapping of weights")
        pairs = list(nodes.items())
        names = [_check_name(name, "nodes") for name, _ in pairs]
        raw = {name: w for name, (_, w) in zip(names, pairs, strict=True)}
        where = "nodes"
    else:
        if isinstance(nodes, (str, bytes)) or not isinstance(nodes, Iterable):
            raise TypeError(
                f"nodes: expected a sequence of names or a mapping name -> weight, "
                f"got {type(nodes).__name__}"
            )
        names = [_check_name(name, "nodes") for name in nodes]
        where = "weights"
        if weights is not None:
            if not isinstance(weights, Mapping):
                raise TypeError(
                    f"weights: expected a mapping name -> weight, got {type(weights).__name__}"
                )
            for name, w in weights.items():
                raw[name] = w
    if not names:
        raise ValueError("nodes: must not be empty")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"nodes: duplicate node name {name!r}")
        seen.add(name)
    for name in raw:
        if name not in seen:
            raise ValueError(f"{where}: {name!r} is not a node")
    return names, raw


def _check_vnodes(vnodes: Any) -> int:
    if isinstance(vnodes, (bool, np.bool_)) or not isinstance(vnodes, (int, np.integer)):
        raise TypeError(f"vnodes: must be an int >= 1, got {type(vnodes).__name__}")
    vnodes = int(vnodes)
    if vnodes < 1:
        raise ValueError(f"vnodes: must be an int >= 1, got {vnodes}")
    return vnodes


def _check_zones(zones: Any, names: list[str]) -> dict[str, Any] | None:
    if zones is None:
        return None
    if not isinstance(zones, Mapping):
        raise TypeError(f"zones: expected a mapping name -> zone, got {type(zones).__name__}")
    for name in zones:
        if name not in names:
            raise ValueError(f"zones: {name!r} is not a node")
    for name in names:
        if name not in zones:
            raise ValueError(f"zones: node {name!r} has no zone")
        if zones[name] is None:
            raise ValueError(f"zones: zone of node {name!r} must not be None")
    return {name: zones[name] for name in names}


def _check_pairs(pairs: Any, names: list[str]) -> dict[str, str] | None:
    """Contract section 8: every node in exactly one pair of two distinct nodes."""
    if pairs is None:
        return None
    partner: dict[str, str] = {}
    for i, (a, b) in enumerate(pairs):
        if a not in names or b not in names:
            raise ValueError(f"pairs[{i}]: unknown node")
        if a == b or a in partner or b in partner:
            raise ValueError(f"pairs[{i}]: each node must be in exactly one pair")
        partner[a], partner[b] = b, a
    if len(partner) != len(names):
        raise ValueError("pairs: every node must be in exactly one pair")
    return partner


def _single_key_error(exc: Exception) -> Exception:
    """Re-word a ``keys[0]: ...`` error for single-key calls (``key: ...``)."""
    message = str(exc)
    if message.startswith("keys[0]: "):
        message = "key: " + message[len("keys[0]: ") :]
    return type(exc)(message)


# ---------------------------------------------------------------------------
# The ring.
# ---------------------------------------------------------------------------


class Ring:
    """A consistent-hashing ring: ``ring-xxh64@1`` or, via :meth:`ketama`, ``ketama-md5@1``.

    Parameters
    ----------
    nodes : sequence of str or mapping of str to float
        Distinct non-empty node names, or a mapping name -> weight.  ``.nodes``
        keeps this order and batch calls return indices into it.
    weights : mapping of str to float, optional
        Weights by node name (finite, > 0; default 1.0).  Not allowed when
        ``nodes`` is a mapping.
    zones : mapping of str to hashable, optional
        Zone of every node, used by :meth:`replicas` to spread copies.
    vnodes : int, optional
        Points per node of mean weight (default 160).

    Notes
    -----
    Node ``name`` of weight ``w`` owns ``max(1, round(vnodes * w / mean))``
    points ``XXH64(f"{name}#{j}")``, sorted by (value, name, j).  A key with hash
    ``h = XXH64(canonical bytes)`` belongs to the first point with value >= h,
    wrapping to point 0.
    """

    def __init__(
        self,
        nodes: Any,
        *,
        weights: Mapping[str, float] | None = None,
        zones: Mapping[str, Any] | None = None,
        vnodes: int = 160,
        pairs: Iterable[tuple[str, str]] | None = None,
    ) -> None:
        names, raw = _parse_nodes(nodes, weights)
        where = "nodes" if isinstance(nodes, Mapping) else "weights"
        weight_of = {name: _check_float_weight(name, raw.get(name, 1.0), where) for name in names}
        self._init_common(names, weight_of)
        self._vnodes: int | None = _check_vnodes(vnodes)
        self._zones: dict[str, Any] | None = _check_zones(zones, names)
        self._partner: dict[str, str] | None = _check_pairs(pairs, names)
        self._algorithm = _XXH64_ALGORITHM
        self._compat: str | None = None
        self._build_xxh64_points()

    @classmethod
    def ketama(
        cls,
        nodes: Any,
        *,
        weights: Mapping[str, int] | None = None,
        compat: str = "libketama",
    ) -> Ring:
        """Build a ketama (``ketama-md5@1``) ring compatible with libketama or uhashring.

        Parameters
        ----------
        nodes : sequence of str or mapping of str to int
            Distinct non-empty node names, or a mapping name -> weight.
        weights : mapping of str to int, optional
            Integer weights >= 1 by node name (libketama's "memory"), default 1.
        compat : {"libketama", "uhashring"}, optional
            Which client to reproduce (point counts, lookup and ties).

        Returns
        -------
        Ring
            The ketama ring.
        """
        if not isinstance(compat, str) or compat not in _COMPATS:
            raise ValueError(f"compat: must be one of {_COMPATS}, got {compat!r}")
        names, raw = _parse_nodes(nodes, weights)
        where = "nodes" if isinstance(nodes, Mapping) else "weights"
        weight_of = {name: _check_int_weight(name, raw.get(name, 1), where) for name in names}
        self = cls.__new__(cls)
        self._init_common(names, weight_of)
        self._vnodes = None
        self._zones = None
        self._partner = None
        self._algorithm = _KETAMA_ALGORITHM
        self._compat = compat
        self._build_ketama_points()
        return self

    # -- construction ------------------------------------------------------

    def _init_common(self, names: list[str], weight_of: dict[str, Any]) -> None:
        self._nodes = tuple(names)
        self._index = {name: i for i, name in enumerate(names)}
        self._weights = weight_of

    def _build_xxh64_points(self) -> None:
        """Contract section 3."""
        mean = math.fsum(self._weights.values()) / len(self._nodes)
        triples = []  # (value, name, j)
        for name in self._nodes:
            w = self._weights[name]
            count = max(1, round(self._vnodes * w / mean))
            for j in range(count):
                triples.append((xxh64(f"{name}#{j}".encode(), 0), name, j))
        triples.sort()
        self._set_points([(value, self._index[name]) for value, name, _ in triples])

    def _ketama_ks(self, w: int) -> int:
        """Digests for a node of weight ``w`` (contract section 4)."""
        n = len(self._nodes)
        total = sum(self._weights.values())
        if self._compat == "libketama":
            pct = np.float32(np.float32(w) / np.float32(total))
            return math.floor(float(np.float32(float(pct) * 40.0 * float(n))))
        return (40 * n * w) // total

    def _build_ketama_points(self) -> None:
        """Contract section 4."""
        quads = []  # (value, name, k, h)
        for name in self._nodes:
            for k in range(self._ketama_ks(self._weights[name])):
                for h, value in enumerate(_md5_points(f"{name}-{k}".encode())):
                    quads.append((value, name, k, h))
        quads.sort()  # equal values ordered by node name (libketama)
        pairs = [(value, self._index[name]) for value, name, _, _ in quads]
        if self._compat == "uhashring":
            # uhashring keeps one dict entry per value: the node written last,
            # i.e. the one that comes last in .nodes, owns every equal point.
            last_owner: dict[int, int] = {}
            for value, owner in pairs:
                last_owner[value] = max(owner, last_owner.get(value, -1))
            pairs = [(value, last_owner[value]) for value, _ in pairs]
        self._set_points(pairs)

    def _set_points(self, pairs: list[tuple[int, int]]) -> None:
        if not pairs:  # only possible for absurd ketama weights
            raise ValueError("weights: no node gets any point on the ring")
        self._point_values = [value for value, _ in pairs]
        self._point_owners = [owner for _, owner in pairs]
        self._owning_nodes = len(set(self._point_owners))
        if self._zones is not None:
            self._zone_of = [self._zones[name] for name in self._nodes]
            self._all_zones = set(self._zone_of[node] for node in self._point_owners)

    # -- properties --------------------------------------------------------

    @property
    def nodes(self) -> tuple[str, ...]:
        """Node names in the given order."""
        return self._nodes

    @property
    def weights(self) -> dict[str, float | int]:
        """Weight of every node (float for ``ring-xxh64@1``, int for ketama)."""
        return dict(self._weights)

    @property
    def zones(self) -> dict[str, Any] | None:
        """Zone of every node, or None when the ring has no zones."""
        return None if self._zones is None else dict(self._zones)

    @property
    def vnodes(self) -> int | None:
        """Points per node of mean weight; None for ketama rings (they use 40 digests)."""
        return self._vnodes

    @property
    def algorithm(self) -> str:
        """``"ring-xxh64@1"`` or ``"ketama-md5@1"``."""
        return self._algorithm

    @property
    def compat(self) -> str | None:
        """``"libketama"`` or ``"uhashring"`` for ketama rings, None otherwise."""
        return self._compat

    def __repr__(self) -> str:
        extra = f"compat={self._compat!r}" if self._compat else f"vnodes={self._vnodes}"
        return f"<reference.Ring {self._algorithm} nodes={len(self._nodes)} {extra}>"

    # -- lookup ------------------------------------------------------------

    def _key_hashes(self, keys: Any) -> list[int]:
        if self._algorithm == _XXH64_ALGORITHM:
            return [xxh64(b, 0) for b in canonical_keys(keys)]
        return [ketama_hash(b) for b in ketama_keys(keys)]

    def _point_index(self, h: int) -> int:
        """Index of the key's point: first value >= h (> h for uhashring), wrapping."""
        if self._compat == "uhashring":
            i = bisect.bisect_right(self._point_values, h)
        else:
            i = bisect.bisect_left(self._point_values, h)
        if i == len(self._point_values):
            i = 0
        return i

    def assign(
        self, keys: Any, *, threads: int | None = None, max_load: float | None = None
    ) -> np.ndarray:
        """Return the node index of every key.

        Parameters
        ----------
        keys : batch of keys
            See :func:`canonical_keys`.
        threads : int, optional
            Accepted for API compatibility and ignored.
        max_load : float, optional
            Bounded loads (contract section 7): each node takes at most
            ``ceil(max_load * len(keys) * w / sum(w))`` keys of the batch.

        Returns
        -------
        numpy.ndarray
            int32 array, one index into :attr:`nodes` per key.
        """
        if max_load is not None:
            return self._assign_bounded(keys, max_load)
        out = [self._point_owners[self._point_index(h)] for h in self._key_hashes(keys)]
        return np.array(out, dtype=np.int32)

    def _assign_bounded(self, keys: Any, max_load: Any) -> np.ndarray:
        """Contract section 7, literally."""
        if isinstance(max_load, (bool, np.bool_)) or not isinstance(max_load, numbers.Real):
            raise TypeError(f"max_load: must be a number, got {type(max_load).__name__}")
        c = float(max_load)
        if not math.isfinite(c) or c < 1:
            raise ValueError(f"max_load: must be finite and >= 1, got {max_load!r}")
        hashes = self._key_hashes(keys)
        m = len(hashes)
        total = math.fsum(self._weights.values())
        cap = [math.ceil(c * m * self._weights[name] / total) for name in self._nodes]
        owning = set(self._point_owners)
        if sum(cap[i] for i in owning) < m:
            raise ValueError("max_load: the capacities cannot hold every key")
        count = [0] * len(self._nodes)
        out = []
        npoints = len(self._point_owners)
        for h in hashes:
            pos = self._point_index(h)
            while count[self._point_owners[pos]] >= cap[self._point_owners[pos]]:
                pos = (pos + 1) % npoints
            node = self._point_owners[pos]
            count[node] += 1
            out.append(node)
        return np.array(out, dtype=np.int32)

    def node_for(self, key: str | bytes | int) -> str:
        """Return the name of the node owning a single key.

        Parameters
        ----------
        key : str, bytes or int
            One key.

        Returns
        -------
        str
            The owning node's name.
        """
        if not (isinstance(key, (str, bytes)) or _is_int_item(key)):
            what = "None" if key is None else type(key).__name__
            raise TypeError(f"key: {what} is not a valid key (expected str, bytes or int)")
        try:
            (h,) = self._key_hashes(key)
        except (TypeError, ValueError) as exc:
            raise _single_key_error(exc) from None
        return self._nodes[self._point_owners[self._point_index(h)]]

    def _walk(self, start: int, n: int) -> list[int]:
        """Contract section 5, for the point at index ``start``."""
        owners = self._point_owners
        count = len(owners)
        seen: set[int] = set()
        if self._zones is None:
            result: list[int] = []
            for step in range(count):
                node = owners[(start + step) % count]
                if node in seen:
                    continue
                seen.add(node)
                result.append(node)
                if len(result) == n:
                    break
            return result

        zone_of = self._zone_of
        all_zones = self._all_zones  # zones of the nodes that own points
        used_zones: set[Any] = set()
        picked: list[int] = []
        deferred: list[int] = []
        for step in range(count):
            node = owners[(start + step) % count]
            if node in seen:
                continue
            seen.add(node)
            if zone_of[node] not in used_zones:
                picked.append(node)
                used_zones.add(zone_of[node])
            else:
                deferred.append(node)
            if len(picked) == n:
                break
            if used_zones == all_zones and len(picked) + len(deferred) >= n:
                break
        return (picked + deferred)[:n]

    def replicas(
        self, keys: Any, n: int, *, threads: int | None = None, strategy: str | None = None
    ) -> np.ndarray:
        """Return ``n`` distinct nodes for every key (contract section 5).

        Parameters
        ----------
        keys : batch of keys
            See :func:`canonical_keys`.
        n : int
            Copies per key, ``1 <= n <=`` number of nodes owning a point.
        threads : int, optional
            Accepted for API compatibility and ignored.

        Returns
        -------
        numpy.ndarray
            int32 array of shape ``(len(keys), n)``; column 0 equals :meth:`assign`.
        """
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"n: must be an int, got {type(n).__name__}")
        n = int(n)
        if strategy is None:
            strategy = "ring" if self._partner is None else "pairs"
        if strategy == "pairs":
            if self._partner is None:
                raise ValueError("strategy: 'pairs' needs a ring built with pairs=")
            if not 1 <= n <= 2:
                raise ValueError(f"n: with pairs, n must be 1 or 2, got {n}")
            rows = []
            for h in self._key_hashes(keys):
                primary = self._point_owners[self._point_index(h)]
                partner = self._index[self._partner[self._nodes[primary]]]
                rows.append([primary, partner][:n])
            return np.array(rows, dtype=np.int32).reshape(len(rows), n)
        if strategy != "ring":
            raise ValueError(f"strategy: expected 'ring', 'pairs' or None, got {strategy!r}")
        if not 1 <= n <= self._owning_nodes:
            raise ValueError(
                f"n: must be between 1 and {self._owning_nodes} "
                f"(the number of nodes owning points), got {n}"
            )
        rows = [self._walk(self._point_index(h), n) for h in self._key_hashes(keys)]
        return np.array(rows, dtype=np.int32).reshape(len(rows), n)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the ring used for lookup.

        Returns
        -------
        values : numpy.ndarray
            uint64 point values in ring order (sorted; equal values in contract order).
        owners : numpy.ndarray
            int32 index into :attr:`nodes` of each point's owner.
        """
        return (
            np.array(self._point_values, dtype=np.uint64),
            np.array(self._point_owners, dtype=np.int32),
        )

    # -- membership changes ------------------------------------------------

    def _compat_str(self) -> str:
        assert self._compat is not None  # ketama rings only
        return self._compat

    def _vnodes_int(self) -> int:
        assert self._vnodes is not None  # ring-xxh64@1 only
        return self._vnodes

    def add(self, node: str, weight: float | int | None = None, zone: Any = None) -> Ring:
        """Return a new ring with ``node`` added (this ring is unchanged).

        Parameters
        ----------
        node : str
            The new node's name; must not already be a node.
        weight : float or int, optional
            Its weight: default 1.0, or 1 for ketama rings (which need an int >= 1).
        zone : hashable, optional
            Its zone; required when the ring has zones, refused otherwise.

        Returns
        -------
        Ring
            The new ring; the new node comes last in :attr:`nodes`.
        """
        name = _check_name(node, "node")
        if name in self._index:
            raise ValueError(f"node: {name!r} is already a node")
        if self._partner is not None:
            raise ValueError("node: the ring has pairs; nodes join two at a time")
        if self._algorithm == _KETAMA_ALGORITHM:
            if zone is not None:
                raise ValueError("zone: ketama rings have no zones")
            weights = dict(self._weights)
            weights[name] = _check_int_weight(name, 1 if weight is None else weight, "weight")
            return Ring.ketama(
                list(self._nodes) + [name], weights=weights, compat=self._compat_str()
            )
        weights = dict(self._weights)
        weights[name] = _check_float_weight(name, 1.0 if weight is None else weight, "weight")
        zones = None
        if self._zones is not None:
            if zone is None:
                raise ValueError(f"zone: the ring has zones, so node {name!r} needs one")
            zones = dict(self._zones)
            zones[name] = zone
        elif zone is not None:
            raise ValueError("zone: the ring has no zones")
        return Ring(
            list(self._nodes) + [name], weights=weights, zones=zones, vnodes=self._vnodes_int()
        )

    def remove(self, node: str) -> Ring:
        """Return a new ring without ``node`` (this ring is unchanged).

        Parameters
        ----------
        node : str
            An existing node's name.

        Returns
        -------
        Ring
            The new ring; the other nodes keep their relative order.
        """
        if not isinstance(node, str) or node not in self._index:
            raise ValueError(f"node: {node!r} is not a node")
        if len(self._nodes) == 1:
            raise ValueError(f"node: cannot remove {node!r}, the last node")
        if self._partner is not None:
            raise ValueError(f"node: the ring has pairs; {node!r} cannot leave its partner alone")
        names = [name for name in self._nodes if name != node]
        weights = {name: self._weights[name] for name in names}
        if self._algorithm == _KETAMA_ALGORITHM:
            return Ring.ketama(names, weights=weights, compat=self._compat_str())
        zones = None if self._zones is None else {name: self._zones[name] for name in names}
        return Ring(names, weights=weights, zones=zones, vnodes=self._vnodes_int())
