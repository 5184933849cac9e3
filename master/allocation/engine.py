"""The allocation rules, in the order they apply. Read this file first.

`allocate(snapshot, previous_state)` is pure: no I/O, no clock (`snapshot.now_s` is the
caller's monotonic time), no globals. It returns an `Allocation` with a current and a
`Reason` per connector, the per-phase accounting, and the state to pass back next cycle.

 0. Budget per site phase p of the group: `limit_p - max(0, other_load_p) - margin`.
    Static mode: other load 0, no margin (manual 6.4.2: "limit 100 A: 100 A is
    shared"). Dynamic mode: other load = CT_p minus the group's own measured draw (CT on
    the grid incomer) or CT_p as read (CT on the other loads); a negative reading never
    raises the limit (manual 6.4.2). CT stale: no increases (rule 4). CT lost: the
    static fallback limit, no CT. An external limit in force (`Snapshot.external_limit_a`,
    issue 12) lowers `limit_p` on its phase to itself, never raises it; below 6 A it
    pauses every connector on that phase.
 1. Offline members (manual 6.4.2). What an unreachable charger may still draw is
    reserved on every phase it is wired to: its last grant until that lease has run out
    and its EV has had `settle_s` to follow, then its fail-safe current (Minimise: 6 A,
    Zero/Maximise: 0 A). While any member is
    offline: Zero puts every connector to 0; Minimise caps every connector at 6 A;
    Maximise shares everything among the online ones.
 2. Phases, then admission. Phases (phases.py): a connector counts on the site phases
    its EV was seen to load this session (the agent's mask, kept through pauses until
    unplug); on every wired phase while none were seen, and for 15 s after it was seen
    loading a new one. Admission (admission.py): connectors that want power get at
    least 6 A on every phase they count on, or are paused; fair order, min run/pause,
    hysteresis for a resume. A new car (never offered since it wants power) gets a
    welcome slot at 6 A with no hysteresis; on a full site one is made by pausing a
    lender for 45 s (welcome.py). Rotation after a rotation period; cars drawing
    nothing yield their room first.
 3. Sharing (sharing.py, waterfill.py): the rest is shared max-min fairly, by priority
    class (higher classes first above 6 A each) and weight (share_by_power; a known
    departure weighs at most 2x), work-conserving, each
    connector capped by its hard max, its Charger Current Limit, and its demand cap
    (demand.py: draw + headroom; an EV drawing nothing is capped after 15 s, so a
    probe of a full car hands its room back within seconds).
 4. Dynamics: decrease at once; increase by at most `ramp_up_a` per cycle; no increase
    on a stale CT; an increase only into room that decreases have really freed
    (a decreased EV is counted at its old current for `settle_s`, and at its measured
    draw for as long as that is higher: make before break).
 5. Round down to 0.1 A; never a value in (0, 6) A.

Invariant (tests/property): on every phase, online allocations plus offline
reservations never exceed the budget of rule 0; the charger limit and connector max
are never exceeded.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from master.allocation import admission, phases, sharing, waterfill, welcome
from master.allocation.demand import IDLE_BELOW_A, DemandCaps, update_demand_caps
from master.allocation.model import (
    MIN_CURRENT_A,
    CtPlacement,
    CtStatus,
    GroupConfig,
    Mode,
    OfflineStrategy,
    Phase,
    Reason,
    Snapshot,
)
from master.allocation.result import Allocation, PhaseResult
from master.allocation.state import EngineState
from master.allocation.table import ConnectorTable

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_REASONS = tuple(Reason)
_CODE = {r: i for i, r in enumerate(_REASONS)}
_EPS = 1e-9
# The slowest EVs take ~10 s to follow a decrease (architecture.md, time and rates); the
# EV simulator allows up to 15 s. Past that, a draw above the grant is not a slow follower.
FOLLOW_LIMIT_S = 15.0
# Sums of a thousand floats carry ~1e-12 of error; below 1 mA nothing is "over".
_SUM_TOL_A = 1e-3


def allocate(snap: Snapshot, previous: EngineState | None = None) -> Allocation:
    """Allocate the group's current for this cycle (rules 0-5 above)."""
    g, now = snap.group, snap.now_s
    t = ConnectorTable.build(snap)
    mem = (previous or EngineState.empty()).aligned(t.keys)
    _expire_leases(mem, t, g.lease_s, g.settle_s, g.failsafe_current_a, now)
    # Phases: the lines each EV was seen to load this session; a new line: every wired one.
    lines = phases.account(now_s=now, seen=t.loads, wired=t.wired, online=t.online,
                           mask=mem["lines_mask"], grew_at_s=mem["lines_grew_at_s"])
    t = t.with_loads(lines.loads)
    prev = mem["current_a"]
    online = t.online
    klass, needs = _classes(g, t), _needs(snap, t)
    reason = np.full(t.size, _CODE[Reason.NO_DEMAND], dtype=np.int64)
    phase_of = np.full(t.size, -1, dtype=np.int64)

    # Rule 0: the budget per phase.
    budget = _budget(snap, t)
    in_group = np.zeros(3, dtype=bool)
    in_group[list(g.phases)] = True

    # Rule 1: what offline members may still draw, and the strategy.
    reserve = _offline_reservation(snap, t, prev, mem)
    room = np.where(in_group, np.maximum(0.0, budget.room - reserve), 0.0)
    any_offline = bool(np.count_nonzero(~online))
    zero_all = any_offline and g.offline_strategy is OfflineStrategy.ZERO
    minimise = any_offline and g.offline_strategy is OfflineStrategy.MINIMISE

    # Each connector's own cap, and what sets it.
    demand = update_demand_caps(
        now_s=now, group=g, charging=online & t.wants & (prev >= MIN_CURRENT_A),
        offered_a=prev, draw_a=t.draw_a, below_since_s=mem["below_since_s"],
        cap_a=mem["cap_a"], capped_since_s=mem["capped_since_s"],
    )
    cap = np.minimum(t.max_a, t.charger_limit_a)
    cap_reason = np.where(t.charger_limit_a < t.max_a, _CODE[Reason.CHARGER_LIMIT],
                          _CODE[Reason.CONNECTOR_MAX])
    capped = demand.cap_a < cap  # NaN compares False
    cap = np.where(capped, demand.cap_a, cap)
    cap_reason = np.where(capped, _CODE[Reason.DEMAND_CAP], cap_reason)
    if minimise:
        cut = cap > MIN_CURRENT_A
        cap = np.where(cut, MIN_CURRENT_A, cap)
        cap_reason = np.where(cut, _CODE[Reason.OFFLINE_STRATEGY], cap_reason)

    wants = online & t.wants
    able = wants & (cap >= MIN_CURRENT_A - _EPS)
    reason[wants & ~able] = cap_reason[wants & ~able]
    if zero_all:
        reason[wants] = _CODE[Reason.OFFLINE_STRATEGY]
        able[:] = False
    reason[~online] = _CODE[Reason.OFFLINE]

    # Rule 2: admission.
    in_min_pause = (now - mem["paused_at_s"]) < g.min_pause_s  # NaN compares False
    running = able & (prev > 0)
    idle = running & ~np.isnan(demand.cap_a) & (t.draw_a < IDLE_BELOW_A)
    # In its welcome slot: admitted first since it wants power, not paused since.
    in_welcome = able & ((now - mem["welcomed_at_s"]) < welcome.WELCOME_S) & (
        running | np.isnan(mem["paused_at_s"]))  # NaN compares False
    lender = able & ~running & ((now - mem["lent_at_s"]) < welcome.LENDER_GIVE_UP_S)
    lender_out = bool(np.count_nonzero(lender))
    borrower_done = running & ~in_welcome & ~np.isnan(mem["borrowed_at_s"]) & lender_out
    adm = admission.admit(
        admission.Candidates(
            eligible=able, running=running, in_min_pause=in_min_pause & (prev <= 0),
            waiting_since_s=mem["waiting_since_s"], running_since_s=mem["running_since_s"],
            started_at_s=mem["started_at_s"],
            energy_wh=t.energy_wh, priority=klass, loads=t.loads, partner=t.partner,
            charger_limit_a=t.charger_limit_a, new=np.isnan(mem["welcomed_at_s"]) & ~running,
            in_welcome=in_welcome, lender=lender, yielding=idle | borrower_done, idle=idle,
        ),
        room, now_s=now, hysteresis_a=g.resume_hysteresis_a,
        rotation_period_s=g.rotation_period_s, min_run_s=g.min_run_s,
        max_starve_s=g.priority_max_starve_s,
    )
    refused = able & ~adm.admitted
    reason[refused] = _CODE[Reason.PAUSED_NO_ROOM]
    phase_of[refused] = adm.full_phase[refused]
    # "Min pause" only where there would be room; otherwise "no room" is the answer.
    held_off = refused & in_min_pause & (prev <= 0) & (adm.full_phase < 0)
    reason[held_off] = _CODE[Reason.PAUSED_MIN_PAUSE]
    phase_of[held_off] = -1
    reason[adm.rotated_out | (adm.lent & ~adm.admitted)] = _CODE[Reason.PAUSED_ROTATION]

    # Rule 3: max-min fair sharing among the admitted, by class and weight (sharing.py).
    weight = sharing.power_weight(t.loads, g.share_by_power)
    if snap.needs:
        weight = weight * sharing.urgency_weight(
            departure_in_s=needs[0], need_wh=needs[1], energy_wh=t.energy_wh, loads=t.loads,
            cap_a=np.minimum(t.max_a, t.charger_limit_a))
    fill = sharing.share(
        adm.admitted, np.where(adm.admitted, cap, 0.0), cap_reason == _CODE[Reason.CHARGER_LIMIT],
        t.loads, room, t.charger_limit_a, t.partner, weight, klass,
    )
    x = fill.current_a
    on = adm.admitted
    limiter = fill.limiter[on]
    reason[on] = np.where(limiter == waterfill.BY_PHASE, _CODE[Reason.PHASE_LIMIT],
                          np.where(limiter == waterfill.BY_CHARGER, _CODE[Reason.CHARGER_LIMIT],
                                   cap_reason[on]))
    phase_of[on] = fill.phase[on]

    # Rule 4: dynamics.
    x, held = _dynamics(snap, t, x, prev, mem, room, budget.status, reason)

    # Rule 5: 0.1 A steps, nothing in (0, 6) A.
    x = np.floor(x * 10.0 + _EPS) / 10.0
    x[x < MIN_CURRENT_A - _EPS] = 0.0
    x[~online] = 0.0

    state = _remember(snap, t, mem, x, held, demand, lines, adm)
    return _result(snap, t, x, reason, phase_of, budget, reserve, state)


