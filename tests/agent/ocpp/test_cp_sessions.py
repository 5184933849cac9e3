"""Authorisation and transactions end to end: the agent (its real 250 ms step, simulated
board and EVs) against the test back office (hw.sim.csms) over a real websocket on
loopback. MeterValueSampleInterval is 1 s; every wait has a generous bound."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

from ocpp.v16 import call

from agent.ocpp.auth import CARD_NOT_AUTHORISED_LED
from agent.service import Agent
from agent.transitions import State
from hw.sim.csms import Csms, Received
from hw.sim.ev import EvModel, EvSpec
from tests.agent.ocpp.test_chargepoint import CP, WAIT_S, agent_config, booted, eventually, running

EV = EvSpec(phases=3, onboard_max_a=16.0, battery_wh=60_000.0, response_delay_s=0.2)


def plug(agent: Agent, cid: int) -> None:
    agent.sockets[cid].plug_in(EvModel(EV, soc=0.3, now_s=agent.clock()))


def energy_wh(agent: Agent, cid: int) -> int:
    return math.floor(agent.sockets[cid].meter_reading().import_energy_wh)


async def sample_every_second(csms: Csms) -> None:
    answer = await csms.call(CP, call.ChangeConfiguration(key="MeterValueSampleInterval",
                                                          value="1"))
    assert answer.status == "Accepted"


def tx_messages(csms: Csms) -> list[Received]:
    return [r for r in csms.received(CP) if r.action in (
        "StartTransaction", "MeterValues", "StopTransaction")]


async def test_no_authorisation_full_session_with_meter_values(tmp_path: Path) -> None:
    async with Csms() as csms, running(agent_config(
            tmp_path, csms.url, ocpp='free_id_tag = "FREE-01"')) as agent:
        await booted(csms, agent)
        await sample_every_second(csms)
        plug(agent, 1)
        start = (await csms.wait_for(CP, "StartTransaction", timeout_s=WAIT_S))[0]
        assert start.payload["connectorId"] == 1 and start.payload["idTag"] == "FREE-01"
        assert start.payload["meterStart"] <= energy_wh(agent, 1)
        values = await csms.wait_for(CP, "MeterValues", count=3, timeout_s=WAIT_S)
        await eventually(lambda: agent.outputs[1].state is State.CHARGING, "charging")
        await csms.wait_for(CP, "MeterValues", count=2, since=csms.mark(), timeout_s=WAIT_S)
        agent.sockets[1].unplug()
        stop = (await csms.wait_for(CP, "StopTransaction", timeout_s=WAIT_S))[0]
    assert [v.payload["transactionId"] for v in values] == [1, 1, 1]
    sampled = values[0].payload["meterValue"][0]["sampledValue"]
    assert {s["measurand"] for s in sampled} == {
        "Energy.Active.Import.Register", "Current.Import", "Current.Offered",
        "Power.Active.Import", "Voltage"}
    assert {s["context"] for s in sampled} == {"Sample.Periodic"}
    gaps = [b.at_s - a.at_s for a, b in itertools.pairwise(values)]
    assert all(0.5 <= g <= 2.0 for g in gaps), gaps
    assert stop.payload["transactionId"] == 1 and stop.payload["reason"] == "EVDisconnected"
    assert stop.payload["meterStop"] == energy_wh(agent, 1) > start.payload["meterStart"]
    actions = [r.action for r in tx_messages(csms)]
    assert (actions[0], actions[-1]) == ("StartTransaction", "StopTransaction")


async def test_local_list_accepts_listed_cards_and_shows_unknown_ones(tmp_path: Path) -> None:
    async with Csms() as csms, running(agent_config(
            tmp_path, csms.url, ocpp='auth_mode = "local_list"\nlocal_list = ["CAFE01"]'
    )) as agent:
        await booted(csms, agent)
        plug(agent, 1)
        await eventually(lambda: agent.outputs[1].state is State.PREPARING, "preparing")
        agent.board.present_tag("BAD1")
        await eventually(lambda: agent.sockets[1].led_pattern == CARD_NOT_AUTHORISED_LED,
                         "card not authorised LED")
        agent.board.present_tag(None)
        agent.board.present_tag("CAFE01")
        start = (await csms.wait_for(CP, "StartTransaction", timeout_s=WAIT_S))[0]
        assert start.payload["idTag"] == "CAFE01"
        agent.board.present_tag(None)
        await eventually(lambda: agent.board.tag is None and agent.sessions is not None
                         and agent.sessions._card is None, "card taken away")
        agent.board.present_tag("cafe01")  # the same card stops it (case-insensitive)
        stop = (await csms.wait_for(CP, "StopTransaction", timeout_s=WAIT_S))[0]
        await eventually(lambda: agent.outputs[1].state is State.FINISHING, "finishing")
    assert stop.payload["reason"] == "Local" and stop.payload["idTag"] == "CAFE01"
    assert csms.received(CP, "Authorize") == []  # the list alone decides


async def test_csms_authorises_cards_online(tmp_path: Path) -> None:
    async with Csms(id_tags={"GOOD": "Accepted", "BLOCKED": "Blocked"}) as csms, \
            running(agent_config(tmp_path, csms.url, ocpp='auth_mode = "csms"')) as agent:
        await booted(csms, agent)
        plug(agent, 2)
        agent.board.present_tag("BLOCKED")
        await csms.wait_for(CP, "Authorize", where=lambda p: p["idTag"] == "BLOCKED")
        await eventually(lambda: agent.sockets[2].led_pattern == CARD_NOT_AUTHORISED_LED,
                         "card not authorised LED")
        agent.board.present_tag("GOOD")
        start = (await csms.wait_for(CP, "StartTransaction", timeout_s=WAIT_S))[0]
    assert (start.payload["connectorId"], start.payload["idTag"]) == (2, "GOOD")
    assert [r.payload["idTag"] for r in csms.received(CP, "Authorize")] == ["BLOCKED", "GOOD"]


async def test_offline_cards_use_the_local_list_and_the_cache(tmp_path: Path) -> None:
    async with Csms() as csms:
        config = agent_config(tmp_path, csms.url,
                              ocpp='auth_mode = "csms"\nlocal_list = ["LISTED"]')
        async with running(config) as agent:
            await booted(csms, agent)
            plug(agent, 1)
            agent.board.present_tag("CACHED")  # online: asked, Accepted, cached
            await csms.wait_for(CP, "StartTransaction", timeout_s=WAIT_S)
            assert agent.sessions is not None
            assert agent.sessions.store.cache_get("CACHED") is not None
            await csms.stop()  # the CSMS goes away
            agent.board.present_tag(None)
            agent.sockets[1].unplug()
            await eventually(lambda: agent.outputs[1].state is State.AVAILABLE, "unplugged")
            plug(agent, 1)
            plug(agent, 2)
            agent.board.present_tag("CACHED")  # offline: the cache
            await eventually(lambda: agent.sessions is not None
                             and agent.sessions.sessions.active(1) is not None, "started")
            agent.board.present_tag("UNKNOWN")  # offline and unknown: refused
            await eventually(lambda: agent.sockets[2].led_pattern == CARD_NOT_AUTHORISED_LED,
                             "card not authorised LED")
            agent.board.present_tag("LISTED")  # offline: the local list
            await eventually(lambda: agent.sessions is not None
                             and agent.sessions.sessions.active(2) is not None, "started")
            tags = [m.payload.get("idTag") for m in agent.sessions.store.pending()
                    if m.action.value == "StartTransaction"]
    assert tags[-2:] == ["CACHED", "LISTED"]  # (the first start may still wait too)
    assert [r.payload["idTag"] for r in csms.received(CP, "Authorize")] == ["CACHED"]


def dedup(messages: list[Received]) -> list[Received]:
    """What a CSMS that de-duplicates on the OCPP unique id sees (a resend keeps its id
    and comes straight after the reconnection)."""
    seen: set[str] = set()
    out = []
    for r in messages:
        if r.unique_id not in seen:
            seen.add(r.unique_id)
            out.append(r)
    return out


async def test_csms_outage_mid_session_loses_nothing(tmp_path: Path) -> None:
    csms = Csms()
    await csms.start()
    port = int(csms.url.rsplit(":", 1)[1])
    try:
        async with running(agent_config(tmp_path, csms.url)) as agent:
            await booted(csms, agent)
            await sample_every_second(csms)
            plug(agent, 1)
            await csms.wait_for(CP, "MeterValues", count=2, timeout_s=WAIT_S)
            await csms.stop()
            assert agent.sessions is not None
            await eventually(lambda: agent.sessions is not None
                             and agent.sessions.store.pending_count() >= 3, "values queued")
            agent.sockets[1].unplug()  # the stop is queued too
            await eventually(lambda: agent.sessions is not None
                             and agent.sessions.sessions.active(1) is None, "stopped")
            queued = [m.unique_id for m in agent.sessions.store.pending()]
            await csms.start(port=port)
            await csms.wait_for(CP, "StopTransaction", timeout_s=WAIT_S)
            await eventually(lambda: agent.sessions is not None
                             and agent.sessions.store.pending_count() == 0, "outbox empty")
    finally:
        await csms.stop()
    got = tx_messages(csms)
    ids = [r.unique_id for r in got]
    assert len(set(ids)) >= len(ids) - 1  # at most the one in flight went twice
    unique = dedup(got)
    assert [r.unique_id for r in unique][-len(queued):] == queued  # in order, all of them
    assert [r.action for r in unique].count("StartTransaction") == 1
    assert [r.action for r in unique].count("StopTransaction") == 1
    assert unique[0].action == "StartTransaction" and unique[-1].action == "StopTransaction"
    stamps = [r.payload["meterValue"][0]["timestamp"] for r in unique
              if r.action == "MeterValues"]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert {r.payload.get("transactionId") for r in unique[1:]} == {1}


def _profile(pid: int, purpose: str, limit: float, *, stack_level: int = 1,
             unit: str = "A") -> dict[str, Any]:
    """A one-period charging profile as the CSMS sends it (camelCase)."""
    schedule: dict[str, Any] = {"chargingRateUnit": unit, "chargingSchedulePeriod": [
        {"startPeriod": 0, "limit": limit}]}
    kind = "Relative" if purpose == "TxProfile" else "Absolute"
    if kind == "Absolute":
        schedule["startSchedule"] = "2020-01-01T00:00:00Z"
    return {"chargingProfileId": pid, "stackLevel": stack_level,
            "chargingProfilePurpose": purpose, "chargingProfileKind": kind,
            "chargingSchedule": schedule}


async def test_remote_start_and_stop(tmp_path: Path) -> None:
    async with Csms() as csms, \
            running(agent_config(tmp_path, csms.url, ocpp='auth_mode = "csms"')) as agent:
        await booted(csms, agent)
        plug(agent, 2)
        bad = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE", connector_id=5))
        assert bad.status == "Rejected"
        ok = await csms.call(CP, call.RemoteStartTransaction(
            id_tag="REMOTE", connector_id=2,
            charging_profile=_profile(7, "TxProfile", 10.0)))
        assert ok.status == "Accepted"
        start = (await csms.wait_for(CP, "StartTransaction", timeout_s=WAIT_S))[0]
        assert (start.payload["connectorId"], start.payload["idTag"]) == (2, "REMOTE")
        await eventually(lambda: agent.max_current_a.get(2) == 10.0, "TxProfile applied")
        busy = await csms.call(CP, call.RemoteStartTransaction(id_tag="OTHER", connector_id=2))
        assert busy.status == "Rejected"  # a transaction runs there
        unknown = await csms.call(CP, call.RemoteStopTransaction(transaction_id=99))
        assert unknown.status == "Rejected"
        stopped = await csms.call(CP, call.RemoteStopTransaction(transaction_id=1))
        assert stopped.status == "Accepted"
        stop = (await csms.wait_for(CP, "StopTransaction", timeout_s=WAIT_S))[0]
        await eventually(lambda: agent.max_current_a.get(2) == 32.0, "TxProfile removed")
    assert stop.payload["reason"] == "Remote" and stop.payload["transactionId"] == 1
    assert csms.received(CP, "Authorize") == []  # AuthorizeRemoteTxRequests is off


async def test_local_list_and_cache_commands(tmp_path: Path) -> None:
    async with Csms() as csms, \
            running(agent_config(tmp_path, csms.url, ocpp='auth_mode = "csms"')) as agent:
        await booted(csms, agent)
        assert (await csms.call(CP, call.GetLocalListVersion())).list_version == 0
        full = await csms.call(CP, call.SendLocalList(
            list_version=3, update_type="Full", local_authorization_list=[
                {"idTag": "A1", "idTagInfo": {"status": "Accepted"}},
                {"idTag": "B2", "idTagInfo": {"status": "Blocked",
                                              "expiryDate": "2030-01-01T00:00:00Z"}}]))
        assert full.status == "Accepted"
        assert (await csms.call(CP, call.GetLocalListVersion())).list_version == 3
        stale = await csms.call(CP, call.SendLocalList(list_version=2,
                                                       update_type="Differential"))
        assert stale.status == "VersionMismatch"
        assert (await csms.call(CP, call.ClearCache())).status == "Accepted"
        await csms.call(CP, call.ChangeConfiguration(key="LocalAuthListEnabled",
                                                     value="false"))
        off = await csms.call(CP, call.SendLocalList(list_version=4, update_type="Full"))
        assert off.status == "NotSupported"
        assert (await csms.call(CP, call.GetLocalListVersion())).list_version == -1
        assert agent.sessions is not None
        assert [e.id_tag for e in agent.sessions.store.local_list()] == ["A1", "B2"]


async def test_an_invalid_start_conf_stops_the_transaction(tmp_path: Path) -> None:
    async with Csms(id_tags={"FREE": "Invalid"}) as csms, running(agent_config(
            tmp_path, csms.url, ocpp='free_id_tag = "FREE"')) as agent:
        await booted(csms, agent)
        plug(agent, 1)
        stop = (await csms.wait_for(CP, "StopTransaction", timeout_s=WAIT_S))[0]
        await eventually(lambda: agent.outputs[1].state is State.FINISHING, "finishing")
        assert agent.sessions is not None
        assert agent.sessions.store.cache_get("FREE") is not None  # Invalid, cached
    assert stop.payload["reason"] == "DeAuthorized"
    assert len(csms.received(CP, "StartTransaction")) == 1  # not again on the same plug-in


async def test_unlock_and_reset_stop_transactions_first(tmp_path: Path) -> None:
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        plug(agent, 1)
        plug(agent, 2)
        await csms.wait_for(CP, "StartTransaction", count=2, timeout_s=WAIT_S)
        unlock = await csms.call(CP, call.UnlockConnector(connector_id=1))
        assert unlock.status == "NotSupported"  # no cable lock; the transaction stops
        first = (await csms.wait_for(CP, "StopTransaction", timeout_s=WAIT_S))[0]
        mark = csms.mark()
        assert (await csms.call(CP, call.Reset(type="Soft"))).status == "Accepted"
        second = (await csms.wait_for(CP, "StopTransaction", since=mark,
                                      timeout_s=WAIT_S))[0]
    assert first.payload["reason"] == "UnlockCommand"
    assert second.payload["reason"] == "SoftReset"
    assert {first.payload["transactionId"], second.payload["transactionId"]} == {1, 2}
