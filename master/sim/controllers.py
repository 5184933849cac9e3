"""Who decides each connector's limit in a simulated group: the project or a baseline.

Every controller sees what a master sees, once per 1 s cycle: the reports of the agents it
can reach and its CT kit's reading (None while the kit is silent), and answers with a
Limits message per reachable charger. The agents (master.sim.agents) apply them with the
same lease and increase rules whoever sent them, so the comparison is fair.

- `project`: master.control.GroupControl, the real control loop and allocation engine.
- `agent-only` (scenario A): the allocation engine in-process, as agent.service runs it.
- `equal-split`: a plain static group: what is available on each phase is divided equally
  among the plugged-in connectors on it (below 6 A: nobody charges), never rebalanced
  towards cars that cannot use their share.
- `first-come`: each connector takes what is left when it is plugged in and keeps it
  until it leaves; later arrivals wait for room.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Protocol

from agent.limits import MasterLimits
from master.allocation import (
    ChargerInput,
    ConnectorInput,
    CtPlacement,
    CtReading,
    EngineState,
    GroupConfig,
    Mode,
    Phase,
    Snapshot,
    allocate,
)
from master.allocation.model import Need
from master.control import GroupControl
from master.membership import Member, MemberConnector
from master.reports import MemberReport, PilotState
from master.sim.scenario import ChargerSpec

POLICIES = ("project", "equal-split", "first-come")
LEASE_S = 3.0  # the group default (GroupConfig.lease_s); agent-only uses the same
MIN_A = 6.0  # IEC 61851-1: no duty cycle below 6 A
CtValues = tuple[float | None, float | None, float | None]
_PHASES = tuple(Phase)  # by index, without an enum call per phase per second


class Controller(Protocol):
    """One group's decision maker."""

    max_cycle_ms: float

    def connect(self, charger_id: str, now_s: float) -> None: ...
    def disconnect(self, charger_id: str, now_s: float) -> None: ...
    def cycle(self, now_s: float, reports: Mapping[str, MemberReport],
              ct: CtValues | None) -> Mapping[str, MasterLimits]: ...


def member_of(spec: ChargerSpec) -> Member:
    return Member(charger_id=spec.charger_id, group=spec.group,
                  charger_current_limit_a=spec.current_limit_a,
                  connectors=tuple(MemberConnector(connector_id=k, wiring=spec.wiring,
                                                   hard_max_a=spec.connector_max_a)
                                   for k in range(1, spec.connectors + 1)))


class ProjectController:
    """The real master core: reports and CT samples in, GroupControl.cycle, Limits out."""

    def __init__(self, group: GroupConfig, chargers: tuple[ChargerSpec, ...],
                 now_s: float) -> None:
        self.members = {c.charger_id: member_of(c) for c in chargers}
        self.control = GroupControl(group=group, term=1, members=self.members.values(),
                                    now_s=now_s)
        self.max_cycle_ms = 0.0

    def connect(self, charger_id: str, now_s: float) -> None:
        self.control.member_connected(self.members[charger_id], now_s)

    def disconnect(self, charger_id: str, now_s: float) -> None:
        self.control.member_disconnected(charger_id, now_s)

    def cycle(self, now_s: float, reports: Mapping[str, MemberReport],
              ct: CtValues | None, needs: tuple[Need, ...] = ()) -> Mapping[str, MasterLimits]:
        started = time.perf_counter()
        for report in reports.values():
            self.control.report(report)
        if ct is None:
            self.control.ct_failed("meter read timeout (simulated silence)", now_s)
        else:
            self.control.ct_sample({_PHASES[p]: v for p, v in enumerate(ct) if v is not None},
                                   now_s)
        result = self.control.cycle(now_s, needs=needs)
        self.max_cycle_ms = max(self.max_cycle_ms, (time.perf_counter() - started) * 1000)
        return {cid: MasterLimits(term=result.term, cycle=result.cycle,
                                  valid_for_s=result.lease_ms / 1000,
                                  failsafe_current_a=result.failsafe_current_a,
                                  currents_a={lim.connector_id: lim.current_a for lim in lims})
                for cid, lims in result.limits.items()}


