"""``ringguard demo``: the main job, run as a user runs it (the console script)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


# ---- --backend redis: real redis-server processes ------------------------------------------

REDIS_REQUIRED = os.environ.get("RINGGUARD_REQUIRE_REDIS", "") not in ("", "0")


def need_redis() -> None:
    if shutil.which("redis-server") is None:
        if REDIS_REQUIRED:
            pytest.fail("RINGGUARD_REQUIRE_REDIS is set but redis-server is not installed")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    pytest.importorskip("redis")


def ports_in(text: str) -> list[int]:
    first = text.split("\n", 1)[0]
    return [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", first)]


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


def test_demo_over_real_redis_servers(tmp_path: Path) -> None:
    need_redis()
    exe = shutil.which("ringguard")
    cmd = [exe] if exe else [sys.executable, "-m", "ringguard"]
    out = subprocess.run([*cmd, "demo", "--backend", "redis", "--orders",
                          str(scaled(4000, 600)), "--dir", str(tmp_path / "shop")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "redis-server processes" in out.stdout and "0 orders lost" in out.stdout
    assert "records restored from snapshot" in out.stdout
    ports = ports_in(out.stdout)
    assert len(ports) == 4
    assert all(refused(p) for p in ports)  # every server was stopped


def test_redis_demo_stops_its_servers_when_terminated(tmp_path: Path) -> None:
    need_redis()
    with subprocess.Popen(
        [sys.executable, "-m", "ringguard", "demo", "--backend", "redis", "--orders",
         "10000000", "--dir", str(tmp_path / "shop")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        try:
            assert proc.stdout is not None
            ports = ports_in(proc.stdout.readline())
            assert len(ports) == 4
            assert not any(refused(p) for p in ports)  # running
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert "Traceback" not in err
    assert proc.returncode == 128 + signal.SIGTERM
    deadline = time.monotonic() + 10
    while not all(refused(p) for p in ports) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(refused(p) for p in ports)


def test_redis_demo_without_redis_server_is_a_usage_error(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    out = subprocess.run([sys.executable, "-m", "ringguard", "demo", "--backend", "redis"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PATH": str(empty)})
    assert out.returncode == 2, out.stderr
    assert "redis-server" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
