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
 7. Incremental: the cost of a cycle follows what changed. A report is judged once (one
    whose connectors are the very tuple already judged for this Hello is not judged
    again: master.wire.ReportDecoder hands back that tuple for a repeated report); a
    member's engine input is rebuilt only when its Hello, its valid reports or its online
    verdict changed (by identity: each replaces its object; a report's changed Charger
    Current Limit replaces the Member, master.reports.in_force), and a valid report's is
    built as it arrives, spread over the cycle, not in the cycle that follows the CT
    sample (that path is the latency to the agents); a member's Limits tuple is
    kept while the engine's values for its connectors are equal. `forget_caches` drops
    all of it: tests/master/test_incremental.py checks the two give the same cycles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from master.allocation import (
    MIN_CURRENT_A,
    Allocation,
    ChargerInput,
    CtReading,
    EngineState,
    GroupConfig,
    InfeasibleGroupError,
    InvalidInputError,
    OfflineStrategy,
    Phase,
    Reason,
    Snapshot,
    allocate,
    check_minimise,
)
from master.allocation.model import MAX_PLAUSIBLE_CURRENT_A, Need
from master.ctwatch import CtFreezeWatch, FreezeSettings, site_draw_a
from master.errors import PeerError, RequestError
from master.externallimits import InForce, LimitContext
from master.grouplimit import with_limit
from master.membership import Member, RebuildPlan, plan_rebuild
from master.obedience import Obedience
from master.reports import (
    ConnectorReport,
    MemberInputs,
    MemberReport,
    in_force,
    judge,
    out_of_range,
)
from master.statusview import (
    ConnectorLimit,
    CycleFacts,
    GroupStatusView,
    MemberSeen,
    group_view,
)


