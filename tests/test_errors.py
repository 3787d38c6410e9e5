"""Invalid inputs: every rejected case of the contract, in both twins ("both raise"), with
the exception type and the first offending index; argument errors; empty batches; inputs
never modified; read-only inputs accepted."""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

import ringguard
from conftest import scaled
from ringguard import reference as ref

NODES = ["a", "b", "c", "d"]


def _rings() -> dict[str, Any]:
    return {
        "ring": ringguard.Ring(NODES, vnodes=20),
        "ketama": ringguard.Ring.ketama(NODES),
        "uhashring": ringguard.Ring.ketama(NODES, compat="uhashring"),
        "reference": ref.Ring(NODES, vnodes=20),
        "reference-ketama": ref.Ring.ketama(NODES),
    }


RINGS = _rings()
RING_IDS = list(RINGS)


def _pa() -> Any:
    return pytest.importorskip("pyarrow")


def _pd() -> Any:
    return pytest.importorskip("pandas")


# ---- the table of contract section 1 -----------------------------------------------------

# (id, make keys, exception, first offending index, extra pattern or "")
KEY_ERRORS: list[tuple[str, Any, type[Exception], int, str]] = [
    ("float", lambda: [1.5], TypeError, 0, ""),
    ("float-in-str", lambda: ["a", "b", "c", 2.5], TypeError, 3, ""),
    ("float-in-int", lambda: [1, 2.0], TypeError, 1, ""),
    ("numpy-float-scalar", lambda: ["a", np.float64(1.0)], TypeError, 1, ""),
    ("None", lambda: ["a", None], TypeError, 1, ""),
    ("None-first", lambda: [None, "a"], TypeError, 0, ""),
    ("None-in-int", lambda: [1, 2, None], TypeError, 2, ""),
    ("NaN", lambda: ["a", "b", float("nan")], TypeError, 2, ""),
    ("NaN-in-int", lambda: [1, float("nan")], TypeError, 1, ""),
    ("bool", lambda: [True], TypeError, 0, ""),
    ("bool-in-int", lambda: [1, 2, 3, False], TypeError, 3, ""),
    ("bool-in-str", lambda: ["a", True], TypeError, 1, ""),
    ("numpy-bool", lambda: [1, np.bool_(True)], TypeError, 1, ""),
    ("mixed-str-then-int", lambda: ["a", b"b", 3], TypeError, 2, "mixed"),
    ("mixed-int-then-str", lambda: [3, 4, "a"], TypeError, 2, "mixed"),
    ("mixed-int-then-bytes", lambda: [3, b"a"], TypeError, 1, "mixed"),
    ("mixed-numpy-int-in-str", lambda: ["a", np.int64(3)], TypeError, 1, "mixed"),
    ("mixed-huge-int-in-str", lambda: ["a", 2**70], TypeError, 1, "mixed"),
    ("int-too-big", lambda: [1, 2**64], ValueError, 1, ""),
    ("int-too-small", lambda: [-(2**63) - 1], ValueError, 0, ""),
    ("int-too-big-first", lambda: [2**64, "a"], ValueError, 0, ""),
    ("int-much-too-big", lambda: [0, 1, 10**40], ValueError, 2, ""),
    ("lone-surrogate", lambda: ["ok", "\ud800"], ValueError, 1, ""),
    ("lone-low-surrogate", lambda: [b"x", "ok", "a\udfffb"], ValueError, 2, ""),
    ("U-surrogate", lambda: np.array(["ok", "x", "\ud800"]), ValueError, 2, ""),
    ("U-surrogate-strided", lambda: np.array(["a", "b", "c", "\udc00"])[1::2], ValueError, 1,
     ""),
    ("dict-item", lambda: ["a", {}], TypeError, 1, ""),
    ("set-item", lambda: ["a", {"x"}], TypeError, 1, ""),
    ("dict-item-in-int", lambda: [1, {1: 2}], TypeError, 1, ""),
    ("object", lambda: ["a", object()], TypeError, 1, ""),
    ("bytearray-item", lambda: ["a", bytearray(b"x")], TypeError, 1, ""),
    ("memoryview-item", lambda: [b"a", memoryview(b"x")], TypeError, 1, ""),
    ("list-item", lambda: ["a", ["b"]], TypeError, 1, ""),
    ("complex-item", lambda: [1, 1 + 2j], TypeError, 1, ""),
    ("decimal-item", lambda: [1, Decimal(2)], TypeError, 1, ""),
    ("fraction-item", lambda: [Fraction(1, 2)], TypeError, 0, ""),
    ("object-array-None", lambda: np.array(["a", None], dtype=object), TypeError, 1, ""),
    ("object-array-float", lambda: np.array([1, 2, 2.5], dtype=object), TypeError, 2, ""),
    ("object-array-mixed", lambda: np.array([3, b"a"], dtype=object), TypeError, 1, "mixed"),
    ("first-error-wins-value", lambda: ["a", "\udfff", None], ValueError, 1, ""),
    ("first-error-wins-type", lambda: [1, None, 2**70], TypeError, 1, ""),
    ("first-error-wins-mixed", lambda: ["a", None, "\ud800", 5], TypeError, 1, ""),
    ("scalar-bool", lambda: True, TypeError, 0, ""),
    ("scalar-numpy-float", lambda: np.float64(1.5), TypeError, 0, ""),
    ("scalar-int-too-big", lambda: 2**64, ValueError, 0, ""),
    ("scalar-surrogate", lambda: "\ud800", ValueError, 0, ""),
    ("arrow-null", lambda: _pa().array(["a", None]), ValueError, 1, ""),
    ("arrow-null-int", lambda: _pa().array([1, 2, None]), ValueError, 2, ""),
    ("arrow-null-binary", lambda: _pa().array([None], type=_pa().binary()), ValueError, 0, ""),
    ("arrow-null-large_string",
     lambda: _pa().array(["a", "b", None], type=_pa().large_string()), ValueError, 2, ""),
    ("arrow-null-sliced", lambda: _pa().array(["x", None, "y", None]).slice(2), ValueError,
     1, ""),
    ("arrow-null-chunked", lambda: _pa().chunked_array([["a"], ["b", None]]), ValueError, 2,
     ""),
    ("arrow-null-chunked-int", lambda: _pa().chunked_array([[1, 2], [], [3, None]]),
     ValueError, 3, ""),
    ("pandas-object-None", lambda: _pd().Series(["a", None], dtype=object), TypeError, 1, ""),
    ("pandas-object-NaN", lambda: _pd().Series(["a", "b", float("nan")], dtype=object),
     TypeError, 2, ""),
    ("pandas-object-mixed", lambda: _pd().Series(["a", 1], dtype=object), TypeError, 1,
     "mixed"),
]


