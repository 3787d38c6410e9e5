"""Write the golden placement vectors in ``tests/vectors/`` from independent code.

Nothing here imports ringguard. The placement contract (``docs/placement-contract.md``) is
implemented once more, directly: XXH64 from the ``xxhash`` package, MD5 from ``hashlib``,
float32 arithmetic through ``struct``, lookups with ``bisect``, and for the uhashring mode
the ``uhashring`` package itself. A constant mistyped in both ringguard twins (the C core
and ``ringguard.reference``) therefore shows up as a vector mismatch.

Usage::

    python tests/make_vectors.py           # (re)write tests/vectors/*.json
    python tests/make_vectors.py --check   # exit 1 if the files differ from a fresh run

Every file holds the configuration, ~200 keys (str, bytes as hex, int as decimal text),
the expected node of each key, optionally replicas, and a SHA-256 of the whole ring
(``"<point value> <node name>"`` lines in ring order).
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import math
import random
import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uhashring
import xxhash

OUT = Path(__file__).with_name("vectors")
SEED = 1321


# ---- keys --------------------------------------------------------------------------------


def make_keys(seed: int) -> list[str | bytes | int]:
    """~200 keys: str (ASCII, non-ASCII, astral, empty), bytes (NULs, high bytes), ints."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789:-_"
    wide = "éßЖ中한😀𝄞\U0010ffff\x00"
    keys: list[str | bytes | int] = ["", "foo", "bar", "baz", "test", "user:1", "é", "😀"]
    for i in range(72):
        pool = alphabet + (wide if i % 3 == 0 else "")
        keys.append("".join(rng.choices(pool, k=rng.randint(1, 40))))
    keys += [b"", b"\x00", b"\x00\x00\x01", b"\xff" * 9, b"foo"]
    keys += [rng.randbytes(rng.randint(1, 48)) for _ in range(55)]
    keys += [0, 1, -1, 7, 42, 2**63 - 1, -(2**63), 2**63, 2**64 - 1, 10**18, -(10**9)]
    keys += [rng.randrange(-(2**63), 2**64) for _ in range(30)]
    keys += [rng.randrange(-1000, 1000) for _ in range(9)]
    return keys


def encode_key(k: str | bytes | int) -> dict[str, str]:
    if isinstance(k, str):
        return {"type": "str", "value": k}
    if isinstance(k, bytes):
        return {"type": "bytes", "value": k.hex()}
    return {"type": "int", "value": str(k)}


# ---- ring-xxh64@1 ------------------------------------------------------------------------


def canonical(k: str | bytes | int) -> bytes:
    if isinstance(k, str):
        return k.encode("utf-8")
    if isinstance(k, bytes):
        return k
    return (k % 2**64).to_bytes(8, "little")


class XxhRing:
    def __init__(self, weights: dict[str, float], vnodes: int,
                 zones: dict[str, str] | None = None) -> None:
        mean = math.fsum(weights.values()) / len(weights)
        pts = []
        for name, w in weights.items():
            for j in range(max(1, round(vnodes * w / mean))):
                pts.append((xxhash.xxh64_intdigest(f"{name}#{j}".encode(), seed=0), name, j))
        pts.sort()
        self.values = [v for v, _, _ in pts]
        self.owners = [name for _, name, _ in pts]
        self.zones = zones

    def start(self, k: str | bytes | int) -> int:
        i = bisect.bisect_left(self.values, xxhash.xxh64_intdigest(canonical(k), seed=0))
        return 0 if i == len(self.values) else i

    def node(self, k: str | bytes | int) -> str:
        return self.owners[self.start(k)]

    def replicas(self, k: str | bytes | int, n: int) -> list[str]:
        """Section 5: distinct nodes in walk order; zone-distinct first with zones."""
        start = self.start(k)
        walk = self.owners[start:] + self.owners[:start]
        met = list(dict.fromkeys(walk))
        if self.zones is None:
            return met[:n]
        zones = self.zones
        all_zones = {zones[o] for o in self.owners}
        picked: list[str] = []
        deferred: list[str] = []
        used: set[str] = set()
        for node in met:
            if zones[node] in used:
                deferred.append(node)
            else:
                picked.append(node)
                used.add(zones[node])
            if len(picked) == n or (used == all_zones and len(picked) + len(deferred) >= n):
                break
        return (picked + deferred)[:n]


