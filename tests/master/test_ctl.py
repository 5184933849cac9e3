"""io7ctl finds `make run`'s masters with no arguments, and says in one line what is wrong
when it cannot reach one. Real io7ctl and io7-master processes on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from master import runfile
from tests.e2e.harness import Cluster, cluster, free_port, operator_dir

pytestmark = pytest.mark.e2e
PY = sys.executable


def ctl(*args: str, cwd: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "IO7CTL_MASTER"}
    return subprocess.run([PY, "-m", "master.ctl", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False, env={**clean, **(env or {})})


def write_run_file(folder: Path, masters: list[tuple[str, str]], pid: int | None = None
                   ) -> Path:
    path = folder / runfile.RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "pid": os.getpid() if pid is None else pid, "scenario": "B", "logs": str(folder),
        "masters": [{"group": g, "address": a} for g, a in masters],
        "operator": str(operator_dir())}))  # make run's installer (master/carparkpki.py)
    return path


def write_groups_file(folder: Path, groups: dict[str, list[str]]) -> Path:
    """A run file as make run writes it with io7d (issue 13): every member's address."""
    path = folder / runfile.RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "pid": os.getpid(), "scenario": "B", "logs": str(folder),
        "groups": [{"group": g, "members": [
            {"charger_id": f"io7-{i + 1:02d}", "address": a} for i, a in enumerate(addresses)]}
            for g, addresses in groups.items()],
        "operator": str(operator_dir())}))
    return path


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr  # no traceback, no raw gRPC dump
    return lines[0]


@pytest.fixture(scope="module")
def two_masters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[str, str]]]:
    """Two real masters (groups garage-L1 and garage-L2, 40 A), as make run's scenario C
    has; started once for the module's tests that use them. A test that changes a limit
    puts it back (`limit_put_back`), so each test finds them at 40 A."""
    tmp = tmp_path_factory.mktemp("two-masters")
    (tmp / "m1").mkdir()
    (tmp / "m2").mkdir()
    with cluster(tmp / "m1") as c1, cluster(tmp / "m2") as c2:
        found = []
        for c, phase in ((c1, "L1"), (c2, "L2")):
            assert isinstance(c, Cluster)
            _, address = c.master(limit_a=40, group=f"garage-{phase}", phases=f'["{phase}"]')
            found.append((f"garage-{phase}", address))
        yield found


@contextmanager
def limit_put_back(address: str, cwd: Path) -> Iterator[None]:
    """Set the master at `address` back to its installed 40 A after the block."""
    try:
        yield
    finally:
        pki = ("--pki-dir", str(operator_dir()))
        back = ctl(*pki, "--master", address, "set-limit", "40", cwd=cwd)
        assert back.returncode == 0, back.stderr


def test_status_with_no_arguments_finds_make_runs_master(
        tmp_path: Path, two_masters: list[tuple[str, str]]) -> None:
    write_run_file(tmp_path, two_masters[:1])
    below = tmp_path / "deploy" / "site"
    below.mkdir(parents=True)
    done = ctl("status", cwd=below)  # from a folder below the one make run was started in
    assert done.returncode == 0, done.stderr
    assert f"master at {two_masters[0][1]}" in done.stdout
    assert "group garage-L1 " in done.stdout


