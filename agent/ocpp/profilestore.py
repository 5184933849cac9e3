"""The installed charging profiles on disk, so they survive a restart (OCPP 1.6 5.16:
a Charge Point keeps its profiles).

One table, `charging_profiles(connector_id, profile_id, json)`, in the agent's shared
OCPP database file (`ocpp.db`, next to the tables of agent.ocpp.store and
agent.ocpp.configkeys), stdlib sqlite3, WAL journal with synchronous=FULL.

Rules:
 1. `save_all` replaces the table's content with the given profiles in one SQLite
    transaction: when it returns the new set is committed and the WAL fsynced; if it
    fails, the previous set is still there whole. The shell calls it after every change
    of the ProfileSet (install, clear, transaction end).
 2. `load` gives back what the last `save_all` stored, in the same order, as
    (connector id, ChargingProfile); the shell hands it to `ProfileSet.restore`.
 3. A row that no longer parses (a damaged file, a format from another version) is
    skipped and logged with its connector and profile id; the rest still loads, so the
    charger starts (the CSMS can send the profile again).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import structlog

from agent.ocpp.durable import connect_durable, write_transaction
from agent.ocpp.schedule import ChargingProfile, ProfileError, parse_profile, to_dict

log = structlog.get_logger("agent.ocpp.profilestore")

_SCHEMA = """CREATE TABLE IF NOT EXISTS charging_profiles (
    connector_id INTEGER NOT NULL,
    profile_id INTEGER NOT NULL UNIQUE,
    json TEXT NOT NULL
)"""


class ProfileStore:
    """The `charging_profiles` table in the SQLite file at `path` (created if missing).
    sqlite3.OperationalError naming the path if it cannot be opened."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = path
        try:
            self._db = connect_durable(path, busy_timeout_s=busy_timeout_s)
            with write_transaction(self._db) as db:
                db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise sqlite3.OperationalError(f"profile store {path}: {exc}") from exc

    def __enter__(self) -> ProfileStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the file; the store cannot be used afterwards."""
        self._db.close()

    def pragma(self, name: str) -> str:
        """A PRAGMA's value ('journal_mode' -> 'wal', 'synchronous' -> '2' for FULL)."""
        if name not in ("journal_mode", "synchronous"):
            raise ValueError(f"unknown pragma {name!r}")
        return str(self._db.execute(f"PRAGMA {name}").fetchone()[0])

    def save_all(self, entries: Iterable[tuple[int, ChargingProfile]]) -> None:
        """Rule 1: store exactly `entries` (e.g. `ProfileSet.entries()`), in their order.
        ValueError (nothing changed) if a profile id appears twice."""
        rows = [(cid, p.profile_id, json.dumps(to_dict(p), separators=(",", ":")))
                for cid, p in entries]
        ids = [pid for _, pid, _ in rows]
        if len(set(ids)) != len(ids):
            raise ValueError(f"profile ids must be unique, got {ids}")
        with write_transaction(self._db) as db:
            db.execute("DELETE FROM charging_profiles")
            db.executemany("INSERT INTO charging_profiles (connector_id, profile_id, json) "
                           "VALUES (?, ?, ?)", rows)

    def load(self) -> list[tuple[int, ChargingProfile]]:
        """Rules 2-3: the stored profiles as (connector id, profile), in saved order."""
        out = []
        for cid, pid, text in self._db.execute(
                "SELECT connector_id, profile_id, json FROM charging_profiles ORDER BY rowid"):
            try:
                out.append((int(cid), parse_profile(json.loads(text))))
            except (ProfileError, ValueError, TypeError) as exc:
                log.error("stored charging profile unreadable, skipped", connector_id=cid,
                          profile_id=pid, path=str(self.path), error=str(exc))
        return out
