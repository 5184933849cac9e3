"""The master's control loop core: members' reports and the CT kit in, limits out. Pure.

No asyncio, no gRPC, no clock: the shell passes `now_s` (monotonic) into every call, and
failures (a dropped stream, a CT read timeout) arrive as calls, never as exceptions.

 1. Online = the member's stream is connected AND its last valid report is younger than
    the lease. A report with NaN, negative or absurd values (> 80 A per line, > 500 V)
    or unknown connectors is refused with a reason, and the member counts as offline
    until a valid report arrives: the engine then reserves what it may still draw (its
    last grant, then its fail-safe current). It is never read as 0 A.
 2. Each cycle builds a `Snapshot` of every known member (wiring from its Hello; EV lines
    from `phases_in_use`; connector max = min(hard max, reported max)) and runs
    `allocate` with the previous engine state. Connected members get their connectors'
    limits; every result carries the term, the cycle number and the lease.
 3. CT kit: each good sample replaces the reading; a failure keeps the last reading,
    which ages (stale: no increases; lost: the fallback limit, engine rule 0) and sets the
    fault text, cleared by the next good sample. A kit that answers with bit-identical
    readings while the chargers' draw moves is frozen (`master.ctwatch`): handled as lost.
 4. Start of a term: the previous master's grants stay in force until their lease runs
    out, and an EV may take `settle_s` to follow a decrease. So for `lease_s + settle_s`
    after construction, every member counts as offline for the engine (its fail-safe
    current is reserved) and connected members are sent only the fail-safe current
    (reason FAILSAFE; `CycleResult.holding`); the status still shows them online.
    Chosen over reserving every member's hard max: simpler, and no agent draws more
    than the reservation. The first
    real allocation starts from those fail-safe grants, so increases ramp from there.
    A Hello whose `last_seen_term` is at or above ours (`raise_term`: this master lost
    its term file, or another master ran the group) moves the term above it and starts
    this hold again: that term's grants may still be in force at agents that have not
    heard from us yet, exactly as at a start. Agents already connected take the higher
    term at once (agent rule 1); the hold sends them a decrease at most, and the engine
    restarts from the hold's fail-safe grants, so increases ramp up as after a start.
 5. If the members do not fit the group (wiring outside its phases, Minimise without room
    after a config change), every connected connector is sent 0 A and `fault` says why,
    rather than the cycle raising.
 6. A member that does not obey this master's Limits (`master.obedience`: it says so, it
    has seen a higher term, or it applies another term's Limits past a lease) counts as
    offline for the engine, however fresh its states: it runs on its fail-safe current or
    on grants we did not give. The status shows it offline with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from master.allocation import (
    MIN_CURRENT_A,
    Allocation,
    ChargerInput,
    ConnectorInput,
    CtPlacement,
    CtReading,
    CtStatus,
    EngineState,
    GroupConfig,
    InfeasibleGroupError,
    InvalidInputError,
    Mode,
    OfflineStrategy,
    Phase,
    Reason,
    Snapshot,
    allocate,
    check_minimise,
)
from master.allocation.model import MAX_GROUP_LIMIT_A, MAX_PLAUSIBLE_CURRENT_A
from master.ctwatch import CtFreezeWatch, FreezeSettings, site_draw_a
from master.errors import PeerError, RequestError
from master.membership import Member, RebuildPlan, Wiring, plan_rebuild
from master.obedience import Obedience

Line3 = tuple[float, float, float]

MAX_LINE_CURRENT_A = 80.0  # the engine's bound on a connector max; an io7 line carries 32 A
MAX_VOLTAGE_V = 500.0  # 230/400 V supply (manual ch. 2): no line-to-neutral reading nears 500 V
MAX_SESSION_ENERGY_WH = 1e9  # the engine's bound (ConnectorInput.session_energy_wh)
MAX_ENERGY_REGISTER_WH = 1e12  # far above any meter's register (999 999.99 kWh)


class PilotState(StrEnum):
    """IEC 61851-1 control pilot state (proto PilotState)."""

    A = "A"  # no EV
    B = "B"  # EV connected, not ready
    C = "C"  # charging
    D = "D"  # charging with ventilation
    E = "E"  # no power / short
    F = "F"  # EVSE fault
    UNKNOWN = "unknown"


class ConnectorStatus(StrEnum):
    """OCPP 1.6 ChargePointStatus (proto ConnectorStatus)."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EVSE = "SuspendedEVSE"
    SUSPENDED_EV = "SuspendedEV"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"
    UNKNOWN = "Unknown"