def _classes(g: GroupConfig, t: ConnectorTable) -> FloatArray:
    """Each connector's priority class: the higher of its input's and the config's."""
    if not g.priorities:
        return t.priority
    by_key = {(c, k): cls for c, k, cls in g.priorities}
    conf = [by_key.get(key, by_key.get((key[0], 0), 0)) for key in t.keys]
    return np.maximum(t.priority, np.array(conf, dtype=np.float64))


def _needs(snap: Snapshot, t: ConnectorTable) -> tuple[FloatArray, FloatArray]:
    """Departure in s and energy need in Wh per row, NaN where not known."""
    dep, wh = np.full(t.size, np.nan), np.full(t.size, np.nan)
    if snap.needs:
        row = {k: i for i, k in enumerate(t.keys)}
        for n in snap.needs:
            i = row.get((n.charger_id, n.connector_id))
            if i is not None:
                dep[i], wh[i] = n.departure_in_s, n.energy_wh
    return dep, wh


class _Budget:
    __slots__ = ("ct", "limit", "other", "room", "status")

    def __init__(self, status: CtStatus, limit: float, other: FloatArray, room: FloatArray,
                 ct: tuple[float | None, ...]) -> None:
        self.status, self.other, self.room, self.ct = status, other, room, ct
        self.limit: FloatArray = np.full(3, limit)  # per phase


