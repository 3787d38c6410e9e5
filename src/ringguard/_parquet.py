"""Parquet footers and column-chunk passthrough, for ``ringguard assign`` Parquet -> Parquet.

Two parts:

* A codec for the Thrift *compact protocol*, the encoding of a Parquet footer
  (``FileMetaData``), written from the Apache Thrift compact protocol specification.
  :func:`decode_struct` turns bytes into a generic tree of :class:`Field` s (field id, wire
  type, value) without knowing the schema, and :func:`encode_struct` writes such a tree
  back. Everything a writer put in a footer, including fields this module does not know,
  round-trips byte for byte (canonical varints, which every Thrift writer emits). The
  input is untrusted: lengths, container sizes and nesting depth are checked against the
  bytes that are there, and malformed input raises :class:`ParquetFooterError`.

* :func:`splice_assign`: the output file is the input file's bytes (every row group and
  page, unchanged, at the same offsets) followed by new column chunks holding the node
  column(s), and a new footer that lists the input's column chunks plus the new ones.
  Only the key column is read (and decompressed), row group by row group; nothing else
  of the input is decoded or re-encoded. :func:`splice_plan` says whether that applies
  to an input (a flat schema, a plaintext footer, chunks inside the file, a codec pyarrow
  can write, row groups large enough for it to pay: :func:`worth_it`);
  ``ringguard.io.assign_file`` falls back to re-encoding when it does not.
"""

from __future__ import annotations

import base64
import os
import struct as _struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import RingGuardError

__all__ = ["Field", "TList", "TMap", "ParquetFooterError", "decode_struct", "encode_struct",
           "read_footer", "splice_plan", "splice_assign", "SplicePlan"]

# Compact protocol wire types.
BOOL_TRUE, BOOL_FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(1, 13)
_INT_BITS = {I16: 16, I32: 32, I64: 64}
MAX_DEPTH = 64  # parquet.thrift nests at most ~6 deep; anything deeper is malformed


class ParquetFooterError(RingGuardError, ValueError):
    """A Parquet footer that is truncated, malformed or points outside its file."""


class Field:
    """One field of a Thrift struct: id, compact wire type and value.

    Values: ``bool`` (types 1 and 2), ``int`` (byte, i16, i32, i64), ``bytes`` (binary and
    the 8 raw bytes of a double), :class:`TList` (list and set), :class:`TMap`, or a
    ``list[Field]`` (a nested struct). ``long`` records a header written in the long form
    where the short one would do, so that re-encoding reproduces it.
    """

    __slots__ = ("fid", "ctype", "value", "long")

    def __init__(self, fid: int, ctype: int, value: Any, long: bool = False) -> None:
        self.fid, self.ctype, self.value, self.long = fid, ctype, value, long

    def __repr__(self) -> str:
        return f"Field({self.fid}, {self.ctype}, {self.value!r})"


class TList:
    """A Thrift list or set: element wire type and items (bools in lists are raw bytes)."""

    __slots__ = ("etype", "items", "long")

    def __init__(self, etype: int, items: list[Any], long: bool = False) -> None:
        self.etype, self.items, self.long = etype, items, long

    def __repr__(self) -> str:
        return f"TList({self.etype}, {self.items!r})"


class TMap:
    """A Thrift map: key and value wire types and (key, value) pairs."""

    __slots__ = ("ktype", "vtype", "pairs")

    def __init__(self, ktype: int, vtype: int, pairs: list[tuple[Any, Any]]) -> None:
        self.ktype, self.vtype, self.pairs = ktype, vtype, pairs


Struct = list[Field]


