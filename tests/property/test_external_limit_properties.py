"""Invariants of the allocation under external site limits (issue 12 §4), for every input.

The budget is recomputed here from the inputs (tests/property/test_allocation_properties
`budget`, lowered per phase to the external limit), so the engine's own accounting
cannot hide a violation.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from master.allocation import EngineState, InfeasibleGroupError, Mode, Snapshot, allocate
from tests.property.test_allocation_properties import budget, check_safety, reserved, snapshots

CAPS = [math.inf, math.inf, 0.0, 3.0, 6.0, 10.0, 16.0, 25.0, 40.0, 100.0]


def capped_budget(snap: Snapshot) -> np.ndarray:
    """`budget` with the group's own limit lowered per phase to the external one."""
    limit, _ = budget(snap)
    if snap.external_limit_a is None:
        return limit
    g, ct = snap.group, snap.ct
    lost = g.mode is Mode.DYNAMIC and (
        ct is None or snap.now_s - ct.taken_at_s > g.ct_timeout_s
        or any(ct.currents_a[p] is None for p in g.phases))
    own = g.static_limit_a if lost else g.limit_a
    return limit - np.maximum(0.0, own - np.array(snap.external_limit_a))


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(snapshots(max_chargers=12), st.lists(st.sampled_from(CAPS), min_size=3, max_size=3),
       st.integers(1, 6))
def test_an_external_limit_below_the_allocation_applies_in_the_same_cycle(
        snap: Snapshot, cap: list[float], warm: int) -> None:
    """Cycles without an external limit, then one whose limit drops below what is
    allocated: that very cycle stays within the lowered budget (decrease at once),
    nothing in (0, 6) A, and the answer is deterministic."""
    state: EngineState | None = None
    for t in range(warm):  # members stay on- or offline: no grant to reserve but fail-safe
        state = allocate(replace(snap, now_s=float(t)), state).state
    try:
        cut = replace(snap, now_s=float(warm), external_limit_a=(cap[0], cap[1], cap[2]))
    except InfeasibleGroupError:
        return
    a = allocate(cut, state)
    b = allocate(cut, state)
    assert a.currents_a == b.currents_a and a.reasons == b.reasons
    room = np.maximum(0.0, capped_budget(cut) - reserved(cut, {}))
    check_safety(cut, a, room)
    for p in cut.group.phases:
        assert a.phases[cut.group.phases.index(p)].limit_a <= cap[p] + 1e-9


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(snapshots(max_chargers=8),
       st.lists(st.lists(st.sampled_from(CAPS), min_size=3, max_size=3), min_size=2,
                max_size=12))
def test_external_limits_coming_and_going_stay_safe(snap: Snapshot,
                                                    caps: list[list[float]]) -> None:
    """The external limit changes every cycle (or lapses: inf on every phase): every
    cycle stays within that cycle's budget."""
    state: EngineState | None = None
    grants: dict[tuple[str, int], tuple[float, float]] = {}
    for t, cap in enumerate(caps):
        cur = replace(snap, now_s=float(t), external_limit_a=(cap[0], cap[1], cap[2]))
        a = allocate(cur, state)
        state = a.state
        room = np.maximum(0.0, capped_budget(cur) - reserved(cur, grants))
        check_safety(cur, a, room)
        for c in cur.chargers:
            if c.online:
                for k in c.connectors:
                    grants[(c.charger_id, k.connector_id)] = (
                        a.current_a(c.charger_id, k.connector_id), float(t))
