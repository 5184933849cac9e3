"""io7-sim regression: whole days pinned to their exact KPIs and a digest of every second.

Pinned before the simulator was made faster (issue 12 §1), so a speed-up that changes any
result fails here. A change of the allocation rules legitimately moves these numbers:
re-pin by running

    .venv/bin/python -m tests.master.test_sim_regression

and pasting what it prints over `EXPECTED` (say in the commit why the numbers moved).
Pinned before the speed-up, re-pinned after 0214eaf (welcome slot, phases kept) and when
the rotation period became 90 min (issue 12 §3: the depot window's rotations move); the
windows below pinned on 6e4f08b+, whose whole days gave the pre-speed-up results exactly.
The days are windows, so the suite stays fast (about a minute of CPU for both; the whole
days are `make bench-sim`'s): depot-events from 05:00 to 10:00 (rotation and pauses, the
morning's arrivals, a charger offline for ten minutes at 09:30) with its one-minute CT
silence and its load step moved into the window (09:45 and 09:50-10:00), and the morning
peak of a generated office day of 20 sockets (06:30-09:30, every car arriving).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from master.sim.generator import random_day
from master.sim.kpi import measures
from master.sim.possible import energy_possible
from master.sim.run import RunResult, simulate
from master.sim.scenario import Scenario, load_scenario

SCENARIO_DIR = Path(__file__).parents[2] / "deploy" / "scenarios"
# Wall-clock measures: never pinned.
UNPINNED = ("max_cycle_ms",)
H = 3600.0


def _scenario(name: str) -> Scenario:
    """The pinned window of each day (module docstring)."""
    if name == "office-20-sockets-seed-7":
        day = random_day(7, chargers=10)
        return replace(day, start_s=6.5 * H, end_s=9.5 * H)
    day = load_scenario(SCENARIO_DIR / f"{name}.toml")
    moved = {"ct_silent": (9.75 * H, 9.75 * H + 60), "load_step": (9.8333 * H, 10 * H)}
    events = tuple(replace(e, from_s=moved[e.kind][0], to_s=moved[e.kind][1])
                   if e.kind in moved else e for e in day.events)
    return replace(day, end_s=10 * H, events=events)


def first_offers_s(run: RunResult) -> list[float]:
    """Per session, seconds from plugging in to the first offer (>= 6 A); a session never
    offered anything counts its whole stay."""
    column = {key: j for j, key in enumerate(run.trace.connectors)}
    t = run.trace.t_s
    out = []
    for s in run.sessions:
        a = s.arrival
        j = column[(a.charger_id, a.connector_id)]
        stay = (t >= a.at_s) & (t < a.leave_s)
        offered = np.flatnonzero(stay & (run.trace.offered_a[:, j] > 0.0))
        out.append(float(t[offered[0]] - a.at_s) if offered.size else a.leave_s - a.at_s)
    return out


def trace_digest(run: RunResult) -> str:
    """SHA-256 (first 16 hex digits) of the grid currents and every offer, per second,
    to the µA: any change of what happened in the day changes it."""
    h = hashlib.sha256()
    for arr in (run.trace.grid_a, run.trace.offered_a):
        h.update((np.round(arr, 6) + 0.0).tobytes())  # + 0.0: -0.0 and 0.0 hash alike
    return h.hexdigest()[:16]


def day_kpis(name: str) -> dict[str, Any]:
    """What `EXPECTED` pins for one day: the KPI object, first offers, the trace digest."""
    scenario = _scenario(name)
    run = simulate(scenario, "project")
    kpis = {k: v for k, v in measures(scenario, run, energy_possible(scenario)).items()
            if k not in UNPINNED}
    kpis["first_offer_max_s"] = max(first_offers_s(run))  # median and p90: in measures
    kpis["trace_digest"] = trace_digest(run)
    return kpis


EXPECTED: dict[str, dict[str, Any]] = {
    "depot-events": {
        "scenario": "depot-events",
        "policy": "project",
        "sessions": 12,
        "overload_amp_seconds": [0.0, 0.0, 0.0],
        "peak_overload_a": 0.0,
        "peak_overload_in_step_allowance_a": 24.32,
        "load_steps": 57,
        "energy_delivered_kwh": 150.97,
        "energy_possible_kwh": 163.9,
        "utilisation": 0.9211,
        "fairness_jain": 0.6463,
        "pauses_per_session": 1.33,
        "contactor_switches": 48,
        "unserved_sessions": 0,
        "first_offer_median_s": 6.2,
        "first_offer_p90_s": 8.2,
        "first_offer_max_s": 9.0,
        "trace_digest": "de84e2f8b54c23b7",
    },
    "office-20-sockets-seed-7": {
        "scenario": "random-7",
        "policy": "project",
        "sessions": 15,
        "overload_amp_seconds": [0.0, 0.0, 0.0],
        "peak_overload_a": 0.0,
        "peak_overload_in_step_allowance_a": 0.42,
        "load_steps": 33,
        "energy_delivered_kwh": 86.92,
        "energy_possible_kwh": 93.02,
        "utilisation": 0.9344,
        "fairness_jain": 0.4845,
        "pauses_per_session": 0.47,
        "contactor_switches": 47,
        "unserved_sessions": 3,
        "first_offer_median_s": 6.2,
        "first_offer_p90_s": 8.2,
        "first_offer_max_s": 9.0,
        "trace_digest": "7dc07db297bf03c2",
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_day_gives_exactly_its_pinned_results(name: str) -> None:
    assert day_kpis(name) == EXPECTED[name]


if __name__ == "__main__":
    print("EXPECTED: dict[str, dict[str, Any]] = {")
    for day in ("depot-events", "office-20-sockets-seed-7"):
        print(f'    "{day}": {{')
        for key, value in day_kpis(day).items():
            print(f'        "{key}": {value!r},'.replace("'", '"'))
        print("    },")
    print("}")
