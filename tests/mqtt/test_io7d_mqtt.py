"""A real io7d with [mqtt] against a real mosquitto (issue 14 §4-5): a lone charger (its
own master, no election) announces itself to Home Assistant, publishes the group's
state, and a home energy manager's setpoint lowers the group while valid, then it is back
at its installed limit. Real time: a 2 s validity, with generous bounds."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.e2e.harness import cluster, free_port
from tests.mqtt.conftest import Broker
from tests.web.support import ALL_PHASES, SIM_PLUGGED, io7_toml

pytestmark = pytest.mark.e2e
BOUND_S = 30.0  # generous: a shared, loaded machine
MQTT = """[mqtt]
host = "127.0.0.1"
port = {port}
plaintext = true
publish_interval_s = 0.2
"""


async def test_io7d_announces_publishes_and_obeys_a_setpoint_until_it_expires(
        broker: Broker, tmp_path: Path) -> None:
    (tmp_path / "io7.toml").write_text(io7_toml(
        state=tmp_path / "state", wiring=(ALL_PHASES,), master="cycle_ms = 250",
        members=f'"io7-01" = "127.0.0.1:{free_port()}"',
        more=SIM_PLUGGED + MQTT.format(port=broker.port)))
    seen: dict[str, Any] = {}

    async def until(check: Any, what: str) -> None:
        deadline = time.monotonic() + BOUND_S
        while True:
            try:
                if check():
                    return
            except KeyError:
                pass
            assert time.monotonic() < deadline, f"not within {BOUND_S} s: {what}"
            await asyncio.sleep(0.05)

    with cluster(tmp_path, tls=False) as c:
        async with aiomqtt.Client(broker.host, broker.port, identifier="ha") as sub:
            await sub.subscribe("homeassistant/#", qos=1)
            await sub.subscribe("io7/#", qos=1)

            async def read() -> None:
                async for m in sub.messages:
                    raw = m.payload if isinstance(m.payload, bytes) else b""
                    seen[m.topic.value] = json.loads(raw) if raw.startswith(b"{") else raw

            reader = asyncio.create_task(read())
            io7d = c.spawn("io7-01", "-m", "master.io7d", "--config", "io7.toml")
            try:
                await until(lambda: seen["io7/garage/io7-01/availability"] == b"online"
                            and "homeassistant/number/io7_group_garage_limit/config" in seen
                            and seen["io7/garage/state"]["phases"]["L1"]["limit_a"] == 48.0,
                            "io7d online, its discovery and the group state")
                assert "homeassistant/sensor/io7_io7-01_c1_offered/config" in seen
                await sub.publish("io7/garage/site_limit/set",
                                  '{"limit_a": 20, "valid_s": 2}', qos=1)
                await until(lambda: seen["io7/garage/state"]["phases"]["L2"]["limit_a"]
                            == 20.0, "the setpoint in force")
                assert seen["io7/garage/state"]["phases"]["L2"]["limit_source"].startswith(
                    "home energy manager (MQTT) until ")
                await until(lambda: seen["io7/garage/state"]["phases"]["L2"]["limit_a"]
                            == 48.0, "back at the installed limit after 2 s")
            finally:
                io7d.stop()
                await until(lambda: seen["io7/garage/io7-01/availability"] == b"offline",
                            "offline after a stop")
                reader.cancel()
