"""Configuration keys and availability (agent.ocpp.configkeys): table-driven, on a real
SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.ocpp import metervalues, profiles, store
from agent.ocpp.availability import Availability, AvailabilityChange
from agent.ocpp.configkeys import (
    KEYS,
    ChangeStatus,
    ConfigurationStore,
    Effect,
    InvalidValueError,
    key_spec,
    open_db,
)

REQUIRED_KEYS = (  # the list: the keys the other agent.ocpp parts read
    "HeartbeatInterval", "ConnectionTimeOut", "MeterValueSampleInterval",
    "ClockAlignedDataInterval", "MeterValuesSampledData", "MeterValuesAlignedData",
    "StopTransactionOnEVSideDisconnect", "StopTransactionOnInvalidId", "LocalAuthorizeOffline",
    "LocalPreAuthorize", "AuthorizationCacheEnabled", "AllowOfflineTxForUnknownId",
    "LocalAuthListEnabled", "LocalAuthListMaxLength", "SendLocalListMaxLength",
    "ChargeProfileMaxStackLevel", "ChargingScheduleAllowedChargingRateUnit",
    "ChargingScheduleMaxPeriods", "MaxChargingProfilesInstalled", "NumberOfConnectors",
    "SupportedFeatureProfiles", "GetConfigurationMaxKeys", "ResetRetries",
    "TransactionMessageAttempts", "TransactionMessageRetryInterval",
    "UnlockConnectorOnEVSideDisconnect", "WebSocketPingInterval", "AuthorizationKey")
READ_ONLY = {"LocalAuthListMaxLength", "SendLocalListMaxLength", "ChargeProfileMaxStackLevel",
             "ChargingScheduleAllowedChargingRateUnit", "ChargingScheduleMaxPeriods",
             "MaxChargingProfilesInstalled", "NumberOfConnectors", "SupportedFeatureProfiles",
             "GetConfigurationMaxKeys"}

KEY_HEX = "8f3a1c9e57d20b64e1a97c3f5d08b2e6a4917c5f"  # 20 random bytes


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = open_db(tmp_path / "state")
    yield conn
    conn.close()


def test_every_required_key_is_known_with_its_read_only_flag() -> None:
    for name in REQUIRED_KEYS:
        spec = key_spec(name.upper())
        assert spec is not None and spec.name == name
        assert spec.readonly is (name in READ_ONLY), name
    assert KEYS["authorizationkey"].write_only
    assert KEYS["authorizationkey"].effect is Effect.RECONNECT


def test_the_database_is_wal_and_synchronous_full(db: sqlite3.Connection) -> None:
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


@pytest.mark.parametrize(("key", "value", "clean"), [
    ("HeartbeatInterval", " 0060 ", "60"),
    ("HeartbeatInterval", "86400", "86400"),
    ("LocalPreAuthorize", "False", "false"),
    ("MeterValuesAlignedData", "Voltage, Current.Import", "Voltage,Current.Import"),
    ("MeterValuesAlignedData", "", ""),
    ("AuthorizationKey", "8F3A1C9E57D20B64E1A97C3F5D08B2E6", "8f3a1c9e57d20b64e1a97c3f5d08b2e6"),
], ids=repr)
def test_values_are_normalised(key: str, value: str, clean: str) -> None:
    spec = key_spec(key)
    assert spec is not None and spec.parse(value) == clean


@pytest.mark.parametrize(("key", "value", "why"), [
    ("HeartbeatInterval", "86401", "0-86400"),
    ("HeartbeatInterval", "1.5", "whole number"),
    ("HeartbeatInterval", "٣", "whole number"),  # a digit, but not an ASCII one
    ("LocalPreAuthorize", "yes", "true or false"),
    ("MeterValuesAlignedData", "Voltage,Voltage", "distinct"),
    ("MeterValuesAlignedData", "SoC", "distinct items"),
    ("AuthorizationKey", "0011", "16-20 bytes"),  # too short
    ("AuthorizationKey", "00" * 21, "16-20 bytes"),  # too long
    ("AuthorizationKey", "0g" * 16, "hexadecimal"),
    ("AuthorizationKey", "0" * 33, "hexadecimal"),  # odd length
    # Guessable keys (agent.ocpp.keyvalues rule 2), with what to do about it:
    ("AuthorizationKey", b"change-me-please".hex(), "placeholder.*openssl rand"),
    ("AuthorizationKey", b"my-secret-key-16".hex(), "placeholder"),
    ("AuthorizationKey", "00" * 16, "only 1 different"),
    ("AuthorizationKey", "ab" * 20, "only 1 different"),
    ("AuthorizationKey", "0102030405" * 4, "repeats a pattern of 5"),
    ("AuthorizationKey", "00112233445566778899aabbccddeeff", "run like"),
    ("AuthorizationKey", bytes(range(1, 21)).hex(), "run like"),
], ids=repr)
def test_bad_values_say_what_is_allowed(key: str, value: str, why: str) -> None:
    spec = key_spec(key)
    assert spec is not None
    with pytest.raises(InvalidValueError, match=why):
        spec.parse(value)


def test_change_is_checked_stored_and_heard(db: sqlite3.Connection) -> None:
    store = ConfigurationStore(db, given={"NumberOfConnectors": "1"})
    heard: list[tuple[str, str]] = []
    unsubscribe = store.subscribe(lambda k, v: heard.append((k, v)))
    assert store.change("heartbeatinterval", "30").status is ChangeStatus.ACCEPTED
    assert store.change("HeartbeatInterval", "x").status is ChangeStatus.REJECTED
    assert store.change("NumberOfConnectors", "2").status is ChangeStatus.REJECTED
    assert store.change("Nope", "2").status is ChangeStatus.NOT_SUPPORTED
    assert store.change("WebSocketPingInterval", "10").status is ChangeStatus.REBOOT_REQUIRED
    unsubscribe()
    store.change("HeartbeatInterval", "40")
    assert heard == [("HeartbeatInterval", "30"), ("WebSocketPingInterval", "10")]
    again = ConfigurationStore(db)  # what a restart reads back
    assert (again.integer("HeartbeatInterval"), again.integer("WebSocketPingInterval")) == (
        40, 10)
    assert again.value("NumberOfConnectors") == "2"  # `given` is not stored
    assert ConfigurationStore(db, given={"NumberOfConnectors": "1"}).integer(
        "NumberOfConnectors") == 1


def test_get_lists_known_and_unknown_and_hides_the_key(db: sqlite3.Connection) -> None:
    store = ConfigurationStore(db)
    store.change("AuthorizationKey", KEY_HEX)
    known, unknown = store.get(["AUTHORIZATIONKEY", "Foo", "ResetRetries"])
    assert [(k.key, k.readonly, k.value) for k in known] == [
        ("AuthorizationKey", False, None), ("ResetRetries", False, "1")]
    assert unknown == ["Foo"]
    everything, none = store.get()
    assert {k.key for k in everything} == {s.name for s in KEYS.values()} and none == []
    assert store.value("AuthorizationKey") == KEY_HEX  # the shell can read it


def test_given_values_and_stored_rows_are_checked(db: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match="not a configuration key"):
        ConfigurationStore(db, given={"Foo": "1"})
    with pytest.raises(InvalidValueError):
        ConfigurationStore(db, given={"NumberOfConnectors": "3"})
    ConfigurationStore(db)
    with db:
        db.execute("INSERT INTO configuration VALUES ('HeartbeatInterval', 'garbage'), "
                   "('OldKey', '1'), ('NumberOfConnectors', '1')")
    store = ConfigurationStore(db)  # bad rows are ignored (logged), defaults apply
    assert store.value("HeartbeatInterval") == "300"
    assert store.value("NumberOfConnectors") == "2"


@pytest.mark.parametrize(("name", "steps", "operative"), [
    ("idle connector: at once", [(1, False, (), "Accepted")], {0: True, 1: False, 2: True}),
    ("charging connector: after the session", [(1, False, (1,), "Scheduled")],
     {0: True, 1: True, 2: True}),
    ("other connector charging: at once", [(2, False, (1,), "Accepted")],
     {0: True, 1: True, 2: False}),
    ("the charger while one charges: scheduled", [(0, False, (2,), "Scheduled")],
     {0: True, 1: True, 2: True}),
    ("the charger idle: every connector", [(0, False, (), "Accepted")],
     {0: False, 1: False, 2: False}),
    ("operative again cancels a scheduled change",
     [(1, False, (1,), "Scheduled"), (1, True, (1,), "Accepted")], {0: True, 1: True, 2: True}),
    ("already inoperative: accepted", [(1, False, (), "Accepted"), (1, False, (1,), "Accepted")],
     {0: True, 1: False, 2: True}),
    ("no such connector", [(3, False, (), "Rejected")], {0: True, 1: True, 2: True}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_availability_rules(db: sqlite3.Connection, name: str,
                            steps: list[tuple[int, bool, tuple[int, ...], str]],
                            operative: dict[int, bool]) -> None:
    book = Availability(db, [1, 2])
    for cid, wanted, busy, answer in steps:
        assert book.request(cid, wanted, busy=busy) is AvailabilityChange(answer)
    assert {c: book.operative(c) for c in (0, 1, 2)} == operative


def test_scheduled_change_applies_when_the_session_ends_and_survives_a_restart(
        db: sqlite3.Connection) -> None:
    book = Availability(db, [1, 2])
    assert book.request(0, False, busy={1}) is AvailabilityChange.SCHEDULED
    assert book.settle(busy={1}) == ()
    restarted = Availability(db, [1, 2])
    assert restarted.scheduled(0) and restarted.operative(2)
    assert restarted.settle(busy=()) == (0,)
    assert not Availability(db, [1, 2]).operative(1)
    with pytest.raises(ValueError, match="start at 1"):
        Availability(db, [0, 1])


def test_read_only_limits_match_what_the_other_parts_were_built_with() -> None:
    defaults = {s.name: s.default for s in KEYS.values()}
    assert defaults["ChargeProfileMaxStackLevel"] == str(profiles.MAX_STACK_LEVEL)
    assert defaults["ChargingScheduleMaxPeriods"] == str(profiles.MAX_PERIODS)
    assert defaults["MaxChargingProfilesInstalled"] == str(profiles.MAX_PROFILES)
    built = store.OcppStore.__init__.__kwdefaults__ or {}
    assert defaults["LocalAuthListMaxLength"] == str(built["local_list_max_length"])
    assert defaults["SendLocalListMaxLength"] == str(built["send_local_list_max_length"])
    assert defaults["MeterValuesSampledData"] == ",".join(
        m.value for m in metervalues.DEFAULT_MEASURANDS)
