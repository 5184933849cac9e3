"""Protobuf <-> the master's domain types. Only translation: no rules live here.

Incoming messages become `Member` / `MemberReport` (whose own validation judges them);
outgoing `Limits` and `GroupStatus` are built from a `CycleResult`.
"""

from __future__ import annotations

import math
from typing import Any

from master.allocation import CtPlacement, CtStatus, Mode, OfflineStrategy, Phase, Reason
from master.control import CycleResult
from master.errors import PeerError
from master.membership import Member, MemberConnector
from master.reports import ConnectorReport, ConnectorStatus, MemberReport, PilotState
from master.statusview import ConnectorLimit, GroupStatusView
from protos.io7.cluster.v1 import cluster_pb2 as pb

_PHASE_IN = {pb.PHASE_L1: Phase.L1, pb.PHASE_L2: Phase.L2, pb.PHASE_L3: Phase.L3}
_PHASE_OUT = {v: k for k, v in _PHASE_IN.items()}
_PILOT_IN = {pb.PILOT_STATE_A: PilotState.A, pb.PILOT_STATE_B: PilotState.B,
             pb.PILOT_STATE_C: PilotState.C, pb.PILOT_STATE_D: PilotState.D,
             pb.PILOT_STATE_E: PilotState.E, pb.PILOT_STATE_F: PilotState.F}
_PILOT_OUT = {v: k for k, v in _PILOT_IN.items()}
_STATUS_IN = {
    pb.CONNECTOR_STATUS_AVAILABLE: ConnectorStatus.AVAILABLE,
    pb.CONNECTOR_STATUS_PREPARING: ConnectorStatus.PREPARING,
    pb.CONNECTOR_STATUS_CHARGING: ConnectorStatus.CHARGING,
    pb.CONNECTOR_STATUS_SUSPENDED_EVSE: ConnectorStatus.SUSPENDED_EVSE,
    pb.CONNECTOR_STATUS_SUSPENDED_EV: ConnectorStatus.SUSPENDED_EV,
    pb.CONNECTOR_STATUS_FINISHING: ConnectorStatus.FINISHING,
    pb.CONNECTOR_STATUS_RESERVED: ConnectorStatus.RESERVED,
    pb.CONNECTOR_STATUS_UNAVAILABLE: ConnectorStatus.UNAVAILABLE,
    pb.CONNECTOR_STATUS_FAULTED: ConnectorStatus.FAULTED,
}
_STATUS_OUT = {v: k for k, v in _STATUS_IN.items()}
# Values are protobuf enum numbers (typed as their enum wrappers in the generated stubs).
_REASON_OUT: dict[Reason, Any] = {
    r: pb.LimitReason.Value(f"LIMIT_REASON_{r.name}") for r in Reason}
MODE_OUT: dict[Mode, Any] = {Mode.STATIC: pb.LOAD_BALANCING_MODE_STATIC,
                             Mode.DYNAMIC: pb.LOAD_BALANCING_MODE_DYNAMIC}
_CT_STATUS_OUT: dict[CtStatus, Any] = {
    s: pb.CtStatus.Value(f"CT_STATUS_{s.name}") for s in CtStatus}
_PLACEMENT_OUT: dict[CtPlacement, Any] = {CtPlacement.GRID: pb.CT_PLACEMENT_GRID,
                                          CtPlacement.OTHER_LOADS: pb.CT_PLACEMENT_OTHER_LOADS}
STRATEGY_OUT: dict[OfflineStrategy, Any] = {
    s: pb.OfflineStrategy.Value(f"OFFLINE_STRATEGY_{s.name}") for s in OfflineStrategy}


def phase_out(phase: Phase | None) -> Any:
    return pb.PHASE_UNSPECIFIED if phase is None else _PHASE_OUT[phase]


