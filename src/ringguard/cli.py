"""The ``ringguard`` command line (``python -m ringguard``).

Commands: ``report`` (the default: a placement report), ``demo`` (an order stream over
SQLite nodes surviving a node's death and disk loss: the main job), ``assign`` (files
through a placement), ``plan`` (migration plans), ``availability`` (nines, durability,
capacity, backup storage) and ``bench`` (a checked speed-up over the reference). Backup
commands arrive with their issue. Exit codes: 0 success, 1 a failure found (an order lost)
or a missing optional dependency, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
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


def _availability_figures(args: argparse.Namespace) -> dict[str, Any]:
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
                      seed=args.seed)
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
        figures = _availability_figures(args)
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
    tty = sys.stderr.isatty()
    t0 = time.perf_counter()

    def progress(rows: int) -> None:
        if tty:
            rate = rows / max(time.perf_counter() - t0, 1e-9)
            sys.stderr.write(f"\r  {rows:,} rows ({rate:,.0f} rows/s)")
            sys.stderr.flush()

    try:
        rows = assign_file(placement, args.input, args.output, args.key,
                           replicas=args.replicas or 0, in_format=args.format,
                           out_format=args.output_format, column=args.column,
                           progress=progress)
    except ImportError as exc:
        print(f"ringguard assign: {exc}", file=sys.stderr)
        return 1
    except KeyError as exc:
        parser.error(str(exc.args[0]))
    except FileNotFoundError as exc:
        parser.error(f"cannot read {exc.filename or args.input}: {exc.strerror}")
    except (TypeError, ValueError, OSError) as exc:
        parser.error(str(exc))
    if tty:
        sys.stderr.write("\n")
    dt = time.perf_counter() - t0
    print(f"{rows:,} rows -> {args.output} ({rows / max(dt, 1e-9):,.0f} rows/s)")
    return 0


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
    from .demo import print_report, run_demo, terminal_progress

    if args.orders < 2 or args.nodes < 3 or args.batch < 1:
        parser.error("--orders must be >= 2, --nodes >= 3 and --batch >= 1")
    rep = run_demo(args.dir, orders=args.orders, nodes=args.nodes, batch=args.batch,
                   seed=args.seed, progress=terminal_progress)
    print_report(rep)
    return 1 if rep.lost else 0


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
        epilog="example: ringguard demo --orders 50000 --dir /tmp/shop",
    )
    demo.add_argument("--dir", default=None, help="data directory (default: a new temp dir)")
    demo.add_argument("--orders", type=int, default=20_000, help="orders to write (20000)")
    demo.add_argument("--nodes", type=int, default=4, help="SQLite nodes (default 4)")
    demo.add_argument("--batch", type=int, default=500, help="orders per batch (500)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the orders")
    avail = _add_availability(sub)
    plan_parser = _add_plan(sub)
    assign_parser = _add_assign(sub)
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
