"""Verified, incremental backups of node backends (see ``docs``/README "Backup").

Layout of a repository (the same in every copy)::

    config                          versioned JSON (format, id, encryption parameters)
    chunks/<2 hex>/<64 hex>         one stored object per distinct range content
    snapshots/<32 hex>.json         one manifest per committed snapshot
    locks/repository                flock: backups shared, prune exclusive (local paths)

A snapshot groups a node's records by fixed ranges of the key-hash space (the top
``range_bits`` bits of XXH64 of the key, computed in batch by the placement core). Each
range becomes one content-addressed chunk, so a range that did not change produces the
same chunk id and is not uploaded again. The manifest is written after every chunk and is
the commit point.
"""

from __future__ import annotations

import contextlib
import hashlib
import operator
import os
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backends.base import Backend, BackendError, Records
from ..placement.hashing import KEY_HASH, KEY_HASH_SEED, key_hashes, key_hashes_buffer
from .codec import (
    CODECS,
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    Crypto,
    compress,
    decode_chunk,
    decompress,
    default_codec,
    encode_chunk,
    key_offsets,
    payload_header,
)
from .errors import BackupAuthError, BackupCorrupted, BackupError, BackupFormatError
from .lock import LEASE_S, RepositoryLock
from .manifest import (
    MAX_RANGE_BITS,
    Manifest,
    RangeEntry,
    dump_manifest,
    load_config,
    load_manifest,
    new_config,
)
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


def _chunk_name(cid: str) -> str:
    return f"chunks/{cid[:2]}/{cid}"


def _snap_name(sid: str) -> str:
    return f"snapshots/{sid}.json"


