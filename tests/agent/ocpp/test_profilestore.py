"""Charging profiles persisted in a real SQLite file survive a restart exactly."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent.ocpp.profiles import ProfileSet, parse_profile
from agent.ocpp.profilestore import ProfileStore

T0 = datetime(2026, 3, 10, tzinfo=UTC)


def wire(pid: int, purpose: str, stack: int, **extra: Any) -> dict[str, Any]:
    schedule = {"chargingRateUnit": "A", "startSchedule": "2026-03-10T00:00:00Z",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0},
                                           {"startPeriod": 3600, "limit": 10.5}]}
    schedule.update(extra.pop("schedule", {}))
    return {"chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Absolute", "chargingSchedule": schedule, **extra}


def filled_set() -> ProfileSet:
    ps = ProfileSet(hard_max_a={1: 32.0, 2: 16.0}, phases={2: 1})
    installs = [
        (0, wire(1, "ChargePointMaxProfile", 0, validTo="2026-04-01T00:00:00Z"), None),
        (0, wire(2, "TxDefaultProfile", 0), None),
        (1, wire(3, "TxDefaultProfile", 2, chargingProfileKind="Recurring",
                 recurrencyKind="Daily",
                 schedule={"chargingRateUnit": "W", "duration": 7200, "minChargingRate": 1380.0,
                           "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7360.0,
                                                       "numberPhases": 1}]}), None),
        (2, wire(4, "TxProfile", 1, chargingProfileKind="Relative",
                 schedule={"startSchedule": None}), 77),
    ]
    for cid, d, tx in installs:
        d["chargingSchedule"] = {k: v for k, v in d["chargingSchedule"].items() if v is not None}
        assert ps.install(cid, parse_profile(d), active_transaction_id=tx).accepted
    return ps


def test_restart_restores_exactly_what_was_installed(tmp_path: Path) -> None:
    db = tmp_path / "ocpp.db"
    before = filled_set()
    with ProfileStore(db) as store:
        store.save_all(before.entries())
    with ProfileStore(db) as store:  # a new process
        loaded = store.load()
    assert loaded == before.entries()
    after = ProfileSet(hard_max_a={1: 32.0, 2: 16.0}, phases={2: 1})
    assert after.restore(loaded) == []
    assert after.entries() == before.entries()
    for minutes in range(0, 24 * 60, 17):
        now = T0 + timedelta(minutes=minutes)
        for cid, tx in ((1, None), (2, 77)):
            kw: dict[str, Any] = {"tx_start": T0 if tx else None, "tx_id": tx}
            assert after.limit_a(cid, now, **kw) == before.limit_a(cid, now, **kw)
    assert after.composite_schedule(0, T0, 86400) == before.composite_schedule(0, T0, 86400)


def test_every_change_replaces_the_stored_set(tmp_path: Path) -> None:
    ps = filled_set()
    with ProfileStore(tmp_path / "ocpp.db") as store:
        store.save_all(ps.entries())
        assert ps.transaction_ended(2) == (4,)
        store.save_all(ps.entries())
        assert [p.profile_id for _, p in store.load()] == [1, 2, 3]
        assert ps.clear()
        store.save_all(ps.entries())
        assert store.load() == []


def test_duplicate_ids_change_nothing(tmp_path: Path) -> None:
    ps = filled_set()
    with ProfileStore(tmp_path / "ocpp.db") as store:
        store.save_all(ps.entries())
        entries = ps.entries()
        with pytest.raises(ValueError, match="unique"):
            store.save_all([*entries, entries[0]])
        assert store.load() == entries


def test_wal_full_sync_and_a_shared_file(tmp_path: Path) -> None:
    db = tmp_path / "ocpp.db"
    other = sqlite3.connect(db)
    other.execute("CREATE TABLE configuration (key TEXT PRIMARY KEY, value TEXT)")
    other.execute("INSERT INTO configuration VALUES ('HeartbeatInterval', '300')")
    other.commit()
    with ProfileStore(db) as store:
        assert (store.pragma("journal_mode"), store.pragma("synchronous")) == ("wal", "2")
        store.save_all(filled_set().entries())
    with ProfileStore(db) as store:  # CREATE TABLE IF NOT EXISTS keeps the rows
        assert len(store.load()) == 4
    assert other.execute("SELECT value FROM configuration").fetchall() == [("300",)]
    other.close()


def test_unreadable_row_is_skipped_and_logged(tmp_path: Path) -> None:
    db = tmp_path / "ocpp.db"
    with ProfileStore(db) as store:
        store.save_all(filled_set().entries())
    raw = sqlite3.connect(db)
    raw.execute("UPDATE charging_profiles SET json = '{\"chargingProfileId\": 2}' "
                "WHERE profile_id = 2")
    raw.execute("UPDATE charging_profiles SET json = 'not json' WHERE profile_id = 3")
    raw.commit()
    raw.close()
    with ProfileStore(db) as store, capture_logs() as logs:
        assert [p.profile_id for _, p in store.load()] == [1, 4]
    assert [(e["log_level"], e["connector_id"], e["profile_id"]) for e in logs] == [
        ("error", 0, 2), ("error", 1, 3)]


def test_unopenable_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError, match=str(tmp_path)):
        ProfileStore(tmp_path)  # a directory