def _bad(value: float | None, lo: float, hi: float) -> bool:
    return value is None or not (math.isfinite(value) and lo <= value <= hi)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorReport:
    """One connector's live state from an AgentState (proto ConnectorState).

    Per-line values are in the connector's own line order; None = not measured. Values
    are as the peer sent them: `problem()` judges them (rule 1), so a bad report reaches
    the control loop and takes its member offline instead of failing in the shell.
    """

    connector_id: int
    pilot_state: PilotState = PilotState.UNKNOWN
    status: ConnectorStatus = ConnectorStatus.UNKNOWN
    current_a: Line3 | None = None
    voltage_v: Line3 | None = None
    energy_import_wh: float | None = None
    session_energy_wh: float = 0.0
    phases_in_use: int = 0  # bit k: the EV loads connector line L(k+1); 0 = unknown
    offered_a: float = 0.0
    max_current_a: float = 0.0
    wants_power: bool = False
    meter_ok: bool = True  # False: the measured fields must not be trusted (nor judged)

    def problem(self) -> str | None:
        """Why this report cannot be used, or None."""
        c = f"connector {self.connector_id}"
        checks: list[tuple[str, float | None, float, float]] = [
            ("session_energy_wh", self.session_energy_wh, 0.0, MAX_SESSION_ENERGY_WH),
            ("offered_a", self.offered_a, 0.0, MAX_LINE_CURRENT_A),
            ("max_current_a", self.max_current_a, 0.0, MAX_LINE_CURRENT_A),
        ]
        if self.meter_ok:
            for name, values, hi in (("current_a", self.current_a, MAX_LINE_CURRENT_A),
                                     ("voltage_v", self.voltage_v, MAX_VOLTAGE_V)):
                for k, v in enumerate(values or ()):
                    checks.append((f"{name}[L{k + 1}]", v, 0.0, hi))
            if self.energy_import_wh is not None:
                checks.append(("energy_import_wh", self.energy_import_wh, 0.0,
                               MAX_ENERGY_REGISTER_WH))
        for name, value, lo, hi in checks:
            if _bad(value, lo, hi):
                return f"{c} {name}={value!r} is outside [{lo:g}, {hi:g}]"
        for name, values in (("current_a", self.current_a), ("voltage_v", self.voltage_v)):
            if values is not None and len(values) != 3:
                return f"{c} {name} needs 3 values (L1, L2, L3), got {len(values)}"
        if not 0 <= self.phases_in_use <= 0b111:
            return f"{c} phases_in_use={self.phases_in_use} is not a mask of L1-L3 (0-7)"
        return None

    def ev_lines(self) -> tuple[bool, bool, bool] | None:
        """The lines the EV loads, or None when unknown (every wired line counts)."""
        m = self.phases_in_use
        return None if m == 0 else (bool(m & 1), bool(m & 2), bool(m & 4))


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberReport:
    """One AgentState: `sequence` from the agent's stream, `received_at_s` the master's
    monotonic clock at receipt."""

    charger_id: str
    sequence: int
    received_at_s: float
    connectors: tuple[ConnectorReport, ...]
    term_applied: int = 0  # rule 6: the (term of the) Limits the agent obeys; 0 = none
    highest_term_seen: int = 0
    limits_refused_reason: str = ""  # the agent's own word that it refuses ours


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
    limits_refused_reason: str = ""  # rule 6: why it does not obey this master, or ""


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
    holding: bool  # rule 4: start-of-term hold, fail-safe only
    fault: str  # rule 5: why everything is at 0 A; "" when fine


