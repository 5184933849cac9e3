"""Real processes: `io7-agent --csms-url`, `python -m hw.sim.csms`, and `make run`'s car
park showing each charger's OCPP link, against the local or an external back office."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agent.ocpp.connection import LinkState
from hw.sim.csms import Csms
from tests.agent.ocpp.test_chargepoint import (
    CP,
    PLAIN_AGENT,
    WAIT_S,
    agent_config,
    link_state,
    running,
)
from tests.conftest import CarparkRun

pytestmark = pytest.mark.e2e
PY = sys.executable

async def test_csms_url_on_the_command_line_points_the_agent_there(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(PLAIN_AGENT)  # no [ocpp] table at all
    async with Csms() as csms:
        proc = await asyncio.create_subprocess_exec(
            PY, "-m", "agent.service", "--config", "agent.toml", "--csms-url",
            f"{csms.url}/ocpp", cwd=tmp_path, stdout=subprocess.PIPE,
            stderr=(tmp_path / "agent.log").open("wb"))
        try:
            await csms.wait_for(CP, "StatusNotification", count=2, timeout_s=30.0)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), WAIT_S) == 0
    boot = csms.received(CP)[0]
    assert (boot.action, boot.payload["chargePointVendor"]) == ("BootNotification", "Ratio")
    assert "contactors open" in (tmp_path / "agent.log").read_text()


def test_a_bad_csms_url_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(PLAIN_AGENT)
    done = subprocess.run([PY, "-m", "agent.service", "--config", "agent.toml",
                           "--csms-url", "http://csms/ocpp"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "ocpp.url (--csms-url)" in done.stderr and "ws://host" in done.stderr


async def test_csms_process_prints_its_url_and_serves(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        PY, "-m", "hw.sim.csms", "--listen", "127.0.0.1:0", "--boot", "Pending,Accepted",
        "--retry-s", "1", stdout=subprocess.PIPE, stderr=(tmp_path / "csms.log").open("wb"))
    try:
        assert proc.stdout is not None
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30.0))
        assert first["listening"].startswith("ws://127.0.0.1:")
        async with running(agent_config(tmp_path, first["listening"])) as agent:
            await link_state(agent, LinkState.PENDING)
            await link_state(agent, LinkState.ACCEPTED)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), WAIT_S) == 0
    events = [json.loads(line) for line in (tmp_path / "csms.log").read_text().splitlines()
              if line.startswith("{")]
    assert [e["action"] for e in events if e["event"] == "received"][:2] == [
        "BootNotification", "BootNotification"]


def test_carpark_shows_every_chargers_ocpp_link(carpark_b: CarparkRun) -> None:
    done = carpark_b.done  # scenario B, 8 s (tests/conftest.py)
    assert done.returncode == 0, done.stderr
    last = done.stdout.split("io7-cluster car park")[-1]
    assert "OCPP 1.6J back office ws://127.0.0.1:" in last
    ids = [f"io7-{i:02d}" for i in range(1, 5)]
    assert all(f"{cid} accepted" in last for cid in ids), last
    log = (carpark_b.run_dir / "scenario-B" / "csms.log").read_text()
    assert all(f'"charge_point_id": "{cid}"' in log for cid in ids)


def test_carpark_can_use_an_external_back_office(tmp_path: Path) -> None:
    csms = subprocess.Popen([PY, "-m", "hw.sim.csms", "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=(tmp_path / "ext.log").open("wb"))
    try:
        assert csms.stdout is not None
        url = json.loads(csms.stdout.readline())["listening"] + "/ext"
        done = subprocess.run(
            [PY, "-m", "master.carpark", "--scenario", "A", "--seconds", "8",
             "--run-dir", str(tmp_path / "park")], capture_output=True, text=True,
            timeout=120, check=False, env={**os.environ, "CSMS_URL": url})
    finally:
        csms.send_signal(signal.SIGTERM)
        csms.wait(WAIT_S)
    assert done.returncode == 0, done.stderr
    assert f"OCPP 1.6J back office {url}" in done.stdout
    assert "io7-solo accepted" in done.stdout.split("io7-cluster car park")[-1]
    assert not (tmp_path / "park" / "scenario-A" / "csms.out").exists()  # no local one
    assert '"charge_point_id": "io7-solo"' in (tmp_path / "ext.log").read_text()
