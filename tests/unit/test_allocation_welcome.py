"""Issue 12 §2 rules with worked numbers: phases kept for the session, a new line counted
on every wired line, the welcome slot (and the one borrowed on a full site), a full car's
room given back at once."""

from __future__ import annotations

from master.allocation import CtPlacement, Mode, Reason
from master.allocation.phases import PHASE_CONFIRM_S
from master.allocation.welcome import WELCOME_S
from tests.alloc_support import L1, L2, L3, charger, conn, ct, currents, cycles, group, run

ONE = (True, False, False)
ALL = (True, True, True)


def test_a_paused_single_phase_car_is_admitted_on_its_idle_line() -> None:
    # 3 x 20 A, CT on the other loads: the building draws 12 A on L1, nothing on L2/L3.
    # a is three-phase; c is wired L2-L3-L1 and was seen loading its line 1 (site L2)
    # this session (the agent's mask, kept through pauses).
    g = group(limit_a=20.0, mode=Mode.DYNAMIC, fallback_limit_a=20.0, margin_a=0.0,
              ct_placement=CtPlacement.OTHER_LOADS)
    a = charger("a", conn(1, ev_lines=ALL, energy_wh=5000.0))
    seen = run(g, [a, charger("c", conn(1, wiring=(L2, L3, L1), ev_lines=ONE))],
               ct_reading=ct(12.0, 0.0, 0.0))
    # L1 has 20 - 12 = 8 A: a gets 8 A there; c, on L2 only, gets the rest of L2: 12 A.
    assert currents(seen) == {("a", 1): 8.0, ("c", 1): 12.0}
    # Its lines unknown (mask 0), c counts on L1 too: 8 A holds one car at 6 A, not two.
    blind = run(g, [a, charger("c", conn(1, wiring=(L2, L3, L1)))],
                ct_reading=ct(12.0, 0.0, 0.0))
    assert sorted(currents(blind).values()) == [0.0, 8.0]


def test_a_car_that_starts_loading_a_new_line_counts_on_every_wired_line_at_once() -> None:
    # 20 A per phase. a is seen on L1 only, b is single-phase on L2: a 20 A, b 20 A.
    g = group(limit_a=20.0, settle_s=0.0)
    b = charger("b", conn(1, wiring=(L2, None, None), energy_wh=10.0))
    first = [charger("a", conn(1, ev_lines=ONE)), b]
    s = cycles(g, first, 0, 5, None)
    assert currents(s) == {("a", 1): 20.0, ("b", 1): 20.0}
    # a's meter now shows all three lines: counted on L1-L3 at once, L2 is shared 10/10.
    switched = [charger("a", conn(1, ev_lines=ALL)), b]
    s = run(g, switched, now=6.0, state=s.state)
    assert currents(s) == {("a", 1): 10.0, ("b", 1): 10.0}
    # If the mask falls back to L1 (a glitch), a still counts on every wired line for
    # PHASE_CONFIRM_S after the new line appeared; then on L1 only.
    s = cycles(g, first, 7, int(6 + PHASE_CONFIRM_S) - 1, s.state)
    assert currents(s)[("b", 1)] == 10.0
    s = run(g, first, now=6.0 + PHASE_CONFIRM_S, state=s.state)
    assert currents(s) == {("a", 1): 20.0, ("b", 1): 20.0}


