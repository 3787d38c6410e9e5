"""``ringguard plan`` in a subprocess: tables, JSON, files and usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ringguard import Ring, ownership


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ringguard", "plan", *args],
                          capture_output=True, text=True, timeout=120)


def test_plan_add_prints_the_exact_flows() -> None:
    out = run("--nodes", "db1,db2,db3", "--add", "db4", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {d for _, d, _ in doc["flows"]} == {"db4"}
    share = ownership(Ring(["db1", "db2", "db3", "db4"])).as_dict()["db4"]
    assert abs(doc["moved_fraction"] - share) < 1e-12


def test_plan_from_files(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    old.write_text(Ring(["a", "b", "c"]).to_json())
    new = tmp_path / "new.json"
    out = run("--placement", str(old), "--remove", "b", "--write", str(new))
    assert out.returncode == 0, out.stderr
    assert "MigrationPlan" in out.stdout and "b " in out.stdout
    assert Ring.from_json(new.read_text()).nodes == ("a", "c")
    again = run("--placement", str(old), "--new", str(new))
    assert again.returncode == 0 and again.stdout.splitlines()[0] == out.stdout.splitlines()[0]


def test_plan_usage_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "ringguard.placement", "version": 99}')
    for args in (["--nodes", "a,b", "--remove", "zz"],
                 ["--placement", str(tmp_path / "missing.json"), "--add", "x"],
                 ["--placement", str(bad), "--add", "x"],
                 ["--nodes", "a,b"]):
        out = run(*args)
        assert out.returncode == 2, args
        assert "Traceback" not in out.stderr and "error:" in out.stderr


def test_bench_prints_checked_speedups() -> None:
    out = subprocess.run([sys.executable, "-m", "ringguard", "bench", "--keys", "5000",
                          "--nodes", "4"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "uint64 keys" in out.stdout and "answers checked equal" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "ringguard", "bench", "--keys", "10"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