@pytest.mark.parametrize("which", RING_IDS)
@pytest.mark.parametrize(("case", "make", "exc", "index", "pattern"), KEY_ERRORS,
                         ids=[c[0] for c in KEY_ERRORS])
def test_key_errors_name_first_offending_index(case: str, make: Any, exc: type[Exception],
                                               index: int, pattern: str, which: str) -> None:
    ring = RINGS[which]
    keys = make()
    with pytest.raises(exc, match=rf"^keys\[{index}\]: ") as info:
        ring.assign(keys)
    assert type(info.value) is exc  # not a subclass such as UnicodeEncodeError
    if pattern:
        assert re.search(pattern, str(info.value)), str(info.value)
    with pytest.raises(exc, match=rf"^keys\[{index}\]: "):
        ring.replicas(keys, 2)


BAD_DTYPES = [
    np.array([1.0, 2.0]),
    np.array([1.0], dtype=np.float32),
    np.array([1.0], dtype=np.float16),
    np.array([True, False]),
    np.array([1 + 2j]),
    np.array(["2024-01-01"], dtype="datetime64[D]"),
    np.array([1], dtype="timedelta64[s]"),
    np.array([1.0, 2.0, 3.0, 4.0])[::2],
]


@pytest.mark.parametrize("which", RING_IDS)
@pytest.mark.parametrize("arr", BAD_DTYPES, ids=[str(a.dtype) for a in BAD_DTYPES])
def test_unsupported_numpy_dtypes(arr: np.ndarray, which: str) -> None:
    ring = RINGS[which]
    with pytest.raises(TypeError, match=re.escape(str(arr.dtype))):
        ring.assign(arr)


@pytest.mark.parametrize("which", RING_IDS)
def test_unsupported_pyarrow_and_pandas_types(which: str) -> None:
    pa, pd = _pa(), _pd()
    ring = RINGS[which]
    for arr in (pa.array([1.5]), pa.array([True]), pa.array([1], type=pa.decimal128(5, 0))):
        with pytest.raises(TypeError, match=re.escape(str(arr.type))):
            ring.assign(arr)
    for series in (pd.Series([1.0, 2.0]), pd.Series([True, False])):
        with pytest.raises(TypeError):
            ring.assign(series)


