"""The ChargePointMaxProfile as the group's limit (agent/ocpp/stationlimit.py rules 1-4),
with worked numbers. Rows are named after what they prove."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.ocpp.schedule import ChargingProfile, parse_profile
from agent.ocpp.stationlimit import StationLimit, station_limit

NOW = datetime(2025, 6, 1, 17, 0, tzinfo=UTC)


def cpmax(pid: int, periods: list[tuple[int, float, int | None]], *, unit: str = "A",
          level: int = 0, start: datetime | None = NOW, duration: int | None = None,
          purpose: str = "ChargePointMaxProfile", **extra: Any) -> ChargingProfile:
    schedule: dict[str, Any] = {"chargingRateUnit": unit, "chargingSchedulePeriod": [
        {"startPeriod": s, "limit": lim, **({} if n is None else {"numberPhases": n})}
        for s, lim, n in periods]}
    if start is not None:
        schedule["startSchedule"] = start.isoformat()
    if duration is not None:
        schedule["duration"] = duration
    return parse_profile({"chargingProfileId": pid, "stackLevel": level,
                          "chargingProfilePurpose": purpose, "chargingProfileKind": "Absolute",
                          "chargingSchedule": schedule, **extra})


H = 3600
ROWS: list[tuple[str, list[tuple[int, ChargingProfile]], StationLimit | None]] = [
    ("no profile: no station limit", [], None),
    ("amps as sent, until the next period starts",
     [(0, cpmax(3, [(0, 40.0, None), (H, 63.0, None)]))],
     StationLimit(40.0, NOW + timedelta(hours=1), "back office (ChargePointMaxProfile 3)")),
    ("not clamped to this charger's ratings: it bounds the group",
     [(0, cpmax(3, [(0, 250.0, None)]))],
     StationLimit(250.0, None, "back office (ChargePointMaxProfile 3)")),
    ("watts over three phases when numberPhases is absent: 22 kW = 31.8 A",
     [(0, cpmax(4, [(0, 22000.0, None)], unit="W"))],
     StationLimit(31.8, None, "back office (ChargePointMaxProfile 4)")),
    ("watts over the phases the back office counted: 7.4 kW on 1 phase = 32.1 A",
     [(0, cpmax(4, [(0, 7400.0, 1)], unit="W"))],
     StationLimit(32.1, None, "back office (ChargePointMaxProfile 4)")),
    ("the profile's end (duration) ends the limit",
     [(0, cpmax(5, [(0, 20.0, None)], duration=600))],
     StationLimit(20.0, NOW + timedelta(seconds=600), "back office (ChargePointMaxProfile 5)")),
    ("validTo ends it too",
     [(0, cpmax(6, [(0, 20.0, None)], validTo=(NOW + timedelta(hours=2)).isoformat()))],
     StationLimit(20.0, NOW + timedelta(hours=2), "back office (ChargePointMaxProfile 6)")),
    ("the highest stack level in force wins; its end hands over to the lower one",
     [(0, cpmax(7, [(0, 50.0, None)])), (0, cpmax(8, [(0, 10.0, None)], level=2,
                                                    duration=900))],
     StationLimit(10.0, NOW + timedelta(seconds=900), "back office (ChargePointMaxProfile 8)")),
    ("a boundary where the value stays the same does not end it",
     [(0, cpmax(9, [(0, 16.0, None), (H, 16.0, None), (2 * H, 32.0, None)]))],
     StationLimit(16.0, NOW + timedelta(hours=2), "back office (ChargePointMaxProfile 9)")),
    ("a profile that starts later: nothing now",
     [(0, cpmax(10, [(0, 16.0, None)], start=NOW + timedelta(hours=1)))], None),
    ("a TxDefaultProfile on connector 0 is the charger's, not the group's",
     [(0, cpmax(11, [(0, 16.0, None)], purpose="TxDefaultProfile"))], None),
]


@pytest.mark.parametrize(("name", "entries", "expected"), ROWS)
def test_station_limit(name: str, entries: list[tuple[int, ChargingProfile]],
                       expected: StationLimit | None) -> None:
    assert station_limit(entries, NOW) == expected


def test_a_later_instant_sees_the_next_period() -> None:
    entries = [(0, cpmax(3, [(0, 40.0, None), (H, 63.0, None)]))]
    later = station_limit(entries, NOW + timedelta(hours=1))
    assert later == StationLimit(63.0, None, "back office (ChargePointMaxProfile 3)")


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        station_limit([], NOW.replace(tzinfo=None))
