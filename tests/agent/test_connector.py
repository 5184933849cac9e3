"""The connector state machine: every table row, the illegal transition, faults, pausing."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import agent.connector as connector_module
from agent.connector import (
    CONTACTOR_SETTLE_S,
    EV_IDLE_GIVE_UP_S,
    EV_IDLE_RETRY_S,
    Action,
    ActionKind,
    Connector,
    ConnectorInputs,
    ConnectorOutput,
)
from agent.faults import FAULTS, Fault, Latch, OcppErrorCode, OcppStatus
from agent.transitions import (
    STATES,
    TRANSITIONS,
    Event,
    IllegalTransitionError,
    State,
    transition_for,
)
from hw.capabilities import LedColour, LedPattern, LedPatterns
from hw.pilot import PAUSE_FORCE_OPEN_AFTER_S, PilotState

A, B, C, E = PilotState.A, PilotState.B, PilotState.C, PilotState.E
STOP = Action(kind=ActionKind.STOP_PWM)
OPEN = Action(kind=ActionKind.OPEN_CONTACTOR)
CLOSE = Action(kind=ActionKind.CLOSE_CONTACTOR)


def pwm(amps: float) -> Action:
    return Action(kind=ActionKind.SET_PWM, current_a=amps)


class Rig:
    """A connector with a well-behaved contactor: the feedback follows the last command.
    Each step advances virtual time by `dt_s` (default 1 s, the control cycle)."""

    def __init__(self) -> None:
        self.connector = Connector(1)
        self.now_s = 100.0
        self.feedback_closed = False
        self.last: ConnectorOutput | None = None

    def step(self, dt_s: float = 1.0, feedback_closed: bool | None = None,
             **kw: Any) -> ConnectorOutput:
        self.now_s += dt_s
        kw.setdefault("pilot", A)
        fb = self.feedback_closed if feedback_closed is None else feedback_closed
        out = self.connector.step(ConnectorInputs(now_s=self.now_s, contactor_feedback_closed=fb,
                                                  **kw))
        self.feedback_closed = out.contactor_closed
        self.last = out
        return out


AUTH_16: dict[str, Any] = {"authorised": True, "offered_a": 16.0}
# Snapshot inputs that produce each event (rule 2).
EVENT_INPUTS: dict[Event, dict[str, Any]] = {
    Event.FAULT: {"pilot": B, "faults": frozenset({Fault.OVER_TEMPERATURE})},
    Event.INOPERATIVE: {"pilot": B, "operative": False},
    Event.UNPLUGGED: {"pilot": A},
    Event.PLUGGED: {"pilot": B},
    Event.NO_OFFER: {"pilot": B, "authorised": True},
    Event.OFFER_EV_NOT_READY: {"pilot": B, **AUTH_16},
    Event.OFFER_EV_READY: {"pilot": C, **AUTH_16, "max_phase_current_a": 15.0},
}
# Steps from a fresh connector into each state.
DRIVE: dict[State, list[dict[str, Any]]] = {
    State.BOOTING: [],
    State.AVAILABLE: [{"pilot": A}],
    State.PREPARING: [{"pilot": B}],
    State.WAITING: [{"pilot": B, "authorised": True}],
    State.OFFERING: [{"pilot": B, **AUTH_16}],
    State.CHARGING: [{"pilot": B, **AUTH_16}, {"pilot": C, **AUTH_16}],
    State.SUSPENDED_EV: [{"pilot": B, **AUTH_16}, {"pilot": C, **AUTH_16}, {"pilot": B, **AUTH_16}],
    State.PAUSED: [{"pilot": B, **AUTH_16}, {"pilot": C, **AUTH_16},
                   {"pilot": B, "authorised": True}],
    State.FINISHING: [{"pilot": B, "authorised": True}, {"pilot": B}],
    State.UNAVAILABLE: [{"pilot": A, "operative": False}],
    State.FAULTED: [{"pilot": A, "faults": frozenset({Fault.OVER_TEMPERATURE})}],
}


def rig_in(state: State) -> Rig:
    rig = Rig()
    for inputs in DRIVE[state]:
        rig.step(**inputs)
    assert rig.connector.state is state
    return rig


ROW_CASES = [
    pytest.param(row, source, id=f"{row.name}-from-{source.name}")
    for row in TRANSITIONS
    for source in sorted(row.sources, key=lambda s: s.value)
]


@pytest.mark.parametrize(("row", "source"), ROW_CASES)
def test_every_row_of_the_table(row: connector_module.Transition, source: State) -> None:
    rig = rig_in(source)
    if row.event is Event.RESET:
        assert rig.connector.reset() is row
        assert rig.connector.state is row.target
        return
    out = rig.step(**EVENT_INPUTS[row.event])
    assert (out.transition, out.state) == (row.name, row.target)
    assert out.status is STATES[row.target].status


def test_the_table_answers_every_snapshot_event_in_every_state() -> None:
    snapshot_events = [e for e in Event if e is not Event.RESET]
    for state in State:
        for event in snapshot_events:
            assert transition_for(state, event).target in State
    assert [s for s in State if _legal(s, Event.RESET)] == [State.FAULTED]


def _legal(state: State, event: Event) -> bool:
    try:
        transition_for(state, event)
    except IllegalTransitionError:
        return False
    return True


def test_power_only_after_the_pwm_ran() -> None:
    """Rule 4: CHARGING is entered only from states whose PWM already runs, and the PWM
    states only on an offer."""
    for row in TRANSITIONS:
        if row.target is State.CHARGING:
            assert all(STATES[s].pwm for s in row.sources), row.name
        if STATES[row.target].pwm:
            assert row.event in (Event.OFFER_EV_READY, Event.OFFER_EV_NOT_READY), row.name
    assert len({row.name for row in TRANSITIONS}) == len(TRANSITIONS)


def test_an_illegal_transition_raises_and_leaves_the_state_unchanged() -> None:
    rig = rig_in(State.CHARGING)
    before = rig.connector.state
    with pytest.raises(IllegalTransitionError, match="RESET is illegal in CHARGING"):
        rig.connector.reset()
    assert rig.connector.state is before
    out = rig.step(pilot=C, **AUTH_16)  # and it carries on as if nothing happened
    assert (out.state, out.transition, out.actions) == (State.CHARGING, "charging", ())


def test_a_step_with_time_going_backwards_changes_nothing() -> None:
    rig = rig_in(State.OFFERING)
    with pytest.raises(ValueError, match="backwards"):
        rig.step(dt_s=-5.0, pilot=C, **AUTH_16)
    assert rig.connector.state is State.OFFERING


def test_first_step_asserts_the_safe_state() -> None:
    out = Rig().step(pilot=A)
    assert out.actions == (STOP, OPEN)
    assert (out.status, out.led) == (OcppStatus.AVAILABLE, LedPatterns.READY)


def test_session_pwm_before_power_then_charging() -> None:
    rig = rig_in(State.AVAILABLE)
    plugged = rig.step(pilot=B)
    assert (plugged.status, plugged.led, plugged.actions) == (
        OcppStatus.PREPARING, LedPatterns.CABLE_INSERTED, ())
    assert not plugged.wants_power
    offered = rig.step(pilot=C, **AUTH_16)  # the EV asks (C1) as soon as it is authorised
    assert (offered.state, offered.actions, offered.contactor_closed) == (
        State.OFFERING, (pwm(16.0),), False)
    assert offered.wants_power
    charging = rig.step(pilot=C, **AUTH_16)
    assert (charging.state, charging.actions) == (State.CHARGING, (CLOSE,))
    assert (charging.status, charging.led) == (OcppStatus.CHARGING, LedPatterns.CHARGING)
    lower = rig.step(pilot=C, authorised=True, offered_a=10.0)
    assert (lower.state, lower.actions, lower.pwm_a) == (State.CHARGING, (pwm(10.0),), 10.0)


def test_pause_opens_the_contactor_once_the_ev_stops_drawing() -> None:
    rig = rig_in(State.CHARGING)
    paused = rig.step(pilot=C, authorised=True, max_phase_current_a=15.0)
    assert (paused.state, paused.status, paused.led) == (
        State.PAUSED, OcppStatus.SUSPENDED_EVSE, LedPatterns.WAITING)
    assert (paused.actions, paused.contactor_closed, paused.pwm_a) == ((STOP,), True, 0.0)
    still = rig.step(pilot=C, authorised=True, max_phase_current_a=4.0)
    assert (still.actions, still.contactor_closed) == ((), True)
    stopped = rig.step(pilot=C, authorised=True, max_phase_current_a=0.4)
    assert (stopped.actions, stopped.contactor_closed) == ((OPEN,), False)


def test_pause_forces_the_contactor_open_if_the_ev_keeps_drawing() -> None:
    rig = rig_in(State.CHARGING)
    rig.step(pilot=C, authorised=True, max_phase_current_a=15.0)
    almost = rig.step(dt_s=PAUSE_FORCE_OPEN_AFTER_S - 0.1, pilot=C, authorised=True,
                      max_phase_current_a=15.0)
    assert almost.contactor_closed
    forced = rig.step(dt_s=0.1, pilot=C, authorised=True, max_phase_current_a=15.0)
    assert (forced.actions, forced.contactor_closed) == ((OPEN,), False)


def test_ev_going_to_b_opens_at_once_and_is_suspended_ev() -> None:
    rig = rig_in(State.CHARGING)
    out = rig.step(pilot=B, **AUTH_16)
    assert (out.state, out.status, out.led) == (
        State.SUSPENDED_EV, OcppStatus.SUSPENDED_EV, LedPatterns.SUSPENDED_EV)
    assert (out.actions, out.pwm_a) == ((OPEN,), 16.0)


def test_resume_after_a_pause_offers_first_then_closes() -> None:
    rig = rig_in(State.PAUSED)
    resumed = rig.step(pilot=C, **AUTH_16)
    assert (resumed.state, resumed.actions) == (State.SUSPENDED_EV, (pwm(16.0),))
    charging = rig.step(pilot=C, **AUTH_16)
    assert (charging.state, charging.actions) == (State.CHARGING, (CLOSE,))


def test_offer_back_before_the_contactor_opened_keeps_it_closed() -> None:
    rig = rig_in(State.CHARGING)
    rig.step(pilot=C, authorised=True, max_phase_current_a=15.0)  # paused, still closed
    back = rig.step(pilot=C, **AUTH_16, max_phase_current_a=15.0)
    assert (back.state, back.actions, back.contactor_closed) == (
        State.SUSPENDED_EV, (pwm(16.0),), True)
    assert rig.step(pilot=C, **AUTH_16).state is State.CHARGING


def test_deauthorised_while_charging_finishes() -> None:
    rig = rig_in(State.CHARGING)
    out = rig.step(pilot=C, max_phase_current_a=0.0)
    assert (out.state, out.status, out.actions) == (
        State.FINISHING, OcppStatus.FINISHING, (STOP, OPEN))
    assert rig.step(pilot=A).state is State.AVAILABLE


def test_made_inoperative_while_charging() -> None:
    rig = rig_in(State.CHARGING)
    out = rig.step(pilot=C, operative=False, **AUTH_16, max_phase_current_a=0.0)
    assert (out.state, out.status, out.led, out.actions) == (
        State.UNAVAILABLE, OcppStatus.UNAVAILABLE, LedPatterns.UNAVAILABLE, (STOP, OPEN))


# (name, fault, OCPP error code, LED sequence): manual ch. 7 and OCPP 1.6 ChargePointErrorCode.
R, W, G, Y, BL, M = (LedColour.RED, LedColour.WHITE, LedColour.GREEN, LedColour.YELLOW,
                     LedColour.BLUE, LedColour.MAGENTA)
FAULT_CASES = [
    ("welded contactor", Fault.WELDED_CONTACTOR, "PowerSwitchFailure", (R, Y)),
    ("residual current", Fault.RESIDUAL_CURRENT, "GroundFailure", (R, BL, M)),
    ("open PEN", Fault.OPEN_PEN, "GroundFailure", (R, Y)),
    ("over-voltage", Fault.OVER_VOLTAGE, "OverVoltage", (R, W, G)),
    ("under-voltage", Fault.UNDER_VOLTAGE, "UnderVoltage", (R, W, G)),
    ("over-temperature", Fault.OVER_TEMPERATURE, "HighTemperature", (R, W, Y)),
    ("tilt / bump", Fault.TILT, "OtherError", (R, W, BL)),
    ("pilot voltage", Fault.PILOT_VOLTAGE, "EVCommunicationError", (R, G)),
    ("diode", Fault.DIODE, "EVCommunicationError", (R, BL)),
    ("contactor stuck open", Fault.CONTACTOR_STUCK_OPEN, "PowerSwitchFailure", (R, Y)),
    ("meter read timeout", Fault.METER_TIMEOUT, "PowerMeterFailure", (R, M)),
    ("EEPROM corrupt", Fault.EEPROM_CORRUPT, "InternalError", (R, M, G)),
]


def test_every_fault_has_a_case() -> None:
    assert {c[1] for c in FAULT_CASES} | {Fault.READER_FAILURE} == set(Fault)


@pytest.mark.parametrize(("name", "fault", "code", "colours"), FAULT_CASES,
                         ids=[c[0] for c in FAULT_CASES])
def test_a_fault_while_charging_stops_at_once(name: str, fault: Fault, code: str,
                                              colours: tuple[LedColour, ...]) -> None:
    rig = rig_in(State.CHARGING)
    out = rig.step(pilot=C, **AUTH_16, max_phase_current_a=16.0, faults=frozenset({fault}))
    assert (out.state, out.status) == (State.FAULTED, OcppStatus.FAULTED), name
    assert out.error_code is OcppErrorCode(code)
    assert out.vendor_error_code == FAULTS[fault].vendor_code != ""
    assert out.led == LedPattern(colours=colours)
    assert (out.actions, out.contactor_closed, out.pwm_a) == ((STOP, OPEN), False, 0.0)
    assert not out.wants_power


def test_a_reader_failure_is_reported_but_charging_goes_on() -> None:
    rig = rig_in(State.CHARGING)
    broken = frozenset({Fault.READER_FAILURE})
    out = rig.step(pilot=C, **AUTH_16, faults=broken)
    assert (out.state, out.error_code, out.led) == (
        State.CHARGING, OcppErrorCode.READER_FAILURE, LedPatterns.CHARGING)
    idle = rig.step(pilot=A, faults=broken)
    assert (idle.state, idle.led) == (State.AVAILABLE, LedPatterns.READER_FAILURE)


def test_the_most_serious_fault_is_the_one_shown() -> None:
    out = rig_in(State.AVAILABLE).step(
        pilot=A, faults=frozenset({Fault.METER_TIMEOUT, Fault.RESIDUAL_CURRENT}))
    assert (out.error_code, out.led) == (OcppErrorCode.GROUND_FAILURE,
                                         LedPatterns.RESIDUAL_CURRENT)
    assert out.faults == {Fault.METER_TIMEOUT, Fault.RESIDUAL_CURRENT}


def test_pilot_short_opens_at_once_and_clears_only_after_unplug() -> None:
    rig = rig_in(State.CHARGING)
    out = rig.step(pilot=E, **AUTH_16)
    assert (out.state, out.error_code, out.led, out.actions) == (
        State.FAULTED, OcppErrorCode.EV_COMMUNICATION_ERROR, LedPatterns.PILOT_VOLTAGE,
        (STOP, OPEN))
    assert rig.step(pilot=B, **AUTH_16).state is State.FAULTED  # latched until unplug
    assert rig.step(pilot=A).state is State.AVAILABLE


@pytest.mark.parametrize("pilot", [PilotState.D, PilotState.F], ids=["D", "F"])
def test_pilot_d_and_an_undriven_f_are_pilot_faults(pilot: PilotState) -> None:
    out = rig_in(State.OFFERING).step(pilot=pilot, **AUTH_16)
    assert (out.state, out.faults) == (State.FAULTED, frozenset({Fault.PILOT_VOLTAGE}))


def test_welded_contactor_latches_until_reset() -> None:
    rig = rig_in(State.AVAILABLE)
    out = rig.step(pilot=A, feedback_closed=True)
    assert (out.state, out.error_code, out.vendor_error_code) == (
        State.FAULTED, OcppErrorCode.POWER_SWITCH_FAILURE, "WeldedContactor")
    assert rig.step(pilot=A, feedback_closed=False).state is State.FAULTED  # latched
    assert rig.connector.reset().name == "reset"
    assert rig.step(pilot=A, feedback_closed=False).state is State.AVAILABLE


def test_welded_contactor_after_opening() -> None:
    """The contacts stay closed after OPEN: faulted once the feedback had time to follow."""
    rig = rig_in(State.CHARGING)
    rig.step(pilot=B, **AUTH_16, feedback_closed=True)  # C -> B: OPEN commanded
    out = rig.step(pilot=B, **AUTH_16, feedback_closed=True)
    assert (out.state, out.faults) == (State.FAULTED, frozenset({Fault.WELDED_CONTACTOR}))


def test_feedback_gets_the_settle_time() -> None:
    rig = rig_in(State.OFFERING)
    rig.step(pilot=C, **AUTH_16)  # CLOSE commanded
    quick = rig.step(dt_s=CONTACTOR_SETTLE_S / 2, pilot=C, **AUTH_16, feedback_closed=False)
    assert quick.state is State.CHARGING
    late = rig.step(dt_s=CONTACTOR_SETTLE_S, pilot=C, **AUTH_16, feedback_closed=False)
    assert (late.state, late.faults) == (State.FAULTED, frozenset({Fault.CONTACTOR_STUCK_OPEN}))


def test_a_closed_contactor_at_start_up_gets_the_settle_time_too() -> None:
    rig = Rig()
    first = rig.step(pilot=A, feedback_closed=True)  # left closed by a crashed process
    assert (first.state, first.actions) == (State.AVAILABLE, (STOP, OPEN))
    assert rig.step(pilot=A, feedback_closed=False).state is State.AVAILABLE


def test_non_latching_fault_clears_by_itself() -> None:
    rig = rig_in(State.FAULTED)
    assert FAULTS[Fault.OVER_TEMPERATURE].latch is Latch.NONE
    assert rig.step(pilot=B).state is State.PREPARING


def test_tilt_needs_a_reset_even_when_the_sensor_clears() -> None:
    rig = rig_in(State.AVAILABLE)
    rig.step(pilot=A, faults=frozenset({Fault.TILT}))
    assert rig.step(pilot=A).faults == {Fault.TILT}
    rig.connector.reset()
    assert rig.step(pilot=A).state is State.AVAILABLE


def test_postponed_by_smart_charging_shows_blue_and_wants_no_power() -> None:
    rig = rig_in(State.WAITING)
    out = rig.step(pilot=B, authorised=True, postponed=True)
    assert (out.status, out.led, out.wants_power) == (
        OcppStatus.SUSPENDED_EVSE, LedPatterns.POSTPONED, False)


def test_an_ev_ignoring_the_offer_stops_wanting_power_then_gets_another_chance() -> None:
    rig = rig_in(State.OFFERING)
    assert rig.step(dt_s=EV_IDLE_GIVE_UP_S - 1.0, pilot=B, **AUTH_16).wants_power
    given_up = rig.step(pilot=B, **AUTH_16)
    assert (given_up.state, given_up.wants_power) == (State.OFFERING, False)
    paused = rig.step(pilot=B, authorised=True)  # the master takes the current away
    assert (paused.state, paused.wants_power) == (State.WAITING, False)
    retry = rig.step(dt_s=EV_IDLE_RETRY_S, pilot=B, authorised=True)
    assert retry.wants_power


def test_an_ev_asking_with_c_wants_power_again_at_once() -> None:
    rig = rig_in(State.OFFERING)
    rig.step(dt_s=EV_IDLE_GIVE_UP_S, pilot=B, **AUTH_16)
    assert not rig.step(pilot=B, authorised=True).wants_power
    assert rig.step(pilot=C, authorised=True).wants_power  # C1: the EV asks


# (name, inputs after reaching the state, OCPP status, LED): manual 2.2.
STATE_VIEWS = [
    ("ready", State.AVAILABLE, {"pilot": A}, OcppStatus.AVAILABLE, LedPatterns.READY),
    ("cable in", State.PREPARING, {"pilot": B}, OcppStatus.PREPARING, LedPatterns.CABLE_INSERTED),
    ("waiting", State.WAITING, {"pilot": B, "authorised": True}, OcppStatus.SUSPENDED_EVSE,
     LedPatterns.WAITING),
    ("offered", State.OFFERING, {"pilot": B, **AUTH_16}, OcppStatus.PREPARING,
     LedPatterns.WAITING),
    ("charging", State.CHARGING, {"pilot": C, **AUTH_16}, OcppStatus.CHARGING,
     LedPatterns.CHARGING),
    ("finishing", State.FINISHING, {"pilot": B}, OcppStatus.FINISHING,
     LedPatterns.CABLE_INSERTED),
    ("out of order", State.UNAVAILABLE, {"pilot": A, "operative": False},
     OcppStatus.UNAVAILABLE, LedPatterns.UNAVAILABLE),
]


@pytest.mark.parametrize(("name", "state", "inputs", "status", "led"), STATE_VIEWS,
                         ids=[v[0] for v in STATE_VIEWS])
def test_status_and_led_per_state(name: str, state: State, inputs: dict[str, Any],
                                  status: OcppStatus, led: LedPattern) -> None:
    out = rig_in(state).step(**inputs)
    assert (out.state, out.status, out.led, out.error_code) == (
        state, status, led, OcppErrorCode.NO_ERROR), name


def test_boot_shows_white() -> None:
    assert Connector(2).state is State.BOOTING
    assert STATES[State.BOOTING].led == LedPatterns.STARTING


@pytest.mark.parametrize(("field", "value"), [("offered_a", 3.0), ("offered_a", 81.0),
                                              ("max_phase_current_a", -1.0),
                                              ("now_s", float("nan"))])
def test_inputs_refuse_impossible_values(field: str, value: float) -> None:
    good = ConnectorInputs(now_s=1.0, pilot=A, contactor_feedback_closed=False)
    changes: dict[str, Any] = {field: value}
    with pytest.raises(ValueError, match=field):
        replace(good, **changes)


def test_actions_refuse_impossible_values() -> None:
    with pytest.raises(ValueError, match="6-80 A"):
        Action(kind=ActionKind.SET_PWM, current_a=5.0)
    with pytest.raises(ValueError, match="no current"):
        Action(kind=ActionKind.OPEN_CONTACTOR, current_a=16.0)


@pytest.mark.parametrize("module", ["connector.py", "transitions.py", "faults.py", "limits.py"])
def test_the_cores_are_sans_io(module: str) -> None:
    """architecture.md principle 1: no asyncio, sockets, clocks or sleeps in the cores."""
    tree = ast.parse((Path(connector_module.__file__).parent / module).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"asyncio", "socket", "time", "grpc", "pymodbus", "ocpp", "datetime"}
