"""Hardware capabilities: one small `typing.Protocol` per thing the software can do to or
read from a charger, in the style of evcc's `api/api.go` (style.md section 3).

Every method is async: a real board may sit behind a UART or an I2C expander, and a meter
behind RS485. A capability reading returns one frozen snapshot, so a control cycle works on
values from one poll. Units are in the names. The simulators in `hw/sim/` and the Modbus
drivers in `hw/modbus/` implement these; `tests/hw/test_protocol_fit.py` assigns each to
its Protocol so the type checker proves it fits.

`ConnectorHardware` and `ChargerHardware` compose them the way an io7 Double is built: per
socket a pilot, a contactor, a meter, a residual-current monitor and a LED; per charger an
open-PEN detector, a temperature sensor, a tilt sensor and an RFID reader (product.md ch. 2).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from hw.pilot import PilotReading

RCD_AC_TRIP_MA = 30.0  # product.md ch. 2: 30 mA AC residual current detection
RCD_DC_TRIP_MA = 6.0  # product.md ch. 2: 6 mA DC residual current detection


def _check_finite(name: str, values: Sequence[float]) -> None:
    for value in values:
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterReading:
    """One poll of an energy meter. Per-phase tuples have one entry per phase (1 or 3).

    Currents and powers are signed: positive is import (towards the load).
    """

    phase_voltages_v: tuple[float, ...]
    phase_currents_a: tuple[float, ...]
    phase_powers_w: tuple[float, ...]
    total_power_w: float
    frequency_hz: float
    import_energy_wh: float

    def __post_init__(self) -> None:
        phases = len(self.phase_currents_a)
        if phases not in (1, 3):
            raise ValueError(f"a meter measures 1 or 3 phases, got {phases}")
        if len(self.phase_voltages_v) != phases or len(self.phase_powers_w) != phases:
            raise ValueError("voltages, currents and powers must have one value per phase")
        _check_finite("phase values", self.phase_voltages_v)
        _check_finite("phase values", self.phase_currents_a)
        _check_finite("phase values", self.phase_powers_w)
        _check_finite("totals", (self.total_power_w, self.frequency_hz, self.import_energy_wh))
        if self.import_energy_wh < 0.0:
            raise ValueError(f"import energy cannot be negative, got {self.import_energy_wh}")

    @property
    def phases(self) -> int:
        """How many phases this meter measures."""
        return len(self.phase_currents_a)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClampReading:
    """One clamp of the Sense CT kit: its number (1-3) and its signed current.

    Positive: current towards the load (the arrow on the clamp); negative: export.
    """

    clamp: int
    current_a: float

    def __post_init__(self) -> None:
        if self.clamp not in (1, 2, 3):
            raise ValueError(f"the Sense CT kit has clamps 1-3, got {self.clamp}")
        _check_finite("clamp current", (self.current_a,))


@dataclass(frozen=True, slots=True, kw_only=True)
class ResidualCurrentReading:
    """Residual (leakage) current measured by a socket's residual-current monitor."""

    ac_ma: float
    dc_ma: float

    def __post_init__(self) -> None:
        _check_finite("residual current", (self.ac_ma, self.dc_ma))
        if self.ac_ma < 0.0 or self.dc_ma < 0.0:
            raise ValueError("residual currents are magnitudes and cannot be negative")

    @property
    def tripped(self) -> bool:
        """True at or above 30 mA AC or 6 mA DC (product.md ch. 2)."""
        return self.ac_ma >= RCD_AC_TRIP_MA or self.dc_ma >= RCD_DC_TRIP_MA


class LedColour(enum.Enum):
    """The colours of the io7's LED (product.md section 2.2)."""

    WHITE = "white"
    GREEN = "green"
    MAGENTA = "magenta"
    YELLOW = "yellow"
    BLUE = "blue"
    RED = "red"


@dataclass(frozen=True, slots=True, kw_only=True)
class LedPattern:
    """What the LED shows: one colour (solid or blinking) or a repeating fault sequence."""

    colours: tuple[LedColour, ...]
    blinking: bool = False

    def __post_init__(self) -> None:
        if not self.colours:
            raise ValueError("an LED pattern needs at least one colour")
        if self.blinking and len(self.colours) != 1:
            raise ValueError("only a single colour blinks; sequences cycle on their own")


