"""Admission's fair order (master/allocation/admission.py): least session energy in whole
kWh, then longest waiting. A welcome slot's few Wh must not put a car that has waited for
hours behind one plugged in after it (io7-sim random:13, issue 12: such a car got 50 Wh
in a 2.6 h stay while later cars took every turn)."""

from __future__ import annotations

import numpy as np

from master.allocation import admission


def two_waiting(energy_wh: tuple[float, float], waiting_since_s: tuple[float, float]
                ) -> admission.Candidates:
    """Two paused single-phase cars on L1, neither new, neither running."""
    no = np.zeros(2, dtype=bool)
    nan = np.full(2, np.nan)
    return admission.Candidates(
        eligible=np.ones(2, dtype=bool), running=no, in_min_pause=no,
        waiting_since_s=np.array(waiting_since_s), running_since_s=nan, started_at_s=nan,
        energy_wh=np.array(energy_wh), priority=np.zeros(2),
        loads=np.array([[True, False, False], [True, False, False]]),
        partner=np.full(2, -1, dtype=np.int64), charger_limit_a=np.full(2, 32.0),
        new=no, in_welcome=no, lender=no, yielding=no, idle=no)


def admitted(c: admission.Candidates) -> list[bool]:
    # 10 A on L1: room for one car at 6 A with the 4 A resume hysteresis.
    a = admission.admit(c, np.array([10.0, 50.0, 50.0]), now_s=6000.0, hysteresis_a=4.0,
                        rotation_period_s=5400.0, min_run_s=300.0)
    return [bool(x) for x in a.admitted]


def test_a_welcome_slots_energy_does_not_cost_the_longest_waiting_car_its_turn() -> None:
    # Car 0 had its 45 s welcome (50 Wh on three lines) and has waited since t=0; car 1
    # plugged in at t=3000 and had none: car 0 goes first.
    assert admitted(two_waiting((50.0, 0.0), (0.0, 3000.0))) == [True, False]


def test_a_whole_kwh_more_still_waits_behind_the_car_with_less() -> None:
    assert admitted(two_waiting((1500.0, 200.0), (0.0, 3000.0))) == [False, True]
