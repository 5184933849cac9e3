"""`energy_possible_kwh`: the most any controller could deliver on the same day.

A linear programme over one-minute slots, solved exactly (HiGHS through scipy), so the
utilisation KPI is measured against a true optimum of the day and not a heuristic:
 1. Variables: each session's current per phase in each whole minute it is plugged in,
    0 .. min(EV onboard max, connector hard max, Charger Current Limit).
 2. Each site phase, each minute: the EVs on it fit under the main fuse less the building's
    mean load in that minute; each group's phases fit under the group limit (less the
    building where the CT sees it, dynamic mode).
 3. Each charger, each minute: its two sockets together stay within its Charger Current
    Limit (both sockets share the charger's line 1).
 4. Each session: no more energy than it wants (to its driver's charge limit), and above
    the taper SoC no more current than the EV's taper allows: that limit falls linearly
    with the energy already delivered, so it is linear in cumulative variables.
The controller is also bound by things this bound ignores (the 6 A minimum, response
delays, the margin, knowing the future), so utilisation < 1 is expected; how far below is
the measure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from hw.sim.site import SiteModel
from master.allocation import CtPlacement, Mode
from master.sim.scenario import Arrival, Scenario

SLOT_S = 60.0
SAMPLES_PER_SLOT = 6  # the building's mean load over a minute, from 10 s samples


class PossibleError(RuntimeError):
    """The bound could not be computed (the solver failed): report it, do not guess."""


@dataclass(frozen=True, slots=True)
class Possible:
    energy_wh: float
    per_session_wh: tuple[float, ...]  # in the order of scenario.arrivals


def _cap_a(s: Scenario, a: Arrival) -> float:
    spec = next(c for c in s.chargers if c.charger_id == a.charger_id)
    return min(a.ev.onboard_max_a, spec.connector_max_a, spec.current_limit_a)


def building_a(s: Scenario, slots: int, start_s: float) -> np.ndarray:
    """Mean building load per slot and site phase, A: shape (slots, 3)."""
    site = SiteModel(s.site)
    out = np.zeros((slots, 3))
    for m in range(slots):
        acc = np.zeros(3)
        for j in range(SAMPLES_PER_SLOT):
            t = start_s + m * SLOT_S + (j + 0.5) * SLOT_S / SAMPLES_PER_SLOT
            acc += np.array(site.phase_currents_a(t)) + np.array(s.extra_load_a(t))
        out[m] = acc / SAMPLES_PER_SLOT
    return out


def energy_possible(s: Scenario) -> Possible:
    """Solve the day's bound (rules 1-4). Raises PossibleError if the solver fails."""
    start = s.start_s
    slots = math.ceil((s.end_s - start) / SLOT_S)
    building = building_a(s, slots, start)
    chargers = {c.charger_id: c for c in s.chargers}
    cols: list[tuple[int, int]] = []  # (session, slot) per x variable
    rows_r: list[int] = []
    rows_c: list[int] = []
    vals: list[float] = []
    b_ub: list[float] = []
    row_of: dict[tuple[object, ...], int] = {}

    def put(key: tuple[object, ...], bound: float, col: int, value: float = 1.0) -> None:
        """Coefficient `value` of column `col` in the row `key` (made with `bound`)."""
        if key not in row_of:
            row_of[key] = len(b_ub)
            b_ub.append(bound)
        rows_r.append(row_of[key])
        rows_c.append(col)
        vals.append(value)

    upper: list[float] = []
    gain: list[float] = []
    taper_rows: list[tuple[int, list[int], float]] = []  # (session, its columns, wh per A)
    for i, a in enumerate(s.arrivals):
        first = max(0, math.ceil((a.at_s - start) / SLOT_S))
        last = min(slots, math.floor((a.leave_s - start) / SLOT_S))
        wh_per_a = a.ev.phase_v * a.ev.phases * SLOT_S / 3600.0
        spec = chargers[a.charger_id]
        phases = [p for p in spec.wiring[: a.ev.phases] if p is not None]
        group = s.group_of(a.charger_id).config
        mine: list[int] = []
        for m in range(first, last):
            col = len(cols)
            cols.append((i, m))
            mine.append(col)
            upper.append(_cap_a(s, a))
            gain.append(wh_per_a)
            for p in phases:  # rule 2: the fuse, then the group's limit
                put(("fuse", p, m), max(0.0, s.fuse_a[p] - building[m, p]), col)
                seen = group.mode is Mode.DYNAMIC and group.ct_placement in (
                    CtPlacement.GRID, CtPlacement.OTHER_LOADS)
                room = group.limit_a - (building[m, p] if seen else 0.0)
                put(("group", group.name, p, m), max(0.0, room), col)
            put(("charger", a.charger_id, m), spec.current_limit_a, col)  # rule 3
        for col in mine:  # rule 4
            put(("energy", i), a.wanted_wh, col, wh_per_a)
        if a.ev.target_soc > a.ev.taper_start_soc:
            taper_rows.append((i, mine, wh_per_a))
    # Rule 4, taper: x_m + c * sum_{k<m} x_k <= d, with the SoC reached before slot m.
    for i, mine, wh_per_a in taper_rows:
        ev, soc0 = s.arrivals[i].ev, s.arrivals[i].soc
        slope = (ev.onboard_max_a - ev.taper_end_a) / (1.0 - ev.taper_start_soc)
        c = slope * ev.charge_efficiency * wh_per_a / ev.battery_wh
        d = ev.taper_end_a + slope * (1.0 - soc0)
        for j, col in enumerate(mine):
            put(("taper", i, j), d, col)
            for prev in mine[:j]:
                put(("taper", i, j), d, prev, c)
    if not cols:
        return Possible(energy_wh=0.0, per_session_wh=tuple(0.0 for _ in s.arrivals))
    a_ub = coo_matrix((vals, (rows_r, rows_c)), shape=(len(b_ub), len(cols))).tocsr()
    res = linprog(-np.array(gain), A_ub=a_ub, b_ub=np.array(b_ub),
                  bounds=list(zip([0.0] * len(cols), upper, strict=True)), method="highs")
    if res.status != 0:
        raise PossibleError(f"{s.name}: the bound's linear programme failed: {res.message}")
    per = np.zeros(len(s.arrivals))
    for (i, _), x, g in zip(cols, res.x, gain, strict=True):
        per[i] += x * g
    return Possible(energy_wh=float(-res.fun), per_session_wh=tuple(float(v) for v in per))
