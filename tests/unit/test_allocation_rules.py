"""Each allocation rule with worked numbers. Rows are named after what they prove."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from master.allocation import (
    CtPlacement,
    CtStatus,
    Mode,
    OfflineStrategy,
    Reason,
)
from tests.alloc_support import (
    L1,
    L2,
    THREE,
    charger,
    conn,
    ct,
    currents,
    cycles,
    group,
    run,
    single,
    with_online,
)

DYN = {"mode": Mode.DYNAMIC, "fallback_limit_a": 30.0, "margin_a": 0.0}


def three_singles(max_a: float = 32.0) -> list:
    """Three chargers, one three-phase connector each."""
    return [charger(f"c{i}", conn(1, max_a=max_a)) for i in range(1, 4)]


# --- Rule 0: the budget per phase -------------------------------------------------

BUDGET_ROWS = [
    # name, group kwargs, CT reading, own draw per connector, expected per connector
    ("static shares the whole group limit (manual: 90 A -> 90 A)",
     {"limit_a": 90.0}, None, 0.0, 30.0),
    ("dynamic, CT on other loads: 100 A, CT 30 A -> 70 A shared (manual 6.4.2)",
     {"limit_a": 100.0, **DYN, "ct_placement": CtPlacement.OTHER_LOADS},
     ct(30, 30, 30), 0.0, 23.3),
    ("dynamic, CT on grid: own draw (3 x 20 A) is not other load",
     {"limit_a": 100.0, **DYN, "ct_placement": CtPlacement.GRID},
     ct(90, 90, 90), 20.0, 23.3),
    ("a negative CT reading never raises the limit (other loads)",
     {"limit_a": 60.0, **DYN, "ct_placement": CtPlacement.OTHER_LOADS},
     ct(-30, -30, -30), 0.0, 20.0),
    ("solar export below our own draw never raises the limit (grid)",
     {"limit_a": 60.0, **DYN, "ct_placement": CtPlacement.GRID},
     ct(-10, -10, -10), 20.0, 20.0),
    ("the safety margin is kept free in dynamic mode",
     {"limit_a": 100.0, **DYN, "ct_placement": CtPlacement.OTHER_LOADS, "margin_a": 4.0},
     ct(30, 30, 30), 0.0, 22.0),
    ("static mode keeps no margin",
     {"limit_a": 60.0, "margin_a": 4.0}, None, 0.0, 20.0),
    ("the worst phase decides for three-phase EVs",
     {"limit_a": 60.0, **DYN, "ct_placement": CtPlacement.OTHER_LOADS},
     ct(0, 30, 0), 0.0, 10.0),
]


@pytest.mark.parametrize(("g", "reading", "own", "each"),
                         [r[1:] for r in BUDGET_ROWS], ids=[r[0] for r in BUDGET_ROWS])
def test_budget(g: dict, reading, own: float, each: float) -> None:
    chargers = [charger(f"c{i}", conn(1, measured=(own, own, own))) for i in range(1, 4)]
    a = run(group(**g), chargers, ct_reading=reading)
    assert list(a.currents_a) == [each] * 3


def test_manual_example_accounting_is_reported_per_phase() -> None:
    g = group(limit_a=100.0, **DYN, ct_placement=CtPlacement.OTHER_LOADS)
    a = run(g, three_singles(), ct_reading=ct(30, 30, 30))
    for p in a.phases:
        assert (p.limit_a, p.ct_a, p.other_load_a, p.available_a) == (100.0, 30, 30.0, 70.0)
        assert p.allocated_a == pytest.approx(69.9)
    assert a.ct_status is CtStatus.OK


# --- Wiring: phase rotation and the phases an EV really loads --------------------------

def test_rotated_wiring_single_phase_ev_loads_the_site_phase_its_L1_is_on() -> None:
    # Charger c1's L1 is on site L2; its single-phase EV shares L2 with c2, not L1 with c3.
    g = group(limit_a=20.0)
    a = run(g, [
        charger("c1", conn(1, wiring=(L2, THREE[2], L1), ev_lines=(True, False, False))),
        charger("c2", conn(1, wiring=single(L2))),
        charger("c3", conn(1, wiring=single(L1))),
    ])
    assert currents(a) == {("c1", 1): 10.0, ("c2", 1): 10.0, ("c3", 1): 20.0}
    assert a.result("c3", 1).reason is Reason.PHASE_LIMIT
    assert a.result("c3", 1).limiting_phase is L1


def test_single_phase_ev_on_three_phase_connector_frees_the_other_phases() -> None:
    g = group(limit_a=16.0)
    chargers = [
        charger("c1", conn(1, ev_lines=(True, False, False))),  # loads L1 only
        charger("c2", conn(1, wiring=single(L2))),
    ]
    assert currents(run(g, chargers)) == {("c1", 1): 16.0, ("c2", 1): 16.0}
    # Unknown EV phases count as every wired phase: then both share L2.
    unknown = [charger("c1", conn(1)), chargers[1]]
    assert currents(run(g, unknown)) == {("c1", 1): 8.0, ("c2", 1): 8.0}


# --- Nested limits ------------------------------------------------------------------

def test_charger_current_limit_is_shared_by_its_two_connectors() -> None:
    a = run(group(limit_a=100.0), [charger("c1", conn(1), conn(2), limit_a=16.0)])
    assert list(a.currents_a) == [8.0, 8.0]
    assert {r.reason for r in a.connectors} == {Reason.CHARGER_LIMIT}


def test_charger_pair_gives_the_small_one_its_max_and_the_rest_to_the_other() -> None:
    a = run(group(limit_a=100.0), [charger("c1", conn(1, max_a=10.0), conn(2), limit_a=32.0)])
    assert currents(a) == {("c1", 1): 10.0, ("c1", 2): 22.0}
    assert a.result("c1", 1).reason is Reason.CONNECTOR_MAX
    assert a.result("c1", 2).reason is Reason.CHARGER_LIMIT


def test_charger_pair_on_different_phases_does_not_share_the_limit() -> None:
    c1 = charger("c1", conn(1, wiring=single(L1)), conn(2, wiring=single(L2)), limit_a=16.0)
    assert list(run(group(limit_a=100.0), [c1]).currents_a) == [16.0, 16.0]


def test_connector_hard_max_caps_and_is_the_reason() -> None:
    a = run(group(limit_a=100.0), [charger("c1", conn(1, max_a=16.0))])
    assert a.currents_a == (16.0,)
    assert a.connectors[0].reason is Reason.CONNECTOR_MAX


def test_water_filling_is_max_min_fair_and_work_conserving() -> None:
    # 30 A on L1 for EVs capped at 6, 10 and 32 A: 6 + 10 + 14 = 30.
    g = group(limit_a=30.0)
    a = run(g, [charger(f"c{i}", conn(1, wiring=single(L1), max_a=m))
                for i, m in enumerate((6.0, 10.0, 32.0))])
    assert list(a.currents_a) == [6.0, 10.0, 14.0]
    assert [r.reason for r in a.connectors] == [
        Reason.CONNECTOR_MAX, Reason.CONNECTOR_MAX, Reason.PHASE_LIMIT]


def test_three_phase_connector_frozen_by_one_phase_leaves_room_on_the_others() -> None:
    # L1 is crowded by two single-phase EVs; the three-phase EV is held to L1's share,
    # and the single-phase EV on L2 takes what is left on L2.
    g = group(limit_a=30.0)
    a = run(g, [
        charger("a", conn(1)),
        charger("b", conn(1, wiring=single(L1))),
        charger("c", conn(1, wiring=single(L1))),
        charger("d", conn(1, wiring=single(L2))),
    ])
    assert currents(a) == {("a", 1): 10.0, ("b", 1): 10.0, ("c", 1): 10.0, ("d", 1): 20.0}


def test_results_round_down_to_a_tenth_of_an_amp() -> None:
    chargers = [charger(f"c{i}", conn(1, max_a=40.0), limit_a=40.0) for i in range(3)]
    a = run(group(limit_a=100.0), chargers)
    assert list(a.currents_a) == [33.3, 33.3, 33.3]


# --- Rule 1: offline members --------------------------------------------------------

def test_failsafe_current_per_strategy() -> None:
    assert group(offline_strategy=OfflineStrategy.ZERO).failsafe_current_a == 0.0
    assert group(offline_strategy=OfflineStrategy.MINIMISE).failsafe_current_a == 6.0
    assert group(offline_strategy=OfflineStrategy.MAXIMISE).failsafe_current_a == 0.0


def test_zero_sets_every_charger_to_zero_while_one_is_offline() -> None:
    chargers = three_singles()
    chargers[2] = with_online(chargers[2], False)
    a = run(group(limit_a=60.0, offline_strategy=OfflineStrategy.ZERO), chargers)
    assert list(a.currents_a) == [0.0, 0.0, 0.0]
    assert [r.reason for r in a.connectors] == [
        Reason.OFFLINE_STRATEGY, Reason.OFFLINE_STRATEGY, Reason.OFFLINE]


def test_minimise_limits_everyone_to_6a_and_reserves_6a_for_the_offline_one() -> None:
    chargers = three_singles()
    chargers[2] = with_online(chargers[2], False)
    a = run(group(limit_a=60.0, offline_strategy=OfflineStrategy.MINIMISE), chargers)
    assert list(a.currents_a) == [6.0, 6.0, 0.0]
    assert a.result("c1", 1).reason is Reason.OFFLINE_STRATEGY
    assert [p.reserved_a for p in a.phases] == [6.0, 6.0, 6.0]


def test_maximise_shares_everything_among_the_online_ones() -> None:
    chargers = three_singles()
    chargers[2] = with_online(chargers[2], False)
    a = run(group(limit_a=60.0, offline_strategy=OfflineStrategy.MAXIMISE), chargers)
    assert list(a.currents_a) == [30.0, 30.0, 0.0]
    assert [p.reserved_a for p in a.phases] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(("strategy", "after_lease"), [
    (OfflineStrategy.MAXIMISE, 30.0),
    (OfflineStrategy.MINIMISE, 6.0),
])
def test_offline_member_keeps_its_last_grant_reserved_until_its_lease_runs_out(
    strategy: OfflineStrategy, after_lease: float
) -> None:
    g = group(limit_a=60.0, offline_strategy=strategy, lease_s=3.0, settle_s=0.0)
    chargers = three_singles()
    a = run(g, chargers, now=0.0)
    assert list(a.currents_a) == [20.0, 20.0, 20.0]
    chargers[2] = with_online(chargers[2], False)
    during = run(g, chargers, now=1.0, state=a.state)
    assert [p.reserved_a for p in during.phases] == [20.0] * 3
    expected_during = 20.0 if strategy is OfflineStrategy.MAXIMISE else 6.0
    assert list(during.currents_a)[:2] == [expected_during] * 2
    later = run(g, chargers, now=3.5, state=during.state)
    reserved = 0.0 if strategy is OfflineStrategy.MAXIMISE else 6.0
    assert [p.reserved_a for p in later.phases] == [reserved] * 3
    assert list(later.currents_a)[:2] == [after_lease if reserved == 0.0 else 6.0] * 2


def test_offline_reservation_counts_every_wired_phase_capped_by_the_charger_limit() -> None:
    # An offline two-connector charger under Minimise may draw 6 A per connector, but
    # never above its own Charger Current Limit (10 A here).
    off = charger("off", conn(1), conn(2), limit_a=10.0, online=False)
    a = run(group(limit_a=40.0, offline_strategy=OfflineStrategy.MINIMISE),
            [charger("on", conn(1)), off])
    assert [p.reserved_a for p in a.phases] == [10.0, 10.0, 10.0]


# --- Rule 2: admission --------------------------------------------------------------

def singles_on_l1(n: int, **kw: object) -> list:
    return [charger(f"c{i}", conn(1, wiring=single(L1), **kw)) for i in range(1, n + 1)]


def test_never_below_6a_pause_the_ones_that_do_not_fit() -> None:
    # 20 A for four EVs: three at 6.6 A, the fourth paused (6 x 3 + 1 A hysteresis <= 20).
    a = run(group(limit_a=20.0), singles_on_l1(4))
    assert list(a.currents_a) == [6.6, 6.6, 6.6, 0.0]
    assert a.result("c4", 1).reason is Reason.PAUSED_NO_ROOM
    assert a.result("c4", 1).limiting_phase is L1


def test_admission_order_is_least_session_energy_first() -> None:
    chargers = [charger(f"c{i}", conn(1, wiring=single(L1), energy_wh=e))
                for i, e in enumerate((5000.0, 1000.0, 3000.0), start=1)]
    a = run(group(limit_a=13.0), chargers)
    assert currents(a) == {("c1", 1): 0.0, ("c2", 1): 6.5, ("c3", 1): 6.5}


def test_admission_tie_goes_to_the_longest_waiting() -> None:
    # (Issue 12 §3: a priority class now comes before waiting time; see
    # test_allocation_priorities.py. Here both are class 0.)
    g = group(limit_a=7.0, settle_s=0.0)
    x = charger("x", conn(1, wiring=single(L1)))
    b = charger("b", conn(1, wiring=single(L1)))
    c_idle = charger("c", conn(1, wiring=single(L1), wants=False))
    c_wants = charger("c", conn(1, wiring=single(L1)))
    a = run(g, [x, b, c_idle], now=0.0)
    assert currents(a)[("x", 1)] == 7.0
    for now in range(1, 20):  # one cycle a second; c starts waiting at t=10
        a = run(g, [x, b, c_idle if now < 10 else c_wants], now=float(now), state=a.state)
    x_gone = charger("x", conn(1, wiring=single(L1), wants=False))
    a = run(g, [x_gone, b, c_wants], now=20.0, state=a.state)
    assert currents(a) == {("x", 1): 0.0, ("b", 1): 7.0, ("c", 1): 0.0}  # b waited longer
    # Same waiting time and energy: the higher priority goes first.
    c_first = charger("c", conn(1, wiring=single(L1), priority=5))
    fresh = run(g, [b, c_first], now=0.0)
    assert currents(fresh) == {("b", 1): 0.0, ("c", 1): 7.0}


def test_resume_needs_the_hysteresis_headroom() -> None:
    # b had its welcome slot and was paused (no room on L1 at 6.5 A): to resume it needs
    # 6 A + 1 A of hysteresis beside a's 6 A.
    for limit, b_runs in ((12.5, False), (13.0, True)):
        g = group(limit_a=limit, resume_hysteresis_a=1.0, settle_s=0.0, min_pause_s=0.0)
        both = [charger("a", conn(1, wiring=single(L1))),
                charger("b", conn(1, wiring=single(L1), energy_wh=10.0))]
        small = replace(g, limit_a=6.5)
        first = run(g, both, now=0.0)
        assert first.current_a("b", 1) > 0  # its welcome: no hysteresis
        paused = run(small, both, now=1.0, state=first.state)
        assert paused.current_a("b", 1) == 0.0
        second = run(g, both, now=2.0, state=paused.state)
        assert (second.current_a("b", 1) > 0) is b_runs, limit


def test_a_new_car_is_welcomed_without_the_hysteresis() -> None:
    # 12.5 A on L1, a runs at 12.5 A; b plugs in: 6 A + 6 A fit, the 1 A hysteresis does
    # not; a new car needs no hysteresis, so b gets 6.2 A at once (shared max-min fairly).
    g = group(limit_a=12.5, resume_hysteresis_a=1.0, settle_s=0.0)
    a_only = [charger("a", conn(1, wiring=single(L1))),
              charger("b", conn(1, wiring=single(L1), wants=False))]
    first = run(g, a_only, now=0.0)
    both = [a_only[0], charger("b", conn(1, wiring=single(L1)))]
    second = run(g, both, now=1.0, state=first.state)
    assert currents(second) == {("a", 1): 6.2, ("b", 1): 6.2}


def test_paused_connectors_rotate_in_after_the_rotation_period() -> None:
    g = group(limit_a=7.0, rotation_period_s=900.0, min_run_s=300.0, settle_s=0.0)
    chargers = singles_on_l1(2)
    a = cycles(g, chargers, 0, 899, None)
    assert currents(a) == {("c1", 1): 7.0, ("c2", 1): 0.0}
    a = run(g, chargers, now=900.0, state=a.state)
    assert currents(a) == {("c1", 1): 0.0, ("c2", 1): 7.0}
    assert a.result("c1", 1).reason is Reason.PAUSED_ROTATION


def test_min_run_time_holds_off_rotation() -> None:
    g = group(limit_a=7.0, rotation_period_s=60.0, min_run_s=300.0, settle_s=0.0)
    chargers = singles_on_l1(2)
    a = cycles(g, chargers, 0, 299, None)
    assert currents(a)[("c1", 1)] == 7.0
    a = run(g, chargers, now=300.0, state=a.state)
    assert currents(a) == {("c1", 1): 0.0, ("c2", 1): 7.0}


def test_min_pause_time_holds_a_paused_connector_off() -> None:
    g = group(limit_a=40.0, **DYN, ct_placement=CtPlacement.OTHER_LOADS, min_pause_s=120.0)
    chargers = singles_on_l1(1)
    a = cycles(g, chargers, 0, 9, None, ct_value=0.0)
    assert a.currents_a == (32.0,)
    a = cycles(g, chargers, 10, 19, a.state, ct_value=38.0)  # paused at t=10
    assert a.currents_a == (0.0,)
    assert a.connectors[0].reason is Reason.PAUSED_NO_ROOM
    a = cycles(g, chargers, 20, 129, a.state, ct_value=0.0)
    assert a.currents_a == (0.0,)
    assert a.connectors[0].reason is Reason.PAUSED_MIN_PAUSE
    a = run(g, chargers, now=130.0, state=a.state, ct_reading=ct(0, 0, 0, at=130.0))
    assert a.currents_a == (32.0,)


def test_a_connector_that_cannot_take_6a_is_not_admitted() -> None:
    a = run(group(limit_a=100.0), [charger("c1", conn(1, max_a=5.0))])
    assert a.currents_a == (0.0,)
    assert a.connectors[0].reason is Reason.CONNECTOR_MAX


def test_two_connectors_of_a_charger_below_12a_take_turns() -> None:
    a = run(group(limit_a=100.0), [charger("c1", conn(1), conn(2), limit_a=10.0)])
    assert list(a.currents_a) == [10.0, 0.0]
    assert a.result("c1", 2).reason is Reason.PAUSED_NO_ROOM


# --- Rule 3 helpers: demand capping --------------------------------------------------

def test_demand_cap_gives_what_an_ev_does_not_take_to_the_others_and_probes() -> None:
    g = group(limit_a=40.0, settle_s=5.0, demand_cap_after_s=60.0, demand_probe_every_s=600.0)
    slow = lambda: charger("a", conn(1, measured=(8.0, 8.0, 8.0)))  # noqa: E731
    fast = lambda: charger("b", conn(1, measured=(20.0, 20.0, 20.0)))  # noqa: E731
    a = run(g, [slow(), fast()], now=0.0)
    assert list(a.currents_a) == [20.0, 20.0]
    for now in range(1, 61):
        a = run(g, [slow(), fast()], now=float(now), state=a.state)
    assert list(a.currents_a) == [20.0, 20.0]  # 60 s below offer: not yet
    a = run(g, [slow(), fast()], now=61.0, state=a.state)
    assert a.current_a("a", 1) == 11.0  # 8 A drawn + 3 A headroom
    assert a.result("a", 1).reason is Reason.DEMAND_CAP
    # Make before break: b may only take a's current once a's EV had time to follow.
    assert a.current_a("b", 1) == 20.0
    assert a.result("b", 1).reason is Reason.TRANSITION
    for now in range(62, 68):
        a = run(g, [slow(), fast()], now=float(now), state=a.state)
    assert list(a.currents_a) == [11.0, 29.0]
    # The probe: after 600 s capped (t=661) the cap is lifted and, once b's decrease
    # has settled, a gets its fair share again.
    for now in range(68, 667):
        a = run(g, [slow(), fast()], now=float(now), state=a.state)
    assert a.current_a("a", 1) == 20.0


def test_demand_cap_is_lifted_as_soon_as_the_ev_draws_close_to_it() -> None:
    g = group(limit_a=40.0, settle_s=0.0, demand_cap_after_s=60.0)
    b = charger("b", conn(1, measured=(20.0, 20.0, 20.0)))
    a = None
    for now in range(62):
        a = run(g, [charger("a", conn(1, measured=(8.0, 8.0, 8.0))), b],
                now=float(now), state=a.state if a else None)
    assert a is not None and a.current_a("a", 1) == 11.0
    a = run(g, [charger("a", conn(1, measured=(10.5, 10.5, 10.5))), b],
            now=62.0, state=a.state)
    assert a.current_a("a", 1) == 20.0


# --- Rule 4: dynamics ---------------------------------------------------------------

def test_increases_are_ramped_and_decreases_are_immediate() -> None:
    g = group(limit_a=100.0, ramp_up_a=8.0)
    chargers = [charger("c1", conn(1))]
    seen = []
    a = None
    for now in range(4):
        a = run(g, chargers, now=float(now), state=a.state if a else None)
        seen.append(a.currents_a[0])
    assert seen == [14.0, 22.0, 30.0, 32.0]
    assert a is not None
    down = run(group(limit_a=10.0, ramp_up_a=8.0), chargers, now=4.0, state=a.state)
    assert down.currents_a == (10.0,)


def test_stale_ct_allows_no_increase_and_lost_ct_falls_back_to_static() -> None:
    g = group(limit_a=40.0, **{**DYN, "fallback_limit_a": 25.0},
              ct_placement=CtPlacement.OTHER_LOADS, ct_stale_after_s=2.5, ct_timeout_s=10.0)
    chargers = [charger("c1", conn(1)), charger("c2", conn(1, wants=False))]
    a = cycles(g, chargers, 0, 4, None, ct_value=30.0)
    assert a.currents_a == (10.0, 0.0)
    # Stale (3 s old): even if the old sample would allow more, nothing goes up; a new
    # EV does not start.
    wanting = [chargers[0], charger("c2", conn(1))]
    old = ct(10, 10, 10, at=2.0)
    stale = a
    for now in range(5, 13):
        stale = run(g, wanting, now=float(now), state=stale.state, ct_reading=old)
        assert stale.ct_status is CtStatus.STALE
        assert stale.currents_a == (10.0, 0.0)
        assert {r.reason for r in stale.connectors} == {Reason.CT_STALE}
    # Lost (over 10 s old): share the static fallback limit.
    lost = run(g, wanting, now=13.0, state=stale.state, ct_reading=old)
    assert lost.ct_status is CtStatus.LOST
    assert lost.currents_a == (12.5, 12.5)
    assert [p.limit_a for p in lost.phases] == [25.0] * 3
    # No reading at all, or no clamp on a phase of the group: lost too.
    assert run(g, wanting, now=11.0).ct_status is CtStatus.LOST
    assert run(g, wanting, now=0.0, ct_reading=ct(10, None, 10)).ct_status is CtStatus.LOST


def test_make_before_break_holds_an_increase_until_the_decrease_took_effect() -> None:
    g = group(limit_a=40.0, settle_s=5.0)
    a = run(g, [charger("a", conn(1)), charger("b", conn(1, max_a=10.0))], now=0.0)
    assert list(a.currents_a) == [30.0, 10.0]
    # b's cable limit is lifted and a must come down to 20 A: a drops at once, b waits.
    both = [charger("a", conn(1)), charger("b", conn(1))]
    a = run(g, both, now=1.0, state=a.state)
    assert list(a.currents_a) == [20.0, 10.0]
    assert a.result("b", 1).reason is Reason.TRANSITION
    a = cycles(g, both, 2, 5, a.state)
    assert list(a.currents_a) == [20.0, 10.0]
    a = run(g, both, now=6.0, state=a.state)
    assert list(a.currents_a) == [20.0, 20.0]


def test_a_slow_ev_still_drawing_its_old_current_holds_the_increase_until_it_follows() -> None:
    # As above, but a's EV takes 8 s (> settle_s = 5 s) to follow its decrease: its meter
    # still reads 30 A, so b may not rise into room a still uses; once a reads 20 A it may.
    g = group(limit_a=40.0, settle_s=5.0)
    a = run(g, [charger("a", conn(1)), charger("b", conn(1, max_a=10.0))], now=0.0)
    slow = [charger("a", conn(1, measured=(30.0, 30.0, 30.0))), charger("b", conn(1))]
    a = cycles(g, slow, 1, 7, a.state)
    assert currents(a) == {("a", 1): 20.0, ("b", 1): 10.0}
    assert a.result("b", 1).reason is Reason.TRANSITION
    followed = [charger("a", conn(1, measured=(20.0, 20.0, 20.0))), charger("b", conn(1))]
    a = run(g, followed, now=8.0, state=a.state)
    assert currents(a) == {("a", 1): 20.0, ("b", 1): 20.0}


def test_a_draw_above_the_grant_long_after_a_decrease_is_not_a_slow_follower() -> None:
    # 15 s (FOLLOW_LIMIT_S) after its decrease a reads above its grant: that is not an EV
    # following late, and b is not held back for it.
    g = group(limit_a=40.0, settle_s=5.0)
    a = run(g, [charger("a", conn(1)), charger("b", conn(1, max_a=10.0))], now=0.0)
    slow = [charger("a", conn(1, measured=(30.0, 30.0, 30.0))), charger("b", conn(1))]
    a = cycles(g, slow, 1, 15, a.state)
    assert currents(a)[("b", 1)] == 10.0
    a = run(g, slow, now=16.0, state=a.state)
    assert currents(a) == {("a", 1): 20.0, ("b", 1): 20.0}


# --- Scenario C: a group on one site phase ----------------------------------------------

def test_scenario_c_group_covers_one_site_phase() -> None:
    g = group(name="garage-L2", phases=(L2,), limit_a=32.0, mode=Mode.DYNAMIC,
              fallback_limit_a=16.0, margin_a=2.0, ct_placement=CtPlacement.OTHER_LOADS)
    chargers = [charger(f"c{i}", conn(1, wiring=single(L2))) for i in (1, 2)]
    a = run(g, chargers, ct_reading=ct(None, 12.0, None))
    assert list(a.currents_a) == [9.0, 9.0]
    assert [p.phase for p in a.phases] == [L2]


# --- Determinism -----------------------------------------------------------------------

def test_same_inputs_give_the_same_outputs() -> None:
    g = group(limit_a=20.0)
    chargers = singles_on_l1(4)
    a, b = run(g, chargers, now=5.0), run(g, chargers, now=5.0)
    assert a.connectors == b.connectors and a.phases == b.phases
    assert all(math.isclose(x, round(x, 1)) for x in a.currents_a)


# --- Found by mutation testing: each of these kills a mutant the suite let through ---------

def test_min_run_time_holds_off_rotation_even_when_the_rotation_period_is_shorter() -> None:
    # c2 has waited the 60 s rotation period at t=60, but c1 must run 300 s first.
    g = group(limit_a=7.0, rotation_period_s=60.0, min_run_s=300.0, settle_s=0.0)
    chargers = singles_on_l1(2)
    a = None
    for now in range(300):
        a = run(g, chargers, now=float(now), state=a.state if a else None)
        assert currents(a) == {("c1", 1): 7.0, ("c2", 1): 0.0}, now
        assert a.result("c2", 1).reason is Reason.PAUSED_NO_ROOM, now
    assert a is not None
    a = run(g, chargers, now=300.0, state=a.state)
    assert currents(a) == {("c1", 1): 0.0, ("c2", 1): 7.0}
    assert a.result("c1", 1).reason is Reason.PAUSED_ROTATION


def test_an_expired_lease_stays_reserved_until_the_ev_had_settle_s_to_follow() -> None:
    # c3 goes offline at t=1; its lease (granted t=0, 3 s) runs out at t=3 and its agent
    # drops to 0 A (Maximise) by itself, but its EV may take settle_s = 5 s to follow:
    # its 20 A stays reserved until t=8.
    g = group(limit_a=60.0, offline_strategy=OfflineStrategy.MAXIMISE, lease_s=3.0,
              settle_s=5.0)
    chargers = three_singles()
    a = run(g, chargers, now=0.0)
    assert list(a.currents_a) == [20.0, 20.0, 20.0]
    chargers[2] = with_online(chargers[2], False)
    for now in range(1, 8):
        a = run(g, chargers, now=float(now), state=a.state)
        assert [p.reserved_a for p in a.phases] == [20.0] * 3, now
        assert list(a.currents_a) == [20.0, 20.0, 0.0], now
    a = run(g, chargers, now=8.0, state=a.state)
    assert [p.reserved_a for p in a.phases] == [0.0] * 3
    assert list(a.currents_a) == [30.0, 30.0, 0.0]


def test_demand_cap_never_goes_below_6a() -> None:
    # a draws 1 A of 20 A: capped at max(6, 1 + 3) = 6 A, not 4 A.
    g = group(limit_a=40.0, settle_s=0.0, demand_cap_after_s=60.0)
    chargers = [charger("a", conn(1, measured=(1.0, 1.0, 1.0))),
                charger("b", conn(1, measured=(20.0, 20.0, 20.0)))]
    a = cycles(g, chargers, 0, 61, None)
    assert currents(a) == {("a", 1): 6.0, ("b", 1): 32.0}
    assert a.result("a", 1).reason is Reason.DEMAND_CAP


def test_an_increase_cut_below_6a_by_make_before_break_becomes_0() -> None:
    # 36 A: a runs at 32 A alone. b arrives: a drops to 18 A at once but counts at 32 A
    # for settle_s, so b may only have 4 A: below 6 A, so 0 A.
    g = group(limit_a=36.0, settle_s=5.0)
    a = run(g, [charger("a", conn(1)), charger("b", conn(1, wants=False))], now=0.0)
    assert list(a.currents_a) == [32.0, 0.0]
    a = run(g, [charger("a", conn(1)), charger("b", conn(1))], now=1.0, state=a.state)
    assert currents(a) == {("a", 1): 18.0, ("b", 1): 0.0}
    assert a.result("b", 1).reason is Reason.TRANSITION


def test_an_offline_member_is_reserved_at_a_decrease_it_had_no_time_to_follow() -> None:
    # a runs at 32 A alone; at t=1 b arrives: a drops to 20 A, b gets 40 - 32 = 8 A. At
    # t=2 a goes offline before its EV followed: 32 A stays reserved, b stays at 8 A.
    g = group(limit_a=40.0, settle_s=5.0, offline_strategy=OfflineStrategy.MAXIMISE)
    a = run(g, [charger("a", conn(1)), charger("b", conn(1, wants=False))], now=0.0)
    both = [charger("a", conn(1)), charger("b", conn(1))]
    a = run(g, both, now=1.0, state=a.state)
    assert currents(a) == {("a", 1): 20.0, ("b", 1): 8.0}
    a = run(g, [with_online(both[0], False), both[1]], now=2.0, state=a.state)
    assert [p.reserved_a for p in a.phases] == [32.0] * 3
    assert currents(a) == {("a", 1): 0.0, ("b", 1): 8.0}


def test_a_member_back_after_its_lease_ran_out_does_not_free_room_for_increases() -> None:
    # Regression (found by the property test): c0 (6 A) is offline at t=3..4; its lease
    # ran out at t=5 but its EV may draw 6 A until t=10. Its return must not let c1 rise
    # into room that the held 6 A still occupies.
    g = group(limit_a=40.0, phases=(L2,), settle_s=5.0, lease_s=3.0, resume_hysteresis_a=0.0,
              offline_strategy=OfflineStrategy.MAXIMISE)
    c0 = charger("c0", conn(1, wiring=single(L2), max_a=6.0), limit_a=6.0)
    c1 = charger("c1", conn(1, wiring=single(L2), max_a=10.0), limit_a=10.0)
    c2 = charger("c2", conn(1, wiring=single(L2), max_a=10.0), limit_a=10.0)
    c3 = charger("c3", conn(1, wiring=single(L2), max_a=6.0),
                 conn(2, wiring=single(L2), max_a=10.0), limit_a=16.0)
    a = None
    for now in range(3):
        a = run(g, [c0, with_online(c1, False), c2, c3], now=float(now),
                state=a.state if a else None)
    assert a is not None
    for now in (3, 4):
        a = run(g, [with_online(c0, False), c1, c2, c3], now=float(now), state=a.state)
    assert currents(a)[("c1", 1)] == 8.0
    a = run(g, [c0, c1, c2, c3], now=5.0, state=a.state)
    assert currents(a)[("c1", 1)] == 8.0
