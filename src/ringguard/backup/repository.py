"""Verified, incremental backups of node backends (see README "Backup").

Layout of a repository (the same in every copy)::

    config                          versioned JSON (format, id, encryption parameters)
    chunks/<2 hex>/<64 hex>         one stored object per distinct chunk payload
    snapshots/<32 hex>.json         one manifest per committed snapshot
    locks/prune, locks/backup-<id>  the repository lock (see :mod:`.lock`)

A snapshot cuts the key-hash space (XXH64 of the key, the backends' key hash) into
``2**digest_bits`` ranges and keeps, per non-empty range, its record count and digest
exactly as the backend's :meth:`~ringguard.backends.base.Backend.range_digests` defines
them, the chunk holding its records and their greatest version. A full backup streams the
node in key-hash order and writes one chunk per ``2**range_bits``-th of the space (chosen
by the node's size: ~8192 records a chunk by default; content-addressed: unchanged data
gives the same chunk, stored once). An incremental
backup compares the node's range digests with its parent's and reads only the ranges that
differ, packing them into a few new chunks; every other range names the parent's chunk,
without a record being read. The manifest is written after every chunk and is the commit
point; every manifest names all its chunks, so no snapshot depends on another's manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backends.base import DIGEST_BITS, Backend, BackendError, Records
from ..placement.hashing import KEY_HASH, KEY_HASH_SEED, key_hashes
from ._columnar import Columns, decode_columns
from .codec import (
    CODECS,
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    Crypto,
    compress,
    decompress,
    default_codec,
)
from .errors import BackupAuthError, BackupCorrupted, BackupError, BackupFormatError
from .lock import LEASE_S, RepositoryLock
from .manifest import (
    MAX_RANGE_BITS,
    ChunkRef,
    Manifest,
    dump_manifest,
    empty_columns,
    load_config,
    load_manifest,
    new_config,
)
from .snapshot import ChunkPacker, concat_rows
from .store import ObjectStore, open_store

__all__ = [
    "BackupReport",
    "BackupRepository",
    "Problem",
    "RepairReport",
    "RestoreReport",
    "Stats",
    "VerifyReport",
]

_SNAP_NAME = re.compile(r"^snapshots/([0-9a-f]{32})\.json$")
_CHUNK_NAME = re.compile(r"^chunks/[0-9a-f]{2}/([0-9a-f]{64})$")


def _concat_records(parts: list[Records]) -> Records:
    """One batch of the records of ``parts`` (key hashes and digests carried along when
    every part has them)."""
    if len(parts) == 1:
        return parts[0]
    hs = [p._hashes for p in parts]
    ds = [p._digests for p in parts]
    return Records(
        list(itertools.chain.from_iterable(p.keys for p in parts)),
        list(itertools.chain.from_iterable(p.values for p in parts)),
        np.concatenate([np.asarray(p.epochs, dtype=np.int64) for p in parts]),
        np.concatenate([np.asarray(p.seqs, dtype=np.int64) for p in parts]),
        None if any(h is None for h in hs) else np.concatenate(hs),  # type: ignore[arg-type]
        None if any(d is None for d in ds) else np.concatenate(ds),  # type: ignore[arg-type]
    )


def _block_rows(starts: np.ndarray, counts: np.ndarray, blocks: np.ndarray) -> np.ndarray | None:
    """Record positions of the blocks ``blocks`` (``None``: every block, in order)."""
    blocks = np.asarray(blocks, dtype=np.int64)
    if len(blocks) == len(starts) and bool((blocks == np.arange(len(starts))).all()):
        return None
    ct = np.asarray(counts, dtype=np.int64)[blocks]
    st = np.asarray(starts, dtype=np.int64)[blocks]
    total = int(ct.sum())
    before = np.cumsum(ct) - ct  # rows of the earlier selected blocks
    return np.repeat(st - before, ct) + np.arange(total, dtype=np.int64)


def _chunk_name(cid: str) -> str:
    return f"chunks/{cid[:2]}/{cid}"


def _snap_name(sid: str) -> str:
    return f"snapshots/{sid}.json"


@dataclass(frozen=True)
class Problem:
    """One damaged or missing object, and where it is."""

    kind: str  # "manifest", "chunk", "missing", "range"
    detail: str
    snapshot: str | None = None
    node: str | None = None
    range: int | None = None  # the first damaged digest range
    chunk: str | None = None
    copy: str | None = None
    ranges: tuple[int, ...] = ()  # every digest range of the snapshot it affects

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "snapshot": self.snapshot,
                "node": self.node, "range": self.range, "chunk": self.chunk, "copy": self.copy,
                "ranges": list(self.ranges)}

    def __str__(self) -> str:
        where = ", ".join(
            f"{k}={v}" for k, v in self.as_dict().items()
            if v is not None and k not in ("detail", "ranges")
        )
        if len(self.ranges) > 1:
            where += f" (+{len(self.ranges) - 1} more ranges)"
        return f"{where}: {self.detail}"


@dataclass
class VerifyReport:
    """What :meth:`BackupRepository.verify` read and found."""

    snapshots: int = 0
    chunks: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok


@dataclass
class BackupReport:
    """What the last :meth:`BackupRepository.backup` of one node did.

    ``ranges`` counts the snapshot's non-empty digest ranges; ``ranges_read`` and
    ``records_read`` what was read from the node (an incremental backup reads only the
    ranges whose digest differs from its parent's); ``chunks_written``/``chunks_reused``
    the chunks this backup stored, and those it refers to that were already stored (the
    parent's chunks of unchanged ranges included); ``peak_records`` the most
    records held in memory at once.
    """

    snapshot: str
    node: str
    records: int
    ranges: int
    chunks_written: int
    chunks_reused: int
    bytes_written: int
    raw_bytes: int
    fuzzy: bool
    seconds: float
    ranges_read: int = 0
    records_read: int = 0
    fuzzy_ranges: list[int] = field(default_factory=list)
    parent: str | None = None
    peak_records: int = 0


@dataclass
class RestoreReport:
    """What :meth:`BackupRepository.restore` wrote and what it could not."""

    snapshots: list[str]
    records: int
    ranges: int
    missing: list[Problem]
    seconds: float
    recovery: Any = None


@dataclass
class RepairReport:
    """Objects rewritten from an intact copy, and the ones no copy holds intact."""

    repaired: list[Problem]
    unrepairable: list[Problem]


@dataclass
class Stats:
    """Sizes of a repository (bytes), with compression and dedup taken into account."""

    snapshots: int
    chunks: int
    copies: int
    logical_bytes: int  # record payload of every snapshot, as if each were a full copy
    unique_bytes: int  # payload of the distinct chunks
    stored_bytes: int  # bytes on storage in one copy (chunks + manifests)
    total_stored_bytes: int  # over all copies: what the backup capacity B = k x N costs
    verified_copies: int | None = None  # copies intact at this object's last full verify

    @property
    def compression(self) -> float:
        """unique payload / stored bytes (> 1 means compression saves space)."""
        return self.unique_bytes / self.stored_bytes if self.stored_bytes else 1.0

    @property
    def dedup(self) -> float:
        """logical bytes / unique payload (> 1 means snapshots share chunks)."""
        return self.logical_bytes / self.unique_bytes if self.unique_bytes else 1.0


@dataclass
class _Pass:
    """What one backup pass over a node produced."""

    digest_bits: int
    range_bits: int
    chunks: list[ChunkRef] = field(default_factory=list)
    columns: dict[str, np.ndarray] = field(default_factory=empty_columns)
    records: int = 0
    watermark: tuple[int, int] | None = None
    fuzzy_ranges: list[int] = field(default_factory=list)
    written: int = 0
    reused: int = 0
    nbytes: int = 0
    ranges_read: int = 0
    records_read: int = 0
    peak_records: int = 0


def _check_progress(progress: Any) -> None:
    if progress is not None and not callable(progress):
        raise TypeError(f"progress: expected a callable or None, got {type(progress).__name__}")


def _runs(read: np.ndarray, counts: np.ndarray, gap_records: int) -> list[tuple[int, int]]:
    """Half-open intervals of range ids covering every ``read`` range, one per scan call:
    consecutive ranges form a run, and runs separated by unchanged ranges holding at most
    ``gap_records`` records (by ``counts``) are merged (one call costs about as much as
    reading that many records; the extra records are dropped after the scan)."""
    idx = np.flatnonzero(read)
    if not len(idx):
        return []
    cuts = np.flatnonzero(np.diff(idx) > 1)
    starts = np.concatenate(([idx[0]], idx[cuts + 1]))
    ends = np.concatenate((idx[cuts] + 1, [idx[-1] + 1]))
    csum = np.concatenate(([0], np.cumsum(counts.astype(np.int64))))
    gaps = csum[starts[1:]] - csum[ends[:-1]]  # records between consecutive runs
    keep = np.concatenate(([True], gaps > gap_records))
    firsts = np.flatnonzero(keep)
    lasts = np.append(firsts[1:] - 1, len(starts) - 1)
    return list(zip(starts[firsts].tolist(), ends[lasts].tolist(), strict=True))


def _rows_by_chunk(m: Manifest) -> list[tuple[int, np.ndarray]]:
    """``(chunk index, row indices)`` of a manifest's range table, chunk by chunk."""
    ch = m.columns["chunk"].astype(np.int64)
    order = np.argsort(ch, kind="stable")
    cuts = np.flatnonzero(np.diff(ch[order])) + 1
    return [(int(ch[g[0]]), g) for g in np.split(order, cuts) if len(g)]


@dataclass(frozen=True)
class _Summary:
    """What a backup needs of every committed snapshot."""

    node: str
    order: tuple[int, int, float]
    chunks: frozenset[str]
    stamp: tuple[int, float] | None


@dataclass(frozen=True)
class _Checked:
    """A chunk read back and checked: its blocks, their recomputed digests, and (when
    kept) the decoded columns with each record's key hash and digest."""

    ranges: np.ndarray
    counts: np.ndarray
    starts: np.ndarray
    digests: np.ndarray
    columns: Columns | None = None
    hashes: np.ndarray | None = None
    record_digests: np.ndarray | None = None

    def records(self, idx: np.ndarray | None) -> Records:
        """The records at positions ``idx``, carrying their key hashes and digests."""
        assert self.columns is not None
        return self.columns.records(idx, self.hashes, self.record_digests)


_NOT_READ = _Checked(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                     np.zeros(0, np.uint64))


class BackupRepository:
    """A backup repository on a local path or fsspec URL, optionally in k copies.

    Parameters
    ----------
    url
        A directory, a ``file://`` URL or any fsspec URL (``memory://``, ``s3://`` with the
        fsspec extras); a list of k of them with ``copies=k``.
    copies
        Number of copies; every object is written to each. Reads use the first copy
        that verifies; :meth:`repair` heals one copy from another.
    password
        Encrypt every object with AES-256-GCM under a scrypt-derived key (needs
        ``pip install 'ringguard[crypto]'``). Fixed when the repository is created.
    range_bits
        A full backup writes one chunk per ``2**range_bits``-th of the key-hash space
        (records of unchanged parts give byte-identical chunks, stored once). ``None``
        (default): chosen by each full backup from the node's record count, so that a
        chunk holds about :attr:`group_records` records (1M records: ``range_bits=7``,
        128 chunks of ~2 MB); it stays at the node's previous choice while that is
        within one bit of the new one, so repeated full backups keep deduplicating.
    digest_bits
        Resolution of the per-range record counts and digests a snapshot keeps
        (``2**digest_bits`` ranges; default and upper limit: the backends'
        :data:`~ringguard.backends.base.DIGEST_BITS`). An incremental backup compares
        them with the node's
        :meth:`~ringguard.backends.base.Backend.range_digests` and reads only the ranges
        that differ.
    chunk_target_bytes
        Size an incremental backup packs its changed ranges into before starting a new
        chunk (and the size above which a full backup splits a range group).
    codec
        Compression of new chunks: 2 zstandard (default when installed), 1 zlib, 0 none.
        Each chunk records its own codec, so a repository may mix them.
    lock_timeout_s
        How long a backup waits for a running prune, and a prune for running backups,
        before :class:`BackupLocked`.
    lock_lease_s
        Lease of this process's lock objects (refreshed while it works); a lock left by
        a crashed process is broken once its lease ran out.

    Examples
    --------
    >>> import tempfile
    >>> from ringguard.backends import MemoryBackend, Records
    >>> node = MemoryBackend("n1")
    >>> _ = node.write(Records.build([b"k1", b"k2"], [b"v1", None], 1, [1, 2]))
    >>> repo = BackupRepository(tempfile.mkdtemp())
    >>> sid = repo.backup(node)
    >>> repo.verify().ok
    True
    >>> target = MemoryBackend("new")
    >>> repo.restore(sid, target).records
    2
    """

    def __init__(
        self,
        url: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        copies: int = 1,
        password: str | bytes | None = None,
        *,
        range_bits: int | None = None,
        digest_bits: int | None = None,
        chunk_target_bytes: int = 4 << 20,
        codec: int | None = None,
        lock_timeout_s: float = 60.0,
        lock_lease_s: float = LEASE_S,
        scrypt_n: int = SCRYPT_N,
    ) -> None:
        urls = [url] if isinstance(url, (str, os.PathLike)) else list(url)
        if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
            raise ValueError("copies: expected an int >= 1")
        if len(urls) != copies:
            raise ValueError(
                f"copies: {copies} copies need a list of {copies} distinct URLs, got {len(urls)}"
            )
        if len({os.fspath(u) for u in urls}) != len(urls):
            raise ValueError("url: the copies must be distinct locations")
        if range_bits is not None and (
            isinstance(range_bits, bool) or not isinstance(range_bits, int)
            or not 0 <= range_bits <= MAX_RANGE_BITS
        ):
            raise ValueError(f"range_bits: expected an int in 0..{MAX_RANGE_BITS} or None")
        if range_bits is not None and range_bits > DIGEST_BITS:
            raise ValueError(
                f"range_bits: {range_bits} is finer than the backends' range digests "
                f"(DIGEST_BITS = {DIGEST_BITS}); a chunk group holds whole digest ranges")
        if codec is not None and (type(codec) is not int or codec not in CODECS):
            raise ValueError(f"codec: expected one of {sorted(CODECS)} ({CODECS}) or None")
        if digest_bits is None:
            digest_bits = DIGEST_BITS
        if isinstance(digest_bits, bool) or not isinstance(digest_bits, int) or not (
            (range_bits or 0) <= digest_bits <= MAX_RANGE_BITS
        ):
            raise ValueError(f"digest_bits: expected an int in range_bits..{MAX_RANGE_BITS}")
        if isinstance(chunk_target_bytes, bool) or not isinstance(chunk_target_bytes, int) \
                or chunk_target_bytes < 1:
            raise ValueError("chunk_target_bytes: expected an int >= 1")
        self.range_bits = range_bits
        #: With ``range_bits=None``: records per chunk a full backup aims at (about 2 MB
        #: of ~200-byte records; fewer, larger files write faster, see benchmarks/README).
        self.group_records = 8192
        self.digest_bits = digest_bits
        self.chunk_target_bytes = chunk_target_bytes
        #: An incremental backup reads across a gap of unchanged ranges holding at most
        #: this many records rather than starting another scan_range call (backends with
        #: ``scan_ranges`` get every interval in one call: no gap is read there).
        self.scan_gap_records = 16
        #: Records per ``scan_range`` batch: with one range group, what a backup holds.
        self.scan_batch_size = 10_000
        #: A restore writes verified records to its target in batches of at least this
        #: many (several chunks' worth: backends apply large batches faster).
        self.write_batch_records = 65_536
        self.codec = default_codec() if codec is None else codec
        self.lock_timeout_s = lock_timeout_s
        self.lock_lease_s = lock_lease_s
        self._stores: list[ObjectStore] = [open_store(u) for u in urls]
        self.last_backup: list[BackupReport] = []
        self._crypto: Crypto | None = None
        self._verified: dict[str, bool] = {}
        self._summaries: dict[str, _Summary] = {}
        self._recent: OrderedDict[str, Manifest] = OrderedDict()
        self._open(password, scrypt_n)

    # ---- opening ------------------------------------------------------------------------

    def _open(self, password: str | bytes | None, scrypt_n: int) -> None:
        raw: bytes | None = None
        config: dict[str, Any] | None = None
        for s in self._stores:
            if s.exists("config"):
                data = s.get("config")
                doc = load_config(data, s.url)
                if config is not None and doc["id"] != config["id"]:
                    raise BackupFormatError(
                        f"{s.url}: holds another repository (id {doc['id']}) than "
                        f"{self._stores[0].url}"
                    )
                config, raw = doc, data
        if config is None:
            enc = None
            if password is not None:
                salt = os.urandom(16)
                self._crypto = Crypto.derive(password, salt, scrypt_n, SCRYPT_R, SCRYPT_P)
                enc = {"cipher": "aes-256-gcm", "kdf": "scrypt", "salt": salt.hex(),
                       "n": scrypt_n, "r": SCRYPT_R, "p": SCRYPT_P,
                       "check": self._crypto.check_token().hex()}
            raw = new_config(uuid.uuid4().hex, enc)
            config = load_config(raw, "new repository")
        else:
            enc = config["encryption"]
            if enc is None and password is not None:
                raise BackupFormatError(
                    f"{self._stores[0].url}: repository is not encrypted; open it without "
                    "password="
                )
            if enc is not None:
                if password is None:
                    raise BackupAuthError(
                        f"{self._stores[0].url}: repository is encrypted; pass password="
                    )
                self._crypto = Crypto.derive(
                    password, bytes.fromhex(enc["salt"]), enc["n"], enc["r"], enc["p"]
                )
                self._crypto.verify_token(bytes.fromhex(enc["check"]))
        assert raw is not None
        for s in self._stores:  # a new copy gets the same config; repair() fills it
            if not s.exists("config"):
                s.put("config", raw)
        self.id: str = config["id"]
        self.encrypted = self._crypto is not None
        #: The repository format (the config's version); new manifests are written in it.
        self.format_version: int = config["version"]

    @property
    def urls(self) -> list[str]:
        """Location of each copy."""
        return [s.url for s in self._stores]

    # ---- objects ------------------------------------------------------------------------

    def _seal(self, name: str, data: bytes) -> bytes:
        return self._crypto.seal(name, data) if self._crypto is not None else data

    def _unseal(self, name: str, data: bytes) -> bytes:
        return self._crypto.open(name, data) if self._crypto is not None else data

    def _chunk_id(self, payload: bytes, digest: str) -> str:
        return self._crypto.chunk_id(payload) if self._crypto is not None else digest

    def _get_object(self, store: ObjectStore, ref: ChunkRef) -> tuple[bytes, int]:
        """The payload of chunk ``ref`` in ``store`` checked against its SHA-256 and id,
        and the bytes read; ``ValueError``/:class:`BackupAuthError` saying what is wrong."""
        name = _chunk_name(ref.id)
        try:
            obj = store.get(name)
        except FileNotFoundError:
            raise ValueError("chunk is missing") from None
        if not obj:
            raise ValueError("chunk object is empty (zero length)")
        _, payload = decompress(self._unseal(name, obj), ref.raw)
        if len(payload) != ref.raw:
            raise ValueError(f"payload is {len(payload)} bytes, manifest says {ref.raw}")
        sha = hashlib.sha256(payload).hexdigest()
        if sha != ref.sha256:
            raise ValueError("SHA-256 of the payload does not match the manifest")
        if self._chunk_id(payload, sha) != ref.id:
            raise ValueError("chunk id does not match its content")
        return payload, len(obj)

    def _check_chunk(
        self, store: ObjectStore, ref: ChunkRef, digest_bits: int | None
    ) -> tuple[_Checked, int]:
        """Read, decode and check chunk ``ref``: SHA-256, id, block table, and the digest
        of every block recomputed from its decoded records with the backends' own
        :func:`~ringguard.backends.base.record_digests`. With ``digest_bits``, every key is
        also hashed (in batch) and must fall into its block's range."""
        payload, nread = self._get_object(store, ref)
        cols = decode_columns(payload)
        branges, bcounts = cols.ranges, cols.counts
        starts = cols.starts
        n = len(cols)
        hashes = cols.key_hashes() if n else np.zeros(0, dtype=np.uint64)
        if digest_bits is not None and n:
            fine = (hashes >> np.uint64(64 - digest_bits)) if digest_bits else np.zeros(
                n, dtype=np.uint64)
            if not (fine.astype(np.int64) == np.repeat(branges, bcounts)).all():
                raise ValueError("a key of the chunk does not hash into its block's range")
        rd = cols.record_digests()
        digests = (np.add.reduceat(rd, starts).astype(np.uint64)
                   if n else np.zeros(0, dtype=np.uint64))
        return _Checked(branges, bcounts, starts, digests, cols, hashes, rd), nread

    @staticmethod
    def _match_rows(
        m: Manifest, rows: np.ndarray, c: _Checked
    ) -> tuple[np.ndarray, list[str]]:
        """Which of the manifest's ``rows`` (indices into its range table) the checked
        chunk ``c`` holds exactly (count and digest); the block index of each, and a
        reason for every row it does not."""
        cols = m.columns
        want = cols["range"][rows].astype(np.int64)
        why = [""] * len(rows)
        if not len(c.ranges):
            return np.zeros(len(rows), dtype=np.int64), [
                "the chunk holds no block of this range"] * len(rows)
        pos = np.searchsorted(c.ranges, want)
        pos_c = np.minimum(pos, len(c.ranges) - 1)
        found = (pos < len(c.ranges)) & (c.ranges[pos_c] == want)
        cnt_ok = c.counts[pos_c] == cols["count"][rows]
        dig_ok = c.digests[pos_c] == cols["digest"][rows]
        for i in np.flatnonzero(~(found & cnt_ok & dig_ok)).tolist():
            if not found[i]:
                why[i] = "the chunk holds no block of this range"
            elif not cnt_ok[i]:
                why[i] = (f"the chunk holds {int(c.counts[pos_c[i]])} records of this range, "
                          f"the manifest says {int(cols['count'][rows[i]])}")
            else:
                why[i] = ("the range digest recomputed from the records does not match the "
                          "manifest")
        return pos_c, why

    def _load_manifest(self, store: ObjectStore, sid: str) -> Manifest:
        name = _snap_name(sid)
        try:
            data = store.get(name)
        except FileNotFoundError:
            raise BackupCorrupted(f"snapshot {sid}: manifest is missing in {store.url}",
                                  [{"snapshot": sid, "copy": store.url,
                                    "detail": "manifest missing"}]) from None
        return load_manifest(self._unseal(name, data), sid)

    def _snapshot_ids(self) -> list[str]:
        ids: set[str] = set()
        for s in self._stores:
            for name in s.list("snapshots"):
                m = _SNAP_NAME.match(name)
                if m:
                    ids.add(m.group(1))
        return sorted(ids)

    def manifest(self, snapshot: str) -> Manifest:
        """The manifest of ``snapshot``, from the first copy where it is intact.

        Raises
        ------
        BackupCorrupted
            When no copy holds an intact manifest (names what is wrong in each).
        """
        if not isinstance(snapshot, str) or not re.fullmatch(r"[0-9a-f]{32}", snapshot):
            raise ValueError(f"snapshot: {snapshot!r} is not a snapshot id")
        errors: list[BackupCorrupted] = []
        for s in self._stores:
            try:
                return self._load_manifest(s, snapshot)
            except BackupFormatError:
                raise
            except BackupCorrupted as exc:
                errors.append(exc)
        problems = [p for e in errors for p in e.problems]
        raise BackupCorrupted(
            f"snapshot {snapshot}: no intact manifest ({'; '.join(map(str, errors))})", problems
        )

    def _stamp(self, sid: str) -> tuple[int, float] | None:
        """Size and modification time of a manifest in the first copy (None if unknown)."""
        s = self._stores[0]
        try:
            return s.size(_snap_name(sid)), s.mtime(_snap_name(sid))
        except (FileNotFoundError, OSError):
            return None

    def _remember(self, m: Manifest) -> None:
        """Cache a committed manifest's summary and the few newest manifests themselves
        (the next backup's parent), valid while the object's size and mtime stay."""
        stamp = self._stamp(m.id)
        if stamp is None:
            return
        self._summaries[m.id] = _Summary(m.node, m.order,
                                         frozenset(c.id for c in m.chunks), stamp)
        self._recent[m.id] = m
        while len(self._recent) > 4:
            self._recent.popitem(last=False)

    def _cached(self, sid: str) -> _Summary | None:
        got = self._summaries.get(sid)
        if got is not None and got.stamp != self._stamp(sid):
            del self._summaries[sid]
            self._recent.pop(sid, None)
            return None
        return got

    def _summary(self, sid: str) -> _Summary | None:
        """Node, order and chunk ids of a snapshot, or None if it is damaged."""
        got = self._cached(sid)
        if got is None:
            try:
                m = self.manifest(sid)
            except BackupCorrupted:
                return None
            self._remember(m)
            return _Summary(m.node, m.order, frozenset(c.id for c in m.chunks), None)
        return got

    def snapshots(self, node: str | None = None) -> list[Manifest]:
        """Committed snapshots (intact manifests), oldest first by (epoch, seq) watermark."""
        out = []
        for sid in self._snapshot_ids():
            try:
                m = self.manifest(sid)
            except BackupCorrupted:
                continue
            if node is None or m.node == node:
                out.append(m)
        return sorted(out, key=lambda m: m.order)

    @contextlib.contextmanager
    def _locked(self, shared: bool) -> Iterator[RepositoryLock]:
        """Backups (``shared``) register a marker; prune takes the exclusive lock and
        waits for the markers to go (see :mod:`ringguard.backup.lock`)."""
        lk = RepositoryLock(self._stores, self.lock_timeout_s, self.lock_lease_s)
        if shared:
            lk.acquire_shared()
        else:
            lk.acquire_exclusive()
        try:
            yield lk
        finally:
            lk.release()

    # ---- backup -------------------------------------------------------------------------

    def backup(
        self,
        source: Any,
        node: str | None = None,
        *,
        placement: Any = None,
        full: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> Any:
        """Snapshot one backend, or every node of a :class:`~ringguard.ReplicatedStore`.

        Parameters
        ----------
        source
            A :class:`~ringguard.backends.Backend` or a ``ReplicatedStore``.
        node
            The node name recorded in the manifest (default: the backend's ``name``). For a
            store, only that node is backed up when given.
        placement
            The placement to record (a store's own placement by default).
        full
            Read every range even when a parent snapshot of the node exists (by default
            a backup is incremental: it reads only the ranges whose record count or
            digest differs from the parent's, and names the parent's chunks for the
            rest). A full backup also writes range-group chunks again, which lets a
            later prune free chunks that incremental ones only partly use.
        progress
            Called as ``progress(done, total)`` with the records read so far out of the
            records the node holds in the ranges to read, once before the first read and
            after each batch (per node for a store). It does not change the snapshot.

        Returns
        -------
        str or list of str
            The snapshot id; for a store without ``node``, one id per node.
        """
        from ..failover.store import ReplicatedStore

        _check_progress(progress)
        self.last_backup = []
        if isinstance(source, ReplicatedStore):
            pl = source.cluster.placement.to_json() if placement is None else placement.to_json()
            names = list(source.cluster.nodes)
            if node is not None:
                if node not in names:
                    raise ValueError(f"node: {node!r} is not in the store's cluster")
                return self._backup_one(source.backends[names.index(node)], node, pl, full,
                                        progress)
            return [self._backup_one(b, n, pl, full, progress)
                    for n, b in zip(names, source.backends, strict=True)]
        if not isinstance(source, Backend):
            raise TypeError("source: expected a Backend or a ReplicatedStore")
        name = node if node is not None else source.name
        if not isinstance(name, str) or not name:
            raise ValueError("node: expected a non-empty name")
        return self._backup_one(source, name, None if placement is None else placement.to_json(),
                                full, progress)

    def _backup_one(
        self, backend: Backend, node: str, placement: str | None, full: bool,
        progress: Callable[[int, int], None] | None = None,
    ) -> str:
        t0 = time.monotonic()
        fresh: list[list[str]] = [[] for _ in self._stores]
        with self._locked(shared=True) as lk:
            # Listed under the lock: a prune cannot forget or sweep what this backup reuses.
            # Dedup only against chunks a committed manifest names: those were made durable
            # before their manifest. A chunk file left by a crashed backup is rewritten.
            known: set[str] = set()
            newest: tuple[tuple[int, int, float], str] | None = None
            for sid_ in self._snapshot_ids():
                summary = self._summary(sid_)
                if summary is None:
                    continue
                known |= summary.chunks
                if summary.node == node and (newest is None or summary.order > newest[0]):
                    newest = (summary.order, sid_)
            parent = None
            if newest is not None:
                cached = self._cached(newest[1])
                parent = self._recent.get(newest[1]) if cached is not None else None
                if parent is None:
                    parent = self.manifest(newest[1])
            base = parent if parent is not None and not full and self._can_extend(parent) \
                else None
            res = self._backup_pass(backend, base, known, fresh, lk, progress,
                                    prev_bits=parent.range_bits if parent else None)
            sid = uuid.uuid4().hex
            m = Manifest(
                id=sid, node=node, created=time.time(), placement=placement,
                range_bits=res.range_bits, parent=parent.id if parent else None,
                watermark=res.watermark, fuzzy=bool(res.fuzzy_ranges), records=res.records,
                chunks=tuple(res.chunks), columns=res.columns, digest_bits=res.digest_bits,
                fuzzy_ranges=tuple(res.fuzzy_ranges), hash_function=KEY_HASH,
                hash_seed=KEY_HASH_SEED,
            )
            doc = dump_manifest(m, version=self.format_version, codec=self.codec)
            for s, names in zip(self._stores, fresh, strict=True):
                s.flush(names)  # every chunk durable before the manifest names it
            lk.check()  # still registered: no prune can have swept what this one names
            for s in self._stores:  # the commit point, one complete object per copy
                s.put(_snap_name(sid), self._seal(_snap_name(sid), doc))
            self._remember(m)
        self.last_backup.append(BackupReport(
            sid, node, res.records, len(m.columns["range"]), res.written, res.reused,
            res.nbytes, m.raw_bytes, m.fuzzy, time.monotonic() - t0,
            ranges_read=res.ranges_read, records_read=res.records_read,
            fuzzy_ranges=list(res.fuzzy_ranges), parent=base.id if base else None,
            peak_records=res.peak_records))
        return sid

    def _can_extend(self, parent: Manifest) -> bool:
        """An incremental backup reuses ``parent``'s rows only under the same hashing."""
        return (parent.hash_seed == KEY_HASH_SEED and parent.hash_function == KEY_HASH
                and (self.range_bits is None or parent.range_bits == self.range_bits)
                and parent.digest_bits == min(self.digest_bits, DIGEST_BITS))

    def _group_bits(self, records: int, bits: int, prev: int | None) -> int:
        """``range_bits`` of a full backup of a node holding ``records`` records at
        digest resolution ``bits`` (``prev``: the node's previous snapshot's)."""
        if self.range_bits is not None:
            return self.range_bits
        want = max(0, records - 1) // max(1, self.group_records)
        g = min(bits, want.bit_length())  # smallest g with records / 2**g <= group_records
        if prev is not None and prev <= bits and abs(prev - g) <= 1:
            return prev  # same grouping as last time: unchanged groups deduplicate
        return g

    def _backup_pass(
        self, backend: Backend, parent: Manifest | None, known: set[str],
        fresh: list[list[str]], lk: RepositoryLock,
        progress: Callable[[int, int], None] | None = None, prev_bits: int | None = None,
    ) -> _Pass:
        """Read the ranges that differ from ``parent`` (all of them without one), write
        their chunks, reuse the parent's rows for the rest; flag ranges that changed."""
        bits = parent.digest_bits if parent is not None else min(self.digest_bits, DIGEST_BITS)
        nr = 1 << bits
        c0, d0 = backend.range_digests(bits)
        if parent is None:
            read = np.ones(nr, dtype=bool)
            reused = empty_columns()
            reused_chunks: list[ChunkRef] = []
        else:
            pc = np.zeros(nr, dtype=np.uint64)
            pd = np.zeros(nr, dtype=np.uint64)
            pr = parent.columns["range"].astype(np.int64)
            pc[pr] = parent.columns["count"]
            pd[pr] = parent.columns["digest"]
            read = (pc != c0) | (pd != d0)
            keep = ~read[pr]
            reused = {k: v[keep] for k, v in parent.columns.items()}
            used = np.unique(reused["chunk"])
            remap = np.zeros(len(parent.chunks), dtype=np.int64)
            remap[used] = np.arange(len(used))
            reused["chunk"] = remap[reused["chunk"]].astype("<u4")
            reused_chunks = [parent.chunks[int(k)] for k in used]
        to_read = int(c0[read].sum(dtype=np.uint64))
        res = _Pass(digest_bits=bits, range_bits=parent.range_bits if parent is not None
                    else self._group_bits(to_read, bits, prev_bits))
        if progress is not None:
            progress(0, to_read)

        def write(payload: bytes, sha: str) -> str:
            cid = self._chunk_id(payload, sha)
            w = self._put_chunk(cid, payload, cid in known, fresh)
            res.written += w > 0
            res.reused += w == 0
            res.nbytes += w
            lk.refresh()
            return cid

        packer = ChunkPacker(bits, res.range_bits, self.chunk_target_bytes,
                             by_group=parent is None, write=write)
        packer.chunks.extend(reused_chunks)
        res.reused += len(reused_chunks)  # the parent's chunks this snapshot refers to again
        shift = 64 - bits
        # Scanned batches are gathered across scan_range calls (an incremental backup makes
        # thousands of small ones) and checked, hashed and packed together.
        # (batch, lo range, hi range): ints for one scan_range call, else one per record
        pend: list[tuple[Records, Any, Any]] = []
        npend = 0

        def flush() -> None:
            nonlocal npend
            if not pend:
                return
            if len(pend) > 1:  # chained in C: no Python step per record
                keys = list(itertools.chain.from_iterable(b.keys for b, _, _ in pend))
                vals = list(itertools.chain.from_iterable(b.values for b, _, _ in pend))
            else:
                keys, vals = pend[0][0].keys, pend[0][0].values
            eps = np.concatenate([np.asarray(b.epochs, dtype=np.int64) for b, _, _ in pend])
            sqs = np.concatenate([np.asarray(b.seqs, dtype=np.int64) for b, _, _ in pend])
            h = key_hashes(keys)
            fine = (h >> np.uint64(shift)).astype(np.int64) if bits else np.zeros(
                len(h), dtype=np.int64)
            lo_r = np.concatenate([np.broadcast_to(np.asarray(a, dtype=np.int64), (len(b),))
                                   for b, a, _ in pend])
            hi_r = np.concatenate([np.broadcast_to(np.asarray(z, dtype=np.int64), (len(b),))
                                   for b, _, z in pend])
            # Runs are disjoint and ascending: each scan's records are in its interval and
            # in key-hash order exactly when all of them are in order and in their interval.
            bad = (fine < lo_r) | (fine >= hi_r)
            bad[1:] |= h[1:] < h[:-1]
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise BackupError(
                    f"{backend.name}: scan_range({int(lo_r[i]) << shift}, "
                    f"{int(hi_r[i]) << shift}) returned records out of key-hash order or "
                    "outside the range")
            res.records_read += len(keys)
            recs = Records(keys, vals, eps, sqs)
            wanted = read[fine]
            if not wanted.all():  # short gaps of unchanged ranges read along
                keep_idx = np.flatnonzero(wanted)
                recs, fine = recs.take(keep_idx), fine[keep_idx]
            pend.clear()
            npend = 0
            packer.add(recs, fine)
            if progress is not None:
                progress(min(res.records_read, to_read), to_read)

        many = getattr(backend, "scan_ranges", None)
        # Reading across short gaps saves scan_range calls; scan_ranges takes every
        # interval in one call, so there it would only read records to drop them.
        runs = _runs(read, c0, 0 if many is not None else self.scan_gap_records)
        if many is not None and len(runs) > 1:
            # One call for every interval (an optional backend method; see
            # MemoryBackend.scan_ranges): no per-interval call cost.
            r_lo = np.array([a for a, _ in runs], dtype=np.int64)
            r_hi = np.array([z for _, z in runs], dtype=np.int64)
            for batch, which in many([(a << shift, z << shift) for a, z in runs],
                                     self.scan_batch_size):
                if not len(batch):
                    continue
                w = np.asarray(which, dtype=np.int64)
                if len(w) != len(batch) or (len(w) and (w.min() < 0 or w.max() >= len(runs))):
                    raise BackupError(f"{backend.name}: scan_ranges returned bad interval ids")
                pend.append((batch, r_lo[w], r_hi[w]))
                npend += len(batch)
                if npend >= self.scan_batch_size:
                    flush()
            runs = []
        for lo_r, hi_r in runs:
            lo = lo_r << shift
            hi = hi_r << shift
            for batch in backend.scan_range(lo, hi, self.scan_batch_size):
                if not len(batch):
                    continue
                pend.append((batch, lo_r, hi_r))
                npend += len(batch)
                if npend >= self.scan_batch_size:
                    flush()
            if npend >= self.scan_batch_size // 4:
                flush()
                packer.end_run()
        flush()
        packer.finish()
        res.peak_records = packer.peak_records
        res.ranges_read = int(read.sum())
        res.chunks = packer.chunks
        res.columns = concat_rows([reused, *packer.rows])
        c1, d1 = backend.range_digests(bits)
        # Consistent = the snapshot equals the node's digests before and after it.
        sc = np.zeros(nr, dtype=np.uint64)
        sd = np.zeros(nr, dtype=np.uint64)
        r = res.columns["range"].astype(np.int64)
        sc[r] = res.columns["count"]
        sd[r] = res.columns["digest"]
        res.fuzzy_ranges = np.flatnonzero(
            (sc != c0) | (sd != d0) | (sc != c1) | (sd != d1)).tolist()
        res.records = int(res.columns["count"].sum(dtype=np.int64))
        if res.records:
            e = res.columns["epoch"]
            top = int(e.max())
            res.watermark = (top, int(res.columns["seq"][e == top].max()))
        return res

    def _put_chunk(
        self, cid: str, payload: bytes, known: bool, fresh: list[list[str]]
    ) -> int:
        """Store a chunk in every copy that lacks it; bytes written (0: deduplicated)."""
        name = _chunk_name(cid)
        obj: bytes | None = None
        written = 0
        for s, names in zip(self._stores, fresh, strict=True):
            if known and s.exists(name):
                continue
            if obj is None:
                obj = compress(payload, self.codec)
            sealed = self._seal(name, obj)
            s.put(name, sealed, sync=False)
            names.append(name)
            written += len(sealed)
        return written

    # ---- verify -------------------------------------------------------------------------

    def verify(
        self, snapshot: str | None = None, read_data: bool = True, *,
        progress: Callable[[int, int], None] | None = None,
    ) -> VerifyReport:
        """Check snapshots (all, or one) in every copy; report what is damaged.

        With ``read_data`` every chunk is read back, decrypted, decompressed and checked
        against its SHA-256 and id; its records are decoded, every key is hashed into its
        range, and each range's record count and digest are recomputed (with the backends'
        own record digest) and compared with the manifest. Without ``read_data``, only
        that every chunk exists and is not empty. ``progress(done, total)`` is called
        with the snapshots checked so far out of snapshots x copies, once before the
        first and after each.

        Examples
        --------
        >>> report = repo.verify()  # doctest: +SKIP
        >>> report.ok, [str(p) for p in report.problems]  # doctest: +SKIP
        """
        t0 = time.monotonic()
        _check_progress(progress)
        rep = VerifyReport()
        ids = self._snapshot_ids() if snapshot is None else [snapshot]
        total = len(ids) * len(self._stores)
        done = 0
        if progress is not None:
            progress(0, total)
        for s in self._stores:
            checked: dict[tuple[str, int | None], _Checked | str] = {}
            for sid in ids:
                if progress is not None and done:
                    progress(done, total)
                done += 1
                try:
                    m = self._load_manifest(s, sid)
                except (BackupCorrupted, BackupFormatError) as exc:
                    rep.problems.append(Problem("manifest", str(exc), snapshot=sid, copy=s.url))
                    continue
                rep.snapshots += 1
                bits = m.digest_bits if m.hash_seed == KEY_HASH_SEED else None
                for k, rows in _rows_by_chunk(m):
                    ref = m.chunks[k]
                    key = (ref.id, bits)
                    if key not in checked:
                        checked[key] = self._verify_chunk(s, ref, bits, read_data, rep)
                    got = checked[key]
                    ranges = tuple(m.columns["range"][rows].tolist())
                    if isinstance(got, str):
                        rep.problems.append(Problem(
                            "missing" if "missing" in got else "chunk", got, snapshot=sid,
                            node=m.node, range=ranges[0], chunk=ref.id, copy=s.url,
                            ranges=ranges))
                        continue
                    if not read_data:
                        continue
                    _, why = self._match_rows(m, rows, got)
                    for r, w in zip(ranges, why, strict=True):
                        if w:
                            rep.problems.append(Problem(
                                "range", w, snapshot=sid, node=m.node, range=r, chunk=ref.id,
                                copy=s.url, ranges=(r,)))
        if progress is not None and total:
            progress(total, total)
        rep.seconds = time.monotonic() - t0
        if snapshot is None and read_data:  # a full check: remember which copies count
            bad = {p.copy for p in rep.problems}
            self._verified = {s.url: s.url not in bad for s in self._stores}
        return rep

    def _verify_chunk(
        self, s: ObjectStore, ref: ChunkRef, bits: int | None, read_data: bool,
        rep: VerifyReport,
    ) -> _Checked | str:
        rep.chunks += 1
        if not read_data:
            try:
                return _NOT_READ if s.size(_chunk_name(ref.id)) > 0 else "chunk object is empty"
            except FileNotFoundError:
                return "chunk is missing"
        try:
            c, nread = self._check_chunk(s, ref, bits)
        except (ValueError, BackupAuthError) as exc:
            return str(exc)
        rep.bytes_read += nread
        # Keep only the block figures: the records are not needed again.
        return _Checked(c.ranges, c.counts, c.starts, c.digests)

    # ---- restore ------------------------------------------------------------------------

    def _read_chunk(
        self, m: Manifest, k: int, rows: np.ndarray
    ) -> tuple[Records | None, np.ndarray, list[str]]:
        """The records of ``rows`` (all in chunk ``k`` of ``m``) from the first copy where
        they verify, a mask of the rows that did, and what is wrong in each copy."""
        bits = m.digest_bits if m.hash_seed == KEY_HASH_SEED else None
        errs: list[str] = []
        best: tuple[Records | None, np.ndarray] = (None, np.zeros(len(rows), dtype=bool))
        for s in self._stores:
            try:
                c, _ = self._check_chunk(s, m.chunks[k], bits)
            except (ValueError, BackupAuthError) as exc:
                errs.append(f"{s.url}: {exc}")
                continue
            pos, why = self._match_rows(m, rows, c)
            ok = np.array([not w for w in why], dtype=bool)
            if ok.sum() > best[1].sum():
                best = (c.records(_block_rows(c.starts, c.counts, np.asarray(pos)[ok])), ok)
            errs += [f"{s.url}: range {int(m.columns['range'][rows[i]])}: {w}"
                     for i, w in enumerate(why) if w]
            if ok.all():
                return best[0], best[1], []
        return best[0], best[1], errs

    def restore(
        self,
        snapshot: str | Sequence[str],
        target: Any,
        *,
        allow_partial: bool = False,
        rehash: bool = False,
        memory_limit_bytes: int = 512 * 1024 * 1024,
        progress: Callable[[int, int], None] | None = None,
    ) -> RestoreReport:
        """Write the records of a snapshot (or several) into ``target``, verified first.

        Parameters
        ----------
        snapshot
            A snapshot id, or a list of ids (e.g. the newest of every node).
        target
            A :class:`~ringguard.backends.Backend` (every record goes to it), or a
            ``ReplicatedStore``: each record is routed through the store's placement to
            all its replicas, so the target may have other members than the source.
        allow_partial
            Restore the intact ranges of a damaged snapshot and list the rest in
            ``missing`` (default: a damaged snapshot raises and writes nothing).
        rehash
            Restore into a placement of another hash function (or from keys hashed with
            another seed) anyway.
        memory_limit_bytes
            Verified chunk payloads are kept in memory between the verification pass and
            the writes up to this size; above it each range is read and verified a second
            time right before it is written.
        progress
            Called as ``progress(done, total)`` in records, ``total`` twice the records of
            the snapshots: the first half counts records verified (before anything is
            written), the second records written. Once before the first chunk, then
            after each chunk verified and each batch written.

        Records keep their original versions, so restoring over newer data never
        overwrites it (last-writer-wins).

        Raises
        ------
        BackupCorrupted
            When a range is damaged in every copy (and ``allow_partial`` is false);
            nothing has been written then.
        """
        from ..failover.store import ReplicatedStore

        t0 = time.monotonic()
        _check_progress(progress)
        ids = [snapshot] if isinstance(snapshot, str) else list(snapshot)
        manifests = [self.manifest(sid) for sid in ids]
        if isinstance(target, ReplicatedStore):
            self._check_placement(manifests, target, rehash)
        elif not isinstance(target, Backend):
            raise TypeError("target: expected a Backend or a ReplicatedStore")
        for m in manifests:
            if m.hash_seed != KEY_HASH_SEED and not rehash:
                raise BackupFormatError(
                    f"snapshot {m.id}: keys were hashed with seed {m.hash_seed}; this "
                    f"ringguard uses {KEY_HASH_SEED}; pass rehash=True to restore anyway"
                )
        # Pass 1 verifies everything before anything is written. Verified records are
        # kept when they fit in memory_limit_bytes; otherwise pass 2 reads and verifies
        # each chunk again just before writing it.
        keep = sum(m.raw_bytes for m in manifests) <= memory_limit_bytes
        good: list[tuple[Manifest, int, np.ndarray, Records | None]] = []
        problems: list[Problem] = []
        total = 2 * sum(m.records for m in manifests)
        done = 0
        if progress is not None:
            progress(0, total)
        for m in manifests:
            for k, rows in _rows_by_chunk(m):
                recs, ok, errs = self._read_chunk(m, k, rows)
                if progress is not None:
                    done += int(m.columns["count"][rows].sum(dtype=np.int64))
                    progress(min(done, total), total)
                if not ok.all():
                    bad = tuple(m.columns["range"][rows[~ok]].tolist())
                    problems.append(Problem("chunk", "; ".join(errs), snapshot=m.id,
                                            node=m.node, range=bad[0], chunk=m.chunks[k].id,
                                            ranges=bad))
                if ok.any():
                    good.append((m, k, rows[ok], recs if keep else None))
        if problems and not allow_partial:
            nbad = sum(len(p.ranges) for p in problems)
            raise BackupCorrupted(
                f"{nbad} damaged range(s) in {len(problems)} chunk(s); nothing was restored. "
                f"First: {problems[0]}", [p.as_dict() for p in problems])
        written = nranges = 0
        pend: list[Records] = []  # verified records, written in batches of write_batch_records
        npend = 0

        def flush() -> None:
            nonlocal npend, done
            if not pend:
                return
            recs = _concat_records(pend)
            pend.clear()
            npend = 0
            if isinstance(target, ReplicatedStore):
                self._route_write(target, recs)
            else:
                target.write(recs)
            if progress is not None:
                done += len(recs)
                progress(min(done, total), total)

        for i, (m, k, rows, kept) in enumerate(good):
            recs = kept
            if recs is None:
                recs, ok, errs = self._read_chunk(m, k, rows)
                if recs is None or not ok.all():
                    flush()  # the chunks before it were verified: they are written
                    raise BackupCorrupted(
                        f"snapshot {m.id} chunk {m.chunks[k].id} changed during the restore "
                        f"after {i} of {len(good)} chunks were written: {'; '.join(errs)}",
                        [{"snapshot": m.id, "node": m.node, "chunk": m.chunks[k].id,
                          "range": int(m.columns["range"][rows[0]]),
                          "detail": "changed during restore"}])
            pend.append(recs)
            npend += len(recs)
            if npend >= self.write_batch_records:
                flush()
            written += len(recs)
            nranges += len(rows)
        flush()
        return RestoreReport(ids, written, nranges, problems, time.monotonic() - t0)

    @staticmethod
    def _check_placement(manifests: list[Manifest], store: Any, rehash: bool) -> None:
        from ..placement import from_json

        new = store.cluster.placement
        for m in manifests:
            if m.placement is None:
                continue
            old = from_json(m.placement)
            if getattr(old, "algorithm", None) != getattr(new, "algorithm", None) and not rehash:
                raise ValueError(
                    f"target: snapshot {m.id} was taken under placement "
                    f"{getattr(old, 'algorithm', '?')}, the target uses "
                    f"{getattr(new, 'algorithm', '?')} (another hash function); pass "
                    "rehash=True to re-route anyway"
                )

    @staticmethod
    def _route_write(store: Any, recs: Records) -> None:
        cluster = store.cluster
        view = cluster.view
        prefs = np.asarray(cluster.placement.replicas(recs.keys, cluster.replication))
        for j in range(prefs.shape[1]):
            col = prefs[:, j]
            order = np.argsort(col, kind="stable")
            bounds = np.flatnonzero(np.diff(col[order])) + 1
            for idx in np.split(order, bounds):
                node = int(col[idx[0]])
                batch = recs.take(idx)
                if view.acting[node]:
                    try:
                        store.backends[node].write(batch)
                        continue
                    except BackendError as exc:
                        cluster.mark_down(view.nodes[node], reason=f"restore write: {exc}")
                store.hints.append(view.nodes[node], batch)

    def restore_node(
        self, store: Any, node: str, *, allow_partial: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> RestoreReport:
        """Rebuild a lost node: its newest intact snapshot, then ``store.recover(node)``
        brings it up to date from the surviving replicas and the hints. ``progress`` is
        passed to :meth:`restore` (the snapshot part).

        Raises
        ------
        BackupError
            When the repository holds no snapshot of ``node``.
        BackupCorrupted
            When the newest snapshot is damaged in every copy (nothing written).
        """
        names = list(store.cluster.nodes)
        if node not in names:
            raise ValueError(f"node: {node!r} is not in the store's cluster")
        snaps = self.snapshots(node)
        if not snaps:
            raise BackupError(f"no snapshot of node {node!r} in {self.urls[0]}")
        rep = self.restore(snaps[-1].id, store.backends[names.index(node)],
                           allow_partial=allow_partial, progress=progress)
        rep.recovery = store.recover(node)
        return rep

    # ---- copies -------------------------------------------------------------------------

    def repair(self) -> RepairReport:
        """Rewrite every damaged or missing manifest and chunk of a copy from a copy where
        it verifies."""
        repaired: list[Problem] = []
        lost: list[Problem] = []
        seen: set[str] = set()
        with self._locked(shared=True):
            for sid in self._snapshot_ids():
                try:
                    m = self.manifest(sid)
                except BackupCorrupted as exc:
                    lost.append(Problem("manifest", str(exc), snapshot=sid))
                    continue
                name = _snap_name(sid)
                good = None
                for s in self._stores:
                    try:
                        self._load_manifest(s, sid)
                        good = s.get(name)
                        break
                    except BackupCorrupted:
                        continue
                for s in self._stores:
                    try:
                        self._load_manifest(s, sid)
                    except BackupCorrupted as exc:
                        assert good is not None
                        s.put(name, good)
                        repaired.append(Problem("manifest", str(exc), snapshot=sid, copy=s.url))
                for k, rows in _rows_by_chunk(m):
                    if m.chunks[k].id not in seen:
                        seen.add(m.chunks[k].id)
                        self._repair_chunk(m, k, rows, repaired, lost)
        return RepairReport(repaired, lost)

    def _repair_chunk(
        self, m: Manifest, k: int, rows: np.ndarray, repaired: list[Problem],
        lost: list[Problem],
    ) -> None:
        ref = m.chunks[k]
        name = _chunk_name(ref.id)
        ranges = tuple(m.columns["range"][rows].tolist())
        bad: list[tuple[ObjectStore, str]] = []
        good: bytes | None = None
        for s in self._stores:
            try:
                self._get_object(s, ref)  # SHA-256 and id: the object is what was stored
                if good is None:
                    good = s.get(name)
            except (ValueError, BackupAuthError) as exc:
                bad.append((s, str(exc)))
        for s, why in bad:
            p = Problem("chunk", why, snapshot=m.id, node=m.node, range=ranges[0],
                        chunk=ref.id, copy=s.url, ranges=ranges)
            if good is None:
                lost.append(p)
                continue
            s.put(name, good)
            repaired.append(p)

    def stats(self) -> Stats:
        """Logical, unique and stored sizes, compression and dedup (see :class:`Stats`).

        ``verified_copies`` counts the copies found intact by this object's last full
        :meth:`verify` (``None`` before one): a copy counts toward the backup capacity
        only once verified.
        """
        snaps = self.snapshots()
        unique: dict[str, int] = {}
        logical = 0
        for m in snaps:
            logical += m.raw_bytes
            for c in m.chunks:
                unique[c.id] = c.raw
        sizes = []
        for s in self._stores:
            total = 0
            for name in s.list("chunks") + s.list("snapshots"):
                with contextlib.suppress(FileNotFoundError):
                    total += s.size(name)
            sizes.append(total)
        verified = sum(self._verified.values()) if self._verified else None
        return Stats(len(snaps), len(unique), len(self._stores), logical,
                     sum(unique.values()), sizes[0], sum(sizes), verified)

    # ---- prune --------------------------------------------------------------------------

    def prune(
        self,
        keep_last: int | None = None,
        *,
        keep_daily: int | None = None,
        keep_weekly: int | None = None,
        grace_s: float = 3600.0,
    ) -> list[str]:
        """Forget old snapshots of each node, then delete the chunks no remaining manifest
        references.

        Kept: the ``keep_last`` newest snapshots, plus the newest snapshot of each of the
        ``keep_daily`` most recent days and ``keep_weekly`` most recent ISO weeks that have
        one (days and weeks in UTC, by creation time). Newest always means the greatest
        (epoch, seq) watermark, not wall-clock time. If any manifest cannot be read, no
        chunk is deleted.

        Runs under the exclusive repository lock, on local paths and fsspec URLs alike
        (:mod:`ringguard.backup.lock`): it waits up to ``lock_timeout_s`` for running
        backups to finish (then raises :class:`BackupLocked`, having deleted nothing), and
        backups that start meanwhile wait for it. So a concurrent backup never loses a
        chunk it uploaded or reuses. As a second line of defence an unreferenced chunk
        modified less than ``grace_s`` before the prune started is kept.

        Returns
        -------
        list of str
            The forgotten snapshot ids.

        Examples
        --------
        >>> repo.prune(keep_last=3, keep_daily=7, keep_weekly=4)  # doctest: +SKIP
        """
        rules = {"keep_last": keep_last, "keep_daily": keep_daily, "keep_weekly": keep_weekly}
        for name, v in rules.items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name}: expected an int >= 1 or None")
        if all(v is None for v in rules.values()):
            raise ValueError("prune: give keep_last, keep_daily or keep_weekly")
        forgotten: list[str] = []
        start = time.time()
        with self._locked(shared=False) as lk:
            by_node: dict[str, list[Manifest]] = {}
            damaged = False
            for sid in self._snapshot_ids():
                try:
                    m = self.manifest(sid)
                except BackupCorrupted:
                    damaged = True
                    continue
                by_node.setdefault(m.node, []).append(m)
            keep: set[str] = set()
            for ms in by_node.values():
                kept = _retained(ms, keep_last, keep_daily, keep_weekly)
                for m in ms:
                    if m.id in kept:
                        keep.update(c.id for c in m.chunks)
                    else:
                        forgotten.append(m.id)
            for sid in forgotten:
                for s in self._stores:
                    s.delete(_snap_name(sid))
            if damaged:
                return forgotten
            for s in self._stores:
                for name in s.list("chunks"):
                    mm = _CHUNK_NAME.match(name)
                    if mm is None or mm.group(1) in keep:
                        continue
                    lk.refresh()
                    with contextlib.suppress(FileNotFoundError):
                        if start - s.mtime(name) >= grace_s:
                            s.delete(name)
        return forgotten

    def __repr__(self) -> str:
        return f"BackupRepository({self.urls!r}, encrypted={self.encrypted})"


def _retained(
    ms: list[Manifest], last: int | None, daily: int | None, weekly: int | None
) -> set[str]:
    """Ids a prune keeps among one node's snapshots (see :meth:`BackupRepository.prune`)."""
    newest_first = sorted(ms, key=lambda m: m.order, reverse=True)
    kept = {m.id for m in newest_first[: last or 0]}
    for n, bucket in ((daily, "%Y-%m-%d"), (weekly, "%G-W%V")):
        if not n:
            continue
        seen: set[str] = set()
        for m in newest_first:
            b = time.strftime(bucket, time.gmtime(m.created))
            if b not in seen and len(seen) < n:
                seen.add(b)
                kept.add(m.id)
    return kept
