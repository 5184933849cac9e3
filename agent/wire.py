"""Protobuf <-> the agent's domain types, on the AgentLink stream. Only translation: no
rules live here (master/wire.py is the other end).

Outgoing: the Hello (charger id, group, connectors with wiring and ratings) and each
step's AgentState, built from the config and the step's results. Incoming: a Limits
message becomes `MasterLimits`, whose own validation judges it; the applier
(agent/limits.py) decides whether to obey it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from agent.config import AgentConfig
from agent.connector import ConnectorOutput
from agent.faults import OcppStatus
from agent.limits import LimitApplier, MasterLimits
from agent.ocpp.stationlimit import StationLimit
from hw.capabilities import MeterReading
from hw.pilot import PilotState
from master.allocation import Phase
from protos.io7.cluster.v1 import cluster_pb2 as pb

SOFTWARE_VERSION = "io7-cluster 0.1.0"
_PILOT_OUT = {s: pb.PilotState.Value(f"PILOT_STATE_{s.name}") for s in PilotState}
_STATUS_OUT = {
    OcppStatus.AVAILABLE: pb.CONNECTOR_STATUS_AVAILABLE,
    OcppStatus.PREPARING: pb.CONNECTOR_STATUS_PREPARING,
    OcppStatus.CHARGING: pb.CONNECTOR_STATUS_CHARGING,
    OcppStatus.SUSPENDED_EVSE: pb.CONNECTOR_STATUS_SUSPENDED_EVSE,
    OcppStatus.SUSPENDED_EV: pb.CONNECTOR_STATUS_SUSPENDED_EV,
    OcppStatus.FINISHING: pb.CONNECTOR_STATUS_FINISHING,
    OcppStatus.UNAVAILABLE: pb.CONNECTOR_STATUS_UNAVAILABLE,
    OcppStatus.FAULTED: pb.CONNECTOR_STATUS_FAULTED,
}
_PHASE_OUT = {None: pb.PHASE_UNSPECIFIED, Phase.L1: pb.PHASE_L1, Phase.L2: pb.PHASE_L2,
              Phase.L3: pb.PHASE_L3}


def hello(config: AgentConfig, last_seen_term: int) -> pb.Hello:
    """The first message on the stream: who this charger is and what it has."""
    connectors = []
    for c in config.connectors:
        w = [*c.wiring, None, None][:3]
        connectors.append(pb.ConnectorInfo(
            connector_id=c.connector_id, hard_max_current_a=c.hard_max_a,
            wiring=pb.ConnectorWiring(l1=_PHASE_OUT[w[0]], l2=_PHASE_OUT[w[1]],
                                      l3=_PHASE_OUT[w[2]])))
    return pb.Hello(charger_id=config.charger_id, group=config.group,
                    software_version=SOFTWARE_VERSION,
                    charger_current_limit_a=config.charger_limit_a,
                    connectors=connectors, last_seen_term=last_seen_term)


def master_limits(limits: pb.Limits) -> MasterLimits:
    """A Limits message as the applier takes it; ValueError (InvalidLimitsError) if it
    is not valid."""
    return MasterLimits(term=limits.term, cycle=limits.cycle,
                        valid_for_s=limits.valid_for_ms / 1000.0,
                        failsafe_current_a=limits.failsafe_current_a,
                        currents_a={c.connector_id: c.current_a for c in limits.connectors})


# A line carrying more than this is loaded by the EV (meter noise stays well below).
LOADED_ABOVE_A = 1.0


def session_lines(seen: int, phase_currents_a: Sequence[float]) -> int:
    """The lines (bit k: connector line L(k+1)) the EV has loaded in this session: `seen`
    so far plus those loaded now. The agent keeps it from plug-in to plug-out, through
    pauses, so the master keeps counting a paused single-phase car on its one line
    (issue 12 §2; proto ConnectorState.phases_in_use: 0 = not learned yet)."""
    now = sum(1 << k for k, a in enumerate(phase_currents_a[:3]) if a > LOADED_ABOVE_A)
    return seen | now


# 16 hex digits (64 bits) of HMAC-SHA256: no two cards of a site collide in practice,
# and the idTag itself never leaves the charger (issue 12 §3).
PSEUDONYM_HEX = 16


def tag_key(group: str, ca_certificate: bytes = b"") -> bytes:
    """The key of the site's tag pseudonyms: the group name and the site CA certificate
    (the same on every charger of the site, different between sites, so one card is one
    pseudonym across the group and cannot be linked between sites). Not a secret from
    someone holding that certificate: it keeps idTags out of the master's database and
    logs, it does not stop a brute force over a card's few bytes by an insider."""
    return hashlib.sha256(b"io7 tag pseudonym v1\0" + group.encode() + b"\0"
                          + ca_certificate).digest()


