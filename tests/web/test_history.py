"""The live page's 24 h ring buffer (master/web/history.py): named rows, no clock."""

from __future__ import annotations

import inspect
import math
import sys

import pytest

from master.web import live
from master.web.history import (
    INTERVAL_S,
    MAX_CONNECTORS,
    MAX_VALUES,
    SLOTS,
    ConnectorPoint,
    History,
    PhasePoint,
)

T0 = 1_700_000_000.0  # a wall-clock start on a slot boundary (divisible by 10)


def phase(limit: float = 32.0, ct: float | None = 10.0, drawn: float = 8.0,
          allocated: float = 12.0) -> dict[str, PhasePoint]:
    return {"L1": PhasePoint(limit_a=limit, ct_a=ct, drawn_a=drawn, allocated_a=allocated)}


def conn(offer: float, draw: float | None = None, key: str = "io7-01/1"
         ) -> dict[str, ConnectorPoint]:
    return {key: ConnectorPoint(offer_a=offer, draw_a=draw)}


def test_empty_history_has_no_points() -> None:
    assert History().query() == {"interval_s": INTERVAL_S, "t": [], "phases": {},
                                 "connectors": {}}


def test_the_last_value_in_a_slot_wins_and_each_slot_is_one_point() -> None:
    h = History()
    h.record(T0, phase(ct=5.0), conn(6.0, 5.9))
    h.record(T0 + 9.9, phase(ct=7.0), conn(16.0, 15.8))
    h.record(T0 + 10, phase(ct=9.0), conn(20.0))
    day = h.query()
    t = day["t"]
    assert t == [T0, T0 + 10]
    l1 = day["phases"]["L1"]  # type: ignore[index]
    assert l1["ct_a"] == [7.0, 9.0] and l1["limit_a"] == [32.0, 32.0]
    c = day["connectors"]["io7-01/1"]  # type: ignore[index]
    assert c["offer_a"][-2:] == [16.0, 20.0]
    assert c["draw_a"][-2:] == [15.8, None]  # not measured: a gap, not 0 A


def test_a_slot_left_unfed_is_a_gap() -> None:
    h = History()
    h.record(T0, phase(ct=5.0), conn(6.0))
    h.record(T0 + 3 * INTERVAL_S, phase(ct=6.0), conn(7.0))
    ct = h.query()["phases"]["L1"]["ct_a"]  # type: ignore[index]
    assert ct[-4:] == [5.0, None, None, 6.0]


def test_missing_ct_is_a_gap_and_limits_stay() -> None:
    h = History()
    h.record(T0, phase(ct=None), {})
    l1 = h.query()["phases"]["L1"]  # type: ignore[index]
    assert l1["ct_a"][-1] is None and l1["limit_a"][-1] == 32.0


def test_a_day_later_the_old_sample_is_gone() -> None:
    h = History()
    h.record(T0, phase(ct=5.0), conn(6.0))
    h.record(T0 + SLOTS * INTERVAL_S, phase(ct=9.0), {})  # same ring index, next day
    day = h.query()
    assert day["phases"]["L1"]["ct_a"] == [None] * (SLOTS - 1) + [9.0]  # type: ignore[index]
    assert day["connectors"]["io7-01/1"]["offer_a"] == [None] * SLOTS  # type: ignore[index]


def test_a_sample_older_than_the_day_kept_is_ignored() -> None:
    h = History()
    h.record(T0 + SLOTS * INTERVAL_S, phase(ct=9.0), {})
    h.record(T0, phase(ct=5.0), {})  # a clock stepped back a day: would overwrite 9.0
    assert h.query()["phases"]["L1"]["ct_a"][-1] == 9.0  # type: ignore[index]


@pytest.mark.parametrize("now", [math.nan, math.inf, -1.0])
def test_nonsense_time_is_ignored(now: float) -> None:
    h = History()
    h.record(now, phase(), conn(6.0))
    assert h.query()["t"] == []


