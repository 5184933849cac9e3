"""One io7d's /metrics (issue 14 §3), built at scrape time from what it knows. Pure.

`StationCollector` is a prometheus-client custom Collector: at each scrape it calls its
`read()` for a `Scrape` (the group's latest status and counters while this member leads,
this charger's own AgentState, the election) and turns it into metric families. Nothing
runs per cycle: the cycle only keeps its counters (master/cyclestats.py, the agent's
`LimitApplier.lease_expiries`).

Rules:
1. Names follow Prometheus' conventions: prefix io7_, base units (amperes, seconds,
   joules, volts, watts), counters end in _total. A state or a reason is a label of a
   gauge whose one series (the current one) is 1, so `io7_connector_reason == 1` lists
   why each connector got what it got; labels are group, phase (a site phase), charger,
   connector, line (a connector's own line) and the state or reason.
2. The group's families (io7_group_*, io7_phase_*, io7_connector_*, io7_member_*,
   io7_cycle_duration_seconds, io7_ct_read_errors_total) come from the leading member
   only: a follower has no current status, and two members serving one group's series
   would count it twice in every sum. `io7_group_cycle` names the cycle they describe.
3. Every member serves its own charger (io7_charger_*, io7_ocpp_*, from its agent, as
   its agent would report it to the master) and the election as it sees it
   (io7_election_*).
4. Absent is absent, never 0: a phase without a CT clamp has no io7_phase_ct_amperes, a
   connector without a meter reading no draw, a charger without OCPP no io7_ocpp_*.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from master.cyclestats import CycleStats
from protos.io7.cluster.v1 import cluster_pb2 as pb

J_PER_WH = 3600.0  # base unit of energy: joules
LINES = ("L1", "L2", "L3")


@dataclass(frozen=True, slots=True, kw_only=True)
class Election:
    """The election as this member sees it (master.web.station.Station.election)."""

    term: int
    leader_id: str | None
    leading: bool
    members: Mapping[str, bool] = field(default_factory=dict)  # charger id -> online


@dataclass(frozen=True, slots=True, kw_only=True)
class Ocpp:
    """This charger's back-office link: its state (agent.ocpp.connection.LinkState's
    value, "accepted" when in service) and the messages waiting in its durable outbox."""

    state: str
    queued: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Scrape:
    """Everything one scrape reports. `status`/`stats`: the group's, only while this
    member leads (rule 2)."""

    group: str
    charger_id: str
    charger: pb.AgentState
    lease_expiries: int
    election: Election
    ocpp: Ocpp | None = None
    status: pb.GroupStatus | None = None
    stats: CycleStats | None = None


def _word(enum: object, value: int, prefix: str) -> str:
    """An enum value as a label: LIMIT_REASON_PHASE_LIMIT -> "phase_limit"."""
    name: str = enum.Name(value)  # type: ignore[attr-defined]
    return name.removeprefix(prefix).lower()


def _phase(value: int) -> str:
    return "" if value == pb.PHASE_UNSPECIFIED else pb.Phase.Name(value).removeprefix("PHASE_")


def _line_values(values: pb.LineValues) -> tuple[float, float, float]:
    return (values.l1, values.l2, values.l3)


class _Families:
    """Families by name, created on first use with their labels and help."""

    def __init__(self) -> None:
        self.out: dict[str, Metric] = {}
        self._gauges: dict[str, GaugeMetricFamily] = {}
        self._counters: dict[str, CounterMetricFamily] = {}

    def gauge(self, name: str, doc: str, labels: Sequence[str], values: Sequence[str],
              value: float) -> None:
        fam = self._gauges.get(name)
        if fam is None:
            fam = self._gauges[name] = GaugeMetricFamily(name, doc, labels=labels)
            self.out[name] = fam
        fam.add_metric(values, value)

    def counter(self, name: str, doc: str, labels: Sequence[str], values: Sequence[str],
                value: float) -> None:
        fam = self._counters.get(name)
        if fam is None:
            fam = self._counters[name] = CounterMetricFamily(name, doc, labels=labels)
            self.out[name] = fam
        fam.add_metric(values, value)


PHASE_GAUGES = (  # (metric, PhaseStatus field, help)
    ("io7_phase_limit_amperes", "limit_a", "Per-phase limit in force this cycle."),
    ("io7_phase_configured_limit_amperes", "configured_limit_a",
     "The group's per-phase limit as configured or set (io7ctl set-limit, the web UI)."),
    ("io7_phase_other_load_amperes", "other_load_a",
     "Load that is not the group's chargers (0 in static mode)."),
    ("io7_phase_reserved_offline_amperes", "reserved_offline_a",
     "Reserved for offline members (their last grant, then their fail-safe current)."),
    ("io7_phase_available_amperes", "available_a",
     "What the allocation could share: limit - other loads - margin - reserved."),
    ("io7_phase_allocated_amperes", "allocated_a",
     "Sum of the limits given to connectors loading this phase."),
)


def group_families(f: _Families, s: pb.GroupStatus, stats: CycleStats | None) -> None:
    """Rule 2: the leading member's families."""
    g = s.group
    f.gauge("io7_group_cycle", "Cycle number of the status these group metrics describe.",
            ["group"], [g], s.cycle)
    f.gauge("io7_group_info", "The group's master and settings (value 1).",
            ["group", "master", "mode", "offline_strategy", "ct_placement"],
            [g, s.master_id, _word(pb.LoadBalancingMode, s.mode, "LOAD_BALANCING_MODE_"),
             _word(pb.OfflineStrategy, s.offline_strategy, "OFFLINE_STRATEGY_"),
             _word(pb.CtPlacement, s.ct_placement, "CT_PLACEMENT_")], 1)
    f.gauge("io7_group_ct_status", "Health of the CT kit reading (value 1 for the current "
            "status; the fault text is in io7ctl status).", ["group", "status"],
            [g, _word(pb.CtStatus, s.ct_status, "CT_STATUS_")], 1)
    for p in s.phases:
        labels = [g, _phase(p.phase)]
        for name, attr, doc in PHASE_GAUGES:
            f.gauge(name, doc, ["group", "phase"], labels, getattr(p, attr))
        if p.HasField("ct_a"):  # rule 4
            f.gauge("io7_phase_ct_amperes", "CT kit reading.", ["group", "phase"], labels,
                    p.ct_a)
        f.gauge("io7_phase_limit_source", "What sets the limit in force (value 1).",
                ["group", "phase", "source"], [*labels, p.limit_source], 1)
    for e in s.external_limits:
        for lim in e.phases:
            f.gauge("io7_external_limit_amperes", "An external limit in force (back office, "
                    "energy manager, MQTT setpoint).", ["group", "phase", "source"],
                    [g, _phase(lim.phase), e.source], lim.limit_a)
    for m in s.members:
        f.gauge("io7_member_online", "1 while the member's stream is open and its state "
                "fresh.", ["group", "charger"], [g, m.charger_id], 1 if m.online else 0)
        for c in m.connectors:
            _connector(f, g, m.charger_id, c)
    if stats is not None:
        _cycle_histogram(f, g, stats)
        f.counter("io7_ct_read_errors", "CT kit reads that failed or were refused, since "
                  "this master started.", ["group"], [g], stats.ct_read_errors)


