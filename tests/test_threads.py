"""Placements shared by many threads at once give the single-threaded answers.

The compiled core is declared ``freethreading_compatible`` and placements are immutable
snapshots, so one placement object may be used from any number of threads without locks.
This runs ``assign``/``replicas``/``redis_slot`` of several shared placements from 8
threads started together (on a free-threaded 3.14t build they really run in parallel;
elsewhere the kernels release the GIL) and compares every result with the answer computed
beforehand on one thread. On a free-threaded interpreter it also checks, in a clean
subprocess, that importing ringguard keeps the GIL disabled.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from conftest import scaled
from ringguard import JumpHash, Maglev, RedisSlots, Rendezvous, Ring, redis_slot

N_THREADS = 8
ROUNDS = 3


def _placements() -> dict[str, Any]:
    nodes = [f"db{i}" for i in range(7)]
    return {
        "ring": Ring(nodes, weights={"db3": 2.0}),
        "ketama": Ring.ketama({n: 100 + 10 * i for i, n in enumerate(nodes)}),
        "maglev": Maglev(nodes, table_size=1031),
        "rendezvous": Rendezvous(nodes, weights={"db1": 0.5}),
        "jump": JumpHash(nodes),
        "slots": RedisSlots.even(nodes),
    }


def _keys() -> dict[str, Any]:
    n = scaled(40_000, 600)
    rng = np.random.default_rng(20240917)
    ints = rng.integers(0, 2**63, n, dtype=np.int64)
    strs = np.array([f"order:{i}" for i in range(n)], dtype=object)
    return {"ints": ints, "strs": strs}


def test_shared_placements_from_8_threads_match_single_threaded() -> None:
    placements = _placements()
    keys = _keys()
    work: list[tuple[str, Callable[[], np.ndarray]]] = []

    def bind(method: Callable[..., np.ndarray], *args: Any) -> Callable[[], np.ndarray]:
        return lambda: method(*args)

    for pname, p in placements.items():
        for kname, k in keys.items():
            work.append((f"{pname}.assign({kname})", bind(p.assign, k)))
            work.append((f"{pname}.replicas({kname}, 2)", bind(p.replicas, k, 2)))
    work.append(("redis_slot(strs)", lambda: redis_slot(keys["strs"])))
    expected = {name: fn() for name, fn in work}

    barrier = threading.Barrier(N_THREADS)
    mismatches: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(tid: int) -> None:
        try:
            barrier.wait(timeout=60)
            for r in range(ROUNDS):
                # each thread walks the work list from a different place, so different
                # placements and kernels overlap in time
                for j in range(len(work)):
                    name, fn = work[(j + tid * 3 + r) % len(work)]
                    got = fn()
                    if not np.array_equal(got, expected[name]):
                        with lock:
                            mismatches.append(f"thread {tid} round {r}: {name}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors[:3]
    assert not mismatches, mismatches[:10]


def test_threads_argument_inside_threads_matches() -> None:
    """threads=N from several threads at once: the shared pool is not confused by callers."""
    ring = _placements()["ring"]
    keys = _keys()["ints"]
    want = ring.assign(keys)
    results: list[np.ndarray] = []
    lock = threading.Lock()

    def run() -> None:
        got = ring.assign(keys, threads=3)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=run) for _ in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(results) == N_THREADS
    assert all(np.array_equal(r, want) for r in results)


@pytest.mark.skipif(not sysconfig.get_config_var("Py_GIL_DISABLED"),
                    reason="not a free-threaded interpreter")
def test_import_keeps_the_gil_disabled() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    code = ("import sys, warnings; warnings.simplefilter('error'); import ringguard; "
            "ringguard.Ring(['a', 'b']).assign([1, 2]); print(sys._is_gil_enabled())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.strip() == "False", out.stderr
