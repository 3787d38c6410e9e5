"""The ``ringguard`` command line (``python -m ringguard``).

Commands: ``report`` (the default: a placement report), ``demo`` (an order stream over
SQLite nodes, or real redis-server processes, surviving a node's death and disk loss: the
main job), ``assign`` (files through a placement), ``plan`` (migration plans),
``availability`` (nines, durability, capacity, backup storage), ``bench`` (a checked
speed-up over the reference) and ``backup``/``verify``/``restore``/``snapshots`` (backup
repositories of SQLite node files). Exit codes: 0 success, 1 a failure found (an order
lost, a damaged backup) or a missing optional dependency, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from . import BACKEND, Ring, __version__, load, movement
from . import availability as av


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


def _duration(text: str) -> float:
    try:
        return av.parse_duration(text, "duration")
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("duration: ")) from None


def _fmt_hours(hours: float) -> str:
    """A duration for people: seconds, minutes, hours or days."""
    if hours * 3600 < 90:
        return f"{hours * 3600:.1f} s"
    if hours * 60 < 90:
        return f"{hours * 60:.1f} min"
    if hours < 48:
        return f"{hours:.2f} h"
    return f"{hours / 24:.1f} d"


def _plot_available() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _availability_figures(args: argparse.Namespace,
                          progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Closed forms and the simulation for the layout described by ``args``."""
    nodes = [f"node{i}" for i in range(args.nodes)]
    ring = Ring(nodes, vnodes=args.vnodes)
    pairs = None
    if args.strategy == "pairs":
        if args.nodes % 2:
            raise ValueError(f"--strategy pairs needs an even --nodes, got {args.nodes}")
        pairs = [(nodes[i], nodes[i + 1]) for i in range(0, args.nodes, 2)]
    r = args.replication
    sets = av.replica_sets(ring, r, args.strategy, pairs)
    horizon = args.years * av.HOURS_PER_YEAR
    a_node = av.steady_state_availability(args.mtbf, args.mttr)
    a_closed = av.parallel_availability([a_node] * r)
    if r > 1:
        a_closed = max(0.0, a_closed - args.detect / (args.mtbf + args.mttr))
    m = av.mttdl(args.mtbf, args.mttr, r, copysets=len(sets))
    p_closed = av.loss_probability(horizon, m)
    if len(sets) == math.comb(args.nodes, r):  # every r nodes hold some range together
        model = "any r of n nodes down"
        p_markov = av.markov_loss_probability(horizon, args.mtbf, args.mttr, r,
                                              nodes=args.nodes)
    else:
        model = "independent replica sets"
        p_markov = av.markov_loss_probability(horizon, args.mtbf, args.mttr, r,
                                              copysets=len(sets))
    failures = args.failures if args.failures is not None else min(1, args.nodes - r)
    usable = av.usable_capacity(1.0, args.nodes, failures, r)
    backup = av.backup_storage(1.0, args.copies, compression_ratio=args.compression_ratio,
                               dedup_ratio=args.dedup_ratio, retained=args.retained,
                               change_fraction=args.change_fraction)
    t0 = time.perf_counter()
    res = av.simulate(ring, r, args.strategy, pairs=pairs, mtbf=args.mtbf, mttr=args.mttr,
                      detect=args.detect, years=args.years, trials=args.trials,
                      seed=args.seed, progress=progress)
    seconds = time.perf_counter() - t0
    a_sim = min(1.0, res.availability)
    return {
        "nodes": args.nodes, "replication": r, "strategy": args.strategy,
        "vnodes": args.vnodes, "replica_sets": len(sets),
        "mtbf_hours": args.mtbf, "mttr_hours": args.mttr, "detect_hours": args.detect,
        "years": args.years, "trials": args.trials, "seed": args.seed,
        "closed_form": {
            "availability": a_closed, "nines": av.nines(a_closed),
            "downtime_hours_per_year": av.downtime_hours_per_year(a_closed),
            "mttdl_hours": m, "p_loss": p_closed, "p_loss_markov": p_markov,
            "markov_model": model,
        },
        "simulated": {
            "availability": res.availability, "availability_ci": list(res.availability_ci),
            "nines": av.nines(a_sim),
            "downtime_hours_per_year": av.downtime_hours_per_year(a_sim),
            "p_loss": res.p_loss, "p_loss_ci": list(res.p_loss_ci),
            "expected_keys_lost": res.expected_keys_lost,
            "expected_keys_lost_ci": list(res.expected_keys_lost_ci),
            "seconds": seconds,
        },
        "usable_capacity_fraction": usable, "failures_tolerated": failures,
        "backup": {"copies": args.copies, "compression_ratio": args.compression_ratio,
                   "dedup_ratio": args.dedup_ratio, "retained": args.retained,
                   "change_fraction": args.change_fraction, "storage_over_data": backup},
    }


