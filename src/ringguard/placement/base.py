"""What every placement shares: the protocol, thread splitting, and the JSON envelope."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np

from ..errors import InvalidPlacementError

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

# json and concurrent.futures (which pulls in logging) are imported where they are used, so
# that `import ringguard` stays cheap for a pipeline that only asks for placements.

__all__ = ["JsonPlacement", "Placement", "from_json", "register", "split_work"]

FORMAT = "ringguard.placement"
FORMAT_VERSION = 1
MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_NODES = 1_000_000


@runtime_checkable
class Placement(Protocol):
    """The contract every placement algorithm implements (DESIGN.md, "Placement").

    Batch calls return indices into :attr:`nodes`. Placements are immutable: ``add`` and
    ``remove`` return new objects, so one placement can be shared by threads freely.
    """

    @property
    def nodes(self) -> tuple[str, ...]: ...

    def assign(self, keys: Any, *, threads: int | None = None) -> np.ndarray: ...

    def node_for(self, key: str | bytes | int) -> str: ...

    def replicas(self, keys: Any, n: int, *, threads: int | None = None) -> np.ndarray: ...

    def add(self, node: str, weight: float = 1.0, zone: str | None = None) -> Placement: ...

    def remove(self, node: str) -> Placement: ...

    def to_json(self) -> str: ...


# ---- threads ---------------------------------------------------------------------------

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_MIN_CHUNK = 16384  # below this a chunk is not worth a thread hand-off


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            from concurrent.futures import ThreadPoolExecutor

            _pool = ThreadPoolExecutor(
                max_workers=max(4, 2 * (os.cpu_count() or 1)), thread_name_prefix="ringguard"
            )
        return _pool


def check_threads(threads: Any) -> int:
    """Validate the ``threads=`` argument; ``None`` means 1 (the calling thread)."""
    if threads is None:
        return 1
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise TypeError(f"threads: expected an int >= 1 or None, got {type(threads).__name__}")
    if threads < 1:
        raise ValueError(f"threads: must be >= 1, got {threads}")
    return int(threads)


def split_work(n: int, threads: int) -> list[tuple[int, int]]:
    """Split ``range(n)`` into at most ``threads`` contiguous chunks worth a thread each."""
    k = max(1, min(threads, n // _MIN_CHUNK))
    bounds = [n * i // k for i in range(k + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(k) if bounds[i] < bounds[i + 1]]


def run_over_parts(
    batch: Any, nthreads: int, out: np.ndarray, fn: Callable[[Any, np.ndarray], None]
) -> np.ndarray:
    """Call ``fn(part_slice, out_slice)`` over every part of a key batch, each part split
    into chunks for ``nthreads`` threads (GIL-free kernels); return ``out``."""
    tasks = []
    pos = 0
    for part in batch.parts:
        for a, b in split_work(part.n, nthreads):
            tasks.append(partial(fn, part.slice(a, b), out[pos + a : pos + b]))
        pos += part.n
    run_tasks(tasks)
    return out


def run_tasks(tasks: Sequence[Callable[[], None]]) -> None:
    """Run GIL-free kernel calls: inline if one, else on the shared pool."""
    if len(tasks) <= 1:
        for t in tasks:
            t()
        return
    futures = [_executor().submit(t) for t in tasks[1:]]
    tasks[0]()
    for f in futures:
        f.result()


# ---- JSON envelope ---------------------------------------------------------------------

_REGISTRY: dict[str, Callable[[dict[str, Any]], Any]] = {}


def register(algorithm: str, loader: Callable[[dict[str, Any]], Any]) -> None:
    """Register the loader of one versioned algorithm name (``"ring-xxh64@1"``)."""
    _REGISTRY[algorithm] = loader


def envelope(algorithm: str, body: dict[str, Any]) -> str:
    doc = {"format": FORMAT, "version": FORMAT_VERSION, "algorithm": algorithm, **body}
    import json

    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)


def load_document(text: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """Parse and check the envelope of a placement document (untrusted input)."""
    if isinstance(text, dict):
        doc = text
    else:
        if not isinstance(text, (str, bytes, bytearray)):
            raise TypeError(f"from_json: expected str, bytes or dict, got {type(text).__name__}")
        if len(text) > MAX_JSON_BYTES:
            raise InvalidPlacementError(
                f"placement document is {len(text)} bytes, more than the {MAX_JSON_BYTES} limit"
            )
        try:
            import json

            doc = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise InvalidPlacementError(f"placement document is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidPlacementError("placement document: top level must be an object")
    if doc.get("format") != FORMAT:
        raise InvalidPlacementError(f"placement document: 'format' must be {FORMAT!r}")
    version = doc.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise InvalidPlacementError(
            f"placement document: version {version!r} is not supported (this ringguard reads "
            f"version {FORMAT_VERSION}); upgrade ringguard to read it"
        )
    algorithm = doc.get("algorithm")
    if not isinstance(algorithm, str) or algorithm not in _REGISTRY:
        raise InvalidPlacementError(
            f"placement document: unknown algorithm {algorithm!r}; known: {sorted(_REGISTRY)}"
        )
    return doc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def from_json(text: str | bytes | dict[str, Any]) -> Any:
    """Rebuild any placement from :meth:`to_json` output.

    Parameters
    ----------
    text
        The JSON document (or its parsed dict). It is validated as untrusted input: types,
        sizes, the format version and the algorithm name.

    Raises
    ------
    InvalidPlacementError
        When the document is malformed or of an unknown version/algorithm.

    Examples
    --------
    >>> from ringguard import Ring, from_json
    >>> r = Ring(["a", "b"])
    >>> from_json(r.to_json()) == r
    True
    """
    doc = load_document(text)
    return _REGISTRY[doc["algorithm"]](doc)


_P = TypeVar("_P", bound="JsonPlacement")
_SCALAR_KEY = (str, bytes, int, np.integer, np.str_, np.bytes_)


class JsonPlacement:
    """Identity and serialization shared by every placement class.

    A placement is defined by its versioned JSON document: ``to_json`` writes it, equal
    documents mean equal placements, and pickling sends the document (compact; the arrays
    are rebuilt on the other side). Subclasses set ``algorithm`` and implement ``_body``.
    """

    __slots__ = ()
    algorithm: ClassVar[str]

    def _body(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self) -> str:
        """Versioned JSON document that :func:`ringguard.from_json` turns back into an
        equal placement (exact: weights round-trip bit for bit).

        Examples
        --------
        >>> from ringguard import Ring, from_json
        >>> r = Ring({"a": 1.0, "b": 2.5}, vnodes=100)
        >>> from_json(r.to_json()) == r
        True
        """
        return envelope(self.algorithm, self._body())

    @classmethod
    def from_json(cls: type[_P], text: str | bytes | dict[str, Any]) -> _P:
        """Rebuild a placement of this class from :meth:`to_json` output (validated as
        untrusted input); a document of another algorithm is refused."""
        obj = from_json(text)
        if not isinstance(obj, cls):
            raise InvalidPlacementError(
                f"document holds a {type(obj).__name__}, not a {cls.__name__}"
            )
        return obj

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (from_json, (self.to_json(),))

    def node_for(self, key: str | bytes | int) -> str:
        """Name of the node that owns one key (a batch of one through ``assign``).

        Examples
        --------
        >>> from ringguard import Ring, RedisSlots
        >>> Ring(["a", "b"]).node_for("order:1") in ("a", "b")
        True
        >>> RedisSlots.even(["a", "b"]).node_for("foo")
        'b'
        """
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, _SCALAR_KEY):
            raise TypeError(
                f"key: expected one str, bytes or int, got {type(key).__name__}; "
                "use assign() for batches"
            )
        nodes: tuple[str, ...] = self.nodes  # type: ignore[attr-defined]
        return nodes[int(self.assign(key)[0])]  # type: ignore[attr-defined]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, JsonPlacement)
        return self._body() == other._body()

    def __hash__(self) -> int:
        return hash(self.to_json())


def check_replica_count(n: Any, owning: int) -> int:
    """Validate ``n`` of ``replicas(keys, n)``: an int from 1 to the owning node count."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n: expected an int, got {type(n).__name__}")
    if not 1 <= n <= owning:
        raise ValueError(
            f"n: must be between 1 and the number of nodes that own keys ({owning}), got {n}"
        )
    return int(n)


def expect_keys(doc: dict[str, Any], required: set[str], where: str) -> None:
    extra = set(doc) - required
    missing = required - set(doc)
    if missing or extra:
        raise InvalidPlacementError(
            f"{where}: missing fields {sorted(missing)}, unexpected fields {sorted(extra)}"
        )


def expect_node_list(value: Any) -> list[Any]:
    if not isinstance(value, list) or not value or len(value) > MAX_NODES:
        raise InvalidPlacementError(
            f"placement document: 'nodes' must be a non-empty list of at most {MAX_NODES}"
        )
    return value
