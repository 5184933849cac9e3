"""The IEC 61851-1 state machine of one connector: pure, a transition table with named rows.

The shell (agent/service.py) samples the hardware once per cycle into `ConnectorInputs`
and calls `Connector.step`; it gets back the OCPP 1.6 status, the LED pattern, the
setpoints (PWM current, contactor) and the `actions` that change the hardware, in the
order to execute them. No I/O and no clock here: time is `now_s` (monotonic) in the inputs.
The table it follows (states, events, named rows) is agent.transitions; the faults it
knows, with their codes and latches, are agent.faults.

Rules, in order:
 1. Faults first. A fault that stops charging (every one but the RFID reader's) sends
    the connector to FAULTED from any state: PWM off and contactor open in the same step
    (IEC 61851-1 asks for < 3 s, `hw.pilot.PILOT_FAULT_OPEN_WITHIN_S`). Pilot D, E or F
    (the io7 never drives F itself) is a pilot voltage fault. The contactor's feedback
    disagreeing with the command for `CONTACTOR_SETTLE_S` is a fault: closed while
    commanded open = welded, open while commanded closed = stuck open (both OCPP
    PowerSwitchFailure). Each fault has its OCPP error code, vendor code, LED sequence
    (manual ch. 7) and latch in `agent.faults.FAULTS`: some clear when gone, some only
    once the EV is unplugged (pilot faults, stuck-open contactor), some only on `reset`
    (welded contactor, residual current, tilt, EEPROM): the installer must look first.
 2. Then availability (OCPP Unavailable), then the pilot: A = nothing plugged,
    B/C = an EV; then authorisation; then the offered current (0 = paused).
 3. Every snapshot event is legal in every state: the physical world may do anything and
    the table says how we answer. The only illegal transitions are commands at the wrong
    time (`reset` outside FAULTED): they raise `IllegalTransitionError` and change nothing.
 4. PWM before power: the PWM runs in OFFERING, SUSPENDED_EV and CHARGING (at the offered
    current); the contactor closes only in CHARGING, which is entered only from a state
    whose PWM already ran, so the EV has seen the offer (and the shell's diode check has
    run) before the socket is live. A resumed offer goes PAUSED -> SUSPENDED_EV ->
    CHARGING for that reason.
 5. Pausing (hw.pilot rule 6): leaving CHARGING stops the PWM at once; the contactor opens
    at once if the EV is not in C any more (C -> B, unplug) or on a fault, otherwise once
    the EV draws less than `hw.pilot.EV_STOPPED_BELOW_A` or
    `hw.pilot.PAUSE_FORCE_OPEN_AFTER_S` after the PWM stopped.
 6. The first step asserts the safe state (STOP_PWM, OPEN_CONTACTOR) whatever the
    hardware was left in.
 7. `wants_power`: an EV is connected, authorised, the connector operative and not
    faulted (WAITING, OFFERING, CHARGING, SUSPENDED_EV, PAUSED), smart charging does not
    postpone it, and the EV has not ignored a standing offer (pilot B with PWM) for
    `EV_IDLE_GIVE_UP_S` (full, or on its own timer). That verdict lasts until the EV
    goes to C (it may signal C1 without PWM), the session states are left (unplug,
    fault, deauthorisation), or `EV_IDLE_RETRY_S` later the agent asks for power again.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

from agent.faults import FAULTS, Fault, Latch, OcppErrorCode, OcppStatus
from agent.transitions import DEMAND_STATES, STATES, Event, State, Transition, transition_for
from hw.capabilities import LedPattern, LedPatterns
from hw.pilot import MAX_CURRENT_A, MIN_CURRENT_A, PilotState, contactor_may_open_after_pause

CONTACTOR_SETTLE_S = 0.5  # team choice: contactors switch in tens of ms; room for bounce
EV_IDLE_GIVE_UP_S = 600.0  # team choice: 10 min of an unused offer = full or scheduled
EV_IDLE_RETRY_S = 1800.0  # team choice: offer a declined EV again every 30 min
_NO_FAULTS: frozenset[Fault] = frozenset()

# The output's types come with the machine (OcppStatus, State): master.sim imports them here.
__all__ = [
    "CONTACTOR_SETTLE_S", "EV_IDLE_GIVE_UP_S", "EV_IDLE_RETRY_S", "Action", "ActionKind",
    "Connector", "ConnectorInputs", "ConnectorOutput", "OcppStatus", "State", "classify",
]


class ActionKind(enum.Enum):
    SET_PWM = "set_pwm"  # run the PWM offering `current_a` (hw ControlPilot.offer_current_a)
    STOP_PWM = "stop_pwm"  # steady +12 V (ControlPilot.stop_offering)
    CLOSE_CONTACTOR = "close_contactor"
    OPEN_CONTACTOR = "open_contactor"


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """One hardware command; `current_a` only for SET_PWM (6-80 A)."""

    kind: ActionKind
    current_a: float = 0.0

    def __post_init__(self) -> None:
        if self.kind is ActionKind.SET_PWM:
            if not MIN_CURRENT_A <= self.current_a <= MAX_CURRENT_A:
                raise ValueError(f"SET_PWM needs 6-80 A, got {self.current_a}")
        elif self.current_a != 0.0:
            raise ValueError(f"{self.kind.name} takes no current")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorInputs:
    """One sample of everything the machine looks at.

    `faults`: faults the shell detected (RCD, PEN, temperature, tilt, diode check, meter
    timeout, ...); pilot and contactor faults are also derived here (rule 1).
    `offered_a`: the limit applier's decision (agent.limits), 0 or 6-80 A.
    `max_phase_current_a`: the highest per-phase current the socket meter reads now.
    `postponed`: smart charging holds this connector at 0 A (LED blue solid).
    """

    now_s: float
    pilot: PilotState
    contactor_feedback_closed: bool
    faults: frozenset[Fault] = frozenset()
    operative: bool = True
    authorised: bool = False
    offered_a: float = 0.0
    max_phase_current_a: float = 0.0
    postponed: bool = False

    def __post_init__(self) -> None:
        if not math.isfinite(self.now_s):
            raise ValueError(f"now_s must be finite, got {self.now_s}")
        if not isinstance(self.pilot, PilotState):
            raise ValueError(f"pilot must be a PilotState, got {self.pilot!r}")
        if any(not isinstance(f, Fault) for f in self.faults):
            raise ValueError(f"faults must be Fault values, got {set(self.faults)!r}")
        object.__setattr__(self, "faults", frozenset(self.faults))  # a set passed in stays ours
        a = self.offered_a
        if not (a == 0.0 or MIN_CURRENT_A <= a <= MAX_CURRENT_A):
            raise ValueError(f"offered_a must be 0 or 6-80 A (IEC 61851-1 Table A.7), got {a}")
        if not (math.isfinite(self.max_phase_current_a) and self.max_phase_current_a >= 0.0):
            raise ValueError(f"max_phase_current_a must be >= 0 A, got {self.max_phase_current_a}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorOutput:
    """The result of one step: what to report, show and do."""

    connector_id: int
    state: State
    transition: str  # the name of the row taken
    status: OcppStatus
    error_code: OcppErrorCode
    vendor_error_code: str  # "" when there is no fault
    faults: frozenset[Fault]  # active and latched
    led: LedPattern
    pwm_a: float  # 0 = no PWM
    contactor_closed: bool  # as commanded after `actions`
    actions: tuple[Action, ...]
    wants_power: bool


@dataclass(slots=True, kw_only=True)
class _Memory:
    """What the machine remembers between steps. Replaced whole by each step, never
    changed in place (private, so not frozen: a frozen dataclass of 9 fields costs
    2.5x as much to build, and io7-sim builds ~450 000 of these in a day)."""

    state: State = State.BOOTING
    pwm_a: float = 0.0
    contactor_closed: bool = False
    contactor_changed_at_s: float = -math.inf
    pwm_stopped_at_s: float | None = None
    latched: frozenset[Fault] = frozenset()
    idle_since_s: float | None = None
    last_now_s: float = -math.inf
    stepped: bool = False


def classify(inputs: ConnectorInputs, blocking: frozenset[Fault]) -> Event:
    """The event a snapshot means (rule 2), given the faults that stop charging."""
    if blocking:
        return Event.FAULT
    if not inputs.operative:
        return Event.INOPERATIVE
    if inputs.pilot is PilotState.A:
        return Event.UNPLUGGED
    if not inputs.authorised:
        return Event.PLUGGED
    if inputs.offered_a == 0.0:
        return Event.NO_OFFER
    if inputs.pilot is PilotState.C:
        return Event.OFFER_EV_READY
    return Event.OFFER_EV_NOT_READY


class Connector:
    """One connector's machine. `step` per cycle; `reset` to clear latched faults."""

    def __init__(self, connector_id: int) -> None:
        if connector_id < 1:
            raise ValueError(f"connector ids start at 1, got {connector_id}")
        self.connector_id = connector_id
        self._mem = _Memory()

    @property
    def state(self) -> State:
        return self._mem.state

    @property
    def latched_faults(self) -> frozenset[Fault]:
        return self._mem.latched

    def reset(self) -> Transition:
        """Clear latched faults (after an inspection, OCPP Reset). Legal only in FAULTED;
        IllegalTransitionError otherwise. The next `step` decides where to go."""
        row = transition_for(self._mem.state, Event.RESET, connector_id=self.connector_id)
        self._mem = replace(self._mem, state=row.target, latched=frozenset())
        return row

    def step(self, inputs: ConnectorInputs) -> ConnectorOutput:
        """Advance one sample. ValueError if time went backwards; the state only changes
        when the whole step succeeded."""
        mem, now = self._mem, inputs.now_s
        if now < mem.last_now_s:
            raise ValueError(f"now_s went backwards: {now} < {mem.last_now_s}")
        active = inputs.faults | self._derived_faults(inputs, mem)
        if not active and not mem.latched:  # the usual step: nothing to latch or block
            latched = faults = blocking = _NO_FAULTS
        else:
            latched = frozenset(f for f in mem.latched | active
                                if FAULTS[f].latch is not Latch.NONE)
            if inputs.pilot is PilotState.A:
                latched = frozenset(f for f in latched
                                    if f in active or FAULTS[f].latch is Latch.UNTIL_RESET)
            faults = active | latched
            blocking = frozenset(f for f in faults if FAULTS[f].stops_charging)
        row = transition_for(mem.state, classify(inputs, blocking), connector_id=self.connector_id)
        info = STATES[row.target]

        pwm_a = inputs.offered_a if info.pwm else 0.0
        stopped_at = None if pwm_a > 0.0 else (mem.pwm_stopped_at_s if mem.pwm_a == 0.0 else now)
        closed = self._contactor(inputs, mem, row.target, pwm_a, stopped_at)
        actions = self._actions(mem, pwm_a, closed)
        idle = self._idle_since(inputs, mem, row.target)
        wants = (row.target in DEMAND_STATES and not inputs.postponed
                 and (idle is None or now - idle < EV_IDLE_GIVE_UP_S))
        self._mem = _Memory(
            state=row.target, pwm_a=pwm_a, contactor_closed=closed,
            contactor_changed_at_s=now if closed != mem.contactor_closed or not mem.stepped
            else mem.contactor_changed_at_s,
            pwm_stopped_at_s=stopped_at, latched=latched, idle_since_s=idle, last_now_s=now,
            stepped=True,
        )
        shown = self._shown_fault(faults, blocking)
        return ConnectorOutput(
            connector_id=self.connector_id, state=row.target, transition=row.name,
            status=info.status,
            error_code=FAULTS[shown].error_code if shown else OcppErrorCode.NO_ERROR,
            vendor_error_code=FAULTS[shown].vendor_code if shown else "",
            faults=faults, led=self._led(row.target, inputs, shown),
            pwm_a=pwm_a, contactor_closed=closed, actions=actions, wants_power=wants,
        )

    @staticmethod
    def _derived_faults(inputs: ConnectorInputs, mem: _Memory) -> frozenset[Fault]:
        found: set[Fault] = set()
        if inputs.pilot in (PilotState.D, PilotState.E, PilotState.F):
            found.add(Fault.PILOT_VOLTAGE)
        # The first step commands OPEN (rule 6), so the feedback gets time to follow it.
        if mem.stepped and inputs.now_s - mem.contactor_changed_at_s >= CONTACTOR_SETTLE_S:
            if inputs.contactor_feedback_closed and not mem.contactor_closed:
                found.add(Fault.WELDED_CONTACTOR)
            if mem.contactor_closed and not inputs.contactor_feedback_closed:
                found.add(Fault.CONTACTOR_STUCK_OPEN)
        return frozenset(found) if found else _NO_FAULTS

    @staticmethod
    def _contactor(inputs: ConnectorInputs, mem: _Memory, target: State, pwm_a: float,
                   stopped_at: float | None) -> bool:
        """Rules 4 and 5: the commanded contactor position after this step."""
        if STATES[target].contactor:
            return True
        if not mem.contactor_closed:
            return False
        if target is State.FAULTED or inputs.pilot is not PilotState.C:
            return False  # fault, C -> B or unplugged: open now
        if pwm_a > 0.0:
            return True  # the offer came back before the EV stopped: CHARGING next step
        return not contactor_may_open_after_pause(
            now_s=inputs.now_s, pwm_stopped_at_s=inputs.now_s if stopped_at is None
            else stopped_at, max_phase_current_a=inputs.max_phase_current_a)

    @staticmethod
    def _actions(mem: _Memory, pwm_a: float, closed: bool) -> tuple[Action, ...]:
        """Safe order: stop the PWM, open; set the PWM, close (rules 4-6)."""
        out: list[Action] = []
        if pwm_a == 0.0 and (mem.pwm_a > 0.0 or not mem.stepped):
            out.append(Action(kind=ActionKind.STOP_PWM))
        if not closed and (mem.contactor_closed or not mem.stepped):
            out.append(Action(kind=ActionKind.OPEN_CONTACTOR))
        if pwm_a > 0.0 and pwm_a != mem.pwm_a:
            out.append(Action(kind=ActionKind.SET_PWM, current_a=pwm_a))
        if closed and not mem.contactor_closed:
            out.append(Action(kind=ActionKind.CLOSE_CONTACTOR))
        return tuple(out)

    @staticmethod
    def _idle_since(inputs: ConnectorInputs, mem: _Memory, target: State) -> float | None:
        """Rule 7: since when the EV ignores a standing offer (None: it does not)."""
        now = inputs.now_s
        if target not in DEMAND_STATES or inputs.pilot is PilotState.C:
            return None
        idle = mem.idle_since_s
        if idle is not None and now - idle >= EV_IDLE_GIVE_UP_S + EV_IDLE_RETRY_S:
            idle = None  # time to offer again
        if idle is None and STATES[target].pwm:
            return now
        return idle

    @staticmethod
    def _shown_fault(faults: frozenset[Fault], blocking: frozenset[Fault]) -> Fault | None:
        """The fault reported and shown: the first stopping one, else the first one."""
        if not faults:
            return None
        ordered = [f for f in Fault if f in (blocking or faults)]
        return ordered[0] if ordered else None

    @staticmethod
    def _led(target: State, inputs: ConnectorInputs, shown: Fault | None) -> LedPattern:
        if shown is not None and (target is State.FAULTED
                                  or target in (State.AVAILABLE, State.PREPARING)):
            return FAULTS[shown].led
        if inputs.postponed and target in (State.WAITING, State.PAUSED):
            return LedPatterns.POSTPONED
        return STATES[target].led