MAX_REASON_CHARS = 200  # an agent's refusal text, as shown in the status: one line
MAX_TERM = 2**53  # terms grow by one per master start; far below uint64 and exact in JSON
MAX_CHARGER_ID_CHARS = 64  # the agent's config allows 1-64 (agent/config.py [charger] id)


def charger_id_problem(charger_id: str) -> str | None:
    """Why `charger_id` cannot name a charger, or None. It is printed by io7ctl, logged and
    stored, so it must be one printable word: no control or format characters (a newline
    or an escape sequence would forge lines of `io7ctl status`), no whitespace."""
    if not charger_id:
        return "charger id is empty: set [charger] id in the agent's config"
    if len(charger_id) > MAX_CHARGER_ID_CHARS:
        return (f"charger id is longer than {MAX_CHARGER_ID_CHARS} characters "
                f"({len(charger_id)}): shorten [charger] id in the agent's config")
    bad = next((ch for ch in charger_id if not ch.isprintable()), None)
    if bad is not None:
        return (f"charger id {charger_id!a} contains a control character "
                f"U+{ord(bad):04X}: use letters, digits, . _ -")
    if any(ch.isspace() for ch in charger_id):
        return f"charger id {charger_id!r} contains whitespace: use letters, digits, . _ -"
    return None


def seen_term(hello: pb.Hello) -> int:
    """The highest term the agent has seen; raises PeerError when no master could have
    issued it (so one Hello cannot push the group's term to the end of its range)."""
    if hello.last_seen_term > MAX_TERM:
        raise PeerError(peer=f"charger {hello.charger_id}",
                        problem=f"last_seen_term {hello.last_seen_term} is above any term a "
                        f"master issues ({MAX_TERM}): clear the agent's state")
    return hello.last_seen_term


def member_from_hello(hello: pb.Hello) -> Member:
    """A Member from a Hello; raises PeerError when the charger id is not one printable
    word (`charger_id_problem`) or the engine could not take it."""
    problem = charger_id_problem(hello.charger_id)
    if problem is not None:
        raise PeerError(peer="Hello", problem=problem)
    connectors = tuple(
        MemberConnector(
            connector_id=c.connector_id,
            wiring=(_PHASE_IN.get(c.wiring.l1), _PHASE_IN.get(c.wiring.l2),
                    _PHASE_IN.get(c.wiring.l3)),
            hard_max_a=c.hard_max_current_a,
        )
        for c in hello.connectors
    )
    return Member(charger_id=hello.charger_id, group=hello.group,
                  charger_current_limit_a=hello.charger_current_limit_a,
                  connectors=connectors, firmware_version=hello.firmware_version,
                  software_version=hello.software_version)


def _line(values: pb.LineValues, present: bool) -> tuple[float, float, float] | None:
    return (values.l1, values.l2, values.l3) if present else None


def _connector(c: pb.ConnectorState) -> ConnectorReport:
    return ConnectorReport(
        connector_id=c.connector_id,
        pilot_state=_PILOT_IN.get(c.pilot_state, PilotState.UNKNOWN),
        status=_STATUS_IN.get(c.status, ConnectorStatus.UNKNOWN),
        current_a=_line(c.current_a, c.HasField("current_a")),
        voltage_v=_line(c.voltage_v, c.HasField("voltage_v")),
        energy_import_wh=c.energy_import_wh if c.HasField("energy_import_wh") else None,
        session_energy_wh=c.session_energy_wh,
        phases_in_use=c.phases_in_use,
        offered_a=c.offered_current_a,
        max_current_a=c.max_current_a,
        wants_power=c.wants_power,
        meter_ok=c.meter_ok,
        tag_pseudonym=c.tag_pseudonym,
    )


def _report(state: pb.AgentState, received_at_s: float,
            connectors: tuple[ConnectorReport, ...]) -> MemberReport:
    return MemberReport(
        charger_id=state.charger_id,
        sequence=state.sequence,
        received_at_s=received_at_s,
        term_applied=state.term_applied,
        highest_term_seen=state.highest_term_seen,
        limits_refused_reason=state.limits_refused_reason[:MAX_REASON_CHARS],
        connectors=connectors,
        charger_current_limit_a=(state.charger_current_limit_a
                                 if state.HasField("charger_current_limit_a") else None),
    )


