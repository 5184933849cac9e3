"""Rule 3's shares: weights (power, departure) and priority classes over the water-fill.

With every weight 1 and one priority class, this is exactly waterfill.water_fill: max-min
fairness in amps, as before issue 12 §3. Otherwise every admitted connector first gets its
6 A (admission found room for it), and the rest is shared on top of that:

  - class by class, highest first (GroupConfig.priorities, ConnectorInput.priority):
    a class shares what the higher ones left, and the lower ones keep their 6 A;
  - within a class, max-min fair in proportion to each connector's weight:
    * power (GroupConfig.share_by_power = s in [0, 1]): a car loading n phases weighs
      (3 / n) ** s, so with s = 1 a single-phase car gets three times the amps of a
      three-phase one above 6 A (the same power), with s = 0 the same amps;
    * departure (Snapshot.needs): a car whose known energy need and departure ask for
      u = need_a / cap_a of its own cap weighs 1 + (URGENCY_MAX - 1) u. URGENCY_MAX = 2
      bounds what the others lose: at a level L the heaviest car gets at most twice a
      weight-1 car, so every car keeps at least half of what it would have had above
      6 A had nobody's departure been known (its fair floor).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from master.allocation import waterfill
from master.allocation.model import MIN_CURRENT_A

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

URGENCY_MAX = 2.0  # the floor: nobody gets less than 1 / URGENCY_MAX of its share
# Nominal phase voltage (EN 50160, 230 V): turns a need in Wh per hour into amps.
NOMINAL_V = 230.0
_EPS = 1e-9


def power_weight(loads: BoolArray, share_by_power: float) -> FloatArray:
    """(3 / phases loaded) ** share_by_power: 1 for a three-phase car, up to 3 for a
    single-phase one. A car counted on every wired phase (not yet seen) counts as wired."""
    n = np.maximum(1, loads.sum(axis=1))
    if share_by_power <= 0.0:
        return np.ones(len(loads))
    w: FloatArray = (3.0 / n) ** share_by_power
    return w


def urgency_weight(*, departure_in_s: FloatArray, need_wh: FloatArray, energy_wh: FloatArray,
                   loads: BoolArray, cap_a: FloatArray) -> FloatArray:
    """1 + (URGENCY_MAX - 1) x (the share of its own cap a car needs to get its usual
    energy by its usual departure); 1 where either is unknown (NaN) or the time is past."""
    hours = departure_in_s / 3600.0
    left_wh = np.maximum(0.0, need_wh - energy_wh)
    n = np.maximum(1, loads.sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        need_a = left_wh / (hours * NOMINAL_V * n)
        u = np.clip(need_a / np.maximum(cap_a, MIN_CURRENT_A), 0.0, 1.0)
    known = ~np.isnan(u) & (departure_in_s > 0)
    return np.where(known, 1.0 + (URGENCY_MAX - 1.0) * u, 1.0)


def share(members: BoolArray, cap_a: FloatArray, cap_is_charger: BoolArray, loads: BoolArray,
          room_a: FloatArray, charger_limit_a: FloatArray, partner: IntArray,
          weight: FloatArray, klass: FloatArray) -> waterfill.Filling:
    """Rule 3 for the admitted `members` (see the module docstring)."""
    on_w, on_k = weight[members], klass[members]
    plain = bool((np.abs(on_w - 1.0) < _EPS).all()) and (on_k.size == 0 or on_k.min() == on_k.max())
    if plain:
        return waterfill.water_fill(members, cap_a, cap_is_charger, loads, room_a,
                                    charger_limit_a, partner)
    n = len(cap_a)
    base = np.where(members, MIN_CURRENT_A, 0.0)
    room = room_a - base @ loads
    y = np.zeros(n)
    limiter = np.full(n, waterfill.BY_OWN_CAP, dtype=np.int64)
    phase = np.full(n, -1, dtype=np.int64)
    safe_p = np.where(partner >= 0, partner, 0)
    pair = (partner >= 0) & members & members[safe_p] & (loads & loads[safe_p]).any(axis=1)
    # Above 6 A each, a pair sharing a phase has its Charger Current Limit minus 12 A.
    pair_left = charger_limit_a - 2 * MIN_CURRENT_A
    for k in np.unique(on_k)[::-1]:
        stage = members & (klass == k)
        cap_y = np.maximum(0.0, cap_a - MIN_CURRENT_A)
        # A partner in another class: what it took above 6 A (0 if not filled yet) bounds us.
        cross = pair & stage & ~stage[safe_p]
        cap_y = np.where(cross, np.minimum(cap_y, np.maximum(0.0, pair_left - y[safe_p])), cap_y)
        by_charger = cap_is_charger | (cross & (cap_y < cap_a - MIN_CURRENT_A - _EPS))
        f = waterfill.water_fill(stage, np.where(stage, cap_y, 0.0), by_charger, loads,
                                 room - y @ loads, pair_left, partner, weight)
        y[stage] = f.current_a[stage]
        limiter[stage], phase[stage] = f.limiter[stage], f.phase[stage]
    return waterfill.Filling(current_a=np.where(members, MIN_CURRENT_A + y, 0.0),
                             limiter=limiter, phase=phase)
