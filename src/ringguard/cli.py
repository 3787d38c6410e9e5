"""The ``ringguard`` command line (``python -m ringguard``).

For now it prints a placement report; ``assign``, ``plan``, ``demo`` and the backup
commands arrive with their issues. Exit codes: 0 success, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

from . import BACKEND, Ring, __version__, load, movement


def _report(args: argparse.Namespace) -> int:
    nodes = [f"node{i}" for i in range(args.nodes)]
    ring = Ring(nodes, vnodes=args.vnodes)
    rng = np.random.default_rng(args.seed)
    keys = rng.integers(0, 2**63, args.keys, dtype=np.int64).view(np.uint64)
    t0 = time.perf_counter()
    idx = ring.assign(keys)
    dt = time.perf_counter() - t0
    rep = load(ring, keys)
    print(f"ringguard {__version__} (core: {BACKEND})")
    print(f"{ring!r}")
    print(f"assigned {len(keys):,} uint64 keys in {dt * 1e3:.1f} ms "
          f"({len(keys) / dt / 1e6:.1f} M keys/s)")
    width = max(len(n) for n in nodes)
    for name, count in zip(ring.nodes, rep.counts.tolist(), strict=True):
        bar = "#" * int(40 * count / max(1, rep.max))
        print(f"  {name:<{width}} {count:>10,}  {bar}")
    print(f"max/mean load: {rep.max_over_mean:.3f}")
    grown = ring.add(f"node{args.nodes}")
    mv = movement(ring, grown, keys)
    print(f"adding node{args.nodes}: {mv.fraction:.2%} of keys move "
          f"(ideal {1 / (args.nodes + 1):.2%}), all to the new node: "
          f"{all(to == f'node{args.nodes}' for _, to, _ in mv.flows())}")
    reps = ring.replicas(keys[:5], min(3, args.nodes))
    print("preference lists (first 5 keys):")
    for k, row in zip(keys[:5].tolist(), reps.tolist(), strict=True):
        print(f"  {k:>20} -> {', '.join(ring.nodes[i] for i in row)}")
    del idx
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ringguard`` command."""
    parser = argparse.ArgumentParser(
        prog="ringguard", description="Consistent-hash placement with a compiled batch core."
    )
    parser.add_argument("--version", action="version", version=f"ringguard {__version__}")
    sub = parser.add_subparsers(dest="command")
    rep = sub.add_parser("report", help="build a ring and print its balance and movement")
    for p in (parser, rep):
        p.add_argument("--nodes", type=int, default=5, help="number of nodes (default 5)")
        p.add_argument("--vnodes", type=int, default=160, help="points per node (default 160)")
        p.add_argument("--keys", type=int, default=1_000_000, help="keys to place")
        p.add_argument("--seed", type=int, default=0, help="random seed for the keys")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.keys < 1 or args.vnodes < 1:
        parser.error("--nodes, --keys and --vnodes must be >= 1")
    return _report(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
