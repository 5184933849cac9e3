"""Rebuilding the group never releases a reservation that may still be drawn (issue 10).

A virtual-time model of a whole group, one tick per second: the master's control core
(master.control.GroupControl) and, per charger, the agent's own limit applier
(agent.limits.LimitApplier) fed the Limits that reach it. Random sequences of chargers
joining, links cut and restored, chargers physically removed and rebuilds naming random
sets drive it, under Zero, Minimise and Maximise, with and without settle time; the master
sees a cut at once (stream closed) or up to 2 s late (keepalive).

Invariant, checked at every tick: on every phase, the sum over every charger still on the
site of what each connector may draw stays within the group limit. What a connector may
draw is its applier's offer (the master's Limits while the lease holds, the fail-safe once
it ran out, also for a cut-off agent) and, while its EV follows a decrease (`settle_s`),
the highest offer in force during the last `settle_s`. The installer is truthful: a
rebuild names chargers physically removed, and connected ones by mistake (to be refused),
never one that is merely cut off; now and then an id that is no member (to be refused
whole).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.limits import LimitApplier, MasterLimits
from master.allocation import OfflineStrategy, Phase
from master.control import GroupControl
from master.errors import PeerError, RequestError
from master.membership import Member, MemberConnector, Wiring
from master.reports import ConnectorReport, MemberReport
from tests.master.support import conn_report, group

TOL = 1e-6
TERM = 7  # this master's term; members from disk saw term 6 before it restarted
WIRINGS: list[Wiring] = [(Phase.L1, Phase.L2, Phase.L3), (Phase.L2, Phase.L3, Phase.L1),
                         (Phase.L3, Phase.L1, Phase.L2), (Phase.L1, None, None),
                         (Phase.L2, None, None), (Phase.L3, None, None)]


@dataclass
class Agent:
    """One charger on the site: its applier, its link, and the offers it made."""

    member: Member
    applier: LimitApplier
    link_up: bool = False
    removed: bool = False  # physically removed: draws nothing from then on
    seq: int = 0
    offers: dict[int, list[tuple[float, float]]] = field(default_factory=dict)

    def may_draw(self, connector_id: int, now_s: float, settle_s: float) -> float:
        """The highest offer in force at any instant of [now - settle_s, now]."""
        if self.removed:
            return 0.0
        hist = self.offers.get(connector_id, [])
        before = [a for t, a in hist if t <= now_s - settle_s]
        recent = [a for t, a in hist if t > now_s - settle_s]
        return max([*before[-1:], *recent], default=0.0)


@dataclass
class Site:
    """The group in virtual time; `tick` runs one second and checks the invariant."""

    control: GroupControl
    agents: dict[str, Agent]
    detect_s: float = 0.0  # how late the master sees a cut (gRPC keepalive: within ~2 s)
    now: float = 0.0
    pending: list[tuple[float, str]] = field(default_factory=list)  # (when, charger id)
    log: list[str] = field(default_factory=list)
    early: list[str] = field(default_factory=list)  # members that connect at the start

    @property
    def settle_s(self) -> float:
        return self.control.group.settle_s

    def members(self) -> set[str]:
        return {m.charger_id for m in self.control.members}

    def join(self, cid: str) -> None:
        a = self.agents[cid]
        if a.removed or a.link_up:
            return
        try:
            self.control.member_connected(a.member, self.now)
        except PeerError:  # no room (Minimise): it stays off the group, at its own fail-safe
            self.log.append(f"{self.now:g}: {cid} refused")
            return
        a.link_up, a.seq = True, 0
        self.pending = [p for p in self.pending if p[1] != cid]  # the new stream wins
        a.applier.set_failsafe_current(self.control.group.failsafe_current_a)  # Welcome
        self.log.append(f"{self.now:g}: {cid} joins")

    def cut(self, cid: str) -> None:
        a = self.agents[cid]
        if a.link_up:
            a.link_up = False
            self.pending.append((self.now + self.detect_s, cid))
            self.log.append(f"{self.now:g}: {cid} cut off")
            self._streams_closing()

    def _streams_closing(self) -> None:
        for when, cid in [p for p in self.pending if p[0] <= self.now]:
            self.pending.remove((when, cid))
            self.control.member_disconnected(cid, self.now)

    def remove(self, cid: str) -> None:
        self.cut(cid)
        self.agents[cid].removed = True
        self.log.append(f"{self.now:g}: {cid} physically removed")

    def rebuild(self, picks: list[str], unknown: bool) -> None:
        members, streams = self.members(), self.control.connected_ids()
        named = [c for c in picks if c in members
                 and (self.agents[c].removed or self.agents[c].link_up)]
        if unknown:
            named.append("io7-nobody")
        self.log.append(f"{self.now:g}: rebuild naming {named}")
        try:
            plan = self.control.rebuild(named)
        except RequestError:
            assert unknown and self.members() == members, "a refused rebuild changed nothing"
            return
        assert not unknown
        assert set(plan.removed) == set(named) - streams
        assert set(plan.refused_connected) == set(named) & streams
        assert set(plan.kept) == self.members() == members - set(plan.removed)
        assert set(plan.offline_kept) == set(plan.kept) - streams - set(named)

    def tick(self) -> None:
        self.now += 1.0
        self._streams_closing()
        for cid, a in self.agents.items():
            if a.link_up:
                a.seq += 1
                self.control.report(MemberReport(
                    charger_id=cid, sequence=a.seq, received_at_s=self.now,
                    connectors=tuple(self._report(a, c) for c in a.member.connectors)))
        result = self.control.cycle(self.now)
        for cid, limits in result.limits.items():
            a = self.agents[cid]
            if a.link_up:
                a.applier.on_limits(MasterLimits(
                    term=result.term, cycle=result.cycle, valid_for_s=result.lease_ms / 1000,
                    failsafe_current_a=result.failsafe_current_a,
                    currents_a={lim.connector_id: lim.current_a for lim in limits}), self.now)
        for a in self.agents.values():
            if not a.removed:
                for conn, decision in a.applier.offered(self.now).items():
                    a.offers.setdefault(conn, []).append((self.now, decision.current_a))
        self.check()

    def _report(self, a: Agent, c: MemberConnector) -> ConnectorReport:
        drawn = a.may_draw(c.connector_id, self.now, self.settle_s)  # a slow EV at its worst
        return conn_report(c.connector_id, max_current_a=c.hard_max_a,
                           current_a=tuple(drawn if p is not None else 0.0 for p in c.wiring))

    def check(self) -> None:
        per_phase = dict.fromkeys(Phase, 0.0)
        for a in self.agents.values():
            for c in a.member.connectors:
                amps = a.may_draw(c.connector_id, self.now, self.settle_s)
                for p in c.wiring:
                    if p is not None:
                        per_phase[p] += amps
        limit = self.control.group.limit_a
        worst = max(per_phase, key=lambda p: per_phase[p])
        assert per_phase[worst] <= limit + TOL, (
            f"t={self.now:g} s: {per_phase[worst]:.1f} A may be drawn on {worst.name}, "
            f"limit {limit:g} A ({self.control.group.offline_strategy.value}); "
            + "; ".join(self.log[-12:]))


@st.composite
def chargers(draw: st.DrawFn, i: int) -> Member:
    n = draw(st.integers(1, 2))
    return Member(
        charger_id=f"io7-{i}", group="garage",
        charger_current_limit_a=draw(st.sampled_from([10.0, 16.0, 32.0, 63.0])),
        connectors=tuple(MemberConnector(connector_id=k + 1,
                                         wiring=draw(st.sampled_from(WIRINGS)),
                                         hard_max_a=draw(st.sampled_from([16.0, 32.0])))
                         for k in range(n)))


POOL = 4  # chargers on the site; few, so that events meet the same chargers
CHARGER = st.integers(0, POOL - 1)
EVENTS = st.one_of(  # joins listed thrice: a charger must be on a lease before its cut matters
    *[st.tuples(st.just("join"), CHARGER)] * 3,
    *[st.tuples(st.just("cut"), CHARGER)] * 2,
    st.tuples(st.just("remove"), CHARGER),
    *[st.tuples(st.just("rebuild"), st.lists(CHARGER, max_size=POOL),
                st.integers(0, 5).map(lambda k: k == 0))] * 2,  # 1 in 6 names a stranger
    # The installer sees a charger go offline and rebuilds while its lease still runs.
    st.tuples(st.just("cut_then_rebuild"), CHARGER, st.lists(CHARGER, max_size=POOL)),
    *[st.tuples(st.just("wait"), st.integers(1, 6))] * 2,
)


@st.composite
def sites(draw: st.DrawFn) -> Site:
    strategy = draw(st.sampled_from(OfflineStrategy))
    g = group(limit_a=draw(st.sampled_from([24.0, 40.0, 60.0, 100.0])),
              offline_strategy=strategy, settle_s=draw(st.sampled_from([0.0, 5.0])))
    pool = [draw(chargers(i)) for i in range(POOL)]
    control = GroupControl(group=g, term=TERM, members=[], now_s=0.0)
    on_disk = []  # members from before this master's start, if the group has room
    for m in pool:
        if draw(st.booleans()) and control.check_join(m) is None:
            control.member_connected(m, 0.0)
            control.member_disconnected(m.charger_id, 0.0)
            on_disk.append(m)
    control = GroupControl(group=g, term=TERM, members=on_disk, now_s=0.0)
    agents = {}
    for m in pool:
        known = m in on_disk  # it had a Welcome from the previous term: its fail-safe
        agents[m.charger_id] = Agent(member=m, applier=LimitApplier(
            [c.connector_id for c in m.connectors], m.charger_current_limit_a,
            {c.connector_id: c.hard_max_a for c in m.connectors},
            initial_failsafe_a=g.failsafe_current_a if known else 0.0,
            last_seen_term=TERM - 1 if known else 0))
    early = [m.charger_id for m in on_disk if draw(st.integers(0, 3)) > 0]
    return Site(control=control, agents=agents, early=early,
                detect_s=draw(st.sampled_from([0.0, 1.0, 2.0])))


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(site=sites(), events=st.lists(EVENTS, min_size=1, max_size=40))
def test_no_rebuild_releases_what_may_still_be_drawn(site: Site,
                                                     events: list[tuple[object, ...]]) -> None:
    for cid in site.early:  # most members connect at once and are on a lease by the events
        site.join(cid)
    while site.now < site.control.hold_until_s + 2:
        site.tick()
    for event in events:
        kind = event[0]
        if kind == "wait":
            for _ in range(int(event[1])):  # type: ignore[call-overload]
                site.tick()
            continue
        if kind == "rebuild":
            picks = [f"io7-{i}" for i in event[1]]  # type: ignore[attr-defined]
            site.rebuild(picks, bool(event[2]))
        elif kind == "cut_then_rebuild":
            site.cut(f"io7-{event[1]}")
            site.tick()
            site.rebuild([f"io7-{i}" for i in event[2]], False)  # type: ignore[attr-defined]
        else:
            cid = f"io7-{event[1]}"
            {"join": site.join, "cut": site.cut, "remove": site.remove}[str(kind)](cid)
        site.tick()
    for _ in range(10):  # and after the last event, until every lease has run out
        site.tick()
