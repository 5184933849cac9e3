"""Demand capping: give away what an EV does not take, and probe now and then.

An EV whose draw stays clearly below what it is offered (more than
`demand_cap_threshold_a` below, for `demand_cap_after_s`) is capped at its draw plus
`demand_cap_headroom_a` (never below 6 A), and the current it leaves goes to the others.
The cap follows the draw down; when the EV draws close to its cap again the cap is
lifted at once. Every `demand_probe_every_s` the cap is lifted for one timer period so
an EV that could take more (battery warmed up, preconditioning over) gets the chance.

An EV that draws nothing at all (below `IDLE_BELOW_A`: full, or on its own timer) is
capped as soon as it has had `IDLE_FOLLOW_S` to follow its offer, not after
`demand_cap_after_s`: a probe of a full car then holds its share for seconds, not a
minute, and the room goes back to the others at once (issue 12 §2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from master.allocation.model import MIN_CURRENT_A, GroupConfig

FloatArray = npt.NDArray[np.float64]
# The agent's threshold for "the EV loads this line" (agent/wire.py, phases_in_use).
IDLE_BELOW_A = 1.0

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class DemandCaps:
    below_since_s: FloatArray
    cap_a: FloatArray  # NaN: no cap
    capped_since_s: FloatArray


def update_demand_caps(
    *,
    now_s: float,
    group: GroupConfig,
    charging: BoolArray,
    offered_a: FloatArray,
    draw_a: FloatArray,
    below_since_s: FloatArray,
    cap_a: FloatArray,
    capped_since_s: FloatArray,
) -> DemandCaps:
    """The caps for this cycle from last cycle's offer and this cycle's measured draw.

    `charging` marks connectors that were offered at least 6 A and still want power;
    every timer of the others is reset.
    """
    below = charging & (draw_a < offered_a - group.demand_cap_threshold_a)
    since = np.where(below, np.where(np.isnan(below_since_s), now_s, below_since_s), np.nan)
    idle = draw_a < IDLE_BELOW_A
    after = min(group.idle_cap_after_s, group.demand_cap_after_s)
    due = below & (now_s - since >= np.where(idle, after, group.demand_cap_after_s))
    cap = np.where(due, np.maximum(MIN_CURRENT_A, draw_a + group.demand_cap_headroom_a), np.nan)
    capped = np.where(due, np.where(np.isnan(capped_since_s), now_s, capped_since_s), np.nan)
    probe = due & (now_s - capped >= group.demand_probe_every_s)
    # A probe lifts the cap and restarts the timer: uncapped for demand_cap_after_s.
    cap = np.where(probe, np.nan, cap)
    capped = np.where(probe, np.nan, capped)
    since = np.where(probe, now_s, since)
    del cap_a  # the cap is recomputed from the draw each cycle; only timers carry over
    return DemandCaps(below_since_s=since, cap_a=cap, capped_since_s=capped)
