"""Binary formats of a backup repository: record chunks, compressed objects, encryption.

Chunk payload (the records of one or more key-hash ranges, uncompressed; all integers
little-endian)::

    magic    4 bytes  b"RGR2"
    count    u32      number of records n
    blocks   u32      number of ranges b held (one block each)
    table    b x (range u32, records u32)   ascending range ids; records add up to n
    klen     n x u32  key lengths
    vlen     n x i64  value lengths, -1 for a tombstone
    epoch    n x i64  record versions (epoch, seq)
    seq      n x i64
    keys     sum(klen) bytes, concatenated in record order (block by block)
    values   sum(max(vlen, 0)) bytes, concatenated

The layout is columnar so that encoding and decoding are a few NumPy calls and two joins.
The payload's SHA-256 is recorded in the manifest's chunk table; each range's record
digest sum (the backends' range digest) in its range table.

Stored object (what a file in the repository holds, before optional encryption)::

    magic    4 bytes  b"RGK1"
    codec    u8       0 = none, 1 = zlib, 2 = zstandard
    rawlen   u64      payload length
    body     the payload compressed with ``codec``

Encrypted object (``password=``)::

    magic    4 bytes  b"RGE1"
    nonce    12 bytes random, fresh for every object
    sealed   AES-256-GCM(key, nonce, plaintext, aad = the object's name in the repository)

Binding the name as associated data means an object moved or swapped inside the
repository fails authentication like a tampered one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends.base import Records
from .errors import BackupAuthError, BackupCorrupted

__all__ = ["CODECS", "Crypto", "compress", "decode_chunk", "decompress", "encode_chunk",
           "payload_table"]

_PAYLOAD_MAGIC = b"RGR2"
_OBJECT_MAGIC = b"RGK1"
_SEALED_MAGIC = b"RGE1"
_OBJ_HEAD = struct.Struct("<4sBQ")
_PAY_HEAD = struct.Struct("<4sII")
CODECS = {0: "none", 1: "zlib", 2: "zstd"}
MAX_PAYLOAD_BYTES = 1 << 34  # 16 GiB: a larger rawlen in a header is taken as damage


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard


_LOCAL = threading.local()


def _zstd_compressor(level: int) -> Any:
    # Level 1: on record data it compresses about as well as level 3, ~4x faster.
    # A ZstdCompressor must not be shared between threads: one per thread and level.
    cache: dict[int, Any] | None = getattr(_LOCAL, "compressors", None)
    if cache is None:
        cache = _LOCAL.compressors = {}
    c = cache.get(level)
    if c is None:
        c = cache[level] = _zstd().ZstdCompressor(level=level)
    return c


def default_codec() -> int:
    """zstandard when installed (``pip install 'ringguard[backup]'``), else zlib."""
    return 2 if _zstd() is not None else 1


def encode_chunk(
    block_ranges: np.ndarray, block_counts: np.ndarray, records: Records, vlens: np.ndarray,
    klens: np.ndarray | None = None,
) -> bytes:
    """The payload of ``records`` (block by block, ascending ranges; ``vlens`` -1 for
    tombstones; ``klens`` the key lengths if known), holding ``block_counts[i]`` records of
    range ``block_ranges[i]``."""
    n = len(records)
    nb = len(block_ranges)
    table = np.empty((nb, 2), dtype="<u4")
    table[:, 0] = block_ranges
    table[:, 1] = block_counts
    klens = (np.fromiter(map(len, records.keys), dtype="<u4", count=n) if klens is None
             else np.asarray(klens, dtype="<u4"))
    vals: list[Any] = records.values
    vl = np.asarray(vlens, dtype="<i8")
    parts = [
        _PAY_HEAD.pack(_PAYLOAD_MAGIC, n, nb),
        table.tobytes(),
        klens.tobytes(),
        vl.tobytes(),
        np.asarray(records.epochs, dtype="<i8").tobytes(),
        np.asarray(records.seqs, dtype="<i8").tobytes(),
        b"".join(records.keys),
        b"".join(vals) if n == 0 or vl.min() >= 0 else b"".join(
            [v for v in vals if v is not None]),
    ]
    return b"".join(parts)


def payload_table(payload: bytes) -> tuple[int, np.ndarray, np.ndarray, int]:
    """``(count, block_ranges, block_counts, pos)`` of a payload (``pos``: where the
    record columns start); ``ValueError`` on a bad magic or an inconsistent table."""
    if len(payload) < _PAY_HEAD.size:
        raise ValueError("payload shorter than its header")
    magic, n, nb = _PAY_HEAD.unpack_from(payload)
    if magic != _PAYLOAD_MAGIC:
        raise ValueError("bad payload magic")
    pos = _PAY_HEAD.size + 8 * nb
    if pos + n * 28 > len(payload):
        raise ValueError(f"payload of {len(payload)} bytes cannot hold {nb} blocks, {n} records")
    table = np.frombuffer(payload, dtype="<u4", count=2 * nb, offset=_PAY_HEAD.size)
    ranges = table[0::2].astype(np.int64)
    counts = table[1::2].astype(np.int64)
    if nb and ((np.diff(ranges) <= 0).any() or counts.min() < 1):
        raise ValueError("payload block table is not ascending or has an empty block")
    if int(counts.sum()) != n:
        raise ValueError(f"payload block table counts {int(counts.sum())} records, header {n}")
    return n, ranges, counts, pos


def key_offsets(payload: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``(data, offsets)``: the payload as uint8 and the int64 bounds of each key in it."""
    n, _, _, pos = payload_table(payload)
    klens = np.frombuffer(payload, dtype="<u4", count=n, offset=pos).astype(np.int64)
    koff = np.empty(n + 1, dtype=np.int64)
    koff[0] = 0
    np.cumsum(klens, out=koff[1:])
    koff += pos + n * 28
    if koff[-1] > len(payload):
        raise ValueError("key lengths run past the end of the payload")
    return np.frombuffer(payload, dtype=np.uint8), koff