def _connector(f: _Families, g: str, cid: str, c: pb.ConnectorStatusView) -> None:
    base = ["group", "charger", "connector"]
    labels = [g, cid, str(c.connector_id)]
    f.gauge("io7_connector_offered_amperes", "What the pilot offers now, as the agent "
            "reports it.", base, labels, c.offered_a)
    f.gauge("io7_connector_allocated_amperes", "What the master allocated this cycle.",
            base, labels, c.allocated_a)
    f.gauge("io7_connector_session_energy_joules", "Energy delivered in this session.",
            base, labels, c.session_energy_wh * J_PER_WH)
    f.gauge("io7_connector_status", "OCPP status and pilot state (value 1).",
            [*base, "status", "pilot"],
            [*labels, _word(pb.ConnectorStatus, c.status, "CONNECTOR_STATUS_"),
             _word(pb.PilotState, c.pilot_state, "PILOT_STATE_").upper()], 1)
    f.gauge("io7_connector_reason", "Why the connector got its allocation this cycle, and "
            "the site phase that bound it (value 1).", [*base, "reason", "phase"],
            [*labels, _word(pb.LimitReason, c.reason, "LIMIT_REASON_"),
             _phase(c.limiting_phase)], 1)
    if not c.HasField("measured_a"):  # rule 4
        return
    wiring = [_phase(c.wiring.l1), _phase(c.wiring.l2), _phase(c.wiring.l3)]
    unknown = not any(wiring)  # an older master sends no wiring: every line
    for line, site, amps in zip(LINES, wiring, _line_values(c.measured_a), strict=True):
        if site or unknown:
            f.gauge("io7_connector_draw_amperes", "Measured current per connector line "
                    "(phase: the site phase that line is wired to).",
                    [*base, "line", "phase"], [*labels, line, site], amps)


def _cycle_histogram(f: _Families, g: str, stats: CycleStats) -> None:
    fam = HistogramMetricFamily("io7_cycle_duration_seconds", "How long each control cycle "
                                "took (CT poll, allocation, Limits queued), since this "
                                "master started.", labels=["group"])
    buckets = [(f"{b:g}", float(n)) for b, n in zip(stats.buckets_s, stats.bucket_counts,
                                                    strict=True)]
    fam.add_metric([g], [*buckets, ("+Inf", float(stats.count))], stats.sum_s)
    f.out[fam.name] = fam


