"""The Modbus drivers against pymodbus-served simulators, over a real pty and over TCP.

One simulated RS485 line carries three devices, as on a site: an SDM630 socket meter at
address 1, the Sense CT kit at 2 and an SDM120 at 3. Everything is on 127.0.0.1 or a pty.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import pytest

from hw.errors import (
    DeviceConfigError,
    DeviceConnectionError,
    DeviceGarbageError,
    DeviceTimeoutError,
)
from hw.modbus.ctkit import ClampConfig, CtKitConfig, ModbusCtKit
from hw.modbus.lateguard import HOLDOFF_TIMEOUTS
from hw.modbus.meter import MeterConfig, ModbusMeter
from hw.modbus.profiles import CT_KIT_SDM630_STYLE, SDM120, SDM630, Quantity
from hw.modbus.transport import BusSettings, ModbusBus, SerialSettings, TcpSettings
from hw.sim.board import SimConnector
from hw.sim.devices import ModbusFault, SimulatedModbusDevice, clamp_values, meter_values
from hw.sim.ev import EvModel, EvSpec
from hw.sim.modbus_server import ModbusSimServer

TIMEOUT_S = 0.3
HOLDOFF_S = HOLDOFF_TIMEOUTS * TIMEOUT_S  # no request to a device this long after a timeout
METER_ID, CTKIT_ID, SDM120_ID = 1, 2, 3


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


@dataclass
class Rig:
    clock: Clock
    socket: SimConnector
    clamps_a: list[float]
    meter_sim: SimulatedModbusDevice
    ctkit_sim: SimulatedModbusDevice
    server: ModbusSimServer
    bus: ModbusBus
    transport: str


def single_phase(socket: SimConnector) -> Mapping[Quantity, float]:
    reading = meter_values(socket.meter_reading())
    return {q: v for q, v in reading.items() if q.phase in (0, 1)}


@pytest.fixture(params=["tcp", "pty"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    clock = Clock()
    socket = SimConnector(clock)
    socket.plug_in(EvModel(EvSpec(response_delay_s=0.0), soc=0.4))
    await socket.close_contactor()
    await socket.offer_current_a(16.0)
    clamps_a = [31.5, -4.25, 12.0]
    meter_sim = SimulatedModbusDevice(
        device_id=METER_ID,
        profile=SDM630,
        source=lambda: meter_values(socket.meter_reading()),
        name="meter",
    )
    ctkit_sim = SimulatedModbusDevice(
        device_id=CTKIT_ID,
        profile=CT_KIT_SDM630_STYLE,
        source=lambda: clamp_values(clamps_a),
        name="ctkit",
    )
    sdm120_sim = SimulatedModbusDevice(
        device_id=SDM120_ID, profile=SDM120, source=lambda: single_phase(socket), name="sdm120"
    )
    server = ModbusSimServer([meter_sim, ctkit_sim, sdm120_sim])
    endpoint: SerialSettings | TcpSettings
    if request.param == "tcp":
        endpoint = TcpSettings(host="127.0.0.1", port=await server.start_tcp("127.0.0.1", 0))
    else:
        endpoint = SerialSettings(port=await server.start_pty())
    bus = ModbusBus(BusSettings(endpoint=endpoint, timeout_s=TIMEOUT_S, retries=1))
    yield Rig(clock, socket, clamps_a, meter_sim, ctkit_sim, server, bus, request.param)
    bus.close()
    await server.stop()


def meter(rig: Rig) -> ModbusMeter:
    return ModbusMeter(rig.bus, MeterConfig(profile=SDM630, device_id=METER_ID))


def ctkit(rig: Rig, *clamps: ClampConfig) -> ModbusCtKit:
    config = CtKitConfig(
        clamps=clamps or tuple(ClampConfig(clamp=n, rated_a=100.0) for n in (1, 2, 3)),
        device_id=CTKIT_ID,
    )
    return ModbusCtKit(rig.bus, config)


async def test_meter_values_decode_and_follow_the_physics(rig: Rig) -> None:
    first = await meter(rig).read_meter()
    assert first.phase_voltages_v == (230.0, 230.0, 230.0)
    assert first.phase_currents_a == (16.0, 16.0, 16.0)
    assert first.phase_powers_w == (3680.0, 3680.0, 3680.0)
    assert first.total_power_w == 11_040.0
    assert first.frequency_hz == 50.0
    assert first.import_energy_wh == 0.0
    rig.clock.now_s += 1800.0  # half an hour at 11.04 kW
    later = await meter(rig).read_meter()
    assert later.import_energy_wh == pytest.approx(5520.0, rel=1e-6)  # float32 kWh


async def test_sdm120_single_phase(rig: Rig) -> None:
    reading = await ModbusMeter(
        rig.bus, MeterConfig(profile=SDM120, device_id=SDM120_ID)
    ).read_meter()
    assert reading.phases == 1
    assert reading.phase_currents_a == (16.0,)
    assert reading.total_power_w == 3680.0  # the SDM120 has no total: the sum of one phase


async def test_ctkit_reads_signed_clamps(rig: Rig) -> None:
    readings = await ctkit(rig).read_clamps()
    assert [(r.clamp, r.current_a) for r in readings] == [(1, 31.5), (2, -4.25), (3, 12.0)]


async def test_ctkit_scenario_c_and_reversed_clamp(rig: Rig) -> None:
    scenario_c = ModbusCtKit(rig.bus, CtKitConfig.scenario_c(rated_a=60.0, device_id=CTKIT_ID))
    assert [r.current_a for r in await scenario_c.read_clamps()] == [31.5]
    flipped = await ctkit(rig, ClampConfig(clamp=2, rated_a=50.0, reversed=True)).read_clamps()
    assert [(r.clamp, r.current_a) for r in flipped] == [(2, 4.25)]


async def test_ctkit_over_rating_is_garbage(rig: Rig) -> None:
    with pytest.raises(DeviceGarbageError, match=r"clamp #1 reads 31.5 A.*rated 20 A"):
        await ctkit(rig, ClampConfig(clamp=1, rated_a=20.0)).read_clamps()


async def test_silent_device_times_out_within_the_timeout(rig: Rig) -> None:
    rig.ctkit_sim.fault = ModbusFault.SILENT
    started = time.monotonic()
    with pytest.raises(DeviceTimeoutError) as caught:
        await ctkit(rig).read_clamps()
    elapsed_s = time.monotonic() - started
    assert elapsed_s <= TIMEOUT_S + 0.25  # the hard bound, plus scheduling on a busy box
    assert caught.value.register == 0x0006
    assert "Sense CT kit" in str(caught.value) and "0x0006" in str(caught.value)


async def test_silent_device_does_not_block_the_event_loop(rig: Rig) -> None:
    rig.ctkit_sim.fault = ModbusFault.SILENT
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    with pytest.raises(DeviceTimeoutError):
        await ctkit(rig).read_clamps()
    task.cancel()
    assert ticks >= 10  # the loop kept running all along the 0.3 s timeout


async def test_a_device_that_comes_back_is_read_again(rig: Rig) -> None:
    rig.meter_sim.fault = ModbusFault.SILENT
    driver = meter(rig)
    for _ in range(3):  # enough for pymodbus to give up on a TCP connection
        with pytest.raises(DeviceTimeoutError):
            await driver.read_meter()
    rig.meter_sim.fault = ModbusFault.NONE
    await asyncio.sleep(HOLDOFF_S)  # its late replies, if any, have come and gone
    assert (await driver.read_meter()).phase_currents_a == (16.0, 16.0, 16.0)


@pytest.mark.parametrize(
    ("fault", "match"),
    [
        (ModbusFault.NAN, r"register 0x0006: current L1 is nan"),
        (ModbusFault.SHORT_REPLY, r"register 0x0006: asked for 6 registers, got 4"),
        (ModbusFault.EXCEPTION, r"Modbus exception 4: device failure"),
    ],
    ids=["nan registers", "short reply", "exception reply"],
)
async def test_garbage_gives_the_typed_error(rig: Rig, fault: ModbusFault, match: str) -> None:
    rig.ctkit_sim.fault = fault
    with pytest.raises(DeviceGarbageError, match=match):
        await ctkit(rig).read_clamps()
    rig.ctkit_sim.fault = ModbusFault.NONE
    await asyncio.sleep(HOLDOFF_S)  # a short reply may be a late one: quiet first
    assert len(await ctkit(rig).read_clamps()) == 3


async def test_absurd_value_is_garbage(rig: Rig) -> None:
    rig.clamps_a[0] = 5000.0
    with pytest.raises(DeviceGarbageError, match=r"0x0006: current L1 = 5000 is outside"):
        await ctkit(rig).read_clamps()


async def test_an_empty_address_stays_silent(rig: Rig) -> None:
    nobody = ModbusMeter(rig.bus, MeterConfig(profile=SDM630, device_id=9))
    with pytest.raises(DeviceTimeoutError, match="address 9"):
        await nobody.read_meter()
    assert (await meter(rig).read_meter()).phases == 3  # the line is still usable


async def test_wrong_profile_is_an_exception_reply(rig: Rig) -> None:
    wrong = ModbusMeter(rig.bus, MeterConfig(profile=SDM630, device_id=CTKIT_ID))
    with pytest.raises(DeviceGarbageError, match="illegal data address"):
        await wrong.read_meter()


async def test_reads_are_contiguous_blocks(rig: Rig) -> None:
    await meter(rig).read_meter()
    assert rig.meter_sim.reads_served == 3  # 0x0000-0x0011, 0x0034-0x0035, 0x0046-0x0049
    await ctkit(rig).read_clamps()
    assert rig.ctkit_sim.reads_served == 1  # 0x0006-0x000B in one read


async def test_tcp_server_restart_is_picked_up_without_a_restart() -> None:
    sim = SimulatedModbusDevice(
        device_id=1, profile=CT_KIT_SDM630_STYLE, source=lambda: clamp_values([7.0]), name="ct"
    )
    server = ModbusSimServer([sim])
    port = await server.start_tcp("127.0.0.1", 0)
    bus = ModbusBus(BusSettings(endpoint=TcpSettings(host="127.0.0.1", port=port), timeout_s=0.3))
    kit = ModbusCtKit(bus, CtKitConfig.scenario_c(rated_a=50.0))
    try:
        assert (await kit.read_clamps())[0].current_a == 7.0
        await server.stop()
        with pytest.raises((DeviceConnectionError, DeviceTimeoutError)):
            await kit.read_clamps()
        server = ModbusSimServer([sim])
        await server.start_tcp("127.0.0.1", port)
        await asyncio.sleep(HOLDOFF_S)
        assert (await kit.read_clamps())[0].current_a == 7.0
    finally:
        bus.close()
        await server.stop()


async def test_missing_serial_port_is_a_connection_error() -> None:
    bus = ModbusBus(BusSettings(endpoint=SerialSettings(port="/dev/io7-no-such-port")))
    kit = ModbusCtKit(bus, CtKitConfig.scenario_b(rated_a=100.0))
    with pytest.raises(DeviceConnectionError, match="cannot open /dev/io7-no-such-port"):
        await kit.read_clamps()


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: BusSettings(endpoint=TcpSettings(host="127.0.0.1"), timeout_s=1.0), "timeout"),
        (lambda: BusSettings(endpoint=TcpSettings(host="127.0.0.1"), retries=2), "retries"),
        (lambda: SerialSettings(port="/dev/ttyUSB0", baudrate=1234), "baud rate"),
        (lambda: SerialSettings(port="/dev/ttyUSB0", stopbits=3), "stop bits"),
        (lambda: MeterConfig(profile=SDM630, device_id=0), "address 0"),
        (lambda: MeterConfig(profile=CT_KIT_SDM630_STYLE), "no voltage L1"),
        (lambda: CtKitConfig(clamps=()), "1 to 3 clamps"),
        (lambda: ClampConfig(clamp=4, rated_a=100.0), "#1-#3"),
        (lambda: ClampConfig(clamp=1, rated_a=math.inf), "rated value"),
        (
            lambda: CtKitConfig(
                clamps=(ClampConfig(clamp=2, rated_a=1.0), ClampConfig(clamp=1, rated_a=1.0))
            ),
            "distinct and in order",
        ),
        (
            lambda: CtKitConfig(clamps=(ClampConfig(clamp=2, rated_a=1.0),), profile=SDM120),
            "no current L2",
        ),
    ],
    ids=[
        "timeout over 0.5 s",
        "two retries",
        "odd baud rate",
        "three stop bits",
        "broadcast address",
        "meter profile without voltages",
        "no clamps",
        "clamp 4",
        "infinite rating",
        "clamps out of order",
        "profile lacks the clamp",
    ],
)
def test_constructors_refuse_what_the_device_cannot_do(build: object, match: str) -> None:
    assert callable(build)
    with pytest.raises(DeviceConfigError, match=match):
        build()
