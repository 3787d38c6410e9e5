"""The repository config and snapshot manifests: JSON documents, validated as untrusted.

Version 2 (config and manifest): chunks hold several digest ranges each (payload magic
``RGR2``), and a manifest keeps a columnar range table (little-endian arrays in base64:
range id, record count, the backends' range digest, chunk index, payload bytes, greatest
version) plus a chunk table ``[id, sha256, raw bytes]``. Version 1 repositories (one
range per chunk, from development builds before range digests) are refused with a clear
message.

Version 3 (manifest; a version 3 config says new manifests are written so) stores the
same range table as ONE compressed object in base64 (``ranges: {"rows": n, "table":
...}``): the object format of :func:`ringguard.backup.codec.compress` (zstandard or
zlib), holding the columns in :data:`RANGE_COLUMNS` order, each split into byte planes
(all first bytes, then all second bytes, ...), the range ids delta-coded. At 2**18
ranges that is ~3 MB instead of ~14 MB of base64, and encodes faster. A repository keeps
the version its config was created with (an older ringguard can still read a version 2
one); this ringguard reads both and refuses any other.

A manifest is the commit point of a snapshot: it is written last, as one complete object,
after every chunk it names is stored. It carries a SHA-256 of its own canonical JSON
(``checksum``), so a flipped bit anywhere in it is detected even when the JSON still parses.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends.base import DIGEST_BITS
from .errors import BackupCorrupted, BackupFormatError

__all__ = ["CONFIG_VERSION", "CONFIG_VERSIONS", "MANIFEST_VERSION", "MANIFEST_VERSIONS",
           "ChunkRef", "Manifest", "RangeEntry", "decode_table", "dump_manifest",
           "encode_table", "load_config", "load_manifest"]

CONFIG_FORMAT = "ringguard-backup"
CONFIG_VERSION = 3
MANIFEST_FORMAT = "ringguard-snapshot"
MANIFEST_VERSION = 3
#: Config versions this ringguard opens; a repository writes manifests of its config's
#: version (config 2: manifest 2; config 3: manifest 3).
CONFIG_VERSIONS = (2, 3)
MANIFEST_VERSIONS = (2, 3)
MAX_CONFIG_BYTES = 64 * 1024
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
#: Finest range resolution a manifest may declare (``digest_bits``; the backends keep
#: ``DIGEST_BITS``, which may be lower or higher than the writer's).
MAX_RANGE_BITS = 24

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SNAP = re.compile(r"^[0-9a-f]{32}$")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _parse(data: bytes, limit: int, what: str, exc_type: type[Exception]) -> dict[str, Any]:
    if len(data) > limit:
        raise exc_type(f"{what}: {len(data)} bytes, more than the {limit}-byte limit")
    try:
        doc = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise exc_type(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise exc_type(f"{what}: top level must be an object")
    return doc


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _is_int(v: Any, lo: int = 0, hi: int = (1 << 63) - 1) -> bool:
    return type(v) is int and lo <= v <= hi


# ---- config -------------------------------------------------------------------------------


def new_config(repo_id: str, encryption: dict[str, Any] | None,
               version: int = CONFIG_VERSION) -> bytes:
    if version not in CONFIG_VERSIONS:
        raise ValueError(f"version: expected one of {CONFIG_VERSIONS}")
    return canonical(
        {"format": CONFIG_FORMAT, "version": version, "id": repo_id,
         "chunk_hash": "sha256", "encryption": encryption}
    )


def load_config(data: bytes, where: str) -> dict[str, Any]:
    """Parse and check a repository config; unknown versions are refused clearly."""
    doc = _parse(data, MAX_CONFIG_BYTES, f"{where}: config", BackupFormatError)
    if doc.get("format") != CONFIG_FORMAT:
        raise BackupFormatError(f"{where}: not a ringguard backup repository (config format)")
    version = doc.get("version")
    if type(version) is not int or version not in CONFIG_VERSIONS:
        raise BackupFormatError(
            f"{where}: repository format version {version!r} is not supported; this "
            f"ringguard reads versions {', '.join(map(str, CONFIG_VERSIONS))} (upgrade "
            "ringguard to open it)"
        )
    if set(doc) != {"format", "version", "id", "chunk_hash", "encryption"}:
        raise BackupFormatError(f"{where}: config has unexpected or missing fields")
    if not isinstance(doc["id"], str) or not _SNAP.match(doc["id"]):
        raise BackupFormatError(f"{where}: config id is malformed")
    if doc["chunk_hash"] != "sha256":
        raise BackupFormatError(f"{where}: unknown chunk hash {doc['chunk_hash']!r}")
    enc = doc["encryption"]
    if enc is not None:
        ok = (
            isinstance(enc, dict)
            and set(enc) == {"cipher", "kdf", "salt", "n", "r", "p", "check"}
            and enc["cipher"] == "aes-256-gcm"
            and enc["kdf"] == "scrypt"
            and isinstance(enc["salt"], str)
            and re.fullmatch(r"[0-9a-f]{32,128}", enc["salt"]) is not None
            and _is_int(enc["n"], 2, 1 << 22)
            and (enc["n"] & (enc["n"] - 1)) == 0
            and _is_int(enc["r"], 1, 64)
            and _is_int(enc["p"], 1, 16)
            and isinstance(enc["check"], str)
            and re.fullmatch(r"(?:[0-9a-f]{2}){32,256}", enc["check"]) is not None
        )
        if not ok:
            raise BackupFormatError(f"{where}: encryption parameters are malformed")
    return doc


# ---- manifests ----------------------------------------------------------------------------

#: Columns of a manifest's range table: one row per non-empty digest range, ascending.
RANGE_COLUMNS: dict[str, str] = {
    "range": "<u4",  # digest range id (top digest_bits bits of the key hash)
    "count": "<u4",  # records (tombstones included)
    "digest": "<u8",  # the backend's range digest: sum of record digests mod 2**64
    "chunk": "<u4",  # index into the manifest's chunk table
    "raw": "<u4",  # bytes of the range's records in the chunk payload
    "epoch": "<i8",  # greatest (epoch, seq) version of the range
    "seq": "<i8",
}
MAX_CHUNKS = 1 << 24


@dataclass(frozen=True)
class RangeEntry:
    """One digest range of a snapshot, as a row of :attr:`Manifest.ranges`.

    ``digest`` is the backend's range digest (16 hex digits: the sum mod 2**64 of the
    records' digests, :func:`ringguard.backends.base.record_digests`), ``chunk`` the id of
    the chunk holding the range's records, ``raw`` their size in its payload.
    """

    range: int
    count: int
    digest: str
    chunk: str
    raw: int


@dataclass(frozen=True)
class ChunkRef:
    """One chunk a snapshot names: its id, the SHA-256 of its payload and its size."""

    id: str
    sha256: str
    raw: int


@dataclass(frozen=True, eq=False)
class Manifest:
    """A committed snapshot of one node.

    The range table is columnar (``columns``: NumPy arrays named as in
    :data:`RANGE_COLUMNS`, one row per non-empty range of ``2**digest_bits``); ``chunks``
    is the chunk table its ``chunk`` column indexes.
    """

    id: str
    node: str
    created: float
    placement: str | None
    range_bits: int
    parent: str | None
    watermark: tuple[int, int] | None
    fuzzy: bool
    records: int
    chunks: tuple[ChunkRef, ...]
    columns: dict[str, np.ndarray]
    digest_bits: int = DIGEST_BITS
    fuzzy_ranges: tuple[int, ...] = ()
    hash_function: str = "xxh64"
    hash_seed: int = 0

    @property
    def order(self) -> tuple[int, int, float]:
        """Sort key: the (epoch, seq) watermark, then creation time for equal ones."""
        w = self.watermark or (-1, -1)
        return (w[0], w[1], self.created)

    @property
    def raw_bytes(self) -> int:
        """Payload bytes of this snapshot's records (what a full copy of it would hold)."""
        return int(self.columns["raw"].sum(dtype=np.int64))

    @property
    def ranges(self) -> tuple[RangeEntry, ...]:
        """The range table as :class:`RangeEntry` rows (built on each call)."""
        c = self.columns
        ids = [ch.id for ch in self.chunks]
        return tuple(
            RangeEntry(r, n, f"{d:016x}", ids[k], w)
            for r, n, d, k, w in zip(c["range"].tolist(), c["count"].tolist(),
                                     c["digest"].tolist(), c["chunk"].tolist(),
                                     c["raw"].tolist(), strict=True)
        )


