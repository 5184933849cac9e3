"""The pure MQTT module (master/mqttdiscovery.py): topics, Home Assistant discovery, state
payloads. Every value_template must name a key its state payload has."""

from __future__ import annotations

import json
import re
from typing import Any

from master.mqttdiscovery import (
    Topics,
    charger_discovery,
    charger_payload,
    connector_key,
    connector_payload,
    group_discovery,
    group_payload,
    segment,
)
from protos.io7.cluster.v1 import cluster_pb2 as pb

T = Topics(prefix="io7", discovery_prefix="homeassistant", group="garage")


def agent_state(cid: str = "io7-01") -> pb.AgentState:
    def conn(n: int, meter_ok: bool) -> pb.ConnectorState:
        return pb.ConnectorState(
            connector_id=n, status=pb.CONNECTOR_STATUS_CHARGING, pilot_state=pb.PILOT_STATE_C,
            offered_current_a=16.0, max_current_a=32.0, meter_ok=meter_ok,
            current_a=pb.LineValues(l1=15.5, l2=15.4, l3=0.0), active_power_w=7100.0,
            energy_import_wh=123456.0, session_energy_wh=2500.0, wants_power=True)
    return pb.AgentState(charger_id=cid, lease_ok=True, term_applied=4,
                         connectors=[conn(1, True), conn(2, False)])


def group_status() -> pb.GroupStatus:
    phases = [pb.PhaseStatus(phase=p, limit_a=20.0, configured_limit_a=32.0, allocated_a=16.0,
                             limit_source="home energy manager (MQTT) until 17:30")
              for p in (pb.PHASE_L1, pb.PHASE_L2, pb.PHASE_L3)]
    members = [pb.MemberStatus(charger_id=cid, online=True, connectors=[
        pb.ConnectorStatusView(connector_id=n, status=pb.CONNECTOR_STATUS_CHARGING,
                               offered_a=8.0, allocated_a=8.0)
        for n in (1, 2)]) for cid in ("io7-01", "io7-02")]
    return pb.GroupStatus(group="garage", term=4, master_id="io7-01", phases=phases,
                          members=members)


def configs(messages: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    return {topic: json.loads(payload) for topic, payload in messages}


def template_keys(template: str) -> list[str]:
    """The path after value_json, split: "value_json.phases.L1.ct_a" -> phases, L1, ct_a."""
    found = re.search(r"value_json\.([A-Za-z0-9_.]+)", template)
    return found.group(1).split(".") if found else []


def test_a_charger_id_or_group_with_topic_characters_becomes_one_safe_level() -> None:
    assert segment("a/b+c#d e") == "a_b_c_d_e"
    assert segment("io7-01.x_y") == "io7-01.x_y"
    t = Topics(prefix="site/io7", discovery_prefix="ha", group="car park/+")
    assert t.availability("io7/01") == "site/io7/car_park__/io7_01/availability"
    assert t.setpoint == "site/io7/car_park__/site_limit/set"


def test_charger_discovery_has_unique_ids_a_device_availability_and_known_templates() -> None:
    state = agent_state()
    found = configs(charger_discovery(T, state, "1.2.3"))
    uids = [c["unique_id"] for c in found.values()]
    assert len(uids) == len(set(uids)) == 1 + 2 * 8  # lease + per connector 8 sensors
    payloads = {T.charger_state("io7-01"): charger_payload(state),
                T.connector_state("io7-01", 1): connector_payload(state.connectors[0]),
                T.connector_state("io7-01", 2): connector_payload(state.connectors[1])}
    for topic, c in found.items():
        assert topic == f"homeassistant/sensor/{c['unique_id']}/config"
        assert c["device"]["identifiers"] == ["io7_io7-01"]
        assert c["device"]["manufacturer"] == "Ratio" and c["device"]["sw_version"] == "1.2.3"
        assert c["availability"] == [{"topic": "io7/garage/io7-01/availability"}]
        assert c["origin"]["name"] == "io7d"
        keys = template_keys(c["value_template"])
        assert keys and all(k in payloads[c["state_topic"]] for k in keys), c
    energy = found["homeassistant/sensor/io7_io7-01_c1_energy/config"]
    assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) \
        == ("energy", "total_increasing", "Wh")
    status = found["homeassistant/sensor/io7_io7-01_c2_status/config"]
    assert "charging" in status["options"] and status["device_class"] == "enum"


def test_group_discovery_a_number_for_the_limit_up_to_the_installed_limit() -> None:
    found = configs(group_discovery(T, group_status(), installed_limit_a=32.0,
                                    members=["io7-01", "io7-02"], sw_version="1"))
    number = found["homeassistant/number/io7_group_garage_limit/config"]
    assert number["command_topic"] == "io7/garage/limit/set"
    assert (number["min"], number["max"], number["entity_category"]) == (6.0, 32.0, "config")
    assert number["availability_mode"] == "any"
    assert [a["topic"] for a in number["availability"]] == [
        "io7/garage/io7-01/availability", "io7/garage/io7-02/availability"]
    payload = group_payload(group_status(), installed_limit_a=32.0, reasons={}, now_unix_s=0)
    for c in found.values():
        keys = template_keys(c["value_template"])
        assert keys[0] in payload, c
        if keys[0] == "phases":
            assert keys[2] in payload["phases"][keys[1]]
    assert "homeassistant/sensor/io7_group_garage_l2_ct/config" in found
    reason = found["homeassistant/sensor/io7_io7-02_c1_reason/config"]
    assert reason["device"] == {"identifiers": ["io7_io7-02"]}  # on the charger's device
    assert reason["state_topic"] == "io7/garage/state"
    assert "'io7-02-1'" in reason["value_template"]


def test_connector_payload_gives_no_currents_when_the_meter_is_not_ok() -> None:
    ok, broken = (connector_payload(c) for c in agent_state().connectors)
    assert (ok["status"], ok["pilot"], ok["offered_a"]) == ("charging", "c", 16.0)
    assert (ok["current_l1_a"], ok["current_l3_a"]) == (15.5, 0.0)
    assert broken["current_l1_a"] is None and broken["meter_ok"] is False


def test_group_payload_phases_reasons_and_external_limits() -> None:
    status = group_status()
    status.external_limits.add(source="home energy manager (MQTT)", valid_until_unix_ms=5000,
                               phases=[pb.PhaseLimit(phase=pb.PHASE_L1, limit_a=20.0)])
    key = connector_key("io7-02", 1)
    p = group_payload(status, installed_limit_a=32.0, now_unix_s=12.5,
                      reasons={key: "limited by phase L2 of the group"})
    assert p["phases"]["L2"]["limit_a"] == 20.0 and p["phases"]["L2"]["ct_a"] is None
    assert p["phases"]["L1"]["limit_source"].startswith("home energy manager (MQTT)")
    assert (p["configured_limit_a"], p["installed_limit_a"]) == (32.0, 32.0)
    assert p["connectors"][key]["reason"] == "limited by phase L2 of the group"
    assert p["external_limits"] == [{"source": "home energy manager (MQTT)",
                                     "limit_a": {"L1": 20.0}, "valid_until_unix_s": 5.0}]
    assert p["members_online"] == 2