# ---- ketama-md5@1 ------------------------------------------------------------------------


def f32(x: float) -> float:
    """Round a float to IEEE-754 single precision (C's float)."""
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def ketama_bytes(k: str | bytes | int) -> bytes:
    if isinstance(k, bytes):
        return k
    return str(k).encode("utf-8")


def ketama_hash(b: bytes) -> int:
    return int.from_bytes(hashlib.md5(b).digest()[:4], "little")


class LibKetama:
    """libketama: ``floorf(pct * 40.0 * (float)n)`` digests per server, first point >= h."""

    def __init__(self, weights: dict[str, int]) -> None:
        n = len(weights)
        total = sum(weights.values())
        pts = []
        for name, w in weights.items():
            pct = f32(f32(float(w)) / f32(float(total)))
            ks = math.floor(f32(pct * 40.0 * float(n)))
            for k in range(ks):
                d = hashlib.md5(f"{name}-{k}".encode()).digest()
                for h in range(4):
                    pts.append((int.from_bytes(d[4 * h : 4 * h + 4], "little"), name))
        pts.sort()
        self.values = [v for v, _ in pts]
        self.owners = [name for _, name in pts]

    def node(self, k: str | bytes | int) -> str:
        i = bisect.bisect_left(self.values, ketama_hash(ketama_bytes(k)))
        return self.owners[0 if i == len(self.values) else i]


class UHashRing:
    """The uhashring package itself; bytes keys (which it would hash as ``str(b'..')``)
    are looked up with bisect_right on its own points."""

    def __init__(self, weights: dict[str, int]) -> None:
        self.ring = uhashring.HashRing(
            nodes={name: {"weight": w} for name, w in weights.items()}, hash_fn="ketama"
        )
        pts = self.ring.get_points()
        self.values = [v for v, _ in pts]
        self.owners = [name for _, name in pts]

    def node(self, k: str | bytes | int) -> str:
        if isinstance(k, bytes):
            i = bisect.bisect_right(self.values, ketama_hash(k))
            return self.owners[0 if i == len(self.values) else i]
        return str(self.ring.get_node(k))


# ---- files -------------------------------------------------------------------------------


def points_sha256(values: Sequence[int], owners: Sequence[str]) -> str:
    text = "".join(f"{v} {o}\n" for v, o in zip(values, owners, strict=True))
    return hashlib.sha256(text.encode()).hexdigest()


def vector(description: str, config: dict[str, Any], ring: Any, keys: list[Any],
           replicas_n: int | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "description": description,
        "generator": "tests/make_vectors.py (xxhash, hashlib, struct, bisect, uhashring)",
        "config": config,
        "npoints": len(ring.values),
        "points_sha256": points_sha256(ring.values, ring.owners),
        "keys": [encode_key(k) for k in keys],
        "expected": [ring.node(k) for k in keys],
    }
    if replicas_n is not None:
        doc["replicas_n"] = replicas_n
        doc["replicas"] = [ring.replicas(k, replicas_n) for k in keys]
    return doc