def empty_columns(n: int = 0) -> dict[str, np.ndarray]:
    return {k: np.zeros(n, dtype=t) for k, t in RANGE_COLUMNS.items()}


def _splice_canonical(doc: dict[str, Any], columns: dict[str, bytes]) -> bytes | None:
    """``canonical(doc)`` with ``doc["ranges"][k]`` set to ``columns[k].decode()``, built
    without passing the (multi-megabyte) base64 columns through the JSON encoder: ``doc``
    holds a placeholder per column, and the encoded placeholder is replaced by the column.
    Base64 text needs no JSON escaping, so the bytes are those of ``canonical``; ``None``
    if a placeholder is not found exactly once (the caller then encodes directly)."""
    marks = {k: f"\x00ringguard-column-{k}\x00" for k in columns}
    small = dict(doc, ranges={**doc["ranges"], **marks})
    text = canonical(small)
    parts: list[bytes] = []
    at = 0
    spots = []
    for k, mark in marks.items():
        token = json.dumps(mark).encode()
        i = text.find(token)
        if i < 0 or text.find(token, i + 1) >= 0:
            return None
        spots.append((i, len(token), k))
    for i, n, k in sorted(spots):
        parts += [text[at:i], b'"', columns[k], b'"']
        at = i + n
    parts.append(text[at:])
    return b"".join(parts)