class _Reader:
    __slots__ = ("buf", "pos", "end", "what")

    def __init__(self, buf: bytes, what: str) -> None:
        self.buf, self.pos, self.end, self.what = buf, 0, len(buf), what

    def fail(self, msg: str) -> ParquetFooterError:
        return ParquetFooterError(f"{self.what}: {msg} at byte {self.pos} of {self.end}")

    def byte(self) -> int:
        if self.pos >= self.end:
            raise self.fail("truncated (unexpected end)")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        out = shift = 0
        for _ in range(10):
            b = self.byte()
            out |= (b & 0x7F) << shift
            if not b & 0x80:
                return out
            shift += 7
        raise self.fail("varint longer than 10 bytes")

    def zigzag(self, bits: int) -> int:
        u = self.varint()
        if u >> bits:
            raise self.fail(f"integer does not fit in {bits} bits")
        return (u >> 1) ^ -(u & 1)

    def take(self, n: int) -> bytes:
        if n > self.end - self.pos:
            raise self.fail(f"length {n} runs past the end")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def value(self, ctype: int, depth: int) -> Any:
        if ctype in _INT_BITS:
            return self.zigzag(_INT_BITS[ctype])
        if ctype == BINARY:
            return self.take(self.varint())
        if ctype == STRUCT:
            return self.struct(depth + 1)
        if ctype in (LIST, SET):
            head = self.byte()
            size, etype, long = head >> 4, head & 0x0F, False
            if size == 15:
                size, long = self.varint(), True
            if size > self.end - self.pos:  # every element takes at least one byte
                raise self.fail(f"list of {size} elements in fewer bytes")
            self.check_type(etype)
            if etype in (BOOL_TRUE, BOOL_FALSE):
                return TList(etype, [self.byte() for _ in range(size)], long)
            if depth + 1 > MAX_DEPTH:
                raise self.fail(f"nested deeper than {MAX_DEPTH}")
            if etype == STRUCT:
                struct = self.struct
                return TList(etype, [struct(depth + 1) for _ in range(size)], long)
            if etype in _INT_BITS:
                zigzag, bits = self.zigzag, _INT_BITS[etype]
                return TList(etype, [zigzag(bits) for _ in range(size)], long)
            return TList(etype, [self.value(etype, depth + 1) for _ in range(size)], long)
        if ctype == MAP:
            size = self.varint()
            if not size:
                return TMap(0, 0, [])
            if 2 * size > self.end - self.pos:
                raise self.fail(f"map of {size} entries in fewer bytes")
            kv = self.byte()
            ktype, vtype = kv >> 4, kv & 0x0F
            self.check_type(ktype)
            self.check_type(vtype)
            if depth + 1 > MAX_DEPTH:
                raise self.fail(f"nested deeper than {MAX_DEPTH}")
            pairs = [(self.item(ktype, depth + 1), self.item(vtype, depth + 1))
                     for _ in range(size)]
            return TMap(ktype, vtype, pairs)
        if ctype == BYTE:
            b = self.byte()
            return b - 256 if b > 127 else b
        if ctype == DOUBLE:
            return self.take(8)
        raise self.fail(f"unknown wire type {ctype}")

    def item(self, ctype: int, depth: int) -> Any:
        """A container element (bools are one raw byte there)."""
        return self.byte() if ctype in (BOOL_TRUE, BOOL_FALSE) else self.value(ctype, depth)

    def check_type(self, ctype: int) -> None:
        if not 1 <= ctype <= 12:
            raise self.fail(f"unknown wire type {ctype}")

    def struct(self, depth: int) -> Struct:
        # The hot loop of a footer (tens of thousands of fields for a file of many row
        # groups): field headers, integers and binaries are decoded inline.
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH}")
        buf, end = self.buf, self.end
        fields: Struct = []
        append = fields.append
        last = 0
        while True:
            pos = self.pos
            if pos >= end:
                raise self.fail("truncated (unexpected end)")
            head = buf[pos]
            self.pos = pos + 1
            if head == 0:
                return fields
            ctype, delta = head & 0x0F, head >> 4
            if not 1 <= ctype <= 12:
                raise self.fail(f"unknown wire type {ctype}")
            if delta:
                fid, long = last + delta, False
            else:
                fid = self.zigzag(16)
                long = 0 < fid - last <= 15
            last = fid
            if ctype <= BOOL_FALSE:
                append(Field(fid, ctype, ctype == BOOL_TRUE, long))
            elif I16 <= ctype <= BINARY and ctype != DOUBLE:
                pos = self.pos
                u = shift = 0
                while True:
                    if pos >= end:
                        self.pos = pos
                        raise self.fail("truncated (unexpected end)")
                    b = buf[pos]
                    pos += 1
                    u |= (b & 0x7F) << shift
                    if b < 0x80:
                        break
                    shift += 7
                    if shift >= 70:
                        self.pos = pos
                        raise self.fail("varint longer than 10 bytes")
                self.pos = pos
                if ctype == BINARY:
                    if u > end - pos:
                        raise self.fail(f"length {u} runs past the end")
                    self.pos = pos + u
                    append(Field(fid, ctype, buf[pos:pos + u], long))
                else:
                    bits = _INT_BITS[ctype]
                    if u >> bits:
                        raise self.fail(f"integer does not fit in {bits} bits")
                    append(Field(fid, ctype, (u >> 1) ^ -(u & 1), long))
            else:
                append(Field(fid, ctype, self.value(ctype, depth), long))


