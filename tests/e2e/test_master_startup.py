"""io7-master refuses to start in one line naming the key and what to do, never with a
traceback: a listen port held by another program, a state_db folder it cannot create, a
limit that is not a number. Real io7-master processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import master_toml

pytestmark = pytest.mark.e2e


def start_master(tmp_path: Path, *, listen: str = "127.0.0.1:0",
                 state_db: str = "members.sqlite3", limit_a: str = "32"
                 ) -> subprocess.CompletedProcess[str]:
    text = master_toml(limit_a=limit_a)
    text = text.replace('listen = "127.0.0.1:0"', f'listen = "{listen}"')
    text = text.replace('state_db = "members.sqlite3"', f'state_db = "{state_db}"')
    (tmp_path / "master.toml").write_text(text)
    return subprocess.run([sys.executable, "-m", "master.service", "--config", "master.toml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=False)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_listen_port_held_by_another_program(tmp_path: Path) -> None:
    with socket.socket() as other:  # a plain listener, as any other program has
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        done = start_master(tmp_path, listen=f"127.0.0.1:{port}")
    assert done.returncode == 2, done.stderr
    line = one_line(done.stderr)
    assert line.startswith("io7-master: ") and "master.listen" in line, line
    assert f"127.0.0.1:{port}" in line and "in use" in line, line


def test_a_state_db_folder_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    done = start_master(tmp_path, state_db="not-a-folder/members.sqlite3")
    assert done.returncode == 2, done.stderr
    line = one_line(done.stderr)
    assert "master.state_db" in line and str(tmp_path / "not-a-folder") in line, line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_state_db_folder_in_a_read_only_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        done = start_master(tmp_path, state_db="locked/io7/members.sqlite3")
    finally:
        locked.chmod(0o700)
    assert done.returncode == 2, done.stderr
    line = one_line(done.stderr)
    assert "master.state_db" in line and str(locked / "io7") in line, line


def test_limit_nan_is_one_line_with_the_range(tmp_path: Path) -> None:
    done = start_master(tmp_path, limit_a="nan")
    assert done.returncode == 2, done.stderr
    assert "group.limit_a: limit_a=nan must be a finite number in [6.0, 50000.0]" in \
        one_line(done.stderr)