#: Bytes of one row of the range table.
ROW_BYTES = sum(np.dtype(t).itemsize for t in RANGE_COLUMNS.values())


def encode_table(columns: dict[str, np.ndarray], codec: int) -> bytes:
    """The version 3 range table: one compressed object (see the module docstring)."""
    from .codec import compress

    rows = len(columns["range"])
    out = np.empty(rows * ROW_BYTES, dtype=np.uint8)
    at = 0
    for k, t in RANGE_COLUMNS.items():
        a = np.ascontiguousarray(columns[k], dtype=t)
        if k == "range" and rows:
            a = np.diff(a, prepend=a.dtype.type(0))  # ascending: small deltas
        w = a.dtype.itemsize
        # Byte planes written straight into the buffer, one strided copy per plane.
        planes = out[at : at + rows * w].reshape(w, rows)
        v = a.view(np.uint8).reshape(rows, w)
        for i in range(w):
            planes[i] = v[:, i]
        at += rows * w
    return compress(out, codec)


def decode_table(obj: bytes, rows: int) -> dict[str, np.ndarray]:
    """Columns of a version 3 range table of ``rows`` rows; ``ValueError`` if the object
    is damaged or does not decompress to exactly ``rows`` rows (nothing larger is ever
    allocated: the expected size is checked before decompressing)."""
    from .codec import decompress

    _, raw = decompress(obj, rows * ROW_BYTES)
    buf = np.frombuffer(raw, dtype=np.uint8)
    cols: dict[str, np.ndarray] = {}
    at = 0
    for k, t in RANGE_COLUMNS.items():
        dt = np.dtype(t)
        planes = buf[at : at + rows * dt.itemsize].reshape(dt.itemsize, rows)
        at += rows * dt.itemsize
        a = np.empty(rows, dtype=dt)
        v = a.view(np.uint8).reshape(rows, dt.itemsize)
        for i in range(dt.itemsize):
            v[:, i] = planes[i]
        if k == "range" and rows:
            total = np.cumsum(a, dtype=np.uint64)
            if int(total[-1]) > 0xFFFFFFFF:
                raise ValueError("range ids overflow")
            a = total.astype(dt)
        cols[k] = a.astype(dt.newbyteorder("="), copy=False)
    return cols


