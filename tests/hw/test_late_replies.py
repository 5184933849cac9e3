"""A CT kit that answers later than the timeout: its late reply must never pass for the
answer to a later request. Real pymodbus server (the simulator) and real client, over a
pty (Modbus RTU, no transaction id) and TCP, timeout 0.5 s with one retry (the master's
settings).

Every reply carries a serial number the server gave the request when it arrived, and the
server notes when that was; a read that succeeds must return an answer to a request that
reached the server after the read began. Real time: the kit is 0.7 s late, each read
takes at most ~0.5 s; only ordering is asserted, never speed.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import pytest

from hw.errors import DeviceError, DeviceGarbageError
from hw.modbus.ctkit import CtKitConfig, ModbusCtKit
from hw.modbus.lateguard import LateReplyGuard
from hw.modbus.profiles import CT_KIT_SDM630_STYLE, Quantity
from hw.modbus.transport import BusSettings, ModbusBus, SerialSettings, TcpSettings
from hw.sim.devices import ModbusFault, SimulatedModbusDevice
from hw.sim.modbus_server import ModbusSimServer

LATE_S = 0.7
TIMEOUT_S = 0.5  # architecture.md: <= 0.5 s per read, retry included
READS = 8
CYCLE_S = 0.5  # pace of the recovery polls (the master polls once per 1 s cycle)


@dataclass
class Numbered:
    """Clamp #1 reads the request's serial number; `arrived_s[n]` is when request n came."""

    arrived_s: dict[int, float] = field(default_factory=dict)

    def __call__(self) -> Mapping[Quantity, float]:
        n = len(self.arrived_s) + 1
        self.arrived_s[n] = time.monotonic()
        return {Quantity.CURRENT_L1_A: float(n)}


@dataclass
class Rig:
    numbered: Numbered
    sim: SimulatedModbusDevice
    kit: ModbusCtKit


@pytest.fixture(params=["pty", "tcp"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    numbered = Numbered()
    sim = SimulatedModbusDevice(device_id=1, profile=CT_KIT_SDM630_STYLE, source=numbered,
                                name="slow kit")
    server = ModbusSimServer([sim])
    endpoint: SerialSettings | TcpSettings
    if request.param == "tcp":
        endpoint = TcpSettings(host="127.0.0.1", port=await server.start_tcp("127.0.0.1", 0))
    else:
        endpoint = SerialSettings(port=await server.start_pty())
    bus = ModbusBus(BusSettings(endpoint=endpoint, timeout_s=TIMEOUT_S, retries=1))
    kit = ModbusCtKit(bus, CtKitConfig.scenario_c(rated_a=1000.0))
    yield Rig(numbered, sim, kit)
    bus.close()
    await server.stop()


async def read(rig: Rig) -> tuple[float, int | None]:
    """(when the read began, the serial number it returned or None if it failed)."""
    began_s = time.monotonic()
    try:
        readings = await rig.kit.read_clamps()
    except DeviceError:
        return began_s, None
    return began_s, int(readings[0].current_a)


async def test_a_late_reply_is_never_the_next_answer(rig: Rig) -> None:
    assert (await read(rig))[1] == 1  # a healthy kit first
    rig.sim.fault, rig.sim.late_s = ModbusFault.LATE, LATE_S
    results = []
    for k in range(READS):  # back to back, and with pauses that shift the phase
        results.append(await read(rig))
        if k % 3 == 2:
            await asyncio.sleep(0.3)
    for began_s, serial in results:
        if serial is not None:
            assert rig.numbered.arrived_s[serial] >= began_s, (
                f"read begun at {began_s:.3f} returned the answer to request {serial}, "
                f"which arrived at {rig.numbered.arrived_s[serial]:.3f}: {results}")
    assert all(serial is None for _, serial in results), results  # 0.7 s > 0.5 s: all fail
    rig.sim.fault = ModbusFault.NONE
    recovered = []
    for _ in range(6):  # polled like the master's CT kit: one read per cycle
        recovered.append(await read(rig))
        await asyncio.sleep(CYCLE_S)
    assert all(serial is not None for _, serial in recovered[-3:]), recovered
    for began_s, serial in recovered:
        if serial is not None:
            assert rig.numbered.arrived_s[serial] >= began_s, recovered


async def test_a_reply_with_another_function_code_is_not_data() -> None:
    """A raw Modbus TCP peer on loopback answers a read of input registers (0x04) with a
    well-formed holding-register reply (0x03): a stray reply, refused."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readexactly(12)  # MBAP(7) + function, address, count
        tid, unit = request[0:2], request[6:7]
        data = struct.pack(">fff", 10.0, 11.0, 12.0)  # what was asked for, but as 0x03
        pdu = bytes([0x03, len(data)]) + data
        writer.write(tid + b"\x00\x00" + struct.pack(">H", len(pdu) + 1) + unit + pdu)
        await writer.drain()
        await reader.read()  # until the client hangs up
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bus = ModbusBus(BusSettings(endpoint=TcpSettings(host="127.0.0.1", port=port)))
    kit = ModbusCtKit(bus, CtKitConfig.scenario_b(rated_a=100.0))
    try:
        with pytest.raises(DeviceGarbageError, match=r"function 0x03 does not answer this "
                           r"request \(function 0x04\): a late or stray reply"):
            await kit.read_clamps()
    finally:
        bus.close()
        server.close()
        await server.wait_closed()


# name, events (what, device, at s), device asked about, now, expected wait
GUARD_ROWS = [
    ("no timeout: no wait", [("sent", 1, 0.0)], 1, 0.1, 0.0),
    ("timeout: quiet for 2 timeouts after the last request",
     [("sent", 1, 0.0), ("sent", 1, 0.25), ("failed", 1, 0.5)], 1, 0.5, 0.75),
    ("another address is not held", [("sent", 1, 0.0), ("failed", 1, 0.5)], 2, 0.5, 0.0),
    ("a late reply seen 2 s late: quiet for 3 s",
     [("sent", 1, 0.0), ("failed", 1, 0.5), ("received", 1, 2.0)], 1, 2.0, 1.0),
    ("a reply during a request is not late",
     [("sent", 1, 0.0), ("in flight", 1, 0.0), ("received", 1, 0.1)], 1, 0.1, 0.0),
    ("quiet time capped at 10 s",
     [("sent", 1, 0.0), ("failed", 1, 0.5), ("received", 1, 60.0)], 1, 60.0, 0.0),
]


@pytest.mark.parametrize(("name", "events", "device_id", "now_s", "wait_s"), GUARD_ROWS,
                         ids=[r[0] for r in GUARD_ROWS])
def test_late_reply_guard(name: str, events: list[tuple[str, int, float]], device_id: int,
                          now_s: float, wait_s: float) -> None:
    guard = LateReplyGuard(timeout_s=TIMEOUT_S)
    for what, device, at_s in events:
        if what == "sent":
            guard.sent(device, at_s)
        elif what == "received":
            guard.received(device, at_s)
        elif what == "failed":
            guard.failed(device)
        else:
            guard.in_flight += 1
    assert guard.wait_s(device_id, now_s) == pytest.approx(wait_s), name
