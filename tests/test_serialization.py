"""JSON and pickle round trips (exact), and ``from_json`` on untrusted documents: anything
malformed is an ``InvalidPlacementError``, never another exception."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ringguard
from conftest import KETAMA_CONFIGS, RING_CONFIGS, ZONED_CONFIGS, ring_pair, scaled
from ringguard import InvalidPlacementError, KetamaRing, Ring, RingGuardError, from_json

KEYS: list[Any] = [f"k{i}" for i in range(500)] + ["", "é", "😀"]
INTS = list(range(-300, 300)) + [2**63, 2**64 - 1, -(2**63)]


def _same_placement(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    assert a == b and hash(a) == hash(b)
    assert a.to_json() == b.to_json()
    assert a.nodes == b.nodes and a.weights == b.weights
    assert a.points()[0].tolist() == b.points()[0].tolist()
    assert a.points()[1].tolist() == b.points()[1].tolist()
    assert a.assign(KEYS).tolist() == b.assign(KEYS).tolist()
    assert a.assign(INTS).tolist() == b.assign(INTS).tolist()


@pytest.mark.parametrize("config", RING_CONFIGS + ZONED_CONFIGS + KETAMA_CONFIGS)
def test_json_and_pickle_round_trip(config: str) -> None:
    ring, _ = ring_pair(config)
    text = ring.to_json()
    assert isinstance(text, str)
    back = from_json(text)
    _same_placement(back, ring)
    _same_placement(from_json(text.encode()), ring)
    _same_placement(from_json(json.loads(text)), ring)
    _same_placement(type(ring).from_json(text), ring)
    _same_placement(pickle.loads(pickle.dumps(ring)), ring)
    _same_placement(copy.deepcopy(ring), ring)
    assert back.to_json() == text  # a fixed point


def test_json_is_canonical_and_versioned() -> None:
    ring = Ring({"b": 2.0, "a": 1.0}, zones={"a": "z1", "b": "z2"}, vnodes=33)
    doc = json.loads(ring.to_json())
    assert doc == {
        "format": "ringguard.placement", "version": 1, "algorithm": "ring-xxh64@1",
        "vnodes": 33,
        "nodes": [{"name": "b", "weight": 2.0, "zone": "z2"},
                  {"name": "a", "weight": 1.0, "zone": "z1"}],
    }
    assert ring.to_json() == json.dumps(doc, sort_keys=True, separators=(",", ":"))
    k = Ring.ketama({"x": 3, "y": 1}, compat="uhashring")
    assert json.loads(k.to_json()) == {
        "format": "ringguard.placement", "version": 1, "algorithm": "ketama-md5@1",
        "compat": "uhashring", "nodes": [{"name": "x", "weight": 3}, {"name": "y", "weight": 1}],
    }
    assert Ring(["a", "b"]).to_json() == Ring(["a", "b"]).to_json()
    assert Ring(["a", "b"]) != Ring(["a", "b"], vnodes=161)
    assert Ring(["a", "b"]) != Ring.ketama(["a", "b"])
    assert Ring.ketama(["a"]) != Ring.ketama(["a"], compat="uhashring")


def test_exact_weights_and_odd_names_round_trip() -> None:
    weights = {"plain": 0.1, "third": 1 / 3, "tiny": 1e-300, "subnormal": 5e-324,
               "big": 12345.678901234567, "quote\"back\\slash": 0.30000000000000004,
               "astral😀\U0010ffff": 2.0, "ctrl\x00\x1f\n": 1.0, "é中": 7.25}
    zones = {name: f"zone-{i % 3}-ü" for i, name in enumerate(weights)}
    ring = Ring(weights, zones=zones, vnodes=16)
    back = from_json(ring.to_json())
    _same_placement(back, ring)
    assert back.weights == weights
    assert all(back.weights[n].hex() == w.hex() for n, w in weights.items())
    assert back.zones == zones
    assert back.replicas(KEYS, 3).tolist() == ring.replicas(KEYS, 3).tolist()
    k = Ring.ketama({"a": 2**32 - 1, "b": 1, "c-é": 3}, compat="libketama")
    _same_placement(from_json(k.to_json()), k)


def test_from_json_type_checks_the_result_class() -> None:
    ring = Ring(["a", "b"])
    k = Ring.ketama(["a", "b"])
    assert isinstance(Ring.from_json(k.to_json()), KetamaRing)  # a KetamaRing is a Ring
    with pytest.raises(InvalidPlacementError):
        KetamaRing.from_json(ring.to_json())
    with pytest.raises(TypeError):
        from_json(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        from_json(None)  # type: ignore[arg-type]


# ---- malformed documents -----------------------------------------------------------------

RING_DOC = json.loads(Ring({"a": 1.0, "b": 2.5}, zones={"a": "x", "b": "y"}, vnodes=7).to_json())
KETAMA_DOC = json.loads(Ring.ketama({"a": 3, "b": 1}, compat="uhashring").to_json())


def _edit(base: dict[str, Any], change: Callable[[dict[str, Any]], Any]) -> str:
    doc = copy.deepcopy(base)
    change(doc)
    return json.dumps(doc)


def _walk(doc: dict[str, Any], path: str) -> tuple[Any, Any]:
    """The container holding the last part of ``path`` (``"nodes.0.weight"``) and its key."""
    *parents, last = path.split(".")
    target: Any = doc
    for p in parents:
        target = target[int(p)] if isinstance(target, list) else target[p]
    return target, int(last) if isinstance(target, list) else last


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target, key = _walk(doc, path)
        target[key] = value

    return change


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target, key = _walk(doc, path)
        del target[key]

    return change


R, K = RING_DOC, KETAMA_DOC
MALFORMED: list[tuple[str, Any]] = [
    ("not-json", "{nope"),
    ("empty", ""),
    ("truncated", json.dumps(R)[:-1]),
    ("top-list", "[]"),
    ("top-str", '"x"'),
    ("top-number", "1"),
    ("top-null", "null"),
    ("NaN-constant", json.dumps(R).replace('"vnodes": 7', '"vnodes": NaN')),
    ("Infinity-weight", json.dumps(R).replace('"weight": 2.5', '"weight": Infinity')),
    ("deep-nesting", "[" * 50000 + "]" * 50000),
    ("bytes-not-utf8", b"\xff\xfe{"),
    ("format-missing", _edit(R, _drop("format"))),
    ("format-wrong", _edit(R, _set("format", "ringguard.placemint"))),
    ("version-missing", _edit(R, _drop("version"))),
    ("version-2", _edit(R, _set("version", 2))),
    ("version-0", _edit(R, _set("version", 0))),
    ("version-str", _edit(R, _set("version", "1"))),
    ("version-true", _edit(R, _set("version", True))),
    ("version-float", _edit(R, _set("version", 1.0))),
    ("algorithm-missing", _edit(R, _drop("algorithm"))),
    ("algorithm-unknown", _edit(R, _set("algorithm", "maglev@1"))),
    ("algorithm-next-version", _edit(R, _set("algorithm", "ring-xxh64@2"))),
    ("algorithm-int", _edit(R, _set("algorithm", 1))),
    ("algorithm-list", _edit(R, _set("algorithm", ["ring-xxh64@1"]))),
    ("extra-field", _edit(R, _set("extra", 1))),
    ("extra-compat-in-ring", _edit(R, _set("compat", "libketama"))),
    ("vnodes-missing", _edit(R, _drop("vnodes"))),
    ("vnodes-float", _edit(R, _set("vnodes", 7.0))),
    ("vnodes-str", _edit(R, _set("vnodes", "7"))),
    ("vnodes-bool", _edit(R, _set("vnodes", True))),
    ("vnodes-null", _edit(R, _set("vnodes", None))),
    ("vnodes-zero", _edit(R, _set("vnodes", 0))),
    ("vnodes-negative", _edit(R, _set("vnodes", -3))),
    ("vnodes-huge", _edit(R, _set("vnodes", 10**12))),
    ("nodes-missing", _edit(R, _drop("nodes"))),
    ("nodes-empty", _edit(R, _set("nodes", []))),
    ("nodes-object", _edit(R, _set("nodes", {"a": 1}))),
    ("nodes-str", _edit(R, _set("nodes", "ab"))),
    ("node-str", _edit(R, _set("nodes", ["a", "b"]))),
    ("node-null", _edit(R, _set("nodes.0", None))),
    ("node-extra-field", _edit(R, _set("nodes.0.port", 11211))),
    ("node-missing-weight", _edit(R, _drop("nodes.0.weight"))),
    ("node-missing-zone", _edit(R, _drop("nodes.1.zone"))),
    ("node-missing-name", _edit(R, _drop("nodes.0.name"))),
    ("name-int", _edit(R, _set("nodes.0.name", 5))),
    ("name-null", _edit(R, _set("nodes.0.name", None))),
    ("name-empty", _edit(R, _set("nodes.0.name", ""))),
    ("name-duplicate", _edit(R, _set("nodes.1.name", "a"))),
    ("name-list", _edit(R, _set("nodes.0.name", ["a"]))),
    ("name-object", _edit(R, _set("nodes.0.name", {"a": 1}))),
    ("weight-str", _edit(R, _set("nodes.0.weight", "1.0"))),
    ("weight-bool", _edit(R, _set("nodes.0.weight", True))),
    ("weight-null", _edit(R, _set("nodes.0.weight", None))),
    ("weight-zero", _edit(R, _set("nodes.0.weight", 0))),
    ("weight-negative", _edit(R, _set("nodes.0.weight", -1.5))),
    ("weight-list", _edit(R, _set("nodes.0.weight", [1.0]))),
    ("weight-huge-int", _edit(R, _set("nodes.0.weight", 10**400))),
    ("zone-int", _edit(R, _set("nodes.0.zone", 5))),
    ("zone-empty", _edit(R, _set("nodes.0.zone", ""))),
    ("zone-list", _edit(R, _set("nodes.0.zone", ["x"]))),
    ("zone-only-some", _edit(R, _set("nodes.0.zone", None))),
    ("ketama-compat-missing", _edit(K, _drop("compat"))),
    ("ketama-compat-unknown", _edit(K, _set("compat", "memcached"))),
    ("ketama-compat-int", _edit(K, _set("compat", 1))),
    ("ketama-compat-list", _edit(K, _set("compat", ["libketama"]))),
    ("ketama-extra-vnodes", _edit(K, _set("vnodes", 160))),
    ("ketama-node-zone", _edit(K, _set("nodes.0.zone", "z"))),
    ("ketama-weight-float", _edit(K, _set("nodes.0.weight", 1.0))),
    ("ketama-weight-zero", _edit(K, _set("nodes.0.weight", 0))),
    ("ketama-weight-bool", _edit(K, _set("nodes.0.weight", True))),
    ("ketama-name-list", _edit(K, _set("nodes.0.name", ["a"]))),
    ("ketama-name-duplicate", _edit(K, _set("nodes.1.name", "a"))),
]


@pytest.mark.parametrize(("case", "doc"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_from_json_rejects_malformed_documents(case: str, doc: Any) -> None:
    with pytest.raises(InvalidPlacementError) as info:
        from_json(doc)
    assert isinstance(info.value, ValueError) and isinstance(info.value, RingGuardError)
    try:
        parsed = json.loads(doc, parse_constant=lambda name: float("nan"))
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict) and "NaN" not in doc and "Infinity" not in doc:
        with pytest.raises(InvalidPlacementError):
            from_json(parsed)  # the same document, already parsed
    with pytest.raises(InvalidPlacementError):
        Ring.from_json(doc)


EXTREME = [
    ("ring-weight-1e308", _edit(R, _set("nodes.0.weight", 1e308))),
    ("ring-weights-max-float", _edit(R, lambda d: [n.update(weight=1.7e308) for n in d["nodes"]])),
    ("libketama-weight-10**400", _edit(K, lambda d: (d.update(compat="libketama"),
                                                     d["nodes"][0].update(weight=10**400)))),
]


@pytest.mark.parametrize(("case", "doc"), EXTREME, ids=[c[0] for c in EXTREME])
def test_from_json_extreme_valid_weights(case: str, doc: str) -> None:
    """Finite weights / ints >= 1 are valid values: a placement or an InvalidPlacementError,
    never an OverflowError."""
    try:
        placement = from_json(doc)
    except InvalidPlacementError:
        return
    assert placement.assign(KEYS[:20]).shape == (20,)


# ---- any edit of a valid document: a placement or an InvalidPlacementError ---------------

_json_scalars = (st.none() | st.booleans() | st.integers(-3, 3) | st.integers()
                 | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                               max_size=3),
    max_leaves=6,
)
_PATHS = ["format", "version", "algorithm", "vnodes", "nodes", "compat", "extra",
          "nodes.0", "nodes.0.name", "nodes.0.weight", "nodes.0.zone", "nodes.1.name",
          "nodes.1.weight", "nodes.1.zone", "nodes.0.extra"]


@given(base=st.sampled_from(["ring", "ketama"]), path=st.sampled_from(_PATHS),
       value=_json_values, drop=st.booleans())
def test_from_json_edited_documents(base: str, path: str, value: Any, drop: bool) -> None:
    doc = copy.deepcopy(RING_DOC if base == "ring" else KETAMA_DOC)
    if path == "vnodes" and isinstance(value, int) and not isinstance(value, bool):
        value = value % 5000  # keep any accepted ring small
    change = _drop(path) if drop else _set(path, value)
    try:
        change(doc)
    except (KeyError, IndexError, TypeError, ValueError):
        return  # the path does not exist in this document
    try:
        placement = from_json(json.dumps(doc))
    except InvalidPlacementError:
        return
    assert isinstance(placement, Ring)
    assert from_json(placement.to_json()) == placement
    assert placement.assign(KEYS[:20]).shape == (20,)


@pytest.mark.parametrize("config", ["10-zones", "libketama-10w"])
def test_pickled_rings_work_in_batch_calls(config: str) -> None:
    ring, _ = ring_pair(config)
    back = pickle.loads(pickle.dumps(ring, protocol=pickle.HIGHEST_PROTOCOL))
    keys = np.arange(scaled(20_000, 2_000), dtype=np.uint64)
    assert back.assign(keys, threads=2).tolist() == ring.assign(keys).tolist()
    assert back.replicas(keys[:500], 3).tolist() == ring.replicas(keys[:500], 3).tolist()
    assert isinstance(back, ringguard.Placement)