def decode_struct(buf: bytes | memoryview, what: str = "thrift struct") -> Struct:
    """Decode one compact-protocol struct that fills ``buf`` exactly."""
    r = _Reader(bytes(buf), what)
    out = r.struct(1)
    if r.pos != r.end:
        raise r.fail(f"{r.end - r.pos} bytes left after the struct")
    return out


def _varint(out: bytearray, u: int) -> None:
    while u > 0x7F:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)


def _zigzag(out: bytearray, v: int, bits: int) -> None:
    _varint(out, ((v << 1) ^ (v >> (bits - 1))) & ((1 << bits) - 1))


def _encode_value(out: bytearray, ctype: int, v: Any) -> None:
    if ctype in _INT_BITS:
        _zigzag(out, v, _INT_BITS[ctype])
    elif ctype == BINARY:
        _varint(out, len(v))
        out += v
    elif ctype == STRUCT:
        _encode_fields(out, v)
    elif ctype in (LIST, SET):
        n = len(v.items)
        if n < 15 and not v.long:
            out.append((n << 4) | v.etype)
        else:
            out.append(0xF0 | v.etype)
            _varint(out, n)
        if v.etype in (BOOL_TRUE, BOOL_FALSE):
            out += bytes(v.items)
        else:
            for item in v.items:
                _encode_value(out, v.etype, item)
    elif ctype == MAP:
        _varint(out, len(v.pairs))
        if v.pairs:
            out.append((v.ktype << 4) | v.vtype)
            for k, val in v.pairs:
                for t, x in ((v.ktype, k), (v.vtype, val)):
                    if t in (BOOL_TRUE, BOOL_FALSE):
                        out.append(x)
                    else:
                        _encode_value(out, t, x)
    elif ctype == BYTE:
        out.append(v & 0xFF)
    elif ctype == DOUBLE:
        out += v
    else:
        raise ValueError(f"unknown wire type {ctype}")


def _encode_fields(out: bytearray, fields: Struct) -> None:
    last = 0
    for f in fields:
        ctype = f.ctype
        if ctype in (BOOL_TRUE, BOOL_FALSE):
            ctype = BOOL_TRUE if f.value else BOOL_FALSE
        delta = f.fid - last
        if 0 < delta <= 15 and not f.long:
            out.append((delta << 4) | ctype)
        else:
            out.append(ctype)
            _zigzag(out, f.fid, 16)
        last = f.fid
        if ctype not in (BOOL_TRUE, BOOL_FALSE):
            _encode_value(out, ctype, f.value)
    out.append(0)


def encode_struct(fields: Struct) -> bytes:
    """Encode a struct tree (as :func:`decode_struct` returns) in the compact protocol."""
    out = bytearray()
    _encode_fields(out, fields)
    return bytes(out)


def get(fields: Struct, fid: int) -> Field | None:
    """The field with id ``fid``, or None."""
    for f in fields:
        if f.fid == fid:
            return f
    return None


def put(fields: Struct, fid: int, ctype: int, value: Any) -> None:
    """Set field ``fid`` (replacing it, or inserting it in id order)."""
    for i, f in enumerate(fields):
        if f.fid == fid:
            fields[i] = Field(fid, ctype, value, f.long)
            return
        if f.fid > fid:
            fields.insert(i, Field(fid, ctype, value))
            return
    fields.append(Field(fid, ctype, value))


