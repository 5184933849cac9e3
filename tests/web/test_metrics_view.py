"""The pure /metrics view (master/metricsview.py): a worked group status and charger state
in, the Prometheus text format out, read back by prometheus-client's own parser."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from master.cyclestats import CycleStats
from master.metricsview import Election, Ocpp, Scrape, StationCollector
from protos.io7.cluster.v1 import cluster_pb2 as pb

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(sc: Scrape) -> tuple[Samples, dict[str, str]]:
    """Every sample of one scrape by (name, labels), and each family's type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StationCollector(lambda: sc))
    text = generate_latest(registry).decode()
    samples: Samples = {}
    types = {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = s.value
    return samples, types


def v(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def status() -> pb.GroupStatus:
    """Group garage, static 32 A: L1 without a CT clamp, L2 with one; io7-01 charging on
    three phases (its line L1 on site L2: rotation), io7-02 offline."""
    s = pb.GroupStatus(group="garage", term=7, cycle=1234, master_id="io7-01",
                       mode=pb.LOAD_BALANCING_MODE_DYNAMIC, ct_status=pb.CT_STATUS_OK,
                       offline_strategy=pb.OFFLINE_STRATEGY_MINIMISE,
                       ct_placement=pb.CT_PLACEMENT_GRID)
    s.phases.add(phase=pb.PHASE_L1, limit_a=32.0, other_load_a=0.0, reserved_offline_a=6.0,
                 available_a=26.0, allocated_a=16.0, configured_limit_a=32.0,
                 limit_source="installed limit")
    s.phases.add(phase=pb.PHASE_L2, limit_a=25.0, ct_a=21.5, other_load_a=5.5,
                 reserved_offline_a=6.0, available_a=13.5, allocated_a=13.5,
                 configured_limit_a=32.0, limit_source="energy manager (MQTT)")
    e = s.external_limits.add(source="energy manager (MQTT)")
    e.phases.add(phase=pb.PHASE_L2, limit_a=25.0)
    m1 = s.members.add(charger_id="io7-01", online=True)
    c = m1.connectors.add(connector_id=1, status=pb.CONNECTOR_STATUS_CHARGING,
                          pilot_state=pb.PILOT_STATE_C, offered_a=13.5, allocated_a=13.5,
                          reason=pb.LIMIT_REASON_PHASE_LIMIT, limiting_phase=pb.PHASE_L2,
                          session_energy_wh=1500.0)
    c.measured_a.CopyFrom(pb.LineValues(l1=13.2, l2=13.1, l3=0.0))
    c.wiring.CopyFrom(pb.ConnectorWiring(l1=pb.PHASE_L2, l2=pb.PHASE_L1))  # l3 not wired
    m1.connectors.add(connector_id=2, status=pb.CONNECTOR_STATUS_AVAILABLE,
                      pilot_state=pb.PILOT_STATE_A, reason=pb.LIMIT_REASON_NO_DEMAND)
    s.members.add(charger_id="io7-02", online=False, offline_reason="stream closed")
    return s


def charger() -> pb.AgentState:
    a = pb.AgentState(charger_id="io7-01", term_applied=7, cycle_applied=1233, lease_ok=True)
    c = a.connectors.add(connector_id=1, status=pb.CONNECTOR_STATUS_CHARGING,
                         pilot_state=pb.PILOT_STATE_C, error_code="NoError",
                         offered_current_a=13.5, max_current_a=32.0, energy_import_wh=2000.0,
                         session_energy_wh=1500.0, active_power_w=6072.0)
    c.current_a.CopyFrom(pb.LineValues(l1=13.2, l2=13.1, l3=0.0))
    c.voltage_v.CopyFrom(pb.LineValues(l1=230.0, l2=231.0, l3=229.0))
    a.connectors.add(connector_id=2, status=pb.CONNECTOR_STATUS_AVAILABLE,
                     pilot_state=pb.PILOT_STATE_A, error_code="NoError")
    return a


def leader() -> Scrape:
    stats = CycleStats(buckets_s=(0.01, 0.1))
    for took in (0.004, 0.02, 0.5):
        stats.cycle(took)
    stats.ct_error()
    return Scrape(group="garage", charger_id="io7-01", charger=charger(), lease_expiries=2,
                  election=Election(term=7, leader_id="io7-01", leading=True,
                                    members={"io7-01": True, "io7-02": False}),
                  ocpp=Ocpp(state="accepted", queued=3), status=status(), stats=stats)


def test_per_phase_values_and_their_units() -> None:
    s, types = scrape(leader())
    g2 = {"group": "garage", "phase": "L2"}
    assert v(s, "io7_phase_limit_amperes", **g2) == 25.0
    assert v(s, "io7_phase_configured_limit_amperes", **g2) == 32.0
    assert v(s, "io7_phase_ct_amperes", **g2) == 21.5
    assert v(s, "io7_phase_other_load_amperes", **g2) == 5.5
    assert v(s, "io7_phase_reserved_offline_amperes", **g2) == 6.0
    assert v(s, "io7_phase_available_amperes", **g2) == 13.5
    assert v(s, "io7_phase_allocated_amperes", **g2) == 13.5
    assert v(s, "io7_phase_limit_source", **g2, source="energy manager (MQTT)") == 1
    assert v(s, "io7_external_limit_amperes", **g2, source="energy manager (MQTT)") == 25.0
    # L1 has no clamp: no CT series at all, never 0 (rule 4)
    assert ("io7_phase_ct_amperes", frozenset({"group": "garage", "phase": "L1"}.items())) \
        not in s
    assert v(s, "io7_group_cycle", group="garage") == 1234
    assert v(s, "io7_group_ct_status", group="garage", status="ok") == 1
    assert v(s, "io7_group_info", group="garage", master="io7-01", mode="dynamic",
             offline_strategy="minimise", ct_placement="grid") == 1
    assert types["io7_phase_limit_amperes"] == "gauge"


def test_per_connector_offer_draw_status_and_reason() -> None:
    s, _ = scrape(leader())
    c1 = {"group": "garage", "charger": "io7-01", "connector": "1"}
    assert v(s, "io7_connector_offered_amperes", **c1) == 13.5
    assert v(s, "io7_connector_allocated_amperes", **c1) == 13.5
    assert v(s, "io7_connector_session_energy_joules", **c1) == 1500.0 * 3600
    assert v(s, "io7_connector_status", **c1, status="charging", pilot="C") == 1
    assert v(s, "io7_connector_reason", **c1, reason="phase_limit", phase="L2") == 1
    # line L1 is wired to site L2 (rotation); the unwired L3 has no series
    assert v(s, "io7_connector_draw_amperes", **c1, line="L1", phase="L2") == 13.2
    assert v(s, "io7_connector_draw_amperes", **c1, line="L2", phase="L1") == 13.1
    draws = [k for k in s if k[0] == "io7_connector_draw_amperes"]
    assert len(draws) == 2
    c2 = {"group": "garage", "charger": "io7-01", "connector": "2"}
    assert v(s, "io7_connector_reason", **c2, reason="no_demand", phase="") == 1
    assert v(s, "io7_member_online", group="garage", charger="io7-02") == 0
    assert v(s, "io7_member_online", group="garage", charger="io7-01") == 1


def test_cycle_histogram_and_counters() -> None:
    s, types = scrape(leader())
    g = {"group": "garage"}
    assert types["io7_cycle_duration_seconds"] == "histogram"
    assert v(s, "io7_cycle_duration_seconds_bucket", **g, le="0.01") == 1
    assert v(s, "io7_cycle_duration_seconds_bucket", **g, le="0.1") == 2
    assert v(s, "io7_cycle_duration_seconds_bucket", **g, le="+Inf") == 3
    assert v(s, "io7_cycle_duration_seconds_count", **g) == 3
    assert abs(v(s, "io7_cycle_duration_seconds_sum", **g) - 0.524) < 1e-9
    assert types["io7_ct_read_errors"] == "counter"
    assert v(s, "io7_ct_read_errors_total", **g) == 1
    assert v(s, "io7_charger_lease_expiries_total", charger="io7-01") == 2


def test_own_charger_ocpp_and_election() -> None:
    s, _ = scrape(leader())
    c1 = {"charger": "io7-01", "connector": "1"}
    assert v(s, "io7_charger_offered_amperes", **c1) == 13.5
    assert v(s, "io7_charger_max_amperes", **c1) == 32.0
    assert v(s, "io7_charger_draw_amperes", **c1, line="L2") == 13.1
    assert v(s, "io7_charger_voltage_volts", **c1, line="L3") == 229.0
    assert v(s, "io7_charger_power_watts", **c1) == 6072.0
    assert v(s, "io7_charger_energy_imported_joules_total", **c1) == 2000.0 * 3600
    assert v(s, "io7_charger_connector_status", **c1, status="charging", pilot="C",
             error="NoError") == 1
    assert v(s, "io7_charger_lease_ok", charger="io7-01") == 1
    assert v(s, "io7_charger_term_applied", charger="io7-01") == 7
    assert v(s, "io7_ocpp_connection_state", charger="io7-01", state="accepted") == 1
    assert v(s, "io7_ocpp_connected", charger="io7-01") == 1
    assert v(s, "io7_ocpp_queue_messages", charger="io7-01") == 3
    assert v(s, "io7_election_term", group="garage") == 7
    assert v(s, "io7_election_leader", group="garage", charger="io7-01") == 1
    assert v(s, "io7_election_leading", group="garage", charger="io7-01") == 1
    assert v(s, "io7_election_member_up", group="garage", charger="io7-02") == 0


def test_a_follower_serves_its_charger_and_the_election_but_no_group_series() -> None:
    a = pb.AgentState(charger_id="io7-02", term_applied=7, lease_ok=False,
                      limits_refused_reason="term 6 is older than 7")
    sc = Scrape(group="garage", charger_id="io7-02", charger=a, lease_expiries=0,
                election=Election(term=7, leader_id="io7-01", leading=False))
    s, _ = scrape(sc)
    names = {k[0] for k in s}
    assert not {n for n in names if n.startswith(("io7_phase_", "io7_connector_", "io7_group",
                                                  "io7_cycle", "io7_ct_", "io7_member"))}
    assert not {n for n in names if n.startswith("io7_ocpp_")}  # no OCPP configured
    assert v(s, "io7_election_leader", group="garage", charger="io7-01") == 1
    assert v(s, "io7_election_leading", group="garage", charger="io7-02") == 0
    assert v(s, "io7_charger_lease_ok", charger="io7-02") == 0
    assert v(s, "io7_charger_limits_refused", charger="io7-02",
             reason="term 6 is older than 7") == 1


def test_during_an_election_there_is_no_leader_series() -> None:
    sc = Scrape(group="garage", charger_id="io7-02", charger=pb.AgentState(), lease_expiries=0,
                election=Election(term=8, leader_id=None, leading=False))
    s, _ = scrape(sc)
    assert not [k for k in s if k[0] == "io7_election_leader"]
    assert v(s, "io7_election_term", group="garage") == 8


def test_an_unmeasured_connector_has_no_draw_and_unknown_wiring_shows_every_line() -> None:
    s = status()
    s.members[0].connectors[1].measured_a.CopyFrom(pb.LineValues(l1=1.0, l2=2.0, l3=3.0))
    s.members[0].connectors[0].ClearField("measured_a")  # rule 4: not measured
    sc = Scrape(group="garage", charger_id="io7-01", charger=pb.AgentState(),
                lease_expiries=0, election=Election(term=7, leader_id="io7-01", leading=True),
                status=s)
    got, _ = scrape(sc)
    draws = {(dict(k[1])["connector"], dict(k[1])["line"], dict(k[1])["phase"]): val
             for k, val in got.items() if k[0] == "io7_connector_draw_amperes"}
    # connector 1: not measured, no series; connector 2: no wiring sent, every line
    assert draws == {("2", "L1", ""): 1.0, ("2", "L2", ""): 2.0, ("2", "L3", ""): 3.0}
    assert not [k for k in got if k[0] == "io7_cycle_duration_seconds_count"]  # no stats
