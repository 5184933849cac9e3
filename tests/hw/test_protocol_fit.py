"""Every driver and simulator fits the capability Protocol it claims (style.md section 3).

The typed assignments below are the proof: mypy (strict) rejects this file if a method is
missing or has the wrong signature. `make lint` type-checks `hw` only, so the last test runs
mypy on this file itself; the runtime checks catch a missing method even without mypy.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hw.capabilities import (
    Contactor,
    ControlPilot,
    GridCurrentSensor,
    Led,
    Meter,
    OpenPenDetector,
    ResidualCurrentMonitor,
    RfidReader,
    TemperatureSensor,
    TiltSensor,
)
from hw.modbus.ctkit import CtKitConfig, ModbusCtKit
from hw.modbus.meter import MeterConfig, ModbusMeter
from hw.modbus.profiles import SDM630
from hw.modbus.transport import BusSettings, ModbusBus, TcpSettings
from hw.sim.board import SimChargerBoard, SimConnector


def fit_modbus_meter(driver: ModbusMeter) -> Meter:
    return driver


def fit_modbus_ctkit(driver: ModbusCtKit) -> GridCurrentSensor:
    return driver


def fit_sim_connector(
    socket: SimConnector,
) -> tuple[ControlPilot, Contactor, Meter, ResidualCurrentMonitor, Led]:
    return socket, socket, socket, socket, socket


def fit_sim_board(
    board: SimChargerBoard,
) -> tuple[OpenPenDetector, TemperatureSensor, TiltSensor, RfidReader]:
    return board, board, board, board


def test_drivers_fit_at_runtime() -> None:
    bus = ModbusBus(
        BusSettings(endpoint=TcpSettings(host="127.0.0.1", port=1502))
    )  # no loop needed
    meter = fit_modbus_meter(ModbusMeter(bus, MeterConfig(profile=SDM630)))
    ctkit = fit_modbus_ctkit(ModbusCtKit(bus, CtKitConfig.scenario_b(rated_a=100.0)))
    assert isinstance(meter, Meter)
    assert isinstance(ctkit, GridCurrentSensor)
    socket_parts = fit_sim_connector(SimConnector(lambda: 0.0))
    board_parts = fit_sim_board(SimChargerBoard())
    protocols = (
        ControlPilot, Contactor, Meter, ResidualCurrentMonitor, Led,
        OpenPenDetector, TemperatureSensor, TiltSensor, RfidReader,
    )  # fmt: skip
    for part, protocol in zip((*socket_parts, *board_parts), protocols, strict=True):
        assert isinstance(part, protocol), protocol.__name__
    bus.close()


def test_mypy_proves_the_fit() -> None:
    pytest.importorskip("mypy")
    root = Path(__file__).resolve().parents[2]  # pyproject.toml there: strict settings
    done = subprocess.run(
        [sys.executable, "-m", "mypy", str(Path(__file__).relative_to(root))],
        cwd=root,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