def test_status_shows_every_master_of_scenario_c(
        tmp_path: Path, two_masters: list[tuple[str, str]]) -> None:
    write_run_file(tmp_path, two_masters)
    done = ctl("status", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for group, address in two_masters:
        assert f"master at {address}" in done.stdout and f"group {group} " in done.stdout
    as_json = ctl("status", "--json", cwd=tmp_path)
    groups = [json.loads(line)["group"] for line in as_json.stdout.splitlines()]
    assert groups == ["garage-L1", "garage-L2"]


def test_a_change_to_one_of_several_masters_needs_group(
        tmp_path: Path, two_masters: list[tuple[str, str]]) -> None:
    write_run_file(tmp_path, two_masters)
    refused = ctl("set-limit", "30", cwd=tmp_path)
    assert refused.returncode == 2
    line = one_line(refused.stderr)
    assert "--group" in line and "garage-L1" in line and "garage-L2" in line
    with limit_put_back(two_masters[1][1], tmp_path):
        done = ctl("--group", "garage-L2", "set-limit", "30", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "30 A per phase (was 40 A; installed 40 A)" in done.stdout
    unknown = ctl("--group", "garage-L9", "status", cwd=tmp_path)
    assert unknown.returncode == 2 and "garage-L9" in one_line(unknown.stderr)


def test_explicit_master_wins_over_env_and_run_file(
        tmp_path: Path, two_masters: list[tuple[str, str]]) -> None:
    write_run_file(tmp_path, two_masters[:1])
    env = {"IO7CTL_MASTER": two_masters[1][1]}
    by_env = ctl("status", "--json", cwd=tmp_path, env=env)
    assert json.loads(by_env.stdout)["group"] == "garage-L2"
    explicit = ctl("--master", two_masters[0][1], "status", "--json", cwd=tmp_path, env=env)
    assert json.loads(explicit.stdout)["group"] == "garage-L1"


def test_a_groups_members_are_asked_in_turn_until_its_master_answers(
        tmp_path: Path, two_masters: list[tuple[str, str]]) -> None:
    """Only the elected member serves a master: the others refuse the connection."""
    refusing = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    write_groups_file(tmp_path, {"garage-L1": [refusing[0], two_masters[0][1], refusing[1]]})
    done = ctl("status", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"master at {two_masters[0][1]}" in done.stdout
    assert "group garage-L1 " in done.stdout
    with limit_put_back(two_masters[0][1], tmp_path):
        changed = ctl("set-limit", "30", cwd=tmp_path)  # a change goes to the master too
    assert changed.returncode == 0, changed.stderr
    assert "30 A per phase (was 40 A" in changed.stdout


def test_members_given_by_hand_are_asked_in_turn(
        tmp_path: Path, two_masters: list[tuple[str, str]]) -> None:
    """A site's io7ctl: --master with every member's address, comma-separated."""
    refusing = f"127.0.0.1:{free_port()}"
    pki = ("--pki-dir", str(operator_dir()))
    done = ctl(*pki, "--master", f"{refusing},{two_masters[0][1]}", "status", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"master at {two_masters[0][1]}" in done.stdout
    gone = ctl(*pki, "--master", f"{refusing}, 127.0.0.1:{free_port()}", "status",
               cwd=tmp_path)
    assert gone.returncode == 3 and "has no master now" in one_line(gone.stderr)


def test_a_group_whose_members_all_refuse_has_no_master_now(tmp_path: Path) -> None:
    addresses = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    write_groups_file(tmp_path, {"garage": addresses})
    done = ctl("status", cwd=tmp_path)
    assert done.returncode == 3
    line = one_line(done.stderr)
    assert "group garage has no master now" in line and "election" in line
    assert all(a in line for a in addresses)


def test_a_dead_address_is_one_line_and_exit_3(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    done = ctl("--master", address, "status", cwd=tmp_path)
    assert done.returncode == 3
    line = one_line(done.stderr)
    assert f"no master answers at {address}: is io7-master running?" in line
    assert ".run/io7ctl.json" in line


def test_a_stopped_car_parks_run_file_is_named(tmp_path: Path) -> None:
    dead = subprocess.run([PY, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    write_run_file(tmp_path, [("garage", "127.0.0.1:1")], pid=int(dead.stdout))
    done = ctl("status", cwd=tmp_path)
    assert done.returncode == 3
    assert "has stopped" in one_line(done.stderr)


@pytest.mark.parametrize(("address", "says"), [
    ("localhost", "no port"),
    ("127.0.0.1:", "no port"),
    (":50051", "no host"),
    ("127.0.0.1:99999", "1-65535"),
    ("127.0.0.1:grpc", "1-65535"),
    ("10.0.0 .1:50051", "not a host"),
], ids=["host without port", "empty port", "no host", "port too big", "named port",
        "space in host"])
def test_a_bad_address_is_a_usage_error(tmp_path: Path, address: str, says: str) -> None:
    for how in (["--master", address], []):
        env = {} if how else {"IO7CTL_MASTER": address}
        done = ctl(*how, "status", cwd=tmp_path, env=env)
        assert done.returncode == 2, done.stderr
        line = one_line(done.stderr)
        assert repr(address) in line and says in line


def test_help_states_defaults_and_exit_codes(tmp_path: Path) -> None:
    done = ctl("--help", cwd=tmp_path)
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for fragment in (".run/io7ctl.json", "IO7CTL_MASTER", "127.0.0.1:50051",
                     "0 ok", "1 the master refused", "2 usage", "3 no master answers"):
        assert fragment in text, fragment


def test_watch_on_a_groups_members_follows_the_takeover(tmp_path: Path) -> None:
    """io7d: when the watched master goes, io7ctl asks the members again and goes on
    watching the new one (here two masters stand in for two members' masters: the first
    stops, the second answers with its own limit)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with cluster(tmp_path / "a") as ca, cluster(tmp_path / "b") as cb:
        first, a = ca.master(limit_a=40, group="garage", phases='["L1"]')
        _, b = cb.master(limit_a=30, group="garage", phases='["L1"]')
        write_groups_file(tmp_path, {"garage": [a, b]})
        clean = {k: v for k, v in os.environ.items() if k != "IO7CTL_MASTER"}
        watch = subprocess.Popen([PY, "-m", "master.ctl", "watch", "--json", "--count", "6",
                                  "--interval-ms", "200"], cwd=tmp_path, env=clean,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert watch.stdout is not None
        limits = []
        for line in watch.stdout:
            limits.append(json.loads(line)["phases"][0]["limit_a"])
            if len(limits) == 2:
                first.stop()  # the watched master goes
        assert watch.wait(60) == 0, watch.stderr.read() if watch.stderr else ""
    assert len(limits) == 6
    assert limits[:2] == [40.0, 40.0] and limits[-1] == 30.0
