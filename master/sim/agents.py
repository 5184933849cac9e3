"""One simulated charger: the agent's own pure cores around EV models, in virtual time.

The same objects the `io7-agent` process runs (agent.limits.LimitApplier with its lease
and 5 s increase rule, agent.connector.Connector per socket) drive an hw.sim EvModel on
each socket: the PWM offer reaches the EV, which follows it after its own response delay;
the contactor switches its supply. `report` builds the MemberReport the master's control
loop would receive from this agent's AgentState, from the socket meters (the EVs' draw).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.connector import ActionKind, Connector, ConnectorInputs, OcppStatus, State
from agent.limits import LimitApplier, MasterLimits
from agent.wire import session_lines
from hw.pilot import PilotState as HwPilot
from hw.sim.ev import EvModel
from master.reports import ConnectorReport, ConnectorStatus, MemberReport, PilotState
from master.sim.scenario import Arrival, ChargerSpec

NOMINAL_V = 230.0
PAUSE_MIN_OFFER_A = 6.0  # an offer at or above the IEC minimum that drops to 0 is a pause
_PILOT = {HwPilot.A: PilotState.A, HwPilot.B: PilotState.B, HwPilot.C: PilotState.C}
_STATUS = {s: ConnectorStatus(s.value) for s in OcppStatus}
_VOLTS = (NOMINAL_V,) * 3


@dataclass(slots=True)
class Session:
    """One EV's visit, with what the KPIs need."""

    arrival: Arrival
    ev: EvModel
    pauses: int = 0
    last_offer_a: float = 0.0
    offers: list[float] = field(default_factory=list)
    lines_seen: int = 0  # connector lines the EV loaded this session (agent.wire.session_lines)
    first_offer_s: float | None = None  # when the PWM first offered >= 6 A (KPI: first offer)

    @property
    def delivered_wh(self) -> float:
        return self.ev.status.drawn_wh


