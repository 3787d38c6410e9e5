"""The key rule: any accepted container -> contiguous buffers, once, at the edge.

See ``docs/placement-contract.md`` section 1. The result is a :class:`KeyBatch` of one or
more :class:`KeyPart` (one per Arrow chunk), each in one of four layouts the kernels read:

``u64``     canonical integer keys (two's complement, uint64)
``dec``     integer keys to be hashed as decimal text (ketama), with their signedness
``var``     byte strings: ``data`` (uint8) and ``offsets`` (int64, n + 1 entries)
``fixed``   NumPy ``S`` items read in place: ``data`` (uint8, n * width), trailing NULs dropped

Lists of str/bytes are encoded by the core in one C pass (``encode_sequence``), NumPy ``U``
arrays are transcoded in C, ``S`` arrays and pyarrow buffers are used without copying.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import core

__all__ = ["KeyBatch", "KeyPart", "normalize"]

_U64 = np.dtype(np.uint64)


@dataclass(frozen=True)
class KeyPart:
    """One contiguous run of keys in a layout the kernels read (see module docstring)."""

    kind: str
    n: int
    values: np.ndarray | None = None
    signed: bool = False
    data: np.ndarray | None = None
    offsets: np.ndarray | None = None
    width: int = 0

    def slice(self, a: int, b: int) -> KeyPart:
        """Keys ``a`` to ``b`` of this part, without copying."""
        if self.kind in ("u64", "dec"):
            assert self.values is not None
            return KeyPart(self.kind, b - a, values=self.values[a:b], signed=self.signed)
        if self.kind == "var":
            assert self.offsets is not None
            return KeyPart("var", b - a, data=self.data, offsets=self.offsets[a : b + 1])
        assert self.data is not None
        w = self.width
        return KeyPart("fixed", b - a, data=self.data[a * w : b * w], width=w)


@dataclass(frozen=True)
class KeyBatch:
    """A whole batch: its parts, in order, and the total number of keys."""

    parts: tuple[KeyPart, ...]
    n: int


def _batch(*parts: KeyPart) -> KeyBatch:
    return KeyBatch(tuple(p for p in parts if p.n), sum(p.n for p in parts))


def _var(data: np.ndarray, offsets: np.ndarray) -> KeyPart:
    return KeyPart("var", len(offsets) - 1, data=data, offsets=offsets)


def _ints(values: np.ndarray, signed: bool, ketama: bool) -> KeyPart:
    return KeyPart("dec" if ketama else "u64", len(values), values=values, signed=signed)


def _from_sequence(seq: Any, ketama: bool) -> KeyBatch:
    res = core.encode_sequence(seq)
    if res[0] == "bytes":
        return _batch(_var(res[1], res[2]))
    _, values, has_negative, has_big = res
    if ketama and has_negative and has_big:
        # str(v) of values that fit neither int64 nor uint64 together: encode the text.
        texts = [str(int(v)) for v in seq]
        return _from_sequence(texts, ketama)
    return _batch(_ints(values, bool(has_negative), ketama))


def _from_numpy(arr: np.ndarray, ketama: bool) -> KeyBatch:
    kind = arr.dtype.kind
    if kind not in "iuSUOT":
        raise TypeError(
            f"keys: unsupported array dtype {arr.dtype}; keys must be str, bytes or integers "
            "(integer, S, U, object or StringDType arrays)"
        )
    if arr.ndim == 0:
        return _from_sequence([arr[()]], ketama)
    if arr.ndim != 1:
        raise ValueError(f"keys: expected a 1-D array, got shape {arr.shape}")
    if kind in "iu":
        signed = kind == "i"
        values = np.ascontiguousarray(arr, dtype=np.int64 if signed else np.uint64)
        return _batch(_ints(values.view(np.uint64), signed, ketama))
    if kind == "S":
        width = arr.dtype.itemsize
        if width == 0 or len(arr) == 0:
            return _from_sequence(arr.tolist(), ketama)
        data = np.ascontiguousarray(arr).view(np.uint8).reshape(-1)
        return _batch(KeyPart("fixed", len(arr), data=data, width=width))
    if kind == "U":
        native = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
        width = native.dtype.itemsize // 4
        if width == 0 or len(arr) == 0:
            return _from_sequence(arr.tolist(), ketama)
        cps = native.view(np.uint32).reshape(len(arr), width)
        data, offsets = core.ucs4_to_utf8(cps)
        return _batch(_var(data, offsets))
    if kind == "O":
        return _from_sequence(arr.tolist(), ketama)
    # NumPy 2 StringDType: no public buffer API, read the items.
    return _from_sequence(arr.astype(object).tolist(), ketama)


def _first_null(arr: Any) -> int:
    mask = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return int(np.argmax(mask))


def _from_arrow_array(arr: Any, base: int, ketama: bool) -> KeyPart:
    import pyarrow as pa

    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if arr.null_count:
        raise ValueError(f"keys[{base + _first_null(arr)}]: null key in pyarrow array")
    if pa.types.is_string_view(t) or pa.types.is_binary_view(t):
        arr = arr.cast(pa.large_binary())
        t = arr.type
    if pa.types.is_integer(t):
        # Read the values buffer directly: zero-copy for 64-bit integers, and unlike
        # ``to_numpy`` it does not import pandas.
        signed = pa.types.is_signed_integer(t)
        idt = np.dtype(f"<{'i' if signed else 'u'}{t.bit_width // 8}")
        vbuf = arr.buffers()[1]
        raw = (np.frombuffer(vbuf, dtype=idt, count=len(vbuf) // idt.itemsize)
               if vbuf is not None else np.zeros(0, idt))
        if len(raw) < arr.offset + len(arr):
            raise ValueError("keys: pyarrow values buffer is shorter than the array")
        values = np.ascontiguousarray(raw[arr.offset : arr.offset + len(arr)],
                                      dtype=np.int64 if signed else np.uint64)
        return _ints(values.view(np.uint64), signed, ketama)
    odt: np.dtype[Any]
    if pa.types.is_string(t) or pa.types.is_binary(t):
        odt = np.dtype("<i4")
    elif pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        odt = np.dtype("<i8")
    else:
        raise TypeError(
            f"keys: unsupported pyarrow type {t}; use string, large_string, binary, "
            "large_binary or an integer type"
        )
    n = len(arr)
    _, obuf, dbuf = arr.buffers()[:3]
    raw = np.frombuffer(obuf, dtype=odt) if obuf is not None else np.zeros(1, odt)
    if len(raw) < arr.offset + n + 1:
        raise ValueError("keys: pyarrow offsets buffer is shorter than the array")
    offsets = np.asarray(raw[arr.offset : arr.offset + n + 1], dtype=np.int64)
    data = np.frombuffer(dbuf, dtype=np.uint8) if dbuf is not None else np.empty(0, np.uint8)
    core.check_offsets(offsets, len(data))
    return _var(data, offsets)


def _from_arrow(obj: Any, ketama: bool) -> KeyBatch:
    import pyarrow as pa

    if isinstance(obj, pa.ChunkedArray):
        parts, base = [], 0
        for chunk in obj.chunks:
            parts.append(_from_arrow_array(chunk, base, ketama))
            base += len(chunk)
        return _batch(*parts)
    if isinstance(obj, pa.Array):
        return _batch(_from_arrow_array(obj, 0, ketama))
    raise TypeError(f"keys: unsupported pyarrow object {type(obj).__name__}")


def _from_pandas(obj: Any, ketama: bool) -> KeyBatch:
    dtype = getattr(obj, "dtype", None)
    if isinstance(dtype, np.dtype):
        return _from_numpy(obj.to_numpy(), ketama)
    # An extension dtype (string, string[pyarrow], Int64, category, ArrowDtype) is a typed
    # column: a missing value there is a bad *value*, ValueError, as for an Arrow or Polars
    # null (object series went through NumPy above: None/NaN among Python objects is a bad
    # *type*, TypeError, as in a list).
    missing = np.asarray(obj.isna(), dtype=bool)
    if missing.any():
        i = int(np.argmax(missing))
        if i:  # a bad item before it (a float category, say) is the first offending one
            _from_pandas(obj.iloc[:i] if hasattr(obj, "iloc") else obj[:i], ketama)
        raise ValueError(
            f"keys[{i}]: missing key ({obj.array[i]!r}) in pandas {type(obj).__name__} "
            f"of dtype {dtype}"
        )
    values = getattr(obj, "array", obj)
    if hasattr(values, "__arrow_array__"):
        try:
            import pyarrow as pa
        except ImportError:
            pass
        else:
            return _from_arrow(pa.array(values), ketama)
    return _from_sequence(obj.to_numpy(dtype=object).tolist(), ketama)


def _from_polars(obj: Any, ketama: bool) -> KeyBatch:
    """A Polars Series through its buffers: integers via NumPy, everything else via Arrow.

    Polars is never imported here: the object's own methods do the work. Integer series
    become one NumPy array (zero-copy for one chunk); string/binary series go chunk by
    chunk through ``to_arrow()`` (one C-level copy from Polars' string views, no Python
    objects); Categorical and Enum series are hashed by their values, like a pandas
    Categorical or an Arrow dictionary array.
    """
    if not hasattr(obj, "dtype") or not hasattr(obj, "null_count"):
        raise TypeError(
            f"keys: expected a Polars Series, got {type(obj).__name__} "
            "(pass one column, e.g. df['key'])"
        )
    if obj.null_count():
        raise ValueError(f"keys[{int(obj.is_null().arg_max())}]: null key in Polars Series")
    dtype = obj.dtype
    name = str(dtype)
    if dtype.is_integer():
        if name in ("Int128", "UInt128"):
            raise TypeError(
                f"keys: unsupported Polars dtype {name}; cast to Int64 or UInt64 first"
            )
        return _from_numpy(obj.to_numpy(), ketama)
    base = name.split("(")[0]
    if base not in ("String", "Utf8", "Binary", "Categorical", "Enum"):
        raise TypeError(
            f"keys: unsupported Polars dtype {name}; keys must be String, Binary, "
            "Categorical/Enum or an integer type"
        )
    try:
        import pyarrow as pa
    except ImportError:  # still correct without pyarrow, one Python object per key
        return _from_sequence(obj.to_list(), ketama)
    chunks = obj.get_chunks() if obj.n_chunks() > 1 else [obj]
    arrays = [c.to_arrow() for c in chunks]
    return _from_arrow(pa.chunked_array(arrays, type=arrays[0].type), ketama)


def normalize(keys: Any, *, ketama: bool = False) -> KeyBatch:
    """Turn any accepted key container into a :class:`KeyBatch` (the key rule).

    Parameters
    ----------
    keys
        A single str/bytes/int, a sequence of them, a NumPy array, a pandas Series or
        Index, a pyarrow Array/ChunkedArray, or a Polars Series.
    ketama
        Integer keys become ``dec`` parts (hashed as their decimal text) instead of ``u64``.

    Raises
    ------
    TypeError, ValueError
        Naming the first offending index, e.g. ``keys[3]: expected str, bytes or int, got
        float``. Missing values: ``None``/NaN among Python objects (a list, an object
        array or object series) are the wrong type, ``TypeError``; a missing value in a
        typed column (a pyarrow or Polars null, ``pd.NA``/NaN in a pandas extension dtype
        such as ``string``, ``Int64`` or ``category``) is a wrong value, ``ValueError``.
    """
    if isinstance(keys, (str, bytes, int, np.generic)):
        return _from_sequence([keys], ketama)
    if isinstance(keys, np.ndarray):
        return _from_numpy(keys, ketama)
    if isinstance(keys, (list, tuple, range)):
        return _from_sequence(keys, ketama)
    module = type(keys).__module__ or ""
    if module.startswith("pyarrow"):
        return _from_arrow(keys, ketama)
    if module.startswith("pandas"):
        return _from_pandas(keys, ketama)
    if module.startswith("polars"):
        return _from_polars(keys, ketama)
    if isinstance(keys, (Mapping, Set)):
        raise TypeError(
            f"keys: expected a key, a sequence of keys or an array, got {type(keys).__name__}"
        )
    if isinstance(keys, (bytearray, memoryview)) or not hasattr(keys, "__iter__"):
        # Not a container of keys (a bytearray would iterate as ints): one invalid key.
        raise TypeError(f"keys[0]: expected str, bytes or int, got {type(keys).__name__}")
    if hasattr(keys, "__array__"):
        return _from_numpy(np.asarray(keys), ketama)
    return _from_sequence(list(keys), ketama)