def _print_availability(f: dict[str, Any], raw_tb: float | None) -> None:
    c, s = f["closed_form"], f["simulated"]
    years = f["years"]
    per = "/year" if years == 1 else f"/{years:g} y"
    print(f"ringguard availability: {f['nodes']} nodes, replication {f['replication']}, "
          f"strategy {f['strategy']} ({f['vnodes']} vnodes, {f['replica_sets']} replica sets)")
    detect = f" detection {_fmt_hours(f['detect_hours'])}," if f["detect_hours"] else ""
    print(f"MTBF {_fmt_hours(f['mtbf_hours'])}, MTTR {_fmt_hours(f['mttr_hours'])},{detect} "
          f"{years:g} y x {f['trials']:,} trials (seed {f['seed']}, {s['seconds']:.1f} s)")
    print()
    rows = [
        ("", "closed form", "simulated", "95% CI"),
        ("availability", f"{c['availability']:.8f}", f"{s['availability']:.8f}",
         f"[{s['availability_ci'][0]:.8f}, {s['availability_ci'][1]:.8f}]"),
        ("nines", f"{c['nines']:.2f}", f"{s['nines']:.2f}", ""),
        ("downtime/year", _fmt_hours(c["downtime_hours_per_year"]),
         _fmt_hours(s["downtime_hours_per_year"]), ""),
        (f"P(data loss){per}", f"{c['p_loss']:.4g}", f"{s['p_loss']:.4g}",
         f"[{s['p_loss_ci'][0]:.4g}, {s['p_loss_ci'][1]:.4g}]"),
        ("  Markov chain", f"{c['p_loss_markov']:.4g}", "", f"({c['markov_model']})"),
        ("MTTDL", f"{c['mttdl_hours'] / av.HOURS_PER_YEAR:.3g} y", "", ""),
        ("keys lost (mean)", "", f"{s['expected_keys_lost']:.3%}",
         f"[{s['expected_keys_lost_ci'][0]:.3%}, {s['expected_keys_lost_ci'][1]:.3%}]"),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print()
    usable = f["usable_capacity_fraction"]
    b = f["backup"]
    extra_u = f" = {usable * raw_tb:.4g} TB of {raw_tb:g} TB raw" if raw_tb else ""
    print(f"usable capacity   {usable:.1%} of raw ({f['replication']} copies, room to "
          f"re-replicate after {f['failures_tolerated']} node failure(s)){extra_u}")
    extra_b = f" = {b['storage_over_data'] * usable * raw_tb:.4g} TB" if raw_tb else ""
    kept = (f", {b['retained']} retained, {b['change_fraction']:.0%} stored by each after "
            "the first" if b["retained"] > 1 else "")
    print(f"backup storage    {b['storage_over_data']:.3g} x data ({b['copies']} "
          f"{'copy' if b['copies'] == 1 else 'copies'}, "
          f"compression {b['compression_ratio']:g}:1, dedup {b['dedup_ratio']:g}:1"
          f"{kept}){extra_b}")
    if f["replica_sets"] > 1:
        print(f"P(data loss) closed form: MTTDL = MTTF^r / (r MTTR^(r-1)) / "
              f"{f['replica_sets']} replica sets (accurate while it is small)")


def _plot(args: argparse.Namespace, plt: Any) -> None:
    """Closed forms against replication and node count, with the layout's real copysets."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    reps = list(range(1, 6))
    a_node = av.steady_state_availability(args.mtbf, args.mttr)
    left.plot(reps, [av.nines(av.parallel_availability([a_node] * r)) for r in reps], "o-")
    left.set_xticks(reps)
    left.set_xlabel("replication")
    left.set_ylabel("nines (closed form)")
    left.set_title(f"availability, MTBF {_fmt_hours(args.mtbf)}, MTTR {_fmt_hours(args.mttr)}")
    sizes = [n for n in (2, 3, 4, 6, 8, 10, 16, 24, 32, 48, 64, 100) if n <= max(10, args.nodes)]
    horizon = args.years * av.HOURS_PER_YEAR
    layouts: list[tuple[int, Literal["ring", "pairs"]]] = [(2, "ring"), (2, "pairs"), (3, "ring")]
    for r, strategy in layouts:
        xs, ys = [], []
        for n in sizes:
            if n < r or (strategy == "pairs" and n % 2):
                continue
            names = [f"node{i}" for i in range(n)]
            ring = Ring(names, vnodes=args.vnodes)
            pairs = ([(names[i], names[i + 1]) for i in range(0, n, 2)]
                     if strategy == "pairs" else None)
            g = len(av.replica_sets(ring, r, strategy, pairs))
            xs.append(n)
            ys.append(av.loss_probability(horizon, av.mttdl(args.mtbf, args.mttr, r,
                                                            copysets=g)))
        right.plot(xs, ys, "o-", label=f"r={r} {strategy}")
    right.set_yscale("log")
    right.set_xlabel("nodes")
    right.set_ylabel(f"P(data loss) in {args.years:g} y (closed form)")
    right.set_title("durability vs node count")
    right.legend()
    fig.tight_layout()
    fig.savefig(args.plot)
    plt.close(fig)


def _finite(obj: Any) -> Any:
    """JSON-safe copy: infinite figures (e.g. the nines of availability 1.0) become null."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _availability(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    plt = None
    if args.plot:
        plt = _plot_available()
        if plt is None:
            print("ringguard availability: --plot needs matplotlib: "
                  "pip install 'ringguard[plot]'", file=sys.stderr)
            return 1
    for name in ("nodes", "trials", "copies", "retained", "vnodes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if not (math.isfinite(args.years) and args.years > 0):
        parser.error(f"--years must be > 0, got {args.years:g}")
    if args.raw_tb is not None and not (math.isfinite(args.raw_tb) and args.raw_tb > 0):
        parser.error(f"--raw-tb must be > 0, got {args.raw_tb:g}")
    try:
        with Progress("simulating", total=args.trials, unit="trials") as bar, \
                bar.ticking():
            figures = _availability_figures(args, lambda done, total: bar.update(done))
    except (TypeError, ValueError) as exc:
        parser.error(str(exc).replace("_", "-"))
    if args.json:
        print(json.dumps(_finite(figures), indent=2, allow_nan=False))
    else:
        _print_availability(figures, args.raw_tb)
    if plt is not None:
        _plot(args, plt)
        if not args.json:
            print(f"plot written to {args.plot}")
    return 0


def _add_availability(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "availability",
        help="availability, durability, capacity and backup figures of a layout",
        description="Closed-form availability and mean time to data loss of a ring layout, "
        "checked by a Monte Carlo simulation of node failures over its real replica sets. "
        "Durations are hours or take a unit: 90s, 15min, 4h, 30d, 2w, 1y.",
    )
    p.add_argument("--nodes", type=int, default=10, help="number of nodes (default 10)")
    p.add_argument("--replication", type=int, default=2, help="copies of each key (default 2)")
    p.add_argument("--strategy", choices=("ring", "pairs"), default="ring",
                   help="replicas on ring successors, or fixed pairs node0+node1, ...")
    p.add_argument("--vnodes", type=int, default=160, help="points per node (default 160)")
    p.add_argument("--mtbf", type=_duration, default=_duration("91d"),
                   help="mean time between failures of one node (default 91d)")
    p.add_argument("--mttr", type=_duration, default=_duration("24h"),
                   help="mean time to repair/re-replicate a node (default 24h)")
    p.add_argument("--detect", type=_duration, default=0.0,
                   help="failure detection + failover time per primary failure (default 0)")
    p.add_argument("--years", type=float, default=1.0, help="horizon in years (default 1)")
    p.add_argument("--trials", type=int, default=10_000, help="simulated trials (10000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--failures", type=int, default=None,
                   help="node failures to keep room for (default 1 if possible)")
    p.add_argument("--raw-tb", type=float, default=None, help="raw capacity of all nodes, TB")
    p.add_argument("--copies", type=int, default=1, help="backup copies (default 1)")
    p.add_argument("--compression-ratio", type=float, default=1.0,
                   help="backup compression ratio x:1 (default 1)")
    p.add_argument("--dedup-ratio", type=float, default=1.0,
                   help="backup dedup ratio x:1 (default 1)")
    p.add_argument("--retained", type=int, default=1, help="backups retained (default 1)")
    p.add_argument("--change-fraction", type=float, default=1.0,
                   help="fraction stored by each retained backup after the first (1 = full)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--plot", metavar="OUT.PNG", default=None,
                   help="draw availability and loss probability against replication and "
                   "node count (needs matplotlib: pip install 'ringguard[plot]')")
    return p


_ALGORITHMS = ("ring", "ketama", "maglev", "rendezvous", "jump")


def _placement_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    """A placement from ``--placement FILE`` (JSON) or ``--nodes a,b,c [--algorithm]``."""
    from . import JumpHash, Maglev, Rendezvous, from_json
    from .errors import InvalidPlacementError

    if args.placement:
        try:
            with open(args.placement, encoding="utf-8") as f:
                text = f.read(64 * 1024 * 1024 + 1)
            return from_json(text)
        except OSError as exc:
            parser.error(f"--placement: cannot read {args.placement}: {exc.strerror}")
        except InvalidPlacementError as exc:
            parser.error(f"--placement: {args.placement}: {exc}")
    if not args.nodes:
        parser.error("give --placement FILE or --nodes a,b,c")
    names = [n.strip() for n in args.nodes.split(",") if n.strip()]
    try:
        if args.algorithm == "ring":
            return Ring(names, vnodes=args.vnodes)
        if args.algorithm == "ketama":
            return Ring.ketama(names)
        return {"maglev": Maglev, "rendezvous": Rendezvous, "jump": JumpHash}[args.algorithm](
            names)
    except (TypeError, ValueError) as exc:
        parser.error(f"--nodes: {exc}")


def _plan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from . import from_json, plan
    from .errors import InvalidPlacementError

    old = _placement_from_args(args, parser)
    try:
        if args.add:
            new = old.add(args.add)
        elif args.remove:
            new = old.remove(args.remove)
        elif args.new:
            with open(args.new, encoding="utf-8") as f:
                new = from_json(f.read(64 * 1024 * 1024 + 1))
        else:
            parser.error("give one of --add NODE, --remove NODE or --new FILE")
        result = plan(old, new)
    except OSError as exc:
        parser.error(f"--new: cannot read {args.new}: {exc.strerror}")
    except InvalidPlacementError as exc:
        parser.error(f"--new: {exc}")
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result)
    if args.write:
        with open(args.write, "w", encoding="utf-8") as f:
            f.write(new.to_json())
        print(f"new placement written to {args.write}")
    return 0


def _add_placement_args(p: argparse.ArgumentParser) -> None:
    """``--placement FILE`` or ``--nodes A,B,C [--algorithm] [--vnodes]``."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--placement", metavar="FILE", help="placement JSON (from to_json)")
    src.add_argument("--nodes", metavar="A,B,C", help="node names, comma-separated")
    p.add_argument("--algorithm", choices=_ALGORITHMS, default="ring",
                   help="with --nodes: the algorithm (default ring)")
    p.add_argument("--vnodes", type=int, default=160, help="with --nodes: ring vnodes (160)")


def _add_plan(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "plan",
        help="the exact hash ranges that move when nodes join or leave",
        description="Prints the migration plan between a placement and its successor: "
        "the moved share of the hash space per (source, destination), exactly, without keys.",
        epilog="examples:\n  ringguard plan --nodes db1,db2,db3 --add db4\n"
        "  ringguard plan --placement ring.json --remove db2 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_placement_args(p)
    change = p.add_mutually_exclusive_group()
    change.add_argument("--add", metavar="NODE", help="a node joins")
    change.add_argument("--remove", metavar="NODE", help="a node leaves")
    change.add_argument("--new", metavar="FILE", help="the new placement's JSON")
    p.add_argument("--write", metavar="FILE", help="also write the new placement's JSON")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    return p


def _assign(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .io import assign_file

    placement = _placement_from_args(args, parser)
    t0 = time.perf_counter()
    bar = Progress("assign", total=_count_rows(args.input, args.format), unit="rows")
    try:
        rows = assign_file(placement, args.input, args.output, args.key,
                           replicas=args.replicas or 0, in_format=args.format,
                           out_format=args.output_format, column=args.column,
                           progress=bar.update, compression=args.compression)
    except ImportError as exc:
        print(f"ringguard assign: {exc}", file=sys.stderr)
        return 1
    except KeyError as exc:
        parser.error(str(exc.args[0]))
    except FileNotFoundError as exc:
        parser.error(f"cannot read {exc.filename or args.input}: {exc.strerror}")
    except (TypeError, ValueError, OSError) as exc:
        parser.error(str(exc))
    finally:
        if bar.done:
            bar.close()
    dt = time.perf_counter() - t0
    print(f"{rows:,} rows -> {args.output} ({rows / max(dt, 1e-9):,.0f} rows/s)")
    return 0


def _count_rows(path: str, fmt: str | None) -> int | None:
    """Rows of a Parquet file from its footer (for the progress bar); None otherwise."""
    try:
        from .io import detect_format

        if detect_format(path, fmt) != "parquet":
            return None
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows) or None
    except Exception:  # the real error, if any, comes from assign_file itself
        return None


def _add_assign(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "assign",
        help="add the owning node of every row to a CSV, Parquet, Arrow or NDJSON file",
        description="Streams INPUT by record batches, adds a node column (and with "
        "--replicas N the preference list node, node_1, ...), and writes OUTPUT in the format "
        "of its suffix. Needs pyarrow (pip install 'ringguard[arrow]').",
        epilog="examples:\n  ringguard assign orders.parquet -o placed.parquet --key order_id "
        "--nodes db1,db2,db3\n  ringguard assign carts.csv -o out.csv --key cart "
        "--placement ring.json --replicas 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="input file (.csv, .parquet, .arrow/.feather, .ndjson)")
    p.add_argument("-o", "--output", required=True, help="output file")
    p.add_argument("--key", required=True, help="the key column")
    _add_placement_args(p)
    p.add_argument("--replicas", type=int, default=0, help="add N preference-list columns")
    p.add_argument("--column", default="node", help="name of the added column (node)")
    p.add_argument("--format", choices=("csv", "parquet", "arrow", "ndjson"), default=None,
                   help="input format (default: from the suffix)")
    p.add_argument("--output-format", choices=("csv", "parquet", "arrow", "ndjson"),
                   default=None, help="output format (default: from the suffix)")
    p.add_argument("--compression", choices=("none", "snappy", "lz4", "zstd", "gzip"),
                   default=None, help="output compression: parquet (default: as the "
                   "input's columns for parquet input, else snappy) or arrow (default none; "
                   "lz4, zstd)")
    return p


def _bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """A quick side-by-side of the compiled core and the pure-Python reference."""
    from . import reference

    if args.keys < 1000 or args.nodes < 1:
        parser.error("--keys must be >= 1000 and --nodes >= 1")
    names = [f"node{i}" for i in range(args.nodes)]
    ring, ref = Ring(names), reference.Ring(names)
    rng = np.random.default_rng(0)
    u64 = rng.integers(0, 2**63, args.keys, dtype=np.int64).view(np.uint64)
    strs = [f"order:{i}" for i in range(args.keys)]
    sub = max(1000, args.keys // 200)

    def best(fn: Any, data: Any, repeat: int) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn(data)
            times.append(time.perf_counter() - t0)
        return len(data) / min(times)

    rows = []
    for label, data in (("uint64 keys", u64), ("str keys (list)", strs),
                        ("str keys (NumPy S)", np.array(strs, dtype="S"))):
        fast = best(ring.assign, data, 5)
        slow = best(ref.assign, data[:sub], 1)
        if not np.array_equal(ring.assign(data[:sub]), ref.assign(data[:sub])):
            print(f"ringguard bench: {label}: compiled and reference disagree", file=sys.stderr)
            return 1
        rows.append((label, fast, slow))
    print(f"ringguard {__version__} (core: {BACKEND}), Ring of {args.nodes} nodes, "
          f"{args.keys:,} keys (reference on {sub:,})")
    print(f"  {'workload':<20} {'ringguard':>14} {'reference':>14} {'speed-up':>9}")
    for label, fast, slow in rows:
        print(f"  {label:<20} {fast / 1e6:>10.1f} M/s {slow / 1e6:>10.3f} M/s "
              f"{fast / slow:>8.0f}x")
    print("  (answers checked equal; benchmarks/compare.py has the full comparison)")
    return 0


def _demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import signal

    from .demo import RedisUnavailable, print_report, run_demo

    if args.orders < 2 or args.nodes < 3 or args.batch < 1:
        parser.error("--orders must be >= 2, --nodes >= 3 and --batch >= 1")

    def terminated(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds through run_demo: its servers are stopped

    previous = signal.signal(signal.SIGTERM, terminated)
    bar = Progress("writing", total=args.orders, unit="orders")
    try:
        rep = run_demo(args.dir, orders=args.orders, nodes=args.nodes, batch=args.batch,
                       seed=args.seed, backend=args.backend,
                       progress=lambda done, total: bar.update(done, force=done >= total))
    except RedisUnavailable as exc:
        print(f"ringguard demo: error: {exc}", file=sys.stderr)
        return 2 if exc.missing == "redis-server" else 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    if bar.enabled:
        bar.close()
    print_report(rep)
    return 1 if rep.lost else 0


# ---- progress ------------------------------------------------------------------------------


class Progress:
    """A one-line progress display on stderr, drawn only when stderr is a terminal.

    ``update(done)`` redraws at most every ``interval_s``; with a ``total`` it draws a bar,
    without one a count and rate. ``tick()`` in a ``with progress.ticking():`` block keeps an
    elapsed-time line alive while one long call runs. Nothing is written when piped.
    """

    def __init__(self, label: str, total: int | None = None, unit: str = "",
                 *, stream: Any = None, interval_s: float = 0.1) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.label, self.total, self.unit = label, total, unit
        self.interval_s = interval_s
        self.t0 = time.perf_counter()
        self._last = -1.0
        self._drawn = False
        self.done = 0

    def _line(self) -> str:
        dt = max(time.perf_counter() - self.t0, 1e-9)
        unit = f" {self.unit}" if self.unit else ""
        if self.total:
            width = 30
            filled = min(width, int(width * self.done / self.total))
            return (f"  {self.label} [{'#' * filled}{'.' * (width - filled)}] "
                    f"{self.done:,}/{self.total:,}{unit} ({dt:.1f} s)")
        if self.done:
            return f"  {self.label} {self.done:,}{unit} ({self.done / dt:,.0f}{unit}/s)"
        return f"  {self.label} ... {dt:.1f} s"

    def update(self, done: int, *, force: bool = False) -> None:
        """Record ``done`` units and redraw if due."""
        self.done = done
        if not self.enabled:
            return
        now = time.perf_counter()
        if force or now - self._last >= self.interval_s:
            self._last = now
            self.stream.write("\r" + self._line() + "\x1b[K")
            self.stream.flush()
            self._drawn = True

    def hook(self) -> Any:
        """A ``progress(done, total)`` callback for the library's long calls."""
        def progress(done: int, total: int) -> None:
            self.total = total or None
            self.update(done)
        return progress

    def close(self) -> None:
        """Draw the final state and end the line (only if something was drawn)."""
        if self.enabled:
            self.update(self.done, force=True)
            self.stream.write("\n")
            self.stream.flush()

    def ticking(self) -> Any:
        """A context manager that redraws the elapsed time while its block runs."""
        import contextlib
        import threading

        @contextlib.contextmanager
        def run() -> Any:
            stop = threading.Event()

            def loop() -> None:
                while not stop.wait(0.25):
                    self.update(self.done, force=True)

            thread = threading.Thread(target=loop, daemon=True) if self.enabled else None
            if thread is not None:
                thread.start()
            try:
                yield self
            finally:
                stop.set()
                if thread is not None:
                    thread.join()

        return run()

    def __enter__(self) -> Progress:
        self.update(0, force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- backup commands ---------------------------------------------------------------------

PASSWORD_ENV = "RINGGUARD_PASSWORD"
_URL_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


def _redact(text: str) -> str:
    """``text`` with any ``user:secret@`` of a URL replaced by ``***@``."""
    return _URL_CREDENTIALS.sub(r"\1***@", text)


class _Fail(Exception):
    """A one-line error for stderr and the exit code (1 failure, 2 usage)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _is_url(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def _local_path(location: str) -> str:
    return location.removeprefix("file://")


def _open_repo(args: argparse.Namespace, *, create: bool) -> Any:
    """The repository of ``args.repo`` (+ ``--copy``); only ``backup`` may create one."""
    try:
        from .backup import BackupAuthError, BackupError, BackupRepository
    except ImportError as exc:  # pragma: no cover - backup needs only NumPy
        raise _Fail(f"{exc}", 1) from None

    urls = [args.repo, *(args.copy or [])]
    for u in urls:
        if not _is_url(u):
            path = _local_path(u)
            exists = os.path.isfile(os.path.join(path, "config"))
            if not create and not exists:
                raise _Fail(f"no backup repository at {path}"
                            + ("" if os.path.isdir(path) else " (no such directory)"))
            if os.path.exists(path) and not os.path.isdir(path):
                raise _Fail(f"{path} is not a directory")
    password = os.environ.get(PASSWORD_ENV) or None
    if create and getattr(args, "encrypt", False) and password is None:
        password = _prompt_password(new=True)

    def attempt(pw: str | None) -> Any:
        return BackupRepository(urls if len(urls) > 1 else urls[0], copies=len(urls),
                                password=pw)

    try:
        try:
            return attempt(password)
        except BackupAuthError as exc:
            if password is not None:
                raise _Fail(f"wrong password for {_redact(args.repo)} (from ${PASSWORD_ENV})"
                            if os.environ.get(PASSWORD_ENV) else
                            f"wrong password for {_redact(args.repo)}") from None
            if not sys.stdin.isatty():
                raise _Fail(f"{_redact(args.repo)} is encrypted: set {PASSWORD_ENV}") from exc
            try:
                return attempt(_prompt_password(new=False))
            except BackupAuthError:
                raise _Fail(f"wrong password for {_redact(args.repo)}") from None
    except _Fail:
        raise
    except ImportError as exc:
        raise _Fail(_redact(str(exc)), 1) from None
    except (BackupError, ValueError, TypeError, OSError) as exc:
        if password is not None and "not encrypted" in str(exc):
            raise _Fail(f"{_redact(args.repo)} is not encrypted: unset {PASSWORD_ENV}") from None
        msg = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        # A repository whose config is damaged or of an unknown format: a failure found
        # (exit 1); a bad URL, an unreachable location: a usage error (exit 2).
        code = 1 if isinstance(exc, BackupError) else 2
        raise _Fail(f"cannot open repository {_redact(args.repo)}: {_redact(msg)}",
                    code) from None


def _prompt_password(*, new: bool) -> str:
    import getpass

    if not sys.stdin.isatty():
        raise _Fail(f"a password is needed: set {PASSWORD_ENV} (no terminal to prompt on)")
    try:
        pw = getpass.getpass("repository password: ")
        if new and getpass.getpass("again: ") != pw:
            raise _Fail("the passwords differ")
    except (EOFError, KeyboardInterrupt):
        raise _Fail("no password given") from None
    if not pw:
        raise _Fail("empty password")
    return pw


def _resolve_snapshot(repo: Any, given: str) -> Any:
    """The manifest of a snapshot id or a unique prefix of one (>= 4 hex digits)."""
    if not re.fullmatch(r"[0-9a-f]{4,32}", given):
        raise _Fail(f"--snapshot: {given!r} is not a snapshot id (4 to 32 hex digits)")
    matches = [m for m in repo.snapshots() if m.id.startswith(given)]
    if not matches:
        raise _Fail(f"--snapshot: no snapshot {given} in {_redact(str(repo.urls[0]))} "
                    "(see: ringguard snapshots REPO)")
    if len(matches) > 1:
        raise _Fail(f"--snapshot: {given} is ambiguous ({len(matches)} snapshots start with "
                    "it)")
    return matches[0]


def _sqlite_existing(path: str, what: str) -> Any:
    from .backends import SQLiteBackend
    from .backends.base import BackendError

    if not os.path.isfile(path):
        raise _Fail(f"{what}: no such file: {path}")
    try:
        return SQLiteBackend(path)
    except BackendError as exc:
        raise _Fail(f"{what}: {exc}") from None


def _node_specs(specs: list[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise _Fail(f"--node: expected NAME=PATH, got {spec!r}")
        if name in {n for n, _ in out}:
            raise _Fail(f"--node: {name!r} given twice")
        out.append((name, path))
    return out


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _cmd_backup(args: argparse.Namespace) -> int:
    specs = _node_specs(args.node or [])
    if not specs:
        raise _Fail("give at least one --node NAME=PATH.sqlite")
    backends = [(name, _sqlite_existing(path, f"--node {name}")) for name, path in specs]
    repo = _open_repo(args, create=True)
    results = []
    try:
        for i, (name, backend) in enumerate(backends):
            label = f"backup {name} ({i + 1}/{len(backends)})"
            with Progress(label, unit="records") as bar, bar.ticking():
                repo.backup(backend, node=name, progress=bar.hook())
            results.extend(repo.last_backup)
    finally:
        for _, b in backends:
            b.close()
    rows = [{"node": r.node, "snapshot": r.snapshot, "records": r.records,
             "ranges": r.ranges, "chunks_written": r.chunks_written,
             "chunks_reused": r.chunks_reused, "bytes_written": r.bytes_written,
             "fuzzy": r.fuzzy, "seconds": r.seconds} for r in results]
    if args.json:
        print(json.dumps({"repository": _redact(args.repo), "snapshots": rows}, indent=2))
        return 0
    for r in rows:
        print(f"{r['snapshot']}  {r['node']}: {r['records']:,} records, "
              f"{r['chunks_written']} new chunks ({_fmt_bytes(r['bytes_written'])}), "
              f"{r['chunks_reused']} reused, {r['seconds']:.2f} s")
    return 0


def _cmd_snapshots(args: argparse.Namespace) -> int:
    repo = _open_repo(args, create=False)
    snaps = repo.snapshots(args.node) if args.node else repo.snapshots()
    rows = [{"id": m.id, "node": m.node, "created": m.created,
             "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(m.created)),
             "records": m.records, "ranges": len(m.ranges), "bytes": m.raw_bytes,
             "parent": m.parent, "fuzzy": m.fuzzy} for m in snaps]
    if args.json:
        print(json.dumps({"repository": _redact(args.repo), "snapshots": rows}, indent=2))
        return 0
    if not rows:
        print(f"no snapshots in {_redact(args.repo)}")
        return 0
    print(f"{'snapshot':<32}  {'node':<12} {'created (UTC)':<20} {'records':>10} "
          f"{'size':>10}")
    for r in rows:
        print(f"{r['id']:<32}  {r['node']:<12} {r['created_utc']:<20} {r['records']:>10,} "
              f"{_fmt_bytes(r['bytes']):>10}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    repo = _open_repo(args, create=False)
    if args.snapshot:
        ids = [_resolve_snapshot(repo, args.snapshot).id]
    else:
        ids = sorted({m.id for m in repo.snapshots()})
    problems: list[Any] = []
    snapshots = chunks = nbytes = 0
    t0 = time.perf_counter()
    with Progress("verify", total=len(ids) or None, unit="snapshots") as bar, bar.ticking():
        if args.snapshot:
            reports = [repo.verify(ids[0], read_data=not args.no_data, progress=bar.hook())]
        else:  # one pass over the whole repository: damaged manifests count too
            reports = [repo.verify(read_data=not args.no_data, progress=bar.hook())]
    for rep in reports:
        problems += rep.problems
        snapshots += rep.snapshots
        chunks += rep.chunks
        nbytes += rep.bytes_read
    ok = not problems
    if args.json:
        print(json.dumps({"repository": _redact(args.repo), "ok": ok,
                          "read_data": not args.no_data, "snapshots": snapshots,
                          "chunks": chunks, "bytes_read": nbytes,
                          "seconds": time.perf_counter() - t0,
                          "problems": [{**p.as_dict(), "copy": _redact(p.copy or "") or None}
                                       for p in problems]}, indent=2))
    else:
        what = "read back and checked" if not args.no_data else "checked to exist (no data read)"
        print(f"{snapshots} snapshot manifest(s), {chunks} chunk(s) {what}, "
              f"{_fmt_bytes(nbytes)} read in {time.perf_counter() - t0:.2f} s")
        for p in problems:
            print(f"  DAMAGED {_redact(str(p))}")
        print("ok: no damage found" if ok else f"FAILED: {len(problems)} problem(s) found")
    return 0 if ok else 1


def _cmd_restore(args: argparse.Namespace) -> int:
    from .backends import SQLiteBackend
    from .backends.base import BackendError
    from .backup import BackupCorrupted

    repo = _open_repo(args, create=False)
    if bool(args.snapshot) == bool(args.node):
        raise _Fail("give --snapshot ID or --node NAME (its newest snapshot)")
    if args.snapshot:
        m = _resolve_snapshot(repo, args.snapshot)
    else:
        snaps = repo.snapshots(args.node)
        if not snaps:
            raise _Fail(f"--node: no snapshot of node {args.node!r} in {_redact(args.repo)}")
        m = snaps[-1]
    if os.path.isdir(args.to):
        raise _Fail(f"--to: {args.to} is a directory; give a .sqlite file path")
    try:
        target = SQLiteBackend(args.to)
    except BackendError as exc:
        raise _Fail(f"--to: {exc}") from None
    try:
        with Progress(f"restore {m.node}: verify", total=m.records, unit="records") as bar, \
                bar.ticking():

            def progress(done: int, total: int) -> None:  # two phases: verify, then write
                half = total // 2
                bar.label = f"restore {m.node}: {'verify' if done < half else 'write'}"
                bar.total = half or None
                bar.update(done if done < half else done - half)

            rep = repo.restore(m.id, target, allow_partial=args.allow_partial,
                               progress=progress)
    except BackupCorrupted as exc:
        raise _Fail(f"snapshot {m.id} is damaged, nothing restored: "
                    f"{_redact(str(exc))}", 1) from None
    finally:
        target.close()
    if args.json:
        print(json.dumps({"snapshot": m.id, "node": m.node, "to": args.to,
                          "records": rep.records, "ranges": rep.ranges,
                          "missing": [p.as_dict() for p in rep.missing],
                          "seconds": rep.seconds}, indent=2))
    else:
        print(f"restored snapshot {m.id} of {m.node}: {rep.records:,} records "
              f"({rep.ranges} ranges) -> {args.to} in {rep.seconds:.2f} s")
        for p in rep.missing:
            print(f"  NOT RESTORED {_redact(str(p))}")
    return 1 if rep.missing else 0


_BACKUP_EPILOG = f"""\
The repository is a directory or an fsspec URL (s3://..., needs 'ringguard[backup]');
--copy URL adds further copies. Encrypted repositories take their password from the
environment variable {PASSWORD_ENV}, or ask for it on a terminal; there is no
password flag (it would show in the process list and the shell history).

Exit codes: 0 ok, 1 a failure (damage found, snapshot damaged, missing optional
dependency), 2 a usage error (missing file, unknown snapshot, bad URL, wrong password).
"""


def _add_backup_commands(sub: Any) -> dict[str, argparse.ArgumentParser]:
    fmt = argparse.RawDescriptionHelpFormatter
    parsers: dict[str, argparse.ArgumentParser] = {}

    def repo_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("repo", metavar="REPO", help="repository directory or URL")
        p.add_argument("--copy", metavar="URL", action="append",
                       help="a further copy of the repository (repeatable)")
        p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser(
        "backup", help="snapshot SQLite node files into a backup repository",
        description="Takes one verified, incremental snapshot per node file. Unchanged "
        "hash ranges are not uploaded again. Creates the repository if it does not exist "
        f"(encrypted when {PASSWORD_ENV} is set or --encrypt is given).",
        epilog="examples:\n  ringguard backup /backups/shop --node db1=data/db1.db "
        "--node db2=data/db2.db\n  RINGGUARD_PASSWORD=... ringguard backup s3://bucket/shop "
        "--node db1=db1.sqlite --json\n\n" + _BACKUP_EPILOG, formatter_class=fmt)
    repo_args(p)
    p.add_argument("--node", metavar="NAME=PATH", action="append",
                   help="a node's name and its SQLite file (repeatable)")
    p.add_argument("--encrypt", action="store_true",
                   help=f"create an encrypted repository (password from {PASSWORD_ENV} "
                   "or a prompt)")
    parsers["backup"] = p

    p = sub.add_parser(
        "verify", help="read every chunk of a repository back and check it",
        description="Checks every snapshot (or one) in every copy: manifests, and each chunk's "
        "SHA-256, size, record count and key range. Exit 1 when anything is damaged.",
        epilog="examples:\n  ringguard verify /backups/shop\n  ringguard verify "
        "/backups/shop --snapshot 3f2a --no-data --json\n\n" + _BACKUP_EPILOG,
        formatter_class=fmt)
    repo_args(p)
    p.add_argument("--snapshot", metavar="ID", help="only this snapshot (id or unique prefix)")
    p.add_argument("--no-data", action="store_true",
                   help="only check that every chunk exists (fast; reads no data)")
    parsers["verify"] = p

    p = sub.add_parser(
        "restore", help="restore a snapshot into a SQLite node file",
        description="Verifies the whole snapshot first, then writes its records into the "
        "SQLite file (created if missing). Records keep their versions, so newer data in the "
        "file is never overwritten. A damaged snapshot writes nothing and exits 1.",
        epilog="examples:\n  ringguard restore /backups/shop --snapshot 3f2a9c --to "
        "db2.sqlite\n  ringguard restore /backups/shop --node db2 --to db2.sqlite\n\n"
        + _BACKUP_EPILOG, formatter_class=fmt)
    repo_args(p)
    p.add_argument("--snapshot", metavar="ID", help="snapshot id or a unique prefix of it")
    p.add_argument("--node", metavar="NAME", help="instead of --snapshot: the node's newest")
    p.add_argument("--to", metavar="PATH", required=True, help="the SQLite file to write")
    p.add_argument("--allow-partial", action="store_true",
                   help="restore the intact ranges of a damaged snapshot (exit 1, lists "
                   "the rest)")
    parsers["restore"] = p

    p = sub.add_parser(
        "snapshots", help="list the snapshots of a repository",
        description="Lists committed snapshots, oldest first (by the node's write "
        "watermark).",
        epilog="examples:\n  ringguard snapshots /backups/shop\n  ringguard snapshots "
        "/backups/shop --node db2 --json\n\n" + _BACKUP_EPILOG, formatter_class=fmt)
    repo_args(p)
    p.add_argument("--node", metavar="NAME", help="only this node's snapshots")
    parsers["snapshots"] = p
    return parsers


_BACKUP_COMMANDS = {"backup": _cmd_backup, "verify": _cmd_verify, "restore": _cmd_restore,
                    "snapshots": _cmd_snapshots}


def _run_backup_command(args: argparse.Namespace) -> int:
    try:
        return _BACKUP_COMMANDS[args.command](args)
    except _Fail as exc:
        print(f"ringguard {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"ringguard {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a failure the commands did not foresee: one line, exit 1
        from .errors import RingGuardError

        if not isinstance(exc, (RingGuardError, OSError, ValueError)):
            raise
        print(f"ringguard {args.command}: failed: {_redact(str(exc))}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ringguard`` command."""
    parser = argparse.ArgumentParser(
        prog="ringguard", description="Consistent-hash placement with a compiled batch core."
    )
    parser.add_argument("--version", action="version", version=f"ringguard {__version__}")
    sub = parser.add_subparsers(dest="command")
    rep = sub.add_parser("report", help="build a ring and print its balance and movement")
    demo = sub.add_parser(
        "demo",
        help="an order stream over SQLite nodes surviving a node's death and disk loss",
        description="Writes an online shop's orders through a replicated store (replication "
        "2) over SQLite files, kills one node midway, rebuilds it after a disk loss, and "
        "checks every acknowledged order on both replicas. Exit 0 when no order was lost.",
        epilog="examples:\n  ringguard demo\n  ringguard demo --orders 50000 --dir /tmp/shop\n"
        "  ringguard demo --backend redis\n\nExit codes: 0 no order lost, 1 an order lost "
        "(or redis-py missing), 2 usage error (or no redis-server on PATH).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--dir", default=None, help="data directory (default: a new temp dir)")
    demo.add_argument("--orders", type=int, default=20_000, help="orders to write (20000)")
    demo.add_argument("--nodes", type=int, default=4, help="SQLite nodes (default 4)")
    demo.add_argument("--batch", type=int, default=500, help="orders per batch (500)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the orders")
    demo.add_argument("--backend", choices=("sqlite", "redis"), default="sqlite",
                      help="sqlite files (default), or real redis-server processes on free "
                      "loopback ports, started and stopped by the demo (needs redis-server "
                      "on PATH and pip install 'ringguard[redis]')")
    avail = _add_availability(sub)
    plan_parser = _add_plan(sub)
    assign_parser = _add_assign(sub)
    _add_backup_commands(sub)
    bench_parser = sub.add_parser(
        "bench", help="a quick side-by-side of the compiled core and the Python reference",
        description="Times Ring.assign on uint64 and string keys against ringguard.reference "
        "(after checking both give the same answers). For the full table with NumPy and "
        "uhashring baselines, run benchmarks/compare.py from a checkout.")
    bench_parser.add_argument("--keys", type=int, default=1_000_000, help="keys (1000000)")
    bench_parser.add_argument("--nodes", type=int, default=10, help="nodes (default 10)")
    for p in (parser, rep):
        p.add_argument("--nodes", type=int, default=5, help="number of nodes (default 5)")
        p.add_argument("--vnodes", type=int, default=160, help="points per node (default 160)")
        p.add_argument("--keys", type=int, default=1_000_000, help="keys to place")
        p.add_argument("--seed", type=int, default=0, help="random seed for the keys")
    args = parser.parse_args(argv)
    if args.command in _BACKUP_COMMANDS:
        return _run_backup_command(args)
    if args.command == "demo":
        return _demo(args, demo)
    if args.command == "plan":
        return _plan(args, plan_parser)
    if args.command == "assign":
        return _assign(args, assign_parser)
    if args.command == "bench":
        return _bench(args, bench_parser)
    if args.command == "availability":
        return _availability(args, avail)
    if args.nodes < 1 or args.keys < 1 or args.vnodes < 1:
        parser.error("--nodes, --keys and --vnodes must be >= 1")
    return _report(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