# ---------------------------------------------------------------------------------------
# Parquet: parquet.thrift field ids used here.
# FileMetaData
FMD_SCHEMA, FMD_NUM_ROWS, FMD_ROW_GROUPS, FMD_KV = 2, 3, 4, 5
FMD_COLUMN_ORDERS, FMD_ENCRYPTION = 7, 8
# SchemaElement
SE_NAME, SE_NUM_CHILDREN = 4, 5
# RowGroup
RG_COLUMNS, RG_TOTAL_BYTE_SIZE, RG_NUM_ROWS, RG_TOTAL_COMPRESSED = 1, 2, 3, 6
# ColumnChunk
CC_FILE_PATH, CC_FILE_OFFSET, CC_META = 1, 2, 3
CC_OFFSET_INDEX, CC_OFFSET_INDEX_LEN, CC_COLUMN_INDEX, CC_COLUMN_INDEX_LEN = 4, 5, 6, 7
CC_CRYPTO, CC_ENCRYPTED_META = 8, 9
# ColumnMetaData
CMD_PATH, CMD_CODEC, CMD_NUM_VALUES, CMD_UNCOMPRESSED, CMD_COMPRESSED = 3, 4, 5, 6, 7
CMD_DATA_PAGE, CMD_INDEX_PAGE, CMD_DICT_PAGE, CMD_BLOOM, CMD_BLOOM_LEN = 9, 10, 11, 14, 15
# KeyValue
KV_KEY, KV_VALUE = 1, 2

# CompressionCodec -> the name pyarrow's writer takes (None: pyarrow cannot write it).
CODECS = {0: "none", 1: "snappy", 2: "gzip", 3: None, 4: "brotli", 5: None, 6: "zstd",
          7: "lz4"}
MAX_FOOTER = 1 << 30
KEY_BATCH_ROWS = 1 << 16


@dataclass
class Footer:
    """A parsed Parquet footer: the tree, where it starts, and the file's size."""

    meta: Struct
    start: int  # offset of the first footer byte (end of the row groups)
    size: int  # file size


def footer_length(path: str | os.PathLike[str]) -> int:
    """The length of a Parquet file's footer, from its last 8 bytes (checked as in
    :func:`read_footer`, without decoding it)."""
    return _raw_footer(path, decode=False)[1]


def read_footer(path: str | os.PathLike[str]) -> Footer:
    """Read and decode the footer of a Parquet file.

    Raises :class:`ParquetFooterError` for a file too short, without the ``PAR1`` magic
    at both ends, with an encrypted footer (``PARE``), a footer length outside the file,
    or a footer that does not decode.
    """
    raw, start, size = _raw_footer(path, decode=True)
    meta = decode_struct(raw, f"{os.fspath(path)}: footer")
    return Footer(meta, start, size)


