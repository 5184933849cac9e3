"""io7d's MQTT client against a real mosquitto (issue 14 §4-5): discovery and state seen by
a subscriber, the home energy manager's setpoint lowering a real Master's group and
expiring back, refusals published, and what a leader change does with a setpoint.

The Master is master.service.Master (its real control core and SiteLimits) cycled by the
test; the wall clock of the setpoint validity is virtual (one `Wall` shared by the MQTT
client and the master's SiteLimits), so an expiry takes no waiting."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from master.config import _parse as parse_master
from master.mqtt import MqttClient
from master.mqttconfig import MqttSettings
from master.service import Master
from master.sitelimits import MQTT
from protos.io7.cluster.v1 import cluster_pb2 as pb
from tests.mqtt.conftest import Broker

T0 = 1_750_000_000.0
WAIT_S = 10.0  # generous bound for a message through a loopback broker (~ms)


class Wall:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


class Host:
    """What io7d's Station gives the client: this charger's state and its master."""

    def __init__(self, running: Master | None) -> None:
        self.running = running

    def charger_state(self) -> pb.AgentState:
        return pb.AgentState(charger_id="io7-01", lease_ok=True, connectors=[
            pb.ConnectorState(connector_id=1, status=pb.CONNECTOR_STATUS_CHARGING,
                              offered_current_a=16.0, meter_ok=True,
                              current_a=pb.LineValues(l1=15.9, l2=15.8, l3=15.7))])

    def master(self) -> Master | None:
        return self.running


def make_master(tmp_path: Path, wall: Wall, name: str = "m1") -> Master:
    config = parse_master(tmp_path / "io7.toml", {
        "master": {"id": "io7-01", "listen": "127.0.0.1:0",
                   "state_db": str(tmp_path / name / "master.sqlite3")},
        "group": {"name": "garage", "limit_a": 32}, "tls": {"plaintext": True}})
    master = Master(config)
    master.site_limits.wall = wall
    return master


class Listener:
    """A subscriber that keeps the last payload per topic (and every error)."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.last: dict[str, bytes] = {}
        self.errors: list[dict[str, Any]] = []

    async def read(self) -> None:
        async for m in self.client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            self.last[m.topic.value] = payload
            if m.topic.value.endswith("/error"):
                self.errors.append(json.loads(payload))

    def json(self, topic: str) -> Any:
        return json.loads(self.last[topic])


def holds(check: Callable[[], object]) -> bool:
    try:
        return bool(check())
    except KeyError:  # that topic has not been seen yet
        return False


