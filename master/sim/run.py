"""Run a scenario in virtual time: the master's and agents' pure cores against hw.sim.

Each virtual second, in the order a real cycle has:
 1. EVs arrive and leave; every EV model is integrated up to `t`.
 2. Events: a charger offline drops its stream (the master sees it go); the CT kit may be
    silent; extra building load may be switched on.
 3. The physical grid at `t`: the building (hw.sim.site) plus every EV's draw, per site
    phase. The overload KPI is measured here, against the main fuse.
 4. Each group's CT kit reads its phases (the grid, or the other loads only); its master
    (or a baseline) takes the reachable agents' reports and the reading, and sends Limits.
 5. At `t + 0.25 s` every agent steps: limit applier (lease, 5 s increase rule), connector
    machines, PWM offers and contactors to the EVs, which follow after their own delay.
No sleeps and no clocks: a day of 20 connectors takes seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hw.sim.site import SiteModel
from master.allocation import CtPlacement
from master.allocation.model import Need
from master.sim.agents import Session, SimAgent
from master.sim.controllers import Controller, ProjectController, make_controller
from master.sim.scenario import Event, Scenario, check

AGENT_STEP_AFTER_S = 0.25  # the agent's 250 ms step after the master's cycle
LIMITS_IN_FLIGHT_S = 0.01  # gRPC on a LAN: Limits arrive within milliseconds
LOAD_STEP_ALLOWANCE_S = 10.0  # no controller beats a CT read plus an EV's response delay
# A rise of the building's load by more than this within one second is a load step. Fixed
# (the default group margin), not the tuned margin: the KPI must not bend to the tuning.
STEP_THRESHOLD_A = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    """Per virtual second: grid current per site phase, fuse, each connector's offer."""

    t_s: npt.NDArray[np.float64]
    grid_a: npt.NDArray[np.float64]  # (n, 3)
    fuse_a: tuple[float, float, float]
    connectors: tuple[tuple[str, int], ...]
    offered_a: npt.NDArray[np.float64]  # (n, connectors)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    policy: str
    sessions: tuple[Session, ...]
    overload_amp_seconds: tuple[float, float, float]
    peak_overload_a: float  # outside the load-step allowance
    peak_overload_in_allowance_a: float
    load_steps: int
    contactor_switches: int
    max_cycle_ms: float
    trace: Trace


def _membership(now: float, agents: dict[str, SimAgent], controllers: dict[str, Controller],
                connected: set[str], offline_events: list[Event]) -> None:
    """Charger-offline events: the master sees the stream go, and come back."""
    for cid, agent in agents.items():
        offline = any(e.charger_id == cid and e.active(now) for e in offline_events)
        controller = controllers[agent.spec.group]
        if offline and cid in connected:
            controller.disconnect(cid, now)
            connected.discard(cid)
        elif not offline and cid not in connected:
            controller.connect(cid, now)
            connected.add(cid)


def known_needs(agents: Iterable[SimAgent], group: str, now_s: float,
                share: float) -> tuple[Need, ...]:
    """The departure and energy wanted of the cars of `group` whose (arrival time x
    2654435761) mod 1000 falls below share x 1000: a fixed, spread-out share of the day's
    cars, as if the master had learned their cards' habits exactly (an upper bound on
    what master.habits can give; the seeded days are separate days with no card history,
    so feeding the engine directly measures the rule, not the learning)."""
    out = []
    for agent in agents:
        if agent.spec.group != group:
            continue
        for cid, s in agent.sessions.items():
            a = s.arrival
            if (int(a.at_s) * 2654435761) % 1000 < share * 1000 and a.leave_s > now_s:
                out.append(Need(charger_id=agent.spec.charger_id, connector_id=cid,
                                departure_in_s=a.leave_s - now_s, energy_wh=a.wanted_wh))
    return tuple(out)