def dump_manifest(m: Manifest, version: int = MANIFEST_VERSION, codec: int = 1) -> bytes:
    """The manifest document of ``m`` (``version`` 2 or 3; ``codec`` compresses a version
    3 range table: 2 zstandard, 1 zlib, 0 none)."""
    if version not in MANIFEST_VERSIONS:
        raise ValueError(f"version: expected one of {MANIFEST_VERSIONS}")
    cols: dict[str, Any] = {"rows": len(m.columns["range"])}
    if version == 2:
        b64 = {k: base64.b64encode(np.ascontiguousarray(m.columns[k], dtype=t).tobytes())
               for k, t in RANGE_COLUMNS.items()}
    else:
        b64 = {"table": base64.b64encode(encode_table(m.columns, codec))}
    doc: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "version": version,
        "id": m.id,
        "node": m.node,
        "created": m.created,
        "placement": m.placement,
        "hash": {"function": m.hash_function, "seed": m.hash_seed,
                 "range_bits": m.range_bits, "digest_bits": m.digest_bits},
        "parent": m.parent,
        "watermark": list(m.watermark) if m.watermark is not None else None,
        "fuzzy": m.fuzzy,
        "fuzzy_ranges": list(m.fuzzy_ranges),
        "records": m.records,
        "chunks": [[c.id, c.sha256, c.raw] for c in m.chunks],
        "ranges": cols,
    }
    body = _splice_canonical(doc, b64)
    if body is None:
        doc["ranges"] = {**cols, **{k: v.decode() for k, v in b64.items()}}
        body = canonical(doc)
    checksum = hashlib.sha256(body).hexdigest()
    # "checksum" sorts before every other key: the canonical form of the document with it
    # is the body with it spliced in first (the multi-megabyte range table is encoded once).
    out = b'{"checksum":"' + checksum.encode() + b'",' + body[1:]
    assert out[:1] == b"{" and body[:1] == b"{" and min(doc) > "checksum"
    return out


_FIELDS = {"format", "version", "id", "node", "created", "placement", "hash", "parent",
           "watermark", "fuzzy", "fuzzy_ranges", "records", "chunks", "ranges", "checksum"}


