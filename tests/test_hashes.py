"""The hash functions of the core (``ringguard._backend.core``): XXH64, MD5, ketama_hash.

Checked against published vectors and against independent implementations (``hashlib`` and
the ``xxhash`` package) on random inputs of every length 0..300, including unaligned views.
Runs on whichever core is selected (compiled, or pure Python with RINGGUARD_PUREPYTHON=1).
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest

from ringguard._backend import core

xxhash = pytest.importorskip("xxhash")

PRIME32 = 2654435761
PRIME64 = 11400714785074694797
MASK64 = 2**64 - 1
SEEDS = [0, 1, 2**64 - 1, PRIME32, 0x9E3779B185EBCA87, 2**63, 0x0123456789ABCDEF]


def _random_data(seed: int, size: int = 301) -> bytes:
    return random.Random(seed).randbytes(size)


# ---- XXH64 -------------------------------------------------------------------------------


def _sanity_buffer(length: int) -> bytes:
    """The buffer of xxHash's own sanity test (``fillTestBuffer`` in xxhsum)."""
    out = bytearray()
    gen = PRIME32
    for _ in range(length):
        out.append(gen >> 56)
        gen = (gen * PRIME64) & MASK64
    return bytes(out)


# (length, seed, XXH64) from xxHash's sanity check (BMK_testXXH64 in cli/xsum_sanity_check.c)
XXH64_PUBLISHED = [
    (0, 0, 0xEF46DB3751D8E999),
    (0, PRIME32, 0xAC75FDA2929B17EF),
    (1, 0, 0xE934A84ADB052768),
    (1, PRIME32, 0x5014607643A9B4C3),
    (4, 0, 0x9136A0DCA57457EE),
    (14, 0, 0x8282DCC4994E35C8),
    (14, PRIME32, 0xC3BD6BF63DEB6DF0),
    (222, 0, 0xB641AE8CB691C174),
    (222, PRIME32, 0x20CB8AB7AE10C14A),
]


def test_xxh64_published_vectors() -> None:
    assert core.xxh64(b"", 0) == 0xEF46DB3751D8E999
    assert core.xxh64(b"") == 0xEF46DB3751D8E999
    buf = _sanity_buffer(222)
    for length, seed, expected in XXH64_PUBLISHED:
        assert core.xxh64(buf[:length], seed) == expected, (length, seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_xxh64_matches_xxhash_every_length(seed: int) -> None:
    data = _random_data(seed % 1000 + 17)
    for length in range(301):
        chunk = data[:length]
        assert core.xxh64(chunk, seed) == xxhash.xxh64_intdigest(chunk, seed), (length, seed)


def test_xxh64_unaligned_and_buffer_types() -> None:
    """Reads are explicit little-endian loads: any start offset and any buffer type."""
    data = _random_data(99, 400)
    for offset in range(1, 9):
        for length in (0, 1, 3, 4, 7, 8, 15, 31, 32, 33, 63, 64, 65, 100, 257):
            view = memoryview(data)[offset : offset + length]
            expected = xxhash.xxh64_intdigest(bytes(view), 5)
            assert core.xxh64(view, 5) == expected, (offset, length)
    chunk = data[:77]
    expected = xxhash.xxh64_intdigest(chunk, 0)
    assert core.xxh64(bytearray(chunk), 0) == expected
    assert core.xxh64(np.frombuffer(chunk, dtype=np.uint8), 0) == expected


def test_xxh64_long_inputs() -> None:
    rng = random.Random(3)
    for size in (1024, 4096 + 3, 65536 + 31):
        data = rng.randbytes(size)
        assert core.xxh64(data, 0) == xxhash.xxh64_intdigest(data, 0)
        assert core.xxh64(data, MASK64) == xxhash.xxh64_intdigest(data, MASK64)


# ---- MD5 ---------------------------------------------------------------------------------

# RFC 1321, appendix A.5 ("test suite")
MD5_RFC1321 = [
    (b"", "d41d8cd98f00b204e9800998ecf8427e"),
    (b"a", "0cc175b9c0f1b6a831c399e269772661"),
    (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
    (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
    (b"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
    (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
     "d174ab98d277d9f5a5611c2c9f419d9f"),
    (b"1234567890" * 8, "57edf4a22be3c955ac49da2e2107b67a"),
]


def test_md5_rfc1321_suite() -> None:
    for data, hexdigest in MD5_RFC1321:
        digest = core.md5(data)
        assert isinstance(digest, bytes) and len(digest) == 16
        assert digest.hex() == hexdigest, data


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_md5_matches_hashlib_every_length(seed: int) -> None:
    data = _random_data(seed)
    for length in range(301):
        chunk = data[:length]
        assert core.md5(chunk) == hashlib.md5(chunk).digest(), length


def test_md5_unaligned_and_long() -> None:
    data = _random_data(7, 70000)
    for offset in range(1, 5):
        for length in (0, 55, 56, 57, 63, 64, 65, 119, 120, 128):
            view = memoryview(data)[offset : offset + length]
            assert core.md5(view) == hashlib.md5(view).digest(), (offset, length)
    assert core.md5(data) == hashlib.md5(data).digest()
    assert core.md5(bytearray(data[:99])) == hashlib.md5(data[:99]).digest()


# ---- ketama_hash -------------------------------------------------------------------------


def test_ketama_hash_published() -> None:
    assert core.ketama_hash(b"test") == 3446378249
    assert core.ketama_hash(b"") == 0xD98C1DD4  # d41d8cd9..., little-endian


def test_ketama_hash_is_md5_prefix_little_endian() -> None:
    data = _random_data(11)
    for length in range(301):
        chunk = data[:length]
        d = hashlib.md5(chunk).digest()
        expected = d[0] | d[1] << 8 | d[2] << 16 | d[3] << 24
        assert core.ketama_hash(chunk) == expected, length