@dataclass(frozen=True, kw_only=True)
class CycleResult:
    """One cycle's decisions. `limits` has an entry per connected member, holding only
    that member's connectors. `allocation` is None when rule 5 applied."""

    term: int
    cycle: int
    now_s: float
    allocation: Allocation | None
    limits: Mapping[str, tuple[ConnectorLimit, ...]]
    failsafe_current_a: float
    lease_ms: int
    holding: bool
    status: GroupStatusView


def with_limit(group: GroupConfig, limit_a: float, fallback_limit_a: float | None) -> GroupConfig:
    """`group` with per-phase limit `limit_a`; the fallback limit becomes the lower of
    `fallback_limit_a` (as configured) and the new limit, since nothing may share more
    than the limit. Raises RequestError when the limit is out of range."""
    if isinstance(limit_a, bool) or not isinstance(limit_a, int | float) \
            or not math.isfinite(limit_a):
        raise RequestError(peer="SetGroupLimit", problem=f"limit_a={limit_a!r} is not a number")
    fallback = None if fallback_limit_a is None else min(fallback_limit_a, limit_a)
    try:
        return replace(group, limit_a=float(limit_a), fallback_limit_a=fallback)
    except InvalidInputError as exc:
        raise RequestError(peer="SetGroupLimit",
                           problem=f"{exc} (per-phase limit, 6 to {MAX_GROUP_LIMIT_A:g} A, "
                           "at least the safety margin)") from exc


@dataclass(slots=True)
class _MemberState:
    member: Member
    connected: bool = False
    address: str = ""
    connected_at_s: float = -math.inf
    last_sequence: int = 0
    last_heard_s: float | None = None  # any report, valid or not
    valid: MemberReport | None = None  # the last valid report
    refused: str = ""  # why the last report was refused; "" after a valid one
    by_connector: dict[int, ConnectorReport] = field(default_factory=dict)
    obedience: Obedience = field(default_factory=Obedience)  # rule 6

    def offline_reason(self, now_s: float, lease_s: float) -> str:
        """Rule 1: "" when online, else why not."""
        if not self.connected:
            return "stream closed"
        if self.refused:
            return f"last state refused: {self.refused}"
        if self.valid is None or self.valid.received_at_s < self.connected_at_s:
            return "no state received on this stream yet"
        age = now_s - self.valid.received_at_s
        if age >= lease_s:
            return f"last state {age:.1f} s old (lease {lease_s:g} s)"
        return ""