def _charger_input(spec: ChargerSpec, report: MemberReport) -> ChargerInput:
    conns = []
    for r in report.connectors:
        measured = r.current_a or (0.0, 0.0, 0.0)
        conns.append(ConnectorInput(
            connector_id=r.connector_id, wiring=spec.wiring,
            max_current_a=min(spec.connector_max_a, r.max_current_a),
            wants_power=r.wants_power, ev_lines=r.ev_lines(), measured_a=measured,
            session_energy_wh=r.session_energy_wh))
    return ChargerInput(charger_id=spec.charger_id, current_limit_a=spec.current_limit_a,
                        connectors=tuple(conns))


class AgentOnlyController:
    """Scenario A: the agent runs the allocation for its own two sockets each second."""

    def __init__(self, group: GroupConfig, chargers: tuple[ChargerSpec, ...],
                 now_s: float) -> None:
        self.group, self.spec = group, chargers[0]
        self.engine: EngineState | None = None
        self.ct: CtReading | None = None
        self.local_cycle = 0
        self.max_cycle_ms = 0.0

    def connect(self, charger_id: str, now_s: float) -> None:
        """The agent is its own master: nothing to connect."""

    def disconnect(self, charger_id: str, now_s: float) -> None:
        """The agent is its own master: it cannot lose itself."""

    def cycle(self, now_s: float, reports: Mapping[str, MemberReport],
              ct: CtValues | None) -> Mapping[str, MasterLimits]:
        started = time.perf_counter()
        report = reports.get(self.spec.charger_id)
        if report is None:
            return {}
        if ct is not None:
            self.ct = CtReading(currents_a=ct, taken_at_s=now_s)
        alloc = allocate(Snapshot(now_s=now_s, group=self.group, ct=self.ct,
                                  chargers=(_charger_input(self.spec, report),)), self.engine)
        self.engine = alloc.state
        self.local_cycle += 1
        self.max_cycle_ms = max(self.max_cycle_ms, (time.perf_counter() - started) * 1000)
        return {self.spec.charger_id: MasterLimits(
            term=0, cycle=self.local_cycle, valid_for_s=LEASE_S,
            failsafe_current_a=self.group.failsafe_current_a,
            currents_a={k[1]: a for k, a in zip(alloc.keys, alloc.currents_a, strict=True)})}


class _Baseline:
    """What both baselines share: the room per phase, from the static limit or the CT."""

    def __init__(self, group: GroupConfig, chargers: tuple[ChargerSpec, ...],
                 now_s: float) -> None:
        self.group = group
        self.specs = {c.charger_id: c for c in chargers}
        self.last_ct: CtValues | None = None
        self.cycle_number = 0
        self.max_cycle_ms = 0.0

    def connect(self, charger_id: str, now_s: float) -> None:
        """A plain group keeps no membership state."""

    def disconnect(self, charger_id: str, now_s: float) -> None:
        """A plain group keeps no membership state."""

    def room_a(self, reports: Mapping[str, MemberReport], ct: CtValues | None) -> list[float]:
        """Per site phase: the limit, less other loads and the margin in dynamic mode."""
        g = self.group
        room = [g.limit_a if Phase(p) in g.phases else 0.0 for p in range(3)]
        if g.mode is Mode.STATIC:
            return room
        if ct is not None:
            self.last_ct = ct
        if self.last_ct is None:
            return [0.0, 0.0, 0.0]
        for p in range(3):
            reading = self.last_ct[p]
            if reading is None:
                continue
            other = reading
            if g.ct_placement is CtPlacement.GRID:
                for cid, report in reports.items():
                    wiring = self.specs[cid].wiring
                    for r in report.connectors:
                        for line, amps in enumerate(r.current_a or ()):
                            if wiring[line] == Phase(p):
                                other -= amps
            room[p] = max(0.0, room[p] - max(0.0, other) - g.margin_a)
        return room

    def limits(self, currents: Mapping[str, Mapping[int, float]]) -> dict[str, MasterLimits]:
        self.cycle_number += 1
        return {cid: MasterLimits(term=1, cycle=self.cycle_number, valid_for_s=LEASE_S,
                                  failsafe_current_a=self.group.failsafe_current_a,
                                  currents_a=dict(per))
                for cid, per in currents.items()}

    def phases_of(self, cid: str) -> tuple[int, ...]:
        return tuple(int(p) for p in self.specs[cid].wiring if p is not None)


