"""One Modbus bus (an RS485 line in RTU, or a TCP connection) and bounded register reads.

Built for a control loop (architecture.md, "Time and rates"): a read takes at most
`timeout_s` (<= 0.5 s) in total, retry included (pymodbus gets `timeout_s / (1 + retries)`
per attempt, and `asyncio.wait_for` bounds the whole read as a hard stop), so a stuck bus
never holds a cycle longer than that; the event loop itself is never blocked. pymodbus'
own background reconnect is off: after a failure the next read reconnects at once, within
the same bound. Every failure becomes a typed `hw.errors.DeviceError` naming the device,
the register and the reason; the caller decides what to do.

A reply must be the answer to its own request: its address, function code and register
count must match (else DeviceGarbageError), and after a timeout no request goes to that
device until its late replies have had time to arrive and be discarded
(`hw.modbus.lateguard`): on RTU nothing else tells a late reply from the next answer.
A read that would have to wait longer than its own bound fails at once instead.

Several devices on one RS485 line share one `ModbusBus` (pymodbus serialises requests).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from hw.errors import (
    DeviceConfigError,
    DeviceConnectionError,
    DeviceGarbageError,
    DeviceTimeoutError,
)
from hw.modbus.decode import decode_block
from hw.modbus.lateguard import LateReplyGuard
from hw.modbus.profiles import MODBUS_MAX_REGISTERS_PER_READ, Quantity, ReadBlock, RegisterTable

log = logging.getLogger(__name__)

MAX_TIMEOUT_S = 0.5  # architecture.md: CT kit polled every 1 s cycle, Modbus timeout <= 0.5 s
MAX_RETRIES = 1  # architecture.md: at most one retry
STANDARD_BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
RTU_ADDRESS_INDEX = 0  # Modbus RTU: the frame starts with the device address
MBAP_UNIT_ID_INDEX = 6  # Modbus TCP: transaction(2) protocol(2) length(2) unit id(1)
EXCEPTION_FLAG = 0x80  # an exception reply's function code is the request's | 0x80
EXCEPTION_NAMES = {
    1: "illegal function (wrong register table for this device?)",
    2: "illegal data address (wrong register profile?)",
    3: "illegal data value",
    4: "device failure",
    6: "device busy",
    11: "gateway: target device did not respond",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialSettings:
    """An RS485 line in Modbus RTU: the port and its framing (Eastron default 9600 8N1)."""

    port: str
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: int = 1
    bytesize: int = 8

    def __post_init__(self) -> None:
        if not self.port:
            raise DeviceConfigError(device="serial port", reason="no port path given")
        if self.baudrate not in STANDARD_BAUD_RATES:
            raise DeviceConfigError(
                device=self.port,
                reason=f"baud rate {self.baudrate} is not one of {STANDARD_BAUD_RATES}",
            )
        if self.parity not in ("N", "E", "O"):
            raise DeviceConfigError(device=self.port, reason=f"parity {self.parity!r}: N, E or O")
        if self.stopbits not in (1, 2):
            raise DeviceConfigError(device=self.port, reason="stop bits must be 1 or 2")
        if self.bytesize not in (7, 8):
            raise DeviceConfigError(device=self.port, reason="byte size must be 7 or 8")

    def describe(self) -> str:
        """Where the bus is, for messages: '/dev/ttyUSB0 9600 8N1'."""
        return f"{self.port} {self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpSettings:
    """Modbus TCP (a gateway, or a simulator in tests)."""

    host: str
    port: int = 502  # the Modbus TCP well-known port

    def __post_init__(self) -> None:
        if not self.host:
            raise DeviceConfigError(device="tcp", reason="no host given")
        if not 1 <= self.port <= 65535:
            raise DeviceConfigError(device=self.host, reason=f"port {self.port} not 1..65535")

    def describe(self) -> str:
        """Where the bus is, for messages: 'tcp 127.0.0.1:5020'."""
        return f"tcp {self.host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class BusSettings:
    """A bus and the bounds of every read on it."""

    endpoint: SerialSettings | TcpSettings
    timeout_s: float = MAX_TIMEOUT_S
    retries: int = MAX_RETRIES

    def __post_init__(self) -> None:
        where = self.endpoint.describe()
        if not 0.0 < self.timeout_s <= MAX_TIMEOUT_S:
            raise DeviceConfigError(
                device=where,
                reason=f"timeout {self.timeout_s} s: a control loop needs 0 < t <= 0.5 s",
            )
        if not 0 <= self.retries <= MAX_RETRIES:
            raise DeviceConfigError(device=where, reason=f"retries {self.retries}: 0 or 1")

    @property
    def attempt_timeout_s(self) -> float:
        """The time one attempt may take; all attempts together take `timeout_s`."""
        return self.timeout_s / (1 + self.retries)


class ModbusBus:
    """A pymodbus client with bounded, typed reads. Connects lazily, reconnects on demand."""

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self.where = settings.endpoint.describe()
        # pymodbus clients bind to the running loop: made on first use, inside the loop.
        self._client: AsyncModbusSerialClient | AsyncModbusTcpClient | None = None
        self._guard = LateReplyGuard(timeout_s=settings.timeout_s)
        serial = isinstance(settings.endpoint, SerialSettings)
        self._address_index = RTU_ADDRESS_INDEX if serial else MBAP_UNIT_ID_INDEX

    def _on_packet(self, sending: bool, packet: bytes) -> bytes:
        """pymodbus' hook on every frame: note when requests go and replies come."""
        if len(packet) > self._address_index:
            device_id, now_s = packet[self._address_index], time.monotonic()
            if sending:
                self._guard.sent(device_id, now_s)
            else:
                self._guard.received(device_id, now_s)
        return packet

    def _make_client(self) -> AsyncModbusSerialClient | AsyncModbusTcpClient:
        endpoint = self.settings.endpoint
        common = {
            "timeout": self.settings.attempt_timeout_s,
            "retries": self.settings.retries,
            "reconnect_delay": 0.0,  # no background reconnect: the next read reconnects
            "reconnect_delay_max": 0.0,
            "trace_packet": self._on_packet,
        }
        if isinstance(endpoint, SerialSettings):
            return AsyncModbusSerialClient(
                endpoint.port,
                framer=FramerType.RTU,
                baudrate=endpoint.baudrate,
                parity=endpoint.parity,
                stopbits=endpoint.stopbits,
                bytesize=endpoint.bytesize,
                **common,  # type: ignore[arg-type]
            )
        return AsyncModbusTcpClient(endpoint.host, port=endpoint.port, **common)  # type: ignore[arg-type]

    async def _ensure_connected(
        self, device: str, register: int
    ) -> AsyncModbusSerialClient | AsyncModbusTcpClient:
        if self._client is None:
            self._client = self._make_client()
        client = self._client
        if client.connected:
            return client
        try:
            ok = await asyncio.wait_for(client.connect(), self.settings.timeout_s)
        except TimeoutError:
            ok = False
        if not ok:
            raise DeviceConnectionError(
                device=device,
                register=register,
                reason=f"cannot open {self.where}: check the port path or address, the "
                "adapter and that nothing else holds the port",
            )
        return client

    async def read_registers(
        self, *, device: str, device_id: int, table: RegisterTable, address: int, count: int
    ) -> list[int]:
        """Read `count` registers from `address` of `device_id`; return exactly `count`.

        Raises DeviceConnectionError (cannot open the bus), DeviceTimeoutError (no valid
        answer within `timeout_s`) or DeviceGarbageError (a Modbus exception reply or a
        wrong register count). `device` names the device in the messages.
        """
        if not 1 <= count <= MODBUS_MAX_REGISTERS_PER_READ:
            raise DeviceConfigError(device=device, register=address, reason=f"count {count}")
        who = f"{device} (address {device_id} on {self.where})"
        budget_s = await self._hold_off(who, device_id, address)
        client = await self._ensure_connected(who, address)
        if table is RegisterTable.INPUT:
            call = client.read_input_registers(address, count=count, device_id=device_id)
        else:
            call = client.read_holding_registers(address, count=count, device_id=device_id)
        self._guard.in_flight += 1
        try:
            response = await asyncio.wait_for(call, budget_s)
        except (TimeoutError, ModbusIOException) as exc:
            self._guard.failed(device_id)
            raise DeviceTimeoutError(
                device=who,
                register=address,
                reason=f"no answer within {self.settings.timeout_s} s "
                f"({1 + self.settings.retries} attempts): check wiring, address, baud rate",
            ) from exc
        except ConnectionException as exc:
            client.close()
            raise DeviceConnectionError(
                device=who, register=address, reason=f"connection lost: {exc}"
            ) from exc
        except ModbusException as exc:
            raise DeviceGarbageError(device=who, register=address, reason=str(exc)) from exc
        finally:
            self._guard.in_flight -= 1
        function_code = response.function_code & ~EXCEPTION_FLAG
        if response.dev_id != device_id or function_code != table.value:
            self._guard.failed(device_id)
            raise DeviceGarbageError(
                device=who,
                register=address,
                reason=f"a reply from address {response.dev_id}, function "
                f"0x{function_code:02X} does not answer this request (function "
                f"0x{table.value:02X}): a late or stray reply, discarded",
            )
        if response.isError():
            code = getattr(response, "exception_code", 0)
            raise DeviceGarbageError(
                device=who,
                register=address,
                reason=f"Modbus exception {code}: {EXCEPTION_NAMES.get(code, 'unknown')}",
            )
        registers = list(response.registers)
        if len(registers) != count:
            self._guard.failed(device_id)  # maybe a late reply to another block
            raise DeviceGarbageError(
                device=who,
                register=address,
                reason=f"asked for {count} registers, got {len(registers)}",
            )
        return registers

    async def _hold_off(self, who: str, device_id: int, address: int) -> float:
        """Wait out the device's quiet time after a timeout (`hw.modbus.lateguard`) if
        one attempt still fits in the read's bound; return the time left for the read.
        Raises DeviceTimeoutError at once when it does not fit."""
        wait_s = self._guard.wait_s(device_id, time.monotonic())
        if wait_s > self.settings.timeout_s - self.settings.attempt_timeout_s:
            latest = self._guard.latest_s(device_id)
            seen = "" if latest is None else f", its last reply came {latest:.2f} s late"
            raise DeviceTimeoutError(
                device=who,
                register=address,
                reason=f"no request for another {wait_s:.2f} s after a timeout, so that a "
                f"late reply cannot pass for the next answer (timeout "
                f"{self.settings.timeout_s} s{seen}): check the device's response time, "
                "wiring and baud rate",
            )
        if wait_s > 0.0:
            await asyncio.sleep(wait_s)
        return self.settings.timeout_s - wait_s

    async def read_plan(self, *, device: str, device_id: int, table: RegisterTable,
                        plan: tuple[ReadBlock, ...]) -> dict[Quantity, float]:
        """Read every block of `plan` and decode it: the quantities by name.

        Raises `hw.errors.DeviceError` like `read_registers`, or DeviceGarbageError from
        decoding (NaN, absurd values, wrong length).
        """
        values: dict[Quantity, float] = {}
        for block in plan:
            registers = await self.read_registers(device=device, device_id=device_id,
                                                  table=table, address=block.address,
                                                  count=block.count)
            values.update(decode_block(device=device, block=block, registers=registers))
        return values

    def close(self) -> None:
        """Close the port or the connection; a later read reopens it."""
        if self._client is not None:
            self._client.close()