@pytest.mark.parametrize("which", RING_IDS)
def test_two_dimensional_arrays(which: str) -> None:
    ring = RINGS[which]
    for arr in (np.zeros((2, 2), dtype=np.int64), np.array([["a", "b"]]), np.zeros((0, 3), int)):
        with pytest.raises(ValueError, match="1-D"):
            ring.assign(arr)


@pytest.mark.parametrize("which", RING_IDS)
def test_float_arrays_are_type_errors_whatever_their_shape(which: str) -> None:
    """Contract: float/bool/complex/datetime NumPy arrays -> TypeError naming the dtype
    (the dtype is wrong before the shape is)."""
    ring = RINGS[which]
    for arr in (np.zeros((2, 2)), np.zeros((3, 1), dtype=bool), np.zeros((1, 1), complex)):
        with pytest.raises(TypeError, match=re.escape(str(arr.dtype))):
            ring.assign(arr)


@pytest.mark.parametrize("which", RING_IDS)
def test_pandas_missing_values_are_value_errors(which: str) -> None:
    """A missing value in a pandas extension dtype (pd.NA, NaN) is a null in a typed column
    -> ValueError naming its index, as for Arrow and Polars nulls, whatever the storage
    behind the Series (the reference's answer). In an object Series it is a bad object
    (TypeError, see KEY_ERRORS)."""
    pd = _pd()
    _pa()
    ring = RINGS[which]
    for series in (pd.Series(["a", pd.NA], dtype="string[python]"),
                   pd.Series(["a", None], dtype="string[pyarrow]"),
                   pd.Series(["a", None], dtype="str"),
                   pd.Series([1, None], dtype="Int64")):
        with pytest.raises(ValueError, match=r"^keys\[1\]: ") as info:
            ring.assign(series)
        assert type(info.value) is ValueError
        with pytest.raises(ValueError, match=r"^keys\[1\]: "):
            ref.Ring(["a", "b"]).assign(series)


@pytest.mark.parametrize("which", RING_IDS)
def test_single_non_keys(which: str) -> None:
    """A lone non-key is rejected as a type error (as a batch of one, or as a batch)."""
    ring = RINGS[which]
    for keys in (1.5, None, float("nan"), object(), 1 + 2j):
        with pytest.raises(TypeError, match=r"^keys(\[0\])?: "):
            ring.assign(keys)


@pytest.mark.parametrize("which", RING_IDS)
def test_containers_that_are_not_batches(which: str) -> None:
    """dict, set, bytearray and memoryview are neither keys nor batches of keys."""
    ring = RINGS[which]
    not_batches: list[Any] = [{"a": 1}, {"a"}, frozenset(["a"]), {}]
    for keys in not_batches:
        with pytest.raises(TypeError, match=r"^keys(\[0\])?: "):
            ring.assign(keys)
    byte_buffers: list[Any] = [bytearray(b"ab"), memoryview(b"ab")]
    for keys in byte_buffers:  # not a batch of the ints 97, 98
        with pytest.raises(TypeError, match=r"^keys(\[0\])?: "):
            ring.assign(keys)


@pytest.mark.parametrize("which", RING_IDS)
def test_node_for_rejects_non_keys(which: str) -> None:
    ring = RINGS[which]
    for key, exc in ((["a"], TypeError), (1.5, TypeError), (None, TypeError),
                     (True, TypeError), (np.bool_(True), TypeError), ({"a"}, TypeError),
                     (bytearray(b"a"), TypeError), (2**64, ValueError),
                     (-(2**63) - 1, ValueError), ("\ud800", ValueError)):
        with pytest.raises(exc):
            ring.node_for(key)


# ---- construction ------------------------------------------------------------------------

