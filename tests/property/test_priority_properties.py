"""Priority classes (issue 12 §3): a lower class is never starved past its bound.

A group on one phase with room for `slots` cars at 6 A; `high` class-1 cars want power
all the time, and one class-0 car plugs in at t = 10 s. Whatever the room and timings, the
class-0 car never waits longer than priority_max_starve_s + min_run_s (plus settle_s and
a few cycles for the hand-over) in one stretch. The engine runs on virtual time, 2 s per cycle."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from master.allocation import allocate
from master.allocation.model import Snapshot
from tests.alloc_support import L1, charger, conn, group, single

STEP_S = 2.0
# The turn is taken one cycle after the bound; the car's increase then waits settle_s (5 s)
# for the paused car's decrease to take effect (make before break), and a cycle more.
SETTLE_S = 5.0
HAND_OVER_S = SETTLE_S + 3 * STEP_S


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(high=st.integers(1, 4), slots=st.integers(1, 3), spare_a=st.floats(0.0, 5.9),
       starve_s=st.sampled_from([120.0, 600.0]),
       min_run_s=st.sampled_from([0.0, 60.0, 300.0]),
       min_pause_s=st.sampled_from([0.0, 60.0]),
       rotation_s=st.sampled_from([900.0, 86400.0]),
       hysteresis_a=st.sampled_from([0.0, 1.0, 4.0]),
       lines_on=st.booleans())
def test_a_lower_class_waits_at_most_the_bound(high: int, slots: int, spare_a: float,
                                               starve_s: float, min_run_s: float,
                                               min_pause_s: float, rotation_s: float,
                                               hysteresis_a: float, lines_on: bool) -> None:
    g = group(limit_a=slots * 6.0 + spare_a, phases=(L1,), priority_max_starve_s=starve_s,
              min_run_s=min_run_s, min_pause_s=min_pause_s, rotation_period_s=rotation_s,
              resume_hysteresis_a=hysteresis_a, priorities=(("low", 0, 0),),
              settle_s=SETTLE_S)
    lines = (True, False, False) if lines_on else None
    highs = [charger(f"h{i}", conn(1, wiring=single(L1), ev_lines=lines, priority=1))
             for i in range(high)]
    low_idle = charger("low", conn(1, wiring=single(L1), wants=False))
    low_on = charger("low", conn(1, wiring=single(L1), ev_lines=lines))
    state, waited, longest = None, 0.0, 0.0
    horizon = 2 * (starve_s + min_run_s) + 600.0
    now = 0.0
    while now < horizon:
        a = allocate(Snapshot(now_s=now, group=g,
                              chargers=(*highs, low_idle if now < 10 else low_on)), state)
        state = a.state
        if now >= 10:
            waited = waited + STEP_S if a.current_a("low", 1) == 0.0 else 0.0
            longest = max(longest, waited)
        now += STEP_S
    assert longest <= starve_s + min_run_s + HAND_OVER_S, (longest, starve_s, min_run_s)
