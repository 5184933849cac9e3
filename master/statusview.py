"""What the master shows of a group after a cycle (proto GroupStatus), built from the
cycle's decisions. Pure; `master.wire` turns it into protobuf.

A connector shows what it was sent this cycle (or, when nothing was sent, what the engine
gave it), what it reports and why it got what it got; a member shows why it is offline or
refuses this master's limits; a phase shows the limit in force beside the configured one.

The control loop captures each member as a `MemberSeen` (cheap: references and the
verdicts it computed anyway) and builds the view with `group_view` only when someone asks
for it (`CycleResult.status`): a simulated day of 86 400 cycles never does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from master.allocation import (
    Allocation,
    CtPlacement,
    CtReading,
    CtStatus,
    GroupConfig,
    Mode,
    OfflineStrategy,
    Phase,
    Reason,
)
from master.externallimits import ExternalLimit, LimitContext
from master.membership import Member, Wiring
from master.reports import ConnectorReport, ConnectorStatus, Line3, PilotState


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorLimit:
    """What to send one connector this cycle (proto ConnectorLimit)."""

    connector_id: int
    current_a: float
    reason: Reason
    limiting_phase: Phase | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseView:
    """One site phase after a cycle (proto PhaseStatus). `limit_a` is the limit in force
    (the fallback limit while the CT kit is lost); `configured_limit_a` the configured or
    SetGroupLimit one."""

    phase: Phase
    limit_a: float
    configured_limit_a: float
    ct_a: float | None
    other_load_a: float
    reserved_offline_a: float
    available_a: float
    allocated_a: float
    limit_source: str = ""  # what sets limit_a, in words (master.externallimits rule 5)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorView:
    """One connector as the master sees it (proto ConnectorStatusView)."""

    connector_id: int
    status: ConnectorStatus
    pilot_state: PilotState
    offered_a: float
    allocated_a: float
    measured_a: Line3 | None
    reason: Reason
    limiting_phase: Phase | None
    session_energy_wh: float
    wiring: Wiring


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberView:
    """One member (proto MemberStatus); `offline_reason` says why it is not online."""

    charger_id: str
    online: bool
    last_seen_ago_s: float | None
    address: str
    offline_reason: str
    connectors: tuple[ConnectorView, ...]
    limits_refused_reason: str = ""  # why it does not obey this master (control rule 6)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupStatusView:
    """The group after a cycle (proto GroupStatus, less what only the shell knows:
    cycle duration and master id)."""

    group: str
    term: int
    cycle: int
    mode: Mode
    ct_placement: CtPlacement
    offline_strategy: OfflineStrategy
    ct_status: CtStatus
    ct_fault: str
    phases: tuple[PhaseView, ...]
    members: tuple[MemberView, ...]
    holding: bool  # master.control rule 4: start-of-term hold, fail-safe only
    fault: str  # master.control rule 5: why everything is at 0 A; "" when fine
    external_limits: tuple[ExternalLimit, ...] = ()  # in force, lowest first


def phase_views(group: GroupConfig, alloc: Allocation | None,
                limits: Mapping[str, Sequence[ConnectorLimit]], members: Sequence[Member],
                holding: bool, context: LimitContext | None = None
                ) -> tuple[tuple[PhaseView, ...], CtStatus]:
    """Per site phase: the engine's accounting, with what was really sent while holding
    (master.control rule 4); without an allocation (rule 5) only the limits. `context`
    names what sets each phase's limit."""
    g = group
    if alloc is None:
        phases = tuple(PhaseView(phase=p, limit_a=g.limit_a, configured_limit_a=g.limit_a,
                                 ct_a=None, other_load_a=0.0,
                                 reserved_offline_a=0.0, available_a=0.0, allocated_a=0.0)
                       for p in g.phases)
        return phases, CtStatus.NOT_USED if g.mode is Mode.STATIC else CtStatus.LOST
    sent_per_phase = [0.0, 0.0, 0.0]
    by_member = {m.charger_id: m for m in members}
    for cid, lims in limits.items():
        m = by_member.get(cid)
        for lim in lims:
            mc = None if m is None else m.connector(lim.connector_id)
            for p in () if mc is None else mc.wiring:
                if p is not None:
                    sent_per_phase[p] += lim.current_a
    return tuple(
        PhaseView(phase=r.phase, limit_a=r.limit_a, configured_limit_a=g.limit_a,
                  ct_a=r.ct_a, other_load_a=r.other_load_a, reserved_offline_a=r.reserved_a,
                  available_a=r.available_a,
                  allocated_a=sent_per_phase[r.phase] if holding else r.allocated_a,
                  limit_source="" if context is None else context.words(
                      r.phase, configured_a=g.limit_a, ct_lost_limit_a=g.static_limit_a
                      if alloc.ct_status is CtStatus.LOST else None))
        for r in alloc.phases), alloc.ct_status


