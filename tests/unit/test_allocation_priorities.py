"""Issue 12 §3, worked numbers: priority classes, sharing by power, departure weights.

Single-phase rows on L1 unless said; `group()` from tests.alloc_support (quick dynamics)."""

from __future__ import annotations

from dataclasses import replace

from master.allocation import Reason, Snapshot, allocate
from master.allocation.model import Need
from tests.alloc_support import L1, charger, conn, currents, group, run, single


def test_a_higher_class_is_filled_first_and_the_lower_keeps_6a() -> None:
    g = group(limit_a=20.0, priorities=(("a", 0, 1),))
    a = run(g, [charger("a", conn(1, wiring=single(L1))), charger("b", conn(1, wiring=single(L1)))])
    # 20 A: b keeps its 6 A, a takes the other 14 A (in amps, one class: 10 A each).
    assert currents(a) == {("a", 1): 14.0, ("b", 1): 6.0}


def test_a_connector_entry_beats_its_chargers_and_the_input_class_counts_too() -> None:
    g = group(limit_a=20.0, priorities=(("a", 0, 1), ("a", 1, 0)))
    chargers = [charger("a", conn(1, wiring=single(L1))),
                charger("b", conn(1, wiring=single(L1), priority=2))]
    assert currents(run(g, chargers)) == {("a", 1): 6.0, ("b", 1): 14.0}


def test_a_higher_class_is_admitted_first() -> None:
    # Room for one car (10 A): the class-1 car, though it has more energy this session.
    g = group(limit_a=10.0, priorities=(("b", 0, 1),))
    chargers = [charger("a", conn(1, wiring=single(L1))),
                charger("b", conn(1, wiring=single(L1), energy_wh=5000.0))]
    a = run(g, chargers)
    assert currents(a) == {("a", 1): 0.0, ("b", 1): 10.0}
    assert a.result("a", 1).reason is Reason.PAUSED_NO_ROOM


def test_a_waiting_higher_class_pre_empts_a_lower_one_after_its_min_run() -> None:
    # b (class 0) charges alone; a (class 1) plugs in at t=100 on a 10 A site. After a's
    # welcome slot and b's return, b has run min_run_s (60 s): a takes its place.
    g = group(limit_a=10.0, min_run_s=60.0, min_pause_s=0.0, settle_s=0.0,
              priorities=(("a", 0, 1),))
    b = charger("b", conn(1, wiring=single(L1)))
    a_idle, a_on = charger("a", conn(1, wiring=single(L1), wants=False)), \
        charger("a", conn(1, wiring=single(L1)))
    state = None
    for now in range(0, 400):
        alloc = run(g, [a_idle if now < 100 else a_on, b], now=float(now), state=state)
        state = alloc.state
    assert currents(alloc) == {("a", 1): 10.0, ("b", 1): 0.0}
    assert alloc.result("b", 1).reason in (Reason.PAUSED_ROTATION, Reason.PAUSED_NO_ROOM)


def test_a_starved_lower_class_gets_its_turn_within_the_bound() -> None:
    # a (class 1) wants power all day on a 7 A site; b (class 0) plugs in at t=10. It may
    # wait at most priority_max_starve_s (600 s) + min_run_s (60 s) for its turn.
    g = group(limit_a=7.0, min_run_s=60.0, min_pause_s=0.0, settle_s=0.0,
              rotation_period_s=86400.0, priority_max_starve_s=600.0,
              priorities=(("a", 0, 1),))
    a = charger("a", conn(1, wiring=single(L1)))
    b_idle, b_on = charger("b", conn(1, wiring=single(L1), wants=False)), \
        charger("b", conn(1, wiring=single(L1)))
    state, waited, longest = None, 0, 0
    for now in range(0, 3000):
        alloc = run(g, [a, b_idle if now < 10 else b_on], now=float(now), state=state)
        state = alloc.state
        if now >= 10:
            waited = waited + 1 if alloc.current_a("b", 1) == 0.0 else 0
            longest = max(longest, waited)
    assert 600 <= longest <= 600 + 60 + 2


def test_sharing_by_power_gives_a_single_phase_car_three_times_the_amps_above_6a() -> None:
    three = conn(1, ev_lines=(True, True, True))
    one = conn(1, wiring=single(L1))
    chargers = [charger("one", one), charger("three", three)]
    assert currents(run(group(limit_a=32.0), chargers)) == {("one", 1): 16.0,
                                                             ("three", 1): 16.0}
    # L1 full: 6 + 6 A, then 3 L + L = 20 A: L = 5, so 6 + 15 and 6 + 5 A.
    by_power = run(group(limit_a=32.0, share_by_power=1.0), chargers)
    assert currents(by_power) == {("one", 1): 21.0, ("three", 1): 11.0}


def test_a_car_that_must_leave_soon_gets_more_and_the_other_keeps_its_floor() -> None:
    chargers = [charger("a", conn(1, ev_lines=(True, True, True))),
                charger("b", conn(1, ev_lines=(True, True, True)))]
    g = group(limit_a=32.0)
    # a must leave in 1 h and needs 11.04 kWh: 11040 / (230 V x 3 x 1 h) = 16 A, half its
    # 32 A cap: weight 1 + 0.5 = 1.5. Above 6 A each: 1.5 L + L = 20 A, L = 8.
    need = Need(charger_id="a", connector_id=1, departure_in_s=3600.0, energy_wh=11040.0)
    snap = Snapshot(now_s=0.0, group=g, chargers=tuple(chargers), needs=(need,))
    got = currents(allocate(snap))
    assert got == {("a", 1): 18.0, ("b", 1): 14.0}
    # The floor: b keeps at least half its share above 6 A had nothing been known (10 A).
    assert got[("b", 1)] >= 6.0 + 10.0 / 2


def test_with_nothing_known_the_allocation_is_identical() -> None:
    chargers = (charger("a", conn(1, ev_lines=(True, True, True), energy_wh=900.0)),
                charger("b", conn(1, wiring=single(L1)), conn(2, wiring=single(L1))))
    g = group(limit_a=25.0)
    base = Snapshot(now_s=0.0, group=g, chargers=chargers)
    unknowns = (
        replace(base, needs=(Need(charger_id="zz", connector_id=1, departure_in_s=60.0,
                                  energy_wh=5000.0),)),  # not a member
        replace(base, needs=(Need(charger_id="a", connector_id=1, departure_in_s=-60.0,
                                  energy_wh=5000.0),)),  # its usual time is past
        replace(base, group=replace(g, priorities=(("a", 0, 4), ("b", 0, 4)))),  # one class
    )
    want = allocate(base)
    for snap in unknowns:
        got = allocate(snap)
        assert got.currents_a == want.currents_a and got.reasons == want.reasons
