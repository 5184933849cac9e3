"""IEC 61851-1 control pilot maths: the one place where the pilot formulas live.

Pure functions, no I/O. Used by the agent (to drive the PWM), by the simulated board and
EV (to interpret it), and by the tests. Rules, from IEC 61851-1 Annex A:

1. Current -> duty cycle (Table A.7, what the EVSE sends): 6 A <= I <= 51 A: D = I / 0.6;
   51 A < I <= 80 A: D = I / 2.5 + 64. 0 A means "no PWM" (steady +12 V, 100 %). Any
   0 < I < 6 A or I > 80 A is refused: there is no duty cycle for it.
2. Duty cycle -> current (Table A.8, how the EV reads it): 8-10 %: 6 A; 10-85 %:
   I = D x 0.6; 85-96 %: I = (D - 64) x 2.5; 96-97 %: 80 A; anything else (< 8 %, > 97 %,
   100 % = no PWM) means "no charging allowed" and reads as 0 A.
3. The D = I / 0.6 and D = I / 2.5 + 64 pieces do not meet: 85 % is 51 A on the first and
   52.5 A on the second, and an EV reads exactly 85 % with the first; so
   51 A < I <= 52.5 A has no exact duty cycle. We offer 85 % (51 A): rounding down is the
   safe side.
4. Pilot states from the measured high level of the pilot (Table A.3): A +12 V no vehicle,
   B +9 V vehicle connected, C +6 V charging, D +3 V charging with ventilation (the io7
   does not support it: a fault), E 0 V error (pilot shorted to PE), F -12 V unavailable.
   Bands are +-1.5 V around the nominal level, so neighbouring bands meet half-way and
   every voltage maps to a state; a level above +13.5 V or between -10.5 V and -1.5 V
   cannot come from a healthy pilot and is classified E.
5. Diode check: the EV's diode blocks the negative half, so while the EVSE drives -12 V the
   low level must stay in the F band (-13.5 V .. -10.5 V). A low level pulled up towards
   the high level means the diode is missing or shorted ("diode fault", product.md ch. 7).
6. Pausing: stop the PWM (state B without PWM, steady +12 V), then open the contactor once
   the EV has stopped drawing (below `EV_STOPPED_BELOW_A`), or after
   `PAUSE_FORCE_OPEN_AFTER_S` if it never does. On a pilot fault (D, E, an unexpected F,
   a diode fault) open the contactor within `PILOT_FAULT_OPEN_WITHIN_S`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

MIN_CURRENT_A = 6.0  # IEC 61851-1 Table A.7: lowest current a PWM can offer
MAX_CURRENT_A = 80.0  # IEC 61851-1 Table A.7: highest current a PWM can offer (96 %)
NO_PWM_DUTY_PCT = 100.0  # steady +12 V: "charging not allowed"

_LOW_RANGE_MAX_A = 51.0  # 85 % x 0.6: top of the D = I / 0.6 piece
_HIGH_RANGE_MIN_A = 52.5  # (85 - 64) x 2.5: bottom of the D = I / 2.5 + 64 piece

PILOT_BAND_HALF_WIDTH_V = 1.5  # half the 3 V spacing of the nominal levels (Table A.3)
PILOT_MAX_V = 13.5  # 12 V + half a band: nothing healthy drives the pilot above this
EV_STOPPED_BELOW_A = 1.0  # team choice: under 1 A per phase the EV has stopped drawing
PAUSE_FORCE_OPEN_AFTER_S = 6.0  # EV may take up to 5 s to follow the pilot, +1 s margin
PILOT_FAULT_OPEN_WITHIN_S = 3.0  # IEC 61851-1: open the supply within 3 s of a pilot fault


class PilotState(enum.Enum):
    """IEC 61851-1 pilot states, from the high level of the pilot signal."""

    A = "A"  # +12 V: no vehicle
    B = "B"  # +9 V: vehicle connected, not ready
    C = "C"  # +6 V: vehicle ready, charging
    D = "D"  # +3 V: charging with ventilation (not supported by the io7: a fault)
    E = "E"  # 0 V: error, pilot shorted to PE, or no EVSE supply
    F = "F"  # -12 V: EVSE unavailable

    @property
    def nominal_v(self) -> float:
        """The nominal high level of this state, in volts."""
        return _NOMINAL_V[self]

    @property
    def vehicle_connected(self) -> bool:
        """True for B and C: a vehicle is plugged in and healthy."""
        return self in (PilotState.B, PilotState.C)

    @property
    def is_fault(self) -> bool:
        """True for D and E: the connector must stop and open its contactor."""
        return self in (PilotState.D, PilotState.E)


_NOMINAL_V = {
    PilotState.A: 12.0,
    PilotState.B: 9.0,
    PilotState.C: 6.0,
    PilotState.D: 3.0,
    PilotState.E: 0.0,
    PilotState.F: -12.0,
}


def duty_cycle_pct_for_current(current_a: float) -> float:
    """Return the PWM duty cycle (percent) that offers `current_a` (rules 1 and 3).

    0 A returns 100 % (no PWM). Raises ValueError for 0 < I < 6 A, I > 80 A, a negative or
    a non-finite current: no duty cycle means that, and guessing one would be unsafe.
    """
    if not math.isfinite(current_a) or current_a < 0.0:
        raise ValueError(f"offered current must be a finite number >= 0 A, got {current_a}")
    if current_a == 0.0:
        return NO_PWM_DUTY_PCT
    if current_a < MIN_CURRENT_A:
        raise ValueError(
            f"{current_a} A cannot be offered: IEC 61851-1 has no duty cycle between 0 and "
            f"{MIN_CURRENT_A} A; offer 0 A (stop the PWM) or at least {MIN_CURRENT_A} A"
        )
    if current_a > MAX_CURRENT_A:
        raise ValueError(f"{current_a} A is above the {MAX_CURRENT_A} A the pilot can offer")
    if current_a <= _LOW_RANGE_MAX_A:
        return current_a / 0.6
    if current_a <= _HIGH_RANGE_MIN_A:
        return _LOW_RANGE_MAX_A / 0.6  # rule 3: round down to 51 A (85 %)
    return current_a / 2.5 + 64.0


def current_for_duty_cycle_pct(duty_pct: float) -> float:
    """Return the current (A) an EV may draw at `duty_pct` percent (rule 2); 0 = none.

    Raises ValueError for a duty cycle outside 0..100 % or not finite.
    """
    if not math.isfinite(duty_pct) or not 0.0 <= duty_pct <= 100.0:
        raise ValueError(f"duty cycle must be within 0..100 %, got {duty_pct}")
    if duty_pct < 8.0:
        return 0.0  # < 3 %: no charging; 3-7 %: digital communication only; 7-8 %: none
    if duty_pct < 10.0:
        return MIN_CURRENT_A
    if duty_pct <= 85.0:
        return duty_pct * 0.6
    if duty_pct <= 96.0:
        return (duty_pct - 64.0) * 2.5
    if duty_pct <= 97.0:
        return MAX_CURRENT_A
    return 0.0  # > 97 %: no charging allowed (100 % = no PWM)


def classify_pilot_high_v(high_v: float) -> PilotState:
    """Return the pilot state for the measured high level `high_v` (rule 4).

    A band includes its upper edge: exactly 10.5 V is B, exactly 7.5 V is C.
    """
    if not math.isfinite(high_v) or high_v > PILOT_MAX_V:
        return PilotState.E
    for state in (PilotState.A, PilotState.B, PilotState.C, PilotState.D):
        if high_v > state.nominal_v - PILOT_BAND_HALF_WIDTH_V:
            return state
    if high_v > -PILOT_BAND_HALF_WIDTH_V:
        return PilotState.E
    if -PILOT_MAX_V <= high_v <= PilotState.F.nominal_v + PILOT_BAND_HALF_WIDTH_V:
        return PilotState.F
    return PilotState.E


def diode_ok(low_v: float) -> bool:
    """Return True if the low level `low_v` of the PWM shows a healthy EV diode (rule 5)."""
    return math.isfinite(low_v) and (
        -PILOT_MAX_V <= low_v <= PilotState.F.nominal_v + PILOT_BAND_HALF_WIDTH_V
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PilotReading:
    """One measurement of the pilot: its high level and, while a PWM runs, its low level."""

    high_v: float
    low_v: float | None = None  # None: no PWM running, so there is no negative half

    def __post_init__(self) -> None:
        if not math.isfinite(self.high_v):
            raise ValueError(f"pilot high level must be finite, got {self.high_v}")
        if self.low_v is not None and not math.isfinite(self.low_v):
            raise ValueError(f"pilot low level must be finite, got {self.low_v}")

    @property
    def state(self) -> PilotState:
        """The IEC 61851-1 state of this reading (rule 4)."""
        return classify_pilot_high_v(self.high_v)

    @property
    def diode_ok(self) -> bool | None:
        """The diode check (rule 5); None when no PWM runs and it cannot be checked."""
        if self.low_v is None:
            return None
        return diode_ok(self.low_v)


def contactor_may_open_after_pause(
    *, now_s: float, pwm_stopped_at_s: float, max_phase_current_a: float
) -> bool:
    """Return True once the contactor may open after the PWM was stopped (rule 6).

    `now_s` and `pwm_stopped_at_s` are monotonic seconds; `max_phase_current_a` is the
    highest per-phase draw measured now.
    """
    return (
        max_phase_current_a < EV_STOPPED_BELOW_A
        or now_s - pwm_stopped_at_s >= PAUSE_FORCE_OPEN_AFTER_S
    )


def pilot_fault_open_deadline_s(fault_since_s: float) -> float:
    """Return the monotonic time by which the contactor must be open after a pilot fault."""
    return fault_since_s + PILOT_FAULT_OPEN_WITHIN_S