def _budget(snap: Snapshot, t: ConnectorTable) -> _Budget:
    """Rule 0, per phase under the lowest external limit in force (if any): the group's
    limit is lowered to it there, never raised."""
    b = _group_budget(snap, t)
    if snap.external_limit_a is not None:
        cut = np.maximum(0.0, b.limit - np.asarray(snap.external_limit_a, dtype=np.float64))
        b.limit, b.room = b.limit - cut, b.room - cut
    return b


def _group_budget(snap: Snapshot, t: ConnectorTable) -> _Budget:
    g = snap.group
    no_ct: tuple[float | None, ...] = (None, None, None)
    if g.mode is Mode.STATIC:
        return _Budget(CtStatus.NOT_USED, g.limit_a, np.zeros(3), np.full(3, g.limit_a), no_ct)
    ct = snap.ct
    readings = None if ct is None else [ct.currents_a[p] for p in g.phases]
    age = np.inf if ct is None else max(0.0, snap.now_s - ct.taken_at_s)
    if ct is None or readings is None or None in readings or age > g.ct_timeout_s:
        lim = g.static_limit_a
        return _Budget(CtStatus.LOST, lim, np.zeros(3), np.full(3, lim),
                       no_ct if ct is None else ct.currents_a)
    ct_a = np.array([0.0 if v is None else v for v in ct.currents_a])
    if g.ct_placement is CtPlacement.GRID:
        own = (t.measured_site_a * t.online[:, None]).sum(axis=0)
        other = np.maximum(0.0, ct_a - own)
    else:
        other = np.maximum(0.0, ct_a)
    status = CtStatus.STALE if age > g.ct_stale_after_s else CtStatus.OK
    return _Budget(status, g.limit_a, other, g.limit_a - other - g.margin_a, ct.currents_a)


