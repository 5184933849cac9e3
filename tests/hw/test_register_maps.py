"""The simulators serve measurements where the real devices do (Eastron's published maps).

Eastron SDM630 / SDM120: every measurement is a float32 INPUT register (function 0x04);
a holding-register read (0x03) of a measurement address is refused. Third-party tools
read the total energy at 0x0156 ("Total kWh", 30343) on both meters. The CT kit's map is
input registers as well. Read with a stock pymodbus client, not our driver.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Sequence

import pytest
from pymodbus.client import AsyncModbusTcpClient

from hw.modbus.meter import MeterConfig, ModbusMeter
from hw.modbus.profiles import CT_KIT_SDM630_STYLE, SDM120, SDM630, Quantity, RegisterTable
from hw.modbus.transport import BusSettings, ModbusBus, TcpSettings
from hw.sim.devices import SimulatedModbusDevice, clamp_values
from hw.sim.modbus_server import ModbusSimServer

METER, SINGLE, KIT = 1, 2, 3
IMPORT_KWH = 1234.5


def meter_values(phases: int) -> dict[Quantity, float]:
    values = {Quantity.FREQUENCY_HZ: 50.0, Quantity.IMPORT_ENERGY_KWH: IMPORT_KWH,
              Quantity.TOTAL_ENERGY_KWH: IMPORT_KWH,
              Quantity.POWER_TOTAL_W: 2300.0 * phases}
    for q in (Quantity.VOLTAGE_L1_V, Quantity.VOLTAGE_L2_V, Quantity.VOLTAGE_L3_V)[:phases]:
        values[q] = 230.0
    for q in (Quantity.CURRENT_L1_A, Quantity.CURRENT_L2_A, Quantity.CURRENT_L3_A)[:phases]:
        values[q] = 10.0
    for q in (Quantity.POWER_L1_W, Quantity.POWER_L2_W, Quantity.POWER_L3_W)[:phases]:
        values[q] = 2300.0
    return values


@pytest.fixture
async def served() -> AsyncIterator[tuple[AsyncModbusTcpClient, ModbusSimServer, int]]:
    server = ModbusSimServer([
        SimulatedModbusDevice(device_id=METER, profile=SDM630, name="sdm630",
                              source=lambda: meter_values(3)),
        SimulatedModbusDevice(device_id=SINGLE, profile=SDM120, name="sdm120",
                              source=lambda: meter_values(1)),
        SimulatedModbusDevice(device_id=KIT, profile=CT_KIT_SDM630_STYLE, name="ctkit",
                              source=lambda: clamp_values([31.5, -4.25, 12.0])),
    ])
    port = await server.start_tcp("127.0.0.1", 0)
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2.0, retries=0)
    await client.connect()
    yield client, server, port
    client.close()
    await server.stop()


def as_float(registers: Sequence[int]) -> float:
    value: float = struct.unpack(">f", struct.pack(">HH", *registers))[0]
    return value


def test_every_profile_is_input_registers() -> None:
    assert {p.table for p in (SDM630, SDM120, CT_KIT_SDM630_STYLE)} == {RegisterTable.INPUT}


@pytest.mark.parametrize(("device_id", "address", "expected"), [
    (METER, 0x0006, 10.0), (METER, 0x0048, IMPORT_KWH), (METER, 0x0156, IMPORT_KWH),
    (SINGLE, 0x0000, 230.0), (SINGLE, 0x0048, IMPORT_KWH), (SINGLE, 0x0156, IMPORT_KWH),
    (KIT, 0x0006, 31.5), (KIT, 0x0008, -4.25),
], ids=["sdm630 I L1", "sdm630 import kWh", "sdm630 total kWh 0x0156", "sdm120 V",
        "sdm120 import kWh", "sdm120 total kWh 0x0156", "ctkit clamp 1", "ctkit clamp 2"])
async def test_measurements_are_input_registers(
        served: tuple[AsyncModbusTcpClient, ModbusSimServer, int], device_id: int,
        address: int, expected: float) -> None:
    client = served[0]
    reply = await client.read_input_registers(address, count=2, device_id=device_id)
    assert not reply.isError(), reply
    assert as_float(reply.registers) == pytest.approx(expected)


@pytest.mark.parametrize(("device_id", "address"), [
    (METER, 0x0006), (METER, 0x0156), (SINGLE, 0x0000), (KIT, 0x0006)],
    ids=["sdm630 I L1", "sdm630 total kWh", "sdm120 V", "ctkit clamp 1"])
async def test_measurements_are_not_holding_registers(
        served: tuple[AsyncModbusTcpClient, ModbusSimServer, int], device_id: int,
        address: int) -> None:
    client = served[0]
    reply = await client.read_holding_registers(address, count=2, device_id=device_id)
    assert reply.isError()
    assert reply.exception_code == 2  # illegal data address: nothing to read there


async def test_the_meter_driver_still_reads_three_blocks(
        served: tuple[AsyncModbusTcpClient, ModbusSimServer, int]) -> None:
    _, server, port = served
    bus = ModbusBus(BusSettings(endpoint=TcpSettings(host="127.0.0.1", port=port)))
    try:
        reading = await ModbusMeter(bus, MeterConfig(profile=SDM630, device_id=METER)).read_meter()
    finally:
        bus.close()
    assert reading.import_energy_wh == pytest.approx(IMPORT_KWH * 1000.0)
    assert server.devices[METER].reads_served == 3  # 0x0000-0x0011, 0x0034, 0x0046-0x0049