def simulate(scenario: Scenario, policy: str = "project",
             progress: Callable[[float], None] | None = None,
             known_share: float = 0.0) -> RunResult:
    """Run `scenario` under `policy` (master.sim.controllers.POLICIES). ScenarioError if
    the scenario does not hold together (e.g. a Minimise group without room).
    `known_share`: the share of cars whose departure and energy the project's master is
    told (as if learned per card, master.habits: `known_needs`)."""
    check(scenario)
    start, end = int(scenario.start_s), math.ceil(scenario.end_s)
    site = SiteModel(scenario.site)
    groups = {g.config.name: g for g in scenario.groups}
    agents = {c.charger_id: SimAgent(c, initial_failsafe_a=groups[c.group].config
                                     .failsafe_current_a, now_s=start)
              for c in scenario.chargers}
    controllers: dict[str, Controller] = {}
    for name, g in groups.items():
        members = tuple(c for c in scenario.chargers if c.group == name)
        controllers[name] = make_controller(policy, g.config, members, float(start),
                                            agent_only=g.agent_only)
    connected: set[str] = set()
    pending = list(scenario.arrivals)
    keys = tuple((c.charger_id, k) for c in scenario.chargers
                 for k in range(1, c.connectors + 1))
    n = end - start
    grid_trace = np.zeros((n, 3))
    offered_trace = np.zeros((n, len(keys)))
    fuse = scenario.fuse_a
    over_as = [0.0, 0.0, 0.0]
    peak, peak_allowed, steps = 0.0, 0.0, 0
    threshold = STEP_THRESHOLD_A
    allowance_until = -math.inf
    previous_building: list[float] | None = None
    offline_events = [e for e in scenario.events if e.kind == "charger_offline"]
    silent_events = [e for e in scenario.events if e.kind == "ct_silent"]

    for i, t in enumerate(range(start, end)):
        now = float(t)
        while pending and pending[0].at_s <= now:
            a = pending.pop(0)
            agents[a.charger_id].plug(a)
        quiet = all(not ag.sessions and ag.at_rest() for ag in agents.values())
        if not quiet:
            for agent in agents.values():
                agent.unplug_departed(now)
                agent.advance(now)
            _membership(now, agents, controllers, connected, offline_events)

        extra = scenario.extra_load_a(now)
        base = site.phase_currents_a(now)
        building = [base[p] + extra[p] for p in range(3)]
        grid = list(building)
        for agent in agents.values():
            for k in agent.sessions:
                for line, amps in enumerate(agent.line_currents_a(k)):
                    phase = agent.spec.wiring[line]
                    if phase is not None:
                        grid[phase] += amps
        if previous_building is not None and any(
                building[p] - previous_building[p] > threshold for p in range(3)):
            steps += 1
            allowance_until = now + LOAD_STEP_ALLOWANCE_S
        previous_building = building
        for p in range(3):
            over = grid[p] - fuse[p]
            if over > 0.0:
                if now < allowance_until:
                    peak_allowed = max(peak_allowed, over)
                else:
                    over_as[p] += over
                    peak = max(peak, over)
        grid_trace[i] = grid
        if quiet:  # no EV anywhere, every socket at rest: cycles would change nothing
            continue

        for name, g in groups.items():
            silent = any(e.group in ("*", name) and e.active(now) for e in silent_events)
            seen = grid if g.config.ct_placement is CtPlacement.GRID else building
            ct = None if silent else tuple(seen[p] if p in g.config.phases else None
                                           for p in range(3))
            reports = {cid: agents[cid].report(now) for cid in sorted(connected)
                       if agents[cid].spec.group == name}
            controller = controllers[name]
            if known_share > 0.0 and isinstance(controller, ProjectController):
                limits = controller.cycle(now, reports, ct,  # type: ignore[arg-type]
                                          known_needs(agents.values(), name, now, known_share))
            else:
                limits = controller.cycle(now, reports, ct)  # type: ignore[arg-type]
            for cid, msg in limits.items():
                if cid in connected:
                    agents[cid].on_limits(msg, now + LIMITS_IN_FLIGHT_S)
        for agent in agents.values():
            agent.step(now + AGENT_STEP_AFTER_S)
        for j, (cid, k) in enumerate(keys):
            offered_trace[i, j] = agents[cid].pwm_a[k]
        if progress is not None and i % 3600 == 0:
            progress((t - start) / max(1, n))

    sessions: list[Session] = []
    for agent in agents.values():
        agent.unplug_departed(float(end), everyone=True)
        sessions.extend(agent.finished)
    sessions.sort(key=lambda s: (s.arrival.at_s, s.arrival.charger_id, s.arrival.connector_id))
    return RunResult(
        policy=policy, sessions=tuple(sessions),
        overload_amp_seconds=(over_as[0], over_as[1], over_as[2]),
        peak_overload_a=peak, peak_overload_in_allowance_a=peak_allowed, load_steps=steps,
        contactor_switches=sum(a.contactor_switches for a in agents.values()),
        max_cycle_ms=max(c.max_cycle_ms for c in controllers.values()),
        trace=Trace(t_s=np.arange(start, end, dtype=float), grid_a=grid_trace, fuse_a=fuse,
                    connectors=keys, offered_a=offered_trace))