def _expire_leases(mem: dict[str, FloatArray], t: ConnectorTable, lease_s: float,
                   settle_s: float, failsafe_a: float, now: float) -> None:
    """A grant whose lease has run out is no longer in force: that agent fell back to
    its fail-safe current by itself (architecture: leases, not trust). Its EV may take
    settle_s to follow, so the old grant is held like any other decrease."""
    failsafe = np.where(t.max_a >= MIN_CURRENT_A, failsafe_a, 0.0)
    ends = mem["granted_at_s"] + lease_s
    expired = now >= ends  # NaN compares False
    dropping = expired & (mem["current_a"] > failsafe) & (now < ends + settle_s)
    mem["hold_a"] = np.where(dropping, np.maximum(mem["hold_a"], mem["current_a"]),
                             mem["hold_a"])
    mem["hold_until_s"] = np.where(dropping, np.fmax(mem["hold_until_s"], ends + settle_s),
                                   mem["hold_until_s"])
    mem["current_a"] = np.where(expired, np.minimum(mem["current_a"], failsafe),
                                mem["current_a"])
    lent = ~np.isnan(mem["lent_at_s"])  # a lender keeps its run time for its rotation turn
    mem["running_since_s"] = np.where((mem["current_a"] > 0) | lent, mem["running_since_s"],
                                      np.nan)


