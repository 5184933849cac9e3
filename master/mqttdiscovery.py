"""MQTT topics, Home Assistant discovery and state payloads (issue 14 §4). Pure.

Topics under `<prefix>/<group>/` (every level a `segment`: + # / and spaces become _):

    <charger>/availability          online / offline (retained; offline is the client's
                                    last will, so a dead io7d shows offline)
    <charger>/state                 the charger (retained JSON): lease, term, refusal
    <charger>/connector/<n>/state   a connector (retained JSON): status, offer, per-line
                                    draw, power, energy
    state                           the group, published by the member that leads: per
                                    phase limit, CT, other load, reserved, allocated, and
                                    every connector's reason in words
    limit/set, limit/error          Home Assistant's "group limit" number (SetGroupLimit)
    site_limit/set, site_limit/error  the home energy manager's setpoint (mqttsetpoint.py)

Discovery follows Home Assistant's MQTT discovery: one retained config message per
entity at `<discovery_prefix>/<component>/<object_id>/config`, each with a unique_id, a
device block (a device per charger, one for the group) and availability. A connector's
reason is decided by the group's master, so its entity reads the group's state topic;
the group's entities are available while any member is online (availability_mode any
over the members' availability topics): during an election the last group state stays.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from master.allocation import MIN_CURRENT_A
from protos.io7.cluster.v1 import cluster_pb2 as pb

MANUFACTURER, MODEL = "Ratio", "io7 Double"  # product.md: the charger's make and model
ORIGIN = {"name": "io7d", "support_url": "https://github.com/io7-cluster"}
ONLINE, OFFLINE = "online", "offline"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
Message = tuple[str, str]  # (topic, payload), published retained


def segment(name: str) -> str:
    """`name` as one topic level and object id: letters, digits, . _ - kept, the rest _."""
    return _UNSAFE.sub("_", name) or "_"


@dataclass(frozen=True, slots=True, kw_only=True)
class Topics:
    """Every topic of one group (module doc)."""

    prefix: str
    discovery_prefix: str
    group: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{segment(self.group)}"

    def availability(self, charger_id: str) -> str:
        return f"{self.base}/{segment(charger_id)}/availability"

    def charger_state(self, charger_id: str) -> str:
        return f"{self.base}/{segment(charger_id)}/state"

    def connector_state(self, charger_id: str, connector_id: int) -> str:
        return f"{self.base}/{segment(charger_id)}/connector/{connector_id}/state"

    @property
    def group_state(self) -> str:
        return f"{self.base}/state"

    @property
    def limit_set(self) -> str:
        return f"{self.base}/limit/set"

    @property
    def limit_error(self) -> str:
        return f"{self.base}/limit/error"

    @property
    def setpoint(self) -> str:
        return f"{self.base}/site_limit/set"

    @property
    def setpoint_error(self) -> str:
        return f"{self.base}/site_limit/error"

    @property
    def ha_status(self) -> str:
        """Home Assistant's birth message ("online"): discovery is sent again."""
        return f"{self.discovery_prefix}/status"

    def config(self, component: str, object_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{object_id}/config"


def _enum(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def _phase(value: int) -> str:
    return pb.Phase.Name(value).removeprefix("PHASE_")


STATUSES = [_enum(pb.ConnectorStatus, v, "CONNECTOR_STATUS_")
            for v in pb.ConnectorStatus.values()]


# --- state payloads ------------------------------------------------------------------
def charger_payload(state: pb.AgentState) -> dict[str, Any]:
    """The charger's own state: whether it holds a lease, the term it obeys, and why it
    refuses a master's limits (empty when it obeys)."""
    return {"charger_id": state.charger_id, "lease_ok": state.lease_ok,
            "term": state.term_applied, "limits_refused": state.limits_refused_reason,
            "connectors": [c.connector_id for c in state.connectors]}


def connector_payload(c: pb.ConnectorState) -> dict[str, Any]:
    """One connector as its agent sees it; None where the meter gave nothing."""
    lines = [c.current_a.l1, c.current_a.l2, c.current_a.l3] \
        if c.HasField("current_a") and c.meter_ok else [None, None, None]
    return {"status": _enum(pb.ConnectorStatus, c.status, "CONNECTOR_STATUS_"),
            "pilot": _enum(pb.PilotState, c.pilot_state, "PILOT_STATE_"),
            "offered_a": c.offered_current_a, "max_a": c.max_current_a,
            "current_l1_a": lines[0], "current_l2_a": lines[1], "current_l3_a": lines[2],
            "power_w": c.active_power_w if c.HasField("active_power_w") else None,
            "energy_wh": c.energy_import_wh if c.HasField("energy_import_wh") else None,
            "session_energy_wh": c.session_energy_wh, "wants_power": c.wants_power,
            "meter_ok": c.meter_ok, "error_code": c.error_code}


def connector_key(charger_id: str, connector_id: int) -> str:
    """A connector's key in the group state's `connectors`."""
    return f"{segment(charger_id)}-{connector_id}"


def group_payload(status: pb.GroupStatus, *, installed_limit_a: float,
                  reasons: dict[str, str], now_unix_s: float) -> dict[str, Any]:
    """The group as its master sees it; `reasons`: connector_key -> reason in words."""
    phases = {_phase(p.phase): {
        "limit_a": p.limit_a, "ct_a": p.ct_a if p.HasField("ct_a") else None,
        "other_load_a": p.other_load_a, "reserved_offline_a": p.reserved_offline_a,
        "available_a": p.available_a, "allocated_a": p.allocated_a,
        "limit_source": p.limit_source} for p in status.phases}
    configured = status.phases[0].configured_limit_a if status.phases else None
    connectors = {connector_key(m.charger_id, c.connector_id): {
        "status": _enum(pb.ConnectorStatus, c.status, "CONNECTOR_STATUS_"),
        "offered_a": c.offered_a, "allocated_a": c.allocated_a,
        "reason": reasons.get(connector_key(m.charger_id, c.connector_id), "")}
        for m in status.members for c in m.connectors}
    return {"group": status.group, "master_id": status.master_id, "term": status.term,
            "at_unix_s": round(now_unix_s, 3),
            "mode": _enum(pb.LoadBalancingMode, status.mode, "LOAD_BALANCING_MODE_"),
            "ct_status": _enum(pb.CtStatus, status.ct_status, "CT_STATUS_"),
            "installed_limit_a": installed_limit_a, "configured_limit_a": configured,
            "members": len(status.members),
            "members_online": sum(m.online for m in status.members),
            "phases": phases, "connectors": connectors,
            "external_limits": [{"source": e.source,
                                 "limit_a": {_phase(p.phase): p.limit_a for p in e.phases},
                                 "valid_until_unix_s": e.valid_until_unix_ms / 1000 or None}
                                for e in status.external_limits]}


# --- discovery -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Entity:
    """One Home Assistant entity: its component, object id and config (without the
    shared blocks)."""

    component: str
    object_id: str
    config: dict[str, Any]


def charger_device(charger_id: str, sw_version: str) -> dict[str, Any]:
    return {"identifiers": [f"io7_{segment(charger_id)}"], "name": charger_id,
            "manufacturer": MANUFACTURER, "model": MODEL, "sw_version": sw_version}


def group_device(group: str, sw_version: str) -> dict[str, Any]:
    return {"identifiers": [f"io7_group_{segment(group)}"], "name": f"io7 group {group}",
            "manufacturer": MANUFACTURER, "model": "io7 load-balancing group",
            "sw_version": sw_version}


def _sensor(uid: str, name: str, topic: str, template: str, *, unit: str | None = None,
            device_class: str | None = None, state_class: str | None = None,
            **extra: Any) -> Entity:
    config: dict[str, Any] = {"name": name, "unique_id": uid,
                              "state_topic": topic, "value_template": template, **extra}
    for key, value in (("unit_of_measurement", unit), ("device_class", device_class),
                       ("state_class", state_class)):
        if value is not None:
            config[key] = value
    return Entity(component="sensor", object_id=uid, config=config)


def _amps(uid: str, name: str, topic: str, template: str) -> Entity:
    return _sensor(uid, name, topic, template, unit="A", device_class="current",
                   state_class="measurement")


def charger_entities(topics: Topics, state: pb.AgentState) -> list[Entity]:
    """The sensors of one charger and its connectors (its own state topics)."""
    cid = state.charger_id
    base = f"io7_{segment(cid)}"
    out = [_sensor(f"{base}_lease", "Lease from the master", topics.charger_state(cid),
                   "{{ 'ok' if value_json.lease_ok else 'fail-safe' }}",
                   device_class="enum", options=["ok", "fail-safe"],
                   entity_category="diagnostic")]
    for c in state.connectors:
        n, topic = c.connector_id, topics.connector_state(cid, c.connector_id)
        uid = f"{base}_c{n}"
        out.append(_sensor(f"{uid}_status", f"Connector {n} status", topic,
                           "{{ value_json.status }}", device_class="enum", options=STATUSES))
        out.append(_amps(f"{uid}_offered", f"Connector {n} current offered", topic,
                         "{{ value_json.offered_a }}"))
        for line in (1, 2, 3):
            out.append(_amps(f"{uid}_current_l{line}", f"Connector {n} current L{line}",
                             topic, f"{{{{ value_json.current_l{line}_a }}}}"))
        out.append(_sensor(f"{uid}_power", f"Connector {n} power", topic,
                           "{{ value_json.power_w }}", unit="W", device_class="power",
                           state_class="measurement"))
        out.append(_sensor(f"{uid}_energy", f"Connector {n} energy", topic,
                           "{{ value_json.energy_wh }}", unit="Wh", device_class="energy",
                           state_class="total_increasing"))
        out.append(_sensor(f"{uid}_session_energy", f"Connector {n} session energy", topic,
                           "{{ value_json.session_energy_wh }}", unit="Wh",
                           device_class="energy", state_class="total_increasing"))
    return out


def reason_entity(topics: Topics, charger_id: str, connector_id: int) -> Entity:
    """A connector's reason, from the group's state (module doc)."""
    key = connector_key(charger_id, connector_id)
    return _sensor(f"io7_{segment(charger_id)}_c{connector_id}_reason",
                   f"Connector {connector_id} reason", topics.group_state,
                   f"{{{{ (value_json.connectors.get('{key}') or {{}}).get('reason', "
                   "'unknown') }}")


def group_entities(topics: Topics, status: pb.GroupStatus,
                   installed_limit_a: float) -> list[Entity]:
    """The group's sensors, per phase, and the installer's "group limit" number."""
    base, topic = f"io7_group_{segment(status.group)}", topics.group_state
    out: list[Entity] = []
    for p in status.phases:
        ph = _phase(p.phase)
        at = f"value_json.phases.{ph}"
        for key, words in (("limit_a", "limit in force"), ("ct_a", "CT reading"),
                           ("other_load_a", "other load"),
                           ("reserved_offline_a", "reserved for offline chargers"),
                           ("allocated_a", "allocated")):
            out.append(_amps(f"{base}_{ph.lower()}_{key.removesuffix('_a')}",
                             f"{ph} {words}", topic, f"{{{{ {at}.{key} }}}}"))
        out.append(_sensor(f"{base}_{ph.lower()}_limit_source", f"{ph} limit set by", topic,
                           f"{{{{ {at}.limit_source }}}}"))
    out.append(_sensor(f"{base}_members_online", "Members online", topic,
                       "{{ value_json.members_online }}", state_class="measurement"))
    out.append(_sensor(f"{base}_master", "Master", topic, "{{ value_json.master_id }}",
                       entity_category="diagnostic"))
    uid = f"{base}_limit"
    out.append(Entity(component="number", object_id=uid, config={
        "name": "Group limit", "unique_id": uid,
        "command_topic": topics.limit_set, "state_topic": topic,
        "value_template": "{{ value_json.configured_limit_a }}",
        "min": MIN_CURRENT_A, "max": installed_limit_a, "step": 0.1, "mode": "box",
        "unit_of_measurement": "A", "device_class": "current",
        "entity_category": "config"}))
    return out


def discovery_messages(topics: Topics, entities: Sequence[Entity], *,
                       device: dict[str, Any], availability: Sequence[str],
                       mode: str = "latest") -> list[Message]:
    """One retained config message per entity: its config plus device, origin and
    availability (`mode`: Home Assistant's availability_mode)."""
    out = []
    for e in entities:
        config = {**e.config, "device": device, "origin": ORIGIN,
                  "availability": [{"topic": t} for t in availability],
                  "availability_mode": mode}
        out.append((topics.config(e.component, e.object_id),
                    json.dumps(config, sort_keys=True)))
    return out


def charger_discovery(topics: Topics, state: pb.AgentState, sw_version: str
                      ) -> list[Message]:
    """What each io7d announces: its charger's entities."""
    return discovery_messages(topics, charger_entities(topics, state),
                              device=charger_device(state.charger_id, sw_version),
                              availability=[topics.availability(state.charger_id)])


def group_discovery(topics: Topics, status: pb.GroupStatus, *, installed_limit_a: float,
                    members: Sequence[str], sw_version: str) -> list[Message]:
    """What the leading member announces: the group's entities, and every connector's
    reason (on its charger's device)."""
    availability = [topics.availability(cid) for cid in members]
    out = discovery_messages(topics, group_entities(topics, status, installed_limit_a),
                             device=group_device(status.group, sw_version),
                             availability=availability, mode="any")
    for m in status.members:
        for c in m.connectors:
            out += discovery_messages(
                topics, [reason_entity(topics, m.charger_id, c.connector_id)],
                device={"identifiers": [f"io7_{segment(m.charger_id)}"]},
                availability=availability, mode="any")
    return out
