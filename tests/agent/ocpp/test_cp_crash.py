"""The agent process killed with SIGKILL mid-session and started again: the durable
outbox loses nothing and sends nothing twice (a resend keeps its OCPP unique id); the
open transaction is stopped with PowerLoss and a new one starts for the EV still
plugged in. A SIGTERM stops the running transaction with Reboot first."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agent.ocpp.configkeys import ConfigurationStore, open_db
from hw.sim.csms import Csms
from tests.agent.ocpp.test_chargepoint import CP, WAIT_S
from tests.agent.ocpp.test_cp_sessions import dedup, tx_messages

pytestmark = pytest.mark.e2e

AGENT = """
[charger]
id = "{cp}"
current_limit_a = 16
[connectors.1]
wiring = ["L1", "L2", "L3"]
[sim]
evs = "plugged"
[state]
dir = "state"
[ocpp]
enabled = true
url = "{url}/ocpp"
free_id_tag = "FREE"
"""


async def start_agent(tmp_path: Path, n: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.service", "--config", "agent.toml", cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=(tmp_path / f"agent-{n}.log").open("wb"))


async def test_kill_9_mid_session_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    db = open_db(tmp_path / "state")  # MeterValueSampleInterval 1 s from the first step
    assert ConfigurationStore(db).change("MeterValueSampleInterval", "1").status.value == \
        "Accepted"
    db.close()
    async with Csms() as csms:
        (tmp_path / "agent.toml").write_text(AGENT.format(cp=CP, url=csms.url))
        first = await start_agent(tmp_path, 1)
        try:
            await csms.wait_for(CP, "MeterValues", count=3, timeout_s=30.0)
        finally:
            first.kill()  # SIGKILL: no stop, no flush
            await first.wait()
        mark = csms.mark()
        second = await start_agent(tmp_path, 2)
        try:
            await csms.wait_for(CP, "StopTransaction", since=mark, timeout_s=30.0)
            await csms.wait_for(CP, "StartTransaction", since=mark,
                                where=lambda p: True, timeout_s=WAIT_S)
            await csms.wait_for(CP, "MeterValues", since=csms.mark(), count=2,
                                timeout_s=WAIT_S)
        finally:
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 30.0) == 0
    got = tx_messages(csms)
    by_id: dict[str, object] = {}
    for r in got:  # a message received twice is the same message (same id, same payload)
        assert by_id.setdefault(r.unique_id, r.payload) == r.payload
    unique = dedup(got)
    starts = [r.payload for r in unique if r.action == "StartTransaction"]
    stops = [r.payload for r in unique if r.action == "StopTransaction"]
    assert len(starts) == 2 and [s["connectorId"] for s in starts] == [1, 1]
    assert [(s["transactionId"], s["reason"]) for s in stops] == [(1, "PowerLoss"),
                                                                   (2, "Reboot")]
    order = [(r.action, r.payload.get("transactionId")) for r in unique]
    stop1 = order.index(("StopTransaction", 1))
    assert all(tx == 1 for action, tx in order[1:stop1] if action == "MeterValues")
    assert all(tx == 2 for action, tx in order[stop1 + 1:] if action == "MeterValues")
    stamps = [(r.payload["transactionId"], r.payload["meterValue"][0]["timestamp"])
              for r in unique if r.action == "MeterValues"]
    assert len(set(stamps)) == len(stamps)  # no reading sent as two messages
    assert stops[0]["meterStop"] >= starts[0]["meterStart"]