def _offline_reservation(snap: Snapshot, t: ConnectorTable, prev: FloatArray,
                         mem: dict[str, FloatArray]) -> FloatArray:
    """Rule 1: per site phase, what offline chargers may draw without us: the last
    grant (or a held decrease) until it has had time to take effect, else fail-safe."""
    off = ~t.online
    if not np.count_nonzero(off):
        return np.zeros(3)
    g = snap.group
    failsafe = np.where(t.max_a >= MIN_CURRENT_A, g.failsafe_current_a, 0.0)
    held = np.where(snap.now_s < mem["hold_until_s"], mem["hold_a"], 0.0)
    per_conn = np.maximum(np.maximum(prev, held), failsafe)
    per_charger = np.zeros((len(snap.chargers), 3))
    np.add.at(per_charger, t.charger_of[off], per_conn[off, None] * t.wired[off])
    limits = np.array([c.current_limit_a for c in snap.chargers])
    reserved: FloatArray = np.minimum(per_charger, limits[:, None]).sum(axis=0)
    return reserved


def _dynamics(snap: Snapshot, t: ConnectorTable, x: FloatArray, prev: FloatArray,
              mem: dict[str, FloatArray], room: FloatArray, status: CtStatus,
              reason: npt.NDArray[np.int64]) -> tuple[FloatArray, FloatArray]:
    """Rule 4. Returns the new currents and the decreases still being held."""
    g, now = snap.group, snap.now_s
    x = x.copy()
    if status is CtStatus.STALE:
        up = x > prev + _EPS
        x[up] = prev[up]
        reason[up] = _CODE[Reason.CT_STALE]
    ceiling = np.maximum(prev, MIN_CURRENT_A) + g.ramp_up_a
    up = x > ceiling + _EPS
    x[up] = ceiling[up]
    reason[up] = _CODE[Reason.RAMP]
    # Make before break: a decreased EV still counts at its old current for settle_s,
    # including the decreases of this very cycle.
    # Only the part of an increase above what is already counted (its previous current
    # or a held decrease, e.g. a member back after its lease ran out) takes new room,
    # so only that part can be cut to make room.
    held = np.where(now < mem["hold_until_s"], mem["hold_a"], 0.0)
    held = np.where(t.online, held, 0.0)
    inc = np.where(t.online, np.maximum(0.0, x - np.maximum(prev, held)), 0.0)
    settling = t.online if g.settle_s > 0 else np.zeros(t.size, dtype=bool)
    committed = np.maximum(np.maximum(x, held), np.where(settling, prev, 0.0))
    # An EV slower than settle_s (some take ~10 s) still draws more than its grant after
    # a decrease: the meter says so, and that draw counts too, up to FOLLOW_LIMIT_S.
    following = t.online & (now < mem["decreased_at_s"] + FOLLOW_LIMIT_S)  # NaN: False
    committed = np.maximum(committed, np.where(following, t.draw_a, 0.0))
    over = committed @ t.loads - room
    if np.count_nonzero(over > _SUM_TOL_A) and np.count_nonzero(inc):
        inc_p = inc @ t.loads
        with np.errstate(divide="ignore", invalid="ignore"):
            f_p = np.where(over > _SUM_TOL_A, np.clip(1.0 - over / inc_p, 0.0, 1.0), 1.0)
        f = np.where(t.loads, f_p, 1.0).min(axis=1)
        cut = (inc > 0) & (f < 1.0)
        x[cut] = x[cut] - inc[cut] * (1.0 - f[cut])
        reason[cut] = _CODE[Reason.TRANSITION]
    return x, held