def load_manifest(data: bytes, expected_id: str) -> Manifest:
    """Parse, checksum and validate a manifest (types, sizes, ids, versions)."""
    where = f"snapshot {expected_id}"

    def bad(msg: str) -> BackupCorrupted:
        return BackupCorrupted(f"{where}: manifest {msg}",
                               [{"snapshot": expected_id, "detail": f"manifest {msg}"}])

    try:
        doc = _parse(data, MAX_MANIFEST_BYTES, f"{where}: manifest", ValueError)
    except ValueError as exc:
        raise bad(str(exc).split(": ", 2)[-1]) from None
    if doc.get("format") != MANIFEST_FORMAT:
        raise bad("has the wrong format marker")
    version = doc.get("version")
    if type(version) is not int or version not in MANIFEST_VERSIONS:
        raise BackupFormatError(
            f"{where}: manifest format version {version!r} is not supported; this ringguard "
            f"reads versions {', '.join(map(str, MANIFEST_VERSIONS))} (upgrade ringguard)"
        )
    if set(doc) != _FIELDS:
        raise bad("has unexpected or missing fields")
    body = {k: v for k, v in doc.items() if k != "checksum"}
    if doc["checksum"] != hashlib.sha256(canonical(body)).hexdigest():
        raise bad("checksum does not match its content (damaged)")
    if doc["id"] != expected_id:
        raise bad(f"names snapshot {doc['id']!r}, stored as {expected_id!r}")
    if not isinstance(doc["node"], str) or not 0 < len(doc["node"]) <= 1024:
        raise bad("node is not a short string")
    if type(doc["created"]) not in (int, float) or not 0 <= doc["created"] < 1e11:
        raise bad("created time is invalid")
    if doc["placement"] is not None and not isinstance(doc["placement"], str):
        raise bad("placement is not a string")
    h = doc["hash"]
    if not (
        isinstance(h, dict)
        and set(h) == {"function", "seed", "range_bits", "digest_bits"}
        and h["function"] == "xxh64"
        and _is_int(h["seed"], 0, (1 << 64) - 1)
        and _is_int(h["range_bits"], 0, MAX_RANGE_BITS)
        and _is_int(h["digest_bits"], h["range_bits"], MAX_RANGE_BITS)
    ):
        raise bad("hash description is invalid")
    if doc["parent"] is not None and not (
        isinstance(doc["parent"], str) and _SNAP.match(doc["parent"])
    ):
        raise bad("parent id is invalid")
    w = doc["watermark"]
    if w is not None and not (
        isinstance(w, list) and len(w) == 2 and all(_is_int(x) for x in w)
    ):
        raise bad("watermark is invalid")
    if type(doc["fuzzy"]) is not bool or not _is_int(doc["records"]):
        raise bad("fuzzy/records are invalid")
    nranges = 1 << h["digest_bits"]
    fr = doc["fuzzy_ranges"]
    if not (isinstance(fr, list) and len(fr) <= nranges
            and all(_is_int(x, 0, nranges - 1) for x in fr)):
        raise bad("fuzzy_ranges is invalid")
    chunks_doc = doc["chunks"]
    if not isinstance(chunks_doc, list) or len(chunks_doc) > MAX_CHUNKS:
        raise bad("chunks is not a list")
    chunks = []
    for i, c in enumerate(chunks_doc):
        if not (isinstance(c, list) and len(c) == 3
                and isinstance(c[0], str) and _HEX64.match(c[0]) is not None
                and isinstance(c[1], str) and _HEX64.match(c[1]) is not None
                and _is_int(c[2], 1)):
            raise bad(f"chunk entry {i} is invalid (ids must be 64 hex digits)")
        chunks.append(ChunkRef(c[0], c[1], c[2]))
    cols_doc = doc["ranges"]
    fields = {*RANGE_COLUMNS, "rows"} if version == 2 else {"table", "rows"}
    if not (isinstance(cols_doc, dict) and set(cols_doc) == fields
            and _is_int(cols_doc["rows"], 0, nranges)):
        raise bad("ranges table is invalid")
    rows = cols_doc["rows"]
    cols: dict[str, np.ndarray] = {}
    if version == 2:
        for k, t in RANGE_COLUMNS.items():
            raw = _b64(cols_doc[k])
            if raw is None or len(raw) != rows * np.dtype(t).itemsize:
                raise bad(f"ranges column {k!r} is not {rows} base64 values")
            cols[k] = np.frombuffer(raw, dtype=t).astype(np.dtype(t).newbyteorder("="))
    else:
        raw = _b64(cols_doc["table"])
        if raw is None:
            raise bad("ranges table is not base64")
        try:
            cols = decode_table(raw, rows)
        except ValueError as exc:
            raise bad(f"ranges table is damaged ({exc})") from None
    r = cols["range"].astype(np.int64)
    if rows and (
        r.max() >= nranges or (np.diff(r) <= 0).any() or cols["count"].min() < 1
        or cols["raw"].min() < 1 or cols["chunk"].max() >= len(chunks)
        or cols["epoch"].min() < 0 or cols["seq"].min() < 0
    ):
        first = _first_bad_row(cols, nranges, len(chunks))
        raise bad(f"range row {first} is invalid (range ids ascending below 2**digest_bits, "
                  "counts and sizes >= 1, chunk index in the chunk table)")
    total = int(cols["count"].sum(dtype=np.int64))
    if total != doc["records"]:
        raise bad(f"range counts add up to {total}, records says {doc['records']}")
    return Manifest(
        id=doc["id"], node=doc["node"], created=float(doc["created"]),
        placement=doc["placement"], range_bits=h["range_bits"], parent=doc["parent"],
        watermark=(w[0], w[1]) if w is not None else None, fuzzy=doc["fuzzy"],
        records=doc["records"], chunks=tuple(chunks), columns=cols,
        digest_bits=h["digest_bits"], fuzzy_ranges=tuple(fr), hash_function=h["function"],
        hash_seed=h["seed"],
    )


def _b64(v: Any) -> bytes | None:
    """The bytes of a base64 string, or None if ``v`` is not one."""
    try:
        return base64.b64decode(v, validate=True) if isinstance(v, str) else None
    except (ValueError, binascii.Error):
        return None


def _first_bad_row(cols: dict[str, np.ndarray], nranges: int, nchunks: int) -> int:
    r = cols["range"].astype(np.int64)
    bad = (
        (r >= nranges) | (cols["count"] < 1) | (cols["raw"] < 1)
        | (cols["chunk"] >= nchunks) | (cols["epoch"] < 0) | (cols["seq"] < 0)
    )
    bad[1:] |= np.diff(r) <= 0
    return int(np.flatnonzero(bad)[0])
