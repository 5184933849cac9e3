"""Per-socket energy meter over Modbus (Eastron SDM630 three-phase, SDM120 single-phase).

`ModbusMeter.read_meter()` reads the quantities it uses in the fewest contiguous blocks
(three reads for an SDM630: 0x0000-0x0011, 0x0034-0x0035, 0x0046-0x0049; the total kWh
at 0x0156 is mapped for other tools, not read here), decodes and checks them, and returns
one `MeterReading`. The first failing block ends the poll with a typed `DeviceError`;
nothing is retried beyond the bus settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from hw.capabilities import MeterReading
from hw.errors import DeviceConfigError
from hw.modbus.profiles import CURRENTS, POWERS, VOLTAGES, Quantity, RegisterProfile
from hw.modbus.transport import ModbusBus

MIN_DEVICE_ID = 1  # Modbus: 0 is broadcast
MAX_DEVICE_ID = 247  # Modbus: 248-255 are reserved
WH_PER_KWH = 1000.0


def check_device_id(device_id: int, device: str) -> None:
    """Raise DeviceConfigError unless `device_id` is a unicast Modbus address (1-247)."""
    if not MIN_DEVICE_ID <= device_id <= MAX_DEVICE_ID:
        raise DeviceConfigError(
            device=device,
            reason=f"Modbus address {device_id} is not within {MIN_DEVICE_ID}..{MAX_DEVICE_ID}",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterConfig:
    """Which meter to read: its register profile and Modbus address."""

    profile: RegisterProfile
    device_id: int = 1  # Eastron factory default address
    name: str = "meter"

    def __post_init__(self) -> None:
        check_device_id(self.device_id, self.name)
        needed = (
            *VOLTAGES[: self.profile.phases],
            *CURRENTS[: self.profile.phases],
            *POWERS[: self.profile.phases],
            Quantity.FREQUENCY_HZ,
            Quantity.IMPORT_ENERGY_KWH,
        )
        if self.profile.phases not in (1, 3):
            raise DeviceConfigError(
                device=self.name,
                reason=f"profile {self.profile.name} maps {self.profile.phases} phase "
                "currents; a meter needs 1 or 3",
            )
        for quantity in needed:
            self.profile.address_of(quantity)


class ModbusMeter:
    """An energy meter on a Modbus bus; implements `hw.capabilities.Meter`."""

    def __init__(self, bus: ModbusBus, config: MeterConfig) -> None:
        self.bus = bus
        self.config = config
        phases = config.profile.phases
        quantities = [*VOLTAGES[:phases], *CURRENTS[:phases], *POWERS[:phases],
                      Quantity.FREQUENCY_HZ, Quantity.IMPORT_ENERGY_KWH]
        if config.profile.has(Quantity.POWER_TOTAL_W):
            quantities.append(Quantity.POWER_TOTAL_W)
        self._plan = config.profile.read_plan(quantities)
        self.device = f"{config.name} [{config.profile.name}]"

    async def read_meter(self) -> MeterReading:
        """Poll the meter once. Raises `hw.errors.DeviceError` (timeout, garbage, connection)."""
        values = await self.bus.read_plan(device=self.device, device_id=self.config.device_id,
                                          table=self.config.profile.table, plan=self._plan)
        phases = self.config.profile.phases
        phase_powers = tuple(values[q] for q in POWERS[:phases])
        return MeterReading(
            phase_voltages_v=tuple(values[q] for q in VOLTAGES[:phases]),
            phase_currents_a=tuple(values[q] for q in CURRENTS[:phases]),
            phase_powers_w=phase_powers,
            total_power_w=values.get(Quantity.POWER_TOTAL_W, sum(phase_powers)),
            frequency_hz=values[Quantity.FREQUENCY_HZ],
            import_energy_wh=values[Quantity.IMPORT_ENERGY_KWH] * WH_PER_KWH,
        )