def member_view(*, member: Member, reports: Mapping[int, ConnectorReport], online: bool,
                address: str, offline_reason: str, limits_refused_reason: str,
                last_seen_ago_s: float | None, alloc: Allocation | None,
                sent: Sequence[ConnectorLimit] | None) -> MemberView:
    """One member: per connector its report, what it was sent (None: the member is not
    connected) or else the engine's grant, and the reason."""
    cid = member.charger_id
    by_id = {lim.connector_id: lim for lim in sent or ()}
    views = []
    for mc in member.connectors:
        r = reports.get(mc.connector_id) or ConnectorReport(connector_id=mc.connector_id)
        lim = by_id.get(mc.connector_id)
        if lim is None and alloc is not None:
            res = alloc.result(cid, mc.connector_id)
            lim = ConnectorLimit(connector_id=mc.connector_id, current_a=res.current_a,
                                 reason=res.reason, limiting_phase=res.limiting_phase)
        views.append(ConnectorView(
            connector_id=mc.connector_id, status=r.status, pilot_state=r.pilot_state,
            offered_a=r.offered_a, allocated_a=0.0 if lim is None else lim.current_a,
            measured_a=r.current_a if r.meter_ok else None,
            reason=Reason.OFFLINE if lim is None else lim.reason,
            limiting_phase=None if lim is None else lim.limiting_phase,
            session_energy_wh=r.session_energy_wh, wiring=mc.wiring))
    return MemberView(
        charger_id=cid, online=online, address=address, offline_reason=offline_reason,
        limits_refused_reason=limits_refused_reason, last_seen_ago_s=last_seen_ago_s,
        connectors=tuple(views))


class MemberSeen(NamedTuple):
    """One member as the cycle saw it: what `member_view` needs, captured at the cycle."""

    member: Member
    reports: Mapping[int, ConnectorReport]  # replaced, never changed, by a valid report
    online: bool
    address: str
    offline_reason: str  # "" when online (master.control rule 1)
    refusal: str  # why it does not obey this master (rule 6); "" when it does
    last_heard_s: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleFacts:
    """Everything a cycle decided that its status view shows, captured at the cycle."""

    group: GroupConfig
    term: int
    cycle: int
    now_s: float
    holding: bool
    fault: str
    ct: CtReading | None
    ct_fault: str  # the CT kit's last failure, "" after a good sample
    alloc: Allocation | None
    limits: Mapping[str, Sequence[ConnectorLimit]]
    members: tuple[MemberSeen, ...]
    context: LimitContext


def _ct_fault_text(f: CycleFacts, status: CtStatus) -> str:
    if f.ct_fault or status in (CtStatus.OK, CtStatus.NOT_USED):
        return f.ct_fault
    if f.ct is None:
        return "no CT reading yet"
    return f"last CT reading {f.now_s - f.ct.taken_at_s:.1f} s old"


def group_view(f: CycleFacts) -> GroupStatusView:
    """The group's status after the cycle `f` describes."""
    g = f.group
    phases, ct_status = phase_views(g, f.alloc, f.limits, [m.member for m in f.members],
                                    f.holding, f.context)
    members = tuple(member_view(
        member=m.member, reports=m.reports, online=m.online, address=m.address,
        alloc=f.alloc, sent=f.limits.get(m.member.charger_id),
        offline_reason=m.offline_reason or (
            "it refuses this master's limits" if m.refusal else ""),
        limits_refused_reason=m.refusal,
        last_seen_ago_s=None if m.last_heard_s is None else f.now_s - m.last_heard_s)
        for m in f.members)
    return GroupStatusView(
        group=g.name, term=f.term, cycle=f.cycle, mode=g.mode,
        ct_placement=g.ct_placement, offline_strategy=g.offline_strategy,
        ct_status=ct_status, ct_fault=_ct_fault_text(f, ct_status),
        phases=phases, members=members, holding=f.holding, fault=f.fault,
        external_limits=f.context.external.limits)