class SimAgent:
    """The agent of one charger: limit applier, connector machines, EVs on its sockets."""

    def __init__(self, spec: ChargerSpec, *, initial_failsafe_a: float, now_s: float) -> None:
        self.spec = spec
        ids = list(range(1, spec.connectors + 1))
        self.applier = LimitApplier(ids, spec.current_limit_a,
                                    dict.fromkeys(ids, spec.connector_max_a),
                                    initial_failsafe_a=initial_failsafe_a)
        self.machines = {cid: Connector(cid) for cid in ids}
        self.sessions: dict[int, Session] = {}
        self.finished: list[Session] = []
        self.pwm_a = dict.fromkeys(ids, 0.0)
        self.closed = dict.fromkeys(ids, False)
        self.status = dict.fromkeys(ids, OcppStatus.AVAILABLE)
        self.wants = dict.fromkeys(ids, False)
        self.contactor_switches = 0
        self.sequence = 0
        self.started_s = now_s
        # per connector: the last report sent and what it was made of; sent again (the
        # same object) while nothing changed, as an idle socket's mostly is
        self._sent: dict[int, tuple[tuple[object, ...], ConnectorReport]] = {}
        # and the last tuple of them: sent again while every one repeats, as the master's
        # wire.ReportDecoder hands it back, so its control loop neither judges the report
        # again nor rebuilds the engine input (master.control rule 7)
        self._sent_all: tuple[ConnectorReport, ...] = ()

    # -- the physical side ------------------------------------------------------------

    def plug(self, arrival: Arrival) -> None:
        ev = EvModel(arrival.ev, soc=arrival.soc, now_s=arrival.at_s)
        self.sessions[arrival.connector_id] = Session(arrival=arrival, ev=ev)

    def unplug_departed(self, now_s: float, *, everyone: bool = False) -> None:
        """EVs whose departure time has come leave (all of them with `everyone`)."""
        for cid, s in list(self.sessions.items()):
            if everyone or now_s >= s.arrival.leave_s:
                s.ev.advance(now_s)
                self.finished.append(s)
                del self.sessions[cid]

    def advance(self, now_s: float) -> None:
        for s in self.sessions.values():
            s.ev.advance(now_s)

    def line_currents_a(self, cid: int) -> tuple[float, float, float]:
        """What the socket meter reads, per connector line (1-phase EVs load line 1)."""
        s = self.sessions.get(cid)
        if s is None:
            return (0.0, 0.0, 0.0)
        draw = s.ev.status.phase_currents_a
        return (draw[0], draw[1] if len(draw) > 1 else 0.0, draw[2] if len(draw) > 2 else 0.0)

    def at_rest(self) -> bool:
        """No EV, every socket Available with the PWM off and the contactor open."""
        return not self.sessions and all(
            m.state is State.AVAILABLE for m in self.machines.values()) \
            and not any(self.pwm_a.values()) and not any(self.closed.values())

    # -- the agent's step -----------------------------------------------------------------

    def on_limits(self, msg: MasterLimits, now_s: float) -> None:
        self.applier.on_limits(msg, now_s)

    def step(self, now_s: float) -> None:
        """One agent step: offers from the applier, the connector machines, the hardware."""
        offers = self.applier.offered(now_s)
        for cid, machine in self.machines.items():
            s = self.sessions.get(cid)
            if s is None and machine.state is State.AVAILABLE:
                continue  # an empty socket at rest: the step would be a no-op (A -> A)
            pilot = HwPilot.A if s is None else s.ev.status.pilot_state
            drawn = max(self.line_currents_a(cid))
            out = machine.step(ConnectorInputs(
                now_s=now_s, pilot=pilot, contactor_feedback_closed=self.closed[cid],
                authorised=True, offered_a=offers[cid].current_a, max_phase_current_a=drawn))
            for action in out.actions:
                if action.kind in (ActionKind.SET_PWM, ActionKind.STOP_PWM) and s is not None:
                    s.ev.offer(now_s, action.current_a)
                elif action.kind is ActionKind.CLOSE_CONTACTOR:
                    self.contactor_switches += 1
                    if s is not None:
                        s.ev.set_supply(now_s, True)
                elif action.kind is ActionKind.OPEN_CONTACTOR:
                    self.contactor_switches += 1
                    if s is not None:
                        s.ev.set_supply(now_s, False)
            if s is not None:
                if (s.last_offer_a >= PAUSE_MIN_OFFER_A and out.pwm_a == 0.0
                        and s.ev.status.requesting):
                    s.pauses += 1
                s.last_offer_a = out.pwm_a
                if s.first_offer_s is None and out.pwm_a >= PAUSE_MIN_OFFER_A:
                    s.first_offer_s = now_s
            self.pwm_a[cid], self.closed[cid] = out.pwm_a, out.contactor_closed
            self.status[cid], self.wants[cid] = out.status, out.wants_power

    @staticmethod
    def _lines(s: Session | None, amps: tuple[float, float, float]) -> int:
        """The session-long mask the agent reports (agent.wire.session_lines)."""
        if s is None:
            return 0
        s.lines_seen = session_lines(s.lines_seen, amps)
        return s.lines_seen

    def report(self, now_s: float) -> MemberReport:
        """The AgentState this agent would send now, as the master's control loop reads it."""
        self.sequence += 1
        conns = []
        for cid in self.machines:
            amps = self.line_currents_a(cid)
            s = self.sessions.get(cid)
            pilot = HwPilot.A if s is None else s.ev.status.pilot_state
            made_of = (pilot, self.status[cid], amps, 0.0 if s is None else s.delivered_wh,
                       self._lines(s, amps), self.pwm_a[cid], self.wants[cid])
            last = self._sent.get(cid)
            if last is not None and last[0] == made_of:
                conns.append(last[1])
                continue
            report = ConnectorReport(
                connector_id=cid, pilot_state=_PILOT[pilot], status=_STATUS[made_of[1]],
                current_a=amps, voltage_v=_VOLTS, session_energy_wh=made_of[3],
                phases_in_use=made_of[4], offered_a=made_of[5],
                max_current_a=self.spec.connector_max_a, wants_power=made_of[6])
            self._sent[cid] = (made_of, report)
            conns.append(report)
        last_all = self._sent_all
        if len(last_all) != len(conns) or any(a is not b for a, b in zip(last_all, conns,
                                                                          strict=True)):
            self._sent_all = tuple(conns)
        return MemberReport(charger_id=self.spec.charger_id, sequence=self.sequence,
                            received_at_s=now_s, connectors=self._sent_all)