def test_a_new_car_on_a_full_site_gets_a_borrowed_welcome_slot_and_the_lender_returns() -> None:
    # 7 A on L1 (static), single-phase cars: a has run 300 s (min_run_s) at 7 A; b plugs
    # in. 6 + 6 > 7, so b has no room: a lends its slot for WELCOME_S, then comes back
    # first, and b waits its rotation turn (15 min) counted on its real line.
    g = group(limit_a=7.0, settle_s=0.0, min_run_s=300.0, rotation_period_s=900.0)
    a_only = [charger("a", conn(1, wiring=(L1, None, None))),
              charger("b", conn(1, wiring=(L1, None, None), wants=False))]
    s = cycles(g, a_only, 0, 299, None)
    both = [a_only[0], charger("b", conn(1, wiring=(L1, None, None)))]
    s = run(g, both, now=300.0, state=s.state)
    assert currents(s) == {("a", 1): 0.0, ("b", 1): 7.0}
    assert s.result("a", 1).reason is Reason.PAUSED_ROTATION
    s = cycles(g, both, 301, int(300 + WELCOME_S) - 1, s.state)
    assert currents(s) == {("a", 1): 0.0, ("b", 1): 7.0}
    s = run(g, both, now=300.0 + WELCOME_S, state=s.state)
    assert currents(s) == {("a", 1): 7.0, ("b", 1): 0.0}
    # b's wait started at plug-in (t = 300), not after its welcome: its turn is at 1200.
    s = cycles(g, both, int(301 + WELCOME_S), 1199, s.state)
    assert currents(s)[("b", 1)] == 0.0
    s = run(g, both, now=1200.0, state=s.state)
    assert currents(s) == {("a", 1): 0.0, ("b", 1): 7.0}


def test_a_new_car_fits_without_the_hysteresis_but_a_returning_one_needs_it() -> None:
    # 13 A on L1, 4 A hysteresis: a runs; b is new (never offered): 6 + 6 <= 13, admitted
    # at once although 6 + 6 + 4 > 13.
    g = group(limit_a=13.0, resume_hysteresis_a=4.0, settle_s=0.0)
    a_only = [charger("a", conn(1, wiring=(L1, None, None))),
              charger("b", conn(1, wiring=(L1, None, None), wants=False))]
    s = run(g, a_only, now=0.0)
    both = [a_only[0], charger("b", conn(1, wiring=(L1, None, None)))]
    s = run(g, both, now=1.0, state=s.state)
    assert currents(s) == {("a", 1): 6.5, ("b", 1): 6.5}


def test_a_full_car_probed_again_gives_its_room_back_within_seconds() -> None:
    # 20 A on L1; a full car f (draws 0 A) and a charging car c (draws what it gets).
    # f is below its offer from t = 1 (its first 10 A cycle): capped at 6 A at t = 16
    # (idle_cap_after_s = 15 s, not demand_cap_after_s = 60 s); c gets 14 A.
    g = group(limit_a=20.0, settle_s=0.0, idle_cap_after_s=15.0, demand_cap_after_s=60.0,
              demand_probe_every_s=600.0)

    def cars(c_draw: float) -> list:  # type: ignore[type-arg]
        return [charger("f", conn(1, wiring=(L1, None, None), ev_lines=ONE, energy_wh=9000.0)),
                charger("c", conn(1, wiring=(L1, None, None), ev_lines=ONE,
                                  measured=(c_draw, 0.0, 0.0)))]
    s = run(g, cars(0.0), now=0.0)
    assert currents(s) == {("f", 1): 10.0, ("c", 1): 10.0}
    for now in range(1, 17):
        s = run(g, cars(currents(s)[("c", 1)]), now=float(now), state=s.state)
    assert currents(s) == {("f", 1): 6.0, ("c", 1): 14.0}
    assert s.result("f", 1).reason is Reason.DEMAND_CAP
    # At the probe (600 s after the cap) f gets its share back, and 15 s later, still
    # drawing nothing, its room goes back to c (before: demand_cap_after_s = 60 s).
    for now in range(17, 617):
        s = run(g, cars(currents(s)[("c", 1)]), now=float(now), state=s.state)
    assert currents(s)[("f", 1)] == 10.0
    for now in range(617, 632):
        s = run(g, cars(currents(s)[("c", 1)]), now=float(now), state=s.state)
    assert currents(s) == {("f", 1): 6.0, ("c", 1): 14.0}