def _floor(amps: float) -> float:
    amps = math.floor(amps * 10 + 1e-9) / 10
    return amps if amps >= MIN_A else 0.0


class EqualSplitController(_Baseline):
    """The room on each phase divided equally among the plugged-in connectors on it."""

    def cycle(self, now_s: float, reports: Mapping[str, MemberReport],
              ct: CtValues | None) -> Mapping[str, MasterLimits]:
        started = time.perf_counter()
        room = self.room_a(reports, ct)
        plugged = [(cid, r.connector_id) for cid, rep in reports.items() for r in rep.connectors
                   if r.pilot_state in (PilotState.B, PilotState.C)]
        count = [0, 0, 0]
        for cid, _ in plugged:
            for p in self.phases_of(cid):
                count[p] += 1
        per_charger = {cid: sum(1 for c, _ in plugged if c == cid) for cid in reports}
        currents: dict[str, dict[int, float]] = {
            cid: {r.connector_id: 0.0 for r in rep.connectors} for cid, rep in reports.items()}
        for cid, k in plugged:
            spec = self.specs[cid]
            share = min([room[p] / count[p] for p in self.phases_of(cid)]
                        + [spec.connector_max_a, spec.current_limit_a / per_charger[cid]])
            currents[cid][k] = _floor(share)
        out = self.limits(currents)
        self.max_cycle_ms = max(self.max_cycle_ms, (time.perf_counter() - started) * 1000)
        return out


class FirstComeController(_Baseline):
    """Each connector keeps what was left when it was plugged in; no rebalancing."""

    def __init__(self, group: GroupConfig, chargers: tuple[ChargerSpec, ...],
                 now_s: float) -> None:
        super().__init__(group, chargers, now_s)
        self.grants: dict[tuple[str, int], float] = {}

    def cycle(self, now_s: float, reports: Mapping[str, MemberReport],
              ct: CtValues | None) -> Mapping[str, MasterLimits]:
        started = time.perf_counter()
        room = self.room_a(reports, ct)  # the room before any grant
        for cid, rep in reports.items():
            for r in rep.connectors:
                if r.pilot_state not in (PilotState.B, PilotState.C):
                    self.grants.pop((cid, r.connector_id), None)
        used = [0.0, 0.0, 0.0]
        for (cid, _), amps in self.grants.items():
            for p in self.phases_of(cid):
                used[p] += amps
        for cid, rep in sorted(reports.items()):
            spec = self.specs[cid]
            for r in rep.connectors:
                key = (cid, r.connector_id)
                if key in self.grants or r.pilot_state not in (PilotState.B, PilotState.C):
                    continue
                sibling = sum(a for (c, _), a in self.grants.items() if c == cid)
                grant = _floor(min([room[p] - used[p] for p in self.phases_of(cid)]
                                   + [spec.connector_max_a, spec.current_limit_a - sibling]))
                if grant > 0.0:
                    self.grants[key] = grant
                    for p in self.phases_of(cid):
                        used[p] += grant
        currents = {cid: {r.connector_id: self.grants.get((cid, r.connector_id), 0.0)
                          for r in rep.connectors} for cid, rep in reports.items()}
        out = self.limits(currents)
        self.max_cycle_ms = max(self.max_cycle_ms, (time.perf_counter() - started) * 1000)
        return out


def make_controller(policy: str, group: GroupConfig, chargers: tuple[ChargerSpec, ...],
                    now_s: float, *, agent_only: bool) -> Controller:
    """The controller for `policy` (one of POLICIES); agent-only groups run the engine
    in the agent under the project policy."""
    if policy == "project":
        if agent_only:
            return AgentOnlyController(group, chargers, now_s)
        return ProjectController(group, chargers, now_s)
    if policy == "equal-split":
        return EqualSplitController(group, chargers, now_s)
    if policy == "first-come":
        return FirstComeController(group, chargers, now_s)
    raise ValueError(f"unknown policy {policy!r}; one of {', '.join(POLICIES)}")
