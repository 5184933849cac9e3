"""Smart charging wired in: charging profiles from the CSMS change the agent's offer (the
limit applier) and the maximum the master sees (AgentState max_current_a); the UK
default profile postpones charging (virtual time through OcppSessions, and once in the
running agent: LED solid blue, 0 A)."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ocpp.exceptions import OCPPError
from ocpp.v16 import call

from agent.faults import OcppStatus
from agent.limits import LimitApplier, MasterLimits, OfferSource
from agent.ocpp.auth import AuthMode
from agent.ocpp.configkeys import ConfigurationStore, open_db
from agent.ocpp.profilestore import ProfileStore
from agent.ocpp.sessions import OcppSessions
from agent.ocpp.store import OcppStore
from agent.ocpp.transactions import Observed
from agent.ocpp.ukdefault import NoChargingPeriod, Reason, UkDefault, UkDefaultSettings
from agent.transitions import State
from hw.capabilities import LedPatterns
from hw.sim.csms import Csms
from tests.agent.ocpp.test_chargepoint import CP, WAIT_S, agent_config, booted, eventually, running
from tests.agent.ocpp.test_cp_sessions import _profile, plug


def test_charger_cap_bounds_the_connectors_together() -> None:
    applier = LimitApplier([1, 2], 32.0, {1: 32.0, 2: 32.0}, increase_interval_s=0.0)
    applier.on_limits(MasterLimits(term=1, cycle=1, valid_for_s=60.0, failsafe_current_a=0.0,
                                   currents_a={1: 20.0, 2: 20.0}), 0.0)
    assert [d.current_a for d in applier.offered(1.0).values()] == [16.0, 16.0]
    applier.set_charger_cap(12.0)  # ChargePointMaxProfile below the charger limit
    offers = applier.offered(2.0)
    assert [d.current_a for d in offers.values()] == [6.0, 6.0]
    assert {d.source for d in offers.values()} == {OfferSource.CHARGER_LIMIT}
    applier.set_charger_cap(10.0)  # 2 x 6 A do not fit: the higher id pauses
    assert [d.current_a for d in applier.offered(3.0).values()] == [10.0, 0.0]
    applier.set_charger_cap(40.0)  # above the Charger Current Limit: that one holds
    assert applier.charger_limit_a == 32.0
    applier.set_charger_cap(None)
    assert [d.current_a for d in applier.offered(4.0).values()] == [16.0, 16.0]
    with pytest.raises(ValueError, match="charger cap"):
        applier.set_charger_cap(-1.0)


async def test_profiles_change_the_offer_and_the_masters_view(tmp_path: Path) -> None:
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        plug(agent, 1)
        await eventually(lambda: agent.last_offer.get(1, (0.0,))[0] == 32.0, "32 A offered")

        def master_max(cid: int) -> float:
            return next(c.max_current_a for c in agent.state(agent.clock()).connectors
                        if c.connector_id == cid)

        ok = await csms.call(CP, call.SetChargingProfile(
            connector_id=1, cs_charging_profiles=_profile(1, "TxDefaultProfile", 10.0)))
        assert ok.status == "Accepted"
        await eventually(lambda: agent.last_offer[1][0] == 10.0, "offer held at 10 A")
        # The profile holds it (LOCAL); the in-process allocation, told the new maximum,
        # may already ask no more (MASTER).
        assert agent.last_offer[1][1] in (OfferSource.LOCAL, OfferSource.MASTER)
        assert (master_max(1), master_max(2)) == (10.0, 32.0)
        composite = await csms.call(CP, call.GetCompositeSchedule(connector_id=1, duration=300))
        assert (composite.status, composite.connector_id) == ("Accepted", 1)
        assert composite.schedule_start.endswith("Z")
        assert [p["limit"] for p in composite.charging_schedule[
            "charging_schedule_period"]] == [10.0]
        absent = await csms.call(CP, call.GetCompositeSchedule(connector_id=9, duration=300))
        assert absent.status == "Rejected"

        cap = await csms.call(CP, call.SetChargingProfile(
            connector_id=0, cs_charging_profiles=_profile(2, "ChargePointMaxProfile", 8.0)))
        assert cap.status == "Accepted"
        await eventually(lambda: agent.last_offer[1][0] == 8.0, "charger capped at 8 A")
        assert agent.applier.charger_limit_a == 8.0

        for cid, profile in ((5, _profile(3, "TxDefaultProfile", 6.0)),  # no such connector
                             (2, _profile(4, "TxProfile", 6.0))):  # no transaction there
            refused = await csms.call(CP, call.SetChargingProfile(
                connector_id=cid, cs_charging_profiles=profile))
            assert refused.status == "Rejected"
        broken = _profile(5, "TxDefaultProfile", 6.0)
        broken["chargingSchedule"]["chargingSchedulePeriod"] = [
            {"startPeriod": 60, "limit": 6.0}]  # must start at 0
        with pytest.raises(OCPPError) as err:
            await csms.call(CP, call.SetChargingProfile(connector_id=1,
                                                        cs_charging_profiles=broken))
        assert err.value.code == "PropertyConstraintViolation"
        assert agent.sessions is not None
        assert sorted(p.profile_id for _, p in agent.sessions.profiles.entries()) == [1, 2]

        cleared = await csms.call(CP, call.ClearChargingProfile(id=2))
        assert cleared.status == "Accepted"
        again = await csms.call(CP, call.ClearChargingProfile(id=2))
        assert again.status == "Unknown"
        await eventually(lambda: agent.applier.charger_limit_a == 32.0, "cap lifted")

    # Saved: a restart finds the TxDefaultProfile again.
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await eventually(lambda: agent.max_current_a.get(1) == 10.0, "profile restored")


def _sessions(tmp_path: Path, uk: UkDefaultSettings) -> tuple[OcppSessions, sqlite3.Connection]:
    db = open_db(tmp_path)
    keys = ConfigurationStore(db)
    path = tmp_path / "ocpp.db"
    return OcppSessions(
        store=OcppStore(path), profile_store=ProfileStore(path), keys=keys,
        hard_max_a={1: 32.0}, charger_limit_a=32.0, mode=AuthMode.NONE, free_id_tag="FREE",
        local_list=(), uk_default=UkDefault(uk, random.Random(7)), online=lambda: False,
        charger_id="io7-unit"), db


def test_uk_default_holds_a_plugged_ev_in_virtual_time(tmp_path: Path) -> None:
    uk = UkDefaultSettings(enabled=True, tz="UTC", max_random_delay_s=600,
                           periods=(NoChargingPeriod.parse("08:00", "11:00"),))
    sessions, db = _sessions(tmp_path, uk)
    t = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    prepared, _ = sessions.prepare(t, {1: True}, None)
    held = prepared[1].postponed
    assert held is not None and held.reason is Reason.NO_CHARGING_PERIOD
    assert prepared[1].authorised and prepared[1].local_limit_a == 0.0
    assert prepared[1].max_current_a == 32.0  # the master still sees the connector's max
    end = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    assert held.until == end + timedelta(seconds=held.delay_s) and 0 <= held.delay_s <= 600
    before, _ = sessions.prepare(held.until - timedelta(seconds=1), {1: True}, None)
    assert before[1].postponed is not None and before[1].local_limit_a == 0.0
    after, _ = sessions.prepare(held.until, {1: True}, None)
    assert after[1].postponed is None and after[1].local_limit_a is None
    # A new plug-in outside the periods: the randomised delay of a session start.
    sessions.prepare(held.until + timedelta(seconds=5), {1: False}, None)
    replug = held.until + timedelta(seconds=10)
    start, _ = sessions.prepare(replug, {1: True}, None)
    delay = start[1].postponed
    assert delay is None or (delay.reason is Reason.RANDOMISED_DELAY
                             and delay.until == replug + timedelta(seconds=delay.delay_s))
    sessions.record(replug, [Observed(connector_id=1, status=OcppStatus.SUSPENDED_EVSE,
                                      plugged=True, meter=None, offered_a=0.0)])
    sessions.store.close()
    sessions.profile_store.close()
    db.close()


async def test_uk_default_postpones_in_the_running_agent(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    start, end = (now - timedelta(hours=1)).strftime("%H:%M"), \
        (now + timedelta(hours=1)).strftime("%H:%M")
    ocpp = (f'[ocpp.uk_default]\nenabled = true\ntz = "UTC"\n'
            f'no_charging_periods = [["{start}", "{end}"]]\nmax_random_delay_s = 0')
    async with Csms() as csms, running(agent_config(tmp_path, csms.url, ocpp=ocpp)) as agent:
        await booted(csms, agent)
        plug(agent, 1)
        await eventually(lambda: agent.outputs[1].state is State.WAITING
                         and agent.sockets[1].led_pattern == LedPatterns.POSTPONED,
                         "postponed: solid blue")
        await csms.wait_for(CP, "StartTransaction", timeout_s=WAIT_S)  # authorised all along
        assert agent.last_offer[1][0] == 0.0 and not agent.outputs[1].wants_power
        assert agent.sockets[1].meter_reading().total_power_w == 0.0
