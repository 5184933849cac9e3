"""`make run`'s car park starts every process, shows the groups, and stops cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


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
