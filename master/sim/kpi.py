"""The day's measures, as `io7-sim run --json` prints them.

1. Overload: per site phase, the current above the main fuse integrated over the day
   (A·s), leaving out the first 10 s after each rise of the building's load by more than
   2 A in one second (a load step: no controller beats a CT read plus the
   EV's response delay). `peak_overload_a` is the worst excess outside those windows.
2. Energy: delivered (from the EV models' integrated draw) against `energy_possible_kwh`
   (master.sim.possible, the day's optimum); `utilisation` is their ratio.
3. Fairness: Jain's index over sessions of r = received / wanted-while-plugged-in, where
   wanted-while-plugged-in is what the EV could have taken alone in its stay at its own
   maximum (its energy wanted, or less if the stay was too short), and r is capped at 1.
4. Pauses: a session's offer falling from >= 6 A to 0 while the EV still asks for energy.
   Unserved: sessions that received less than 1 % of what they wanted while plugged in.
5. First offer: seconds from plug-in to the first PWM offer of at least 6 A, median and
   90th percentile (nearest rank) over sessions; a session never offered counts its
   whole stay (issue 12 goal: median <= 60 s, p90 <= 15 min).
"""

from __future__ import annotations

import math
from typing import Any

from master.sim.agents import Session
from master.sim.possible import Possible
from master.sim.run import RunResult
from master.sim.scenario import Scenario

UNSERVED_FRACTION = 0.01


def wanted_while_plugged_wh(s: Scenario, session: Session) -> float:
    a = session.arrival
    spec = next(c for c in s.chargers if c.charger_id == a.charger_id)
    cap_a = min(a.ev.onboard_max_a, spec.connector_max_a, spec.current_limit_a)
    stay_h = (a.leave_s - a.at_s) / 3600.0
    return min(a.wanted_wh, cap_a * a.ev.phase_v * a.ev.phases * stay_h)


def first_offer_s(sessions: tuple[Session, ...]) -> tuple[float, float]:
    """Median and p90 (nearest rank) of plug-in to first offer >= 6 A (rule 5)."""
    waits = sorted((x.first_offer_s if x.first_offer_s is not None else x.arrival.leave_s)
                   - x.arrival.at_s for x in sessions)
    if not waits:
        return 0.0, 0.0
    n = len(waits)
    median = (waits[(n - 1) // 2] + waits[n // 2]) / 2.0
    return median, waits[max(0, math.ceil(0.9 * n) - 1)]


def jain(values: list[float]) -> float:
    """Jain's fairness index: 1 when all are equal, 1/n when one gets everything."""
    if not values:
        return 1.0
    total, squares = sum(values), sum(v * v for v in values)
    return 1.0 if squares == 0.0 else total * total / (len(values) * squares)


def measures(s: Scenario, run: RunResult, possible: Possible) -> dict[str, Any]:
    """The KPI object of one run (rules 1-4)."""
    delivered = sum(x.delivered_wh for x in run.sessions)
    ratios, unserved = [], 0
    for x in run.sessions:
        want = wanted_while_plugged_wh(s, x)
        if want <= 0.0:
            continue
        ratios.append(min(1.0, x.delivered_wh / want))
        if x.delivered_wh < UNSERVED_FRACTION * want:
            unserved += 1
    n = len(run.sessions)
    first_median_s, first_p90_s = first_offer_s(run.sessions)
    return {
        "scenario": s.name,
        "policy": run.policy,
        "sessions": n,
        "overload_amp_seconds": [round(v, 2) for v in run.overload_amp_seconds],
        "peak_overload_a": round(run.peak_overload_a, 2),
        "peak_overload_in_step_allowance_a": round(run.peak_overload_in_allowance_a, 2),
        "load_steps": run.load_steps,
        "energy_delivered_kwh": round(delivered / 1000.0, 2),
        "energy_possible_kwh": round(possible.energy_wh / 1000.0, 2),
        "utilisation": round(delivered / possible.energy_wh, 4) if possible.energy_wh else 1.0,
        "fairness_jain": round(jain(ratios), 4),
        "pauses_per_session": round(sum(x.pauses for x in run.sessions) / n, 2) if n else 0.0,
        "contactor_switches": run.contactor_switches,
        "unserved_sessions": unserved,
        "first_offer_median_s": round(first_median_s, 1),
        "first_offer_p90_s": round(first_p90_s, 1),
        "max_cycle_ms": round(run.max_cycle_ms, 2),
    }
