"""``ringguard demo``: the main job, run as a user runs it (the console script)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import scaled
from ringguard.demo import run_demo


def test_demo_loses_no_acknowledged_order(tmp_path: Path) -> None:
    rep = run_demo(tmp_path, orders=scaled(6000, 1000), batch=250, say=lambda s: None)
    assert rep.lost == []
    assert rep.verified == rep.orders_acknowledged == scaled(6000, 1000)
    assert rep.failovers == 1 and rep.hints_kept > 0
    assert rep.hints_replayed == rep.hints_kept
    assert rep.backup_verified and rep.records_restored > 0  # rebuilt from its snapshot...
    assert rep.records_copied > 0  # ...and from its replicas for what came after it
    assert [e.split()[0] for e in rep.events] == ["down", "catching_up", "up"]


def test_demo_console_script(tmp_path: Path) -> None:
    exe = shutil.which("ringguard")
    cmd = [exe] if exe else [sys.executable, "-m", "ringguard"]
    out = subprocess.run([*cmd, "demo", "--orders", str(scaled(4000, 600)), "--dir",
                          str(tmp_path / "shop")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "0 orders lost" in out.stdout
    assert "failovers" in out.stdout and "verified on both replicas" in out.stdout
    assert (tmp_path / "shop" / "nodes" / "db1.db").exists()


def test_demo_usage_errors_exit_2() -> None:
    out = subprocess.run([sys.executable, "-m", "ringguard", "demo", "--nodes", "2"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--nodes" in out.stderr and "Traceback" not in out.stderr