def build_all() -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}

    nodes3 = ["cache-a", "cache-b", "cache-c"]
    files["ring-3nodes.json"] = vector(
        "ring-xxh64@1, 3 equal nodes, vnodes=160",
        {"algorithm": "ring-xxh64@1", "nodes": nodes3, "weights": None, "zones": None,
         "vnodes": 160},
        XxhRing(dict.fromkeys(nodes3, 1.0), 160), make_keys(SEED + 1))

    w10 = {f"db-{i:02d}": w for i, w in
           enumerate([1.0, 2.0, 0.5, 1.5, 3.25, 1.0, 0.75, 4.0, 1.0, 0.1])}
    files["ring-10weighted.json"] = vector(
        "ring-xxh64@1, 10 weighted nodes (half-to-even rounding of point counts), vnodes=100",
        {"algorithm": "ring-xxh64@1", "nodes": list(w10), "weights": w10, "zones": None,
         "vnodes": 100},
        XxhRing(w10, 100), make_keys(SEED + 2), replicas_n=3)

    names = [f"node-{i}" for i in range(9)]
    zones = dict(zip(names, ["eu-1", "eu-1", "eu-1", "us-1", "us-1", "ap-1", "ap-1", "sa-1",
                             "eu-1"], strict=True))
    files["ring-zones.json"] = vector(
        "ring-xxh64@1, 9 nodes in 4 uneven zones, vnodes=64, replicas n=3 (zone-distinct)",
        {"algorithm": "ring-xxh64@1", "nodes": names, "weights": None, "zones": zones,
         "vnodes": 64},
        XxhRing(dict.fromkeys(names, 1.0), 64, zones), make_keys(SEED + 3), replicas_n=3)
    files["ring-zones-n6.json"] = vector(
        "ring-xxh64@1, same zoned ring, replicas n=6 (more copies than zones: deferred nodes)",
        {"algorithm": "ring-xxh64@1", "nodes": names, "weights": None, "zones": zones,
         "vnodes": 64},
        XxhRing(dict.fromkeys(names, 1.0), 64, zones), make_keys(SEED + 4)[::2],
        replicas_n=6)

    two = {"127.0.0.1:11211": 600, "127.0.0.1:11212": 400}
    files["ketama-libketama-2.json"] = vector(
        "ketama-md5@1 libketama: the two-server example (memory 600/400)",
        {"algorithm": "ketama-md5@1", "compat": "libketama", "nodes": list(two),
         "weights": two},
        LibKetama(two), make_keys(SEED + 5))

    k10 = {f"10.0.1.{i}:11211": w for i, w in enumerate([1, 2, 3, 1, 5, 8, 1, 2, 4, 7])}
    files["ketama-libketama-10w.json"] = vector(
        "ketama-md5@1 libketama: 10 servers with weights (float32 point counts)",
        {"algorithm": "ketama-md5@1", "compat": "libketama", "nodes": list(k10),
         "weights": k10},
        LibKetama(k10), make_keys(SEED + 6))

    files["ketama-uhashring-10w.json"] = vector(
        "ketama-md5@1 uhashring: 10 servers with weights, answers of the uhashring package",
        {"algorithm": "ketama-md5@1", "compat": "uhashring", "nodes": list(k10),
         "weights": k10},
        UHashRing(k10), make_keys(SEED + 7))
    return files


def render(doc: dict[str, Any]) -> str:
    """Top-level fields one per line and one list item per line: small, readable diffs."""
    lines = []
    for field, value in doc.items():
        if isinstance(value, list):
            items = ",\n  ".join(json.dumps(v, ensure_ascii=True) for v in value)
            lines.append(f"{json.dumps(field)}: [\n  {items}\n]")
        else:
            lines.append(f"{json.dumps(field)}: {json.dumps(value, ensure_ascii=True)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the files on disk instead of writing them")
    args = parser.parse_args(argv)
    files = build_all()
    if args.check:
        stale = [name for name, doc in files.items()
                 if not (OUT / name).exists() or (OUT / name).read_text() != render(doc)]
        for name in stale:
            print(f"stale: {OUT / name}", file=sys.stderr)
        return 1 if stale else 0
    OUT.mkdir(exist_ok=True)
    for name, doc in files.items():
        (OUT / name).write_text(render(doc))
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
