"""The repository config and snapshot manifests: JSON documents, validated as untrusted.

A manifest is the commit point of a snapshot: it is written last, as one complete object,
after every chunk it names is stored. It carries a SHA-256 of its own canonical JSON
(``checksum``), so a flipped bit anywhere in it is detected even when the JSON still parses.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import BackupCorrupted, BackupFormatError

__all__ = ["CONFIG_VERSION", "MANIFEST_VERSION", "Manifest", "RangeEntry", "dump_manifest",
           "load_config", "load_manifest"]

CONFIG_FORMAT = "ringguard-backup"
CONFIG_VERSION = 1
MANIFEST_FORMAT = "ringguard-snapshot"
MANIFEST_VERSION = 1
MAX_CONFIG_BYTES = 64 * 1024
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
MAX_RANGE_BITS = 16

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


def new_config(repo_id: str, encryption: dict[str, Any] | None) -> bytes:
    return canonical(
        {"format": CONFIG_FORMAT, "version": CONFIG_VERSION, "id": repo_id,
         "chunk_hash": "sha256", "encryption": encryption}
    )


def load_config(data: bytes, where: str) -> dict[str, Any]:
    """Parse and check a repository config; unknown versions are refused clearly."""
    doc = _parse(data, MAX_CONFIG_BYTES, f"{where}: config", BackupFormatError)
    if doc.get("format") != CONFIG_FORMAT:
        raise BackupFormatError(f"{where}: not a ringguard backup repository (config format)")
    version = doc.get("version")
    if type(version) is not int or version != CONFIG_VERSION:
        raise BackupFormatError(
            f"{where}: repository format version {version!r} is not supported; this "
            f"ringguard reads version {CONFIG_VERSION} (upgrade ringguard to open it)"
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


@dataclass(frozen=True)
class RangeEntry:
    """One key-hash range of a snapshot: its records are in exactly one chunk."""

    range: int
    count: int
    digest: str  # SHA-256 of the chunk payload
    chunk: str  # object id (= digest, or an HMAC of the payload when encrypted)
    raw: int  # payload bytes

    def as_dict(self) -> dict[str, Any]:
        return {"range": self.range, "count": self.count, "digest": self.digest,
                "chunk": self.chunk, "raw": self.raw}


@dataclass(frozen=True)
class Manifest:
    """A committed snapshot of one node."""

    id: str
    node: str
    created: float
    placement: str | None
    range_bits: int
    parent: str | None
    watermark: tuple[int, int] | None
    fuzzy: bool
    records: int
    ranges: tuple[RangeEntry, ...]
    hash_function: str = "xxh64"
    hash_seed: int = 0

    @property
    def order(self) -> tuple[int, int, float]:
        """Sort key: the (epoch, seq) watermark, then creation time for equal ones."""
        w = self.watermark or (-1, -1)
        return (w[0], w[1], self.created)

    @property
    def raw_bytes(self) -> int:
        return sum(r.raw for r in self.ranges)


def dump_manifest(m: Manifest) -> bytes:
    doc: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "id": m.id,
        "node": m.node,
        "created": m.created,
        "placement": m.placement,
        "hash": {"function": m.hash_function, "seed": m.hash_seed, "range_bits": m.range_bits},
        "parent": m.parent,
        "watermark": list(m.watermark) if m.watermark is not None else None,
        "fuzzy": m.fuzzy,
        "records": m.records,
        "ranges": [r.as_dict() for r in m.ranges],
    }
    doc["checksum"] = hashlib.sha256(canonical(doc)).hexdigest()
    return canonical(doc)


_FIELDS = {"format", "version", "id", "node", "created", "placement", "hash", "parent",
           "watermark", "fuzzy", "records", "ranges", "checksum"}


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
    if type(version) is not int or version != MANIFEST_VERSION:
        raise BackupFormatError(
            f"{where}: manifest format version {version!r} is not supported; this ringguard "
            f"reads version {MANIFEST_VERSION} (upgrade ringguard)"
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
        and set(h) == {"function", "seed", "range_bits"}
        and h["function"] == "xxh64"
        and _is_int(h["seed"], 0, (1 << 64) - 1)
        and _is_int(h["range_bits"], 0, MAX_RANGE_BITS)
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
    ranges = doc["ranges"]
    nranges = 1 << h["range_bits"]
    if not isinstance(ranges, list) or len(ranges) > nranges:
        raise bad("ranges is not a list of at most 2**range_bits entries")
    entries = []
    seen = set()
    total = 0
    for i, r in enumerate(ranges):
        ok = (
            isinstance(r, dict)
            and set(r) == {"range", "count", "digest", "chunk", "raw"}
            and _is_int(r["range"], 0, nranges - 1)
            and _is_int(r["count"], 1)
            and _is_int(r["raw"], 1)
            and isinstance(r["digest"], str)
            and _HEX64.match(r["digest"]) is not None
            and isinstance(r["chunk"], str)
            and _HEX64.match(r["chunk"]) is not None
        )
        if not ok:
            raise bad(f"range entry {i} is invalid (ids must be 64 hex digits)")
        if r["range"] in seen:
            raise bad(f"range {r['range']} is listed twice")
        seen.add(r["range"])
        total += r["count"]
        entries.append(RangeEntry(r["range"], r["count"], r["digest"], r["chunk"], r["raw"]))
    if total != doc["records"]:
        raise bad(f"range counts add up to {total}, records says {doc['records']}")
    return Manifest(
        id=doc["id"], node=doc["node"], created=float(doc["created"]),
        placement=doc["placement"], range_bits=h["range_bits"], parent=doc["parent"],
        watermark=(w[0], w[1]) if w is not None else None, fuzzy=doc["fuzzy"],
        records=doc["records"], ranges=tuple(entries), hash_function=h["function"],
        hash_seed=h["seed"],
    )
