"""What a card's driver usually needs here, learned from its past sessions (issue 12 §3).

OCPP 1.6 carries no departure time or energy need (only 2.0.1's NotifyEVChargingNeeds
does, with departureTime and energyAmount; in 1.6 a vendor DataTransfer could). So the
master learns them per card: the agent reports a keyed hash of the session's idTag
(proto ConnectorState.tag_pseudonym, agent.wire.tag_pseudonym; never the tag itself), and
every finished session of that pseudonym adds a row (time of day it left, energy taken)
to the master's state database. A card's habit is the median of its last `LAST_N`
sessions once it has `MIN_SESSIONS`; the engine weighs it (master.allocation.sharing).

`learn` is pure; `HabitStore` keeps the rows in SQLite (the master's state_db).
"""

from __future__ import annotations

import sqlite3
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from master.allocation.model import Need

LAST_N = 10  # a habit follows a changed routine within a couple of weeks of workdays
MIN_SESSIONS = 3  # fewer is a guess, not a habit: behave as if nothing were known
DAY_S = 86_400.0
_SCHEMA = """CREATE TABLE IF NOT EXISTS card_sessions (
    pseudonym TEXT NOT NULL, ended_unix_s REAL NOT NULL,
    departure_tod_s REAL NOT NULL, energy_wh REAL NOT NULL)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Habit:
    """A card's usual departure (seconds after local midnight) and energy per session."""

    departure_tod_s: float
    energy_wh: float

    def need(self, charger_id: str, connector_id: int, now_tod_s: float) -> Need | None:
        """The engine's input for a car of this card plugged in now (local time of day
        `now_tod_s`); None once its usual departure has passed today."""
        left_s = self.departure_tod_s - now_tod_s
        if left_s <= 0:
            return None
        return Need(charger_id=charger_id, connector_id=connector_id, departure_in_s=left_s,
                    energy_wh=self.energy_wh)


def learn(sessions: Sequence[tuple[float, float]]) -> Habit | None:
    """The habit from (departure time of day s, energy Wh) rows, newest last: medians of
    the last LAST_N; None with fewer than MIN_SESSIONS."""
    last = sessions[-LAST_N:]
    if len(last) < MIN_SESSIONS:
        return None
    return Habit(departure_tod_s=statistics.median(d for d, _ in last),
                 energy_wh=statistics.median(e for _, e in last))


class HabitStore:
    """Finished sessions per pseudonym in SQLite; `habit` learns from the last ones."""

    def __init__(self, path: Path | str) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute(_SCHEMA)
        self.db.execute("CREATE INDEX IF NOT EXISTS card_sessions_by_card "
                        "ON card_sessions (pseudonym, ended_unix_s)")
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def record(self, pseudonym: str, *, ended_unix_s: float, departure_tod_s: float,
               energy_wh: float) -> None:
        """One finished session of `pseudonym` ("" is nobody's: ignored)."""
        if not pseudonym:
            return
        if not 0.0 <= departure_tod_s < DAY_S or not 0.0 <= energy_wh < 1e9:
            raise ValueError(f"departure_tod_s={departure_tod_s} must be in [0, 86400) and "
                             f"energy_wh={energy_wh} in [0, 1e9)")
        self.db.execute("INSERT INTO card_sessions VALUES (?, ?, ?, ?)",
                        (pseudonym, ended_unix_s, departure_tod_s, energy_wh))
        self.db.commit()

    def habit(self, pseudonym: str) -> Habit | None:
        """The card's habit from its last LAST_N sessions here, or None."""
        if not pseudonym:
            return None
        rows = self.db.execute(
            "SELECT departure_tod_s, energy_wh FROM card_sessions WHERE pseudonym = ? "
            "ORDER BY ended_unix_s DESC LIMIT ?", (pseudonym, LAST_N)).fetchall()
        return learn([(float(d), float(e)) for d, e in reversed(rows)])
