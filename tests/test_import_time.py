"""``import ringguard`` stays cheap and never pulls in the optional integrations.

Measured by parsing CPython's own ``-X importtime`` tree (not with a timer around the
import): ringguard's cost is the cumulative time of the top-level ``ringguard`` entry minus
the subtrees of NumPy it imports, i.e. what importing ringguard adds to importing NumPy.
Bytecode is written to a temporary ``PYTHONPYCACHEPREFIX`` by a warm-up run (so a
``PYTHONDONTWRITEBYTECODE`` environment does not turn this into a compile-time test), and
the best of a few runs is taken to filter out scheduling noise on a busy machine.

The budget is 50 ms. A run over budget on an oversubscribed machine (1-minute load average
above the CPU count: wall-clock times then measure the run queue, not the import) is
reported as a skip naming the load and the figure, never as a pass; the check that no
optional dependency is imported does not depend on timing and always runs.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

BUDGET_US = 50_000
RUNS = 7
FORBIDDEN = ("pandas", "pyarrow", "dask", "distributed", "redis", "polars", "zstandard",
             "fsspec", "cryptography", "matplotlib", "hypothesis", "xxhash")

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)\s*$")


@dataclass
class Entry:
    name: str
    level: int
    self_us: int
    cumulative_us: int
    children: list[Entry] = field(default_factory=list)

    def walk(self) -> list[Entry]:
        out = [self]
        for c in self.children:
            out.extend(c.walk())
        return out


def parse_importtime(stderr: str) -> list[Entry]:
    """The forest of ``-X importtime`` output (children are printed before their parent)."""
    pending: list[Entry] = []
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        level = (len(m.group(3)) - 1) // 2
        entry = Entry(m.group(4), level, int(m.group(1)), int(m.group(2)))
        while pending and pending[-1].level > level:
            entry.children.insert(0, pending.pop())
        pending.append(entry)
    return pending


def ringguard_cost_us(roots: list[Entry]) -> int:
    """Cumulative time of ``import ringguard`` minus the NumPy subtrees inside it."""
    top = [e for e in roots if e.name == "ringguard"]
    assert len(top) == 1, [e.name for e in roots]

    def numpy_time(e: Entry) -> int:
        if e.name == "numpy" or e.name.startswith("numpy."):
            return e.cumulative_us
        return sum(numpy_time(c) for c in e.children)

    return top[0].cumulative_us - numpy_time(top[0])


def oversubscription() -> float:
    """1-minute load average per CPU (0 where the platform has no load average)."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except (AttributeError, OSError):  # Windows
        return 0.0


def _run(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import ringguard"],
                         capture_output=True, text=True, env=env, check=True, timeout=120)
    return out.stderr


def test_parser_on_a_known_tree() -> None:
    text = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:       100 |        100 |       numpy._core",
        "import time:        50 |        150 |     numpy",
        "import time:        20 |         20 |     json",
        "import time:        30 |        200 |   ringguard.a",
        "import time:        10 |        210 | ringguard",
        "import time:         5 |          5 | other",
    ])
    roots = parse_importtime(text)
    assert [e.name for e in roots] == ["ringguard", "other"]
    assert [e.name for e in roots[0].walk()] == ["ringguard", "ringguard.a", "numpy",
                                                 "numpy._core", "json"]
    assert ringguard_cost_us(roots) == 60


def _env(tmp_path: pathlib.Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    return env


def test_import_never_loads_optional_dependencies(tmp_path: pathlib.Path) -> None:
    roots = parse_importtime(_run(_env(tmp_path)))
    names = {e.name for r in roots for e in r.walk()}
    assert "ringguard" in names and "numpy" in names
    loaded = sorted(n for n in names if n.split(".")[0] in FORBIDDEN)
    assert not loaded, f"import ringguard imported {loaded}"


def test_import_adds_under_50_ms_to_numpy(tmp_path: pathlib.Path) -> None:
    env = _env(tmp_path)
    _run(env)  # warm-up: writes the bytecode
    costs: list[int] = []
    for _ in range(RUNS):
        costs.append(ringguard_cost_us(parse_importtime(_run(env))))
        if min(costs) < BUDGET_US:
            break
    best = min(costs)
    load = oversubscription()
    if best >= BUDGET_US and load > 1.0:
        pytest.skip(f"machine oversubscribed (load {load:.1f} per CPU): import ringguard "
                    f"took {best / 1000:.1f} ms over NumPy, best of {len(costs)}; not a "
                    "measurement of the import")
    assert best < BUDGET_US, (
        f"import ringguard adds {best / 1000:.1f} ms to importing NumPy "
        f"(best of {len(costs)}; budget {BUDGET_US / 1000:.0f} ms)"
    )
