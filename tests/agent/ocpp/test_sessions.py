"""OcppSessions in virtual time, on real SQLite stores in a temporary folder: where cards
and remote starts go, how long they wait for a plug-in, what stops a transaction, and
the Authorize questions it hands the charge point."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.faults import OcppStatus
from agent.ocpp.auth import CARD_NOT_AUTHORISED_LED, AuthMode, AuthorizationStatus, IdTagInfo
from agent.ocpp.configkeys import ConfigurationStore, open_db
from agent.ocpp.profilestore import ProfileStore
from agent.ocpp.sessions import OcppSessions
from agent.ocpp.store import OcppStore
from agent.ocpp.transactions import Observed
from agent.ocpp.ukdefault import UkDefault, UkDefaultSettings
from hw.capabilities import MeterReading

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
METER = MeterReading(phase_voltages_v=(230.0,) * 3, phase_currents_a=(0.0,) * 3,
                     phase_powers_w=(0.0,) * 3, total_power_w=0.0, frequency_hz=50.0,
                     import_energy_wh=1234.6)


Make = Callable[..., OcppSessions]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    opened: list[OcppSessions] = []
    db = open_db(tmp_path)

    def build(mode: AuthMode, *, tags: tuple[str, ...] = (), online: bool = False
              ) -> OcppSessions:
        path = tmp_path / "ocpp.db"
        s = OcppSessions(
            store=OcppStore(path), profile_store=ProfileStore(path),
            keys=ConfigurationStore(db), hard_max_a={1: 32.0, 2: 32.0}, charger_limit_a=32.0,
            mode=mode, free_id_tag="FREE", local_list=tags,
            uk_default=UkDefault(UkDefaultSettings(), random.Random(1)),
            online=lambda: online, charger_id="io7-unit")
        opened.append(s)
        return s

    yield build
    for s in opened:
        s.store.close()
        s.profile_store.close()
    db.close()


def step(s: OcppSessions, at: datetime, plugged: dict[int, bool], card: str | None = None
         ) -> dict[int, bool]:
    """One agent step; which connectors are authorised."""
    prepared, _ = s.prepare(at, plugged, card)
    s.record(at, [Observed(connector_id=c, status=OcppStatus.PREPARING if p
                           else OcppStatus.AVAILABLE, plugged=p, meter=METER, offered_a=0.0)
                  for c, p in plugged.items()])
    return {c: p.authorised for c, p in prepared.items()}


def queued(s: OcppSessions) -> list[tuple[str, object]]:
    return [(m.action.value, m.payload.get("reason") or m.payload.get("idTag"))
            for m in s.store.pending()]


def test_a_card_goes_to_the_plugged_connector_and_the_same_card_stops_it(make: Make) -> None:
    s = make(AuthMode.LOCAL_LIST, tags=("A1",))
    assert step(s, T0, {1: False, 2: True}, "A1") == {1: False, 2: True}
    assert s.store.pending()[0].payload["meterStart"] == 1234  # floored to whole Wh
    step(s, T0 + timedelta(seconds=1), {1: False, 2: True}, None)
    assert step(s, T0 + timedelta(seconds=2), {1: False, 2: True}, "a1") == {1: False, 2: False}
    assert step(s, T0 + timedelta(seconds=3), {1: False, 2: True}) == {1: False, 2: False}
    assert queued(s) == [("StartTransaction", "A1"), ("StopTransaction", "Local")]
    assert s.stops == {} and 2 in s.finished  # Finishing until unplugged


def test_an_unknown_card_shows_the_led_on_its_connector(make: Make) -> None:
    s = make(AuthMode.LOCAL_LIST, tags=("A1",))
    s.prepare(T0, {1: True, 2: False}, "ZZ")
    prepared, _ = s.prepare(T0 + timedelta(seconds=1), {1: True, 2: False}, "ZZ")
    assert prepared[1].led == CARD_NOT_AUTHORISED_LED and prepared[2].led is None
    later, _ = s.prepare(T0 + timedelta(seconds=6), {1: True, 2: False}, None)
    assert later[1].led is None and not later[1].authorised


def test_a_remote_start_waits_connection_timeout_for_the_plug_in(make: Make) -> None:
    s = make(AuthMode.CSMS)
    assert s.remote_start("R1", None, None, T0)
    assert step(s, T0 + timedelta(seconds=5), {1: False, 2: False}) == {1: False, 2: False}
    assert step(s, T0 + timedelta(seconds=10), {1: False, 2: True}) == {1: False, 2: True}
    assert s.remote_start("R2", 1, None, T0 + timedelta(seconds=11))
    assert not s.remote_start("R3", 2, None, T0 + timedelta(seconds=11))  # busy
    assert not s.remote_start("R3", 3, None, T0 + timedelta(seconds=11))  # no connector 3
    late = T0 + timedelta(seconds=11 + 60)  # ConnectionTimeOut (60 s) has passed
    assert step(s, late, {1: True, 2: True})[1] is False
    assert [p for a, p in queued(s) if a == "StartTransaction"] == ["R1"]


def test_mode_none_starts_on_plug_in_and_not_again_after_a_remote_stop(make: Make) -> None:
    s = make(AuthMode.NONE)
    assert step(s, T0, {1: True, 2: False})[1]
    head = s.store.peek()
    assert head is not None and head.action.value == "StartTransaction"
    assert not s.remote_stop(5)  # the CSMS's id is unknown before its conf
    s.delivered(head, {"transactionId": 5, "idTagInfo": {"status": "Accepted"}}, T0)
    assert s.remote_stop(5)
    assert step(s, T0 + timedelta(seconds=1), {1: True, 2: False})[1] is False
    assert step(s, T0 + timedelta(seconds=2), {1: True, 2: False})[1] is False  # Finishing
    step(s, T0 + timedelta(seconds=3), {1: False, 2: False})
    assert step(s, T0 + timedelta(seconds=4), {1: True, 2: False})[1]  # a new plug-in
    assert queued(s) == [("StopTransaction", "Remote"), ("StartTransaction", "FREE")]


def test_the_csms_is_asked_and_silence_counts_as_offline(make: Make) -> None:
    s = make(AuthMode.CSMS, online=True)
    assert s.keys.change("AuthorizeRemoteTxRequests", "true").status.value == "Accepted"
    assert s.remote_start("Q1", 1, None, T0)
    q = s.take_question()
    assert q is not None and (q.id_tag, q.connector_id) == ("Q1", 1)
    s.answer(q, IdTagInfo(status=AuthorizationStatus.ACCEPTED), T0)
    assert step(s, T0 + timedelta(seconds=1), {1: True, 2: False})[1]  # it waited
    assert s.store.cache_get("Q1") is not None
    step(s, T0 + timedelta(seconds=2), {1: True, 2: True}, "CARD")
    card = s.take_question()
    assert card is not None and card.connector_id == 2 and s.take_question() is None
    s.answer(card, None, T0 + timedelta(seconds=3))  # no answer: offline and unknown
    prepared, _ = s.prepare(T0 + timedelta(seconds=3), {1: True, 2: True}, "CARD")
    assert not prepared[2].authorised and prepared[2].led == CARD_NOT_AUTHORISED_LED


def test_a_wall_clock_stepping_back_is_absorbed(make: Make) -> None:
    s = make(AuthMode.NONE)
    step(s, T0, {1: True, 2: False})
    step(s, T0 - timedelta(hours=1), {1: True, 2: False})  # NTP stepped the clock back
    assert s.sessions.active(1) is not None
