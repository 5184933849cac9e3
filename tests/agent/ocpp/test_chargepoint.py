"""The agent's OCPP 1.6J charge point against the test back office (hw.sim.csms), over a
real websocket on loopback: registration, heartbeat, status, and the CSMS's commands.

The agent runs for real (its 250 ms step, the simulated board); intervals are 1-3 s and
every wait has a generous bound (the machine is shared)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from ocpp.exceptions import OccurenceConstraintViolationError, PropertyConstraintViolationError
from ocpp.v16 import call

from agent.config import AgentConfig, load_agent_config
from agent.ocpp.availability import Availability
from agent.ocpp.configkeys import ConfigurationStore, open_db
from agent.ocpp.connection import Backoff, LinkState
from agent.service import Agent
from hw.sim.board import ChargerFault, ConnectorFault
from hw.sim.csms import Csms

CP = "io7-test-01"
WAIT_S = 10.0  # generous: the machine is shared
# A charger with OCPP off in its file (tests point it at a back office with --csms-url).
PLAIN_AGENT = f"""
[charger]
id = "{CP}"
current_limit_a = 32
[connectors.1]
wiring = ["L1", "L2", "L3"]
[sim]
evs = "none"
[state]
dir = "state"
"""

AGENT_TOML = """
[charger]
id = "{cid}"
current_limit_a = 32
[connectors.1]
wiring = ["L1", "L2", "L3"]
[connectors.2]
wiring = ["L2", "L3", "L1"]
[sim]
evs = "{evs}"
[state]
dir = "state"
[ocpp]
enabled = true
url = "{url}/ocpp"
{ocpp}
"""


def agent_config(tmp: Path, url: str, *, evs: str = "none", ocpp: str = "",
                 cid: str = CP) -> AgentConfig:
    path = tmp / f"{cid}.toml"
    path.write_text(AGENT_TOML.format(cid=cid, evs=evs, url=url, ocpp=ocpp))
    return load_agent_config(path)


@asynccontextmanager
async def running(config: AgentConfig) -> AsyncIterator[Agent]:
    """The agent's whole run loop (step, OCPP link) as a task; stopped on exit."""
    agent = Agent(config)
    assert agent.ocpp is not None
    agent.ocpp.backoff = Backoff(first_s=0.2, cap_s=0.5)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)


async def booted(csms: Csms, agent: Agent, *, since: int = 0) -> None:
    """Wait until the charge point is Accepted and has sent connectors 0, 1, 2."""
    await csms.wait_for(CP, "StatusNotification", count=3, since=since, timeout_s=WAIT_S)
    assert agent.ocpp is not None and agent.ocpp.state is LinkState.ACCEPTED


