"""IEC 61851-1 pilot maths against reference points, both directions, and every boundary."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hw.pilot import (
    MAX_CURRENT_A,
    MIN_CURRENT_A,
    PAUSE_FORCE_OPEN_AFTER_S,
    PilotReading,
    PilotState,
    classify_pilot_high_v,
    contactor_may_open_after_pause,
    current_for_duty_cycle_pct,
    diode_ok,
    duty_cycle_pct_for_current,
    pilot_fault_open_deadline_s,
)

# (name, current A, duty %): what the EVSE sends (IEC 61851-1 Table A.7).
CURRENT_TO_DUTY = [
    ("zero means no PWM", 0.0, 100.0),
    ("minimum 6 A", 6.0, 10.0),
    ("10 A", 10.0, 16.6667),
    ("13 A", 13.0, 21.6667),
    ("16 A", 16.0, 26.6667),
    ("20 A", 20.0, 33.3333),
    ("32 A", 32.0, 53.3333),
    ("top of the low range 51 A", 51.0, 85.0),
    ("gap 51.5 A rounds down to 51 A", 51.5, 85.0),
    ("gap 52.4 A rounds down to 51 A", 52.4, 85.0),
    ("gap edge 52.5 A rounds down to 51 A", 52.5, 85.0),
    ("just above the gap 52.6 A", 52.6, 85.04),
    ("63 A", 63.0, 89.2),
    ("70 A", 70.0, 92.0),
    ("maximum 80 A", 80.0, 96.0),
]

# (name, duty %, current A): how the EV reads it (IEC 61851-1 Table A.8).
DUTY_TO_CURRENT = [
    ("0 % no charging", 0.0, 0.0),
    ("5 % digital communication only", 5.0, 0.0),
    ("7.99 % still nothing", 7.99, 0.0),
    ("8 % is 6 A", 8.0, 6.0),
    ("9.99 % is 6 A", 9.99, 6.0),
    ("10 % is 6 A", 10.0, 6.0),
    ("25 % is 15 A", 25.0, 15.0),
    ("50 % is 30 A", 50.0, 30.0),
    ("85 % is 51 A (low formula)", 85.0, 51.0),
    ("85.01 % switches to the high formula", 85.01, 52.525),
    ("90 % is 65 A", 90.0, 65.0),
    ("96 % is 80 A", 96.0, 80.0),
    ("96.5 % is 80 A", 96.5, 80.0),
    ("97 % is 80 A", 97.0, 80.0),
    ("97.01 % no charging", 97.01, 0.0),
    ("100 % no PWM", 100.0, 0.0),
]

REFUSED_CURRENTS = [
    ("just above zero", 0.1),
    ("just below minimum", 5.99),
    ("just above maximum", 80.01),
    ("negative", -1.0),
    ("nan", math.nan),
    ("infinite", math.inf),
]

# (name, high level V, state): IEC 61851-1 Table A.3, +-1.5 V bands, upper edge inclusive.
HIGH_LEVELS = [
    ("A nominal", 12.0, PilotState.A),
    ("A top edge", 13.5, PilotState.A),
    ("above A is no healthy pilot", 13.6, PilotState.E),
    ("A just above B's edge", 10.51, PilotState.A),
    ("B top edge", 10.5, PilotState.B),
    ("B nominal", 9.0, PilotState.B),
    ("B just above C's edge", 7.51, PilotState.B),
    ("C top edge", 7.5, PilotState.C),
    ("C nominal", 6.0, PilotState.C),
    ("C just above D's edge", 4.51, PilotState.C),
    ("D top edge", 4.5, PilotState.D),
    ("D nominal", 3.0, PilotState.D),
    ("D just above E's edge", 1.51, PilotState.D),
    ("E top edge", 1.5, PilotState.E),
    ("E nominal", 0.0, PilotState.E),
    ("E bottom", -1.49, PilotState.E),
    ("between E and F is an error", -5.0, PilotState.E),
    ("just above F's edge", -10.49, PilotState.E),
    ("F top edge", -10.5, PilotState.F),
    ("F nominal", -12.0, PilotState.F),
    ("F bottom edge", -13.5, PilotState.F),
    ("below F", -13.6, PilotState.E),
    ("nan", math.nan, PilotState.E),
]


@pytest.mark.parametrize(
    ("current_a", "duty_pct"), [r[1:] for r in CURRENT_TO_DUTY], ids=[r[0] for r in CURRENT_TO_DUTY]
)
def test_current_to_duty(current_a: float, duty_pct: float) -> None:
    assert duty_cycle_pct_for_current(current_a) == pytest.approx(duty_pct, abs=1e-4)


@pytest.mark.parametrize(
    ("duty_pct", "current_a"), [r[1:] for r in DUTY_TO_CURRENT], ids=[r[0] for r in DUTY_TO_CURRENT]
)
def test_duty_to_current(duty_pct: float, current_a: float) -> None:
    assert current_for_duty_cycle_pct(duty_pct) == pytest.approx(current_a, abs=1e-9)


@pytest.mark.parametrize(
    "current_a", [r[1] for r in REFUSED_CURRENTS], ids=[r[0] for r in REFUSED_CURRENTS]
)
def test_no_duty_cycle_for_impossible_currents(current_a: float) -> None:
    with pytest.raises(ValueError, match="A"):
        duty_cycle_pct_for_current(current_a)


@pytest.mark.parametrize("duty_pct", [-0.1, 100.1, math.nan], ids=["negative", "over", "nan"])
def test_duty_cycle_outside_0_100_is_refused(duty_pct: float) -> None:
    with pytest.raises(ValueError, match="duty cycle"):
        current_for_duty_cycle_pct(duty_pct)


@pytest.mark.parametrize(
    ("high_v", "state"), [r[1:] for r in HIGH_LEVELS], ids=[r[0] for r in HIGH_LEVELS]
)
def test_pilot_state_from_high_level(high_v: float, state: PilotState) -> None:
    assert classify_pilot_high_v(high_v) is state


@pytest.mark.parametrize(
    ("low_v", "ok"),
    [(-12.0, True), (-10.5, True), (-13.5, True), (-10.49, False), (-9.0, False),
     (-6.0, False), (-13.6, False), (math.nan, False)],
    ids=["nominal", "top edge", "bottom edge", "just above", "B load", "C load", "below", "nan"],
)  # fmt: skip
def test_diode_check_on_the_negative_half(low_v: float, ok: bool) -> None:
    assert diode_ok(low_v) is ok


def test_reading_combines_state_and_diode() -> None:
    charging = PilotReading(high_v=6.1, low_v=-11.9)
    assert charging.state is PilotState.C
    assert charging.diode_ok is True
    assert PilotReading(high_v=9.0, low_v=-9.0).diode_ok is False
    assert PilotReading(high_v=9.0).diode_ok is None  # no PWM, nothing to check
    with pytest.raises(ValueError, match="finite"):
        PilotReading(high_v=math.nan)


def test_state_properties() -> None:
    assert [s for s in PilotState if s.is_fault] == [PilotState.D, PilotState.E]
    assert [s for s in PilotState if s.vehicle_connected] == [PilotState.B, PilotState.C]


@pytest.mark.parametrize(
    ("elapsed_s", "draw_a", "may_open"),
    [(0.0, 10.0, False), (0.0, 0.5, True), (PAUSE_FORCE_OPEN_AFTER_S - 0.1, 10.0, False),
     (PAUSE_FORCE_OPEN_AFTER_S, 10.0, True)],
    ids=["still drawing", "stopped at once", "still drawing before deadline", "deadline"],
)  # fmt: skip
def test_pause_opens_contactor_once_ev_stopped(
    elapsed_s: float, draw_a: float, may_open: bool
) -> None:
    assert (
        contactor_may_open_after_pause(
            now_s=100.0 + elapsed_s, pwm_stopped_at_s=100.0, max_phase_current_a=draw_a
        )
        is may_open
    )


def test_pilot_fault_deadline_is_three_seconds() -> None:
    assert pilot_fault_open_deadline_s(10.0) == 13.0


@given(st.floats(min_value=MIN_CURRENT_A, max_value=MAX_CURRENT_A))
def test_round_trip_within_a_tenth_of_an_amp_and_never_more(current_a: float) -> None:
    back_a = current_for_duty_cycle_pct(duty_cycle_pct_for_current(current_a))
    assert back_a <= current_a + 1e-9  # never offer more than asked
    if not 51.0 < current_a <= 52.5:  # rule 3: the gap between the two formulas
        assert back_a == pytest.approx(current_a, abs=0.1)
    else:
        assert back_a == pytest.approx(51.0)


@given(st.floats(min_value=0.0, max_value=100.0))
def test_duty_read_back_is_zero_or_a_legal_current(duty_pct: float) -> None:
    current_a = current_for_duty_cycle_pct(duty_pct)
    assert current_a == 0.0 or MIN_CURRENT_A <= current_a <= MAX_CURRENT_A


@given(st.floats(min_value=-20.0, max_value=20.0))
def test_every_voltage_has_a_state(high_v: float) -> None:
    assert isinstance(classify_pilot_high_v(high_v), PilotState)