def _raw_footer(path: str | os.PathLike[str], decode: bool) -> tuple[bytes, int, int]:
    """(footer bytes or b"" unless ``decode``, its start or its length, the file size)."""
    name = os.fspath(path)
    with open(name, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size < 12:
            raise ParquetFooterError(f"{name}: {size} bytes is too short for a Parquet file")
        f.seek(0)
        head = f.read(4)
        f.seek(size - 8)
        tail = f.read(8)
        length = int.from_bytes(tail[:4], "little")
        if head != b"PAR1":
            raise ParquetFooterError(f"{name}: no PAR1 magic at the start")
        if tail[4:] == b"PARE":
            raise ParquetFooterError(f"{name}: the footer is encrypted (PARE)")
        if tail[4:] != b"PAR1":
            raise ParquetFooterError(f"{name}: no PAR1 magic at the end")
        if length > size - 12 or length > MAX_FOOTER:
            raise ParquetFooterError(
                f"{name}: footer length {length} does not fit in a file of {size} bytes")
        if not decode:
            return b"", length, size
        start = size - 8 - length
        f.seek(start)
        raw = f.read(length)
    return raw, start, size


def worth_it(footer_bytes: int, rows: int, groups: int, columns: int) -> bool:
    """Whether passthrough should beat re-encoding, by a cost model measured on a 2-vCPU
    box: passthrough pays ~1.3 us per footer byte (this module decodes and re-encodes the
    footer in Python) and ~1 ms per row group (a pyarrow write and read per row group);
    re-encoding pays ~0.1 us per value (rows x columns). Files of many small row groups
    (a few thousand rows each) are therefore re-encoded."""
    return 13 * footer_bytes + 10_000 * groups < rows * columns


def _int(fields: Struct, fid: int, what: str, required: bool = True) -> int | None:
    f = get(fields, fid)
    if f is None:
        if required:
            raise ParquetFooterError(f"{what}: field {fid} is missing")
        return None
    if not isinstance(f.value, int) or isinstance(f.value, bool) or f.ctype not in _INT_BITS:
        raise ParquetFooterError(f"{what}: field {fid} is not an integer")
    return int(f.value)


def _structs(fields: Struct, fid: int, what: str) -> list[Struct]:
    f = get(fields, fid)
    if f is None:
        return []
    if f.ctype != LIST or not isinstance(f.value, TList) or f.value.etype != STRUCT:
        raise ParquetFooterError(f"{what}: field {fid} is not a list of structs")
    return list(f.value.items)


def _chunk_range(cc: Struct, what: str) -> tuple[int, int, Struct]:
    """(start, length, ColumnMetaData) of a column chunk's pages."""
    mf = get(cc, CC_META)
    if mf is None or mf.ctype != STRUCT:
        raise ParquetFooterError(f"{what}: no column metadata")
    md: Struct = mf.value
    data = _int(md, CMD_DATA_PAGE, what)
    dic = _int(md, CMD_DICT_PAGE, what, required=False)
    length = _int(md, CMD_COMPRESSED, what)
    assert data is not None and length is not None
    # The chunk starts at its first page: the dictionary page if there is one. An empty
    # row group written by pyarrow has a dictionary page and data_page_offset 0.
    pages = [o for o in (dic, data) if o is not None and o > 0]
    return (min(pages) if pages else data), length, md


@dataclass
class SplicePlan:
    """Why passthrough applies to a file (or not), and what it needs."""

    ok: bool
    reason: str
    footer: Footer | None = None
    names: tuple[str, ...] = ()
    codec: str | None = None  # pyarrow name of the key column's codec (first row group)
    codecs: frozenset[str] = frozenset()  # every codec used by any column chunk


def _name(se: Struct, what: str) -> str:
    f = get(se, SE_NAME)
    if f is None or f.ctype != BINARY:
        raise ParquetFooterError(f"{what}: schema element without a name")
    try:
        return bytes(f.value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParquetFooterError(f"{what}: schema name is not UTF-8") from exc


def splice_plan(path: str | os.PathLike[str], key: str) -> SplicePlan:
    """Check a Parquet file for column-chunk passthrough (see :func:`splice_assign`).

    Returns ``ok=False`` with a reason for inputs passthrough does not handle (encrypted,
    nested schema, column chunks in other files, no rows, a codec pyarrow cannot write).
    Raises :class:`ParquetFooterError` for a malformed footer: offsets or sizes outside
    the file, column counts that do not match the schema.
    """
    name = os.fspath(path)
    try:
        length = footer_length(name)
    except ParquetFooterError as exc:
        if "encrypted" in str(exc):
            return SplicePlan(False, "encrypted footer")
        raise
    slow = "many small row groups (re-encoding is faster)"
    if length > 1 << 16:  # decoding it here takes a while: ask pyarrow's C++ parser first
        import pyarrow.parquet as pq

        try:
            m = pq.read_metadata(name)
        except Exception:  # noqa: BLE001 - malformed: the checks below say how, clearly
            m = None
        if m is not None and not worth_it(length, m.num_rows, m.num_row_groups,
                                          m.num_columns):
            return SplicePlan(False, slow)
    footer = read_footer(name)
    meta = footer.meta
    what = f"{name}: footer"
    if get(meta, FMD_ENCRYPTION) is not None:
        return SplicePlan(False, "encrypted columns")
    schema = _structs(meta, FMD_SCHEMA, what)
    if not schema:
        raise ParquetFooterError(f"{what}: empty schema")
    nroot = _int(schema[0], SE_NUM_CHILDREN, f"{what}: schema root")
    if nroot != len(schema) - 1:
        return SplicePlan(False, "nested schema")
    names = []
    for i, se in enumerate(schema[1:], 1):
        if get(se, SE_NUM_CHILDREN) is not None:
            return SplicePlan(False, "nested schema")
        names.append(_name(se, f"{what}: schema element {i}"))
    if key not in names:
        return SplicePlan(False, f"no column {key!r}")
    num_rows = _int(meta, FMD_NUM_ROWS, what)
    groups = _structs(meta, FMD_ROW_GROUPS, what)
    if not groups or not num_rows:
        return SplicePlan(False, "no rows")
    codecs = set()
    total = 0
    kidx = names.index(key)
    codec: str | None = None
    for g, rg in enumerate(groups):
        gw = f"{what}: row group {g}"
        cols = _structs(rg, RG_COLUMNS, gw)
        if len(cols) != len(names):
            raise ParquetFooterError(f"{gw}: {len(cols)} column chunks for {len(names)} columns")
        n = _int(rg, RG_NUM_ROWS, gw)
        assert n is not None
        if n < 0:
            raise ParquetFooterError(f"{gw}: negative row count {n}")
        total += n
        for c, cc in enumerate(cols):
            cw = f"{gw}, column {c}"
            if get(cc, CC_FILE_PATH) is not None:
                return SplicePlan(False, "column chunks in other files")
            if get(cc, CC_CRYPTO) is not None or get(cc, CC_ENCRYPTED_META) is not None:
                return SplicePlan(False, "encrypted columns")
            start, length, md = _chunk_range(cc, cw)
            if length < 0 or length and (start < 4 or start + length > footer.start):
                raise ParquetFooterError(
                    f"{cw}: pages at [{start}, {start + length}) lie outside the data "
                    f"[4, {footer.start})")
            for off_id, len_id in ((CC_OFFSET_INDEX, CC_OFFSET_INDEX_LEN),
                                   (CC_COLUMN_INDEX, CC_COLUMN_INDEX_LEN)):
                off = _int(cc, off_id, cw, required=False)
                ln = _int(cc, len_id, cw, required=False)
                if off is not None and (off < 4 or off + (ln or 0) > footer.start):
                    raise ParquetFooterError(f"{cw}: page index at {off} lies outside the data")
            code = _int(md, CMD_CODEC, cw)
            cname = CODECS.get(code) if code is not None else None
            if cname is None:
                return SplicePlan(False, f"codec {code} cannot be written by pyarrow")
            codecs.add(cname)
            if g == 0 and c == kidx:
                codec = cname
    if total != num_rows:
        raise ParquetFooterError(f"{what}: row groups hold {total} rows, the file says {num_rows}")
    if not worth_it(footer.size - 8 - footer.start, num_rows, len(groups), len(names)):
        return SplicePlan(False, slow)
    return SplicePlan(True, "", footer, tuple(names), codec, frozenset(codecs))


def _copy(src: Any, dst: Any, src_off: int, dst_off: int, count: int) -> None:
    """Copy ``count`` bytes of file ``src`` from ``src_off`` to ``dst`` at ``dst_off``
    (a kernel copy, ``copy_file_range``, where there is one; else read and write)."""
    done = 0
    fast = hasattr(os, "copy_file_range")
    while done < count:
        n = 0
        if fast:
            try:
                n = os.copy_file_range(src.fileno(), dst.fileno(), count - done,
                                       src_off + done, dst_off + done)
            except OSError:
                fast = False
        if not n:
            src.seek(src_off + done)
            dst.seek(dst_off + done)
            chunk = src.read(min(1 << 24, count - done))
            if not chunk:
                raise ParquetFooterError("a file shrank while it was copied")
            dst.write(chunk)
            n = len(chunk)
        done += n
    dst.seek(dst_off + count)


def _shift(cc: Struct, md: Struct, by: int) -> None:
    """Move a column chunk's offsets by ``by`` bytes (it was copied elsewhere)."""
    for fid in (CMD_DATA_PAGE, CMD_INDEX_PAGE, CMD_DICT_PAGE, CMD_BLOOM):
        f = get(md, fid)
        if f is not None and f.value > 0:
            f.value += by
    f = get(cc, CC_FILE_OFFSET)
    if f is not None and f.value > 0:
        f.value += by


def sibling_tmp(target: str) -> str | None:
    """Where to write an output that is renamed over ``target`` at the end, so a failure
    half-way (a null key, a full disk) leaves no partial output and an existing
    ``target`` as it was: a sibling file, or None when ``target`` exists and is not a
    regular file (a FIFO, ``/dev/stdout``), which is written directly."""
    if os.path.exists(target) and not os.path.isfile(target):
        return None
    return f"{target}.{os.getpid()}.ringguard-tmp"


def splice_assign(
    plan: SplicePlan,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    key: str,
    compute: Callable[[Any], list[Any]],
    fields: list[Any],
    *,
    batch_rows: int = 1 << 20,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write ``dst``: the bytes of ``src`` plus new columns, without re-encoding ``src``.

    ``compute(keys)`` maps a pyarrow array of keys to one pyarrow array per field of
    ``fields`` (the new columns, dictionary-encoded node names). First the key column is
    read, row group by row group, and the new columns are written by one pyarrow
    ``ParquetWriter`` to a temporary file, one row group per input row group with the
    same row count (the key column's codec, dictionary encoding, no statistics). Then the
    output is written: the input's bytes up to its footer, verbatim (every row group keeps
    its offset, so every existing column chunk entry stays valid), the temporary file's
    row groups (its bytes from offset 4 to its footer, their offsets shifted by where
    they land), and a footer extending the input's: schema, each row group's columns and
    sizes, column orders, and the ``ARROW:schema`` entry (so readers see the node column
    as a dictionary, as when the file is re-encoded). The output is written to a sibling
    file renamed over ``dst`` at the end. Memory: one batch of keys, and 4 bytes per row
    and new column for the largest row group. Returns the number of rows.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert plan.ok and plan.footer is not None
    footer = plan.footer
    meta = footer.meta
    groups = _structs(meta, FMD_ROW_GROUPS, "footer")
    # The key column is read in batches of at most 64k rows, without pre-buffering: on
    # the benchmark's file (20M string keys, snappy) that reads it in 1.5 s instead of
    # 2.0 s with 1M-row batches (the decoded batch stays in the CPU caches for hashing).
    pf = pq.ParquetFile(os.fspath(src), memory_map=True, pre_buffer=False)
    batch_rows = max(1, min(batch_rows, KEY_BATCH_ROWS))
    if pf.metadata.num_row_groups != len(groups):
        raise ParquetFooterError(f"{os.fspath(src)}: changed while it was read")
    in_schema = pf.schema_arrow
    out_schema = pa.schema(list(in_schema) + list(fields), metadata=in_schema.metadata)
    new_schema = pa.schema(fields)
    rows = 0
    target = os.fspath(dst)
    tmp = sibling_tmp(target)
    fd, nodes = tempfile.mkstemp(suffix=".ringguard-nodes.parquet", dir=(
        os.path.dirname(os.path.abspath(target)) if tmp else None))
    os.close(fd)
    try:
        # 1. The new columns, one row group per input row group (same row counts), into
        # a Parquet file of their own: pyarrow encodes them, on disk so memory stays
        # bounded by one row group.
        writer = pq.ParquetWriter(nodes, new_schema, compression=plan.codec,
                                  use_dictionary=True, write_statistics=False,
                                  store_schema=False)
        try:
            for g, rg in enumerate(groups):
                n = _int(rg, RG_NUM_ROWS, "row group")
                assert n is not None
                parts: list[list[Any]] = [[] for _ in fields]
                got = 0
                for batch in pf.iter_batches(batch_size=batch_rows, row_groups=[g],
                                             columns=[key], use_threads=False):
                    for j, arr in enumerate(compute(batch.column(0))):
                        parts[j].append(arr)
                    got += batch.num_rows
                    if progress is not None:
                        progress(rows + got)
                if got != n:
                    raise ParquetFooterError(f"{os.fspath(src)}: row group {g} holds {got} "
                                             f"rows, its footer says {n}")
                rows += n
                cols = [pa.chunked_array(p, type=f.type)
                        for p, f in zip(parts, fields, strict=True)]
                writer.write_table(pa.Table.from_arrays(cols, schema=new_schema),
                                   row_group_size=max(n, 1))
        finally:
            writer.close()
        small = read_footer(nodes)
        sgroups = _structs(small.meta, FMD_ROW_GROUPS, "pyarrow's footer")
        if len(sgroups) != len(groups):
            raise AssertionError(f"pyarrow wrote {len(sgroups)} row groups for {len(groups)}")

        # 2. The output: the input's bytes, the new column chunks, the extended footer.
        shift = footer.start - 4  # where the new file's bytes from offset 4 land
        for rg, srg in zip(groups, sgroups, strict=True):
            added = uncompressed = 0
            chunks = _structs(srg, RG_COLUMNS, "pyarrow's footer")
            for cc in chunks:
                start, length, md = _chunk_range(cc, "pyarrow's footer")
                if length and (start < 4 or start + length > small.start):
                    raise AssertionError("pyarrow wrote a column chunk outside its data")
                _shift(cc, md, shift)
                for fid in (CC_OFFSET_INDEX, CC_OFFSET_INDEX_LEN, CC_COLUMN_INDEX,
                            CC_COLUMN_INDEX_LEN):  # not written (no page index), never kept
                    cc[:] = [f for f in cc if f.fid != fid]
                md[:] = [f for f in md if f.fid not in (CMD_BLOOM, CMD_BLOOM_LEN)]
                added += length
                uncompressed += _int(md, CMD_UNCOMPRESSED, "pyarrow's footer") or 0
            colf = get(rg, RG_COLUMNS)
            assert colf is not None
            colf.value.items.extend(chunks)
            size = _int(rg, RG_TOTAL_BYTE_SIZE, "row group")
            put(rg, RG_TOTAL_BYTE_SIZE, I64, (size or 0) + uncompressed)
            comp = get(rg, RG_TOTAL_COMPRESSED)
            if comp is not None:
                comp.value += added
        schema_f = get(meta, FMD_SCHEMA)
        assert schema_f is not None
        schema_f.value.items.extend(_structs(small.meta, FMD_SCHEMA, "pyarrow's footer")[1:])
        put(schema_f.value.items[0], SE_NUM_CHILDREN, I32, len(schema_f.value.items) - 1)
        orders_f, new_orders = get(meta, FMD_COLUMN_ORDERS), get(small.meta, FMD_COLUMN_ORDERS)
        if orders_f is not None and new_orders is not None:
            orders_f.value.items.extend(new_orders.value.items)
        arrow = base64.b64encode(out_schema.serialize().to_pybytes())
        kv = get(meta, FMD_KV)
        entry = [Field(KV_KEY, BINARY, b"ARROW:schema"), Field(KV_VALUE, BINARY, arrow)]
        if kv is None:
            put(meta, FMD_KV, LIST, TList(STRUCT, [entry]))
        else:
            items = kv.value.items
            old = [i for i, e in enumerate(items)
                   if any(f.fid == KV_KEY and f.value == b"ARROW:schema" for f in e)]
            if old:  # replaced where it was, other entries kept as they are
                items[old[0]] = entry
                items[:] = [e for i, e in enumerate(items) if i not in old[1:]]
            else:
                items.append(entry)
        tail = encode_struct(meta)
        with open(os.fspath(src), "rb") as fin, open(nodes, "rb") as fnew, \
                open(tmp or target, "wb") as out:
            _copy(fin, out, 0, 0, footer.start)
            _copy(fnew, out, 4, footer.start, small.start - 4)
            out.write(tail)
            out.write(_struct.pack("<I", len(tail)))
            out.write(b"PAR1")
        if tmp:
            os.replace(tmp, target)
    except BaseException:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        os.unlink(nodes)
    return rows