def _remember(snap: Snapshot, t: ConnectorTable, mem: dict[str, FloatArray], x: FloatArray,
              held: FloatArray, demand: DemandCaps, lines: phases.Accounted,
              adm: admission.Admission) -> EngineState:
    """The memory for next cycle; offline connectors keep theirs unchanged."""
    now, g = snap.now_s, snap.group
    on, prev = t.online, mem["current_a"]
    wants = t.wants
    was_running = prev > 0
    nan = np.full(t.size, np.nan)
    # Welcome (welcome.py): begun at the first admission since the car wants power; a
    # borrowed one is remembered while it runs; a lender until it is back (or gives up).
    welcomed = np.where(np.isnan(mem["welcomed_at_s"]) & adm.admitted, now, mem["welcomed_at_s"])
    lent = np.where(adm.lent, now, np.where(x > 0, np.nan, mem["lent_at_s"]))
    lender_out = bool(np.count_nonzero(~np.isnan(lent) & wants & on))
    # Admitted, not only drawing: a guest held at 0 A while its lender's decrease settles
    # is still a guest, and yields to its lender when its WELCOME_S are up.
    keep = adm.admitted & (((now - mem["borrowed_at_s"]) < welcome.WELCOME_S) | lender_out)
    borrowed = np.where(adm.borrowed, now, np.where(keep, mem["borrowed_at_s"], np.nan))
    new = {
        "lines_mask": lines.mask,
        "lines_grew_at_s": lines.grew_at_s,
        "welcomed_at_s": np.where(wants, welcomed, nan),
        "borrowed_at_s": np.where(wants, borrowed, nan),
        "lent_at_s": np.where(wants, lent, nan),
        "current_a": x,
        "granted_at_s": np.full(t.size, now),
        # A lender's run time and a borrower's wait go on through a welcome slot, so
        # neither loses its rotation turn to it.
        "running_since_s": np.where(
            x > 0, np.where((was_running | ~np.isnan(mem["lent_at_s"]))
                            & ~np.isnan(mem["running_since_s"]), mem["running_since_s"], now),
            np.where(~np.isnan(lent), mem["running_since_s"], np.nan)),
        "started_at_s": np.where(
            x > 0, np.where(was_running & ~np.isnan(mem["started_at_s"]), mem["started_at_s"],
                            now), np.nan),
        "paused_at_s": np.where(
            wants & (x <= 0), np.where(was_running, now, mem["paused_at_s"]), np.nan),
        "waiting_since_s": np.where(
            wants & ((x <= 0) | ~np.isnan(borrowed)),
            np.where(np.isnan(mem["waiting_since_s"]), now, mem["waiting_since_s"]), np.nan),
        "below_since_s": demand.below_since_s,
        "cap_a": demand.cap_a,
        "capped_since_s": demand.capped_since_s,
    }
    dec = x < prev - _EPS
    still = now < mem["hold_until_s"]
    new["hold_a"] = np.where(dec, np.maximum(prev, held), np.where(still, mem["hold_a"], 0.0))
    new["decreased_at_s"] = np.where(dec, now, mem["decreased_at_s"])
    new["hold_until_s"] = np.where(dec, now + g.settle_s,
                                   np.where(still, mem["hold_until_s"], np.nan))
    if np.count_nonzero(on) == t.size:  # none offline: np.where(on, col, _) is col
        columns = new
    else:
        columns = {name: np.where(on, col, mem[name]) for name, col in new.items()}
        columns["lines_mask"], columns["lines_grew_at_s"] = lines.mask, lines.grew_at_s
    return EngineState(keys=t.keys, columns=columns)


def _result(snap: Snapshot, t: ConnectorTable, x: FloatArray, reason: npt.NDArray[np.int64],
            phase_of: npt.NDArray[np.int64], budget: _Budget, reserve: FloatArray,
            state: EngineState) -> Allocation:
    g = snap.group
    allocated = x @ t.loads
    phases = tuple(
        PhaseResult(
            phase=p,
            limit_a=float(budget.limit[p]),
            ct_a=budget.ct[p],
            other_load_a=float(budget.other[p]),
            reserved_a=float(reserve[p]),
            available_a=float(max(0.0, budget.room[p] - reserve[p])),
            allocated_a=float(allocated[p]),
        )
        for p in g.phases
    )
    phase_enum: tuple[Phase | None, ...] = (Phase.L1, Phase.L2, Phase.L3, None)
    return Allocation(
        now_s=snap.now_s,
        keys=t.keys,
        currents_a=tuple(x.tolist()),
        reasons=tuple(map(_REASONS.__getitem__, reason.tolist())),
        limiting_phases=tuple(map(phase_enum.__getitem__, phase_of.tolist())),  # -1: None
        phases=phases,
        ct_status=budget.status,
        failsafe_current_a=g.failsafe_current_a,
        state=state,
    )
