"""``ringguard availability``: the table, JSON, plot and usage errors, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ringguard as rg

BASE = ["--nodes", "10", "--replication", "2", "--strategy", "ring", "--mtbf", "91d",
        "--mttr", "24h", "--detect", "30s", "--trials", "2000", "--vnodes", "40"]


def run(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "ringguard", "availability", *args]
    if code is not None:
        cmd = [sys.executable, "-c", code]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env=os.environ.copy())


def test_table() -> None:
    out = run(*BASE, "--copies", "2")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for label in ("availability", "nines", "downtime/year", "P(data loss)/year", "MTTDL",
                  "usable capacity", "backup storage", "95% CI"):
        assert label in text, label
    assert "10 nodes, replication 2, strategy ring (40 vnodes, 45 replica sets)" in text
    assert "45.0% of raw" in text  # 10 nodes, 2 copies, room for 1 failure: 9/20
    assert "2 x data (2 copies" in text
    closed = rg.pair_availability("91d", "24h", "30s")
    assert f"{closed:.8f}" in text


def test_json_matches_the_library() -> None:
    out = run(*BASE, "--json", "--strategy", "pairs", "--copies", "3", "--retained", "8",
              "--change-fraction", "0.1", "--compression-ratio", "2")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["replica_sets"] == 5 and doc["strategy"] == "pairs"
    cf = doc["closed_form"]
    assert cf["availability"] == pytest.approx(rg.pair_availability("91d", "24h", "30s"))
    assert cf["mttdl_hours"] == pytest.approx(rg.mttdl("91d", "24h", 2, copysets=5))
    assert cf["p_loss"] == pytest.approx(rg.loss_probability("1y", cf["mttdl_hours"]))
    sim = doc["simulated"]
    lo, hi = sim["p_loss_ci"]
    assert lo <= sim["p_loss"] <= hi
    assert lo <= cf["p_loss_markov"] <= hi
    assert doc["backup"]["storage_over_data"] == pytest.approx(3 / 2 * 1.7)
    # same seed, same figures
    again = json.loads(run(*BASE, "--json", "--strategy", "pairs", "--copies", "3",
                           "--retained", "8", "--change-fraction", "0.1",
                           "--compression-ratio", "2").stdout)
    assert again["simulated"]["p_loss"] == sim["p_loss"]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--mtbf", "3fortnights"], "unknown unit 'fortnights'"),
     (["--mttr=-4h"], "non-negative"),
     (["--replication", "11"], "replication: 11 exceeds"),
     (["--strategy", "pairs", "--nodes", "5"], "even --nodes"),
     (["--strategy", "pairs", "--replication", "3"], "means 2 replicas"),
     (["--nodes", "0"], "--nodes must be >= 1"),
     (["--trials", "1"], "trials: must be >= 2"),
     (["--compression-ratio", "0"], "compression-ratio"),
     (["--failures", "9"], "surviving nodes"),
     (["--strategy", "random"], "invalid choice"),
     (["--nodes", "ten"], "invalid int value"),
     (["--years", "0"], "--years must be > 0"),
     (["--years", "nan"], "--years must be > 0"),
     (["--raw-tb", "-5"], "--raw-tb must be > 0"),
     (["--failures", "-1"], "failures: must be >= 0")],
)
def test_usage_errors_exit_2_without_traceback(args: list[str], message: str) -> None:
    out = run(*BASE, *args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert "usage: ringguard availability" in out.stderr


def test_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "avail.png"
    out = run(*BASE, "--plot", str(target))
    assert out.returncode == 0, out.stderr
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot written to {target}" in out.stdout


def test_plot_without_matplotlib_names_the_extra(tmp_path: Path) -> None:
    target = tmp_path / "avail.png"
    code = ("import sys; sys.modules['matplotlib'] = None; from ringguard.cli import main; "
            f"sys.exit(main(['availability', '--plot', {str(target)!r}]))")
    out = run(code=code)
    assert out.returncode == 1
    assert "pip install 'ringguard[plot]'" in out.stderr
    assert "Traceback" not in out.stderr
    assert not target.exists()


def test_help_lists_availability() -> None:
    out = subprocess.run([sys.executable, "-m", "ringguard", "--help"], capture_output=True,
                         text=True, check=True)
    assert "availability" in out.stdout


def test_json_with_perfect_availability_is_valid_json() -> None:
    out = run("--nodes", "2", "--mtbf", "1000y", "--mttr", "1s", "--trials", "100", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)  # strict JSON: no Infinity
    assert doc["simulated"]["availability"] == 1.0
    assert doc["simulated"]["nines"] is None
    assert doc["simulated"]["p_loss"] == 0.0


def test_simulate_reports_progress_per_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook behind the CLI's bar: (done, total) before the first and after every chunk
    of trials; it never changes the results."""
    import ringguard.availability as av

    monkeypatch.setattr(av, "_CHUNK_UNITS", 50)  # 5 nodes -> chunks of 10 trials
    ring = rg.Ring([f"n{i}" for i in range(5)], vnodes=8)
    calls: list[tuple[int, int]] = []
    kw: dict[str, Any] = {"mtbf": "30d", "mttr": "48h", "trials": 35, "seed": 3}
    got = av.simulate(ring, 2, progress=lambda d, t: calls.append((d, t)), **kw)
    assert calls == [(0, 35), (10, 35), (20, 35), (30, 35), (35, 35)]
    assert got == av.simulate(ring, 2, **kw)
    with pytest.raises(TypeError, match="progress"):
        av.simulate(ring, 2, progress=42, **kw)  # type: ignore[arg-type]

    def stop(done: int, total: int) -> None:
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # a hook can cancel a long simulation
        av.simulate(ring, 2, progress=stop, **kw)
