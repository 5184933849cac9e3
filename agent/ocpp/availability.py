"""Whether each connector may be used: the state ChangeAvailability sets (OCPP 1.6
section 5.2), persisted in table `availability` of `<state_dir>/ocpp.db` beside the
configuration keys (agent.ocpp.configkeys).

Rules:
 1. Availability (ChangeAvailability, OCPP 1.6 section 5.2): per connector, 0 = the whole
    charger, whether the CSMS made it inoperative. A connector is operative when it and
    connector 0 are. Becoming operative is applied at once; becoming inoperative while a
    session runs on an affected connector is Scheduled and applied by `settle` once none
    does. Asking for the state a connector is already in is Accepted. Persisted, the
    scheduled change too (a restart ends the session, so it applies at the first step).
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterable


class AvailabilityChange(enum.Enum):
    """ChangeAvailability.conf status (values = OCPP 1.6 AvailabilityStatus)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    SCHEDULED = "Scheduled"


class Availability:
    """Rule 7: per connector (0 = the charger) operative or not, and the inoperative
    changes waiting for a session to end; table `availability`."""

    def __init__(self, db: sqlite3.Connection, connector_ids: Iterable[int]) -> None:
        ids = sorted(set(connector_ids))
        if not ids or ids[0] < 1:
            raise ValueError(f"connector ids start at 1, got {ids}")
        self.db = db
        self.ids = (0, *ids)
        self._operative = dict.fromkeys(self.ids, True)
        self._scheduled: set[int] = set()  # inoperative once nothing it covers is busy
        with db:
            db.execute("CREATE TABLE IF NOT EXISTS availability (connector_id INTEGER "
                       "PRIMARY KEY, operative INTEGER NOT NULL, scheduled INTEGER NOT NULL)")
        for cid, operative, scheduled in db.execute(
                "SELECT connector_id, operative, scheduled FROM availability"):
            if cid in self._operative:
                self._operative[cid] = bool(operative)
                if scheduled:
                    self._scheduled.add(cid)

    def operative(self, connector_id: int) -> bool:
        """Whether the connector may be used (0: the charger as a whole)."""
        return self._operative[0] and self._operative[connector_id]

    def scheduled(self, connector_id: int) -> bool:
        """Whether an inoperative change waits for a session to end."""
        return connector_id in self._scheduled

    def request(self, connector_id: int, operative: bool, *, busy: Iterable[int]
                ) -> AvailabilityChange:
        """ChangeAvailability for `connector_id`; `busy`: connectors with a session."""
        if connector_id not in self._operative:
            return AvailabilityChange.REJECTED
        if operative:
            self._save(connector_id, operative=True, scheduled=False)
            return AvailabilityChange.ACCEPTED
        if not self._operative[connector_id]:
            self._save(connector_id, operative=False, scheduled=False)
            return AvailabilityChange.ACCEPTED
        if self._covers(connector_id) & set(busy):
            self._save(connector_id, operative=True, scheduled=True)
            return AvailabilityChange.SCHEDULED
        self._save(connector_id, operative=False, scheduled=False)
        return AvailabilityChange.ACCEPTED

    def settle(self, busy: Iterable[int]) -> tuple[int, ...]:
        """Apply the scheduled changes whose connectors have no session any more; returns
        the connector ids that became inoperative."""
        now_busy = set(busy)
        done = tuple(c for c in sorted(self._scheduled) if not self._covers(c) & now_busy)
        for cid in done:
            self._save(cid, operative=False, scheduled=False)
        return done

    def _covers(self, connector_id: int) -> set[int]:
        return set(self.ids[1:]) if connector_id == 0 else {connector_id}

    def _save(self, connector_id: int, *, operative: bool, scheduled: bool) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO availability (connector_id, operative, scheduled) "
                "VALUES (?, ?, ?) ON CONFLICT (connector_id) DO UPDATE SET "
                "operative = excluded.operative, scheduled = excluded.scheduled",
                (connector_id, int(operative), int(scheduled)))
        self._operative[connector_id] = operative
        if scheduled:
            self._scheduled.add(connector_id)
        else:
            self._scheduled.discard(connector_id)
