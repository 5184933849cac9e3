"""Invariants of the allocation for every input (Hypothesis).

The bounds are recomputed here from the inputs, independently of the engine's own
accounting, so a bug in the engine's bookkeeping cannot hide a violation.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from master.allocation import (
    MIN_CURRENT_A,
    Allocation,
    ChargerInput,
    ConnectorInput,
    CtPlacement,
    CtReading,
    EngineState,
    GroupConfig,
    InfeasibleGroupError,
    Mode,
    OfflineStrategy,
    Phase,
    Reason,
    Snapshot,
    allocate,
)

TOL = 1e-6
STEP = 0.1  # results are rounded down to 0.1 A
ROTATIONS = [(Phase.L1, Phase.L2, Phase.L3), (Phase.L2, Phase.L3, Phase.L1),
             (Phase.L3, Phase.L1, Phase.L2), (Phase.L1, Phase.L3, Phase.L2)]
EV_LINES = [None, (True, False, False), (True, True, True), (True, True, False)]


# Every strategy is built once: Hypothesis validates each new strategy object on its first
# draw, and rebuilding them per connector cost more than the drawing (a snapshot has up to
# 200 connectors). The choices, and so the examples, are the same.
_MAX_CURRENTS = st.sampled_from([0.0, 5.0, 6.0, 10.0, 13.0, 16.0, 20.0, 32.0])
_EV_LINES = st.sampled_from(EV_LINES)
_MEASURED = st.floats(0, 40, allow_nan=False)
_ENERGIES = st.sampled_from([0.0, 500.0, 5000.0, 20000.0])
_PRIORITIES = st.integers(0, 2)
_ROTATIONS = st.sampled_from(ROTATIONS)
_CHARGER_LIMITS = st.sampled_from([6.0, 10.0, 16.0, 20.0, 32.0, 63.0])
_one_of = lru_cache(maxsize=None)(st.sampled_from)


@st.composite
def connectors(draw: st.DrawFn, cid: int, phases: tuple[Phase, ...]) -> ConnectorInput:
    if len(phases) == 1 or draw(st.booleans()):
        wiring: tuple[Phase | None, ...] = (draw(_one_of(phases)), None, None)
    else:
        wiring = draw(_ROTATIONS)
    return ConnectorInput(
        connector_id=cid,
        wiring=wiring,  # type: ignore[arg-type]
        max_current_a=draw(_MAX_CURRENTS),
        wants_power=draw(st.booleans()) or draw(st.booleans()),
        ev_lines=draw(_EV_LINES),
        measured_a=tuple(draw(_MEASURED) for _ in range(3)),  # type: ignore[arg-type]
        session_energy_wh=draw(_ENERGIES),
        priority=draw(_PRIORITIES),
    )


@st.composite
def chargers(draw: st.DrawFn, i: int, phases: tuple[Phase, ...]) -> ChargerInput:
    n = draw(st.integers(1, 2))
    return ChargerInput(
        charger_id=f"io7-{i:03d}",
        current_limit_a=draw(_CHARGER_LIMITS),
        connectors=tuple(draw(_connectors(k + 1, phases)) for k in range(n)),
        online=draw(st.integers(0, 9)) > 0,
    )


_connectors = lru_cache(maxsize=None)(connectors)
_chargers = lru_cache(maxsize=None)(chargers)


@st.composite
def snapshots(draw: st.DrawFn, max_chargers: int = 100) -> Snapshot:
    phases = draw(st.sampled_from([(Phase.L1, Phase.L2, Phase.L3), (Phase.L2,), (Phase.L3,)]))
    mode = draw(st.sampled_from(Mode))
    limit = draw(st.sampled_from([6.0, 16.0, 25.0, 40.0, 63.0, 100.0, 250.0, 1000.0]))
    group = GroupConfig(
        name="prop",
        phases=phases,
        mode=mode,
        limit_a=limit,
        fallback_limit_a=limit * draw(st.sampled_from([0.25, 0.5, 1.0])),
        ct_placement=draw(st.sampled_from(CtPlacement)),
        margin_a=draw(st.sampled_from([0.0, 2.0, 5.0])),
        offline_strategy=draw(st.sampled_from(OfflineStrategy)),
        resume_hysteresis_a=draw(st.sampled_from([0.0, 1.0])),
        ramp_up_a=80.0,
        settle_s=draw(st.sampled_from([0.0, 5.0])),
    )
    n = draw(st.integers(1, max_chargers))
    members = tuple(draw(_chargers(i, phases)) for i in range(n))
    ct = None
    if draw(st.integers(0, 5)) > 0:
        values = [draw(st.floats(-50, 300, allow_nan=False)) for _ in range(3)]
        if draw(st.integers(0, 9)) == 0:
            values[int(phases[0])] = None  # type: ignore[call-overload]
        ct = CtReading(currents_a=tuple(values), taken_at_s=-draw(st.sampled_from([0, 1, 3, 11])))  # type: ignore[arg-type]
    try:
        return Snapshot(now_s=0.0, group=group, chargers=members, ct=ct)
    except InfeasibleGroupError:
        assume(False)
        raise


def budget(snap: Snapshot) -> tuple[np.ndarray, bool]:
    """Per site phase: limit - other load - margin (rule 0), and whether the CT is fresh."""
    g, ct = snap.group, snap.ct
    if g.mode is Mode.STATIC:
        return np.full(3, g.limit_a), True
    age = None if ct is None else snap.now_s - ct.taken_at_s
    if ct is None or age is None or age > g.ct_timeout_s or any(
        ct.currents_a[p] is None for p in g.phases
    ):
        return np.full(3, g.static_limit_a), True
    own = np.zeros(3)
    for c in snap.chargers:
        if c.online:
            for k in c.connectors:
                for line, p in enumerate(k.wiring):
                    if p is not None:
                        own[p] += k.measured_a[line]
    read = np.array([v or 0.0 for v in ct.currents_a])
    other = read - own if g.ct_placement is CtPlacement.GRID else read
    return g.limit_a - np.maximum(0.0, other) - g.margin_a, age <= g.ct_stale_after_s


def reserved(snap: Snapshot, grants: dict[tuple[str, int], tuple[float, float]]) -> np.ndarray:
    """What offline chargers may draw: last grant until its lease has run out and its
    EV has had settle_s to follow, else fail-safe."""
    g = snap.group
    out = np.zeros(3)
    for c in snap.chargers:
        if c.online:
            continue
        per_phase = np.zeros(3)
        for k in c.connectors:
            fs = g.failsafe_current_a if k.max_current_a >= MIN_CURRENT_A else 0.0
            amps, at = grants.get((c.charger_id, k.connector_id), (0.0, -1e9))
            r = max(amps, fs) if snap.now_s < at + g.lease_s + g.settle_s else fs
            for p in k.wiring:
                if p is not None:
                    per_phase[p] += r
        out += np.minimum(per_phase, c.current_limit_a)
    return out


def rows(snap: Snapshot, a: Allocation) -> list[tuple[ChargerInput, ConnectorInput, float]]:
    got = dict(zip(a.keys, a.currents_a, strict=True))
    return [(c, k, got[(c.charger_id, k.connector_id)]) for c in snap.chargers
            for k in c.connectors]


def check_safety(snap: Snapshot, a: Allocation, room: np.ndarray) -> np.ndarray:
    """Hard invariants; returns the allocated current per site phase."""
    g = snap.group
    per_phase = np.zeros(3)
    any_offline = any(not c.online for c in snap.chargers)
    for c in snap.chargers:
        mine = np.zeros(3)
        for k in c.connectors:
            x = a.current_a(c.charger_id, k.connector_id)
            assert x == 0.0 or x >= MIN_CURRENT_A, f"{x} A is in (0, 6)"
            assert abs(x * 10 - round(x * 10)) < 1e-6, f"{x} is not a multiple of 0.1 A"
            assert x <= k.max_current_a + TOL
            if not c.online or not k.wants_power:
                assert x == 0.0
            if any_offline and g.offline_strategy is OfflineStrategy.ZERO:
                assert x == 0.0
            if any_offline and g.offline_strategy is OfflineStrategy.MINIMISE:
                assert x <= MIN_CURRENT_A + TOL
            for p in k.loaded_phases():
                mine[p] += x
        assert (mine <= c.current_limit_a + TOL).all(), "charger limit exceeded"
        per_phase += mine
    for p in range(3):
        assert per_phase[p] <= room[p] + TOL, f"phase L{p + 1}: {per_phase[p]} > {room[p]}"
    return per_phase


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(snapshots())
def test_one_allocation_is_safe_fair_work_conserving_and_deterministic(snap: Snapshot) -> None:
    a = allocate(snap)
    b = allocate(snap)
    assert a.currents_a == b.currents_a and a.reasons == b.reasons
    limit, fresh = budget(snap)
    room = np.maximum(0.0, limit - reserved(snap, {}))
    used = check_safety(snap, a, room)
    if not fresh:
        return  # stale CT: nothing may rise from 0, checked by check_safety's caller rows
    g = snap.group
    any_offline = any(not c.online for c in snap.chargers)
    minimise = any_offline and g.offline_strategy is OfflineStrategy.MINIMISE
    data = rows(snap, a)
    admitted = [(c, k, x) for c, k, x in data if x > 0]
    n_on = np.zeros(3)
    for _, k, _ in admitted:
        for p in k.loaded_phases():
            n_on[p] += 1
    slack = room - used
    for c, k, x in admitted:
        cap = min(k.max_current_a, c.current_limit_a, MIN_CURRENT_A if minimise else 1e9)
        if x >= cap - STEP - TOL:
            continue
        # Not at its own cap: some constraint it belongs to is full and it has (within
        # rounding) the largest share in it among its priority class and the lower ones
        # (higher classes are filled first: sharing.py): the bottleneck condition of
        # max-min fairness, which also proves work conservation.
        ok = False
        for p in k.loaded_phases():
            on_p = [y for _, kk, y in admitted
                    if p in kk.loaded_phases() and kk.priority <= k.priority]
            if slack[p] <= STEP * n_on[p] + TOL and x >= max(on_p) - STEP - TOL:
                ok = True
        for kk in c.connectors:
            if kk is k:
                continue
            y = a.current_a(c.charger_id, kk.connector_id)
            shared = set(kk.loaded_phases()) & set(k.loaded_phases())
            full = x + y >= c.current_limit_a - 2 * STEP - TOL
            if y > 0 and shared and full and (x >= y - STEP - TOL or kk.priority > k.priority):
                ok = True
        assert ok, f"{c.charger_id}/{k.connector_id} at {x} A has no bottleneck"
    # Admission pauses nobody needlessly: a refused connector lacks 6 A + hysteresis
    # on a phase it loads (counting 6 A for each admitted one), or its charger is full.
    six = np.zeros(3)
    for _, k, _ in admitted:
        for p in k.loaded_phases():
            six[p] += MIN_CURRENT_A
    for c, k, x in data:
        if x > 0 or a.result(c.charger_id, k.connector_id).reason is not Reason.PAUSED_NO_ROOM:
            continue
        phase_full = any(six[p] + MIN_CURRENT_A + g.resume_hysteresis_a > room[p] - TOL
                         for p in k.loaded_phases())
        partner_on = any(a.current_a(c.charger_id, kk.connector_id) > 0
                         and set(kk.loaded_phases()) & set(k.loaded_phases())
                         for kk in c.connectors if kk is not k)
        charger_full = partner_on and c.current_limit_a < 2 * MIN_CURRENT_A + g.resume_hysteresis_a
        assert phase_full or charger_full, f"{c.charger_id}/{k.connector_id} paused with room"


@st.composite
def evolutions(draw: st.DrawFn) -> tuple[Snapshot, list[tuple[frozenset[int], float, float]]]:
    snap = draw(snapshots(max_chargers=12))
    steps = [
        (frozenset(draw(st.sets(st.integers(0, len(snap.chargers) - 1), max_size=3))),
         draw(st.floats(-50, 300, allow_nan=False)), draw(st.sampled_from([0.0, 0.0, 0.0, 4.0])))
        for _ in range(draw(st.integers(2, 25)))
    ]
    return snap, steps


def idle_hand_over(settle_s: float) -> tuple[Snapshot, list[tuple[frozenset[int], float, float]]]:
    """6 A on L2 (static), two cars wanting 6 A, neither drawing: at the idle cap
    (15 s) the running one's room goes to the waiting one, after settle_s. Hypothesis
    found it only when some other modules were loaded (it draws constants from every
    local module in sys.modules), so it is run every time."""
    g = GroupConfig(name="prop", phases=(Phase.L2,), mode=Mode.STATIC, limit_a=6.0,
                    resume_hysteresis_a=0.0, ramp_up_a=80.0, settle_s=settle_s,
                    idle_cap_after_s=15.0)
    cars = tuple(ChargerInput(charger_id=f"io7-{i:03d}", current_limit_a=6.0, connectors=(
        ConnectorInput(connector_id=1, wiring=(Phase.L2, None, None), max_current_a=6.0,
                       wants_power=True),)) for i in range(2))
    return Snapshot(now_s=0.0, group=g, chargers=cars), [(frozenset(), 0.0, 0.0)] * 25


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(evolutions())
@example(idle_hand_over(0.0))
@example(idle_hand_over(5.0))
def test_cycles_stay_safe_with_leases_and_make_before_break(
    case: tuple[Snapshot, list[tuple[frozenset[int], float, float]]],
) -> None:
    """Over many cycles members drop off and come back, EVs come and go and the CT
    moves: allocations plus offline reservations (last grant within its lease) never
    exceed a phase's budget, and an increase never counts on a decrease that has not
    had `settle_s` to take effect."""
    snap, steps = case
    g = snap.group
    state: EngineState | None = None
    grants: dict[tuple[str, int], tuple[float, float]] = {}
    history: list[tuple[float, dict[tuple[str, int], float]]] = []
    members = list(snap.chargers)
    for t, (flip, ct_value, ct_age) in enumerate(steps):
        now = float(t)
        for i in flip:
            c = members[i]
            members[i] = replace(c, online=not c.online, connectors=tuple(
                replace(k, wants_power=not k.wants_power) for k in c.connectors))
        ct = CtReading(currents_a=(ct_value, ct_value, ct_value), taken_at_s=now - ct_age)
        try:
            cur = Snapshot(now_s=now, group=g, chargers=tuple(members), ct=ct)
        except InfeasibleGroupError:
            return
        a = allocate(cur, state)
        state = a.state
        limit, _ = budget(cur)
        room = np.maximum(0.0, limit - reserved(cur, grants))
        check_safety(cur, a, room)
        x = dict(zip(a.keys, a.currents_a, strict=True))
        # Make before break, on every phase where some connector rose this cycle above
        # what was already counted for it (its previous current, or the last grant of a
        # member back while that grant is reserved: lease + settle).
        prev = dict(history[-1][1]) if history else {}
        for key, (amps, at) in grants.items():
            if now < at + g.lease_s + g.settle_s:
                prev[key] = max(prev.get(key, 0.0), amps)
        recent = [h for when, h in history if when >= now - g.settle_s] if g.settle_s else []
        rose = np.zeros(3, dtype=bool)
        committed = np.zeros(3)
        for c in cur.chargers:
            if not c.online:
                continue
            for k in c.connectors:
                key = (c.charger_id, k.connector_id)
                before = max([prev.get(key, 0.0)] + [h.get(key, 0.0) for h in recent])
                # A decrease counts at the old current for settle_s (engine rule 4); with
                # settle_s 0 it takes effect in its own cycle, a hand-over the rule tests
                # pin (rotation, idle cap): then only the new current counts.
                held = max(x[key], before) if g.settle_s else x[key]
                for p in k.loaded_phases():
                    committed[p] += held
                    # A rise that stays under a decrease still held adds nothing.
                    rose[p] |= x[key] > before + TOL
        for p in range(3):
            if rose[p]:
                assert committed[p] <= room[p] + 1e-3, f"L{p + 1} increase before break"
        for c in cur.chargers:
            if c.online:
                for k in c.connectors:
                    key = (c.charger_id, k.connector_id)
                    grants[key] = (x[key], now)
        history.append((now, {k: v for k, v in x.items()}))
