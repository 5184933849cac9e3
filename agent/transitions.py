"""The table of the IEC 61851-1 connector machine: its states, what each shows and drives,
the events a snapshot can mean, and the named transition rows. Pure data and one lookup.

Read it as agent.connector's rules 2-4 written out: every snapshot event has a row in
every state (the physical world may do anything, the table says how we answer); the only
missing rows are commands at the wrong time (`reset` outside FAULTED), for which
`transition_for` raises `IllegalTransitionError`. The PWM runs in OFFERING, SUSPENDED_EV
and CHARGING; the contactor is closed only in CHARGING, which is entered only from a
state whose PWM already ran. A state with two rows for one event is refused at import.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from agent.errors import AgentError
from agent.faults import OcppStatus
from hw.capabilities import LedPattern, LedPatterns


class IllegalTransitionError(AgentError):
    """The table has no row for this event in this state; the state is unchanged."""

    def __init__(self, *, connector_id: int, state: State, event: Event) -> None:
        self.connector_id, self.state, self.event = connector_id, state, event
        super().__init__(f"connector {connector_id}: {event.name} is illegal in {state.name}")


class State(enum.Enum):
    """The machine's states (pilot letter / PWM / contactor in the comment)."""

    BOOTING = "booting"  # before the first step: white LED
    AVAILABLE = "available"  # A, nothing plugged
    PREPARING = "preparing"  # B/C, not authorised yet
    WAITING = "waiting"  # authorised, no current offered yet this session
    OFFERING = "offering"  # first offer of the session: PWM on, waiting for C
    CHARGING = "charging"  # C, PWM on, contactor closed
    SUSPENDED_EV = "suspended_ev"  # PWM on after a session started, the EV is in B
    PAUSED = "paused"  # was charging, offered 0 A: PWM off
    FINISHING = "finishing"  # authorisation ended, cable still in
    UNAVAILABLE = "unavailable"  # inoperative (OCPP ChangeAvailability)
    FAULTED = "faulted"


class Event(enum.Enum):
    """What a snapshot means (rule 2), plus the shell's commands."""

    FAULT = "fault"
    INOPERATIVE = "inoperative"
    UNPLUGGED = "unplugged"  # pilot A
    PLUGGED = "plugged"  # B/C, not authorised
    NO_OFFER = "no_offer"  # B/C, authorised, 0 A offered
    OFFER_EV_NOT_READY = "offer_ev_not_ready"  # B, authorised, >= 6 A offered
    OFFER_EV_READY = "offer_ev_ready"  # C, authorised, >= 6 A offered
    RESET = "reset"  # command: clear latched faults


@dataclass(frozen=True, slots=True, kw_only=True)
class StateInfo:
    """What a state shows and drives."""

    status: OcppStatus
    led: LedPattern  # FAULTED shows its fault's sequence instead
    pwm: bool  # the PWM runs at the offered current
    contactor: bool  # the contactor is (commanded) closed


def _s(status: OcppStatus, led: LedPattern, pwm: bool = False,
       contactor: bool = False) -> StateInfo:
    return StateInfo(status=status, led=led, pwm=pwm, contactor=contactor)


_O, _L = OcppStatus, LedPatterns
STATES: Mapping[State, StateInfo] = MappingProxyType({
    State.BOOTING: _s(_O.UNAVAILABLE, _L.STARTING),
    State.AVAILABLE: _s(_O.AVAILABLE, _L.READY),
    State.PREPARING: _s(_O.PREPARING, _L.CABLE_INSERTED),
    State.WAITING: _s(_O.SUSPENDED_EVSE, _L.WAITING),
    State.OFFERING: _s(_O.PREPARING, _L.WAITING, pwm=True),
    State.CHARGING: _s(_O.CHARGING, _L.CHARGING, pwm=True, contactor=True),
    State.SUSPENDED_EV: _s(_O.SUSPENDED_EV, _L.SUSPENDED_EV, pwm=True),
    State.PAUSED: _s(_O.SUSPENDED_EVSE, _L.WAITING),
    State.FINISHING: _s(_O.FINISHING, _L.CABLE_INSERTED),
    State.UNAVAILABLE: _s(_O.UNAVAILABLE, _L.UNAVAILABLE),
    State.FAULTED: _s(_O.FAULTED, _L.FAULT),
})