def report_from_state(state: pb.AgentState, received_at_s: float) -> MemberReport:
    """A MemberReport as sent; `GroupControl.report` judges its values."""
    return _report(state, received_at_s, tuple(_connector(c) for c in state.connectors))


class ReportDecoder:
    """One agent stream's AgentStates as MemberReports, decoding what changed only: a
    ConnectorState equal to the one before keeps its ConnectorReport, and a state whose
    connectors all repeat keeps the very tuple, which master.control (rule 7) then does
    not judge again. An idle charger's report costs a comparison, not a decoding."""

    def __init__(self) -> None:
        # compared as bytes, not as messages: a caller may reuse and change its message
        self._raw: list[bytes] = []
        self._decoded: tuple[ConnectorReport, ...] = ()

    def decode(self, state: pb.AgentState, received_at_s: float) -> MemberReport:
        """The MemberReport of `state`, as `report_from_state` would give it."""
        raw = [c.SerializeToString() for c in state.connectors]
        before, prev = self._raw, self._decoded
        if len(raw) == len(before):
            conns = tuple(p if r == b else _connector(c) for r, b, p, c in zip(
                raw, before, prev, state.connectors, strict=True))
            if all(a is b for a, b in zip(conns, prev, strict=True)):
                conns = prev
        else:
            conns = tuple(_connector(c) for c in state.connectors)
        self._raw, self._decoded = raw, conns
        return _report(state, received_at_s, conns)


def limits_message(result: CycleResult, limits: tuple[ConnectorLimit, ...],
                   issued_at_ms: int, *, lease_ms: int | None = None) -> pb.MasterMessage:
    """`lease_ms`: a shorter lease than the cycle's (an elected master's, capped at its
    leader lease: master.election.lease)."""
    return pb.MasterMessage(limits=pb.Limits(
        term=result.term,
        cycle=result.cycle,
        valid_for_ms=result.lease_ms if lease_ms is None else lease_ms,
        failsafe_current_a=result.failsafe_current_a,
        issued_at_ms=issued_at_ms,
        connectors=_connector_limits(limits),
    ))


def _connector_limits(limits: tuple[ConnectorLimit, ...]) -> list[pb.ConnectorLimit]:
    return [pb.ConnectorLimit(connector_id=lim.connector_id, current_a=lim.current_a,
                              reason=_REASON_OUT[lim.reason],
                              limiting_phase=phase_out(lim.limiting_phase))
            for lim in limits]


class LimitsEncoder:
    """`limits_message` for the master's streams (issue 15): a charger's connector limits
    are encoded once per Limits tuple (master.control keeps the very tuple while its
    values are equal, rule 7) and merged as bytes into each cycle's message, ~4x cheaper
    than building the nested messages again."""

    def __init__(self) -> None:
        self._encoded: dict[str, tuple[tuple[ConnectorLimit, ...], bytes]] = {}

    def message(self, charger_id: str, result: CycleResult,
                limits: tuple[ConnectorLimit, ...], issued_at_ms: int, *,
                lease_ms: int) -> pb.MasterMessage:
        """What `limits_message(result, limits, issued_at_ms, lease_ms=lease_ms)` gives."""
        cached = self._encoded.get(charger_id)
        if cached is None or cached[0] is not limits:
            raw = pb.Limits(connectors=_connector_limits(limits)).SerializeToString()
            cached = self._encoded[charger_id] = (limits, raw)
        msg = pb.MasterMessage()
        out = msg.limits
        out.MergeFromString(cached[1])
        out.term, out.cycle, out.valid_for_ms = result.term, result.cycle, lease_ms
        out.failsafe_current_a, out.issued_at_ms = result.failsafe_current_a, issued_at_ms
        return msg

    def forget(self, charger_id: str) -> None:
        """A stream ended: its entry goes (the table stays as large as the group)."""
        self._encoded.pop(charger_id, None)