def charger_families(f: _Families, sc: Scrape) -> None:
    """Rule 3: this charger's own families, every member."""
    a, me = sc.charger, [sc.charger_id]
    f.gauge("io7_charger_lease_ok", "1 while the agent holds an unexpired lease from its "
            "master; 0: it runs on its fail-safe current.", ["charger"], me,
            1 if a.lease_ok else 0)
    f.counter("io7_charger_lease_expiries", "Leases that ran out before the master renewed "
              "them (the agent then fell to its fail-safe current).", ["charger"], me,
              sc.lease_expiries)
    f.gauge("io7_charger_term_applied", "Term of the Limits the agent obeys (0: none).",
            ["charger"], me, a.term_applied)
    if a.limits_refused_reason:
        f.gauge("io7_charger_limits_refused", "The agent refuses its master's Limits, and "
                "why (value 1).", ["charger", "reason"], [*me, a.limits_refused_reason], 1)
    for c in a.connectors:
        base, labels = ["charger", "connector"], [*me, str(c.connector_id)]
        f.gauge("io7_charger_offered_amperes", "What this charger's pilot offers now.",
                base, labels, c.offered_current_a)
        f.gauge("io7_charger_max_amperes", "The connector's maximum now (hard max, EV, "
                "OCPP profile).", base, labels, c.max_current_a)
        f.gauge("io7_charger_connector_status", "OCPP status, pilot state and OCPP error "
                "code (value 1).", [*base, "status", "pilot", "error"],
                [*labels, _word(pb.ConnectorStatus, c.status, "CONNECTOR_STATUS_"),
                 _word(pb.PilotState, c.pilot_state, "PILOT_STATE_").upper(),
                 c.error_code], 1)
        f.gauge("io7_charger_session_energy_joules", "Energy delivered in this session.",
                base, labels, c.session_energy_wh * J_PER_WH)
        if c.HasField("current_a"):
            for line, amps in zip(LINES, _line_values(c.current_a), strict=True):
                f.gauge("io7_charger_draw_amperes", "Measured current per connector line.",
                        [*base, "line"], [*labels, line], amps)
        if c.HasField("voltage_v"):
            for line, volts in zip(LINES, _line_values(c.voltage_v), strict=True):
                f.gauge("io7_charger_voltage_volts", "Measured voltage per connector line.",
                        [*base, "line"], [*labels, line], volts)
        if c.HasField("active_power_w"):
            f.gauge("io7_charger_power_watts", "Measured active power.", base, labels,
                    c.active_power_w)
        if c.HasField("energy_import_wh"):
            f.counter("io7_charger_energy_imported_joules", "The meter's imported-energy "
                      "register.", base, labels, c.energy_import_wh * J_PER_WH)
    if sc.ocpp is not None:
        f.gauge("io7_ocpp_connection_state", "The back-office link's state (value 1).",
                ["charger", "state"], [*me, sc.ocpp.state], 1)
        f.gauge("io7_ocpp_connected", "1 while the back office has accepted this charger.",
                ["charger"], me, 1 if sc.ocpp.state == "accepted" else 0)
        f.gauge("io7_ocpp_queue_messages", "OCPP messages waiting in the durable outbox.",
                ["charger"], me, sc.ocpp.queued)


def election_families(f: _Families, sc: Scrape) -> None:
    e, g = sc.election, sc.group
    f.gauge("io7_election_term", "The election's term as this member sees it.", ["group"],
            [g], e.term)
    if e.leader_id is not None:
        f.gauge("io7_election_leader", "The member this member follows (value 1; absent "
                "during an election).", ["group", "charger"], [g, e.leader_id], 1)
    f.gauge("io7_election_leading", "1 while this member leads the group.",
            ["group", "charger"], [g, sc.charger_id], 1 if e.leading else 0)
    for cid, up in sorted(e.members.items()):
        f.gauge("io7_election_member_up", "Members this member hears (a follower sees its "
                "leader and itself).", ["group", "charger"], [g, cid], 1 if up else 0)


def families(sc: Scrape) -> list[Metric]:
    """Every family of one scrape, in a stable order."""
    f = _Families()
    election_families(f, sc)
    charger_families(f, sc)
    if sc.status is not None:
        group_families(f, sc.status, sc.stats)
    return list(f.out.values())


class StationCollector(Collector):
    """Calls `read` at each scrape (module doc); register it in a CollectorRegistry."""

    def __init__(self, read: Callable[[], Scrape]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        return families(self.read())

    def describe(self) -> Iterator[Metric]:
        return iter(())  # unchecked: the families depend on the scrape