def decode_chunk(payload: bytes) -> tuple[np.ndarray, np.ndarray, Records]:
    """``(block_ranges, block_counts, records)`` of a payload; ``ValueError`` on any
    inconsistency (:func:`ringguard.backup._columnar.decode_columns` does the checks)."""
    from ._columnar import decode_columns  # it imports this module

    cols = decode_columns(payload)
    return cols.ranges, cols.counts, cols.records()


def compress(payload: bytes | np.ndarray, codec: int, level: int | None = None) -> bytes:
    """The stored object of ``payload`` (header + compressed body; a ``uint8`` array is
    taken as its bytes, without a copy)."""
    buf: bytes | memoryview = (np.ascontiguousarray(payload, dtype=np.uint8).data.cast("B")
                               if isinstance(payload, np.ndarray) else payload)
    if codec == 2:
        zstd = _zstd()
        if zstd is None:
            raise ImportError("zstandard compression needs: pip install 'ringguard[backup]'")
        body = _zstd_compressor(1 if level is None else level).compress(buf)
    elif codec == 1:
        body = zlib.compress(buf, 1 if level is None else level)
    elif codec == 0:
        body = bytes(buf)
    else:
        raise ValueError(f"codec: unknown codec {codec}")
    return _OBJ_HEAD.pack(_OBJECT_MAGIC, codec, len(buf)) + body


def decompress(obj: bytes, expected: int | None = None) -> tuple[int, bytes]:
    """``(codec, payload)`` of a stored object; ``ValueError`` if it is damaged.

    ``expected`` (the payload size a manifest records) is checked against the header
    before anything is decompressed, so a forged header cannot make it allocate more.
    """
    if len(obj) < _OBJ_HEAD.size:
        raise ValueError(f"object of {len(obj)} bytes is shorter than its header")
    magic, codec, rawlen = _OBJ_HEAD.unpack_from(obj)
    if magic != _OBJECT_MAGIC:
        raise ValueError("bad object magic")
    if rawlen > MAX_PAYLOAD_BYTES or (expected is not None and rawlen != expected):
        raise ValueError(
            f"object header claims {rawlen} bytes"
            + ("" if expected is None else f", the manifest says {expected}")
        )
    body = memoryview(obj)[_OBJ_HEAD.size :]
    try:
        if codec == 2:
            zstd = _zstd()
            if zstd is None:
                raise ImportError(
                    "this chunk is zstandard-compressed: pip install 'ringguard[backup]'"
                )
            body_b = bytes(body)
            if zstd.frame_content_size(body_b) not in (rawlen, -1):
                raise ValueError("zstd frame size does not match the header")
            out = zstd.ZstdDecompressor().decompress(body_b, max_output_size=rawlen)
        elif codec == 1:
            d = zlib.decompressobj()
            out = d.decompress(body, rawlen)
            if d.unconsumed_tail or not d.eof or d.unused_data:
                raise ValueError("zlib stream length does not match the header")
        elif codec == 0:
            out = bytes(body)
        else:
            raise ValueError(f"unknown codec {codec}")
    except ImportError:
        raise
    except Exception as exc:  # zlib.error, zstd.ZstdError: all mean damage here
        raise ValueError(f"cannot decompress ({type(exc).__name__}: {exc})") from None
    if len(out) != rawlen:
        raise ValueError(f"decompressed {len(out)} bytes, header says {rawlen}")
    return codec, out


# ---- encryption --------------------------------------------------------------------------

SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
_CHECK_PLAINTEXT = b"ringguard-backup key check v1"


def _aesgcm() -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:
        raise ImportError(
            "an encrypted repository needs cryptography: pip install 'ringguard[crypto]'"
        ) from exc
    return AESGCM


@dataclass
class Crypto:
    """Keys derived from a password: AES-256-GCM for objects, HMAC-SHA256 for chunk ids."""

    enc_key: bytes
    id_key: bytes

    @classmethod
    def derive(cls, password: str | bytes, salt: bytes, n: int, r: int, p: int) -> Crypto:
        pw = password.encode("utf-8") if isinstance(password, str) else bytes(password)
        km = hashlib.scrypt(pw, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=64)
        return cls(km[:32], km[32:])

    def seal(self, name: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(12)
        return _SEALED_MAGIC + nonce + _aesgcm()(self.enc_key).encrypt(
            nonce, plaintext, name.encode("utf-8")
        )

    def open(self, name: str, sealed: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag

        if len(sealed) < 4 + 12 + 16 or sealed[:4] != _SEALED_MAGIC:
            raise BackupAuthError(f"{name}: not an encrypted object (or truncated)")
        try:
            return bytes(
                _aesgcm()(self.enc_key).decrypt(sealed[4:16], sealed[16:], name.encode("utf-8"))
            )
        except InvalidTag:
            raise BackupAuthError(
                f"{name}: authentication failed (wrong password or tampered object)"
            ) from None

    def chunk_id(self, payload: bytes) -> str:
        return hmac.new(self.id_key, payload, hashlib.sha256).hexdigest()

    def check_token(self) -> bytes:
        return self.seal("config/keycheck", _CHECK_PLAINTEXT)

    def verify_token(self, token: bytes) -> None:
        try:
            ok = self.open("config/keycheck", token) == _CHECK_PLAINTEXT
        except BackupAuthError:
            ok = False
        if not ok:
            raise BackupAuthError("wrong password for this repository")


def corrupted(msg: str, **where: Any) -> BackupCorrupted:
    return BackupCorrupted(msg, [dict(where, detail=msg)])