CONSTRUCTION_ERRORS: list[tuple[str, Any, type[Exception], str]] = [
    ("empty", lambda m: m.Ring([]), ValueError, "nodes"),
    ("empty-mapping", lambda m: m.Ring({}), ValueError, "nodes"),
    ("duplicate", lambda m: m.Ring(["a", "b", "a"]), ValueError, "nodes"),
    ("name-int", lambda m: m.Ring(["a", 1]), TypeError, "nodes"),
    ("name-bytes", lambda m: m.Ring(["a", b"b"]), TypeError, "nodes"),
    ("name-None", lambda m: m.Ring([None]), TypeError, "nodes"),
    ("name-empty", lambda m: m.Ring(["a", ""]), ValueError, "nodes"),
    ("nodes-str", lambda m: m.Ring("abc"), TypeError, "nodes"),
    ("nodes-None", lambda m: m.Ring(None), TypeError, "nodes"),
    ("weight-zero", lambda m: m.Ring({"a": 0.0}), ValueError, "weight"),
    ("weight-negative", lambda m: m.Ring({"a": 1.0, "b": -1}), ValueError, "weight"),
    ("weight-nan", lambda m: m.Ring(["a"], weights={"a": float("nan")}), ValueError, "weight"),
    ("weight-inf", lambda m: m.Ring(["a"], weights={"a": float("inf")}), ValueError, "weight"),
    ("weight-neg-inf", lambda m: m.Ring({"a": -float("inf")}), ValueError, "weight"),
    ("weight-bool", lambda m: m.Ring(["a"], weights={"a": True}), TypeError, "weight"),
    ("weight-numpy-bool", lambda m: m.Ring({"a": np.bool_(True)}), TypeError, "weight"),
    ("weight-str", lambda m: m.Ring({"a": "2"}), TypeError, "weight"),
    ("weight-None", lambda m: m.Ring({"a": None}), TypeError, "weight"),
    ("weight-unknown-node", lambda m: m.Ring(["a"], weights={"z": 1.0}), ValueError, "weights"),
    ("weights-list", lambda m: m.Ring(["a"], weights=[1.0]), TypeError, "weights"),
    ("weights-twice", lambda m: m.Ring({"a": 1.0}, weights={"a": 1.0}), ValueError, "weights"),
    ("vnodes-zero", lambda m: m.Ring(["a"], vnodes=0), ValueError, "vnodes"),
    ("vnodes-negative", lambda m: m.Ring(["a"], vnodes=-5), ValueError, "vnodes"),
    ("vnodes-float", lambda m: m.Ring(["a"], vnodes=2.0), TypeError, "vnodes"),
    ("vnodes-bool", lambda m: m.Ring(["a"], vnodes=True), TypeError, "vnodes"),
    ("zones-missing", lambda m: m.Ring(["a", "b"], zones={"a": "z"}), ValueError, "zones"),
    ("zones-unknown", lambda m: m.Ring(["a"], zones={"a": "z", "q": "z"}), ValueError,
     "zones"),
    ("zones-list", lambda m: m.Ring(["a"], zones=["z"]), TypeError, "zones"),
    ("ketama-empty", lambda m: m.Ring.ketama([]), ValueError, "nodes"),
    ("ketama-duplicate", lambda m: m.Ring.ketama(["a", "a"]), ValueError, "nodes"),
    ("ketama-float-weight", lambda m: m.Ring.ketama({"a": 1.5}), TypeError, "weight"),
    ("ketama-integral-float", lambda m: m.Ring.ketama({"a": 2.0}), TypeError, "weight"),
    ("ketama-float-weights=", lambda m: m.Ring.ketama(["a"], weights={"a": 3.0}), TypeError,
     "weight"),
    ("ketama-bool-weight", lambda m: m.Ring.ketama({"a": True}), TypeError, "weight"),
    ("ketama-zero-weight", lambda m: m.Ring.ketama({"a": 0}), ValueError, "weight"),
    ("ketama-negative-weight", lambda m: m.Ring.ketama(["a"], weights={"a": -3}), ValueError,
     "weight"),
    ("ketama-compat", lambda m: m.Ring.ketama(["a"], compat="memcached"), ValueError, "compat"),
]


@pytest.mark.parametrize("module", [ringguard, ref], ids=["ringguard", "reference"])
@pytest.mark.parametrize(("case", "make", "exc", "word"), CONSTRUCTION_ERRORS,
                         ids=[c[0] for c in CONSTRUCTION_ERRORS])
def test_construction_errors(case: str, make: Any, exc: type[Exception], word: str,
                             module: Any) -> None:
    with pytest.raises(exc, match=word):
        make(module)


EXTREME_WEIGHTS: list[tuple[str, Any]] = [
    ("ring-1e308", lambda m: m.Ring({"a": 1e308, "b": 1.0})),
    ("ring-max-float", lambda m: m.Ring({"a": 1.7e308, "b": 1.7e308})),
    ("ring-int-10**400", lambda m: m.Ring({"a": 10**400, "b": 1})),
    ("ketama-10**40", lambda m: m.Ring.ketama({"a": 10**40, "b": 1})),
    ("ketama-10**400", lambda m: m.Ring.ketama({"a": 10**400, "b": 1})),
]