@dataclass(frozen=True, kw_only=True)
class CycleResult:
    """One cycle's decisions. `limits` has an entry per connected member, holding only
    that member's connectors. `allocation` is None when rule 5 applied. `status` is
    built on first use from what the cycle captured (io7-sim never asks for it)."""

    term: int
    cycle: int
    now_s: float
    allocation: Allocation | None
    limits: Mapping[str, tuple[ConnectorLimit, ...]]
    failsafe_current_a: float
    lease_ms: int
    holding: bool
    facts: CycleFacts = field(repr=False, compare=False)

    @cached_property
    def status(self) -> GroupStatusView:
        """The group's status after this cycle (master.statusview.group_view)."""
        return group_view(self.facts)


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
    inputs: MemberInputs = field(default_factory=MemberInputs)  # the engine's, cached
    # Rule 7: the engine input last built, and what it was built from (by identity: a
    # valid report replaces `by_connector`, a Hello replaces `member`).
    built: ChargerInput | None = None
    built_from: tuple[object, object] = (None, None)
    judged: Member | None = None  # the Hello `valid` was judged against
    # Rule 7: this member's last Limits tuple and the engine columns it was made from.
    sent_key: tuple[object, ...] = ()
    sent: tuple[ConnectorLimit, ...] = ()

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
                 now_s: float, ct_freeze: FreezeSettings | None = None,
                 first_cycle: int = 0) -> None:
        if term < 1:
            raise ValueError(f"term {term} must be >= 1 (0 means 'none' on the wire)")
        self._group = group
        self._configured_fallback_a = group.fallback_limit_a
        self.installed_limit_a = group.limit_a  # the ceiling of set_limit (issue 11)
        self.term = term
        self._term_issued = False  # rule 4: has a Welcome carried this term yet?
        # io7d may restart its master within one Raft term: agents take only newer cycles
        # of a term, so that master starts above every cycle its predecessor sent
        self.cycle_number = first_cycle
        self._members = {m.charger_id: _MemberState(member=m) for m in members}
        self.hold_until_s = now_s + group.lease_s + group.settle_s
        self._engine: EngineState | None = None
        self._hold_grants: dict[tuple[str, int], float] = {}
        self._hold_at_s = now_s
        self._ct: CtReading | None = None
        self._ct_fault = ""
        self._ct_watch = CtFreezeWatch(ct_freeze)
        self._order: list[_MemberState] | None = None  # members by id (rule 7)
        self._keys: tuple[tuple[str, int], ...] = ()  # the engine's rows last checked

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
        self._order = None  # a new member, or new connectors
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
        self._order = None
        return plan

    def needs_raise(self, seen_term: int) -> bool:
        """Rule 4: does a Hello's `seen_term` make this master move its term? Above ours:
        yes. Equal: only while no Welcome has carried our term yet (this master lost its
        term file and counts from the same number as the last one); once we issued it, an
        agent that saw it saw us (it reconnected), and moving would only restart the hold."""
        return seen_term > self.term or (seen_term == self.term and not self._term_issued)

    def raise_term(self, seen_term: int, now_s: float) -> int | None:
        """A Hello said its agent has seen `seen_term`; the shell calls this just before
        the Welcome, which then carries the term (it counts as issued). When `needs_raise`,
        the term becomes `seen_term + 1` and the start-of-term hold starts again (rule 4);
        returns the new term, which the shell has persisted first. Else returns None and
        nothing changes."""
        if not self.needs_raise(seen_term):
            self._term_issued = True
            return None
        self.term = seen_term + 1
        self._term_issued = True
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
        last = st.valid
        same = (last is not None and report.connectors is last.connectors
                and st.judged is st.member  # rule 7: already judged valid for this Hello
                and report.charger_current_limit_a == last.charger_current_limit_a)
        problem = (None if same and not out_of_range(report.received_at_s, -1e12, 1e12)
                   else judge(st.member, report))
        if math.isfinite(report.received_at_s):
            st.last_heard_s = report.received_at_s
        if problem is not None:
            st.refused = problem
            return problem
        st.member = in_force(st.member, report)  # a live Charger Current Limit (issue 14)
        st.valid, st.refused, st.judged = report, "", st.member
        if not same:
            st.by_connector = {c.connector_id: c for c in report.connectors}
            self._prebuild(st)  # rule 7: now, not after the CT sample
        return None

    def ct_sample(self, currents_by_site_phase: Mapping[Phase, float], now_s: float) -> str | None:
        """A good CT kit read: currents in A per site phase, signed (negative = export).
        Returns None, or why the sample was refused (then handled as `ct_failed`)."""
        values: list[float | None] = [None, None, None]
        for phase, amps in currents_by_site_phase.items():
            if out_of_range(amps, -MAX_PLAUSIBLE_CURRENT_A, MAX_PLAUSIBLE_CURRENT_A):
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
        Minimise would no longer fit the members, or when above the installed limit
        (the configured one: the main fuse is a physical fact, so a request may only
        lower the limit for a while, never raise it past the fuse)."""
        new = with_limit(self._group, limit_a, self._configured_fallback_a,
                         installed_limit_a=self.installed_limit_a)
        try:
            check_minimise(new, tuple(s.member.charger_input() for s in self._members.values()))
        except InfeasibleGroupError as exc:
            raise RequestError(peer="SetGroupLimit", problem=str(exc)) from exc
        previous, self._group = self._group.limit_a, new
        return previous

    # -- the cycle ------------------------------------------------------------------------

    def _charger(self, st: _MemberState, online: bool) -> ChargerInput:
        """Rule 2: the member's engine input (offline: no reports, so the engine reserves
        what it may still draw)."""
        reports = st.by_connector if online else None
        if st.built is None or st.built_from[0] is not st.member \
                or st.built_from[1] is not reports:  # rule 7
            st.built = st.inputs.build(st.member, reports)
            st.built_from = (st.member, reports)
        return st.built

    def _prebuild(self, st: _MemberState) -> None:
        """Rule 7: build a fresh report's input as it arrives. One the engine refuses is
        left unbuilt: the cycle builds it again and reports the group's fault."""
        try:  # noqa: SIM105 (not contextlib.suppress: this runs for every report)
            self._charger(st, True)
        except InvalidInputError:
            pass

    def forget_caches(self) -> None:
        """Drop every cache of rule 7, so the next cycle rebuilds all from the reports
        (the full rebuild the incremental cycle is tested against)."""
        for st in self._members.values():
            st.inputs, st.built, st.built_from = MemberInputs(), None, (None, None)
            st.judged, st.sent_key, st.sent = None, (), ()
        self._order = None

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

    def cycle(self, now_s: float, external: InForce | None = None,
              now_unix_s: float = 0.0, needs: tuple[Need, ...] = ()) -> CycleResult:
        """Run one control cycle at `now_s` (rules 1-5) under the `external` limits in
        force (master.externallimits; `now_unix_s` names their ends in the status), with
        the drivers' `needs` where known (master.habits)."""
        self.cycle_number += 1
        g, lease_s = self._group, self._group.lease_s
        holding = now_s < self.hold_until_s
        states = self._order
        if states is None:
            states = self._order = [self._members[cid] for cid in sorted(self._members)]
            self._keys = ()
        seen = tuple(self._seen(s, now_s) for s in states)
        fault, alloc = "", None
        try:
            snap = Snapshot(now_s=now_s, group=g, ct=None if self._ct_watch.frozen else self._ct,
                            external_limit_a=None if external is None else external.cap_a,
                            needs=needs,
                            chargers=tuple(self._charger(s, m.online and not holding)
                                           for s, m in zip(states, seen, strict=True)))
            if holding:
                alloc = allocate(snap, None)
            else:
                alloc = allocate(snap, self._engine if self._engine is not None else self._seed())
                self._engine = alloc.state
        except (InvalidInputError, InfeasibleGroupError) as exc:
            fault = f"{exc}; every connector is held at 0 A until this is fixed"
            self._engine, self._hold_grants = None, {}

        limits = self._limits(states, alloc, holding)
        if holding and alloc is not None:
            self._hold_at_s = now_s
            self._hold_grants = {(cid, lim.connector_id): lim.current_a
                                 for cid, lims in limits.items() for lim in lims}
        ctx = LimitContext(installed_limit_a=self.installed_limit_a,
                           external=external or InForce(), now_unix_s=now_unix_s)
        facts = CycleFacts(group=g, term=self.term, cycle=self.cycle_number, now_s=now_s,
                           holding=holding, fault=fault, ct=self._ct, ct_fault=self._ct_fault,
                           alloc=alloc, limits=limits, members=seen, context=ctx)
        return CycleResult(term=self.term, cycle=self.cycle_number, now_s=now_s,
                           allocation=alloc, limits=limits, holding=holding,
                           failsafe_current_a=g.failsafe_current_a,
                           lease_ms=round(lease_s * 1000), facts=facts)

    def _seen(self, s: _MemberState, now_s: float) -> MemberSeen:
        """Rules 1 and 6 for one member this cycle, as the status will show them."""
        reason = s.offline_reason(now_s, self._group.lease_s)
        refusal = self._refusal(s, now_s) if s.connected else ""
        return MemberSeen(member=s.member, reports=s.by_connector,
                          online=not reason and not refusal, address=s.address,
                          offline_reason=reason, refusal=refusal, last_heard_s=s.last_heard_s)

    def _limits(self, states: list[_MemberState], alloc: Allocation | None,
                holding: bool) -> dict[str, tuple[ConnectorLimit, ...]]:
        """Rules 2, 4, 5 and 7: each connected member's Limits, in snapshot order. While
        the engine's columns for a member's connectors are the ones its last tuple was
        made from, that tuple is kept (equal values, no new objects)."""
        limits: dict[str, tuple[ConnectorLimit, ...]] = {}
        row = 0
        if alloc is not None and alloc.keys != self._keys:  # a C compare when unchanged
            keys = tuple((s.member.charger_id, c.connector_id)
                         for s in states for c in s.member.connectors)
            if alloc.keys != keys:  # the engine's rows are in snapshot order: never here
                raise AssertionError("allocation rows are not in snapshot order")
            self._keys = alloc.keys
        for s in states:
            cid, conns = s.member.charger_id, s.member.connectors
            n, at = len(conns), row
            row += n
            if not s.connected:
                continue
            if alloc is None or holding:  # rules 4 and 5: not from the engine's columns
                limits[cid] = tuple(self._limit(s, c.connector_id, alloc, holding)
                                    for c in conns)
                s.sent_key = ()
                continue
            key = (alloc.currents_a[at:row], alloc.reasons[at:row],
                   alloc.limiting_phases[at:row])
            if key != s.sent_key:
                s.sent_key = key
                s.sent = tuple(
                    ConnectorLimit(connector_id=c.connector_id, current_a=key[0][k],
                                   reason=key[1][k], limiting_phase=key[2][k])
                    for k, c in enumerate(conns))
            limits[cid] = s.sent
        return limits

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
        i = alloc.index(st.member.charger_id, connector_id)
        return ConnectorLimit(connector_id=connector_id, current_a=alloc.currents_a[i],
                              reason=alloc.reasons[i], limiting_phase=alloc.limiting_phases[i])
