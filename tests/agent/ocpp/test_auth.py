"""Authorisation decisions (agent.ocpp.auth): named decision tables per mode, online and
offline, each key combination, expiry, cache updates and StartTransaction.conf."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from ocpp.v16 import enums

from agent.errors import PeerError
from agent.ocpp.auth import (
    CARD_NOT_AUTHORISED_LED,
    AuthDecision,
    AuthMode,
    AuthorizationStatus,
    AuthSettings,
    CacheAction,
    IdTagInfo,
    Outcome,
    Presentation,
    Source,
    StartConfAction,
    authorise,
    check_id_tag,
    effective_status,
    iso_utc,
    may_stop_locally,
    on_authorize_conf,
    on_id_tag_info,
    on_start_transaction_conf,
    parse_iso,
    plug_in_id_tag,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
S = AuthorizationStatus
ACC = IdTagInfo(status=S.ACCEPTED)
BLOCKED = IdTagInfo(status=S.BLOCKED)
INVALID = IdTagInfo(status=S.INVALID)
CONCURRENT = IdTagInfo(status=S.CONCURRENT_TX)
EXPIRED_BY_TIME = IdTagInfo(status=S.ACCEPTED, expiry_date=NOW - timedelta(seconds=1))
VALID_UNTIL_TOMORROW = IdTagInfo(status=S.ACCEPTED, expiry_date=NOW + timedelta(days=1),
                                  parent_id_tag="FLEET")


def csms(**keys: Any) -> AuthSettings:
    return AuthSettings(mode=AuthMode.CSMS, **keys)


@dataclass(frozen=True)
class Row:
    name: str
    settings: AuthSettings
    online: bool
    list_entry: IdTagInfo | None
    cache_entry: IdTagInfo | None
    outcome: Outcome
    source: Source
    status: AuthorizationStatus | None
    via: Presentation = Presentation.RFID


ROWS = [
    # Mode NONE (manual 6.5): everything goes.
    Row("none_accepts_unknown_card", AuthSettings(mode=AuthMode.NONE, free_id_tag="FREE"),
        False, None, None, Outcome.ACCEPTED, Source.FREE, S.ACCEPTED),
    Row("none_accepts_even_a_blocked_card", AuthSettings(mode=AuthMode.NONE,
        free_id_tag="FREE"), True, BLOCKED, BLOCKED, Outcome.ACCEPTED, Source.FREE, S.ACCEPTED),
    # Mode LOCAL_LIST: the whitelist alone, online or not.
    Row("list_accepts_listed", AuthSettings(mode=AuthMode.LOCAL_LIST), True, ACC, None,
        Outcome.ACCEPTED, Source.LOCAL_LIST, S.ACCEPTED),
    Row("list_rejects_unlisted_online", AuthSettings(mode=AuthMode.LOCAL_LIST), True, None,
        ACC, Outcome.REJECTED, Source.NO_AUTHORITY, S.INVALID),
    Row("list_rejects_unlisted_offline", AuthSettings(mode=AuthMode.LOCAL_LIST), False, None,
        None, Outcome.REJECTED, Source.NO_AUTHORITY, S.INVALID),
    Row("list_rejects_blocked", AuthSettings(mode=AuthMode.LOCAL_LIST), False, BLOCKED, None,
        Outcome.REJECTED, Source.LOCAL_LIST, S.BLOCKED),
    Row("list_rejects_expired_by_time", AuthSettings(mode=AuthMode.LOCAL_LIST), True,
        EXPIRED_BY_TIME, None, Outcome.REJECTED, Source.LOCAL_LIST, S.EXPIRED),
    Row("list_accepts_before_expiry", AuthSettings(mode=AuthMode.LOCAL_LIST), True,
        VALID_UNTIL_TOMORROW, None, Outcome.ACCEPTED, Source.LOCAL_LIST, S.ACCEPTED),
    Row("list_mode_remote_start_accepted", AuthSettings(mode=AuthMode.LOCAL_LIST), True, None,
        None, Outcome.ACCEPTED, Source.CSMS, S.ACCEPTED, Presentation.REMOTE),
    # Mode CSMS, online.
    Row("online_asks_csms_by_default", csms(), True, ACC, ACC, Outcome.ASK_CSMS, Source.CSMS,
        None),
    Row("online_pre_authorize_list", csms(local_pre_authorize=True), True, ACC, None,
        Outcome.ACCEPTED, Source.LOCAL_LIST, S.ACCEPTED),
    Row("online_pre_authorize_cache", csms(local_pre_authorize=True), True, None, ACC,
        Outcome.ACCEPTED, Source.CACHE, S.ACCEPTED),
    Row("online_pre_authorize_concurrent_tx_is_valid", csms(local_pre_authorize=True), True,
        CONCURRENT, None, Outcome.ACCEPTED, Source.LOCAL_LIST, S.ACCEPTED),
    Row("online_pre_authorize_cache_disabled_asks", csms(local_pre_authorize=True,
        authorization_cache_enabled=False), True, None, ACC, Outcome.ASK_CSMS, Source.CSMS,
        None),
    Row("online_pre_authorize_list_disabled_uses_cache", csms(
        local_pre_authorize=True, local_auth_list_enabled=False), True, BLOCKED, ACC,
        Outcome.ACCEPTED, Source.CACHE, S.ACCEPTED),
    Row("online_blocked_locally_asks_again", csms(local_pre_authorize=True), True, BLOCKED,
        None, Outcome.ASK_CSMS, Source.CSMS, None),
    Row("online_expired_cache_asks", csms(local_pre_authorize=True), True, None,
        EXPIRED_BY_TIME, Outcome.ASK_CSMS, Source.CSMS, None),
    Row("online_unknown_asks", csms(local_pre_authorize=True), True, None, None,
        Outcome.ASK_CSMS, Source.CSMS, None),
    Row("list_wins_over_cache", csms(local_pre_authorize=True), True, BLOCKED, ACC,
        Outcome.ASK_CSMS, Source.CSMS, None),
    Row("remote_start_trusted", csms(), True, None, None, Outcome.ACCEPTED, Source.CSMS,
        S.ACCEPTED, Presentation.REMOTE),
    Row("remote_start_authorised_when_asked", csms(authorize_remote_tx_requests=True), True,
        None, None, Outcome.ASK_CSMS, Source.CSMS, None, Presentation.REMOTE),
    # Mode CSMS, offline (3.5.3).
    Row("offline_list_valid", csms(), False, ACC, None, Outcome.ACCEPTED, Source.LOCAL_LIST,
        S.ACCEPTED),
    Row("offline_cache_valid", csms(), False, None, ACC, Outcome.ACCEPTED, Source.CACHE,
        S.ACCEPTED),
    Row("offline_local_authorize_off_rejects_known", csms(local_authorize_offline=False),
        False, ACC, None, Outcome.REJECTED, Source.NO_AUTHORITY, S.INVALID),
    Row("offline_list_blocked_rejected", csms(), False, BLOCKED, ACC, Outcome.REJECTED,
        Source.LOCAL_LIST, S.BLOCKED),
    Row("offline_cache_invalid_rejected", csms(), False, None, INVALID, Outcome.REJECTED,
        Source.CACHE, S.INVALID),
    Row("offline_expired_by_time_rejected", csms(allow_offline_tx_for_unknown_id=True), False,
        None, EXPIRED_BY_TIME, Outcome.REJECTED, Source.CACHE, S.EXPIRED),
    Row("offline_blocked_rejected_even_if_unknown_allowed", csms(
        allow_offline_tx_for_unknown_id=True, local_authorize_offline=False), False, BLOCKED,
        None, Outcome.REJECTED, Source.LOCAL_LIST, S.BLOCKED),
    Row("offline_unknown_rejected", csms(), False, None, None, Outcome.REJECTED,
        Source.NO_AUTHORITY, S.INVALID),
    Row("offline_unknown_allowed", csms(allow_offline_tx_for_unknown_id=True), False, None,
        None, Outcome.ACCEPTED, Source.UNKNOWN_OFFLINE, S.ACCEPTED),
    Row("offline_cache_disabled_is_unknown", csms(authorization_cache_enabled=False), False,
        None, ACC, Outcome.REJECTED, Source.NO_AUTHORITY, S.INVALID),
    Row("offline_known_valid_local_off_but_unknown_allowed", csms(
        local_authorize_offline=False, allow_offline_tx_for_unknown_id=True), False, ACC,
        None, Outcome.ACCEPTED, Source.UNKNOWN_OFFLINE, S.ACCEPTED),
    Row("offline_remote_start_trusted", csms(), False, None, None, Outcome.ACCEPTED,
        Source.CSMS, S.ACCEPTED, Presentation.REMOTE),
    Row("offline_remote_start_authorised_locally", csms(authorize_remote_tx_requests=True),
        False, None, ACC, Outcome.ACCEPTED, Source.CACHE, S.ACCEPTED, Presentation.REMOTE),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_decision_table(row: Row) -> None:
    d = authorise("CARD-1", via=row.via, settings=row.settings, online=row.online, now=NOW,
                  list_entry=row.list_entry, cache_entry=row.cache_entry)
    assert (d.outcome, d.source, d.status) == (row.outcome, row.source, row.status), d.why
    assert d.id_tag == "CARD-1"
    rejected_card = d.outcome is Outcome.REJECTED and row.via is Presentation.RFID
    assert d.led == (CARD_NOT_AUTHORISED_LED if rejected_card else None)
    if d.outcome is Outcome.REJECTED:
        assert d.status is not S.ACCEPTED


def test_every_key_combination_offline_never_accepts_a_known_bad_card() -> None:
    """3.5.3: whatever the keys, a locally blocked, invalid or expired card is refused
    offline, and an unknown one only goes with AllowOfflineTxForUnknownId."""
    flags = ("local_auth_list_enabled", "local_authorize_offline", "local_pre_authorize",
             "authorization_cache_enabled", "allow_offline_tx_for_unknown_id")
    for values in itertools.product((False, True), repeat=len(flags)):
        settings = csms(**dict(zip(flags, values, strict=True)))
        for bad in (BLOCKED, INVALID, EXPIRED_BY_TIME):
            d = authorise("X", via=Presentation.RFID, settings=settings, online=False,
                          now=NOW, list_entry=bad, cache_entry=bad)
            lookups = settings.local_auth_list_enabled or settings.authorization_cache_enabled
            if lookups:
                assert d.outcome is Outcome.REJECTED, (settings, bad)
        unknown = authorise("X", via=Presentation.RFID, settings=settings, online=False,
                            now=NOW, list_entry=None, cache_entry=None)
        expected = (Outcome.ACCEPTED if settings.allow_offline_tx_for_unknown_id
                    else Outcome.REJECTED)
        assert unknown.outcome is expected
        online = authorise("X", via=Presentation.RFID, settings=settings, online=True,
                           now=NOW, list_entry=None, cache_entry=None)
        assert online.outcome is Outcome.ASK_CSMS


def test_plug_in_id_tag_only_in_mode_none() -> None:
    assert plug_in_id_tag(AuthSettings(mode=AuthMode.NONE, free_id_tag="FREE")) == "FREE"
    assert plug_in_id_tag(csms()) is None
    assert plug_in_id_tag(AuthSettings(mode=AuthMode.LOCAL_LIST)) is None


@pytest.mark.parametrize(("info", "outcome", "status"), [
    (ACC, Outcome.ACCEPTED, S.ACCEPTED),
    (VALID_UNTIL_TOMORROW, Outcome.ACCEPTED, S.ACCEPTED),
    (EXPIRED_BY_TIME, Outcome.REJECTED, S.EXPIRED),
    (BLOCKED, Outcome.REJECTED, S.BLOCKED),
    (INVALID, Outcome.REJECTED, S.INVALID),
    (CONCURRENT, Outcome.REJECTED, S.CONCURRENT_TX),
], ids=["accepted", "accepted_until_tomorrow", "expired_by_time", "blocked", "invalid",
        "concurrent_tx"])
def test_authorize_conf(info: IdTagInfo, outcome: Outcome, status: AuthorizationStatus) -> None:
    d: AuthDecision = on_authorize_conf("CARD-1", info, now=NOW)
    assert (d.outcome, d.status, d.source) == (outcome, status, Source.CSMS)
    if outcome is Outcome.ACCEPTED:
        assert d.parent_id_tag == info.parent_id_tag


@pytest.mark.parametrize(("settings", "in_list", "action"), [
    (csms(), False, CacheAction.PUT),
    (csms(), True, CacheAction.SKIP),
    (csms(local_auth_list_enabled=False), True, CacheAction.PUT),
    (csms(authorization_cache_enabled=False), False, CacheAction.SKIP),
], ids=["cached", "listed_tags_stay_out", "list_disabled", "cache_disabled"])
@pytest.mark.parametrize("info", [ACC, BLOCKED, EXPIRED_BY_TIME], ids=["acc", "blk", "exp"])
def test_cache_update_from_every_id_tag_info(settings: AuthSettings, in_list: bool,
                                             action: CacheAction, info: IdTagInfo) -> None:
    u = on_id_tag_info("CARD-1", info, settings=settings, in_local_list=in_list)
    assert u.action is action
    assert u.info == info and u.id_tag == "CARD-1"


def test_cache_round_trip_decides_offline() -> None:
    """A Blocked answer online is cached and refuses the same card offline."""
    settings = csms(allow_offline_tx_for_unknown_id=True)
    u = on_id_tag_info("CARD-1", BLOCKED, settings=settings, in_local_list=False)
    d = authorise("card-1", via=Presentation.RFID, settings=settings, online=False, now=NOW,
                  list_entry=None, cache_entry=u.info)
    assert (d.outcome, d.status) == (Outcome.REJECTED, S.BLOCKED)


@pytest.mark.parametrize(("info", "stop_on_invalid", "action"), [
    (ACC, True, StartConfAction.CONTINUE),
    (ACC, False, StartConfAction.CONTINUE),
    (INVALID, True, StartConfAction.STOP_TRANSACTION),
    (BLOCKED, True, StartConfAction.STOP_TRANSACTION),
    (CONCURRENT, True, StartConfAction.STOP_TRANSACTION),
    (EXPIRED_BY_TIME, True, StartConfAction.STOP_TRANSACTION),
    (INVALID, False, StartConfAction.SUSPEND_ENERGY),
], ids=["accepted", "accepted_keep", "invalid", "blocked", "concurrent", "expired",
        "invalid_no_stop"])
def test_start_transaction_conf(info: IdTagInfo, stop_on_invalid: bool,
                                action: StartConfAction) -> None:
    d = on_start_transaction_conf(info, now=NOW, settings=csms(
        stop_transaction_on_invalid_id=stop_on_invalid))
    assert d.action is action


def test_effective_status_honours_expiry() -> None:
    at = IdTagInfo(status=S.ACCEPTED, expiry_date=NOW)
    assert effective_status(at, NOW) is S.EXPIRED  # expiry instant itself is past
    assert effective_status(at, NOW - timedelta(microseconds=1)) is S.ACCEPTED
    assert effective_status(BLOCKED, NOW) is S.BLOCKED


def test_may_stop_locally() -> None:
    assert may_stop_locally("card-1", tx_id_tag="CARD-1")
    assert not may_stop_locally("CARD-2", tx_id_tag="CARD-1")
    assert may_stop_locally("CARD-2", tx_id_tag="CARD-1", presented_parent_id_tag="fleet",
                            tx_parent_id_tag="FLEET")
    assert not may_stop_locally("CARD-2", tx_id_tag="CARD-1", presented_parent_id_tag="FLEET")


@pytest.mark.parametrize("bad", ["", "X" * 21, "caf\u00e9", "tab\tin"],
                         ids=["empty", "too_long", "non_ascii", "control"])
def test_bad_id_tags_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="idTag"):
        check_id_tag(bad)
    with pytest.raises(ValueError):
        authorise(bad, via=Presentation.RFID, settings=csms(), online=True, now=NOW,
                  list_entry=None, cache_entry=None)


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="free_id_tag"):
        AuthSettings(mode=AuthMode.NONE)
    with pytest.raises(ValueError, match="timezone"):
        IdTagInfo(status=S.ACCEPTED, expiry_date=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="timezone"):
        authorise("A", via=Presentation.RFID, settings=csms(), online=True,
                  now=datetime(2025, 1, 1), list_entry=None, cache_entry=None)


def test_id_tag_info_json_round_trip_and_peer_errors() -> None:
    info = replace(VALID_UNTIL_TOMORROW)
    data = info.to_json()
    assert data == {"status": "Accepted", "expiryDate": "2025-03-02T12:00:00Z",
                    "parentIdTag": "FLEET"}
    assert IdTagInfo.from_json(data) == info
    assert IdTagInfo.from_json({"status": "Blocked"}) == BLOCKED
    for bad in ({"status": "Maybe"}, {}, {"status": "Accepted", "expiryDate": "tomorrow"},
                {"status": "Accepted", "expiryDate": "2025-03-02T12:00:00"}):
        with pytest.raises(PeerError, match="CSMS"):
            IdTagInfo.from_json(bad)


def test_iso_utc_formats() -> None:
    assert iso_utc(NOW) == "2025-03-01T12:00:00Z"
    assert iso_utc(NOW + timedelta(microseconds=123456)) == "2025-03-01T12:00:00.123Z"
    cet = NOW.astimezone(timezone(timedelta(hours=1)))
    assert iso_utc(cet) == "2025-03-01T12:00:00Z"
    assert parse_iso("2025-03-01T12:00:00Z") == NOW


def test_enums_match_the_ocpp_library() -> None:
    assert {s.value for s in AuthorizationStatus} == {s.value for s in
                                                      enums.AuthorizationStatus}