DEMAND_STATES = frozenset(
    {State.WAITING, State.OFFERING, State.CHARGING, State.SUSPENDED_EV, State.PAUSED}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """One named row: in any of `sources`, `event` leads to `target`."""

    name: str
    sources: frozenset[State]
    event: Event
    target: State


def _row(name: str, sources: Iterable[State], event: Event, target: State) -> Transition:
    return Transition(name=name, sources=frozenset(sources), event=event, target=target)


_S = State
_ALL = frozenset(State)
_SESSION = (_S.WAITING, _S.OFFERING, _S.CHARGING, _S.SUSPENDED_EV, _S.PAUSED)
_FRESH = (_S.BOOTING, _S.AVAILABLE, _S.PREPARING, _S.FINISHING, _S.UNAVAILABLE, _S.FAULTED)
TRANSITIONS: tuple[Transition, ...] = (
    _row("fault", _ALL - {_S.FAULTED}, Event.FAULT, _S.FAULTED),
    _row("fault_persists", {_S.FAULTED}, Event.FAULT, _S.FAULTED),
    _row("made_inoperative", _ALL - {_S.UNAVAILABLE}, Event.INOPERATIVE, _S.UNAVAILABLE),
    _row("stays_inoperative", {_S.UNAVAILABLE}, Event.INOPERATIVE, _S.UNAVAILABLE),
    _row("in_service_nothing_plugged", {_S.BOOTING, _S.UNAVAILABLE, _S.FAULTED},
         Event.UNPLUGGED, _S.AVAILABLE),
    _row("idle", {_S.AVAILABLE}, Event.UNPLUGGED, _S.AVAILABLE),
    _row("ev_unplugged", {*_SESSION, _S.PREPARING, _S.FINISHING}, Event.UNPLUGGED, _S.AVAILABLE),
    _row("ev_plugged_in", {_S.BOOTING, _S.AVAILABLE, _S.UNAVAILABLE, _S.FAULTED},
         Event.PLUGGED, _S.PREPARING),
    _row("waiting_for_authorisation", {_S.PREPARING}, Event.PLUGGED, _S.PREPARING),
    _row("authorisation_ended", _SESSION, Event.PLUGGED, _S.FINISHING),
    _row("finished_cable_still_in", {_S.FINISHING}, Event.PLUGGED, _S.FINISHING),
    _row("authorised_waiting_for_current", _FRESH, Event.NO_OFFER, _S.WAITING),
    _row("still_waiting", {_S.WAITING}, Event.NO_OFFER, _S.WAITING),
    _row("offer_withdrawn_before_start", {_S.OFFERING}, Event.NO_OFFER, _S.WAITING),
    _row("paused_by_evse", {_S.CHARGING, _S.SUSPENDED_EV}, Event.NO_OFFER, _S.PAUSED),
    _row("still_paused", {_S.PAUSED}, Event.NO_OFFER, _S.PAUSED),
    _row("offer_made", {*_FRESH, _S.WAITING}, Event.OFFER_EV_NOT_READY, _S.OFFERING),
    _row("waiting_for_ev", {_S.OFFERING}, Event.OFFER_EV_NOT_READY, _S.OFFERING),
    _row("ev_suspended", {_S.CHARGING}, Event.OFFER_EV_NOT_READY, _S.SUSPENDED_EV),
    _row("offer_resumed", {_S.PAUSED}, Event.OFFER_EV_NOT_READY, _S.SUSPENDED_EV),
    _row("still_suspended_by_ev", {_S.SUSPENDED_EV}, Event.OFFER_EV_NOT_READY, _S.SUSPENDED_EV),
    _row("offer_made_ev_ready", {*_FRESH, _S.WAITING}, Event.OFFER_EV_READY, _S.OFFERING),
    _row("offer_resumed_ev_ready", {_S.PAUSED}, Event.OFFER_EV_READY, _S.SUSPENDED_EV),
    _row("ev_starts_charging", {_S.OFFERING, _S.SUSPENDED_EV}, Event.OFFER_EV_READY,
         _S.CHARGING),
    _row("charging", {_S.CHARGING}, Event.OFFER_EV_READY, _S.CHARGING),
    _row("reset", {_S.FAULTED}, Event.RESET, _S.FAULTED),
)


def _index(rows: Iterable[Transition]) -> Mapping[tuple[State, Event], Transition]:
    index: dict[tuple[State, Event], Transition] = {}
    for row in rows:
        for source in row.sources:
            if (source, row.event) in index:
                raise ValueError(f"two rows for {source.name} + {row.event.name}")
            index[source, row.event] = row
    return MappingProxyType(index)


_INDEX = _index(TRANSITIONS)


def transition_for(state: State, event: Event, *, connector_id: int = 0) -> Transition:
    """The row for `event` in `state`; IllegalTransitionError if the table has none."""
    row = _INDEX.get((state, event))
    if row is None:
        raise IllegalTransitionError(connector_id=connector_id, state=state, event=event)
    return row
