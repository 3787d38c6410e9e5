"""Generate tests/vectors/algos.json: golden placements of Maglev, Rendezvous and JumpHash.

Independent of ringguard on purpose: XXH64 comes from the ``xxhash`` package and each
algorithm is written again below, plainly, from docs/placement-contract.md sections 9-11.
A constant mistyped in both the compiled core and ringguard.reference would show up here.

    python tests/vectors/make_algos_vectors.py > tests/vectors/algos.json
"""

from __future__ import annotations

import json
import math

import xxhash


def h64(data: bytes, seed: int = 0) -> int:
    return xxhash.xxh64_intdigest(data, seed=seed)


def canon(key: str | int) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else (key % 2**64).to_bytes(8, "little")


KEYS: list[str | int] = ["", "a", "order:42", "user/1001", "\u00e9t\u00e9", "x" * 40, 0, 1, 7, -1,
                         2**63, 2**64 - 1, 123456789012345]
KEYS += [f"key-{i}" for i in range(40)] + list(range(1000, 1040))


def maglev(nodes: dict[str, float], m: int) -> list[int]:
    names = sorted(nodes)
    total = math.fsum(nodes[n] for n in names)
    x = {n: m * nodes[n] / total for n in names}
    q = {n: math.floor(x[n]) for n in names}
    extra = m - sum(q.values())
    for n in sorted(names, key=lambda n: (-(x[n] - q[n]), n))[:max(extra, 0)]:
        q[n] += 1
    q = {n: max(q[n], 1) for n in names}
    perm = {n: (h64(n.encode(), 0) % m, h64(n.encode(), 1) % (m - 1) + 1) for n in names}
    step = dict.fromkeys(names, 0)
    got = dict.fromkeys(names, 0)
    table: list[str] = [""] * m
    left = m
    while left:
        for n in names:
            if not left:
                break
            if got[n] == q[n]:
                continue
            off, sk = perm[n]
            while table[(off + step[n] * sk) % m]:
                step[n] += 1
            table[(off + step[n] * sk) % m] = n
            step[n] += 1
            got[n] += 1
            left -= 1
    order = list(nodes)
    return [order.index(n) for n in table]


def ln_u(h: int) -> float:
    x = 2 * (h >> 12) + 1
    e = x.bit_length() - 1
    m = x / 2**e
    if m > 1.41421356237309514547:
        m /= 2
        e += 1
    s = (m - 1.0) / (m + 1.0)
    z = s * s
    p = 1.0 / 25
    for k in (23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3):
        p = p * z + 1.0 / k
    lnm = 2.0 * s + (2.0 * s) * (z * p)
    ee = float(e - 53)
    return (ee * 1.90821492927058770002e-10 + lnm) + ee * 6.93147180369123816490e-01


def hrw(nodes: dict[str, float], key: str | int, n: int) -> list[int]:
    kh = h64(canon(key))
    equal = len(set(nodes.values())) == 1
    scored = []
    for i, (name, w) in enumerate(nodes.items()):
        h = h64(kh.to_bytes(8, "little") + h64(name.encode()).to_bytes(8, "little"))
        score = float(h >> 12) if equal else -w / ln_u(h)
        scored.append((-score, name, i))
    return [i for _, _, i in sorted(scored)[:n]]


def jump(key: int, nb: int) -> int:
    b, j = -1, 0
    while j < nb:
        b = j
        key = (key * 2862933555777941757 + 1) & (2**64 - 1)
        j = int((b + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return b


def jump_replicas(key: str | int, nb: int, n: int) -> list[int]:
    h = h64(canon(key))
    free = list(range(nb))
    out = []
    for r in range(n):
        hr = h if r == 0 else h64(h.to_bytes(8, "little"), r)
        out.append(free.pop(jump(hr, len(free))))
    return out


def key_json(k: str | int) -> dict[str, object]:
    return {"str": k} if isinstance(k, str) else {"int": k}


def main() -> None:
    cases: list[dict[str, object]] = []
    node_sets = {
        "one": {"solo": 1.0},
        "three": {"c": 1.0, "a": 1.0, "b": 1.0},
        "ten": {f"node{i}": 1.0 for i in range(10)},
        "weighted": {"db1": 1.0, "db2": 2.5, "db3": 0.5, "db4": 1.0},
    }
    for nodes in node_sets.values():
        for m in (13, 251, 5003):
            if m < len(nodes):
                continue
            table = maglev(nodes, m)
            nrep = min(3, len(set(table)))
            rows = []
            for k in KEYS:
                pos = h64(canon(k)) % m
                row: list[int] = []
                while len(row) < nrep:
                    if table[pos] not in row:
                        row.append(table[pos])
                    pos = (pos + 1) % m
                rows.append(row)
            cases.append({"algorithm": "maglev", "nodes": list(nodes.items()), "table_size": m,
                          "table_head": table[:64], "replicas": rows})
        nrep = min(3, len(nodes))
        cases.append({"algorithm": "rendezvous", "nodes": list(nodes.items()),
                      "replicas": [hrw(nodes, k, nrep) for k in KEYS]})
        names = list(nodes)
        cases.append({"algorithm": "jump", "nodes": names,
                      "replicas": [jump_replicas(k, len(names), nrep) for k in KEYS]})
    doc: dict[str, object] = {
        "generator": "tests/vectors/make_algos_vectors.py (xxhash package + plain Python)",
        "keys": [key_json(k) for k in KEYS],
        "ln_u": [[h, ln_u(h).hex()] for h in (0, 1, 2**12, 2**52, 2**63, 2**64 - 1,
                                               0x123456789ABCDEF0, 0xFEDCBA9876543210)],
        "jump_published": {
            "1": [jump(1, b) for b in range(1, 20)],
            "3735928559": [jump(0xDEADBEEF, b) for b in range(1, 20)],
        },
        "cases": cases,
    }
    # "nodes" are [name, weight] pairs: their order is part of each case (indices refer to it)
    print(json.dumps(doc, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
