"""The io7 Sense CT kit: 1-3 current clamps on the grid connection, read over Modbus.

Installer settings (product.md 6.3): which clamps are used (scenario B: #1, #2, #3;
scenario C: #1 only), each clamp's rated value, type "Site". Direction convention: the
arrow on the clamp points towards the load, so a positive current is import and a negative
one is export (solar); a clamp mounted the wrong way round is configured `reversed=True`
and its sign is flipped here, so callers always see the convention.

Only the enabled clamps are read (in one block when they are contiguous, as with the
default SDM630-style map: clamp #n at I Ln, 0x0006/0x0008/0x000A). A reading beyond
`OVERRANGE_FACTOR` times a clamp's rating cannot come from that clamp: it is garbage
(usually a wrong rated value or register profile).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hw.capabilities import ClampReading
from hw.errors import DeviceConfigError, DeviceGarbageError
from hw.modbus.meter import check_device_id
from hw.modbus.profiles import CT_KIT_SDM630_STYLE, CURRENTS, RegisterProfile
from hw.modbus.transport import ModbusBus

OVERRANGE_FACTOR = 1.5  # split-core CTs saturate well before 150 % of their rating
MAX_RATED_A = 2000.0  # the largest split-core clamp sold for building incomers


@dataclass(frozen=True, slots=True, kw_only=True)
class ClampConfig:
    """One clamp: its number on the kit (1-3), its rating and its orientation."""

    clamp: int
    rated_a: float
    reversed: bool = False  # True if mounted with the arrow towards the grid

    def __post_init__(self) -> None:
        if self.clamp not in (1, 2, 3):
            raise DeviceConfigError(
                device="Sense CT kit", reason=f"clamp #{self.clamp}: the kit has #1-#3"
            )
        if not math.isfinite(self.rated_a) or not 0.0 < self.rated_a <= MAX_RATED_A:
            raise DeviceConfigError(
                device=f"Sense CT kit clamp #{self.clamp}",
                reason=f"rated value {self.rated_a} A is not within 0..{MAX_RATED_A:g} A",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class CtKitConfig:
    """The enabled clamps, the register map and the Modbus address of the kit."""

    clamps: tuple[ClampConfig, ...]
    profile: RegisterProfile = CT_KIT_SDM630_STYLE
    device_id: int = 1
    name: str = "Sense CT kit"

    def __post_init__(self) -> None:
        check_device_id(self.device_id, self.name)
        numbers = [c.clamp for c in self.clamps]
        if not 1 <= len(numbers) <= 3:
            raise DeviceConfigError(device=self.name, reason="enable 1 to 3 clamps")
        if len(set(numbers)) != len(numbers) or numbers != sorted(numbers):
            raise DeviceConfigError(
                device=self.name, reason=f"clamps {numbers} must be distinct and in order"
            )
        for number in numbers:
            self.profile.address_of(CURRENTS[number - 1])

    @classmethod
    def scenario_b(cls, *, rated_a: float, device_id: int = 1) -> CtKitConfig:
        """Scenario B (product.md 5.1.1): three clamps, one per phase."""
        return cls(
            clamps=tuple(ClampConfig(clamp=n, rated_a=rated_a) for n in (1, 2, 3)),
            device_id=device_id,
        )

    @classmethod
    def scenario_c(cls, *, rated_a: float, device_id: int = 1) -> CtKitConfig:
        """Scenario C (product.md 5.1.1): one kit per phase, clamp #1 only."""
        return cls(clamps=(ClampConfig(clamp=1, rated_a=rated_a),), device_id=device_id)


class ModbusCtKit:
    """The Sense CT kit on a Modbus bus; implements `hw.capabilities.GridCurrentSensor`."""

    def __init__(self, bus: ModbusBus, config: CtKitConfig) -> None:
        self.bus = bus
        self.config = config
        self._plan = config.profile.read_plan(CURRENTS[c.clamp - 1] for c in config.clamps)
        self.device = f"{config.name} [{config.profile.name}]"

    async def read_clamps(self) -> tuple[ClampReading, ...]:
        """Poll the enabled clamps once, in clamp order, signed by the arrow convention.

        Raises `hw.errors.DeviceError`: timeout, connection, or garbage (including a
        reading beyond 150 % of the clamp's rating).
        """
        values = await self.bus.read_plan(device=self.device, device_id=self.config.device_id,
                                          table=self.config.profile.table, plan=self._plan)
        readings = []
        for clamp in self.config.clamps:
            quantity = CURRENTS[clamp.clamp - 1]
            current_a = -values[quantity] if clamp.reversed else values[quantity]
            if abs(current_a) > clamp.rated_a * OVERRANGE_FACTOR:
                raise DeviceGarbageError(
                    device=self.device,
                    register=self.config.profile.address_of(quantity),
                    reason=f"clamp #{clamp.clamp} reads {current_a:.1f} A, beyond "
                    f"{OVERRANGE_FACTOR:.0%} of its rated {clamp.rated_a:g} A: check the "
                    "rated value and the register profile",
                )
            readings.append(ClampReading(clamp=clamp.clamp, current_a=current_a))
        return tuple(readings)
