"""Reset with a transaction running, against a real back office that records the order
of the frames: the StopTransaction (SoftReset / HardReset) reaches the CSMS before the
charge point restarts, i.e. before its next BootNotification (OCPP 1.6 section 5.14)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ocpp.v16 import call

from hw.sim.csms import Csms
from tests.agent.ocpp.test_chargepoint import CP, WAIT_S, agent_config, booted, running
from tests.agent.ocpp.test_cp_sessions import plug

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("kind", "reason"), [("Soft", "SoftReset"), ("Hard", "HardReset")])
async def test_reset_stops_the_transaction_before_the_restart(tmp_path: Path, kind: str,
                                                              reason: str) -> None:
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        plug(agent, 1)
        await csms.wait_for(CP, "StartTransaction", timeout_s=WAIT_S)
        mark = csms.mark()
        assert (await csms.call(CP, call.Reset(type=kind))).status == "Accepted"
        await booted(csms, agent, since=mark)
        [stop] = await csms.wait_for(CP, "StopTransaction", since=mark, timeout_s=WAIT_S)
    after = [r.action for r in csms.received(CP, since=mark)]
    assert after.index("StopTransaction") < after.index("BootNotification"), after
    assert stop.payload["reason"] == reason and stop.payload["transactionId"] == 1


async def test_reset_without_a_transaction_restarts_at_once(tmp_path: Path) -> None:
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        mark = csms.mark()
        assert (await csms.call(CP, call.Reset(type="Soft"))).status == "Accepted"
        await booted(csms, agent, since=mark)
    assert csms.received(CP, "StopTransaction") == []