@pytest.mark.parametrize("module", [ringguard, ref], ids=["ringguard", "reference"])
@pytest.mark.parametrize(("case", "make"), EXTREME_WEIGHTS, ids=[c[0] for c in EXTREME_WEIGHTS])
def test_extreme_finite_weights_do_not_overflow(case: str, make: Any, module: Any) -> None:
    """Finite weights are valid however large: a ring is built, or a ValueError explains why
    not -- never an OverflowError, nor a RuntimeWarning from float32 maths."""
    try:
        ring = make(module)
    except ValueError:
        return
    assert len(ring.assign(["k1", "k2"])) == 2


@pytest.mark.parametrize("module", [ringguard, ref], ids=["ringguard", "reference"])
def test_add_remove_errors(module: Any) -> None:
    ring = module.Ring(["a", "b"], vnodes=5)
    for call, exc in ((lambda: ring.add("a"), ValueError),
                      (lambda: ring.add(5), TypeError),
                      (lambda: ring.add(""), ValueError),
                      (lambda: ring.add("c", 0.0), ValueError),
                      (lambda: ring.add("c", float("nan")), ValueError),
                      (lambda: ring.add("c", True), TypeError),
                      (lambda: ring.add("c", zone="z"), ValueError),
                      (lambda: ring.remove("zz"), ValueError),
                      (lambda: module.Ring(["only"]).remove("only"), ValueError),
                      (lambda: module.Ring(["a"], zones={"a": "z"}).add("b"), ValueError),
                      (lambda: module.Ring.ketama(["a"]).add("b", 1.0), TypeError),
                      (lambda: module.Ring.ketama(["a"]).add("b", 0), ValueError),
                      (lambda: module.Ring.ketama(["a"]).add("b", zone="z"), ValueError)):
        with pytest.raises(exc):
            call()
    assert ring.nodes == ("a", "b")


# ---- call arguments ----------------------------------------------------------------------


@pytest.mark.parametrize("which", RING_IDS)
def test_replicas_n_errors(which: str) -> None:
    ring = RINGS[which]
    for n, exc in ((0, ValueError), (-1, ValueError), (5, ValueError), (100, ValueError),
                   (1.0, TypeError), (True, TypeError), ("2", TypeError), (None, TypeError)):
        with pytest.raises(exc, match="^n: "):
            ring.replicas(["k"], n)
        with pytest.raises(exc, match="^n: "):
            ring.replicas([], n)
    assert ring.replicas(["k"], np.int64(4)).shape == (1, 4)


@pytest.mark.parametrize("which", ["ring", "ketama", "uhashring"])
def test_threads_errors(which: str) -> None:
    ring = RINGS[which]
    bad: list[tuple[Any, type[Exception]]] = [
        (0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError),
        ("2", TypeError), ([2], TypeError)]
    for threads, exc in bad:
        with pytest.raises(exc, match="^threads: "):
            ring.assign(["k"], threads=threads)
        with pytest.raises(exc, match="^threads: "):
            ring.replicas(["k"], 2, threads=threads)
        with pytest.raises(exc, match="^threads: "):
            ringguard.load(ring, ["k"], threads=threads)
    for ok in (None, 1, np.int64(2), 64):
        assert ring.assign(["k", "l"], threads=ok).tolist() == ring.assign(["k", "l"]).tolist()


@pytest.mark.parametrize("which", ["ring", "ketama", "uhashring"])
def test_out_argument(which: str) -> None:
    ring = RINGS[which]
    keys = ["x", "y", "z"]
    readonly = np.zeros(3, np.int32)
    readonly.flags.writeable = False
    bad: list[tuple[Any, type[Exception]]] = [
        (np.empty(3, np.int64), ValueError),
        (np.empty(3, np.uint32), ValueError),
        (np.empty(4, np.int32), ValueError),
        (np.empty(2, np.int32), ValueError),
        (np.empty((3, 1), np.int32), ValueError),
        (np.empty(6, np.int32)[::2], ValueError),
        (readonly, ValueError),
        ([0, 0, 0], TypeError),
        (b"\x00" * 12, TypeError),
    ]
    for out, exc in bad:
        with pytest.raises(exc, match="^out: "):
            ring.assign(keys, out=out)
    assert readonly.tolist() == [0, 0, 0]
    out = np.full(3, -1, np.int32)
    assert ring.assign(keys, out=out) is out
    assert out.tolist() == ring.assign(keys).tolist()
    for out2 in (np.empty((3, 3), np.int32), np.empty((3, 2), np.int64),
                 np.empty((2, 2), np.int32), np.empty(6, np.int32)):
        with pytest.raises(ValueError, match="^out: "):
            ring.replicas(keys, 2, out=out2)
    rep = np.empty((3, 2), np.int32)
    assert ring.replicas(keys, 2, out=rep) is rep
    assert rep.tolist() == ring.replicas(keys, 2).tolist()
    empty = np.empty(0, np.int32)
    assert ring.assign([], out=empty) is empty