class LedPatterns:
    """The patterns of product.md section 2.2 and chapter 7, by name."""

    STARTING = LedPattern(colours=(LedColour.WHITE,))
    READY = LedPattern(colours=(LedColour.GREEN,))
    CABLE_INSERTED = LedPattern(colours=(LedColour.MAGENTA,))
    WAITING = LedPattern(colours=(LedColour.YELLOW,))
    CHARGING = LedPattern(colours=(LedColour.BLUE,), blinking=True)
    POSTPONED = LedPattern(colours=(LedColour.BLUE,))
    FAULT = LedPattern(colours=(LedColour.RED,))
    OVER_TEMPERATURE = LedPattern(colours=(LedColour.RED, LedColour.WHITE, LedColour.YELLOW))
    BUMP = LedPattern(colours=(LedColour.RED, LedColour.WHITE, LedColour.BLUE))
    DIODE_FAULT = LedPattern(colours=(LedColour.RED, LedColour.BLUE))
    RESIDUAL_CURRENT = LedPattern(colours=(LedColour.RED, LedColour.BLUE, LedColour.MAGENTA))
    AC_SAFETY = LedPattern(colours=(LedColour.RED, LedColour.YELLOW))
    PILOT_VOLTAGE = LedPattern(colours=(LedColour.RED, LedColour.GREEN))
    READER_FAILURE = LedPattern(colours=(LedColour.RED, LedColour.GREEN, LedColour.BLUE))
    METER_TIMEOUT = LedPattern(colours=(LedColour.RED, LedColour.MAGENTA))
    SUSPENDED_EV = LedPattern(colours=(LedColour.MAGENTA, LedColour.BLUE))
    UNAVAILABLE = LedPattern(colours=(LedColour.MAGENTA, LedColour.YELLOW))


@runtime_checkable
class ControlPilot(Protocol):
    """The IEC 61851-1 control pilot of one socket (formulas in `hw.pilot`)."""

    async def offer_current_a(self, current_a: float) -> None:
        """Run the PWM that offers `current_a` (6-80 A); ValueError for anything else."""
        ...

    async def stop_offering(self) -> None:
        """Stop the PWM: steady +12 V, the EV must stop drawing (state B without PWM)."""
        ...

    async def signal_unavailable(self) -> None:
        """Drive a steady -12 V (state F): the socket is out of order."""
        ...

    async def read_pilot(self) -> PilotReading:
        """Measure the pilot's high level and, while a PWM runs, its low level."""
        ...


@runtime_checkable
class Contactor(Protocol):
    """The contactor of one socket, with its auxiliary (feedback) contact."""

    async def close_contactor(self) -> None:
        """Energise the coil: the socket is live."""
        ...

    async def open_contactor(self) -> None:
        """De-energise the coil."""
        ...

    async def feedback_closed(self) -> bool:
        """Read the auxiliary contact: True if the main contacts are closed. Closed while
        the coil is off means the contacts are welded."""
        ...


@runtime_checkable
class Meter(Protocol):
    """An energy meter (per socket, or on the grid connection)."""

    async def read_meter(self) -> MeterReading:
        """Poll the meter once; raises `hw.errors.DeviceError` if it cannot be trusted."""
        ...


@runtime_checkable
class GridCurrentSensor(Protocol):
    """The Sense CT kit on the grid connection: only the enabled clamps are read."""

    async def read_clamps(self) -> tuple[ClampReading, ...]:
        """Poll the enabled clamps once, in clamp order; raises `hw.errors.DeviceError`."""
        ...


@runtime_checkable
class ResidualCurrentMonitor(Protocol):
    """30 mA AC / 6 mA DC residual current detection of one socket."""

    async def read_residual_current(self) -> ResidualCurrentReading:
        """Measure the residual current now."""
        ...


@runtime_checkable
class OpenPenDetector(Protocol):
    """Open-PEN (PME) fault detection of the supply."""

    async def open_pen_detected(self) -> bool:
        """True while the supply shows an open PEN conductor."""
        ...


@runtime_checkable
class TemperatureSensor(Protocol):
    """The charger's internal temperature."""

    async def temperature_c(self) -> float:
        """The temperature in degrees Celsius."""
        ...


@runtime_checkable
class TiltSensor(Protocol):
    """The tilt/bump sensor: latches when the charger is hit or tilted."""

    async def tilt_detected(self) -> bool:
        """True if a tilt or bump was detected since the last `clear_tilt`."""
        ...

    async def clear_tilt(self) -> None:
        """Re-arm the sensor after an inspection."""
        ...


@runtime_checkable
class RfidReader(Protocol):
    """The 13.56 MHz RFID reader."""

    async def read_tag(self) -> str | None:
        """The UID (upper-case hex) of the card held to the reader, or None."""
        ...


@runtime_checkable
class Led(Protocol):
    """A socket's status LED."""

    async def show(self, pattern: LedPattern) -> None:
        """Show `pattern` until told otherwise."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorHardware:
    """What one Type 2 socket of an io7 is made of."""

    pilot: ControlPilot
    contactor: Contactor
    meter: Meter
    residual_current: ResidualCurrentMonitor
    led: Led


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerHardware:
    """One io7: its sockets (two on the io7 Double) and the parts they share."""

    connectors: tuple[ConnectorHardware, ...]
    open_pen: OpenPenDetector
    temperature: TemperatureSensor
    tilt: TiltSensor
    rfid: RfidReader

    def __post_init__(self) -> None:
        if len(self.connectors) not in (1, 2):
            raise ValueError(f"an io7 has 1 or 2 sockets, got {len(self.connectors)}")