def test_thinning_keeps_the_peak_current_and_the_lowest_limit() -> None:
    h = History()
    for k, (ct, limit) in enumerate([(5.0, 32.0), (31.5, 32.0), (4.0, 20.0), (6.0, 32.0)]):
        h.record(T0 + k * INTERVAL_S, phase(ct=ct, limit=limit), {})
    day = h.query(points=1)  # one bucket of 4 slots
    assert day["interval_s"] == 4 * INTERVAL_S and day["t"] == [T0]
    l1 = day["phases"]["L1"]  # type: ignore[index]
    assert l1["ct_a"] == [31.5] and l1["limit_a"] == [20.0]


def test_an_hour_shows_that_hour_and_a_full_day_is_thinned() -> None:
    h = History()
    for k in range(360):  # one hour
        h.record(T0 + k * INTERVAL_S, phase(), conn(6.0))
    assert len(h.query(points=720)["t"]) == 360  # type: ignore[arg-type]
    for k in range(360, SLOTS + 100):  # a day and a bit
        h.record(T0 + k * INTERVAL_S, phase(), conn(6.0))
    day = h.query(points=720)
    t = day["t"]
    assert isinstance(t, list) and len(t) == 720 and day["interval_s"] == 12 * INTERVAL_S
    assert t[0] == T0 + 100 * INTERVAL_S  # the day before the newest slot, no older


def test_points_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        History().query(points=0)


def test_memory_is_bounded_by_the_connector_cap() -> None:
    h = History()
    for k in range(MAX_CONNECTORS + 10):
        h.record(T0 + k * INTERVAL_S, phase(), conn(6.0, key=f"io7-{k:03}/1"))
    conns = h.query(points=1)["connectors"]
    assert isinstance(conns, dict) and len(conns) == MAX_CONNECTORS
    assert "io7-000/1" not in conns and f"io7-{MAX_CONNECTORS + 9:03}/1" in conns


def test_a_day_of_feeding_costs_what_an_hour_does() -> None:
    def size(h: History) -> int:
        cols = [c for t in (*h._phases.values(), *h._connectors.values()) for c in t.values()]
        return sum(sys.getsizeof(c) for c in cols) + sys.getsizeof(h._slot_of)

    h = History()
    for k in range(360):  # one hour
        h.record(T0 + k * INTERVAL_S, phase(), conn(6.0, 5.0))
    hour = size(h)
    for k in range(360, 2 * SLOTS):  # two days
        h.record(T0 + k * INTERVAL_S, phase(), conn(6.0, 5.0))
    assert size(h) == hour


def test_a_full_group_s_day_is_answered_on_the_loop_with_bounded_work() -> None:
    """Review finding 6: /api/history ran in the thread pool (reading the arrays while the
    sampler wrote them) and walked every slot of every series in Python (3.4 s for 32
    chargers at 8 640 points). Now the route is a coroutine on the loop (the sampler's
    thread), thinning is vectorised, and an answer holds at most MAX_VALUES values."""
    assert inspect.iscoroutinefunction(live.history)
    h = History()
    keys = [f"io7-{n:02}/{c}" for n in range(MAX_CONNECTORS // 2) for c in (1, 2)]
    for k in range(0, SLOTS, 97):  # sparse: the ring's validity matters, the count not
        h.record(T0 + k * INTERVAL_S, {**phase(), "L2": phase()["L1"]},
                 {key: ConnectorPoint(offer_a=6.0, draw_a=5.0) for key in keys})
    day = h.query(points=SLOTS)
    phases, conns, t = day["phases"], day["connectors"], day["t"]
    assert isinstance(phases, dict) and isinstance(conns, dict) and isinstance(t, list)
    values = sum(len(s) for table in (*phases.values(), *conns.values())
                 for s in table.values())
    assert values <= MAX_VALUES
    assert len(conns) == MAX_CONNECTORS and 1 < len(t) < SLOTS
    assert max(v for v in conns["io7-00/1"]["offer_a"] if v is not None) == 6.0