async def eventually(check: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll `check` (the agent's state has no event to wait on), with a generous bound."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.02)


async def link_state(agent: Agent, state: LinkState) -> None:
    """Wait until the agent's OCPP link is in `state`."""
    await eventually(lambda: agent.ocpp is not None and agent.ocpp.state is state,
                     f"OCPP link {state.value}")


def status_of(connector_id: int, status: str | None = None) -> Any:
    return lambda p: p["connectorId"] == connector_id and (status is None
                                                           or p["status"] == status)


# --- registration, heartbeat, status ---------------------------------------------------------
async def test_pending_then_accepted_then_statuses_then_heartbeats(tmp_path: Path) -> None:
    async with Csms(boot_replies=("Pending", "Accepted"), retry_interval_s=1,
                    heartbeat_interval_s=1) as csms, \
            running(agent_config(tmp_path, csms.url)) as agent:
        beats = await csms.wait_for(CP, "Heartbeat", count=2, timeout_s=WAIT_S)
        assert agent.ocpp is not None and agent.ocpp.state is LinkState.ACCEPTED
    # The outbox's StartupOfTheDevice (agent.ocpp.security) goes out once Accepted, in
    # parallel with the statuses: it is checked in test_cp_security, left out here.
    all_actions = [r.action for r in csms.received(CP)]
    assert all_actions.index("SecurityEventNotification") > 1
    got = [r for r in csms.received(CP) if r.action != "SecurityEventNotification"]
    actions = [r.action for r in got]
    # Nothing but BootNotification before Accepted; then every connector's status.
    assert actions[:5] == ["BootNotification", "BootNotification", "StatusNotification",
                           "StatusNotification", "StatusNotification"]
    assert set(actions[5:]) == {"Heartbeat"}
    boot1, boot2 = got[0], got[1]
    assert 0.9 <= boot2.at_s - boot1.at_s <= 3.0  # the Pending answer's interval (1 s)
    assert boot1.payload == {"chargePointVendor": "Ratio", "chargePointModel": "io7",
                             "firmwareVersion": boot1.payload["firmwareVersion"]}
    assert boot1.payload["firmwareVersion"].startswith("io7-cluster")
    assert [(r.payload["connectorId"], r.payload["status"], r.payload["errorCode"])
            for r in got[2:5]] == [(0, "Available", "NoError"), (1, "Available", "NoError"),
                                   (2, "Available", "NoError")]
    assert all(r.payload["timestamp"].endswith("Z") for r in got[2:5])
    assert 0.8 <= beats[1].at_s - beats[0].at_s <= 2.5  # HeartbeatInterval = 1 s


async def test_rejected_charge_point_answers_nothing_until_accepted(tmp_path: Path) -> None:
    async with Csms(boot_replies=("Rejected", "Accepted"), retry_interval_s=3,
                    response_timeout_s=1.0) as csms, \
            running(agent_config(tmp_path, csms.url)) as agent:
        await link_state(agent, LinkState.REJECTED)
        with pytest.raises(TimeoutError):  # rule 1: no answer while Rejected
            await csms.call(CP, call.GetConfiguration(key=["HeartbeatInterval"]))
        assert agent.ocpp is not None and agent.ocpp.state is LinkState.REJECTED
        await booted(csms, agent)
        answer = await csms.call(CP, call.GetConfiguration(key=["HeartbeatInterval"]))
        assert answer.configuration_key[0]["value"] == "300"
    assert [r.action for r in csms.received(CP)][:2] == ["BootNotification"] * 2


async def test_status_follows_connector_and_charger_faults(tmp_path: Path) -> None:
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        mark = csms.mark()
        agent.sockets[1].inject(ConnectorFault.RESIDUAL_CURRENT_AC)
        [faulted] = await csms.wait_for(CP, "StatusNotification", since=mark,
                                        where=status_of(1, "Faulted"), timeout_s=WAIT_S)
        assert faulted.payload | {"timestamp": ""} == {
            "connectorId": 1, "status": "Faulted", "errorCode": "GroundFailure",
            "vendorId": "Ratio", "vendorErrorCode": "ResidualCurrent",
            "info": "residual current (leakage) fault", "timestamp": ""}

        mark = csms.mark()
        agent.board.inject(ChargerFault.OPEN_PEN)  # charger-wide: connector 0 as well
        [zero] = await csms.wait_for(CP, "StatusNotification", since=mark,
                                     where=status_of(0, "Faulted"), timeout_s=WAIT_S)
        assert (zero.payload["errorCode"], zero.payload["vendorErrorCode"]) == (
            "GroundFailure", "OpenPEN")
        await csms.wait_for(CP, "StatusNotification", since=mark,
                            where=status_of(2, "Faulted"), timeout_s=WAIT_S)

        mark = csms.mark()
        agent.board.clear(ChargerFault.OPEN_PEN)
        await csms.wait_for(CP, "StatusNotification", since=mark,
                            where=status_of(0, "Available"), timeout_s=WAIT_S)
        await csms.wait_for(CP, "StatusNotification", since=mark,
                            where=status_of(2, "Available"), timeout_s=WAIT_S)
        # The residual current latches until a reset (connector.py rule 1).
        assert not any(status_of(1)(r.payload)
                       for r in csms.received(CP, "StatusNotification", since=mark))


# --- Reset -----------------------------------------------------------------------------------
async def test_hard_reset_reboots_and_clears_latched_faults(tmp_path: Path) -> None:
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        agent.sockets[1].inject(ConnectorFault.RESIDUAL_CURRENT_AC)
        await csms.wait_for(CP, "StatusNotification", where=status_of(1, "Faulted"),
                            timeout_s=WAIT_S)
        agent.sockets[1].clear(ConnectorFault.RESIDUAL_CURRENT_AC)
        mark = csms.mark()
        answer = await csms.call(CP, call.Reset(type="Hard"))
        assert answer.status == "Accepted"
        await csms.wait_for(CP, "BootNotification", since=mark, timeout_s=WAIT_S)
        await csms.wait_for(CP, "StatusNotification", since=mark,
                            where=status_of(1, "Available"), timeout_s=WAIT_S)


async def test_soft_reset_reboots_and_keeps_latched_faults(tmp_path: Path) -> None:
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        agent.sockets[1].inject(ConnectorFault.RESIDUAL_CURRENT_AC)
        await csms.wait_for(CP, "StatusNotification", where=status_of(1, "Faulted"),
                            timeout_s=WAIT_S)
        agent.sockets[1].clear(ConnectorFault.RESIDUAL_CURRENT_AC)
        mark = csms.mark()
        assert (await csms.call(CP, call.Reset(type="Soft"))).status == "Accepted"
        await booted(csms, agent, since=mark)  # the full status again after the new boot
        again = csms.received(CP, "StatusNotification", since=mark)
        assert [r.payload["status"] for r in again if r.payload["connectorId"] == 1] == [
            "Faulted"]
        assert agent.outputs[1].status.value == "Faulted"


# --- ChangeAvailability ----------------------------------------------------------------------
async def test_change_availability_now_and_for_the_whole_charger(tmp_path: Path) -> None:
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        mark = csms.mark()
        answer = await csms.call(CP, call.ChangeAvailability(connector_id=2,
                                                             type="Inoperative"))
        assert answer.status == "Accepted"
        await csms.wait_for(CP, "StatusNotification", since=mark,
                            where=status_of(2, "Unavailable"), timeout_s=WAIT_S)
        again = await csms.call(CP, call.ChangeAvailability(connector_id=2,
                                                            type="Inoperative"))
        assert again.status == "Accepted"  # already so: Accepted (section 5.2)

        mark = csms.mark()
        assert (await csms.call(CP, call.ChangeAvailability(
            connector_id=0, type="Inoperative"))).status == "Accepted"
        for cid in (0, 1):
            await csms.wait_for(CP, "StatusNotification", since=mark,
                                where=status_of(cid, "Unavailable"), timeout_s=WAIT_S)
        mark = csms.mark()
        for cid in (0, 2):
            assert (await csms.call(CP, call.ChangeAvailability(
                connector_id=cid, type="Operative"))).status == "Accepted"
        for cid in (0, 1, 2):
            await csms.wait_for(CP, "StatusNotification", since=mark,
                                where=status_of(cid, "Available"), timeout_s=WAIT_S)

        refused = await csms.call(CP, call.ChangeAvailability(connector_id=3,
                                                              type="Inoperative"))
        assert refused.status == "Rejected"  # this charger has no connector 3


async def test_change_availability_waits_for_the_session_and_persists(tmp_path: Path) -> None:
    async with Csms() as csms:
        config = agent_config(tmp_path, csms.url, evs="plugged")
        async with running(config) as agent:
            await booted(csms, agent)
            await asyncio.sleep(0.6)  # the EVs plugged in at the first step: sessions run
            assert agent.busy() == {1, 2}
            answer = await csms.call(CP, call.ChangeAvailability(connector_id=1,
                                                                 type="Inoperative"))
            assert answer.status == "Scheduled"
            await asyncio.sleep(0.6)
            assert agent.outputs[1].status.value != "Unavailable"  # still charging
            mark = csms.mark()
            agent.sockets[1].unplug()  # the session ends: now it applies
            await csms.wait_for(CP, "StatusNotification", since=mark,
                                where=status_of(1, "Unavailable"), timeout_s=WAIT_S)
        db = open_db(config.state_dir)
        assert not Availability(db, [1, 2]).operative(1)
        assert Availability(db, [1, 2]).operative(2)
        db.close()
        mark = csms.mark()
        async with running(config) as agent:  # a restart keeps it inoperative
            await booted(csms, agent, since=mark)
            first = csms.received(CP, "StatusNotification", since=mark)
            assert any(status_of(1, "Unavailable")(r.payload) for r in first)


# --- UnlockConnector, DataTransfer -----------------------------------------------------------
async def test_unlock_connector_and_data_transfer(tmp_path: Path) -> None:
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        answer = await csms.call(CP, call.UnlockConnector(connector_id=1))
        assert answer.status == "NotSupported"  # no cable-lock capability in hw yet
        with pytest.raises(PropertyConstraintViolationError):
            await csms.call(CP, call.UnlockConnector(connector_id=7))
        assert (await csms.call(CP, call.DataTransfer(vendor_id="Acme"))).status == \
            "UnknownVendorId"
        assert (await csms.call(CP, call.DataTransfer(vendor_id="Ratio",
                                                      message_id="x"))).status == \
            "UnknownMessageId"


# --- GetConfiguration, ChangeConfiguration ---------------------------------------------------
async def test_get_configuration(tmp_path: Path) -> None:
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        everything = await csms.call(CP, call.GetConfiguration())
        values = {k["key"]: k for k in everything.configuration_key}
        assert values["NumberOfConnectors"] == {"key": "NumberOfConnectors",
                                                "readonly": True, "value": "2"}
        assert values["HeartbeatInterval"]["readonly"] is False
        assert "AuthorizationKey" in values and "value" not in values["AuthorizationKey"]
        assert everything.unknown_key is None

        some = await csms.call(CP, call.GetConfiguration(
            key=["heartbeatinterval", "NoSuchKey", "AuthorizationKey"]))
        assert some.configuration_key == [
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            {"key": "AuthorizationKey", "readonly": False}]  # write-only: no value
        assert some.unknown_key == ["NoSuchKey"]
        with pytest.raises(OccurenceConstraintViolationError):  # GetConfigurationMaxKeys
            await csms.call(CP, call.GetConfiguration(key=[f"K{i}" for i in range(51)]))


@pytest.mark.parametrize(("key", "value", "status", "stored"), [
    ("HeartbeatInterval", "120", "Accepted", "120"),
    ("heartbeatINTERVAL", "120", "Accepted", "120"),  # keys are CiString50
    ("HeartbeatInterval", "abc", "Rejected", "300"),
    ("HeartbeatInterval", "-5", "Rejected", "300"),
    ("LocalPreAuthorize", "TRUE", "Accepted", "true"),
    ("MeterValuesSampledData", "Energy.Active.Import.Register,Voltage", "Accepted",
     "Energy.Active.Import.Register,Voltage"),
    ("MeterValuesSampledData", "SoC", "Rejected",
     "Energy.Active.Import.Register,Current.Import,Current.Offered,Power.Active.Import,Voltage"),
    ("NumberOfConnectors", "1", "Rejected", "2"),  # read-only
    ("WebSocketPingInterval", "30", "RebootRequired", "30"),
    ("NoSuchKey", "1", "NotSupported", None),
], ids=str)
async def test_change_configuration(tmp_path: Path, key: str, value: str, status: str,
                                    stored: str | None) -> None:
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        answer = await csms.call(CP, call.ChangeConfiguration(key=key, value=value))
        assert answer.status == status
        if stored is not None:
            got = await csms.call(CP, call.GetConfiguration(key=[key]))
            assert got.configuration_key[0]["value"] == stored
    if stored is not None:  # persisted in <state>/ocpp.db
        db = open_db(tmp_path / "state")
        assert ConfigurationStore(db).value(key) == stored
        db.close()


async def test_new_heartbeat_interval_takes_effect_at_once(tmp_path: Path) -> None:
    async with Csms(heartbeat_interval_s=3600) as csms, \
            running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        mark = csms.mark()
        answer = await csms.call(CP, call.ChangeConfiguration(key="HeartbeatInterval",
                                                              value="1"))
        assert answer.status == "Accepted"
        beats = await csms.wait_for(CP, "Heartbeat", since=mark, count=2, timeout_s=WAIT_S)
        assert beats[1].at_s - beats[0].at_s < 2.5


# --- TriggerMessage --------------------------------------------------------------------------
@pytest.mark.parametrize(("message", "connector_id", "status", "expect"), [
    ("Heartbeat", None, "Accepted", [("Heartbeat", None)]),
    ("BootNotification", None, "Accepted", [("BootNotification", None)]),
    ("StatusNotification", 2, "Accepted", [("StatusNotification", 2)]),
    ("StatusNotification", None, "Accepted",
     [("StatusNotification", 0), ("StatusNotification", 1), ("StatusNotification", 2)]),
    ("DiagnosticsStatusNotification", None, "Accepted",
     [("DiagnosticsStatusNotification", None)]),
    ("FirmwareStatusNotification", None, "Accepted", [("FirmwareStatusNotification", None)]),
    ("MeterValues", 1, "Accepted", [("MeterValues", 1)]),
    ("MeterValues", 5, "Rejected", []),
    ("StatusNotification", 5, "Rejected", []),  # no connector 5
], ids=str)
async def test_trigger_message(tmp_path: Path, message: str, connector_id: int | None,
                               status: str, expect: list[tuple[str, int | None]]) -> None:
    async with Csms(heartbeat_interval_s=3600) as csms, \
            running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        mark = csms.mark()
        answer = await csms.call(CP, call.TriggerMessage(requested_message=message,
                                                         connector_id=connector_id))
        assert answer.status == status
        if expect:
            await csms.wait_for(CP, expect[-1][0], since=mark, count=1,
                                where=lambda p: p.get("connectorId") == expect[-1][1],
                                timeout_s=WAIT_S)
        else:
            await asyncio.sleep(0.5)
        got = [(r.action, r.payload.get("connectorId"))
               for r in csms.received(CP, since=mark)]
        assert got == expect
        for r in csms.received(CP, since=mark):
            if r.action.endswith("StatusNotification") and r.action != "StatusNotification":
                assert r.payload == {"status": "Idle"}


# --- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(("action", "payload", "code"), [
    ("ChangeAvailability", {"connectorId": "one", "type": "Inoperative"},
     "TypeConstraintViolation"),
    ("ChangeAvailability", {"connectorId": 1, "type": "Broken"},
     "PropertyConstraintViolation"),
    ("ChangeAvailability", {"connectorId": 1}, "ProtocolError"),
    ("ChangeAvailability", {"connectorId": 1, "type": "Inoperative", "extra": 1},
     "FormationViolation"),
    ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": 5},
     "TypeConstraintViolation"),
    ("ChangeConfiguration", {"key": "K" * 51, "value": "5"}, "TypeConstraintViolation"),
    ("Reset", {"type": "Warm"}, "PropertyConstraintViolation"),
    ("ReserveNow", {"connectorId": 1, "expiryDate": "2030-01-01T00:00:00Z", "idTag": "A",
                    "reservationId": 1}, "NotSupported"),  # known to 1.6, not built here
    ("UpdateFirmware", {"location": "ftp://x/fw", "retrieveDate": "2030-01-01T00:00:00Z"},
     "NotSupported"),  # OCPP-J 1.6 4.2.3: "recognized but not supported"
    ("BootNotification", {"chargePointVendor": "X", "chargePointModel": "Y"},
     "NotSupported"),  # a charge point's own CALL, sent the wrong way
    ("NoSuchAction", {}, "NotImplemented"),  # 4.2.3: "not known by receiver"
], ids=str)
async def test_malformed_call_gets_call_error_and_changes_nothing(
        tmp_path: Path, action: str, payload: dict[str, Any], code: str) -> None:
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        mark = csms.mark()
        answer = await csms.call_raw(CP, action, payload)
        assert (answer.error_code, answer.payload) == (code, None)
        await asyncio.sleep(0.6)  # two steps: nothing changed
        assert csms.received(CP, "StatusNotification", since=mark) == []
        assert csms.received(CP, "BootNotification", since=mark) == []
        assert agent.availability is not None and agent.availability.operative(1)
        heartbeat = await csms.call(CP, call.GetConfiguration(key=["HeartbeatInterval"]))
        assert heartbeat.configuration_key[0]["value"] == "300"
