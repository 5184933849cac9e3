"""`make run`'s car park starts every process, shows the groups, and stops cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
GENEROUS_S = 30.0  # the machine is shared: a bound, not a measure


@pytest.mark.parametrize("scenario", ["B", "C"])
def test_carpark_runs_and_stops_cleanly(tmp_path: Path, scenario: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "master.carpark", "--scenario", scenario, "--seconds", "6",
         "--run-dir", str(tmp_path)], capture_output=True, text=True, timeout=120,
        check=False)
    assert done.returncode == 0, done.stderr
    groups = ["garage"] if scenario == "B" else ["garage-L1", "garage-L2", "garage-L3"]
    for g in groups:
        assert f"group {g} " in done.stdout
    assert "car park stopped" in done.stdout
    assert " NO " not in done.stdout.split("io7-cluster car park")[-1]  # all members online
    logs = list((tmp_path / f"scenario-{scenario}").glob("io7-*.log"))
    assert logs and all("contactors open" in p.read_text() for p in logs)


def _children(pid: int) -> list[int]:
    """The live processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has stopped; its reaper may be slow


def _io7ctl_status(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "IO7CTL_MASTER"}
    return subprocess.run([sys.executable, "-m", "master.ctl", "status"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def _wait(what: str, ok: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
                         ids=["SIGTERM", "SIGHUP", "SIGKILL"])
def test_every_child_stops_with_the_launcher(tmp_path: Path, sig: signal.Signals) -> None:
    """A supervisor's SIGTERM (or a closed terminal's SIGHUP, or SIGKILL of the launcher)
    stops the CT simulator, back office, master and agents; agents stop cleanly. Meanwhile
    io7ctl, run with no arguments where the car park was started, finds its master."""
    launcher = subprocess.Popen(
        [sys.executable, "-m", "master.carpark", "--scenario", "B", "--chargers", "2",
         "--run-dir", str(tmp_path / ".run")], stdout=(tmp_path / "out").open("wb"),
        stderr=subprocess.STDOUT)
    run = tmp_path / ".run" / "scenario-B"
    agents = [run / "io7-01.log", run / "io7-02.log"]
    children: list[int] = []
    try:
        _wait("two agents started", lambda: all(
            p.exists() and "agent started" in p.read_text() for p in agents))
        children = _children(launcher.pid)
        assert len(children) == 5, children  # CT kit, back office, master, two agents
        found = _io7ctl_status(tmp_path)
        assert found.returncode == 0 and "group garage " in found.stdout, found.stderr
        launcher.send_signal(sig)
        _wait(f"every child gone after {sig.name}",
              lambda: not any(_alive(c) for c in children), timeout_s=GENEROUS_S)
        code = launcher.wait(GENEROUS_S)
        assert code == (-signal.SIGKILL if sig is signal.SIGKILL else 0), \
            (tmp_path / "out").read_text()[-3000:]
        assert all("contactors open" in p.read_text() for p in agents)
        if sig is signal.SIGKILL:  # the run file stays behind, naming a stopped car park
            after = _io7ctl_status(tmp_path)
            assert after.returncode == 3 and "has stopped" in after.stderr, after.stderr
        else:  # a clean stop removes it
            assert not (tmp_path / ".run" / "io7ctl.json").exists()
    finally:
        if launcher.poll() is None:
            launcher.kill()
        for c in {*children, *_children(launcher.pid)}:  # a failed test leaves no orphans
            with contextlib.suppress(ProcessLookupError):
                os.kill(c, signal.SIGKILL)
        launcher.wait()
