"""Simulated Modbus devices: register images that follow the simulated physics.

A `SimulatedModbusDevice` pairs a register profile (the same `hw.modbus.profiles` map the
driver reads) with a `source` callable giving the current value of each quantity. Every
read calls the source, so the registers always show the physics at that instant. The
pymodbus simulator datastore (`SimDevice`) holds the registers; its `action` hook fills
them on each request.

Fault injection (`fault`), so tests see what a real bus can do:
- SILENT: the device does not answer (no reply goes on the wire) until cleared.
- NAN: every float register reads NaN (0x7FC0 0x0000), as a meter with no valid value.
- SHORT_REPLY: a well-framed reply with two registers fewer than asked for.
- EXCEPTION: a Modbus exception reply (code 4, device failure).
- LATE: every reply goes on the wire `late_s` after the request (a device too slow for
  the master's timeout: its reply may arrive while the master waits for the next one).
- FROZEN: every read serves the values of the last read before the fault, bit for bit
  (a kit whose firmware hangs but still answers).
The SILENT, SHORT_REPLY and LATE faults act on the wire and are applied by the server
(`hw.sim.modbus_server`), the others here.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping, Sequence

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from hw.capabilities import MeterReading
from hw.modbus.decode import float32_to_registers
from hw.modbus.profiles import (
    CURRENTS,
    FLOAT32_REGISTERS,
    POWERS,
    VOLTAGES,
    Quantity,
    RegisterProfile,
)

KWH_PER_WH = 0.001


class ModbusFault(enum.Enum):
    """What a simulated device does wrong (see the module docstring)."""

    NONE = "none"
    SILENT = "silent"
    NAN = "nan"
    SHORT_REPLY = "short-reply"
    EXCEPTION = "exception"
    LATE = "late"
    FROZEN = "frozen"


ValueSource = Callable[[], Mapping[Quantity, float]]


class SimulatedModbusDevice:
    """One device on a simulated bus: an address, a register map and where values come from."""

    def __init__(
        self, *, device_id: int, profile: RegisterProfile, source: ValueSource, name: str
    ) -> None:
        if not 1 <= device_id <= 247:
            raise ValueError(f"Modbus address {device_id} is not within 1..247")
        self.device_id = device_id
        self.profile = profile
        self.source = source
        self.name = name
        self.fault = ModbusFault.NONE
        self.late_s = 0.0  # with ModbusFault.LATE: how late every reply goes out
        self.reads_served = 0
        self._last_values: Mapping[Quantity, float] | None = None
        last = max(address for _, address in profile.registers)
        self._float_count = last // FLOAT32_REGISTERS + 1

    def sim_device(self) -> SimDevice:
        """The pymodbus datastore for this device: float32 registers from 0 to the last one
        of the profile (a real Eastron answers in its gaps too), read-only. pymodbus shares
        one block between holding and input registers; `_on_request` serves only the
        profile's table, like the real device."""
        return SimDevice(
            id=self.device_id,
            simdata=[
                SimData(
                    address=0,
                    count=self._float_count,
                    values=0.0,
                    datatype=DataType.FLOAT32,
                    readonly=True,
                )
            ],
            action=self._on_request,
        )

    async def _on_request(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus calls this before answering: refresh the registers from the physics."""
        if set_values is not None or function_code != self.profile.table.value:
            # Measurements are read-only, and only in their own table (Eastron: input
            # registers, function 0x04): elsewhere there is nothing at this address.
            return ExcCodes.ILLEGAL_ADDRESS
        if self.fault is ModbusFault.EXCEPTION:
            return ExcCodes.DEVICE_FAILURE
        if self.fault is not ModbusFault.FROZEN or self._last_values is None:
            self._last_values = dict(self.source())
        values = self._last_values
        for quantity, register in self.profile.registers:
            value = math.nan if self.fault is ModbusFault.NAN else values.get(quantity, 0.0)
            offset = register - start_address
            registers[offset : offset + FLOAT32_REGISTERS] = float32_to_registers(value)
        self.reads_served += 1
        return None


def meter_values(reading: MeterReading) -> dict[Quantity, float]:
    """A meter reading as the registers of an Eastron meter (energy in kWh)."""
    values: dict[Quantity, float] = {
        Quantity.POWER_TOTAL_W: reading.total_power_w,
        Quantity.FREQUENCY_HZ: reading.frequency_hz,
        Quantity.IMPORT_ENERGY_KWH: reading.import_energy_wh * KWH_PER_WH,
        # import + export; a charger's meter exports nothing
        Quantity.TOTAL_ENERGY_KWH: reading.import_energy_wh * KWH_PER_WH,
    }
    for phase in range(reading.phases):
        values[VOLTAGES[phase]] = reading.phase_voltages_v[phase]
        values[CURRENTS[phase]] = reading.phase_currents_a[phase]
        values[POWERS[phase]] = reading.phase_powers_w[phase]
    return values


def clamp_values(currents_a: Sequence[float]) -> dict[Quantity, float]:
    """Clamp currents (#1 first, arrow towards the load) as CT-kit registers."""
    if not 1 <= len(currents_a) <= 3:
        raise ValueError("the Sense CT kit has 1 to 3 clamps")
    return {CURRENTS[i]: current for i, current in enumerate(currents_a)}