@dataclass(frozen=True)
class Problem:
    """One damaged or missing object, and where it is."""

    kind: str  # "manifest", "chunk", "missing"
    detail: str
    snapshot: str | None = None
    node: str | None = None
    range: int | None = None
    chunk: str | None = None
    copy: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "snapshot": self.snapshot,
                "node": self.node, "range": self.range, "chunk": self.chunk, "copy": self.copy}

    def __str__(self) -> str:
        where = ", ".join(
            f"{k}={v}" for k, v in self.as_dict().items() if v is not None and k != "detail"
        )
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
    """What the last :meth:`BackupRepository.backup` of one node did."""

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

    entries: list[RangeEntry] = field(default_factory=list)
    records: int = 0
    watermark: tuple[int, int] | None = None
    fuzzy: bool = False
    written: int = 0
    reused: int = 0
    nbytes: int = 0


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
        The key-hash space is cut into ``2**range_bits`` ranges, one chunk each.
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
        range_bits: int = 10,
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
        if isinstance(range_bits, bool) or not isinstance(range_bits, int) or not (
            0 <= range_bits <= MAX_RANGE_BITS
        ):
            raise ValueError(f"range_bits: expected an int in 0..{MAX_RANGE_BITS}")
        if codec is not None and (type(codec) is not int or codec not in CODECS):
            raise ValueError(f"codec: expected one of {sorted(CODECS)} ({CODECS}) or None")
        self.range_bits = range_bits
        self.codec = default_codec() if codec is None else codec
        self.lock_timeout_s = lock_timeout_s
        self.lock_lease_s = lock_lease_s
        self._stores: list[ObjectStore] = [open_store(u) for u in urls]
        self.last_backup: list[BackupReport] = []
        self._crypto: Crypto | None = None
        self._verified: dict[str, bool] = {}
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

    def _check_chunk(
        self, store: ObjectStore, e: RangeEntry, range_bits: int | None
    ) -> tuple[bytes, int]:
        """The verified payload of range ``e`` in ``store`` and the bytes read, or
        ``ValueError``/:class:`BackupAuthError` saying what is wrong. With ``range_bits``,
        every key is also hashed (in batch) and must fall into range ``e.range``."""
        name = _chunk_name(e.chunk)
        try:
            obj = store.get(name)
        except FileNotFoundError:
            raise ValueError("chunk is missing") from None
        if not obj:
            raise ValueError("chunk object is empty (zero length)")
        _, payload = decompress(self._unseal(name, obj), e.raw)
        if len(payload) != e.raw:
            raise ValueError(f"payload is {len(payload)} bytes, manifest says {e.raw}")
        digest = hashlib.sha256(payload).hexdigest()
        if digest != e.digest:
            raise ValueError("SHA-256 of the payload does not match the manifest digest")
        if self._chunk_id(payload, digest) != e.chunk:
            raise ValueError("chunk id does not match its content")
        count, rid = payload_header(payload)
        if count != e.count or rid != e.range:
            raise ValueError(
                f"chunk holds {count} records of range {rid}, manifest says {e.count} of "
                f"range {e.range}"
            )
        if range_bits and count:
            data, offsets = key_offsets(payload)
            h = key_hashes_buffer(data, offsets) >> np.uint64(64 - range_bits)
            if not (h == np.uint64(e.range)).all():
                raise ValueError("a key of the chunk does not hash into the chunk's range")
        return payload, len(obj)

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

        Returns
        -------
        str or list of str
            The snapshot id; for a store without ``node``, one id per node.
        """
        from ..failover.store import ReplicatedStore

        self.last_backup = []
        if isinstance(source, ReplicatedStore):
            pl = source.cluster.placement.to_json() if placement is None else placement.to_json()
            names = list(source.cluster.nodes)
            if node is not None:
                if node not in names:
                    raise ValueError(f"node: {node!r} is not in the store's cluster")
                return self._backup_one(source.backends[names.index(node)], node, pl)
            return [self._backup_one(b, n, pl) for n, b in zip(names, source.backends,
                                                              strict=True)]
        if not isinstance(source, Backend):
            raise TypeError("source: expected a Backend or a ReplicatedStore")
        name = node if node is not None else source.name
        if not isinstance(name, str) or not name:
            raise ValueError("node: expected a non-empty name")
        return self._backup_one(source, name, None if placement is None else placement.to_json())

    def _backup_one(self, backend: Backend, node: str, placement: str | None) -> str:
        t0 = time.monotonic()
        fresh: list[list[str]] = [[] for _ in self._stores]
        with self._locked(shared=True) as lk:
            # Listed under the lock: a prune cannot forget or sweep what this backup reuses.
            committed = self.snapshots()
            # Dedup only against chunks a committed manifest names: those were made durable
            # before their manifest. A chunk file left by a crashed backup is rewritten.
            known = {e.chunk for m in committed for e in m.ranges}
            previous = [m for m in committed if m.node == node]
            parent = previous[-1].id if previous else None
            res = self._backup_scan(backend, known, fresh, lk)
            sid = uuid.uuid4().hex
            m = Manifest(
                id=sid, node=node, created=time.time(), placement=placement,
                range_bits=self.range_bits, parent=parent, watermark=res.watermark,
                fuzzy=res.fuzzy, records=res.records, ranges=tuple(res.entries),
                hash_function=KEY_HASH, hash_seed=KEY_HASH_SEED,
            )
            doc = dump_manifest(m)
            for s, names in zip(self._stores, fresh, strict=True):
                s.flush(names)  # every chunk durable before the manifest names it
            lk.check()  # still registered: no prune can have swept what this one names
            for s in self._stores:  # the commit point, one complete object per copy
                s.put(_snap_name(sid), self._seal(_snap_name(sid), doc))
        self.last_backup.append(BackupReport(
            sid, node, res.records, len(res.entries), res.written, res.reused, res.nbytes,
            m.raw_bytes, res.fuzzy, time.monotonic() - t0))
        return sid

    def _backup_scan(
        self, backend: Backend, known: set[str], fresh: list[list[str]], lk: RepositoryLock
    ) -> _Pass:
        """A full backup through ``scan()`` (key order, so every record is held at once)."""
        res = _Pass()
        count_before = backend.count()
        keys: list[bytes] = []
        values: list[bytes | None] = []
        eps: list[np.ndarray] = []
        sqs: list[np.ndarray] = []
        for batch in backend.scan():
            keys += batch.keys
            values += batch.values
            eps.append(batch.epochs)
            sqs.append(batch.seqs)
            lk.refresh()
        count_after = backend.count()
        n = len(keys)
        ep = np.concatenate(eps) if eps else np.zeros(0, np.int64)
        sq = np.concatenate(sqs) if sqs else np.zeros(0, np.int64)
        if n:
            rid = self._range_ids(keys)
            order = np.argsort(rid, kind="stable")  # scan order (by key) kept in a range
            starts = np.flatnonzero(np.diff(rid[order])) + 1
            # Reorder once into range order; each range is then a contiguous slice.
            vlens = np.array([-1 if v is None else len(v) for v in values], dtype=np.int64)
            pick = operator.itemgetter(*order.tolist())
            keys = list(pick(keys)) if n > 1 else keys
            values = list(pick(values)) if n > 1 else values
            ep, sq, vlens = ep[order], sq[order], vlens[order]
            rsorted = rid[order]
            bounds = [0, *starts.tolist(), n]
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                recs = Records(keys[a:b], values[a:b], ep[a:b], sq[a:b])
                self._store_range(int(rsorted[a]), recs, vlens[a:b], known, fresh, res)
                lk.refresh()
            emax = int(ep.max())
            res.watermark = (emax, int(sq[ep == emax].max()))
        res.records = n
        res.fuzzy = not (count_before == count_after == n)
        return res

    def _store_range(
        self, r: int, recs: Records, vlens: np.ndarray, known: set[str],
        fresh: list[list[str]], res: _Pass,
    ) -> None:
        payload = encode_chunk(r, recs, vlens)
        digest = hashlib.sha256(payload).hexdigest()
        cid = self._chunk_id(payload, digest)
        w = self._put_chunk(cid, payload, cid in known, fresh)
        res.written += w > 0
        res.reused += w == 0
        res.nbytes += w
        res.entries.append(RangeEntry(r, len(recs), digest, cid, len(payload)))

    def _range_ids(self, keys: Sequence[bytes]) -> np.ndarray:
        h = key_hashes(keys)
        if self.range_bits == 0:
            return np.zeros(len(keys), dtype=np.int64)
        return (h >> np.uint64(64 - self.range_bits)).astype(np.int64)

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

    def verify(self, snapshot: str | None = None, read_data: bool = True) -> VerifyReport:
        """Check snapshots (all, or one) in every copy; report what is damaged.

        With ``read_data`` every chunk is read back, decrypted, decompressed and checked
        against its SHA-256 digest, chunk id, size, record count and range; without, only
        that every chunk exists and is not empty.

        Examples
        --------
        >>> report = repo.verify()  # doctest: +SKIP
        >>> report.ok, [str(p) for p in report.problems]  # doctest: +SKIP
        """
        t0 = time.monotonic()
        rep = VerifyReport()
        ids = self._snapshot_ids() if snapshot is None else [snapshot]
        for s in self._stores:
            checked: dict[str, str | None] = {}
            for sid in ids:
                try:
                    m = self._load_manifest(s, sid)
                except (BackupCorrupted, BackupFormatError) as exc:
                    rep.problems.append(Problem("manifest", str(exc), snapshot=sid, copy=s.url))
                    continue
                rep.snapshots += 1
                for e in m.ranges:
                    if e.chunk not in checked:
                        bits = m.range_bits if m.hash_seed == KEY_HASH_SEED else None
                        checked[e.chunk] = self._verify_chunk(s, e, bits, read_data, rep)
                    err = checked[e.chunk]
                    if err is not None:
                        rep.problems.append(Problem(
                            "missing" if "missing" in err else "chunk", err, snapshot=sid,
                            node=m.node, range=e.range, chunk=e.chunk, copy=s.url))
        rep.seconds = time.monotonic() - t0
        if snapshot is None and read_data:  # a full check: remember which copies count
            bad = {p.copy for p in rep.problems}
            self._verified = {s.url: s.url not in bad for s in self._stores}
        return rep

    def _verify_chunk(
        self, s: ObjectStore, e: RangeEntry, bits: int | None, read_data: bool,
        rep: VerifyReport,
    ) -> str | None:
        rep.chunks += 1
        if not read_data:
            try:
                return None if s.size(_chunk_name(e.chunk)) > 0 else "chunk object is empty"
            except FileNotFoundError:
                return "chunk is missing"
        try:
            _, nread = self._check_chunk(s, e, bits)
        except (ValueError, BackupAuthError) as exc:
            return str(exc)
        rep.bytes_read += nread
        return None

    # ---- restore ------------------------------------------------------------------------

    def _read_range(self, m: Manifest, e: RangeEntry) -> tuple[bytes | None, list[str]]:
        """The payload of range ``e`` from the first copy where it verifies (keys re-hashed
        into their range), or ``None`` and what is wrong in each copy."""
        bits = m.range_bits if m.hash_seed == KEY_HASH_SEED else None
        errs: list[str] = []
        for s in self._stores:
            try:
                return self._check_chunk(s, e, bits)[0], errs
            except (ValueError, BackupAuthError) as exc:
                errs.append(f"{s.url}: {exc}")
        return None, errs

    def restore(
        self,
        snapshot: str | Sequence[str],
        target: Any,
        *,
        allow_partial: bool = False,
        rehash: bool = False,
        memory_limit_bytes: int = 512 * 1024 * 1024,
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
        # Pass 1 verifies everything before anything is written. Verified payloads are
        # kept when they fit in memory_limit_bytes; otherwise pass 2 reads and verifies
        # each range again just before writing it.
        keep = sum(m.raw_bytes for m in manifests) <= memory_limit_bytes
        good: list[tuple[Manifest, RangeEntry, bytes | None]] = []
        problems: list[Problem] = []
        for m in manifests:
            for e in m.ranges:
                payload, errs = self._read_range(m, e)
                if payload is None:
                    problems.append(Problem("chunk", "; ".join(errs), snapshot=m.id,
                                            node=m.node, range=e.range, chunk=e.chunk))
                else:
                    good.append((m, e, payload if keep else None))
        if problems and not allow_partial:
            raise BackupCorrupted(
                f"{len(problems)} damaged range(s); nothing was restored. First: "
                f"{problems[0]}", [p.as_dict() for p in problems])
        written = 0
        for i, (m, e, kept) in enumerate(good):
            payload = kept
            if payload is None:
                payload, errs = self._read_range(m, e)
                if payload is None:
                    raise BackupCorrupted(
                        f"snapshot {m.id} range {e.range} changed during the restore after "
                        f"{i} of {len(good)} ranges were written: {'; '.join(errs)}",
                        [{"snapshot": m.id, "node": m.node, "range": e.range,
                          "chunk": e.chunk, "detail": "changed during restore"}])
            recs = decode_chunk(payload)[1]
            if isinstance(target, ReplicatedStore):
                self._route_write(target, recs)
            else:
                target.write(recs)
            written += len(recs)
        nranges = len(good)
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

    def restore_node(self, store: Any, node: str, *, allow_partial: bool = False) -> RestoreReport:
        """Rebuild a lost node: its newest intact snapshot, then ``store.recover(node)``
        brings it up to date from the surviving replicas and the hints.

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
                           allow_partial=allow_partial)
        rep.recovery = store.recover(node)
        return rep

    # ---- copies -------------------------------------------------------------------------

    def repair(self) -> RepairReport:
        """Rewrite every damaged or missing manifest and chunk of a copy from a copy where
        it verifies."""
        repaired: list[Problem] = []
        lost: list[Problem] = []
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
                for e in m.ranges:
                    self._repair_chunk(m, e, repaired, lost)
        return RepairReport(repaired, lost)

    def _repair_chunk(
        self, m: Manifest, e: RangeEntry, repaired: list[Problem], lost: list[Problem]
    ) -> None:
        name = _chunk_name(e.chunk)
        bad: list[tuple[ObjectStore, str]] = []
        good: bytes | None = None
        for s in self._stores:
            try:
                self._check_chunk(s, e, m.range_bits)
                if good is None:
                    good = s.get(name)
            except (ValueError, BackupAuthError) as exc:
                bad.append((s, str(exc)))
        for s, why in bad:
            p = Problem("chunk", why, snapshot=m.id, node=m.node, range=e.range,
                        chunk=e.chunk, copy=s.url)
            if good is None:
                if p.copy not in {q.copy for q in lost if q.chunk == e.chunk}:
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
            for e in m.ranges:
                unique[e.chunk] = e.raw
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
                        keep.update(e.chunk for e in m.ranges)
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
