"""Hostile frames from the back office, over a real websocket (hw.sim.csms): whatever a
CSMS sends, the charge point logs it, answers the right OCPP-J 1.6 CallError when it can
tell which CALL it was (section 4.2.3), and stays connected (or reconnects at once) and
answers the next normal call. The agent process still exits 0 on SIGTERM afterwards."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from ocpp.v16 import call
from structlog.testing import capture_logs

from agent.ocpp.frames import MAX_DEPTH, MAX_FRAME_BYTES
from hw.sim.csms import Csms
from tests.agent.ocpp.test_chargepoint import (
    CP,
    PLAIN_AGENT,
    WAIT_S,
    agent_config,
    booted,
    running,
)

pytestmark = pytest.mark.e2e


def _profile_with_limit(limit: str) -> str:
    """A SetChargingProfile CALL with `limit` written as given (JSON number text)."""
    return ('[2,"hostile-limit","SetChargingProfile",{"connectorId":1,"csChargingProfiles":'
            '{"chargingProfileId":7,"stackLevel":1,"chargingProfilePurpose":"TxDefaultProfile",'
            '"chargingProfileKind":"Relative","chargingSchedule":{"chargingRateUnit":"A",'
            '"chargingSchedulePeriod":[{"startPeriod":0,"limit":' + limit + '}]}}}]')


@dataclass(frozen=True)
class Hostile:
    name: str
    frame: str
    answer_to: str | None  # the unique id the charge point can still read, if any
    code: str | None  # the CallError it answers, None: no answer possible
    reconnects: bool = False


HOSTILE = [
    # 40 KB of brackets: under the frame limit, 20,000 levels deep (json recurses).
    Hostile("nested brackets", "[" * 20_000 + "]" * 20_000, None, None),
    # The same depth inside a readable CALL: its id is known, so it gets an answer.
    Hostile("nested payload", '[2,"deep-1","DataTransfer",{"vendorId":"x","data":'
            + "[" * 20_000 + "]" * 20_000 + "}]", "deep-1", "FormationViolation"),
    # 200 KB: more than the websocket takes (1009 message too big): reconnect.
    Hostile("huge frame", json.dumps([2, "huge-1", "DataTransfer",
                                      {"vendorId": "x", "data": "A" * 200_000}]),
            None, None, reconnects=True),
    Hostile("limit 1e308", _profile_with_limit("1e308"), "hostile-limit",
            "PropertyConstraintViolation"),
    Hostile("limit 1e400 (inf)", _profile_with_limit("1e400"), "hostile-limit",
            "PropertyConstraintViolation"),
    Hostile("5000-digit connector id", '[2,"big-int","UnlockConnector",{"connectorId":'
            + "9" * 5000 + "}]", "big-int", "PropertyConstraintViolation"),
    Hostile("not JSON", "this is {not json", None, None),
    Hostile("NaN is not JSON", '[2,"nan-1","UnlockConnector",{"connectorId":NaN}]', "nan-1",
            "FormationViolation"),
    Hostile("wrong message type id", '[7,"type-7","Heartbeat",{}]', "type-7",
            "FormationViolation"),
]


def test_the_limits_are_above_what_ocpp_needs() -> None:
    # SendLocalList of SendLocalListMaxLength (100) full entries is the largest legit frame.
    entry = {"idTag": "X" * 20, "idTagInfo": {"status": "ConcurrentTx", "parentIdTag": "Y" * 20,
                                               "expiryDate": "2030-01-01T00:00:00.000Z"}}
    largest = json.dumps([2, "0" * 36, "SendLocalList", {
        "listVersion": 2**31 - 1, "updateType": "Full", "localAuthorizationList": [entry] * 100}])
    assert len(largest.encode()) * 3 < MAX_FRAME_BYTES
    assert MAX_DEPTH >= 2 * 6  # SetChargingProfile nests 6 levels (frame to period)


@pytest.mark.parametrize("bad", HOSTILE, ids=lambda h: h.name)
async def test_a_hostile_frame_leaves_the_link_working(tmp_path: Path, bad: Hostile) -> None:
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        mark = csms.mark()
        with capture_logs() as logs:
            answer = await csms.send_frame(CP, bad.frame, answer_to=bad.answer_to)
            if bad.code is not None:
                assert answer is not None and answer.error_code == bad.code, answer
            if bad.reconnects:
                await booted(csms, agent, since=mark)
            else:
                await asyncio.sleep(0.3)  # what the frame did, it has done by now
            got = await csms.call(CP, call.GetConfiguration(key=["HeartbeatInterval"]))
        assert got.configuration_key[0]["value"] == "300"
        boots = csms.received(CP, "BootNotification", since=mark)
        assert len(boots) == (1 if bad.reconnects else 0)
        if bad.reconnects:  # websockets refused it: the link says why it dropped
            assert any("1009" in e.get("why", "") for e in logs if e["event"] == "ocpp link")
        else:
            refused = [e for e in logs if e["event"] == "CSMS frame refused"]
            assert refused and refused[0]["charger_id"] == CP, f"{bad.name}: nothing logged"


async def test_an_unexpected_error_in_the_link_is_logged_and_the_link_restarts(
        tmp_path: Path) -> None:
    def broken_reset(hard: bool) -> None:
        raise RuntimeError("the charger's reset failed")

    with capture_logs() as logs:
        async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
            await booted(csms, agent)
            assert agent.ocpp is not None
            agent.ocpp.port.reset = broken_reset  # type: ignore[method-assign]
            mark = csms.mark()
            assert (await csms.call(CP, call.Reset(type="Soft"))).status == "Accepted"
            await booted(csms, agent, since=mark)
            got = await csms.call(CP, call.GetConfiguration(key=["HeartbeatInterval"]))
            assert got.configuration_key[0]["value"] == "300"
    failed = [e for e in logs if e["event"] == "ocpp link failed, restarting"]
    assert failed and failed[0]["charger_id"] == CP
    assert "RuntimeError: the charger's reset failed" in failed[0]["error"]


async def test_the_agent_process_survives_them_all_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(PLAIN_AGENT)
    async with Csms() as csms:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent.service", "--config", "agent.toml", "--csms-url",
            f"{csms.url}/ocpp", cwd=tmp_path, stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "agent.log").open("wb"))
        try:
            await csms.wait_for(CP, "StatusNotification", count=2, timeout_s=30.0)
            for bad in HOSTILE:
                mark = csms.mark()
                answer = await csms.send_frame(CP, bad.frame, answer_to=bad.answer_to)
                assert bad.code is None or (answer is not None
                                            and answer.error_code == bad.code), bad.name
                if bad.reconnects:
                    await csms.wait_for(CP, "StatusNotification", count=2, since=mark,
                                        timeout_s=30.0)
                got = await csms.call(CP, call.GetConfiguration(key=["HeartbeatInterval"]))
                assert got.configuration_key[0]["value"] == "300", bad.name
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), WAIT_S) == 0
    events = [json.loads(line) for line in (tmp_path / "agent.log").read_text().splitlines()
              if line.startswith("{")]
    refused = [e for e in events if e.get("event") == "CSMS frame refused"]
    assert len(refused) >= len(HOSTILE) - 1  # all but the huge one (websockets refuses it)
    assert all(e["charger_id"] == CP for e in refused)
