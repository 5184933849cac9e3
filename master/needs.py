"""Cards' sessions from the members' live reports, and the engine's needs (issue 12 §3).

The master learns what a card's driver usually needs here (master.habits) from the
sessions it sees end, and hands the engine (Snapshot.needs, master.allocation.sharing) a
`Need` for a car whose card has a habit. `SessionTracker` is pure: the shell passes each
cycle's reports, `now_s` (monotonic) and the wall clock; the site's time zone is given
once (None: the system's local time; the master has no time zone setting).

 1. A session is a connector's run of reports carrying one tag pseudonym
    (ConnectorState.tag_pseudonym). It ends when the connector is back to Available (the
    car left: that is the departure) or another pseudonym appears on it (a new card: the
    old session ended then). A pseudonym going empty while the car stays plugged (the
    driver stopped with the card) ends nothing yet: the departure is the unplug after.
 2. A finished session is its pseudonym, the local time of day it ended and the energy it
    took (the highest session_energy_wh seen in it). A connector never seen with a
    pseudonym records nothing (plug and charge, the free idTag).
 3. A member offline (control rule 1) forgets its connectors' sessions: an end seen only
    after a gap would carry a wrong departure. A lost row costs less than a wrong one.
 4. A connector's habit is looked up only when its pseudonym changes and kept per
    (charger, connector); `needs` turns the kept ones into Needs (Habit.need: none once
    the usual departure has passed today). The weights change shares above 6 A only,
    inside the engine's rules: nothing here raises a limit.
 5. Cost follows change: a member whose report mapping is the very one of the last
    update (control rule 7 replaces it only on a valid new report) is skipped.

`CardHabits` is the shell's side: the tracker and the HabitStore on the master's
state_db, where a database error loses a row or a habit, never a cycle.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

import structlog

from master.allocation.model import Need
from master.habits import DAY_S, Habit, HabitStore
from master.reports import ConnectorReport, ConnectorStatus

log = structlog.get_logger("master.needs")
MAX_ENERGY_WH = 1e9 - 1.0  # HabitStore.record's bound is [0, 1e9)
MAX_PSEUDONYM = 64  # a SHA-256 in hex; longer is not a pseudonym and is not stored
Key = tuple[str, int]
Seen = tuple[str, bool, Mapping[int, ConnectorReport]]  # charger id, online, its reports


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishedSession:
    """Rule 2: one card's session that ended here."""

    pseudonym: str
    ended_unix_s: float
    departure_tod_s: float  # seconds after local midnight, [0, 86400)
    energy_wh: float


@dataclass(slots=True)
class _Session:
    pseudonym: str
    energy_wh: float = 0.0


def time_of_day_s(unix_s: float, tz: tzinfo | None) -> float:
    """Seconds after local midnight in `tz` (None: the system's local time)."""
    t = datetime.fromtimestamp(unix_s, tz)
    return min(DAY_S - 1e-6, t.hour * 3600.0 + t.minute * 60.0 + t.second
               + t.microsecond / 1e6)


class SessionTracker:
    """Rules 1-5. `habit_of(pseudonym)`: the card's habit or None (HabitStore.habit)."""

    def __init__(self, habit_of: Callable[[str], Habit | None], *,
                 tz: tzinfo | None = None) -> None:
        self.habit_of, self.tz = habit_of, tz
        self._open: dict[Key, _Session] = {}  # the session each connector carries
        self._tag: dict[Key, str] = {}  # the pseudonym each connector shows now
        self._habit: dict[Key, Habit] = {}  # rule 4: of connectors showing a known card
        self._last: dict[str, tuple[bool, Mapping[int, ConnectorReport]]] = {}

    def update(self, members: Iterable[Seen], *, now_s: float,
               now_unix_s: float) -> list[FinishedSession]:
        """Take this cycle's reports; returns the sessions that ended (rule 1)."""
        del now_s  # the departure is wall time; kept for the shell's symmetry with cycle()
        ended: list[FinishedSession] = []
        for cid, online, reports in members:
            last = self._last.get(cid)
            if last is not None and last[0] == online and last[1] is reports:
                continue  # rule 5
            self._last[cid] = (online, reports)
            if not online:  # rule 3
                for conn in reports:
                    self._forget((cid, conn))
                continue
            for conn, r in reports.items():
                s = self._see((cid, conn), r)
                if s is not None:
                    ended.append(self._finished(s, now_unix_s))
        return ended

    def needs(self, now_unix_s: float) -> tuple[Need, ...]:
        """Rule 4: the Need of each connector whose card has a habit, before its usual
        departure; () when none does (the engine behaves as before issue 12 §3)."""
        if not self._habit:
            return ()
        tod = time_of_day_s(now_unix_s, self.tz)
        return tuple(n for (cid, conn), h in self._habit.items()
                     if (n := h.need(cid, conn, tod)) is not None)

    def _see(self, key: Key, r: ConnectorReport) -> _Session | None:
        """One connector's report; the session it ended, if any."""
        tag = r.tag_pseudonym
        if r.status is ConnectorStatus.AVAILABLE or len(tag) > MAX_PSEUDONYM:
            tag = ""  # no car, or not a pseudonym (agent.wire's are 16 hex digits)
        if tag != self._tag.get(key, ""):
            self._tag[key] = tag
            habit = self.habit_of(tag) if tag else None
            if habit is None:
                self._habit.pop(key, None)
            else:
                self._habit[key] = habit
        s = self._open.get(key)
        done = None
        if s is not None and (r.status is ConnectorStatus.AVAILABLE
                              or (tag and tag != s.pseudonym)):
            done, s = self._open.pop(key), None
        if tag and s is None:
            s = self._open[key] = _Session(tag)
        if s is not None:
            s.energy_wh = max(s.energy_wh, r.session_energy_wh)
        return done

    def _forget(self, key: Key) -> None:
        self._open.pop(key, None)
        self._tag.pop(key, None)
        self._habit.pop(key, None)

    def _finished(self, s: _Session, now_unix_s: float) -> FinishedSession:
        return FinishedSession(pseudonym=s.pseudonym, ended_unix_s=now_unix_s,
                               departure_tod_s=time_of_day_s(now_unix_s, self.tz),
                               energy_wh=min(s.energy_wh, MAX_ENERGY_WH))


class CardHabits:
    """The master's side: sessions recorded to, and habits read from, its state_db."""

    def __init__(self, state_db: Path, *, tz: tzinfo | None = None) -> None:
        self.store = HabitStore(state_db)
        self.tracker = SessionTracker(self._habit, tz=tz)

    def needs(self, now_unix_s: float) -> tuple[Need, ...]:
        return self.tracker.needs(now_unix_s)

    def update(self, members: Iterable[Seen], *, now_s: float, now_unix_s: float) -> None:
        """Record the sessions this cycle's reports ended."""
        for s in self.tracker.update(members, now_s=now_s, now_unix_s=now_unix_s):
            try:
                self.store.record(s.pseudonym, ended_unix_s=s.ended_unix_s,
                                  departure_tod_s=s.departure_tod_s, energy_wh=s.energy_wh)
            except sqlite3.Error as err:
                log.warning("card session not recorded: check the state folder's disk",
                            why=str(err))

    def _habit(self, pseudonym: str) -> Habit | None:
        try:
            return self.store.habit(pseudonym)
        except sqlite3.Error as err:
            log.warning("card habit not read: sharing as if unknown", why=str(err))
            return None

    def close(self) -> None:
        self.store.close()
