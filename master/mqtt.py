"""io7d's MQTT client (issue 14 §4, issue 12 §4): state, Home Assistant discovery, and a
home energy manager's setpoint. Optional: [mqtt] in io7.toml (master/mqttconfig.py).

1. Every io7d publishes its charger's availability (online; its last will: offline), its
   charger's and connectors' state at most every publish_interval_s and only when it
   changed (or each HEARTBEAT_S), and its discovery messages (mqttdiscovery.py), all
   retained. Home Assistant's birth message makes it send discovery again.
2. The member that leads (Station.master() is not None) also publishes the group's
   state and discovery (the "group limit" number included), and acts on the commands:
   `limit/set` sets the group limit by SetGroupLimit's rules (master.set_group_limit:
   never above the installed limit; the same security log lines, who = "mqtt"); a
   refusal is logged and published on `limit/error`.
3. `site_limit/set` (mqttsetpoint.py) puts the setpoint in the master's SiteLimits as
   the "home energy manager (MQTT)" source: the group goes down while it is valid, and
   back to its own limit at its end, never above it. A malformed or out-of-range one is
   refused with nothing changed: logged, and published on `site_limit/error`.
4. Leader changes and retained setpoints. Every member subscribes to the setpoint and
   keeps the last one it accepted with its end (arrival + valid_s, wall clock), so the
   member that takes the lead applies it at once, with what is left of its validity:
   a leader change never re-arms it, and never drops it early. A RETAINED setpoint is
   refused: the broker's copy carries no age, so it would be re-armed for a full valid_s
   at every (re)subscription, after a leader change or a broker restart; the energy
   manager publishes without retain and renews before the end (as with Modbus TCP). The
   same goes for a retained `limit/set`. Only the leader publishes errors.
5. A broken connection is retried after RETRY_S..MAX_RETRY_S; nothing here ever stops
   io7d or its master. At stop: offline is published before disconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any, Protocol

import aiomqtt
import structlog

from master import audit, statuswords
from master.errors import RequestError
from master.mqttconfig import MqttSettings
from master.mqttdiscovery import (
    OFFLINE,
    ONLINE,
    Message,
    Topics,
    charger_discovery,
    charger_payload,
    connector_key,
    connector_payload,
    group_discovery,
    group_payload,
)
from master.mqttsetpoint import SetpointError, parse_group_limit, parse_setpoint
from protos.io7.cluster.v1 import cluster_pb2 as pb

if TYPE_CHECKING:
    from master.externallimits import ExternalLimit
    from master.service import Master

TICK_S = 0.25  # how soon a new master gets the held setpoint (its start hold is longer)
HEARTBEAT_S = 60.0  # an unchanged state is published again this often
KEEPALIVE_S = 30  # MQTT keepalive: the broker publishes our last will ~45 s after a crash
RETRY_S, MAX_RETRY_S = 1.0, 30.0
STOP_GRACE_S = 5.0  # at io7d's exit: publishing offline takes ms on a LAN
log = structlog.get_logger("io7d.mqtt")


class MqttHost(Protocol):
    """What the client needs of io7d (master.web.station.Station fits)."""

    def charger_state(self) -> pb.AgentState: ...

    def master(self) -> Master | None: ...


def _version() -> str:
    try:
        return metadata.version("io7-cluster")
    except metadata.PackageNotFoundError:
        return "dev"


class MqttClient:
    """Rules 1-5 for one io7d."""

    def __init__(self, settings: MqttSettings, host: MqttHost, *, group: str,
                 charger_id: str, members: Sequence[str], installed_limit_a: float,
                 wall: Callable[[], float] = time.time,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings, self.host = settings, host
        self.charger_id, self.members = charger_id, tuple(members)
        self.installed_limit_a = installed_limit_a
        self.wall, self.clock = wall, clock
        self.topics = Topics(prefix=settings.topic_prefix,
                             discovery_prefix=settings.discovery_prefix, group=group)
        self.sw_version = _version()
        self.held: ExternalLimit | None = None  # rule 4: the last accepted setpoint
        self._applied_to: Master | None = None
        self._sent: dict[str, tuple[str, float]] = {}  # topic -> (payload, when)
        self._next_state_s = 0.0
        self.connected = asyncio.Event()
        self.log = log.bind(charger_id=charger_id, broker=f"{settings.host}:{settings.port}")

    # --- connection ----------------------------------------------------------------
    def _client(self) -> aiomqtt.Client:
        s = self.settings
        tls = None
        if s.tls:
            tls = ssl.create_default_context(
                cafile=None if s.ca_file is None else str(s.ca_file))
        return aiomqtt.Client(
            s.host, s.port, username=s.username, password=s.password,
            identifier=f"io7d-{self.topics.base.replace('/', '-')}-{self.charger_id}",
            will=aiomqtt.Will(self.topics.availability(self.charger_id), OFFLINE, qos=1,
                              retain=True),
            keepalive=KEEPALIVE_S, tls_context=tls, clean_session=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Rule 5: connect, serve, reconnect, until `stop` is set."""
        if not self.settings.tls:
            self.log.warning("MQTT in PLAINTEXT ([mqtt] plaintext = true): a test bench only")
        delay = RETRY_S
        while not stop.is_set():
            try:
                async with self._client() as client:
                    delay = RETRY_S
                    self.log.info("MQTT connected")
                    await self._session(client, stop)
            except (aiomqtt.MqttError, OSError) as err:
                self.log.warning("MQTT connection lost: retrying", error=str(err),
                                 retry_in_s=delay)
            finally:
                self.connected.clear()
                self._sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, MAX_RETRY_S)

    async def _session(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        t = self.topics
        await client.publish(t.availability(self.charger_id), ONLINE, qos=1, retain=True)
        for topic in (t.setpoint, t.limit_set, t.ha_status):
            await client.subscribe(topic, qos=1)
        self.connected.set()
        reader = asyncio.create_task(self._read(client), name="mqtt read")
        waiter = asyncio.create_task(stop.wait(), name="mqtt stop")
        try:
            while not stop.is_set():
                await self._tick(client)
                await asyncio.wait({reader, waiter}, timeout=TICK_S,
                                   return_when=asyncio.FIRST_COMPLETED)
                if reader.done():
                    reader.result()  # its MqttError: the connection is gone
                    raise aiomqtt.MqttError("the broker ended the message stream")
            await client.publish(t.availability(self.charger_id), OFFLINE, qos=1,
                                 retain=True)
        finally:
            for task in (reader, waiter):
                task.cancel()
            await asyncio.gather(reader, waiter, return_exceptions=True)

    # --- publishing (rules 1-2) ----------------------------------------------------
    async def _publish(self, client: aiomqtt.Client, messages: Sequence[Message], *,
                       compare: Callable[[str], str] = str) -> None:
        """Publish each retained message that changed (or is older than HEARTBEAT_S)."""
        now = self.clock()
        for topic, payload in messages:
            sent = self._sent.get(topic)
            if sent is not None and sent[0] == compare(payload) and now - sent[1] < HEARTBEAT_S:
                continue
            await client.publish(topic, payload, qos=1, retain=True)
            self._sent[topic] = (compare(payload), now)

    async def _tick(self, client: aiomqtt.Client) -> None:
        master = self.host.master()
        if master is not self._applied_to:  # rule 4: a new master gets the held setpoint
            self._applied_to = master
            if master is not None and self.held is not None:
                master.site_limits.set_mqtt(self.held)
        now = self.clock()
        if now < self._next_state_s:
            return
        self._next_state_s = now + self.settings.publish_interval_s
        state = self.host.charger_state()
        t = self.topics
        messages: list[Message] = [(t.charger_state(self.charger_id),
                                    json.dumps(charger_payload(state)))]
        messages += [(t.connector_state(self.charger_id, c.connector_id),
                      json.dumps(connector_payload(c))) for c in state.connectors]
        if self.settings.discovery:
            messages += charger_discovery(t, state, self.sw_version)
        await self._publish(client, messages)
        if master is not None and master.status.phases:
            await self._publish_group(client, master.status)

    async def _publish_group(self, client: aiomqtt.Client, status: pb.GroupStatus) -> None:
        reasons = {connector_key(m.charger_id, c.connector_id):
                   statuswords.connector_reason(status, c)
                   for m in status.members for c in m.connectors}
        payload = group_payload(status, installed_limit_a=self.installed_limit_a,
                                reasons=reasons, now_unix_s=self.wall())
        await self._publish(client, [(self.topics.group_state, json.dumps(payload))],
                            compare=_without_time)
        if self.settings.discovery:
            await self._publish(client, group_discovery(
                self.topics, status, installed_limit_a=self.installed_limit_a,
                members=self.members, sw_version=self.sw_version))

    # --- commands (rules 2-4) --------------------------------------------------------
    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else \
                str(message.payload or "").encode()
            topic = message.topic.value
            if topic == self.topics.ha_status:
                if payload == b"online":  # Home Assistant (re)started: discovery again
                    self._sent.clear()
                    self._next_state_s = 0.0
                continue
            if not payload:  # a retained message being cleared: nothing was asked
                continue
            if topic == self.topics.setpoint:
                await self._on_setpoint(client, payload, message.retain)
            elif topic == self.topics.limit_set:
                await self._on_group_limit(client, payload, message.retain)

    async def _on_setpoint(self, client: aiomqtt.Client, payload: bytes,
                           retained: bool) -> None:
        master = self.host.master()
        try:
            if retained:
                raise SetpointError("a retained setpoint is refused (its age is unknown: "
                                    "it would be re-armed at every subscription); publish "
                                    "it without retain and renew it before valid_s ends")
            setpoint = parse_setpoint(payload, installed_limit_a=self.installed_limit_a,
                                      max_valid_s=self.settings.setpoint_max_valid_s,
                                      now_unix_s=self.wall())
        except SetpointError as err:
            if master is not None:  # rule 4: only the leader says so
                self.log.warning("MQTT setpoint refused: nothing changed", why=str(err))
                await self._error(client, self.topics.setpoint_error, str(err), payload)
            return
        self.held = setpoint.limit
        if master is not None:
            master.site_limits.set_mqtt(setpoint.limit)
            self._applied_to = master

    async def _on_group_limit(self, client: aiomqtt.Client, payload: bytes,
                              retained: bool) -> None:
        master = self.host.master()
        if master is None:
            return  # the leader acts on it
        actor = audit.Actor("mqtt", f"mqtt:{self.settings.host}:{self.settings.port}")
        try:
            if retained:
                raise SetpointError("a retained group limit is refused: publish it "
                                    "without retain")
            limit_a = parse_group_limit(payload)
            master.set_group_limit(limit_a, actor)
        except (SetpointError, RequestError) as err:
            self.log.warning("MQTT group limit refused: nothing changed", why=str(err))
            await self._error(client, self.topics.limit_error, str(err), payload)
            return
        self._next_state_s = 0.0  # show the new limit at once

    async def _error(self, client: aiomqtt.Client, topic: str, why: str,
                     payload: bytes) -> None:
        body = {"error": why, "payload": payload[:200].decode("utf-8", "replace"),
                "at_unix_s": round(self.wall(), 3), "charger_id": self.charger_id}
        await client.publish(topic, json.dumps(body), qos=1, retain=False)


def _without_time(payload: str) -> str:
    """The group state without its timestamp, to tell a change from a repeat."""
    data: dict[str, Any] = json.loads(payload)
    data.pop("at_unix_s", None)
    return json.dumps(data, sort_keys=True)


async def run_mqtt(settings: MqttSettings | None, host: MqttHost, *, group: str,
                   charger_id: str, members: Sequence[str], installed_limit_a: float,
                   stop: asyncio.Event) -> None:
    """io7d's entry: the client of rules 1-5 until `stop`; nothing when [mqtt] is absent.
    Never raises: an optional interface must not end the charger's daemon (rule 5)."""
    if settings is None:
        return
    client = MqttClient(settings, host, group=group, charger_id=charger_id, members=members,
                        installed_limit_a=installed_limit_a)
    try:
        await client.run(stop)
    except Exception:  # a defect here: logged with its traceback, the charger carries on
        client.log.exception("MQTT client failed: no MQTT until io7d restarts")


async def stopped(task: asyncio.Task[None], grace_s: float = STOP_GRACE_S) -> None:
    """At io7d's exit (`stop` already set): let the client say offline, within grace_s."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(task, grace_s)
