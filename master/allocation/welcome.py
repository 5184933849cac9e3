"""The welcome slot: every newly plugged car gets a first offer within about a minute.

A car that wants power and has not been offered anything since (a "new" car) is admitted
in its own pass at 6 A wherever 6 A fits on every phase it may load (every wired phase
while its lines are unknown), without the resume hysteresis (admission.py, pass 3).
Within seconds its meter shows the lines it really loads (phases.py) and the driver sees
charging start. When the site is full, `borrow` makes one slot: it pauses running cars
(lenders) whose room lets the longest-waiting new car fit, for `WELCOME_S`; then the
lenders come back first (admission pass 2) and the new car waits like any other, now
counted on its real lines. One borrowed slot at a time (`MAX_BORROWED`), so a queue of
new cars takes turns and at most a few running cars pause at any moment.

Lenders, in order: cars that draw nothing (full: they lose nothing), then the most energy
this session; each must have run `min_run_s` (or be idle), and must load a phase the new
car is short of.

Numbers. `WELCOME_S` = 45 s: a lender's decrease takes `settle_s` (5 s) before its room
may be used (make before break), the agent raises an offer at most every 5 s, the slowest
EVs follow within ~10 s (15 s in the simulator), and the agent's mask needs a meter sample
or two after that: 5 + 5 + 15 + 2 = 27 s worst case before the car draws and is seen,
and 45 s leaves the driver time to see it charge. Ten cars plugged in at once on a full
site then all have a first offer within 10 x 45 s = 7.5 min (issue 12: p90 within 15 min),
each borrowed slot costing one running car one pause of ~50 s.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from master.allocation.model import MIN_CURRENT_A

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

WELCOME_S = 45.0
MAX_BORROWED = 1  # welcome slots made by pausing others, at any one time
# A lender not back within this long (the room went, say, to a building load step)
# waits like any other paused car: with the hysteresis and its rotation turn.
LENDER_GIVE_UP_S = 600.0
_EPS = 1e-9


def borrow(*, order: IntArray, new: BoolArray, may_lend: BoolArray, idle: BoolArray,
           energy_wh: FloatArray, loads: BoolArray, rem: FloatArray, blocked: BoolArray,
           lender_out: bool) -> tuple[BoolArray, BoolArray]:
    """One welcome slot for the first new car in fair `order` that has no room, made by
    pausing lenders; returns (lent, borrowed) masks, both empty when no slot is made (a
    slot is already out, or no set of lenders makes it fit). Updates `rem`."""
    n = len(new)
    lent, borrowed = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if lender_out or MAX_BORROWED < 1 or not np.count_nonzero(new & ~blocked):
        return lent, borrowed
    first = order[(new & ~blocked)[order]]
    # Lenders: idle first, then the most energy this session, then row.
    rows = np.flatnonzero(may_lend)
    if rows.size == 0:
        return lent, borrowed
    pref = rows[np.lexsort((rows, -energy_wh[rows], ~idle[rows]))]
    for j in first:
        need = loads[j]
        short = need & (rem < MIN_CURRENT_A - _EPS)
        if not np.count_nonzero(short):
            continue  # fits already (the passes refused it for a charger pair): not ours
        freed = rem.copy()
        chosen = []
        for k in pref:
            if not np.count_nonzero(loads[k] & short):
                continue
            chosen.append(k)
            freed = freed + MIN_CURRENT_A * loads[k]
            short = need & (freed < MIN_CURRENT_A - _EPS)
            if not np.count_nonzero(short):
                break
        if np.count_nonzero(short):
            continue
        lent[chosen] = True
        borrowed[j] = True
        rem[:] = freed - MIN_CURRENT_A * need
        return lent, borrowed
    return lent, borrowed