def group_status(view: GroupStatusView, *, master_id: str,
                 cycle_duration_ms: float) -> pb.GroupStatus:
    msg = pb.GroupStatus(
        group=view.group, term=view.term, cycle=view.cycle, mode=MODE_OUT[view.mode],
        ct_status=_CT_STATUS_OUT[view.ct_status],
        ct_fault=view.fault or view.ct_fault,
        cycle_duration_ms=cycle_duration_ms, master_id=master_id,
        ct_placement=_PLACEMENT_OUT[view.ct_placement],
        offline_strategy=STRATEGY_OUT[view.offline_strategy],
    )
    for p in view.phases:
        ph = msg.phases.add(phase=_PHASE_OUT[p.phase], limit_a=p.limit_a,
                            configured_limit_a=p.configured_limit_a,
                            other_load_a=p.other_load_a, reserved_offline_a=p.reserved_offline_a,
                            available_a=p.available_a, allocated_a=p.allocated_a,
                            limit_source=p.limit_source)
        if p.ct_a is not None:
            ph.ct_a = p.ct_a
    for lim in view.external_limits:  # per group phase; inf (not limited there) left out
        end = lim.valid_until_unix_s
        msg.external_limits.add(
            source=lim.source, valid_until_unix_ms=0 if end is None else round(end * 1000),
            phases=[pb.PhaseLimit(phase=_PHASE_OUT[p.phase], limit_a=lim.limit_a[p.phase])
                    for p in view.phases if math.isfinite(lim.limit_a[p.phase])])
    msg.member_count = len(view.members)
    msg.online_count = sum(1 for m in view.members if m.online)
    for m in view.members:
        mem = msg.members.add(charger_id=m.charger_id, online=m.online, address=m.address,
                              offline_reason=m.offline_reason,
                              limits_refused_reason=m.limits_refused_reason)
        if m.last_seen_ago_s is not None and math.isfinite(m.last_seen_ago_s):
            mem.last_seen_ms_ago = int(max(0.0, m.last_seen_ago_s) * 1000)
        for c in m.connectors:
            cv = mem.connectors.add(
                connector_id=c.connector_id,
                status=_STATUS_OUT.get(c.status, pb.CONNECTOR_STATUS_UNSPECIFIED),
                pilot_state=_PILOT_OUT.get(c.pilot_state, pb.PILOT_STATE_UNSPECIFIED),
                offered_a=c.offered_a, allocated_a=c.allocated_a, reason=_REASON_OUT[c.reason],
                limiting_phase=phase_out(c.limiting_phase),
                session_energy_wh=c.session_energy_wh,
                wiring=pb.ConnectorWiring(l1=phase_out(c.wiring[0]), l2=phase_out(c.wiring[1]),
                                          l3=phase_out(c.wiring[2])),
            )
            if c.measured_a is not None:
                cv.measured_a.CopyFrom(pb.LineValues(l1=c.measured_a[0], l2=c.measured_a[1],
                                                     l3=c.measured_a[2]))
    return msg


def status_page(status: pb.GroupStatus, *, summary_only: bool, offset: int = 0,
                limit: int = 0) -> pb.GroupStatus:
    """`status` without its members (`summary_only`), or with the page of them from
    `offset`, at most `limit` (0: the rest). Every other field is copied as it is."""
    page = pb.GroupStatus()
    for f, value in status.ListFields():
        if f.name == "members":
            continue
        if f.is_repeated:
            getattr(page, f.name).extend(value)
        elif f.message_type is not None:
            getattr(page, f.name).CopyFrom(value)
        else:
            setattr(page, f.name, value)
    if not summary_only:
        end = len(status.members) if limit == 0 else offset + limit
        page.members.extend(status.members[offset:end])
    return page
