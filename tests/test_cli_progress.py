"""Progress bars: drawn on a terminal (a real pseudo-terminal here), never when piped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ringguard.backends import Records, SQLiteBackend

pty = pytest.importorskip("pty")
pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402


def run(args: list[str], *, tty: bool) -> tuple[int, str, str]:
    """Run ``python -m ringguard ARGS`` with stderr on a pseudo-terminal or a pipe."""
    cmd = [sys.executable, "-m", "ringguard", *args]
    if not tty:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                             stdin=subprocess.DEVNULL)
        return out.returncode, out.stdout, out.stderr
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave,
                                stdin=subprocess.DEVNULL)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        stdout = proc.communicate(timeout=120)[0]
    finally:
        os.close(master)
    return proc.returncode, stdout.decode(), b"".join(chunks).decode(errors="replace")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("progress")
    n = 5000
    pq.write_table(pa.table({"k": [f"order:{i}" for i in range(n)]}), tmp / "in.parquet")
    b = SQLiteBackend(tmp / "db1.sqlite")
    keys = [f"k{i}".encode() for i in range(300)]
    b.write(Records.build(keys, [b"v"] * len(keys), 1, list(range(1, len(keys) + 1))))
    b.close()
    out = subprocess.run([sys.executable, "-m", "ringguard", "backup", str(tmp / "repo"),
                          "--node", f"db1={tmp / 'db1.sqlite'}"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return tmp


def commands(tmp: Path) -> dict[str, tuple[list[str], str]]:
    return {
        "assign": (["assign", str(tmp / "in.parquet"), "-o", str(tmp / "out.parquet"),
                    "--key", "k", "--nodes", "a,b,c"], "5,000/5,000 rows"),
        "availability": (["availability", "--trials", "2000"],
                         "simulating [##############################] 2,000/2,000 trials"),
        # a repository of its own: a first backup reads all 300 records (a later one of the
        # unchanged node reads none)
        "backup": (["backup", str(tmp / "repo-progress"), "--node",
                    f"db1={tmp / 'db1.sqlite'}"],
                   "backup db1 (1/1) [##############################] 300/300 records"),
        "verify": (["verify", str(tmp / "repo")], "verify ["),
        "restore": (["restore", str(tmp / "repo"), "--node", "db1", "--to",
                     str(tmp / "r.sqlite")],
                    "restore db1: write [##############################] 300/300 records"),
        "demo": (["demo", "--orders", "1000", "--dir", str(tmp / "shop")],
                 "1,000/1,000 orders"),
    }


@pytest.mark.parametrize("name", ["assign", "availability", "backup", "verify", "restore",
                                  "demo"])
def test_progress_on_a_terminal_and_not_when_piped(files: Path, name: str) -> None:
    args, expected = commands(files)[name]
    code, stdout, stderr = run(args, tty=True)
    assert code == 0, stdout + stderr
    assert "\r" in stderr and expected in stderr, stderr
    assert "\r" not in stdout  # results stay clean on stdout
    code, stdout, stderr = run(args, tty=False)
    assert code == 0, stderr
    assert stderr == ""  # nothing at all when piped