def tag_pseudonym(id_tag: str, key: bytes) -> str:
    """The keyed hash the master learns a card's habits under (proto
    ConnectorState.tag_pseudonym); "" for no idTag."""
    if not id_tag:
        return ""
    mac = hmac.new(key, id_tag.strip().upper().encode(), hashlib.sha256)
    return mac.hexdigest()[:PSEUDONYM_HEX]


def agent_state(config: AgentConfig, *, sequence: int, now: float, applier: LimitApplier,
                outputs: Mapping[int, ConnectorOutput],
                meters: Mapping[int, MeterReading | None],
                pilots: Mapping[int, PilotState], max_current_a: Mapping[int, float],
                session_start_wh: Mapping[int, float],
                station_limit: StationLimit | None = None,
                lines_seen: Mapping[int, int] | None = None,
                id_tags: Mapping[int, str] | None = None, key: bytes = b"") -> pb.AgentState:
    """One step's AgentState: the applier's term, cycle and lease, and per connector its
    pilot, status, offer and meter (a dead meter is `meter_ok = false`, never 0 A); the
    back office's ChargePointMaxProfile in force, if any (agent.ocpp.stationlimit); the
    pseudonym of the session's idTag (`id_tags`, from agent.ocpp.sessions), keyed with
    `key` (tag_key); the Charger Current Limit in force (the master takes a change made
    while running from here: a reopened stream would count this charger offline)."""
    msg = pb.AgentState(charger_id=config.charger_id, sequence=sequence,
                        monotonic_ms=int(now * 1000), term_applied=applier.term_applied,
                        cycle_applied=applier.cycle_applied,
                        lease_ok=applier.lease_ok(now),
                        highest_term_seen=applier.last_seen_term,
                        limits_refused_reason=applier.refused_reason,
                        charger_current_limit_a=config.charger_limit_a)
    if station_limit is not None:
        end = station_limit.valid_until
        msg.station_limit.CopyFrom(pb.ExternalLimit(
            limit_a=station_limit.limit_a, source=station_limit.source,
            valid_until_unix_ms=0 if end is None else round(end.timestamp() * 1000)))
    for c in config.connectors:
        cid = c.connector_id
        out, meter = outputs[cid], meters[cid]
        cs = msg.connectors.add(
            connector_id=cid, pilot_state=_PILOT_OUT[pilots[cid]],
            status=_STATUS_OUT.get(out.status, pb.CONNECTOR_STATUS_UNSPECIFIED),
            error_code=out.error_code.value, vendor_error_code=out.vendor_error_code,
            offered_current_a=out.pwm_a,
            max_current_a=max_current_a.get(cid, c.hard_max_a),
            wants_power=out.wants_power, meter_ok=meter is not None,
            tag_pseudonym=tag_pseudonym((id_tags or {}).get(cid, ""), key))
        if meter is not None:
            amps = [*meter.phase_currents_a, 0.0, 0.0][:3]
            volts = [*meter.phase_voltages_v, 0.0, 0.0][:3]
            cs.current_a.CopyFrom(pb.LineValues(l1=max(0.0, amps[0]), l2=max(0.0, amps[1]),
                                                l3=max(0.0, amps[2])))
            cs.voltage_v.CopyFrom(pb.LineValues(l1=volts[0], l2=volts[1], l3=volts[2]))
            cs.active_power_w = meter.total_power_w
            cs.energy_import_wh = meter.import_energy_wh
            cs.session_energy_wh = max(0.0, meter.import_energy_wh
                                       - session_start_wh.get(cid, 0.0))
            seen = 0 if lines_seen is None else lines_seen.get(cid, 0)
            cs.phases_in_use = session_lines(seen, meter.phase_currents_a)
    return msg