class GroupControl:
    """One group's control loop core. See the module docstring for the rules.

    `term` (>= 1) is this master's leadership term, persisted and incremented by the
    shell at each start; `now_s` is the start time (monotonic) of the rule 4 hold.
    """

    def __init__(self, *, group: GroupConfig, term: int, members: Iterable[Member],
                 now_s: float, ct_freeze: FreezeSettings | None = None) -> None:
        if term < 1:
            raise ValueError(f"term {term} must be >= 1 (0 means 'none' on the wire)")
        self._group = group
        self._configured_fallback_a = group.fallback_limit_a
        self.term = term
        self.cycle_number = 0
        self._members = {m.charger_id: _MemberState(member=m) for m in members}
        self.hold_until_s = now_s + group.lease_s + group.settle_s
        self._engine: EngineState | None = None
        self._hold_grants: dict[tuple[str, int], float] = {}
        self._hold_at_s = now_s
        self._ct: CtReading | None = None
        self._ct_fault = ""
        self._ct_watch = CtFreezeWatch(ct_freeze)

    # -- membership ---------------------------------------------------------------------

    @property
    def group(self) -> GroupConfig:
        return self._group

    @property
    def members(self) -> tuple[Member, ...]:
        return tuple(s.member for s in self._members.values())

    def connected_ids(self) -> set[str]:
        """Members whose stream is connected now (for "rebuild the group")."""
        return {cid for cid, s in self._members.items() if s.connected}

    def check_join(self, member: Member) -> str | None:
        """Why `member` cannot join this group, or None: another group, wiring outside
        the group's phases, or Minimise without room for 6 A on every connector."""
        if member.group != self._group.name:
            return f"charger {member.charger_id} is for group {member.group!r}, " \
                   f"this is {self._group.name!r}"
        others = [s.member for cid, s in self._members.items() if cid != member.charger_id]
        try:  # its wiring on its own (a misfit stored member must not block it), then room
            Snapshot(now_s=0.0, group=replace(self._group,
                                              offline_strategy=OfflineStrategy.MAXIMISE),
                     chargers=(member.charger_input(),))
            if self._group.offline_strategy is OfflineStrategy.MINIMISE:
                check_minimise(self._group,
                               tuple(m.charger_input() for m in [*others, member]))
        except (InvalidInputError, InfeasibleGroupError) as exc:
            return str(exc)
        return None

    def member_connected(self, member: Member, now_s: float, *, address: str = "") -> None:
        """A member's stream said Hello (already admitted by the membership store). A
        second stream for the same charger replaces the first. Raises PeerError when
        `check_join` refuses it; nothing changes then."""
        problem = self.check_join(member)
        if problem is not None:
            raise PeerError(peer=f"charger {member.charger_id}", problem=problem)
        st = self._members.get(member.charger_id)
        if st is None:
            st = self._members[member.charger_id] = _MemberState(member=member)
        st.member, st.connected, st.address = member, True, address
        st.connected_at_s, st.last_sequence, st.refused = now_s, 0, ""
        st.obedience = Obedience()

    def member_disconnected(self, charger_id: str, now_s: float) -> None:
        """A member's stream closed: offline at once (rule 1). It stays a member."""
        st = self._members.get(charger_id)
        if st is not None:
            st.connected, st.address = False, ""

    def rebuild(self, removed_ids: Iterable[str]) -> RebuildPlan:
        """Rebuild the group (manual 6.4.2): drop the members the installer names as
        physically removed, unless connected now; their reservations are released at
        the next cycle. Every other member, offline or not, keeps its reservation (a cut
        link looks like a removal). Raises RequestError naming any id that is not a
        member; nothing changes then."""
        plan = plan_rebuild(group=self._group.name, members=self._members,
                            connected=self.connected_ids(), named=removed_ids)
        for cid in plan.removed:
            del self._members[cid]
        return plan

    def raise_term(self, seen_term: int, now_s: float) -> int | None:
        """A Hello said its agent has seen `seen_term`. When that is at or above this
        master's term, the term becomes `seen_term + 1` and the start-of-term hold starts
        again (rule 4); returns the new term for the shell to persist before any Limits
        carry it. Returns None (nothing changes) when `seen_term` is below the term."""
        if seen_term < self.term:
            return None
        self.term = seen_term + 1
        self.hold_until_s = now_s + self._group.lease_s + self._group.settle_s
        self._engine, self._hold_grants, self._hold_at_s = None, {}, now_s
        return self.term

    def _refusal(self, st: _MemberState, now_s: float) -> str:
        """Rule 6: why this member does not obey this master's Limits, or ""."""
        return st.obedience.refusal(term=self.term, now_s=now_s, lease_s=self._group.lease_s)

    # -- inputs -------------------------------------------------------------------------

    def report(self, report: MemberReport) -> str | None:
        """Take one AgentState. Returns None when used, else why it was refused; a
        refused report (bad values, unknown or missing connectors) takes the member
        offline until a valid one arrives. A report out of sequence is ignored (its
        reason returned) without changing the member's state."""
        st = self._members.get(report.charger_id)
        if st is None or not st.connected:
            return f"charger {report.charger_id} is not a connected member"
        if report.sequence <= st.last_sequence:
            return f"sequence {report.sequence} is not after {st.last_sequence}: ignored"
        st.last_sequence = report.sequence
        if math.isfinite(report.received_at_s):
            st.obedience.observe(term=self.term, term_applied=report.term_applied,
                                 highest_term_seen=report.highest_term_seen,
                                 agent_reason=report.limits_refused_reason,
                                 now_s=report.received_at_s)
        problem = self._judge(st.member, report)
        if math.isfinite(report.received_at_s):
            st.last_heard_s = report.received_at_s
        if problem is not None:
            st.refused = problem
            return problem
        st.valid, st.refused = report, ""
        st.by_connector = {c.connector_id: c for c in report.connectors}
        return None

    @staticmethod
    def _judge(member: Member, report: MemberReport) -> str | None:
        if _bad(report.received_at_s, -1e12, 1e12):
            return f"received_at_s={report.received_at_s!r} is not a time"
        ids = [c.connector_id for c in report.connectors]
        expected = sorted(c.connector_id for c in member.connectors)
        unknown = sorted(set(ids) - set(expected))
        if unknown:
            return f"unknown connector ids {unknown}; the Hello named {expected}"
        if sorted(ids) != expected:
            return f"connectors {ids} reported; expected each of {expected} once"
        for c in report.connectors:
            problem = c.problem()
            if problem is not None:
                return problem
        return None

    def ct_sample(self, currents_by_site_phase: Mapping[Phase, float], now_s: float) -> str | None:
        """A good CT kit read: currents in A per site phase, signed (negative = export).
        Returns None, or why the sample was refused (then handled as `ct_failed`)."""
        values: list[float | None] = [None, None, None]
        for phase, amps in currents_by_site_phase.items():
            if _bad(amps, -MAX_PLAUSIBLE_CURRENT_A, MAX_PLAUSIBLE_CURRENT_A):
                problem = f"CT {phase.name} reads {amps!r} A, not a plausible current"
                self.ct_failed(problem, now_s)
                return problem
            values[phase] = float(amps)
        self._ct = CtReading(currents_a=(values[0], values[1], values[2]), taken_at_s=now_s)
        own = site_draw_a((mc.wiring, r.current_a) for s in self._members.values()
                          if not s.offline_reason(now_s, self._group.lease_s)
                          for mc in s.member.connectors
                          if (r := s.by_connector.get(mc.connector_id)) is not None
                          and r.meter_ok and r.current_a is not None)
        self._ct_fault = self._ct_watch.sample(self._ct.currents_a, own, now_s,
                                               placement=self._group.ct_placement)
        return None

    def ct_failed(self, reason: str, now_s: float) -> None:
        """A CT kit read failed (e.g. "meter read timeout"): the last reading ages
        (rule 3) and `reason` is shown as the CT fault until the next good sample."""
        self._ct_fault = reason or "CT read failed"

    def set_limit(self, limit_a: float) -> float:
        """SetGroupLimit: the new per-phase limit; returns the previous one. The fallback
        limit is capped at the new limit. Raises RequestError when out of range or when
        Minimise would no longer fit the members."""
        new = with_limit(self._group, limit_a, self._configured_fallback_a)
        try:
            check_minimise(new, tuple(s.member.charger_input() for s in self._members.values()))
        except InfeasibleGroupError as exc:
            raise RequestError(peer="SetGroupLimit", problem=str(exc)) from exc
        previous, self._group = self._group.limit_a, new
        return previous

    # -- the cycle ------------------------------------------------------------------------

    def _charger(self, st: _MemberState, online: bool) -> ChargerInput:
        conns = []
        for mc in st.member.connectors:
            r = st.by_connector.get(mc.connector_id) if online else None
            if r is None:  # offline: its hard max, so the engine reserves its fail-safe
                conns.append(ConnectorInput(connector_id=mc.connector_id, wiring=mc.wiring,
                                            max_current_a=mc.hard_max_a))
                continue
            # An untrusted meter counts 0 A: with the CT on the grid incomer, that
            # overstates the other loads, never understates them.
            measured = r.current_a if r.meter_ok and r.current_a is not None else (0.0,) * 3
            conns.append(ConnectorInput(
                connector_id=mc.connector_id, wiring=mc.wiring,
                max_current_a=min(mc.hard_max_a, r.max_current_a),
                wants_power=r.wants_power, ev_lines=r.ev_lines(),
                measured_a=(measured[0], measured[1], measured[2]),
                session_energy_wh=r.session_energy_wh,
            ))
        return ChargerInput(charger_id=st.member.charger_id, online=online,
                            current_limit_a=st.member.charger_current_limit_a,
                            connectors=tuple(conns))

    def _seed(self) -> EngineState | None:
        """Rule 4: the engine's memory after the hold: connectors hold their fail-safe."""
        if not self._hold_grants:
            return None
        keys = tuple(self._hold_grants)
        cols = EngineState.empty().aligned(keys)
        cur = np.array([self._hold_grants[k] for k in keys])
        cols["current_a"] = cur
        cols["granted_at_s"] = np.full(len(keys), self._hold_at_s)
        cols["running_since_s"] = np.where(cur > 0, self._hold_at_s, np.nan)
        return EngineState(keys=keys, columns=cols)

    def cycle(self, now_s: float) -> CycleResult:
        """Run one control cycle at `now_s` (rules 1-5)."""
        self.cycle_number += 1
        g, lease_s = self._group, self._group.lease_s
        holding = now_s < self.hold_until_s
        states = [self._members[cid] for cid in sorted(self._members)]
        reachable = {s.member.charger_id: not s.offline_reason(now_s, lease_s)
                     and not self._refusal(s, now_s) for s in states}
        online = {cid: ok and not holding for cid, ok in reachable.items()}
        fault, alloc = "", None
        try:
            snap = Snapshot(now_s=now_s, group=g,
                            ct=None if self._ct_watch.frozen else self._ct,
                            chargers=tuple(self._charger(s, online[s.member.charger_id])
                                           for s in states))
            if holding:
                alloc = allocate(snap, None)
            else:
                alloc = allocate(snap, self._engine if self._engine is not None else self._seed())
                self._engine = alloc.state
        except (InvalidInputError, InfeasibleGroupError) as exc:
            fault = f"{exc}; every connector is held at 0 A until this is fixed"
            self._engine, self._hold_grants = None, {}

        limits: dict[str, tuple[ConnectorLimit, ...]] = {}
        for s in states:
            if s.connected:
                limits[s.member.charger_id] = tuple(
                    self._limit(s, c.connector_id, alloc, holding) for c in s.member.connectors)
        if holding and alloc is not None:
            self._hold_at_s = now_s
            self._hold_grants = {(cid, lim.connector_id): lim.current_a
                                 for cid, lims in limits.items() for lim in lims}
        status = self._status(now_s, states, reachable, alloc, limits, holding, fault)
        return CycleResult(term=self.term, cycle=self.cycle_number, now_s=now_s,
                           allocation=alloc, limits=limits, holding=holding,
                           failsafe_current_a=g.failsafe_current_a,
                           lease_ms=round(lease_s * 1000), status=status)

    def _limit(self, st: _MemberState, connector_id: int, alloc: Allocation | None,
               holding: bool) -> ConnectorLimit:
        if alloc is None:  # rule 5
            return ConnectorLimit(connector_id=connector_id, current_a=0.0,
                                  reason=Reason.OFFLINE_STRATEGY)
        if holding:  # rule 4: the fail-safe current, where the connector can take 6 A
            mc = st.member.connector(connector_id)
            r = st.by_connector.get(connector_id)
            max_a = 0.0 if mc is None else mc.hard_max_a
            if r is not None and not st.refused:
                max_a = min(max_a, r.max_current_a)
            failsafe = self._group.failsafe_current_a
            return ConnectorLimit(connector_id=connector_id,
                                  current_a=failsafe if max_a >= MIN_CURRENT_A else 0.0,
                                  reason=Reason.FAILSAFE)
        res = alloc.result(st.member.charger_id, connector_id)
        return ConnectorLimit(connector_id=connector_id, current_a=res.current_a,
                              reason=res.reason, limiting_phase=res.limiting_phase)

    # -- status -------------------------------------------------------------------------

    def _ct_fault_text(self, now_s: float, status: CtStatus) -> str:
        if self._ct_fault or status in (CtStatus.OK, CtStatus.NOT_USED):
            return self._ct_fault
        if self._ct is None:
            return "no CT reading yet"
        return f"last CT reading {now_s - self._ct.taken_at_s:.1f} s old"

    def _status(self, now_s: float, states: list[_MemberState], online: dict[str, bool],
                alloc: Allocation | None, limits: Mapping[str, tuple[ConnectorLimit, ...]],
                holding: bool, fault: str) -> GroupStatusView:
        g = self._group
        sent = {(cid, lim.connector_id): lim for cid, lims in limits.items() for lim in lims}
        sent_per_phase = [0.0, 0.0, 0.0]
        for s in states:
            for mc in s.member.connectors:
                lim = sent.get((s.member.charger_id, mc.connector_id))
                for p in mc.wiring:
                    if lim is not None and p is not None:
                        sent_per_phase[p] += lim.current_a
        if alloc is not None:
            phases = tuple(
                PhaseView(phase=r.phase, limit_a=r.limit_a, configured_limit_a=g.limit_a,
                          ct_a=r.ct_a,
                          other_load_a=r.other_load_a, reserved_offline_a=r.reserved_a,
                          available_a=r.available_a,
                          allocated_a=sent_per_phase[r.phase] if holding else r.allocated_a)
                for r in alloc.phases)
            ct_status = alloc.ct_status
        else:
            phases = tuple(PhaseView(phase=p, limit_a=g.limit_a, configured_limit_a=g.limit_a,
                                     ct_a=None, other_load_a=0.0,
                                     reserved_offline_a=0.0, available_a=0.0, allocated_a=0.0)
                           for p in g.phases)
            ct_status = CtStatus.NOT_USED if g.mode is Mode.STATIC else CtStatus.LOST
        members = tuple(self._member_view(now_s, s, online[s.member.charger_id], alloc, sent)
                        for s in states)
        return GroupStatusView(
            group=g.name, term=self.term, cycle=self.cycle_number, mode=g.mode,
            ct_placement=g.ct_placement, offline_strategy=g.offline_strategy,
            ct_status=ct_status, ct_fault=self._ct_fault_text(now_s, ct_status),
            phases=phases, members=members, holding=holding, fault=fault)

    def _member_view(self, now_s: float, st: _MemberState, online: bool,
                     alloc: Allocation | None,
                     sent: Mapping[tuple[str, int], ConnectorLimit]) -> MemberView:
        cid = st.member.charger_id
        views = []
        for mc in st.member.connectors:
            r = st.by_connector.get(mc.connector_id) or ConnectorReport(
                connector_id=mc.connector_id)
            lim = sent.get((cid, mc.connector_id))
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
        refusal = self._refusal(st, now_s) if st.connected else ""
        reason = st.offline_reason(now_s, self._group.lease_s) or (
            "it refuses this master's limits" if refusal else "")
        return MemberView(
            charger_id=cid, online=online, address=st.address, offline_reason=reason,
            limits_refused_reason=refusal,
            last_seen_ago_s=None if st.last_heard_s is None else now_s - st.last_heard_s,
            connectors=tuple(views))
