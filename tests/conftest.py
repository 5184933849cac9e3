"""Fixtures shared across test folders: expensive runs several tests only read."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class CarparkRun:
    run_dir: Path
    done: subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def carpark_b(tmp_path_factory: pytest.TempPathFactory) -> CarparkRun:
    """`make run`'s scenario B (its four chargers, each an io7d, and the local back office)
    for 8 s, run once: tests/e2e/test_carpark.py reads its screens and logs,
    tests/agent/ocpp/test_cp_processes.py its OCPP links (each ran its own car park)."""
    run_dir = tmp_path_factory.mktemp("carpark-b")
    done = subprocess.run(
        [sys.executable, "-m", "master.carpark", "--scenario", "B", "--seconds", "8",
         "--run-dir", str(run_dir)], capture_output=True, text=True, timeout=120,
        check=False)
    return CarparkRun(run_dir=run_dir, done=done)