@pytest.mark.parametrize("which", RING_IDS)
def test_empty_batches(which: str) -> None:
    ring = RINGS[which]
    empties: list[Any] = [[], (), np.array([], dtype=np.uint64), np.array([], dtype="U1")]
    for keys in empties:
        got = ring.assign(keys)
        assert got.shape == (0,) and got.dtype == np.int32
        for n in (1, 3):
            reps = ring.replicas(keys, n)
            assert reps.shape == (0, n) and reps.dtype == np.int32


# ---- inputs are never modified; read-only inputs are accepted ----------------------------


def _inputs() -> dict[str, Any]:
    pa, pd = _pa(), _pd()
    n = scaled(40000, 2000)  # > 2 * 16384: threads=2 really splits on the compiled core
    strs = [f"key-{i}-é" for i in range(n)]
    return {
        "list-str": strs,
        "list-int": list(range(-n // 2, n - n // 2)),
        "int64": np.arange(-n // 2, n - n // 2, dtype=np.int64),
        "big-endian": np.arange(n, dtype=">u8"),
        "strided": np.arange(2 * n, dtype=np.int32)[::2],
        "U": np.array(strs),
        "S": np.array([s.encode() for s in strs]),
        "object": np.array(strs, dtype=object),
        "arrow": pa.array(strs),
        "arrow-chunked": pa.chunked_array([strs[:100], strs[100:]]),
        "pandas": pd.Series(strs, dtype=object),
        "pandas-str": pd.Series(strs),
    }


def _snapshot(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return (x.copy(), x.dtype, x.shape, x.strides, x.flags.writeable)
    if hasattr(x, "to_pylist"):
        return x.to_pylist()
    if hasattr(x, "tolist"):
        return (x.tolist(), str(x.dtype))
    return copy.deepcopy(x)


def _same(before: Any, after: Any) -> bool:
    if isinstance(before, tuple) and before and isinstance(before[0], np.ndarray):
        return bool(np.array_equal(before[0], after[0])) and before[1:] == after[1:]
    return bool(before == after)


@pytest.mark.parametrize("which", ["ring", "ketama", "uhashring"])
def test_inputs_are_never_modified(which: str) -> None:
    ring = RINGS[which]
    for name, keys in _inputs().items():
        before = _snapshot(keys)
        ring.assign(keys)
        ring.assign(keys, threads=2)
        ring.replicas(keys, 2, threads=2)
        ringguard.load(ring, keys)
        assert _same(before, _snapshot(keys)), name


@pytest.mark.parametrize("which", RING_IDS)
def test_readonly_arrays_are_accepted(which: str) -> None:
    ring = RINGS[which]
    arrays: list[np.ndarray] = [
              np.arange(-500, 500, dtype=np.int64), np.arange(1000, dtype=np.uint8),
              np.arange(1000, dtype=">i4"), np.arange(2000, dtype=np.uint64)[::2],
              np.array([f"k{i}" for i in range(1000)]),
              np.array([f"k{i}".encode() for i in range(1000)]),
              np.array([f"k{i}" for i in range(1000)], dtype=object)]
    if hasattr(np, "dtypes") and hasattr(np.dtypes, "StringDType"):
        arrays.append(np.array([f"k{i}" for i in range(1000)], dtype=np.dtypes.StringDType()))
    for arr in arrays:
        expected = ring.assign(arr.copy())
        arr.flags.writeable = False
        assert ring.assign(arr).tolist() == expected.tolist(), arr.dtype
        assert ring.replicas(arr, 2)[:, 0].tolist() == expected.tolist()
        assert not arr.flags.writeable
    frozen = np.frombuffer(np.arange(100, dtype=np.int64).tobytes(), dtype=np.int64)
    assert not frozen.flags.writeable
    assert ring.assign(frozen).tolist() == ring.assign(list(range(100))).tolist()
