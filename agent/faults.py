"""What a connector reports: the OCPP 1.6 status and error-code vocabularies, and the
catalogue of faults with how each is reported, shown and cleared. Pure data.

Each fault has its OCPP error code, a vendor code that tells apart faults sharing an
error code, its LED sequence (manual ch. 7) and its latch: some clear when gone, some
only once the EV is unplugged (pilot faults, stuck-open contactor), some only on a reset
(welded contactor, residual current, tilt, EEPROM): the installer must look first. The
declaration order of `Fault` is the order in which faults are shown. The connector
machine (agent.connector rule 1) applies the latches; agent.ocpp reports the codes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from hw.capabilities import LedColour, LedPattern, LedPatterns

# LED sequences of manual ch. 7 that hw.capabilities.LedPatterns does not name yet.
OVER_UNDER_VOLTAGE_LED = LedPattern(colours=(LedColour.RED, LedColour.WHITE, LedColour.GREEN))
EEPROM_CORRUPT_LED = LedPattern(colours=(LedColour.RED, LedColour.MAGENTA, LedColour.GREEN))


class OcppStatus(enum.Enum):
    """OCPP 1.6 ChargePointStatus (Reserved is not used: no reservations yet)."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EVSE = "SuspendedEVSE"
    SUSPENDED_EV = "SuspendedEV"
    FINISHING = "Finishing"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


class OcppErrorCode(enum.Enum):
    """OCPP 1.6 ChargePointErrorCode values the agent reports."""

    NO_ERROR = "NoError"
    EV_COMMUNICATION_ERROR = "EVCommunicationError"
    GROUND_FAILURE = "GroundFailure"
    HIGH_TEMPERATURE = "HighTemperature"
    INTERNAL_ERROR = "InternalError"
    OTHER_ERROR = "OtherError"
    OVER_VOLTAGE = "OverVoltage"
    POWER_METER_FAILURE = "PowerMeterFailure"
    POWER_SWITCH_FAILURE = "PowerSwitchFailure"
    READER_FAILURE = "ReaderFailure"
    UNDER_VOLTAGE = "UnderVoltage"


class Latch(enum.Enum):
    """How a fault clears (rule 1)."""

    NONE = "none"  # as soon as the input no longer reports it
    UNTIL_UNPLUG = "until_unplug"  # once it is gone and the pilot has shown A
    UNTIL_RESET = "until_reset"  # only by `Connector.reset`


class Fault(enum.Enum):
    """Faults of a connector or of its charger. Declaration order = display priority."""

    WELDED_CONTACTOR = "welded_contactor"
    RESIDUAL_CURRENT = "residual_current"  # 30 mA AC / 6 mA DC (product.md ch. 2)
    OPEN_PEN = "open_pen"
    OVER_VOLTAGE = "over_voltage"
    UNDER_VOLTAGE = "under_voltage"
    OVER_TEMPERATURE = "over_temperature"
    TILT = "tilt"
    PILOT_VOLTAGE = "pilot_voltage"  # pilot D, E or an F we did not drive
    DIODE = "diode"  # EV diode missing or shorted (hw.pilot rule 5)
    CONTACTOR_STUCK_OPEN = "contactor_stuck_open"
    METER_TIMEOUT = "meter_timeout"
    EEPROM_CORRUPT = "eeprom_corrupt"
    READER_FAILURE = "reader_failure"


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultInfo:
    """How a fault is reported and cleared."""

    error_code: OcppErrorCode
    vendor_code: str  # OCPP vendorErrorCode: tells apart faults sharing an error code
    led: LedPattern  # manual ch. 7
    latch: Latch
    stops_charging: bool = True


def _f(code: OcppErrorCode, vendor: str, led: LedPattern, latch: Latch = Latch.NONE,
       stops: bool = True) -> FaultInfo:
    return FaultInfo(error_code=code, vendor_code=vendor, led=led, latch=latch,
                     stops_charging=stops)


_C = OcppErrorCode
FAULTS: Mapping[Fault, FaultInfo] = MappingProxyType({
    Fault.WELDED_CONTACTOR: _f(_C.POWER_SWITCH_FAILURE, "WeldedContactor", LedPatterns.AC_SAFETY,
                               Latch.UNTIL_RESET),
    Fault.RESIDUAL_CURRENT: _f(_C.GROUND_FAILURE, "ResidualCurrent", LedPatterns.RESIDUAL_CURRENT,
                               Latch.UNTIL_RESET),
    Fault.OPEN_PEN: _f(_C.GROUND_FAILURE, "OpenPEN", LedPatterns.AC_SAFETY),
    Fault.OVER_VOLTAGE: _f(_C.OVER_VOLTAGE, "OverVoltage", OVER_UNDER_VOLTAGE_LED),
    Fault.UNDER_VOLTAGE: _f(_C.UNDER_VOLTAGE, "UnderVoltage", OVER_UNDER_VOLTAGE_LED),
    Fault.OVER_TEMPERATURE: _f(_C.HIGH_TEMPERATURE, "OverTemperature",
                               LedPatterns.OVER_TEMPERATURE),
    Fault.TILT: _f(_C.OTHER_ERROR, "Tilt", LedPatterns.BUMP, Latch.UNTIL_RESET),
    Fault.PILOT_VOLTAGE: _f(_C.EV_COMMUNICATION_ERROR, "PilotVoltage", LedPatterns.PILOT_VOLTAGE,
                            Latch.UNTIL_UNPLUG),
    Fault.DIODE: _f(_C.EV_COMMUNICATION_ERROR, "DiodeFault", LedPatterns.DIODE_FAULT,
                    Latch.UNTIL_UNPLUG),
    Fault.CONTACTOR_STUCK_OPEN: _f(_C.POWER_SWITCH_FAILURE, "ContactorStuckOpen",
                                   LedPatterns.AC_SAFETY, Latch.UNTIL_UNPLUG),
    Fault.METER_TIMEOUT: _f(_C.POWER_METER_FAILURE, "MeterTimeout", LedPatterns.METER_TIMEOUT),
    Fault.EEPROM_CORRUPT: _f(_C.INTERNAL_ERROR, "EepromCorrupt", EEPROM_CORRUPT_LED,
                             Latch.UNTIL_RESET),
    # RFID broken: remote start still works, so charging goes on; shown when idle.
    Fault.READER_FAILURE: _f(_C.READER_FAILURE, "ReaderFailure", LedPatterns.READER_FAILURE,
                             stops=False),
})
