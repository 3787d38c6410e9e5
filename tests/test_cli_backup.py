"""``ringguard backup | verify | restore | snapshots``: the console script in subprocesses,
over real SQLite node files and a repository on disk."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ringguard.backends import Records, SQLiteBackend

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

N = 400  # ~330 of the 1024 hash ranges: every chunk path is exercised, quickly


def cli(*args: str, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("ringguard")
    cmd = [exe] if exe else [sys.executable, "-m", "ringguard"]
    full_env = {k: v for k, v in os.environ.items() if k != "RINGGUARD_PASSWORD"}
    full_env.update(env or {})
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, stdin=subprocess.DEVNULL)


def make_node(path: Path, name: str, n: int = N, version: int = 1) -> dict[bytes, bytes]:
    records = {f"{name}:order:{i}".encode(): f'{{"v":{version},"i":{i}}}'.encode()
               for i in range(n)}
    b = SQLiteBackend(path)
    b.write(Records.build(list(records), list(records.values()), 1,
                          list(range(version * n, version * n + n))))
    b.close()
    return records


def rows(path: Path) -> dict[bytes, bytes]:
    with sqlite3.connect(path) as db:
        return {bytes(k): bytes(v) for k, v in db.execute("SELECT key, value FROM records")}


def one_line_error(out: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], out.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, dict[str, dict[bytes, bytes]]]:
    data = {name: make_node(tmp_path / f"{name}.sqlite", name) for name in ("db1", "db2")}
    return tmp_path, data


def backup_json(tmp: Path, repo: Path, *extra: str) -> dict[str, object]:
    out = cli("backup", str(repo), "--node", f"db1={tmp / 'db1.sqlite'}", "--node",
              f"db2={tmp / 'db2.sqlite'}", "--json", *extra)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert isinstance(doc, dict)
    return doc


def test_backup_snapshots_verify_restore_round_trip(shop: tuple[Path, dict]) -> None:
    tmp, data = shop
    repo = tmp / "repo"
    doc = backup_json(tmp, repo)
    snaps = doc["snapshots"]
    assert isinstance(snaps, list)
    assert [s["node"] for s in snaps] == ["db1", "db2"]
    assert all(s["records"] == N for s in snaps)

    listed = json.loads(cli("snapshots", str(repo), "--json").stdout)["snapshots"]
    assert {s["id"] for s in listed} == {s["snapshot"] for s in snaps}
    text = cli("snapshots", str(repo))
    assert text.returncode == 0 and all(s["snapshot"] in text.stdout for s in snaps)

    ok = cli("verify", str(repo), "--json")
    assert ok.returncode == 0, ok.stderr
    rep = json.loads(ok.stdout)
    assert rep["ok"] is True and rep["problems"] == [] and rep["snapshots"] == 2
    assert rep["bytes_read"] > 0

    # Restore db2's snapshot by a unique id prefix into a new file: every record back.
    sid = str(snaps[1]["snapshot"])
    target = tmp / "restored" / "db2.sqlite"
    out = cli("restore", str(repo), "--snapshot", sid[:8], "--to", str(target))
    assert out.returncode == 0, out.stderr
    assert rows(target) == data["db2"]
    # ...and by node name (its newest snapshot), as JSON.
    out = cli("restore", str(repo), "--node", "db1", "--to", str(tmp / "db1b.sqlite"),
              "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["records"] == N
    assert rows(tmp / "db1b.sqlite") == data["db1"]


def test_second_backup_of_unchanged_nodes_uploads_nothing(shop: tuple[Path, dict]) -> None:
    tmp, _ = shop
    repo = tmp / "repo"
    first = backup_json(tmp, repo)["snapshots"]
    again = backup_json(tmp, repo)["snapshots"]
    assert isinstance(first, list) and isinstance(again, list)
    assert all(s["chunks_written"] > 0 for s in first)
    assert all(s["chunks_written"] == 0 and s["chunks_reused"] > 0 for s in again)
    assert len(json.loads(cli("snapshots", str(repo), "--json").stdout)["snapshots"]) == 4


def test_a_flipped_bit_in_a_chunk_file_makes_verify_exit_1(shop: tuple[Path, dict]) -> None:
    tmp, _ = shop
    repo = tmp / "repo"
    snaps = backup_json(tmp, repo)["snapshots"]
    assert isinstance(snaps, list)
    chunk_files = sorted(p for p in (repo / "chunks").rglob("*") if p.is_file())
    assert chunk_files
    victim = chunk_files[len(chunk_files) // 2]
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0x10  # one bit, on disk
    victim.write_bytes(bytes(raw))

    out = cli("verify", str(repo))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "DAMAGED" in out.stdout and victim.name in out.stdout
    rep = json.loads(cli("verify", str(repo), "--json").stdout)
    assert rep["ok"] is False
    assert [p["chunk"] for p in rep["problems"]] == [victim.name]
    # --no-data only checks existence: the flip is invisible to it (and says so).
    assert cli("verify", str(repo), "--no-data").returncode == 0

    # Restoring the damaged snapshot writes nothing and fails with exit 1.
    bad = next(s for s in snaps if victim.name in json.dumps(
        json.loads(cli("verify", str(repo), "--snapshot", str(s["snapshot"]),
                       "--json").stdout)))
    target = tmp / "bad.sqlite"
    out = cli("restore", str(repo), "--snapshot", str(bad["snapshot"]), "--to", str(target))
    one_line_error(out, 1, "damaged", "nothing restored")
    assert rows(target) == {}


def test_encrypted_repository_password_from_the_environment(shop: tuple[Path, dict]) -> None:
    pytest.importorskip("cryptography")
    tmp, _ = shop
    repo = tmp / "enc"
    out = cli("backup", str(repo), "--node", f"db1={tmp / 'db1.sqlite'}",
              env={"RINGGUARD_PASSWORD": "correct horse"})
    assert out.returncode == 0, out.stderr
    assert cli("verify", str(repo), env={"RINGGUARD_PASSWORD": "correct horse"}).returncode == 0
    one_line_error(cli("snapshots", str(repo)), 2, "encrypted", "RINGGUARD_PASSWORD")
    one_line_error(cli("verify", str(repo), env={"RINGGUARD_PASSWORD": "wrong"}), 2,
                   "wrong password")
    # --encrypt without a password and without a terminal to ask on: usage error.
    one_line_error(cli("backup", str(tmp / "enc2"), "--encrypt", "--node",
                       f"db1={tmp / 'db1.sqlite'}"), 2, "RINGGUARD_PASSWORD")


def test_user_mistakes_are_one_line_errors(shop: tuple[Path, dict]) -> None:
    """The commonest mistakes, through the real console script."""
    tmp, _ = shop
    repo = tmp / "repo"
    backup_json(tmp, repo)
    one_line_error(cli("backup", str(repo), "--node", f"db3={tmp / 'nope.sqlite'}"), 2,
                   "no such file", "nope.sqlite")
    one_line_error(cli("verify", str(tmp / "nothing-here")), 2, "no backup repository")
    one_line_error(cli("restore", str(repo), "--snapshot", "0123abcd", "--to",
                       str(tmp / "o.sqlite")), 2, "no snapshot")
    out = cli("snapshots", "nosuchproto://alice:hunter2@example.com/shop")
    one_line_error(out, 2, "nosuchproto://***@example.com/shop")
    assert "hunter2" not in out.stderr + out.stdout  # credentials never printed


def inproc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``ringguard ARGS`` in this process (same code path as the console script)."""
    from ringguard.cli import main

    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse: --help, usage errors
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_more_user_mistakes_in_process(shop: tuple[Path, dict],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    tmp, _ = shop
    repo = tmp / "repo"
    backup_json(tmp, repo)
    (tmp / "junk.sqlite").write_bytes(b"this is not a database" * 100)
    (tmp / "plain").mkdir()
    o = str(tmp / "o.sqlite")
    cases = [
        (["backup", str(repo), "--node", "db1"], "NAME=PATH"),
        (["backup", str(repo)], "--node"),
        (["backup", str(repo), "--node", f"x={tmp / 'junk.sqlite'}"], "junk.sqlite"),
        (["backup", str(repo), "--node", f"a={tmp / 'db1.sqlite'}", "--node",
          f"a={tmp / 'db2.sqlite'}"], "given twice"),
        (["snapshots", str(tmp / "plain")], "no backup repository"),
        (["verify", str(repo), "--snapshot", "zz"], "not a snapshot id"),
        (["verify", str(repo), "--snapshot", "0123abcd"], "no snapshot"),
        (["restore", str(repo), "--node", "db9", "--to", o], "db9"),
        (["restore", str(repo), "--to", o], "--snapshot"),
        (["restore", str(repo), "--node", "db1", "--snapshot", "abcd", "--to", o],
         "--snapshot"),
        (["restore", str(repo), "--node", "db1", "--to", str(tmp)], "directory"),
    ]
    for args, word in cases:
        code, err = inproc(capsys, *args)
        assert code == 2, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "error:" in lines[0] and word in lines[0], (args, err)
    assert not (tmp / "plain" / "config").exists()  # reading never creates a repository
    assert inproc(capsys, "backup", str(repo), "--node", f"db1={tmp / 'db1.sqlite'}")[0] == 0


@pytest.mark.parametrize("command", ["backup", "verify", "restore", "snapshots"])
def test_help_has_examples_and_exit_codes(command: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from ringguard.cli import main

    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"ringguard {command} " in out.split("examples:")[1]
    assert "RINGGUARD_PASSWORD" in out and "Exit codes" in out


def test_help_of_the_console_script() -> None:
    out = cli("verify", "--help")
    assert out.returncode == 0 and "ringguard verify /backups/shop" in out.stdout


def test_a_damaged_repository_config_is_a_failure_not_a_usage_error(
        shop: tuple[Path, dict]) -> None:
    tmp, _ = shop
    repo = tmp / "repo"
    backup_json(tmp, repo)
    (repo / "config").write_bytes(b'{"format": "something else"}')
    one_line_error(cli("verify", str(repo)), 1, "cannot open repository")
