"""io7-sim regression: whole days pinned to their exact KPIs and a digest of every second.

Pinned before the simulator was made faster (issue 12 §1), so a speed-up that changes any
result fails here. A change of the allocation rules legitimately moves these numbers:
re-pin by running

    .venv/bin/python -m tests.master.test_sim_regression

and pasting what it prints over `EXPECTED` (say in the commit why the numbers moved).
Pinned before the speed-up, re-pinned after 0214eaf (welcome slot, phases kept).
The days: depot-events (rotation and pauses, a charger offline for ten minutes, the CT
kit silent for a minute, a load step) and a generated office day of 20 sockets over 24 h
(the size the README's speed figure is for).
"""

from __future__ import annotations

import hashlib
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


def _scenario(name: str) -> Scenario:
    if name == "office-20-sockets-seed-7":
        return random_day(7, chargers=10)
    return load_scenario(SCENARIO_DIR / f"{name}.toml")


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
        "sessions": 14,
        "overload_amp_seconds": [0.0, 0.0, 0.0],
        "peak_overload_a": 0.0,
        "peak_overload_in_step_allowance_a": 15.82,
        "load_steps": 140,
        "energy_delivered_kwh": 414.52,
        "energy_possible_kwh": 462.47,
        "utilisation": 0.8963,
        "fairness_jain": 0.9258,
        "pauses_per_session": 1.71,
        "contactor_switches": 86,
        "unserved_sessions": 0,
        "first_offer_median_s": 6.2,
        "first_offer_p90_s": 9.2,
        "first_offer_max_s": 10.0,
        "trace_digest": "2af0d7f94151f154",
    },
    "office-20-sockets-seed-7": {
        "scenario": "random-7",
        "policy": "project",
        "sessions": 37,
        "overload_amp_seconds": [0.0, 0.0, 0.0],
        "peak_overload_a": 0.0,
        "peak_overload_in_step_allowance_a": 0.56,
        "load_steps": 208,
        "energy_delivered_kwh": 698.62,
        "energy_possible_kwh": 784.75,
        "utilisation": 0.8902,
        "fairness_jain": 0.8477,
        "pauses_per_session": 0.95,
        "contactor_switches": 148,
        "unserved_sessions": 0,
        "first_offer_median_s": 8.2,
        "first_offer_p90_s": 10.2,
        "first_offer_max_s": 497.0,
        "trace_digest": "b326dd7f4d90c49d",
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
