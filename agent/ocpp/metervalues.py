"""Meter values in OCPP 1.6: which measurands this agent reports, what one reading becomes
(the sampledValue objects), and when a reading is due. Pure: no I/O, no clock.

 1. Measurands are those of the socket meter's registers, plus Current.Offered (the
    offer, not measured). Energy is floored to whole Wh: never ahead of the register.
 2. No fake values (agent.ocpp.transactions rule 6): a dead meter (reading None) gives
    no meter measurands; Current.Offered stays.
 3. Sampled readings fall every MeterValueSampleInterval s counted from the transaction's
    start; clock-aligned ones on the ClockAlignedDataInterval grid from 00:00:00 UTC,
    which restarts at every midnight (OCPP 1.6 9.1.7). A late step makes one reading for
    the missed slots (the values of the past are unknown). 0 switches either off.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from hw.capabilities import MeterReading

DAY_S = 86_400  # ClockAlignedDataInterval divides the day from 00:00:00 (OCPP 1.6 9.1.7)


class Measurand(enum.Enum):
    """The OCPP 1.6 measurands this agent can report (its socket meter's registers)."""

    ENERGY_ACTIVE_IMPORT_REGISTER = "Energy.Active.Import.Register"
    CURRENT_IMPORT = "Current.Import"
    CURRENT_OFFERED = "Current.Offered"
    POWER_ACTIVE_IMPORT = "Power.Active.Import"
    VOLTAGE = "Voltage"
    FREQUENCY = "Frequency"


DEFAULT_MEASURANDS = (Measurand.ENERGY_ACTIVE_IMPORT_REGISTER, Measurand.CURRENT_IMPORT,
                      Measurand.CURRENT_OFFERED, Measurand.POWER_ACTIVE_IMPORT, Measurand.VOLTAGE)


def parse_measurands(text: str) -> tuple[Measurand, ...]:
    """Parse a MeterValuesSampledData / MeterValuesAlignedData value (comma-separated);
    ValueError naming the first measurand this agent cannot report."""
    out: list[Measurand] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            m = Measurand(part)
        except ValueError:
            supported = ", ".join(x.value for x in Measurand)
            raise ValueError(f"measurand {part!r} is not supported ({supported})") from None
        if m not in out:
            out.append(m)
    return tuple(out)


class ReadingContext(enum.Enum):
    SAMPLE_PERIODIC = "Sample.Periodic"
    SAMPLE_CLOCK = "Sample.Clock"
    TRANSACTION_BEGIN = "Transaction.Begin"
    TRANSACTION_END = "Transaction.End"
    TRIGGER = "Trigger"  # TriggerMessage MeterValues


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterSettings:
    """The OCPP 1.6 keys about meter values; the shell builds it from the configuration
    keys (agent.ocpp.configkeys). Defaults: the intervals of configkeys, the issue's
    measurand list."""

    sample_interval_s: int = 60  # MeterValueSampleInterval, 0 = off
    clock_aligned_interval_s: int = 0  # ClockAlignedDataInterval, 0 = off
    sampled_measurands: tuple[Measurand, ...] = DEFAULT_MEASURANDS  # MeterValuesSampledData
    aligned_measurands: tuple[Measurand, ...] = DEFAULT_MEASURANDS  # MeterValuesAlignedData
    stop_on_ev_side_disconnect: bool = True  # StopTransactionOnEVSideDisconnect

    def __post_init__(self) -> None:
        for name, value in (("sample_interval_s", self.sample_interval_s),
                            ("clock_aligned_interval_s", self.clock_aligned_interval_s)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= DAY_S:
                raise ValueError(f"{name} must be a whole number of seconds 0-{DAY_S}, "
                                 f"got {value!r}")
        for name, ms in (("sampled_measurands", self.sampled_measurands),
                         ("aligned_measurands", self.aligned_measurands)):
            if any(not isinstance(m, Measurand) for m in ms) or len(set(ms)) != len(ms):
                raise ValueError(f"{name} must be distinct Measurand values, got {ms!r}")


def energy_wh(reading: MeterReading) -> int:
    return math.floor(reading.import_energy_wh)  # whole Wh, never ahead of the register


def _num(value: float, decimals: int) -> str:
    return f"{value + 0.0:.{decimals}f}"  # + 0.0: no "-0.0"


def sampled_values(reading: MeterReading | None, offered_a: float,
                   measurands: Iterable[Measurand], context: ReadingContext
                   ) -> list[dict[str, str]]:
    """The sampledValue objects for `measurands` (rule 2: none from a dead meter).
    Per-phase currents use phase L1..L3, voltages L1-N..L3-N (connector-side lines)."""
    out: list[dict[str, str]] = []

    def add(m: Measurand, value: str, unit: str | None, phase: str | None = None) -> None:
        sv = {"value": value, "context": context.value, "measurand": m.value,
              "location": "Outlet"}
        if unit is not None:
            sv["unit"] = unit
        if phase is not None:
            sv["phase"] = phase
        out.append(sv)

    for m in measurands:
        if m is Measurand.CURRENT_OFFERED:
            add(m, _num(offered_a, 1), "A")
        elif reading is None:
            continue
        elif m is Measurand.ENERGY_ACTIVE_IMPORT_REGISTER:
            add(m, str(energy_wh(reading)), "Wh")
        elif m is Measurand.CURRENT_IMPORT:
            for i, a in enumerate(reading.phase_currents_a, start=1):
                add(m, _num(a, 1), "A", f"L{i}")
        elif m is Measurand.POWER_ACTIVE_IMPORT:
            add(m, _num(reading.total_power_w, 0), "W")
        elif m is Measurand.VOLTAGE:
            for i, v in enumerate(reading.phase_voltages_v, start=1):
                add(m, _num(v, 1), "V", f"L{i}-N")
        else:  # FREQUENCY: OCPP 1.6 has no unit for Hz; the value is in Hz
            add(m, _num(reading.frequency_hz, 2), None)
    return out


def _slot(at: datetime, origin: datetime, interval_s: int) -> int:
    return math.floor((at - origin).total_seconds() / interval_s)


def _aligned_slot(at: datetime, interval_s: int) -> tuple[int, int]:
    """(UTC day, slot of the day): the grid restarts at every midnight (9.1.7)."""
    utc = at.astimezone(UTC)
    midnight = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    return utc.toordinal(), _slot(utc, midnight, interval_s)


def periodic_due(now: datetime, started_at: datetime, last_sample_at: datetime | None,
                 interval_s: int) -> bool:
    """A sampled reading is due: `now` lies in a later interval, counted from the
    transaction's start, than the last sample (or the start). False while 0 = off."""
    return bool(interval_s) and _slot(now, started_at, interval_s) > _slot(
        last_sample_at or started_at, started_at, interval_s)


def clock_aligned_due(now: datetime, last_step_at: datetime | None, interval_s: int) -> bool:
    """A clock-aligned reading is due: `now` lies in another slot of the grid than the
    previous step (None: the first step, nothing due). False while 0 = off."""
    return bool(interval_s) and last_step_at is not None and (
        _aligned_slot(now, interval_s) != _aligned_slot(last_step_at, interval_s))
