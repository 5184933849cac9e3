"""The session tracker (master/needs.py): a card's sessions end and are recorded, three make
a habit, a habit becomes a Need until the usual departure. Virtual time, worked numbers.

Times are in Europe/Berlin (UTC+1 in March 2025): 17:30 local is 63 000 s after midnight.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from master.habits import Habit, HabitStore
from master.needs import FinishedSession, SessionTracker
from master.reports import ConnectorReport, ConnectorStatus

BERLIN = ZoneInfo("Europe/Berlin")
P, Q = "a1b2c3d4e5f60718", "0f1e2d3c4b5a6978"
A, S, C, F = (ConnectorStatus.AVAILABLE, ConnectorStatus.SUSPENDED_EVSE,
              ConnectorStatus.CHARGING, ConnectorStatus.FINISHING)


def wall(day: int, hh: int, mm: int = 0) -> float:
    """Unix s of March `day` 2025, hh:mm in Berlin."""
    return datetime(2025, 3, day, hh, mm, tzinfo=BERLIN).timestamp()


def rep(status: ConnectorStatus, tag: str = "", wh: float = 0.0, cid: int = 1) -> ConnectorReport:
    return ConnectorReport(connector_id=cid, status=status, tag_pseudonym=tag,
                           session_energy_wh=wh)


class Site:
    """One charger "c1" whose reports are fed to a tracker at chosen wall times; the
    monotonic clock moves with the wall clock."""

    def __init__(self, tracker: SessionTracker) -> None:
        self.tracker, self.t0 = tracker, wall(3, 0)
        self.finished: list[FinishedSession] = []

    def at(self, unix_s: float, *reports: ConnectorReport, online: bool = True,
           same: Mapping[int, ConnectorReport] | None = None) -> Mapping[int, ConnectorReport]:
        by = same if same is not None else {r.connector_id: r for r in reports}
        self.finished += self.tracker.update([("c1", online, by)], now_s=unix_s - self.t0,
                                             now_unix_s=unix_s)
        return by

    def session(self, day: int, tag: str, *, leave: tuple[int, int], wh: float) -> None:
        """Plug in at 08:00 with card `tag`, charge `wh`, stop with the card, unplug."""
        self.at(wall(day, 8), rep(S, tag))
        self.at(wall(day, 9), rep(C, tag, wh / 2))
        self.at(wall(day, *leave) - 60.0, rep(F, "", wh))  # stopped by the card
        self.at(wall(day, *leave), rep(A))


def tracker(habits: Mapping[str, Habit] | None = None, **kw: Any) -> SessionTracker:
    known = dict(habits or {})
    return SessionTracker(known.get, tz=BERLIN, **kw)


def test_a_session_ends_at_unplug_with_its_local_time_and_energy() -> None:
    site = Site(tracker())
    site.session(3, P, leave=(17, 30), wh=11_000.0)
    assert site.finished == [FinishedSession(pseudonym=P, ended_unix_s=wall(3, 17, 30),
                                             departure_tod_s=63_000.0, energy_wh=11_000.0)]


def test_another_card_on_the_connector_ends_the_first_session() -> None:
    site = Site(tracker())
    site.at(wall(3, 8), rep(C, P, 2_000.0))
    site.at(wall(3, 12, 15), rep(S, Q, 0.0))  # no Available seen between: P left at 12:15
    assert [(f.pseudonym, f.departure_tod_s, f.energy_wh) for f in site.finished] == [
        (P, 12 * 3600.0 + 900.0, 2_000.0)]


def test_no_pseudonym_or_an_offline_gap_records_nothing() -> None:
    site = Site(tracker())
    site.at(wall(3, 8), rep(C, "", 5_000.0))  # plug and charge: nobody's card
    site.at(wall(3, 17), rep(A))
    assert site.finished == []
    site.at(wall(4, 8), rep(C, P, 1_000.0))
    site.at(wall(4, 9), rep(C, P, 3_000.0), online=False)  # the departure is not known now
    site.at(wall(4, 18), rep(A))
    assert site.finished == []


def test_three_sessions_make_a_habit_and_a_need_until_the_usual_departure(
        tmp_path: Path) -> None:
    store = HabitStore(tmp_path / "master.sqlite3")
    tr = SessionTracker(store.habit, tz=BERLIN)
    site = Site(tr)
    for day, leave, wh in ((3, (17, 0), 9_000.0), (4, (17, 30), 11_000.0)):
        site.session(day, P, leave=leave, wh=wh)
    for f in site.finished:
        store.record(f.pseudonym, ended_unix_s=f.ended_unix_s,
                     departure_tod_s=f.departure_tod_s, energy_wh=f.energy_wh)
    site.at(wall(5, 8), rep(C, P, 0.0))
    assert tr.needs(wall(5, 8)) == ()  # two sessions are a guess, not a habit
    site.at(wall(5, 12), rep(C, P, 7_000.0))
    site.at(wall(5, 18), rep(A))
    f = site.finished[-1]
    store.record(f.pseudonym, ended_unix_s=f.ended_unix_s,
                 departure_tod_s=f.departure_tod_s, energy_wh=f.energy_wh)
    # medians of 17:00, 17:30, 18:00 and 9, 11, 7 kWh
    assert store.habit(P) == Habit(departure_tod_s=63_000.0, energy_wh=9_000.0)
    # Day 6: the card's car plugs in at 08:00 on connector 2: 9.5 h before 17:30.
    site.at(wall(6, 8), rep(A), rep(C, P, 0.0, cid=2))
    (need,) = tr.needs(wall(6, 8))
    assert (need.charger_id, need.connector_id) == ("c1", 2)
    assert need.departure_in_s == 9.5 * 3600.0 and need.energy_wh == 9_000.0
    (need,) = tr.needs(wall(6, 17))
    assert need.departure_in_s == 1800.0
    assert tr.needs(wall(6, 17, 45)) == ()  # past its usual departure: as today
    site.at(wall(6, 19), rep(A), rep(A, cid=2))
    assert tr.needs(wall(6, 19)) == ()  # gone
    store.close()


def test_a_plug_in_after_the_usual_departure_gets_no_need() -> None:
    tr = tracker({P: Habit(departure_tod_s=63_000.0, energy_wh=9_000.0)})
    Site(tr).at(wall(6, 18), rep(C, P))
    assert tr.needs(wall(6, 18)) == ()


def test_habits_are_looked_up_once_per_pseudonym_change() -> None:
    asked: list[str] = []

    def habit_of(p: str) -> Habit | None:
        asked.append(p)
        return Habit(departure_tod_s=63_000.0, energy_wh=9_000.0)

    tr = SessionTracker(habit_of, tz=BERLIN)
    site = Site(tr)
    by = site.at(wall(6, 8), rep(C, P, 0.0))
    for minute in range(1, 60):  # the same mapping again (control rule 7), then new ones
        site.at(wall(6, 8, minute), same=by)
        site.at(wall(6, 8, minute), rep(C, P, 100.0 * minute))
        assert len(tr.needs(wall(6, 8, minute))) == 1
    assert asked == [P]
    site.at(wall(6, 9), rep(C, Q))
    assert asked == [P, Q]
