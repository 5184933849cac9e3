"""`io7-hw` run as a process against a simulator process, as an installer would run it."""

from __future__ import annotations

import json
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hw.sim.site import SECONDS_PER_HOUR, SiteModel, SiteProfile, SiteSpec

START_UP_S = 10.0  # generous: a cold interpreter importing pymodbus on a busy CI runner


def io7_hw() -> list[str]:
    script = Path(sys.executable).with_name("io7-hw")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hw.cli"]


def start_simulator(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hw.sim.modbus_server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], START_UP_S)
    if not ready:
        proc.kill()
        raise AssertionError(f"the simulator did not start: {proc.communicate()[1]}")
    return proc, json.loads(proc.stdout.readline())


@pytest.fixture
def ctkit_on_pty() -> Iterator[dict[str, Any]]:
    proc, where = start_simulator(
        "--ctkit", "--pty", "--speed", "0", "--start-h", "12", "--site", "office", "--peak-a", "40"
    )
    yield where
    proc.terminate()
    assert proc.wait(timeout=5) == 0


@pytest.fixture
def meter_on_tcp() -> Iterator[dict[str, Any]]:
    proc, where = start_simulator(
        "--meter", "--meter-profile", "sdm120", "--ev-phases", "1", "--offered-a", "10",
        "--speed", "0", "--tcp", "127.0.0.1:0",
    )  # fmt: skip
    yield where
    proc.terminate()
    assert proc.wait(timeout=5) == 0


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*io7_hw(), *args], check=False, capture_output=True, text=True, timeout=20
    )


def test_ctkit_over_a_pty_prints_the_site_currents(ctkit_on_pty: dict[str, Any]) -> None:
    assert ctkit_on_pty["endpoint"] == "pty"
    done = run("ctkit", "--port", ctkit_on_pty["port"], "--rated-a", "100", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    expected = SiteModel(SiteSpec(profile=SiteProfile.OFFICE, peak_a=40.0)).phase_currents_a(
        12 * SECONDS_PER_HOUR
    )
    assert [c["clamp"] for c in result["clamps"]] == [1, 2, 3]
    assert [c["current_a"] for c in result["clamps"]] == pytest.approx(expected, abs=1e-3)


def test_ctkit_table_and_errors(ctkit_on_pty: dict[str, Any]) -> None:
    table = run("ctkit", "--port", ctkit_on_pty["port"], "--clamps", "1")
    assert table.returncode == 0, table.stderr
    assert "clamp #1:    36.00 A" in table.stdout
    silent = run("ctkit", "--port", ctkit_on_pty["port"], "--address", "7", "--json")
    assert silent.returncode == 1
    error = json.loads(silent.stdout)["error"]
    assert error["type"] == "DeviceTimeoutError"
    assert error["register"] == 0x0006
    assert "address 7" in error["device"]
    impossible = run("ctkit", "--port", ctkit_on_pty["port"], "--clamps", "4")
    assert impossible.returncode == 2
    assert "clamp #4" in impossible.stderr


def test_meter_over_tcp(meter_on_tcp: dict[str, Any]) -> None:
    assert meter_on_tcp["host"] == "127.0.0.1"
    tcp = f"127.0.0.1:{meter_on_tcp['port']}"
    done = run("meter", "--tcp", tcp, "--profile", "sdm120", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["phase_currents_a"] == [10.0]
    assert result["phase_voltages_v"] == [230.0]
    assert result["total_power_w"] == 2300.0
    assert result["frequency_hz"] == 50.0
