"""Max-min fair sharing ("water-filling") over the per-phase constraint tree.

Theory of operation. Every admitted connector i gets one current x_i, drawn on each
site phase its EV loads. Constraints:

  - x_i <= cap_i (its hard max, already including its Charger Current Limit);
  - per charger and per site phase: the connectors of one charger that load the same
    phase sum to at most the Charger Current Limit (an io7 has two connectors, so this
    is one pair constraint per charger);
  - per site phase p: the connectors loading p sum to at most room_p.

Progressive filling raises one water level L for all unfrozen connectors, each drawing
w_i x L (its weight: 1 everywhere unless sharing by power or by departure, sharing.py);
a connector freezes when its own cap, its charger pair, or a phase it loads is full. The result is
the max-min fair allocation, and it is work-conserving: no frozen connector could get
more without breaking a constraint. The pair constraint has a closed form (a pair
shares C as min(cap, max(C/2, C - smaller cap))), so the loop only steps through phase
saturations: at most three rounds, each a sort, whatever the number of connectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

# What froze a connector.
BY_OWN_CAP = 0
BY_CHARGER = 1
BY_PHASE = 2

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Filling:
    current_a: FloatArray
    limiter: IntArray  # BY_OWN_CAP, BY_CHARGER or BY_PHASE
    phase: IntArray  # the saturated site phase for BY_PHASE, else -1


def water_fill(
    members: BoolArray,
    cap_a: FloatArray,
    cap_is_charger: BoolArray,
    loads: BoolArray,
    room_a: FloatArray,
    charger_limit_a: FloatArray,
    partner: IntArray,
    weight: FloatArray | None = None,
) -> Filling:
    """Share `room_a` (per site phase) max-min fairly among `members`, in proportion to
    `weight` (> 0; None: all 1, plain max-min in amps).

    `cap_a` is each connector's own cap, already at most its charger limit;
    `cap_is_charger` says the charger limit is what set it. Non-members get 0.
    """
    n = len(cap_a)
    w = np.ones(n) if weight is None else weight
    x = np.zeros(n)
    limiter = np.full(n, BY_OWN_CAP, dtype=np.int64)
    phase = np.full(n, -1, dtype=np.int64)
    paired = _paired(members, loads, partner)
    active = members.copy()
    for _ in range(4):  # one round per saturated phase, plus the last
        if not np.count_nonzero(active):
            break
        e, e_charger = _effective_caps(active, x, cap_a, cap_is_charger, paired, partner,
                                       charger_limit_a, w)
        used = x @ loads
        level, p_star = np.inf, -1
        for p in range(3):
            on_p = active & loads[:, p]
            if np.count_nonzero(on_p):
                lp = _saturation_level(e[on_p], float(room_a[p] - used[p]), w[on_p])
                if lp < level:
                    level, p_star = lp, p
        if p_star < 0:
            x[active] = e[active]
            limiter[active] = np.where(e_charger[active], BY_CHARGER, BY_OWN_CAP)
            break
        at_cap = active & (e <= w * level + _EPS)
        on_star = active & loads[:, p_star] & ~at_cap
        x[at_cap] = e[at_cap]
        limiter[at_cap] = np.where(e_charger[at_cap], BY_CHARGER, BY_OWN_CAP)
        x[on_star] = w[on_star] * level
        limiter[on_star] = BY_PHASE
        phase[on_star] = p_star
        active &= ~(at_cap | on_star)
    return Filling(current_a=x, limiter=limiter, phase=phase)


def _paired(members: BoolArray, loads: BoolArray, partner: IntArray) -> BoolArray:
    """Members whose charger partner is also a member and loads a phase they load."""
    paired = members & (partner >= 0)
    rows = np.flatnonzero(paired)
    other = partner[rows]
    paired[rows] = members[other] & (loads[rows] & loads[other]).any(axis=1)
    return paired


def _effective_caps(
    active: BoolArray,
    x: FloatArray,
    cap_a: FloatArray,
    cap_is_charger: BoolArray,
    paired: BoolArray,
    partner: IntArray,
    charger_limit_a: FloatArray,
    w: FloatArray,
) -> tuple[FloatArray, BoolArray]:
    """Each active connector's cap with its charger pair's share applied: a pair sharing
    C rising together splits it as min(cap, max(C w / (w + w_other), C - cap_other))."""
    e = cap_a.copy()
    by_charger = cap_is_charger.copy()
    rows = np.flatnonzero(active & paired)
    if rows.size:
        other = partner[rows]
        limit = charger_limit_a[rows]
        both_rising = active[other]
        pair_sum = cap_a[rows] + cap_a[other]
        share = limit * w[rows] / (w[rows] + w[other])
        split = np.maximum(share, limit - np.minimum(cap_a[rows], cap_a[other]))
        tau = np.where(pair_sum <= limit + _EPS, np.inf, split)
        tau = np.where(both_rising, tau, limit - x[other])
        tighter = tau < e[rows]
        e[rows] = np.minimum(e[rows], tau)
        by_charger[rows] |= tighter
    return e, by_charger


def _saturation_level(caps: FloatArray, room: float, w: FloatArray) -> float:
    """The level L at which sum(min(w L, cap)) reaches `room`; inf if it never does."""
    if caps.sum() <= room + _EPS:
        return float("inf")
    if room <= 0:
        return 0.0
    ratio = caps / w
    order = np.argsort(ratio, kind="stable")
    s, ws = caps[order], w[order]
    below = np.concatenate(([0.0], np.cumsum(s)[:-1]))  # sum of the k smallest
    rest = np.cumsum(ws[::-1])[::-1]  # weight of the k-th and every larger one
    levels = (room - below) / rest
    k = int(np.argmax(levels <= ratio[order] + _EPS))
    return float(levels[k])
