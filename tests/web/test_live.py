"""The live page's pure parts: the LED a connector shows (master/web/leds.py) and the
event built from a GroupStatus (master/web/live.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from master.election.raft import ElectionView
from master.pki import Pki
from master.service import Master
from master.statuswords import connector_reason
from master.web import auth, live
from master.web.history import ConnectorPoint, History, PhasePoint
from master.web.leds import connector_led
from master.web.live import events, history_points, live_event, sample_forever
from master.web.station import Station
from protos.identity import Kind
from protos.io7.cluster.v1 import cluster_pb2 as pb
from tests.tlssupport import make_site
from tests.web import support
from tests.web.support import ALL_PHASES, WEB_PLAIN, io7_toml, table

LED_ROWS = {  # name: (status, offered A, online) -> (colours, blinking, meaning)
    "available is green": (pb.CONNECTOR_STATUS_AVAILABLE, 0.0, True,
                           (["green"], False, "ready")),
    "plugged, not authorised, is magenta": (pb.CONNECTOR_STATUS_PREPARING, 0.0, True,
                                            (["magenta"], False, "cable inserted")),
    "offered, EV not yet drawing, is yellow": (pb.CONNECTOR_STATUS_PREPARING, 16.0, True,
                                               (["yellow"], False, "waiting to charge")),
    "charging blinks blue": (pb.CONNECTOR_STATUS_CHARGING, 16.0, True,
                             (["blue"], True, "charging")),
    "paused by the group is yellow": (pb.CONNECTOR_STATUS_SUSPENDED_EVSE, 0.0, True,
                                      (["yellow"], False, "waiting to charge")),
    "suspended by the EV is magenta/blue": (pb.CONNECTOR_STATUS_SUSPENDED_EV, 16.0, True,
                                            (["magenta", "blue"], False,
                                             "suspended by the EV")),
    "unavailable is magenta/yellow": (pb.CONNECTOR_STATUS_UNAVAILABLE, 0.0, True,
                                      (["magenta", "yellow"], False, "out of order")),
    "faulted is red": (pb.CONNECTOR_STATUS_FAULTED, 0.0, True, (["red"], False, "fault")),
    "never reported is white": (pb.CONNECTOR_STATUS_UNSPECIFIED, 0.0, True,
                                (["white"], False, "starting up")),
    "offline is unknown, not guessed": (pb.CONNECTOR_STATUS_CHARGING, 16.0, False,
                                        ([], False, "unknown: the charger is offline")),
}


@pytest.mark.parametrize("row", LED_ROWS.values(), ids=LED_ROWS.keys())
def test_led_of_a_connector(row: tuple[int, float, bool, tuple[list[str], bool, str]]
                            ) -> None:
    status, offered, online, (colours, blinking, meaning) = row
    assert connector_led(status, offered, online=online).as_json() == {
        "colours": colours, "blinking": blinking, "meaning": meaning}


# --- the event built from a GroupStatus (live_event, history_points, statuswords) -------

def worked_status() -> pb.GroupStatus:
    """A group of two at cycle 7: L2 binds (an energy manager lowered it to 20 A); io7-01's
    connector 1 charges on all three lines, its connector 2 is wired L1 -> site L2 and is
    paused for room; io7-02 is offline."""
    s = pb.GroupStatus(group="garage", term=3, cycle=7, master_id="io7-01",
                       mode=pb.LOAD_BALANCING_MODE_DYNAMIC, ct_status=pb.CT_STATUS_OK,
                       offline_strategy=pb.OFFLINE_STRATEGY_MINIMISE)
    for phase, limit, ct in ((pb.PHASE_L1, 32.0, 20.0), (pb.PHASE_L2, 20.0, 19.5),
                             (pb.PHASE_L3, 32.0, 12.0)):
        s.phases.add(phase=phase, limit_a=limit, configured_limit_a=32.0, ct_a=ct,
                     other_load_a=2.0, reserved_offline_a=6.0, available_a=limit - 8.0,
                     allocated_a=12.0,
                     limit_source="energy manager (MQTT) until 17:30"
                     if phase == pb.PHASE_L2 else "installed limit")
    m = s.members.add(charger_id="io7-01", online=True)
    three = pb.ConnectorWiring(l1=pb.PHASE_L1, l2=pb.PHASE_L2, l3=pb.PHASE_L3)
    m.connectors.add(connector_id=1, status=pb.CONNECTOR_STATUS_CHARGING, offered_a=12.0,
                     allocated_a=12.0, measured_a=pb.LineValues(l1=11.8, l2=11.7, l3=11.9),
                     reason=pb.LIMIT_REASON_PHASE_LIMIT, limiting_phase=pb.PHASE_L2,
                     wiring=three)
    m.connectors.add(connector_id=2, status=pb.CONNECTOR_STATUS_SUSPENDED_EVSE,
                     reason=pb.LIMIT_REASON_PAUSED_NO_ROOM, limiting_phase=pb.PHASE_L2,
                     measured_a=pb.LineValues(l1=0.5),
                     wiring=pb.ConnectorWiring(l1=pb.PHASE_L2))
    off = s.members.add(charger_id="io7-02", online=False, offline_reason="stream closed")
    off.connectors.add(connector_id=1, status=pb.CONNECTOR_STATUS_CHARGING, offered_a=6.0,
                       reason=pb.LIMIT_REASON_OFFLINE, wiring=three)
    return s


def test_live_event_of_a_worked_status() -> None:
    ev = live_event(worked_status(), charger_id="io7-01", now_unix_s=1_700_000_000.0)
    assert (ev["leading"], ev["group"], ev["term"], ev["cycle"], ev["mode"],
            ev["offline_strategy"]) == (True, "garage", 3, 7, "dynamic", "minimise")
    l2 = ev["phases"][1]
    assert l2 == {"phase": "L2", "limit_a": 20.0, "configured_limit_a": 32.0,
                  "limit_source": "energy manager (MQTT) until 17:30",
                  "limited_by": "limited by energy manager (MQTT) until 17:30",
                  "ct_a": 19.5, "other_load_a": 2.0, "reserved_offline_a": 6.0,
                  "available_a": 12.0, "allocated_a": 12.0,
                  "drawn_a": 12.2}  # 11.7 on its L2 + 0.5 of connector 2's L1 (rotated)
    assert ev["phases"][0]["drawn_a"] == 11.8 and ev["phases"][0]["limited_by"] == ""
    c1, c2 = ev["members"][0]["connectors"]
    assert c1["reason_words"] == ("limited by phase L2 of the group "
                                  "(limited by energy manager (MQTT) until 17:30)")
    assert (c1["offer_a"], c1["draw_a"], c1["led"]["meaning"]) == (12.0, [11.8, 11.7, 11.9],
                                                                   "charging")
    assert c2["reason_words"].startswith("paused: no room on phase L2 for the minimum 6 A")
    assert c2["led"]["colours"] == ["yellow"]
    off = ev["members"][1]
    assert off["online"] is False and off["offline_reason"] == "stream closed"
    assert off["connectors"][0]["led"]["colours"] == []
    assert off["connectors"][0]["reason_words"] == ("its charger is offline: its fail-safe "
                                                    "current is reserved")
    assert off["connectors"][0]["draw_a"] is None


def test_history_points_of_a_worked_status() -> None:
    phases, connectors = history_points(worked_status())
    assert phases["L2"] == PhasePoint(limit_a=20.0, ct_a=19.5, drawn_a=11.7 + 0.5,
                                      allocated_a=12.0)
    assert connectors["io7-01/1"] == ConnectorPoint(offer_a=12.0, draw_a=11.9)
    assert connectors["io7-02/1"] == ConnectorPoint(offer_a=6.0, draw_a=None)


REASON_ROWS = {
    "phase without a phase named": (pb.LIMIT_REASON_PHASE_LIMIT, pb.PHASE_UNSPECIFIED,
                                    "limited by the group"),
    "offline strategy names it": (pb.LIMIT_REASON_OFFLINE_STRATEGY, pb.PHASE_UNSPECIFIED,
                                  "set by the offline strategy (minimise): a charger of the "
                                  "group is offline"),
    "unspecified is empty": (pb.LIMIT_REASON_UNSPECIFIED, pb.PHASE_UNSPECIFIED, ""),
    "phase at its own limit adds nothing": (pb.LIMIT_REASON_PHASE_LIMIT, pb.PHASE_L1,
                                            "limited by phase L1 of the group"),
}


@pytest.mark.parametrize("row", REASON_ROWS.values(), ids=REASON_ROWS.keys())
def test_reason_in_words(row: tuple[int, int, str]) -> None:
    reason, phase, words = row
    c = pb.ConnectorStatusView(connector_id=1, reason=pb.LimitReason.Name(reason),
                               limiting_phase=pb.Phase.Name(phase))
    assert connector_reason(worked_status(), c) == words


def test_every_reason_has_words() -> None:
    s = worked_status()
    for value in pb.LimitReason.values():
        if value != pb.LIMIT_REASON_UNSPECIFIED:
            assert connector_reason(s, pb.ConnectorStatusView(reason=pb.LimitReason.Name(value))), \
                pb.LimitReason.Name(value)


# --- the stream and the routes, on a real Station (a lone charger's io7.toml, its real
# Agent and a real Master, neither running: the test sets the master's status) ---------

MEMBERS = table({"io7-01": "127.0.0.1:40001", "io7-02": "127.0.0.1:40003",
                 "io7-03": "127.0.0.1:40005"})
WEB = WEB_PLAIN + '[web.members]\n"io7-02" = "http://127.0.0.1:40100"\n'


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_site(tmp_path_factory.mktemp("pki"), chargers=("io7-01",))


def station_of(tmp: Path, site: Pki) -> contextlib.AbstractContextManager[Station]:
    tls = site.identity_folder(Kind.CHARGER, "io7-01")
    return support.station_of(tmp, io7_toml(state=tmp / "state", wiring=(ALL_PHASES,),
                                            tls=f'dir = "{tls}"', members=MEMBERS, more=WEB))


async def publish(master: Master, cycle: int) -> None:
    """What Master.run_cycle does with a new status."""
    async with master.status_changed:
        status = worked_status()
        status.cycle = cycle
        master.status = status
        master.status_changed.notify_all()


def data(chunk: str) -> dict[str, Any]:
    assert chunk.startswith("data: ") and chunk.endswith("\n\n"), chunk
    event: dict[str, Any] = json.loads(chunk.removeprefix("data: "))
    return event


async def test_a_new_status_is_sent_at_once_and_a_quiet_one_every_heartbeat(
        tmp_path: Path, site: Pki) -> None:
    with station_of(tmp_path, site) as station:
        master = Master(station.config.master)
        try:
            station.set_master(master)
            await publish(master, 1)
            stream = events(station, heartbeat_s=30.0)
            assert (await anext(stream)).startswith("retry: ")
            assert data(await anext(stream))["cycle"] == 1
            nxt: asyncio.Future[str] = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.3)  # past the rate limit, far from the 30 s heartbeat
            await publish(master, 2)
            first = data(await asyncio.wait_for(nxt, 5.0))  # not the heartbeat's 30 s
            assert (first["leading"], first["cycle"]) == (True, 2)
            await stream.aclose()
            quiet = events(station, heartbeat_s=0.2)
            await anext(quiet)
            assert [data(await asyncio.wait_for(anext(quiet), 5.0))["cycle"]
                    for _ in range(3)] == [2, 2, 2]  # nothing new: still one a heartbeat
            await quiet.aclose()
        finally:
            master.close()


async def test_a_member_that_does_not_lead_names_the_leader(tmp_path: Path,
                                                           site: Pki) -> None:
    with station_of(tmp_path, site) as station:
        station.set_view(ElectionView(member_id="io7-01", term=4, leader_id="io7-02",
                                      leading=False, valid_for_s=0.0))
        stream = events(station, wall=lambda: 1_700_000_000.0, heartbeat_s=0.05)
        await anext(stream)
        assert data(await anext(stream)) == {
            "leading": False, "charger_id": "io7-01", "at_unix_s": 1_700_000_000.0,
            "leader": "io7-02", "url": "http://127.0.0.1:40100"}
        await stream.aclose()


async def test_the_sampler_feeds_the_history_from_the_running_master(
        tmp_path: Path, site: Pki) -> None:
    with station_of(tmp_path, site) as station:
        master = Master(station.config.master)
        try:
            kept = History()
            clock = iter(float(1_700_000_000 + 10 * k) for k in range(100))
            sampler = asyncio.create_task(sample_forever(station, kept, wall=lambda: next(clock),
                                                         every_s=0.01))
            await asyncio.sleep(0.1)
            assert kept.query(points=1)["t"] == []  # not leading: nothing recorded
            station.set_master(master)
            await publish(master, 5)
            await asyncio.sleep(0.1)
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            day = kept.query()
            assert day["phases"]["L2"]["limit_a"][-1] == 20.0  # type: ignore[index]
            assert day["connectors"]["io7-01/1"]["offer_a"][-1] == 12.0  # type: ignore[index]
        finally:
            master.close()


async def test_routes_need_a_login_and_history_answers_after_one(tmp_path: Path,
                                                                site: Pki) -> None:
    with station_of(tmp_path, site) as station:
        app = FastAPI(lifespan=live.lifespan)
        app.state.station = station
        app.include_router(live.router)
        app.include_router(auth.router)
        password = (tmp_path / "state" / "web-initial-password").read_text().strip()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://io7") as client:
            assert (await client.get("/api/events")).status_code == 401
            assert (await client.get("/api/history")).status_code == 401
            r = await client.post("/api/login", json={"user": "installer",
                                                      "password": password})
            assert r.status_code == 200
            got = await client.get("/api/history?points=10")
            assert got.status_code == 200
            assert got.json() == {"interval_s": 10, "t": [], "phases": {}, "connectors": {}}
            assert (await client.get("/api/history?points=0")).status_code == 422
