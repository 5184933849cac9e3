"""OCPP 1.6 charging profiles: parsing, the 1.6 install/clear rules, stacking, composite."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case

from agent.errors import PeerError
from agent.ocpp.profiles import (
    MAX_COMPOSITE_S,
    ProfileError,
    ProfileSet,
    Purpose,
    RateUnit,
    parse_profile,
    to_dict,
)

T0 = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)  # a Tuesday


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def wire(pid: int = 1, *, purpose: str = "TxDefaultProfile", stack: int = 0,
         kind: str = "Absolute", periods: list[tuple[int, float]] | None = None,
         unit: str = "A", start: datetime | None = T0, duration: int | None = None,
         **extra: Any) -> dict[str, Any]:
    """A csChargingProfiles object as a CSMS sends it."""
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": s, "limit": lim}
                                   for s, lim in (periods or [(0, 16.0)])]}
    if start is not None:
        schedule["startSchedule"] = start.isoformat().replace("+00:00", "Z")
    if duration is not None:
        schedule["duration"] = duration
    return {"chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind, "chargingSchedule": schedule, **extra}


def make_set(**kw: Any) -> ProfileSet:
    kw.setdefault("hard_max_a", {1: 32.0, 2: 32.0})
    return ProfileSet(**kw)


def install(ps: ProfileSet, cid: int, d: dict[str, Any], tx: int | None = None) -> bool:
    return ps.install(cid, parse_profile(d), active_transaction_id=tx).accepted


def limit(ps: ProfileSet, cid: int, now: datetime, *, tx_start: datetime | None = None,
          tx_id: int | None = None) -> float | None:
    d = ps.limit_a(cid, now, tx_start=tx_start, tx_id=tx_id)
    return None if d is None else d.limit_a


# -- wire form ---------------------------------------------------------------------------


def test_round_trip_of_every_field() -> None:
    d = wire(7, purpose="TxProfile", stack=3, kind="Recurring", unit="W", duration=3600,
             transactionId=42, recurrencyKind="Weekly", validFrom="2026-03-01T00:00:00Z",
             validTo="2026-04-01T00:00:00.500000Z")
    d["chargingSchedule"]["minChargingRate"] = 1380.0
    d["chargingSchedule"]["chargingSchedulePeriod"].append(
        {"startPeriod": 600, "limit": 7360.0, "numberPhases": 1})
    p = parse_profile(d)
    assert to_dict(p) == d
    assert parse_profile(to_dict(p)) == p


def test_snake_case_keys_and_decimal_limits_as_the_ocpp_library_hands_them_over() -> None:
    d = wire(7, purpose="TxProfile", kind="Recurring", recurrencyKind="Daily", transactionId=3,
             validFrom="2026-03-01T00:00:00Z")
    d["chargingSchedule"]["chargingSchedulePeriod"].append(
        {"startPeriod": 60, "limit": 7.5, "numberPhases": 1})
    snake = camel_to_snake_case(copy.deepcopy(d))
    assert "cs_charging_profiles" not in snake and "charging_schedule" in snake
    snake["charging_schedule"]["charging_schedule_period"][1]["limit"] = Decimal("7.5")
    assert parse_profile(snake) == parse_profile(d)
    assert snake_to_camel_case(camel_to_snake_case(d)) == d  # the shell's way back


def test_offsets_are_kept_in_utc() -> None:
    p = parse_profile(wire(validFrom="2026-03-10T01:00:00+01:00"))
    assert p.valid_from == T0


BAD_FIELDS = [
    # (name, mutation, field named in the error)
    ("id missing", lambda d: d.pop("chargingProfileId"), "chargingProfileId"),
    ("id not an int", lambda d: d.update(chargingProfileId="7"), "chargingProfileId"),
    ("stack level negative", lambda d: d.update(stackLevel=-1), "stackLevel"),
    ("stack level a bool", lambda d: d.update(stackLevel=True), "stackLevel"),
    ("unknown purpose", lambda d: d.update(chargingProfilePurpose="Max"),
     "chargingProfilePurpose"),
    ("unknown kind", lambda d: d.update(chargingProfileKind="Sometimes"), "chargingProfileKind"),
    ("unknown recurrency", lambda d: d.update(chargingProfileKind="Recurring",
                                              recurrencyKind="Monthly"), "recurrencyKind"),
    ("recurring without recurrency", lambda d: d.update(chargingProfileKind="Recurring"),
     "recurrencyKind"),
    ("recurring without start",
     lambda d: (d.update(chargingProfileKind="Recurring", recurrencyKind="Daily"),
                d["chargingSchedule"].pop("startSchedule")), "chargingSchedule.startSchedule"),
    ("validFrom not a date", lambda d: d.update(validFrom="yesterday"), "validFrom"),
    ("validFrom without offset", lambda d: d.update(validFrom="2026-03-10T00:00:00"),
     "validFrom"),
    ("validTo a number", lambda d: d.update(validTo=1234), "validTo"),
    ("validTo before validFrom", lambda d: d.update(validFrom="2026-03-10T00:00:00Z",
                                                    validTo="2026-03-09T00:00:00Z"), "validTo"),
    ("transactionId on a default", lambda d: d.update(transactionId=5), "transactionId"),
    ("schedule missing", lambda d: d.pop("chargingSchedule"), "chargingSchedule"),
    ("schedule not an object", lambda d: d.update(chargingSchedule="16A"), "chargingSchedule"),
    ("unit kW", lambda d: d["chargingSchedule"].update(chargingRateUnit="kW"),
     "chargingSchedule.chargingRateUnit"),
    ("duration 0", lambda d: d["chargingSchedule"].update(duration=0),
     "chargingSchedule.duration"),
    ("startSchedule garbage", lambda d: d["chargingSchedule"].update(startSchedule="soon"),
     "chargingSchedule.startSchedule"),
    ("no periods", lambda d: d["chargingSchedule"].update(chargingSchedulePeriod=[]),
     "chargingSchedule.chargingSchedulePeriod"),
    ("periods not a list", lambda d: d["chargingSchedule"].update(chargingSchedulePeriod={}),
     "chargingSchedule.chargingSchedulePeriod"),
    ("period not an object",
     lambda d: d["chargingSchedule"].update(chargingSchedulePeriod=[16]),
     "chargingSchedule.chargingSchedulePeriod[0]"),
    ("first period not at 0",
     lambda d: d["chargingSchedule"]["chargingSchedulePeriod"][0].update(startPeriod=60),
     "chargingSchedule.chargingSchedulePeriod[0].startPeriod"),
    ("periods not increasing",
     lambda d: d["chargingSchedule"]["chargingSchedulePeriod"].append(
         {"startPeriod": 0, "limit": 6}),
     "chargingSchedule.chargingSchedulePeriod[1].startPeriod"),
    ("limit negative",
     lambda d: d["chargingSchedule"]["chargingSchedulePeriod"].append(
         {"startPeriod": 60, "limit": -1}),
     "chargingSchedule.chargingSchedulePeriod[1].limit"),
    ("limit NaN",
     lambda d: d["chargingSchedule"]["chargingSchedulePeriod"][0].update(limit=float("nan")),
     "chargingSchedule.chargingSchedulePeriod[0].limit"),
    ("limit a string",
     lambda d: d["chargingSchedule"]["chargingSchedulePeriod"][0].update(limit="16"),
     "chargingSchedule.chargingSchedulePeriod[0].limit"),
    ("limit missing",
     lambda d: d["chargingSchedule"]["chargingSchedulePeriod"][0].pop("limit"),
     "chargingSchedule.chargingSchedulePeriod[0].limit"),
    ("4 phases",
     lambda d: d["chargingSchedule"]["chargingSchedulePeriod"][0].update(numberPhases=4),
     "chargingSchedule.chargingSchedulePeriod[0].numberPhases"),
    ("min rate negative", lambda d: d["chargingSchedule"].update(minChargingRate=-6),
     "chargingSchedule.minChargingRate"),
]


@pytest.mark.parametrize(("mutate", "field"), [(m, f) for _, m, f in BAD_FIELDS],
                         ids=[name for name, _, _ in BAD_FIELDS])
def test_bad_input_names_the_field_and_changes_nothing(mutate: Any, field: str) -> None:
    ps = make_set()
    assert install(ps, 0, wire(1, periods=[(0, 20.0)]))
    before = ps.entries()
    d = wire(1, periods=[(0, 6.0)])
    mutate(d)
    with pytest.raises(ProfileError) as err:
        install(ps, 1, d)
    assert err.value.field == field
    assert isinstance(err.value, PeerError) and err.value.peer == "csms"
    assert str(err.value).startswith(f"csms: {field}: ")
    assert ps.entries() == before


# -- install rules ------------------------------------------------------------------------


@pytest.mark.parametrize(("cid", "d", "tx", "why"), [
    (3, wire(), None, "connector 3 does not exist"),
    (1, wire(purpose="ChargePointMaxProfile"), None, "only be set on connector 0"),
    (0, wire(purpose="ChargePointMaxProfile", kind="Relative", start=None), None,
     "cannot be Relative"),
    (0, wire(purpose="TxProfile"), None, "connector > 0"),
    (1, wire(purpose="TxProfile"), None, "no transaction is active"),
    (1, wire(purpose="TxProfile", transactionId=41), 42, "not the active one"),
    (1, wire(stack=9), None, "stackLevel 9 is above 8"),
    (1, wire(periods=[(i * 60, 16.0) for i in range(25)]), None, "25 periods"),
], ids=["unknown connector", "max not on 0", "max relative", "tx on 0", "tx without tx",
        "tx other tx", "stack too high", "too many periods"])
def test_rejected_installs_change_nothing(cid: int, d: dict[str, Any], tx: int | None,
                                          why: str) -> None:
    ps = make_set()
    assert install(ps, 1, wire(1, stack=1))
    before = ps.entries()
    result = ps.install(cid, parse_profile(d), active_transaction_id=tx)
    assert not result.accepted and why in result.reason
    assert ps.entries() == before


def test_tx_profile_is_bound_to_the_active_transaction() -> None:
    ps = make_set()
    assert install(ps, 1, wire(5, purpose="TxProfile"), tx=42)
    assert install(ps, 2, wire(6, purpose="TxProfile", transactionId=43), tx=43)
    assert [(c, p.transaction_id) for c, p in ps.entries()] == [(1, 42), (2, 43)]


def test_replacement_by_id_and_by_stack_level_and_purpose_on_the_same_connector() -> None:
    ps = make_set()
    assert install(ps, 1, wire(1, stack=0))
    assert install(ps, 2, wire(2, stack=0))  # other connector: kept
    assert install(ps, 0, wire(3, stack=0))  # connector 0: kept
    r = ps.install(1, parse_profile(wire(4, stack=0, periods=[(0, 10.0)])),
                   active_transaction_id=None)
    assert r.accepted and r.replaced_ids == (1,)
    r = ps.install(2, parse_profile(wire(3, stack=5)), active_transaction_id=None)
    assert r.replaced_ids == (3,)  # same id moves connector
    assert sorted((c, p.profile_id, p.stack_level) for c, p in ps.entries()) == [
        (1, 4, 0), (2, 2, 0), (2, 3, 5)]


def test_profile_count_is_capped_but_a_replacement_still_fits() -> None:
    ps = make_set(max_profiles=2)
    assert install(ps, 1, wire(1, stack=0))
    assert install(ps, 1, wire(2, stack=1))
    r = ps.install(1, parse_profile(wire(3, stack=2)), active_transaction_id=None)
    assert not r.accepted and "2 profiles" in r.reason
    assert install(ps, 1, wire(3, stack=1))  # replaces id 2
    assert [p.profile_id for _, p in ps.entries()] == [1, 3]


def test_profile_above_the_hardware_is_clamped_and_says_so() -> None:
    ps = make_set(hard_max_a={1: 32.0, 2: 16.0})
    r = ps.install(1, parse_profile(wire(1, periods=[(0, 10.0), (60, 40.0)])),
                   active_transaction_id=None)
    assert r.accepted and r.clamped_to_a == 32.0
    d = ps.limit_a(1, T0 + timedelta(seconds=61), tx_start=None, tx_id=None)
    assert d is not None and d.limit_a == 32.0 and d.clamped
    d = ps.limit_a(1, T0 + timedelta(seconds=1), tx_start=None, tx_id=None)
    assert d is not None and d.limit_a == 10.0 and not d.clamped
    # a default on connector 0 applies to connector 2 too, whose hard max is 16 A
    r = ps.install(0, parse_profile(wire(2, periods=[(0, 20.0)])), active_transaction_id=None)
    assert r.clamped_to_a == 16.0
    assert ps.install(1, parse_profile(wire(3, stack=1)), active_transaction_id=None
                      ).clamped_to_a is None


# -- stacking and combining ---------------------------------------------------------------


def test_higher_stack_level_wins_while_its_schedule_lasts() -> None:
    ps = make_set()
    assert install(ps, 1, wire(1, stack=0, periods=[(0, 16.0)]))
    assert install(ps, 1, wire(2, stack=1, periods=[(0, 10.0)], start=at(18), duration=7200))
    assert limit(ps, 1, at(17)) == 16.0  # stack 1 not started yet
    d = ps.limit_a(1, at(19), tx_start=None, tx_id=None)
    assert d is not None and (d.limit_a, d.profile_id, d.purpose) == (10.0, 2, Purpose.TX_DEFAULT)
    assert limit(ps, 1, at(20)) == 16.0  # its duration is over: the next level down
    assert limit(ps, 2, at(19)) is None  # connector 2 has no profile


def test_charge_point_max_caps_a_tx_default() -> None:
    ps = make_set()
    assert install(ps, 0, wire(1, purpose="ChargePointMaxProfile", periods=[(0, 20.0)]))
    assert install(ps, 0, wire(2, periods=[(0, 32.0)]))
    for cid in (1, 2):
        d = ps.limit_a(cid, at(1), tx_start=None, tx_id=None)
        assert d is not None
        assert (d.limit_a, d.purpose, d.charger_max_a) == (20.0, Purpose.CHARGE_POINT_MAX, 20.0)
    assert install(ps, 0, wire(2, periods=[(0, 12.0)]))
    d = ps.limit_a(1, at(1), tx_start=None, tx_id=None)
    assert d is not None and (d.limit_a, d.purpose, d.charger_max_a) == (
        12.0, Purpose.TX_DEFAULT, 20.0)


def test_tx_profile_overrides_tx_default_for_its_transaction_only() -> None:
    ps = make_set()
    assert install(ps, 1, wire(1, stack=5, periods=[(0, 10.0)]))
    assert install(ps, 1, wire(2, purpose="TxProfile", stack=0, periods=[(0, 16.0)]), tx=42)
    assert limit(ps, 1, at(1), tx_start=at(0.5), tx_id=42) == 16.0
    assert limit(ps, 1, at(1), tx_start=at(0.5), tx_id=43) == 10.0
    assert limit(ps, 1, at(1)) == 10.0
    assert ps.transaction_ended(1) == (2,)
    assert limit(ps, 1, at(1), tx_start=at(0.5), tx_id=42) == 10.0


def test_tx_profile_that_ended_falls_back_to_the_default() -> None:
    ps = make_set()
    assert install(ps, 1, wire(1, periods=[(0, 10.0)]))
    assert install(ps, 1, wire(2, purpose="TxProfile", kind="Relative", start=None,
                               periods=[(0, 16.0)], duration=600), tx=1)
    assert limit(ps, 1, at(1) + timedelta(seconds=599), tx_start=at(1), tx_id=1) == 16.0
    assert limit(ps, 1, at(1) + timedelta(seconds=600), tx_start=at(1), tx_id=1) == 10.0


def test_connector_default_beats_connector_0_default_at_the_same_level_only() -> None:
    ps = make_set()
    assert install(ps, 0, wire(1, stack=1, periods=[(0, 20.0)]))
    assert install(ps, 1, wire(2, stack=1, periods=[(0, 8.0)]))
    assert limit(ps, 1, at(1)) == 8.0
    assert limit(ps, 2, at(1)) == 20.0
    assert install(ps, 0, wire(3, stack=2, periods=[(0, 25.0)]))
    assert limit(ps, 1, at(1)) == 25.0


# -- kinds ----------------------------------------------------------------------------------


def test_recurring_daily_crossing_midnight() -> None:
    ps = make_set()
    # every day from 22:00: 8 A for 8 h (to 06:00), then 32 A
    assert install(ps, 1, wire(1, kind="Recurring", recurrencyKind="Daily", start=at(22),
                               periods=[(0, 8.0), (8 * 3600, 32.0)]))
    rows = [(at(23.5), 8.0), (at(24 + 2), 8.0), (at(24 + 5.99), 8.0), (at(24 + 6), 32.0),
            (at(24 + 21.99), 32.0), (at(24 + 22), 8.0), (at(24 * 9 + 3), 8.0),
            (at(3), 8.0)]  # before the first start: the recurrence extends back
    assert [(t, limit(ps, 1, t)) for t, _ in rows] == rows


def test_recurring_daily_with_a_duration_leaves_a_gap() -> None:
    ps = make_set()
    assert install(ps, 1, wire(1, kind="Recurring", recurrencyKind="Daily", start=at(22),
                               periods=[(0, 6.0)], duration=6 * 3600))
    assert limit(ps, 1, at(24 + 3)) == 6.0
    assert limit(ps, 1, at(24 + 4)) is None
    assert limit(ps, 1, at(24 + 22)) == 6.0


def test_recurring_weekly() -> None:
    ps = make_set()
    monday = datetime(2026, 3, 9, tzinfo=UTC)
    assert install(ps, 1, wire(1, kind="Recurring", recurrencyKind="Weekly", start=monday,
                               periods=[(0, 16.0), (5 * 86400, 32.0)]))
    assert limit(ps, 1, monday + timedelta(days=9)) == 16.0  # Wednesday next week
    assert limit(ps, 1, monday + timedelta(days=12, hours=1)) == 32.0  # Saturday


def test_relative_to_the_transaction_start_or_now_without_one() -> None:
    ps = make_set()
    assert install(ps, 1, wire(1, kind="Relative", start=None,
                               periods=[(0, 6.0), (1800, 16.0)]))
    tx_start = at(7)
    assert limit(ps, 1, tx_start + timedelta(minutes=10), tx_start=tx_start, tx_id=1) == 6.0
    assert limit(ps, 1, tx_start + timedelta(minutes=31), tx_start=tx_start, tx_id=1) == 16.0
    assert limit(ps, 1, at(9)) == 6.0  # no transaction: what a session starting now gets


def test_valid_from_and_valid_to_are_honoured() -> None:
    ps = make_set()
    assert install(ps, 1, wire(1, stack=0, periods=[(0, 16.0)]))
    assert install(ps, 1, wire(2, stack=1, periods=[(0, 6.0)], validFrom="2026-03-10T08:00:00Z",
                               validTo="2026-03-10T09:00:00Z"))
    assert [limit(ps, 1, at(h)) for h in (7.99, 8, 8.99, 9)] == [16.0, 6.0, 6.0, 16.0]


# -- units ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("watts", "phases", "wired", "amps"), [
    (11000.0, None, 3, 15.9),  # 11000 / (230 x 3) = 15.94, rounded down
    (22080.0, None, 3, 32.0),
    (3680.0, 1, 3, 16.0),  # the period says 1 phase
    (7360.0, None, 1, 32.0),  # the connector is wired for 1 phase
    (7360.0, 3, 1, 32.0),
], ids=["11kW-3ph", "22kW-3ph", "period-1ph", "wired-1ph", "wired-1ph-period-3ph"])
def test_watts_become_amps_at_230_v_and_the_phases_in_use(
        watts: float, phases: int | None, wired: int, amps: float) -> None:
    ps = make_set(phases={1: wired})
    d = wire(1, unit="W", periods=[(0, watts)])
    if phases is not None:
        d["chargingSchedule"]["chargingSchedulePeriod"][0]["numberPhases"] = phases
    assert install(ps, 1, d)
    assert limit(ps, 1, at(1)) == amps


# -- composite schedule -----------------------------------------------------------------------


def composite_set() -> ProfileSet:
    ps = make_set()
    assert install(ps, 1, wire(1, periods=[(0, 32.0), (18 * 3600, 10.0)], duration=86400))
    assert install(ps, 0, wire(2, purpose="ChargePointMaxProfile", periods=[(0, 20.0)],
                               start=at(12), duration=3 * 3600))
    return ps


def test_composite_schedule_periods_in_amps() -> None:
    sched = composite_set().composite_schedule(1, at(10) + timedelta(microseconds=5), 12 * 3600)
    assert sched == {
        "duration": 12 * 3600, "startSchedule": "2026-03-10T10:00:00Z", "chargingRateUnit": "A",
        "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 32.0, "numberPhases": 3},
            {"startPeriod": 2 * 3600, "limit": 20.0, "numberPhases": 3},  # max from 12:00
            {"startPeriod": 5 * 3600, "limit": 32.0, "numberPhases": 3},
            {"startPeriod": 8 * 3600, "limit": 10.0, "numberPhases": 3}]}  # 18:00


def test_composite_schedule_in_watts_and_past_the_profiles_end() -> None:
    sched = composite_set().composite_schedule(1, at(20), 6 * 3600, RateUnit.W)
    assert sched is not None and sched["chargingRateUnit"] == "W"
    assert sched["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 6900.0, "numberPhases": 3},  # 10 A x 230 V x 3
        {"startPeriod": 4 * 3600, "limit": 22080.0, "numberPhases": 3}]  # 00:00: hard max


def test_composite_schedule_of_connector_0_and_with_a_transaction() -> None:
    ps = composite_set()
    assert install(ps, 0, wire(3, periods=[(0, 25.0)]))
    sched = ps.composite_schedule(0, at(10), 6 * 3600)
    assert sched is not None and [(p["startPeriod"], p["limit"])
                                  for p in sched["chargingSchedulePeriod"]] == [
        (0, 25.0), (2 * 3600, 20.0), (5 * 3600, 25.0)]
    assert install(ps, 1, wire(4, purpose="TxProfile", kind="Relative", start=None,
                               periods=[(0, 6.0), (3600, 16.0)]), tx=9)
    sched = ps.composite_schedule(1, at(10), 3 * 3600, tx_start=at(9.5), tx_id=9)
    assert sched is not None and [(p["startPeriod"], p["limit"])
                                  for p in sched["chargingSchedulePeriod"]] == [
        (0, 6.0), (1800, 16.0)]  # the max (20 A from 12:00) is above 16 A


def test_composite_schedule_rejects_unknown_connector_and_bad_duration() -> None:
    ps = composite_set()
    assert ps.composite_schedule(3, at(0), 60) is None
    for bad in (0, -1, MAX_COMPOSITE_S + 1, 1.5, True):
        with pytest.raises(ProfileError) as err:
            ps.composite_schedule(1, at(0), bad)  # type: ignore[arg-type]
        assert err.value.field == "duration"


def test_composite_without_profiles_is_the_hard_max() -> None:
    sched = make_set().composite_schedule(2, at(0), 3600)
    assert sched is not None and sched["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 32.0, "numberPhases": 3}]


# -- clear ------------------------------------------------------------------------------------


def clear_set() -> ProfileSet:
    ps = make_set()
    assert install(ps, 0, wire(1, purpose="ChargePointMaxProfile", stack=0))
    assert install(ps, 0, wire(2, stack=1))
    assert install(ps, 1, wire(3, stack=1))
    assert install(ps, 2, wire(4, stack=2))
    assert install(ps, 1, wire(5, purpose="TxProfile", stack=1), tx=7)
    return ps


@pytest.mark.parametrize(("criteria", "left"), [
    ({"profile_id": 3}, [1, 2, 4, 5]),
    ({"profile_id": 3, "connector_id": 2}, [1, 2, 4, 5]),  # the id alone decides
    ({"connector_id": 1}, [1, 2, 4]),
    ({"connector_id": 0}, [3, 4, 5]),
    ({"purpose": Purpose.TX_DEFAULT}, [1, 5]),
    ({"stack_level": 1}, [1, 4]),
    ({"connector_id": 1, "purpose": Purpose.TX_DEFAULT, "stack_level": 1}, [1, 2, 4, 5]),
    ({}, []),
], ids=["id", "id-wins", "connector", "connector-0", "purpose", "stack", "all-three", "all"])
def test_clear_by_each_criterion(criteria: dict[str, Any], left: list[int]) -> None:
    ps = clear_set()
    assert ps.clear(**criteria) is True
    assert sorted(p.profile_id for _, p in ps.entries()) == left


@pytest.mark.parametrize("criteria", [
    {"profile_id": 99}, {"connector_id": 3}, {"purpose": Purpose.TX, "connector_id": 2},
    {"stack_level": 7}])
def test_clear_with_no_match_is_unknown_and_changes_nothing(criteria: dict[str, Any]) -> None:
    ps = clear_set()
    before = ps.entries()
    assert ps.clear(**criteria) is False
    assert ps.entries() == before


def test_restore_puts_back_what_fits() -> None:
    old = clear_set()
    ps = make_set(hard_max_a={1: 32.0})
    dropped = ps.restore(copy.deepcopy(old.entries()))
    assert [p.profile_id for _, p in dropped] == [4]  # connector 2 is gone
    assert [p.profile_id for _, p in ps.entries()] == [1, 2, 3, 5]
    assert limit(ps, 1, at(1), tx_start=at(0), tx_id=7) == 16.0


def test_profile_set_refuses_a_bad_configuration() -> None:
    bad: list[dict[str, Any]] = [
        {"hard_max_a": {}}, {"hard_max_a": {1: 0.0}}, {"hard_max_a": {-1: 16.0}},
        {"hard_max_a": {1: 16.0}, "phases": {1: 4}}, {"hard_max_a": {1: 16.0}, "phases": {2: 1}},
        {"hard_max_a": {1: 16.0}, "voltage_v": 12.0}]
    for kw in bad:
        with pytest.raises(ValueError):
            ProfileSet(**kw)
    with pytest.raises(ValueError):
        make_set().limit_a(0, at(0), tx_start=None, tx_id=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        make_set().limit_a(1, datetime(2026, 3, 10), tx_start=None, tx_id=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        make_set().composite_schedule(1, datetime(2026, 3, 10), 60)


# -- invariant: the composite schedule says what limit_a will say ---------------------------

_PROFILE = st.fixed_dictionaries({
    "where": st.sampled_from([(0, "ChargePointMaxProfile"), (0, "TxDefaultProfile"),
                              (1, "TxDefaultProfile")]),
    "kind": st.sampled_from(["Absolute", "Recurring", "Relative"]),
    "stack": st.integers(0, 3),
    "start_s": st.integers(-43200, 43200),
    "steps": st.lists(st.tuples(st.integers(1, 21600), st.integers(0, 80)), max_size=3),
    "first": st.integers(0, 80),
    "duration": st.none() | st.integers(1, 100000),
})


@settings(max_examples=150, deadline=None)
@given(profiles=st.lists(_PROFILE, min_size=1, max_size=5),
       probes=st.lists(st.integers(0, 2 * 86400 - 1), min_size=1, max_size=10))
def test_composite_schedule_matches_limit_a_at_every_instant(
        profiles: list[dict[str, Any]], probes: list[int]) -> None:
    ps = make_set()
    for pid, p in enumerate(profiles, start=1):
        cid, purpose = p["where"]
        kind = "Absolute" if purpose == "ChargePointMaxProfile" and p["kind"] == "Relative" \
            else p["kind"]
        starts = [0]
        for step, _ in p["steps"]:
            starts.append(starts[-1] + step)
        periods = list(zip(starts, [p["first"] / 2, *[lim / 2 for _, lim in p["steps"]]],
                           strict=True))
        d = wire(pid, purpose=purpose, stack=p["stack"], kind=kind, periods=periods,
                 start=None if kind == "Relative" else T0 + timedelta(seconds=p["start_s"]),
                 duration=p["duration"])
        if kind == "Recurring":
            d["recurrencyKind"] = "Daily"
        ps.install(cid, parse_profile(d), active_transaction_id=None)
    tx_start = T0 - timedelta(hours=1)
    sched = ps.composite_schedule(1, T0, 2 * 86400, tx_start=tx_start)
    assert sched is not None
    periods_out = sched["chargingSchedulePeriod"]
    for offset in probes:
        in_force = [p for p in periods_out if p["startPeriod"] <= offset][-1]
        now = T0 + timedelta(seconds=offset)
        decision = ps.limit_a(1, now, tx_start=tx_start, tx_id=None)
        assert in_force["limit"] == (32.0 if decision is None else decision.limit_a)