def test_after_its_welcome_a_guest_yields_to_its_lender_even_while_the_lender_settles() -> None:
    # 6 A on L1, settle_s 5 s: a runs from t = 0; b plugs in at 300 (a has run min_run_s).
    # a lends at 300; b is admitted but held at 0 A until a's decrease has settled (305).
    # At 300 + WELCOME_S = 345 b yields and a comes back first (6 A from 350, after b's
    # own decrease has settled); b waits its rotation turn like any other car.
    g = group(limit_a=6.0, settle_s=5.0, min_run_s=300.0, rotation_period_s=900.0,
              min_pause_s=0.0, resume_hysteresis_a=0.0)
    a_only = [charger("a", conn(1, wiring=(L1, None, None))),
              charger("b", conn(1, wiring=(L1, None, None), wants=False))]
    s = cycles(g, a_only, 0, 299, None)
    both = [a_only[0], charger("b", conn(1, wiring=(L1, None, None)))]
    s = run(g, both, now=300.0, state=s.state)
    assert currents(s) == {("a", 1): 0.0, ("b", 1): 0.0}
    s = cycles(g, both, 301, 305, s.state)
    assert currents(s) == {("a", 1): 0.0, ("b", 1): 6.0}
    s = cycles(g, both, 306, int(300 + WELCOME_S), s.state)
    assert currents(s) == {("a", 1): 0.0, ("b", 1): 0.0}
    s = cycles(g, both, int(301 + WELCOME_S), 350, s.state)
    assert currents(s) == {("a", 1): 6.0, ("b", 1): 0.0}
    s = cycles(g, both, 351, 1199, s.state)
    assert currents(s)[("b", 1)] == 0.0


def test_no_car_is_paused_by_lending_or_rotation_within_min_run_s_of_its_latest_start() -> None:
    # 6 A on L1, settle 0, min_run_s 300, rotation 900: a runs from 0; b and c want power
    # from 0 (new). At 300 a lends to b; at 345 a is back (it keeps its run time since 0
    # for fairness) but restarted at 345: it may not lend to c before 345 + 300 = 645.
    g = group(limit_a=6.0, settle_s=0.0, min_run_s=300.0, rotation_period_s=900.0,
              min_pause_s=0.0, resume_hysteresis_a=0.0)
    cars = [charger(k, conn(1, wiring=(L1, None, None))) for k in ("a", "b", "c")]
    s = run(g, cars[:1], now=0.0)
    s = cycles(g, cars, 1, 299, s.state)
    s = run(g, cars, now=300.0, state=s.state)
    assert currents(s) == {("a", 1): 0.0, ("b", 1): 6.0, ("c", 1): 0.0}
    s = run(g, cars, now=300.0 + WELCOME_S, state=s.state)
    assert currents(s) == {("a", 1): 6.0, ("b", 1): 0.0, ("c", 1): 0.0}
    s = run(g, cars, now=301.0 + WELCOME_S, state=s.state)
    assert currents(s) == {("a", 1): 6.0, ("b", 1): 0.0, ("c", 1): 0.0}
    s = cycles(g, cars, int(302 + WELCOME_S), 644, s.state)
    assert currents(s) == {("a", 1): 6.0, ("b", 1): 0.0, ("c", 1): 0.0}
    s = run(g, cars, now=645.0, state=s.state)
    assert currents(s) == {("a", 1): 0.0, ("b", 1): 0.0, ("c", 1): 6.0}
    # a is back at 690. b has waited since 0: its rotation turn is due from 900, but a
    # restarted at 690 (run time kept since 0): it runs until 990, then b gets its turn.
    s = cycles(g, cars, 646, 690, s.state)
    assert currents(s) == {("a", 1): 6.0, ("b", 1): 0.0, ("c", 1): 0.0}
    s = cycles(g, cars, 691, 989, s.state)
    assert currents(s) == {("a", 1): 6.0, ("b", 1): 0.0, ("c", 1): 0.0}
    s = run(g, cars, now=990.0, state=s.state)
    assert currents(s) == {("a", 1): 0.0, ("b", 1): 6.0, ("c", 1): 0.0}