async def until(check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not holds(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S} s: {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(broker: Broker, host: Host, wall: Wall
                  ) -> AsyncIterator[tuple[MqttClient, Listener, aiomqtt.Client]]:
    """The client under test (publishing every 0.05 s), and a listener on everything."""
    settings = MqttSettings(host=broker.host, port=broker.port, tls=False,
                            publish_interval_s=0.05, setpoint_max_valid_s=600)
    client = MqttClient(settings, host, group="garage", charger_id="io7-01",
                        members=["io7-01", "io7-02"], installed_limit_a=32.0, wall=wall)
    stop = asyncio.Event()
    async with aiomqtt.Client(broker.host, broker.port, identifier="listener") as sub:
        for topic in ("homeassistant/#", "io7/#"):
            await sub.subscribe(topic, qos=1)
        listener = Listener(sub)
        reading = asyncio.create_task(listener.read())
        task = asyncio.create_task(client.run(stop))
        try:
            await asyncio.wait_for(client.connected.wait(), WAIT_S)
            yield client, listener, sub
        finally:
            stop.set()
            await asyncio.wait_for(task, WAIT_S)
            await until(lambda: listener.last.get("io7/garage/io7-01/availability")
                        == b"offline", "offline at stop")
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading


def limits(master: Master) -> list[tuple[float, str]]:
    return [(p.limit_a, p.limit_source) for p in master.status.phases]


async def test_discovery_state_and_a_setpoint_that_lowers_the_group_then_expires(
        broker: Broker, tmp_path: Path) -> None:
    wall = Wall()
    master = make_master(tmp_path, wall)
    await master.run_cycle()
    async with running(broker, Host(master), wall) as (_, seen, sub):
        await until(lambda: "io7/garage/state" in seen.last
                    and "homeassistant/number/io7_group_garage_limit/config" in seen.last
                    and "homeassistant/sensor/io7_io7-01_c1_current_l1/config" in seen.last,
                    "discovery and the group state")
        assert seen.last["io7/garage/io7-01/availability"] == b"online"
        number = seen.json("homeassistant/number/io7_group_garage_limit/config")
        assert (number["max"], number["command_topic"]) == (32.0, "io7/garage/limit/set")
        assert seen.json("io7/garage/io7-01/connector/1/state")["current_l1_a"] == 15.9
        assert seen.json("io7/garage/state")["phases"]["L1"]["limit_a"] == 32.0

        await sub.publish("io7/garage/site_limit/set", '{"limit_a": [20, 25, 32], '
                          '"valid_s": 60}', qos=1)
        await until(lambda: master.site_limits.limits.get(MQTT) is not None, "setpoint")
        await master.run_cycle()
        (l1, why), (l2, _), (l3, own) = limits(master)
        assert (l1, l2, l3) == (20.0, 25.0, 32.0)
        assert why.startswith("home energy manager (MQTT) until ") and own == "installed limit"
        assert master.status.external_limits[0].valid_until_unix_ms == (T0 + 60) * 1000
        await until(lambda: seen.json("io7/garage/state")["phases"]["L1"]["limit_a"] == 20.0,
                    "the lowered limit published")

        wall.t = T0 + 60.0  # its end: back to the group's own limit, not above
        await master.run_cycle()
        assert limits(master) == [(32.0, "installed limit")] * 3
        assert not master.status.external_limits
        kinds = [e.detail for e in master.security.tail(10) if e.kind == "external_limit"]
        assert kinds[0].startswith("MQTT setpoint: set: home energy manager (MQTT): 20.0/25.0")
        assert kinds[1].startswith("expired: home energy manager (MQTT)")


@pytest.mark.parametrize("payload, words", [
    ('{"limit_a": 40, "valid_s": 60}', "the installed limit (group.limit_a) is the ceiling"),
    ("{limit_a: 20}", "not JSON"),
])
async def test_a_bad_setpoint_is_refused_published_and_changes_nothing(
        broker: Broker, tmp_path: Path, payload: str, words: str) -> None:
    wall = Wall()
    master = make_master(tmp_path, wall)
    await master.run_cycle()
    async with running(broker, Host(master), wall) as (client, seen, sub):
        await sub.publish("io7/garage/site_limit/set", '{"limit_a": 20, "valid_s": 60}', qos=1)
        await until(lambda: client.held is not None, "the good setpoint")
        await sub.publish("io7/garage/site_limit/set", payload, qos=1)
        await until(lambda: seen.errors, "an error on site_limit/error")
        assert words in seen.errors[0]["error"] and seen.errors[0]["payload"] == payload
        await master.run_cycle()
        assert [a for a, _ in limits(master)] == [20.0] * 3  # the good one still in force


async def test_a_new_leader_takes_over_the_setpoint_without_re_arming_it(
        broker: Broker, tmp_path: Path) -> None:
    wall = Wall()
    host = Host(None)  # a follower at first
    async with running(broker, host, wall) as (client, seen, sub):
        await sub.publish("io7/garage/site_limit/set", '{"limit_a": 16, "valid_s": 60}',
                          qos=1)
        await until(lambda: client.held is not None, "the setpoint, held by a follower")
        wall.t = T0 + 30.0  # this member takes the lead 30 s later
        master = make_master(tmp_path, wall)
        host.running = master
        await until(lambda: master.site_limits.limits.get(MQTT) is not None,
                    "the held setpoint applied to the new master")
        await master.run_cycle()
        assert [a for a, _ in limits(master)] == [16.0] * 3
        # what was left of it, not a fresh 60 s
        assert master.status.external_limits[0].valid_until_unix_ms == (T0 + 60) * 1000
        assert not seen.errors


async def test_a_stale_retained_setpoint_is_refused_by_a_new_leader(
        broker: Broker, tmp_path: Path) -> None:
    wall = Wall()
    master = make_master(tmp_path, wall)
    await master.run_cycle()
    async with aiomqtt.Client(broker.host, broker.port, identifier="ems") as ems:
        # published (retained) before this leader subscribed: its age is unknown
        await ems.publish("io7/garage/site_limit/set", '{"limit_a": 10, "valid_s": 600}',
                          qos=1, retain=True)
        async with running(broker, Host(master), wall) as (client, seen, _):
            await until(lambda: seen.errors, "the retained setpoint's refusal")
            assert "retained" in seen.errors[0]["error"]
            assert client.held is None and master.site_limits.limits.get(MQTT) is None
            await master.run_cycle()
            assert [a for a, _ in limits(master)] == [32.0] * 3
        await ems.publish("io7/garage/site_limit/set", b"", qos=1, retain=True)


async def test_the_group_limit_number_sets_the_limit_by_set_group_limit_rules(
        broker: Broker, tmp_path: Path) -> None:
    wall = Wall()
    master = make_master(tmp_path, wall)
    await master.run_cycle()
    async with running(broker, Host(master), wall) as (_, seen, sub):
        await sub.publish("io7/garage/limit/set", "24", qos=1)
        await until(lambda: master.control.installed_limit_a == 32.0 and any(
            e.kind == "limit_set" for e in master.security.tail(5)), "the limit set")
        await master.run_cycle()
        assert [a for a, _ in limits(master)] == [24.0] * 3
        await until(lambda: seen.json("io7/garage/state")["configured_limit_a"] == 24.0,
                    "the number's state")
        await sub.publish("io7/garage/limit/set", "40", qos=1)
        await until(lambda: seen.errors, "the refusal on limit/error")
        assert "installed limit" in seen.errors[0]["error"]
        entry = next(e for e in master.security.tail(5) if e.kind == "limit_refused")
        assert entry.who == "mqtt"
        await master.run_cycle()
        assert [a for a, _ in limits(master)] == [24.0] * 3
